"""U-Net border weight map: hand-checked values between two objects; the module applies the map."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from weakseg.losses import BorderWeightedCrossEntropyLoss, unet_border_weight_map

W0, SIGMA = 10.0, 5.0


def _two_dots() -> np.ndarray:
    label = np.zeros((5, 5), dtype=np.int64)
    label[2, 0] = label[2, 4] = 1  # two separate objects of class 1, 4 pixels apart
    return label


def _border(d1: float, d2: float) -> float:
    return W0 * math.exp(-((d1 + d2) ** 2) / (2 * SIGMA**2))


MAP_CASES = [  # pixel, background_only, expected weight with class_weights [1, 2]
    ((2, 2), True, 1.0 + _border(2, 2)),  # the peak, midway between the dots
    ((2, 1), True, 1.0 + _border(1, 3)),  # on the line between them d1 + d2 stays 4
    ((0, 2), True, 1.0 + _border(math.sqrt(8), math.sqrt(8))),
    ((0, 0), True, 1.0 + _border(2, math.sqrt(20))),
    ((2, 0), True, 2.0),  # object pixel: class weight only
    ((2, 0), False, 2.0 + _border(0, 4)),
]


@pytest.mark.parametrize("pixel,background_only,expected", MAP_CASES)
def test_weight_map_hand_values(pixel: tuple[int, int], background_only: bool, expected: float) -> None:
    weights = unet_border_weight_map(_two_dots(), W0, SIGMA, [1.0, 2.0], background_only)
    assert weights.dtype == np.float32 and weights.shape == (5, 5)
    assert weights[pixel] == pytest.approx(expected, rel=1e-5)


def test_weight_map_peak_lies_between_the_objects() -> None:
    weights = unet_border_weight_map(_two_dots(), W0, SIGMA, [1.0, 2.0])
    background = np.where(_two_dots() == 0, weights, -np.inf)
    assert np.unravel_index(np.argmax(background), background.shape)[0] == 2
    assert background.max() == pytest.approx(1.0 + _border(2, 2), rel=1e-5)


def test_one_object_has_no_border_term_and_default_weights_balance_classes() -> None:
    label = np.zeros((4, 4), dtype=np.int64)
    label[1:3, 1:3] = 1  # 4 foreground, 12 background pixels
    weights = unet_border_weight_map(label)
    inverse = np.array([16 / 12, 16 / 4])
    expected = (inverse / inverse.mean())[label]
    np.testing.assert_allclose(weights, expected, rtol=1e-6)


def test_touching_classes_are_separate_objects_in_3d() -> None:
    label = np.zeros((3, 3, 6), dtype=np.int64)
    label[:, :, 0] = 1
    label[:, :, 5] = 2
    weights = unet_border_weight_map(label, class_weights=[1.0, 1.0, 1.0])
    assert weights.shape == (3, 3, 6)
    assert weights[1, 1, 2] == pytest.approx(1.0 + _border(2, 3), rel=1e-5)


def test_module_applies_the_map() -> None:
    g = torch.Generator().manual_seed(0)
    target = torch.from_numpy(np.stack([_two_dots(), _two_dots().T]))
    logits = torch.randn(2, 2, 5, 5, generator=g)
    maps = torch.from_numpy(
        np.stack([unet_border_weight_map(t.numpy(), W0, SIGMA, [1.0, 2.0]) for t in target])
    )
    expected = (maps * F.cross_entropy(logits, target, reduction="none")).mean()
    loss = BorderWeightedCrossEntropyLoss(W0, SIGMA, class_weights=[1.0, 2.0], num_classes=2)
    assert loss(logits, target).item() == pytest.approx(expected.item(), rel=1e-6)


BAD = [  # kwargs, message
    ({"w0": -1.0}, "w0 must be >= 0"),
    ({"sigma": 0.0}, "sigma must be > 0"),
    ({"class_weights": [1.0]}, "contains class 1 but class_weights has only 1"),
]


@pytest.mark.parametrize("kwargs,match", BAD)
def test_weight_map_bad_flags(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        unet_border_weight_map(_two_dots(), **kwargs)


def test_weight_map_rejects_float_labels() -> None:
    with pytest.raises(ValueError, match="2D or 3D integer array"):
        unet_border_weight_map(np.zeros((4, 4), dtype=np.float32))
