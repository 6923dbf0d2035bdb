"""The one augmentation schema every backend reads: transform names, their parameters and validation.

A pipeline is a list of entries in the config, checked when the config loads:

    augment:
      backend: torch            # torch (batched, on the training device) | albumentations | monai (per sample, CPU)
      transforms:
        - {name: rotate, p: 0.5, degrees: [-15, 15]}
        - {name: elastic_grid, p: 0.3, grid: 3, sigma: 10}
        - {name: gamma, p: 0.3, gamma: [0.7, 1.5]}

Geometric transforms draw their random parameters once per sample and apply them to the image and every
label-like key (nearest interpolation for labels); intensity transforms never see a label. Ranges are
``[low, high]`` and a value is drawn uniformly from them. See docs/augment.md for the mapping to each backend.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from weakseg.registry import suggest

__all__ = [
    "BACKENDS",
    "TRANSFORMS",
    "TransformSpec",
    "check_config",
    "normalize_transform",
    "validate_pipeline",
]

BACKENDS = ("torch", "albumentations", "monai")


@dataclass(frozen=True)
class TransformSpec:
    """What a transform is: ``kind`` geometric | intensity; its parameters with defaults; where it applies."""

    kind: str
    params: dict[str, Any]
    ranges: tuple[str, ...] = ()  # params that are [low, high] ranges (low <= high)
    positive: tuple[str, ...] = ()  # params (or both ends of ranges) that must be > 0
    dims: tuple[int, ...] = (2, 3)
    rgb_only: bool = False
    doc: str = ""
    backends: tuple[str, ...] = BACKENDS
    unsupported: tuple[tuple[str, int], ...] = ()  # (backend, spatial_dims) pairs that cannot run it


TRANSFORMS: dict[str, TransformSpec] = {
    # ---- intensity (image only)
    "gaussian_blur": TransformSpec(
        "intensity", {"sigma": [0.5, 1.5]}, ("sigma",), ("sigma",), doc="Gaussian blur, sigma in pixels"
    ),
    "gaussian_noise": TransformSpec(
        "intensity",
        {"std": [0.0, 0.05]},
        ("std",),
        doc="additive Gaussian noise, std in normalised intensity units",
    ),
    "smooth": TransformSpec(
        "intensity", {"kernel": 3}, (), ("kernel",), doc="denoising: median filter of an odd kernel size"
    ),
    "brightness": TransformSpec("intensity", {"shift": [-0.1, 0.1]}, ("shift",), doc="add a constant"),
    "contrast": TransformSpec(
        "intensity", {"factor": [0.75, 1.25]}, ("factor",), ("factor",), doc="scale around the image mean"
    ),
    "gamma": TransformSpec(
        "intensity",
        {"gamma": [0.7, 1.5]},
        ("gamma",),
        ("gamma",),
        doc="x -> min + (max-min) * ((x-min)/(max-min))**gamma, per image",
    ),
    "saturation": TransformSpec(
        "intensity",
        {"factor": [0.7, 1.3]},
        ("factor",),
        ("factor",),
        dims=(2,),
        rgb_only=True,
        doc="RGB saturation factor",
        backends=("torch", "albumentations"),  # MONAI has no colour transforms
    ),
    "hue": TransformSpec(
        "intensity",
        {"shift": [-0.05, 0.05]},
        ("shift",),
        dims=(2,),
        rgb_only=True,
        doc="RGB hue shift, fraction of the colour circle",
        backends=("torch", "albumentations"),  # MONAI has no colour transforms
    ),
    # ---- appearance randomisation (weakseg/augment/appearance.py; image only, output kept in the input range)
    "gin": TransformSpec(
        "intensity",
        {"alpha": [0.0, 1.0], "layers": 4, "channels": 4},
        ("alpha",),
        ("layers", "channels"),
        doc="random shallow conv network per sample (GIN), blended with the input by alpha",
        backends=("torch",),
    ),
    "intensity_curve": TransformSpec(
        "intensity",
        {"knots": 6, "monotone_p": 0.5},
        doc="random piecewise-linear intensity curve; monotone (up or down) with probability monotone_p",
        backends=("torch",),
    ),
    "bias_field": TransformSpec(
        "intensity",
        {"strength": [0.0, 0.3], "grid": 4},
        ("strength",),
        ("grid",),
        doc="smooth multiplicative field exp(f), f of std `strength` on a grid^d coarse grid",
        backends=("torch",),
    ),
    # ---- synthesis (weakseg/augment/synthseg.py): the image is redrawn from the label map (labeled stream)
    "label_to_image": TransformSpec(
        "synthesis",
        {
            "mean": [0.0, 1.0],
            "std": [0.0, 0.08],
            "blur": [0.0, 1.0],
            "bias": [0.0, 0.3],
            "resolution": [1.0, 2.5],
            "noise": [0.0, 0.04],
            "gamma": [0.7, 1.5],
            "num_classes": None,
        },  # fmt: skip
        ("mean", "std", "blur", "bias", "resolution", "noise", "gamma"),
        doc="SynthSeg: per-label Gaussian intensities, blur, bias field, resolution change, noise, gamma",
        backends=("torch",),
    ),
    # ---- geometric (image + labels, one draw)
    "rotate": TransformSpec(
        "geometric",
        {"degrees": [-15.0, 15.0]},
        ("degrees",),
        doc="in-plane rotation (3D: about the last axis)",
    ),
    "translate": TransformSpec(
        "geometric", {"fraction": [-0.1, 0.1]}, ("fraction",), doc="shift per axis, fraction of the size"
    ),
    "shear": TransformSpec("geometric", {"degrees": [-10.0, 10.0]}, ("degrees",), doc="shear angle"),
    "scale": TransformSpec(
        "geometric", {"factor": [0.85, 1.15]}, ("factor",), ("factor",), doc="zoom factor"
    ),
    "flip": TransformSpec(
        "geometric",
        {"axes": [1]},
        doc="mirror along each listed spatial axis "
        "(0 = rows/up-down, 1 = columns/left-right, 2 = depth); data.swap_labels are swapped "
        "on a left-right flip",
    ),
    "crop": TransformSpec(
        "geometric",
        {"size": [128, 128]},
        (),
        ("size",),
        doc="random crop (or zero pad) to a fixed spatial size",
    ),
    "elastic_grid": TransformSpec(
        "geometric",
        {"grid": 3, "sigma": 10.0},
        (),
        ("grid", "sigma"),
        doc="U-Net form: random displacements with std `sigma` px on a grid x grid "
        "coarse grid, interpolated smoothly (bicubic)",
        # albumentations has no smooth control-grid warp; MONAI's is 2D only (Rand3DElastic is the dense form)
        backends=("torch", "monai"),
        unsupported=(("monai", 3),),
    ),
    "elastic_dense": TransformSpec(
        "geometric",
        {"alpha": 34.0, "sigma": 4.0},
        (),
        ("alpha", "sigma"),
        doc="Simard form: a dense uniform(-1, 1) field smoothed by a Gaussian of "
        "std `sigma` px, scaled by `alpha` px",
        unsupported=(("monai", 2),),  # MONAI's dense form is Rand3DElastic only
    ),
}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def normalize_transform(
    entry: Any,
    where: str,
    spatial_dims: int | None = None,
    in_channels: int | None = None,
    backend: str = "torch",
) -> dict[str, Any]:
    """Check one pipeline entry and return it with defaults filled in; errors name the entry and the fix."""
    if not isinstance(entry, dict) or "name" not in entry:
        raise ValueError(
            f"{where}: each transform is a mapping with a name, e.g. {{name: rotate, p: 0.5}}; got {entry!r}"
        )
    name = entry["name"]
    if name not in TRANSFORMS:
        raise ValueError(
            f'{where}: unknown transform "{name}".{suggest(str(name), list(TRANSFORMS))} '
            f"Valid transforms: {', '.join(TRANSFORMS)}"
        )
    spec = TRANSFORMS[name]
    out: dict[str, Any] = {
        "name": name,
        "p": 1.0,
        **copy.deepcopy(spec.params),
    }  # never hand out the defaults
    for key, value in entry.items():
        if key in ("name",):
            continue
        if key not in out:
            valid = ["p", *spec.params]
            raise ValueError(
                f'{where} ({name}): unknown parameter "{key}".{suggest(key, valid)} '
                f"Valid parameters: {', '.join(valid)}"
            )
        out[key] = value
    p = out["p"]
    if not _is_number(p) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{where} ({name}): probability p must be a number in [0, 1], got {p!r}")
    for key in spec.ranges:
        r = out[key]
        if not (isinstance(r, (list, tuple)) and len(r) == 2 and all(_is_number(v) for v in r)):
            raise ValueError(f"{where} ({name}): {key} must be a range [low, high], got {r!r}")
        if r[0] > r[1]:
            raise ValueError(
                f"{where} ({name}): range {key} is given backwards ({r[0]} > {r[1]}); write [{r[1]}, {r[0]}]"
            )
        out[key] = [float(r[0]), float(r[1])]
    for key in spec.positive:
        values = out[key] if isinstance(out[key], (list, tuple)) else [out[key]]
        if not all(_is_number(v) and v > 0 for v in values):
            raise ValueError(f"{where} ({name}): {key} must be > 0, got {out[key]!r}")
    if name == "smooth" and (not isinstance(out["kernel"], int) or out["kernel"] % 2 == 0):
        raise ValueError(f"{where} (smooth): kernel must be an odd integer, got {out['kernel']!r}")
    for key, low in {"layers": 1, "channels": 1, "knots": 2, "grid": 2}.items():
        if name in ("gin", "intensity_curve", "bias_field") and key in out:
            if isinstance(out[key], bool) or not isinstance(out[key], int) or out[key] < low:
                raise ValueError(f"{where} ({name}): {key} must be an integer >= {low}, got {out[key]!r}")
    if name == "intensity_curve" and not (_is_number(out["monotone_p"]) and 0 <= out["monotone_p"] <= 1):
        raise ValueError(
            f"{where} (intensity_curve): monotone_p must be in [0, 1], got {out['monotone_p']!r}"
        )
    if name == "label_to_image" and out["num_classes"] is not None:
        n = out["num_classes"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise ValueError(
                f"{where} (label_to_image): num_classes must be an integer >= 2 or null, got {n!r}"
            )
    if name == "elastic_grid" and (not isinstance(out["grid"], int) or out["grid"] < 2):
        raise ValueError(f"{where} (elastic_grid): grid must be an integer >= 2, got {out['grid']!r}")
    if spatial_dims is not None:
        if spatial_dims not in spec.dims:
            raise ValueError(
                f"{where} ({name}): works on {' or '.join(f'{d}D' for d in spec.dims)} data, "
                f"but the data is {spatial_dims}D"
            )
        if name == "flip":
            axes = out["axes"]
            if (
                not isinstance(axes, list)
                or not axes
                or not all(isinstance(a, int) and 0 <= a < spatial_dims for a in axes)
            ):
                raise ValueError(
                    f"{where} (flip): axes must list spatial axes in 0..{spatial_dims - 1} for "
                    f"{spatial_dims}D data, got {axes!r} (a 3D axis on 2D data?)"
                )
        if name == "crop":
            size = out["size"]
            if (
                not isinstance(size, list)
                or len(size) != spatial_dims
                or not all(isinstance(s, int) for s in size)
            ):
                raise ValueError(
                    f"{where} (crop): size must list {spatial_dims} integers for {spatial_dims}D "
                    f"data, got {size!r}"
                )
    if spec.rgb_only and in_channels is not None and in_channels != 3:
        raise ValueError(
            f"{where} ({name}): needs RGB images (data.in_channels: 3), got {in_channels} channel(s)"
        )
    if backend not in spec.backends:
        raise ValueError(
            f'{where} ({name}): not available in backend "{backend}"; use one of {spec.backends}'
        )
    if spatial_dims is not None and (backend, spatial_dims) in spec.unsupported:
        raise ValueError(
            f'{where} ({name}): backend "{backend}" cannot run it on {spatial_dims}D data; use backend '
            f'"torch" (see docs/augment.md for what each backend maps)'
        )
    return out


def validate_pipeline(
    transforms: list, backend: str, spatial_dims: int, in_channels: int, where: str = "augment.transforms"
) -> list[dict[str, Any]]:
    """All entries checked and completed with defaults (what the backends build from)."""
    if backend not in BACKENDS:
        raise ValueError(
            f'augment.backend "{backend}" is unknown.{suggest(backend, list(BACKENDS))} '
            f"Valid backends: {', '.join(BACKENDS)}"
        )
    if backend == "albumentations" and spatial_dims != 2:
        raise ValueError(
            'augment.backend "albumentations" works on 2D data only; use "torch" or "monai" for 3D'
        )
    return [
        normalize_transform(t, f"{where}[{i}]", spatial_dims, in_channels, backend)
        for i, t in enumerate(transforms)
    ]


def check_config(cfg) -> None:
    """The config check of ``augment`` (entry point of group ``weakseg.config_checks``): names, ranges and
    backend restrictions of every ``augment.transforms`` entry for the data's dimensions and channels."""
    from weakseg.augment.outside import OutsideTransform, split_outside

    d = cfg.data
    outside, own = split_outside(cfg.augment.transforms)
    validate_pipeline(own, cfg.augment.backend, d.spatial_dims, d.in_channels)
    if outside:
        OutsideTransform(
            outside, d.spatial_dims
        )  # imports and builds them: a wrong name or argument fails now
