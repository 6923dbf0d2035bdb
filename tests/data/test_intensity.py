from __future__ import annotations

import numpy as np
import pytest

from weakseg.config import DataConfig, IntensityConfig
from weakseg.data import DataError, Preset, ct_window, mr_percentile, resolve_preset, rgb, scale
from weakseg.data.intensity import source_kind_of


@pytest.mark.parametrize(
    "hu, level, width, expected",
    [
        ([-1000.0, -160.0, 40.0, 240.0, 700.0], 40, 400, [0.0, 0.0, 0.5, 1.0, 1.0]),
        ([-60.0, 140.0], 40, 400, [0.25, 0.75]),
        ([0.0, 50.0, 100.0], 50, 100, [0.0, 0.5, 1.0]),
    ],
)
def test_ct_window(hu, level, width, expected):
    out = ct_window(np.array(hu), level, width)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_ct_window_rejects_zero_width():
    with pytest.raises(ValueError, match="width"):
        ct_window(np.zeros(2), 40, 0)


def test_mr_percentile():
    image = np.arange(101, dtype=np.float32)  # percentile p of 0..100 is p
    out = mr_percentile(image, 10, 90)
    np.testing.assert_allclose(out[[0, 10, 50, 90, 100]], [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-6)
    assert mr_percentile(np.full(4, 7.0), 1, 99).tolist() == [0, 0, 0, 0]  # constant image


def test_scale_and_rgb():
    np.testing.assert_allclose(scale(np.array([0, 51, 255], np.uint8), 255), [0.0, 0.2, 1.0], atol=1e-6)
    np.testing.assert_allclose(rgb(np.array([[[255]], [[0]], [[102]]], np.uint8)).ravel(), [1.0, 0.0, 0.4])


def test_mr_percentile_preset_is_per_channel():
    ramp = np.arange(101.0)
    image = np.stack([ramp, ramp * 1000 + 5])[:, None]  # (C=2,H=1,W=101): very different channel ranges
    out = Preset("mr_percentile", (0.0, 100.0))(image)
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)


@pytest.mark.parametrize(
    "preset, kind, expected",
    [
        ("auto", "phantom_ct", Preset("ct_window", (40.0, 400.0))),
        ("auto", "ct", Preset("ct_window", (40.0, 400.0))),
        ("auto", "phantom_mr", Preset("mr_percentile", (0.5, 99.5))),
        ("auto", "uint8", Preset("scale", (255.0,))),
        ("auto", "unit_range", Preset("none")),
        ("rgb", "uint8", Preset("rgb")),
        ("ct_window", "other", Preset("ct_window", (40.0, 400.0))),
    ],
)
def test_resolve_preset(preset, kind, expected):
    assert resolve_preset(DataConfig(intensity=IntensityConfig(preset=preset)), kind) == expected


def test_auto_refuses_to_guess_for_raw_floats():
    with pytest.raises(DataError, match="ct_window .*or mr_percentile"):
        resolve_preset(DataConfig(), "other", where="the values of x.nii.gz")


def test_unknown_preset_suggests():
    with pytest.raises(DataError, match='Did you mean "ct_window"'):
        resolve_preset(DataConfig(intensity=IntensityConfig(preset="ct_windw")), "uint8")


@pytest.mark.parametrize(
    "array, kind",
    [
        (np.array([0, 255], np.uint8), "uint8"),
        (np.array([0.0, 1.0], np.float32), "unit_range"),
        (np.array([-1000, 400], np.int16), "other"),
        (np.array([0, 4095], np.uint16), "other"),
    ],
)
def test_source_kind_of(array, kind):
    assert source_kind_of(array) == kind
