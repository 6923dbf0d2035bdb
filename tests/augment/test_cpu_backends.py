"""Per-sample CPU backends (albumentations, MONAI): cases generated from spec.TRANSFORMS, so a transform
added to the schema is tested in every backend that may run it."""

from __future__ import annotations

import pickle

import pytest
import torch

from weakseg.augment.cpu_backends import build_sample_transform
from weakseg.augment.labels import swap_label_pairs
from weakseg.augment.spec import TRANSFORMS
from weakseg.keys import Keys

SHAPES = {2: (64, 64), 3: (24, 24, 24)}
# per dims: the two blobs' std (fraction of the size) and the thresholds that make classes 1..3. Nearest
# (label) and linear (image) sampling disagree on about a quarter of a one-pixel shell around the object,
# which costs about 0.375 / radius of Dice for a sphere; at 24^3 the object must be large to reach 0.97.
BLOBS = {2: ((0.2, 0.14), (0.2, 0.45, 0.7)), 3: ((0.3, 0.22), (0.1, 0.4, 0.7))}
# geometric entries with p=1 and visible effects; everything else uses the spec defaults
GEOMETRIC = {
    "rotate": {"degrees": [20.0, 30.0]},
    "translate": {"fraction": [-0.15, 0.15]},
    "shear": {"degrees": [-15.0, 15.0]},
    "scale": {"factor": [1.15, 1.3]},
    "flip": {"axes": [0, 1]},
    "crop": {2: {"size": [48, 72]}, 3: {"size": [16, 30, 20]}},
}


def _combos(kind: str) -> list:
    out = []
    for name, spec in TRANSFORMS.items():
        if spec.kind != kind:
            continue
        for backend, dims in (("albumentations", 2), ("monai", 2), ("monai", 3)):
            if backend in spec.backends and dims in spec.dims and (backend, dims) not in spec.unsupported:
                out.append(pytest.param(name, backend, dims, id=f"{name}-{backend}-{dims}d"))
    return out


def _entry(name: str, dims: int) -> dict:
    params = GEOMETRIC.get(name, {})
    params = params.get(dims, params) if name == "crop" else params
    return {"name": name, "p": 1.0, **params}


def blobs(shape: tuple[int, ...], channels: int = 1) -> dict:
    """Smooth sum of two Gaussians in [0, 1]; the label thresholds it (classes 0..3); a weight map; an id."""
    axes = torch.meshgrid(*[torch.arange(n, dtype=torch.float32) for n in shape], indexing="ij")
    img = torch.zeros(shape)
    scales, thresholds = BLOBS[len(shape)]
    for centre, scale in zip(((0.38, 0.4, 0.45), (0.62, 0.65, 0.55)), scales):
        d2 = sum((a - c * n) ** 2 for a, c, n in zip(axes, centre, shape))
        img += torch.exp(-d2 / (2 * (scale * min(shape)) ** 2))
    img = img / img.max()
    label = sum((img > t).long() for t in thresholds)
    image = torch.stack([img * (1.0 - 0.4 * c / max(1, channels - 1)) for c in range(channels)])
    if channels == 3:
        image[2] = 1.0 - img  # a colourful picture, so saturation and hue change something
    weight = 1.0 + img
    return {Keys.IMAGE: image, Keys.LABEL: label, Keys.WEIGHT: weight, Keys.CASE_ID: "c01", Keys.NAME: "n"}


def centroid(mask: torch.Tensor) -> torch.Tensor:
    axes = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in mask.shape], indexing="ij")
    return torch.stack([(a * mask).sum() / mask.sum() for a in axes])


def dice(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()).clamp(min=1))


@pytest.mark.parametrize("name, backend, dims", _combos("geometric"))
def test_geometric_moves_image_and_label_together(name, backend, dims):
    sample = blobs(SHAPES[dims])
    t = build_sample_transform([_entry(name, dims)], backend, dims)
    out = t(sample, seed=3)
    image, label, weight = out[Keys.IMAGE], out[Keys.LABEL], out[Keys.WEIGHT]
    assert image.dtype == torch.float32 and label.dtype == torch.int64 and weight.dtype == torch.float32
    assert out[Keys.CASE_ID] == "c01" and out[Keys.NAME] == "n" and out is not sample
    if name != "crop":
        assert image.shape == sample[Keys.IMAGE].shape
    assert label.shape == image.shape[1:] == weight.shape
    assert not torch.equal(image, sample[Keys.IMAGE]) or image.shape != sample[Keys.IMAGE].shape
    mask, threshold = label > 0, image[0] > BLOBS[dims][1][0]
    assert dice(mask, threshold) >= 0.97
    # no offset between image and label beyond the half pixel nearest sampling may round (one pixel fails)
    assert (centroid(mask) - centroid(threshold)).abs().max() < 0.6
    assert set(label.unique().tolist()) == {0, 1, 2, 3}


@pytest.mark.parametrize("name, backend, dims", _combos("intensity"))
def test_intensity_never_touches_the_label(name, backend, dims):
    channels = 3 if TRANSFORMS[name].rgb_only else 1
    sample = blobs(SHAPES[dims], channels)
    out = build_sample_transform([{"name": name, "p": 1.0}], backend, dims)(sample, seed=5)
    assert out[Keys.LABEL] is sample[Keys.LABEL] and out[Keys.WEIGHT] is sample[Keys.WEIGHT]
    assert out[Keys.IMAGE].dtype == torch.float32 and out[Keys.IMAGE].shape == sample[Keys.IMAGE].shape
    assert not torch.equal(out[Keys.IMAGE], sample[Keys.IMAGE])


