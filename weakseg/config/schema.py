"""The config sections as typed dataclasses, with their defaults (one field a key)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AUGMENT_STREAMS",
    "SCHEDULES",
    "TARGET_OWN_KEYS",
    "AugmentConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "InferConfig",
    "IntensityConfig",
    "LossConfig",
    "MethodConfig",
    "ModelConfig",
    "OptimConfig",
    "TrainConfig",
    "WandbConfig",
]


class ConfigError(ValueError):
    """A configuration file or override is wrong; the message names the key and the fix."""


@dataclass
class IntensityConfig:
    """How raw image values become network input. ``preset``: auto | none | scale | ct_window | mr_percentile | rgb."""

    preset: str = "auto"  # auto: phantom ct -> ct_window, phantom mr -> mr_percentile, files -> scale
    window: list[float] = field(default_factory=lambda: [40.0, 400.0])  # CT level, width in HU
    percentiles: list[float] = field(default_factory=lambda: [0.5, 99.5])  # MR clip + rescale to [0, 1]
    scale: float = 255.0  # "scale": value / scale (uint8 PNG -> [0, 1])


@dataclass
class DataConfig:
    """Where samples come from and how cases are split. ``source``: phantom | folder | nifti | decathlon | nnunet
    (an nnU-Net v2 raw dataset folder)."""

    source: str = "phantom"
    root: str | None = None
    image_dir: str = "images"
    mask_dir: str = "masks"
    case_regex: str = r"p(\d+)"
    num_classes: int = 5
    class_names: list[str] = field(
        default_factory=lambda: ["background", "liver", "right_kidney", "left_kidney", "spleen"]
    )
    in_channels: int = 1
    intensity: IntensityConfig = field(default_factory=IntensityConfig)
    val_fraction: float = 0.2
    test_fraction: float = 0.0
    labeled_fraction: float = 1.0
    split_seed: int = 0
    slice_axis: int | None = 2  # NIfTI / Decathlon: take 2D slices along this axis; null = whole 3D volumes
    phantom_modality: str = "ct"  # built-in phantoms: ct | mr
    phantom_cases: int = 20
    phantom_slices: int = 8
    phantom_size: int = 128
    phantom_seed: int = 0
    swap_labels: list[list[int]] = field(default_factory=list)  # lateralized pairs a left-right flip swaps
    splits: dict[str, list[str]] | None = None  # explicit case ids per split (labeled/unlabeled/val/test)
    spacing: list[float] | None = (
        None  # physical voxel size (z, y, x) of a case's stacked slices, for HD95/ASSD
    )
    # resample every image/mask to this size at load time: [H, W] for slices, [H, W, D] for volumes
    resize: list[int] | None = None
    # NIfTI-like volumes (nifti, decathlon, nnunet): resample to this voxel size (mm, the RAS axes X, Y, Z as
    # read) at load time, from each header's spacing; slices keep their own slice-axis spacing
    target_spacing: list[float] | None = None
    # extra image folders without masks (same format as image_dir) whose images join the "unlabeled" split,
    # e.g. a challenge's test images for semi-supervised training; their case ids must not clash with root's
    unlabeled_dirs: list[str] = field(default_factory=list)
    # extra labeled datasets (each <root>/<image_dir> + <root>/<mask_dir>, e.g. a synthetic one) whose samples join
    # the "labeled" split; never used for validation; case ids must not clash with root's
    extra_labeled_roots: list[str] = field(default_factory=list)
    # share of training draws that come from extra_labeled_roots (null: every sample equally often, so a few real
    # cases next to hundreds of synthetic ones are rarely seen); the smaller side is repeated in each epoch
    extra_labeled_share: float | None = None
    # training patches cut from each sample on the CPU (3D volumes: [H, W, D]); a fraction centred on a
    # foreground voxel (nnU-Net's oversampling), the rest anywhere; samples smaller than the patch are padded
    patch_size: list[int] | None = None
    patch_foreground: float = 0.33

    @property
    def spatial_dims(self) -> int:
        """2 for slices (folders, sliced volumes and phantoms), 3 for whole NIfTI/Decathlon volumes and phantom
        volumes (``slice_axis: null``)."""
        return (
            3 if self.source in ("nifti", "decathlon", "nnunet", "phantom") and self.slice_axis is None else 2
        )


@dataclass
class InferConfig:
    """Sliding-window inference (evaluation, ``weakseg predict``) for inputs larger than ``roi_size``
    (default ``data.patch_size``; none: whole inputs at once), MONAI's ``sliding_window_inference``."""

    roi_size: list[int] | None = None
    overlap: float = 0.5
    sw_batch_size: int = 4
    mode: str = "gaussian"  # gaussian | constant blending of overlapping windows
    stitch_on_cpu_mb: float = 1024.0  # output logits larger than this are stitched in CPU memory


