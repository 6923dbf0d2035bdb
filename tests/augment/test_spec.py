"""The augmentation schema: bad pipelines fail when the config loads, naming the entry and the fix."""

from __future__ import annotations

import pytest

from weakseg.augment.spec import TRANSFORMS, normalize_transform, validate_pipeline
from weakseg.config import ConfigError, load_config


@pytest.mark.parametrize(
    "entry, needle",
    [
        ("{name: rotat}", 'unknown transform "rotat". Did you mean "rotate"?'),
        (
            "{name: rotate, degrees: [10, -10]}",
            "range degrees is given backwards (10 > -10); write [-10, 10]",
        ),
        ("{name: gamma, p: 1.5}", "probability p must be a number in [0, 1], got 1.5"),
        ("{name: gamma, p: -0.1}", "probability p must be a number in [0, 1]"),
        ("{name: flip, axes: [2]}", "a 3D axis on 2D data?"),
        ("{name: crop, size: [64, 64, 64]}", "size must list 2 integers for 2D data"),
        ("{name: hue}", "needs RGB images"),
        ("{name: rotate, degree: [1, 2]}", 'unknown parameter "degree". Did you mean "degrees"?'),
        ("{name: smooth, kernel: 4}", "kernel must be an odd integer"),
        ("{name: scale, factor: [0, 1]}", "factor must be > 0"),
        ("rotate", "expected a mapping"),
    ],
)
def test_bad_pipeline_fails_at_config_load(entry, needle):
    with pytest.raises(ConfigError) as e:
        load_config(None, [f"augment.transforms=[{entry}]"])
    assert needle in str(e.value) and "augment.transforms[0]" in str(e.value)


def test_bad_backend_and_stream():
    with pytest.raises(ConfigError, match='Did you mean "torch"'):
        load_config(None, ["augment.backend=troch"])
    with pytest.raises(ValueError, match="2D data only"):
        validate_pipeline([], "albumentations", spatial_dims=3, in_channels=1)
    with pytest.raises(ConfigError, match='augment.streams lists "val"'):
        load_config(None, ["augment.streams=[val]"])


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_defaults_are_valid_and_idempotent(name):
    dims = TRANSFORMS[name].dims[0]
    channels = 3 if TRANSFORMS[name].rgb_only else 1
    entry = normalize_transform({"name": name}, "t", dims, channels)
    assert normalize_transform(entry, "t", dims, channels) == entry
    assert entry["p"] == 1.0 and set(TRANSFORMS[name].params) <= set(entry)