@pytest.mark.parametrize("name, backend, dims", _combos("geometric") + _combos("intensity"))
def test_seed_decides_the_draw(name, backend, dims):
    channels = 3 if TRANSFORMS[name].rgb_only else 1
    sample = blobs(SHAPES[dims], channels)
    entry = _entry(name, dims)
    if name == "flip":
        entry["p"] = 0.5  # a flip's only randomness is whether it fires
    t = build_sample_transform([entry], backend, dims)
    first = t(sample, seed=11)
    t(sample, seed=12)  # another draw in between changes nothing
    again = t(sample, seed=11)
    for key in (Keys.IMAGE, Keys.LABEL, Keys.WEIGHT):
        assert torch.equal(first[key], again[key])
    if name == "smooth":  # deterministic: nothing to draw
        return
    images = [t(sample, seed=s)[Keys.IMAGE] for s in range(8 if name == "flip" else 4)]
    assert any(not torch.equal(images[0], other) for other in images[1:])


@pytest.mark.parametrize("backend, dims", [("albumentations", 2), ("monai", 2), ("monai", 3)])
def test_left_right_flip_swaps_label_pairs(backend, dims):
    sample = blobs(SHAPES[dims])
    flipped = torch.flip(sample[Keys.LABEL], dims=(1,))
    flip = {"name": "flip", "p": 1.0, "axes": [1]}
    out = build_sample_transform([flip], backend, dims, swap_labels=[[2, 3]])(sample, seed=0)
    assert torch.equal(out[Keys.LABEL], swap_label_pairs(flipped, [(2, 3)]))
    assert (out[Keys.LABEL] == 2).sum() == (sample[Keys.LABEL] == 3).sum()
    plain = build_sample_transform([flip], backend, dims)(sample, seed=0)
    assert torch.equal(plain[Keys.LABEL], flipped)
    twice = build_sample_transform([flip, flip], backend, dims, swap_labels=[[2, 3]])(sample, seed=0)
    assert torch.equal(twice[Keys.LABEL], sample[Keys.LABEL])  # two flips: back where it was, no swap
    updown = build_sample_transform([{**flip, "axes": [0]}], backend, dims, swap_labels=[[2, 3]])
    assert torch.equal(updown(sample, seed=0)[Keys.LABEL], torch.flip(sample[Keys.LABEL], dims=(0,)))


@pytest.mark.parametrize("backend", ["albumentations", "monai"])
def test_unlabeled_sample_and_pickling(backend):
    pipeline = [{"name": "rotate", "p": 0.5}, {"name": "gaussian_noise", "p": 0.5}]
    t = build_sample_transform(pipeline, backend, 2)
    sample = {Keys.IMAGE: blobs(SHAPES[2])[Keys.IMAGE]}
    out = t(sample, seed=7)
    assert set(out) == {Keys.IMAGE}
    assert torch.equal(pickle.loads(pickle.dumps(t))(sample, seed=7)[Keys.IMAGE], out[Keys.IMAGE])


@pytest.mark.parametrize(
    "pipeline, backend, dims, needle",
    [
        ([{"name": "elastic_grid"}], "albumentations", 2, 'not available in backend "albumentations"'),
        ([{"name": "elastic_dense"}], "monai", 2, 'backend "monai" cannot run it on 2D data'),
        ([{"name": "elastic_grid"}], "monai", 3, 'backend "monai" cannot run it on 3D data'),
        ([{"name": "gaussian_noise", "std": [0.01, 0.05]}], "monai", 2, "write [0, 0.05]"),
        ([{"name": "rotate"}], "albumentations", 3, "2D data only"),
        ([{"name": "rotate"}], "torch", 2, "batched on the training device"),
        ([{"name": "rotate"}], "monia", 2, 'Did you mean "monai"?'),
    ],
)
def test_what_a_backend_cannot_do_fails_at_build(pipeline, backend, dims, needle):
    with pytest.raises(ValueError) as e:
        build_sample_transform(pipeline, backend, dims)
    assert needle in str(e.value)


def test_albumentations_refuses_to_clip_images_outside_unit_range():
    sample = blobs(SHAPES[2])
    sample[Keys.IMAGE] = sample[Keys.IMAGE] * 4.0 - 1.0
    geometric = build_sample_transform([{"name": "rotate"}], "albumentations", 2)
    assert geometric(sample, seed=0)[Keys.IMAGE].min() < 0  # geometric transforms keep any range
    with pytest.raises(ValueError, match=r"clips float images to \[0, 1\] in brightness"):
        build_sample_transform([{"name": "brightness"}], "albumentations", 2)(sample, seed=0)


def test_bad_samples_are_named():
    t = build_sample_transform([{"name": "rotate"}], "monai", 2)
    sample = blobs(SHAPES[2])
    with pytest.raises(ValueError, match="sample c01: image must be a float tensor"):
        t({**sample, Keys.IMAGE: sample[Keys.IMAGE][0]}, seed=0)
    with pytest.raises(ValueError, match="label must be an integer tensor shaped like"):
        t({**sample, Keys.LABEL: sample[Keys.LABEL][:10]}, seed=0)
    with pytest.raises(ValueError, match="seed must be an integer"):
        t(sample, seed=-1)
