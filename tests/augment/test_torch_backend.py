"""The batched torch backend: cases generated from spec.TRANSFORMS, hand-checked geometry, determinism."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from weakseg.augment import grids
from weakseg.augment.spec import TRANSFORMS
from weakseg.augment.torch_backend import BatchAugment
from weakseg.keys import Keys

SIZES = {2: (64, 64), 3: (24, 24, 24)}
WIDTHS = {2: (14.0, 10.0, 7.0), 3: (7.0, 6.0, 5.0)}  # blob std in pixels: smooth next to the voxel size
LEVELS = (0.25, 0.5, 0.75)  # thresholds of the blob image -> labels 0..3
STRONG = {  # moderately strong settings per transform; a transform missing here is tested with its defaults
    "rotate": {"degrees": [20.0, 40.0]},
    "translate": {"fraction": [-0.15, 0.15]},
    "shear": {"degrees": [10.0, 20.0]},
    "scale": {"factor": [0.75, 1.3]},
    "flip": {2: {"axes": [0, 1]}, 3: {"axes": [0, 1, 2]}},
    "crop": {2: {"size": [40, 80]}, 3: {"size": [16, 20, 30]}},
    "elastic_grid": {2: {"grid": 3, "sigma": 5.0}, 3: {"grid": 3, "sigma": 2.0}},
    "elastic_dense": {2: {"alpha": 40.0, "sigma": 5.0}, 3: {"alpha": 15.0, "sigma": 3.0}},
    "gaussian_blur": {"sigma": [1.0, 1.5]},
    "gaussian_noise": {"std": [0.05, 0.1]},
    "brightness": {"shift": [0.1, 0.2]},
    "contrast": {"factor": [1.3, 1.5]},
    "gamma": {"gamma": [1.5, 2.0]},
    "saturation": {"factor": [0.3, 0.5]},
    "hue": {"shift": [0.1, 0.2]},
}


def _cases(kind: str) -> list[tuple[str, int]]:
    return [(name, d) for name, spec in TRANSFORMS.items() if spec.kind == kind for d in spec.dims]


def _entry(name: str, dims: int, p: float = 1.0) -> dict:
    params = STRONG.get(name, {})
    params = params.get(dims, {}) if dims in params else params
    return {"name": name, "p": p, **params}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def blobs(dims: int, batch: int = 2, channels: int = 1) -> torch.Tensor:
    """Smooth test image (B, C, *S) in [0, 1]: a sum of Gaussians, different per sample and channel."""
    size = SIZES[dims]
    axes = torch.meshgrid(*[torch.arange(n, dtype=torch.float32) for n in size], indexing="ij")
    out = torch.zeros(batch, channels, *size)
    for b in range(batch):
        for c in range(channels):
            for k, (frac, width) in enumerate(zip((0.4, 0.6, 0.55), WIDTHS[dims])):
                centre = [n * (frac + 0.05 * ((a + b + c + k) % 3 - 1)) for a, n in enumerate(size)]
                r2 = sum((x - m) ** 2 for x, m in zip(axes, centre)) / width**2
                out[b, c] += (0.9 - 0.2 * k) * torch.exp(-0.5 * r2)
    return out.clamp(0, 1)


def to_label(image: torch.Tensor) -> torch.Tensor:
    return sum((image[:, 0] > t).long() for t in LEVELS)


def dice(a: torch.Tensor, b: torch.Tensor) -> float:
    inter = (a & b).sum().item()
    return 2 * inter / max(a.sum().item() + b.sum().item(), 1)


@pytest.mark.parametrize(("name", "dims"), _cases("geometric"))
def test_geometric_moves_image_and_label_together(name: str, dims: int) -> None:
    image = blobs(dims)
    label = to_label(image)
    out = BatchAugment([_entry(name, dims)], dims)({Keys.IMAGE: image, Keys.LABEL: label}, _gen(0))
    warped, from_image = out[Keys.LABEL], to_label(out[Keys.IMAGE])
    assert warped.dtype == torch.int64 and warped.shape == from_image.shape
    assert set(warped.unique().tolist()) <= {0, 1, 2, 3}
    if name != "crop":
        assert set(warped.unique().tolist()) == {0, 1, 2, 3}
    # nearest (label) and linear (image) sampling disagree in a band ~0.25 voxel thick, so 1 - Dice grows
    # like 1 / radius: the foreground mask meets 0.97, the small inner classes of the 24^3 volume 0.93
    for c, least in ((1, 0.97), (2, 0.93), (3, 0.93)):
        assert dice(warped >= c, from_image >= c) >= least, (name, dims, c)


def test_mixed_batch_stays_aligned() -> None:
    """p < 1: some samples warped, others only flipped or untouched; every one stays aligned."""
    image = blobs(2, batch=8)
    label = to_label(image)
    pipeline = [
        {"name": "flip", "p": 0.5, "axes": [0, 1]},
        {"name": "rotate", "p": 0.5, "degrees": [-30, 30]},
        {"name": "elastic_grid", "p": 0.5},
    ]
    out = BatchAugment(pipeline, 2)({Keys.IMAGE: image, Keys.LABEL: label}, _gen(3))
    from_image = to_label(out[Keys.IMAGE])
    for i in range(8):
        assert dice(out[Keys.LABEL][i] >= 1, from_image[i] >= 1) >= 0.97, i
    assert not torch.equal(out[Keys.IMAGE], image)


@pytest.mark.parametrize(("name", "dims"), _cases("geometric") + _cases("intensity"))
def test_same_seed_same_output_other_seed_other_output(name: str, dims: int) -> None:
    channels = 3 if TRANSFORMS[name].rgb_only else 1
    image = blobs(dims, batch=4, channels=channels)
    batch = {Keys.IMAGE: image, Keys.LABEL: to_label(image), "case_id": ["a", "b", "c", "d"]}
    aug = BatchAugment([_entry(name, dims, p=0.5)], dims)
    first, again, other = aug(batch, _gen(3)), aug(batch, _gen(3)), aug(batch, _gen(4))
    assert torch.equal(first[Keys.IMAGE], again[Keys.IMAGE]) and torch.equal(
        first[Keys.LABEL], again[Keys.LABEL]
    )
    assert not torch.equal(first[Keys.IMAGE], other[Keys.IMAGE])
    assert first["case_id"] is batch["case_id"]


@pytest.mark.parametrize(("name", "dims"), _cases("intensity"))
def test_intensity_leaves_label_untouched(name: str, dims: int) -> None:
    channels = 3 if TRANSFORMS[name].rgb_only else 1
    image = blobs(dims, channels=channels)
    image = image + 0.05 * torch.rand(image.shape, generator=_gen(9))  # texture for the median filter
    label = to_label(image)
    before = image.clone()
    out = BatchAugment([_entry(name, dims)], dims)({Keys.IMAGE: image, Keys.LABEL: label}, _gen(0))
    assert out[Keys.LABEL] is label
    assert torch.equal(image, before)  # the input is never modified in place
    assert out[Keys.IMAGE].shape == image.shape and torch.isfinite(out[Keys.IMAGE]).all()
    assert not torch.allclose(out[Keys.IMAGE], image)


def test_flip_swaps_lateral_labels_and_twice_is_identity() -> None:
    label = torch.tensor([[[2, 2, 0, 3], [1, 2, 0, 3]]])
    image = label[:, None].float() + 0.5
    aug = BatchAugment([{"name": "flip", "axes": [1]}], 2, swap_labels=[[2, 3]])
    out = aug({Keys.IMAGE: image, Keys.LABEL: label}, _gen(0))
    assert torch.equal(out[Keys.LABEL], torch.tensor([[[2, 0, 3, 3], [2, 0, 3, 1]]]))
    assert torch.equal(out[Keys.IMAGE], image.flip(-1))
    updown = BatchAugment([{"name": "flip", "axes": [0]}], 2, swap_labels=[[2, 3]])
    assert torch.equal(updown({Keys.IMAGE: image, Keys.LABEL: label}, _gen(0))[Keys.LABEL], label.flip(1))
    twice = BatchAugment([{"name": "flip", "axes": [1]}] * 2, 2, swap_labels=[[2, 3]])
    out = twice({Keys.IMAGE: image, Keys.LABEL: label}, _gen(0))
    assert torch.equal(out[Keys.LABEL], label) and torch.equal(out[Keys.IMAGE], image)


@pytest.mark.parametrize("dims", [2, 3])
def test_rotate_90_is_rot90_counter_clockwise(dims: int) -> None:
    label = torch.zeros(1, *[8] * dims, dtype=torch.int64)
    label[0, 1:3, 1:6] = 1  # an L shape: asymmetric under every rotation and flip
    label[0, 3:7, 1:3] = 2
    out = BatchAugment([{"name": "rotate", "degrees": [90.0, 90.0]}], dims)(
        {Keys.IMAGE: label[:, None].float(), Keys.LABEL: label}, _gen(0)
    )
    assert torch.equal(out[Keys.LABEL], torch.rot90(label, 1, dims=(1, 2)))
    assert torch.allclose(out[Keys.IMAGE][:, 0], torch.rot90(label, 1, dims=(1, 2)).float(), atol=1e-5)


def test_translate_by_exact_fraction_is_a_roll() -> None:
    label = torch.randint(0, 4, (2, 16, 16), generator=_gen(1))
    image = label[:, None].float()
    out = BatchAugment([{"name": "translate", "fraction": [0.25, 0.25]}], 2)(
        {Keys.IMAGE: image, Keys.LABEL: label}, _gen(0)
    )
    rolled = torch.roll(label, (4, 4), dims=(1, 2))
    assert torch.equal(out[Keys.LABEL][:, 4:, 4:], rolled[:, 4:, 4:])
    assert torch.allclose(out[Keys.IMAGE][:, 0, 4:, 4:], rolled[:, 4:, 4:].float(), atol=1e-5)
    assert out[Keys.LABEL][:, :4].eq(0).all() and out[Keys.LABEL][:, :, :4].eq(0).all()


@pytest.mark.parametrize(("size", "extra"), [([10, 20], []), ([6, 8, 30], [{"name": "rotate"}])])
def test_crop_sets_the_output_size(size: list[int], extra: list[dict]) -> None:
    dims = len(size)
    image = torch.rand(3, 2, *[16] * dims)
    weight = torch.rand(3, *[16] * dims)
    out = BatchAugment([*extra, {"name": "crop", "size": size}], dims)(
        {Keys.IMAGE: image, Keys.LABEL: to_label(image), Keys.WEIGHT: weight}, _gen(0)
    )
    assert out[Keys.IMAGE].shape == (3, 2, *size)
    assert out[Keys.LABEL].shape == out[Keys.WEIGHT].shape == (3, *size)


def test_weight_uses_the_image_grid() -> None:
    image = blobs(2)
    out = BatchAugment([{"name": "rotate"}, {"name": "elastic_grid", "sigma": 4.0}], 2)(
        {Keys.IMAGE: image, Keys.WEIGHT: image[:, 0] * 2}, _gen(0)
    )
    assert torch.allclose(out[Keys.WEIGHT], out[Keys.IMAGE][:, 0] * 2, atol=1e-5)


def test_p_zero_everywhere_is_identity() -> None:
    image = blobs(2, channels=3)
    batch = {Keys.IMAGE: image, Keys.LABEL: to_label(image), Keys.WEIGHT: image[:, 0]}
    entries = [{**_entry(n, 2, p=0.0)} for n, s in TRANSFORMS.items() if 2 in s.dims]
    entries = [{**e, "size": list(SIZES[2])} if e["name"] == "crop" else e for e in entries]
    out = BatchAugment(entries, 2)(batch, _gen(0))
    assert all(out[k] is batch[k] for k in batch)


def test_samples_do_not_depend_on_each_other() -> None:
    image = blobs(2, batch=3)
    pipeline = [_entry(n, 2, p=0.5) for n in ("flip", "rotate", "elastic_dense", "gaussian_noise", "gamma")]
    aug = BatchAugment(pipeline, 2)
    other = image.clone()
    other[1:] = other[1:].flip(-1)
    a, b = aug({Keys.IMAGE: image}, _gen(5)), aug({Keys.IMAGE: other}, _gen(5))
    assert torch.equal(a[Keys.IMAGE][0], b[Keys.IMAGE][0])


def test_autocast_computes_in_float32() -> None:
    image = blobs(2)
    aug = BatchAugment([{"name": "rotate"}, {"name": "gaussian_blur"}], 2)
    plain = aug({Keys.IMAGE: image}, _gen(0))[Keys.IMAGE]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = aug({Keys.IMAGE: image}, _gen(0))[Keys.IMAGE]
    assert auto.dtype == torch.float32 and torch.equal(auto, plain)


def test_same_result_on_cuda(device: torch.device) -> None:
    image = blobs(3)
    batch = {Keys.IMAGE: image, Keys.LABEL: to_label(image)}
    aug = BatchAugment([_entry(n, 3) for n in ("rotate", "scale", "elastic_dense", "gaussian_noise")], 3)
    cpu = aug(batch, _gen(0))
    gpu = aug({k: v.to(device) for k, v in batch.items()}, _gen(0))
    assert torch.allclose(gpu[Keys.IMAGE].cpu(), cpu[Keys.IMAGE], atol=1e-4)
    assert (gpu[Keys.LABEL].cpu() != cpu[Keys.LABEL]).float().mean() < 1e-3


@pytest.mark.parametrize(
    ("transforms", "batch", "message"),
    [
        ([{"name": "rotat"}], {Keys.IMAGE: torch.zeros(1, 1, 4, 4)}, 'Did you mean "rotate"'),
        ([{"name": "hue"}], {Keys.IMAGE: torch.zeros(1, 1, 4, 4)}, "needs RGB"),
        ([], {Keys.IMAGE: torch.zeros(1, 1, 4, 4), Keys.LABEL: torch.zeros(1, 4, 5)}, "must be"),
        ([], {Keys.IMAGE: torch.zeros(1, 4, 4)}, "spatial dims"),
        ([{"name": "flip", "axes": [2]}], {Keys.IMAGE: torch.zeros(1, 1, 4, 4)}, "axes must list"),
    ],
)
def test_errors_say_what_to_fix(transforms: list, batch: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BatchAugment(transforms, 2)(batch, _gen(0))


def test_grid_helpers_match_torch() -> None:
    coarse = torch.randn(2, 2, 3, 3, generator=_gen(0))
    ref = F.interpolate(coarse, size=(17, 9), mode="bicubic", align_corners=True)
    assert torch.allclose(grids.elastic_grid_field(coarse, (17, 9)), ref, atol=1e-5)
    coarse3 = torch.randn(
        1, 3, 3, 4, 3, generator=_gen(0)
    )  # (B, C, H, W, D): tricubic = bicubic(H, W) x cubic(D)
    b, c, h, w, d = coarse3.shape
    hw = (
        F.interpolate(
            coarse3.permute(0, 1, 4, 2, 3).reshape(b, c * d, h, w),
            size=(5, 7),
            mode="bicubic",
            align_corners=True,
        )
        .reshape(b, c, d, 5, 7)
        .permute(0, 1, 3, 4, 2)
    )
    ref3 = F.interpolate(hw.reshape(b, c * 35, d, 1), size=(6, 1), mode="bicubic", align_corners=True)
    ref3 = ref3.reshape(b, c, 5, 7, 6)
    assert torch.allclose(grids.elastic_grid_field(coarse3, (5, 7, 6)), ref3, atol=1e-5)
    x = torch.rand(2, 1, 9, 40, generator=_gen(1))
    kernels = grids.gaussian_kernels(torch.tensor([0.8, 2.0]), 6)
    matrix, conv = (grids.separable_filter(x, kernels, method=m) for m in ("matrix", "conv"))
    assert torch.allclose(matrix, conv, atol=1e-5)