@dataclass
class ModelConfig:
    network: str = "unet"
    params: dict[str, Any] = field(default_factory=dict)
    # trained weights the segmenter starts from (pre-training then fine-tuning): a weakseg checkpoint or a
    # state_dict file; init_strict false lets weights that do not fit (another head) start from scratch
    init_from: str | None = None
    init_strict: bool = True


@dataclass
class LossConfig:
    name: str = "dice_ce"
    params: dict[str, Any] = field(default_factory=dict)
    deep_supervision_weights: list[float] | None = None  # used when the network returns several outputs


@dataclass
class MethodConfig:
    name: str = "supervised"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    name: str = "adamw"  # adam | adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.99  # sgd only
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    schedule: str = "poly"  # constant | poly | cosine | linear | constant_linear
    decay_start: float = 0.5  # constant_linear: fraction of the run (after warmup) before the linear decay
    warmup_steps: int = 0
    poly_power: float = 0.9
    grad_clip: float | None = 12.0


@dataclass
class WandbConfig:
    enabled: bool = False
    project: str = "weakseg"
    mode: str = "offline"  # offline | online | disabled


@dataclass
class TrainConfig:
    max_steps: int = 1000
    batch_size: int = 8
    eval_every: int = 250
    eval_batch_size: int = 16
    log_every: int = 25
    key_metric: str = "mean_dice"
    key_mode: str = "max"  # max | min
    early_stop_patience: int = 0  # evaluations without improvement before stopping; 0 = never
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "auto"  # auto (bf16 on CUDA) | bf16 | fp16 | off
    seed: int = 0
    num_workers: int = 0
    sync_batchnorm: bool = False  # DDP on CUDA: BatchNorm statistics over all processes (SyncBatchNorm)
    channels_last: bool = False  # 2D: NHWC layout (faster convs: CUDA; depthwise ones on CPU)
    compile: bool = False  # torch.compile every network of the method (in place: checkpoint keys unchanged)
    # batch size per training stream where it differs from batch_size, e.g. {unlabeled: 8} (semi-supervised)
    stream_batch_sizes: dict[str, int] = field(default_factory=dict)
    run_dir: str = "runs/{name}"
    name: str = "run"
    save_pictures: bool = True
    tensorboard: bool = (
        False  # also TensorBoard event files (scalars, overlays, method pictures) in RUN/tensorboard
    )
    progress: bool = True
    wandb: WandbConfig = field(default_factory=WandbConfig)


@dataclass
class AugmentConfig:
    """Training-time augmentation (weakseg/augment/spec.py lists the transforms and their parameters)."""

    backend: str = (
        "torch"  # torch (batched, on the training device) | albumentations | monai (per sample, CPU)
    )
    transforms: list[dict[str, Any]] = field(default_factory=list)
    streams: list[str] = field(default_factory=lambda: ["labeled"])  # which training streams are augmented


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    infer: InferConfig = field(default_factory=InferConfig)
    # Domain adaptation: the unlabeled target domain (its training cases lose their labels; its validation
    # cases are what the run is evaluated on); ``data`` is then the labeled source domain. Keys not given here
    # are taken from ``data`` except the per-domain ones (TARGET_OWN_KEYS), which keep their defaults.
    target: DataConfig | None = None


SCHEDULES = ("constant", "poly", "cosine", "linear", "constant_linear")
# never inherited by ``target`` from ``data`` (extra folders belong to the source domain)
TARGET_OWN_KEYS = ("root", "intensity", "splits", "unlabeled_dirs", "extra_labeled_roots")
AUGMENT_STREAMS = ("labeled", "unlabeled", "source", "target")
