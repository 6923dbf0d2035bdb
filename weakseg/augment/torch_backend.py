"""The ``torch`` augmentation backend: batched on the training device, after the loader.

    aug = BatchAugment(validate_pipeline(cfg, "torch", 2, 1), spatial_dims=2, swap_labels=[[2, 3]])
    out = aug({Keys.IMAGE: x, Keys.LABEL: y}, torch.Generator().manual_seed(step))  # x (B,C,H,W), y (B,H,W)

Hand-written on purpose: no library composes affine + elastic + crop into ONE sampling grid per sample and
warps image (bilinear), labels (nearest) and weight maps (bilinear) with that same grid in one pass, batched,
2D and 3D (kornia is 2D-first and warps per transform; MONAI/TorchIO/albumentations work per sample on CPU).

- Every random number comes from the CPU ``generator`` in a fixed order (per transform, in pipeline order:
  B uniform "does it fire" draws, then the parameters of all B samples, fired or not), so one seed gives the
  same result on CPU and GPU, and a sample's draws never depend on what fired for the others. Big fields
  (dense elastic, noise) come from per-sample CPU generators seeded from ``generator``.
- Geometric transforms compose into ``x_in = A (q + o) + t + displacement(q)`` (see ``grids.py`` for the
  axes and directions): 2D (H, W), 3D (H, W, D); axis 1 is left-right (its flips swap ``swap_labels``).
  Samples with only flips/crops (or nothing) are indexed exactly; the others go through ``grid_sample``
  (zeros padding, align_corners=False). A batch with no geometric change returns the input tensors as is.
- Intensity transforms run after the warp, in their listed order, on the image only; ``label_to_image``
  (SynthSeg) replaces the image by one drawn from the warped label, in its place in that order.
- ``p`` is per sample. flip: all listed axes mirror together. crop: the output size is always ``size``;
  the window is random where it fires and centred elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from weakseg.augment import appearance, grids
from weakseg.augment import torch_intensity as intensity
from weakseg.augment.labels import check_swap_pairs, swap_label_pairs
from weakseg.augment.spec import TRANSFORMS, normalize_transform
from weakseg.augment.synthseg import labels_to_image
from weakseg.keys import Keys

__all__ = ["BatchAugment"]

_LATTICE = ("flip", "crop")  # geometric transforms that move pixels onto pixels exactly
_ONE_PARAM = {"brightness": "shift", "contrast": "factor", "gamma": "gamma", "saturation": "factor",
              "hue": "shift", "gaussian_blur": "sigma", "gaussian_noise": "std"}  # fmt: skip
# appearance randomisation (weakseg/augment/appearance.py) and label-to-image synthesis: the range drawn per
# sample in the plan (None: only the per-sample seed)
_APPEARANCE = {"gin": "alpha", "intensity_curve": None, "bias_field": "strength", "label_to_image": None}
_ONE_PARAM_FN = {"brightness": intensity.brightness, "contrast": intensity.contrast, "gamma": intensity.gamma,
                 "saturation": intensity.saturation, "hue": intensity.hue, "gaussian_blur": intensity.blur}  # fmt: skip


@dataclass
class _Plan:
    """Everything drawn for one batch (CPU tensors), before any pixel is touched."""

    affine: torch.Tensor  # (B, d+1, d+1) pull map, pixels
    starts: torch.Tensor  # (B, d) crop window start per axis (negative = zero padding)
    warp: torch.Tensor  # (B,) bool: needs grid_sample (something beyond flip/crop fired)
    lr_flip: torch.Tensor  # (B,) bool: odd number of left-right flips
    coarse: list[torch.Tensor] = field(default_factory=list)  # elastic_grid displacements (B, d, g..) px
    dense: list[tuple[torch.Tensor, torch.Tensor, float, float]] = field(default_factory=list)
    intensity: list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]] = field(default_factory=list)
    params: dict[str, dict] = field(default_factory=dict)  # the entries of the appearance transforms


def _uniform(g: torch.Generator, bounds: Sequence[float], *shape: int) -> torch.Tensor:
    lo, hi = float(bounds[0]), float(bounds[1])
    return lo + (hi - lo) * torch.rand(shape, generator=g, dtype=torch.float64)


def _seeds(g: torch.Generator, b: int) -> torch.Tensor:
    return torch.randint(0, 2**62, (b,), generator=g)


def _fields(seeds: torch.Tensor, fire: torch.Tensor, shape: tuple[int, ...], normal: bool) -> torch.Tensor:
    """Per fired sample, a field drawn from its own CPU generator (uniform(-1, 1) or standard normal)."""
    chosen = seeds[fire].tolist()
    out = torch.empty((len(chosen), *shape))
    for row, s in zip(out, chosen):
        sub = torch.Generator().manual_seed(s)
        row.normal_(generator=sub) if normal else row.uniform_(-1.0, 1.0, generator=sub)
    return out


class BatchAugment:
    """Batched augmentation of ``{IMAGE: (B,C,*S) float, LABEL: (B,*S) int64, WEIGHT: (B,*S) float, ...}``."""

    def __init__(self, transforms: list[dict], spatial_dims: int, swap_labels: Sequence[Sequence[int]] = ()):
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
        self.dims = spatial_dims
        self.transforms = [
            normalize_transform(t, f"augment.transforms[{i}]", spatial_dims) for i, t in enumerate(transforms)
        ]
        if sum(t["name"] == "crop" for t in self.transforms) > 1:
            raise ValueError(
                "augment.transforms lists crop more than once; keep one crop (it sets the output size)"
            )
        self.swap_labels = check_swap_pairs(swap_labels)

    def __repr__(self) -> str:
        return f"BatchAugment({[t['name'] for t in self.transforms]}, spatial_dims={self.dims})"

    # ---- drawing
    def plan(
        self, b: int, in_size: tuple[int, ...], generator: torch.Generator
    ) -> tuple[_Plan, tuple[int, ...]]:
        """Draw every random parameter for a batch of ``b`` samples of spatial size ``in_size``."""
        g, d = generator, self.dims
        crop = next((t for t in self.transforms if t["name"] == "crop"), None)
        out_size = tuple(crop["size"]) if crop else in_size
        diff = torch.tensor([n_in - n_out for n_in, n_out in zip(in_size, out_size)], dtype=torch.float64)
        plan = _Plan(grids.identity(b, d), torch.floor(diff / 2).expand(b, d).clone(),
                     torch.zeros(b, dtype=torch.bool), torch.zeros(b, dtype=torch.bool))  # fmt: skip
        for t in self.transforms:
            name, kind = t["name"], TRANSFORMS[t["name"]].kind
            fire = torch.rand(b, generator=g, dtype=torch.float64) < t["p"]
            if kind == "geometric" and name not in _LATTICE:
                plan.warp |= fire
            m = None
            if name == "rotate":
                m = grids.rotation_matrix(_uniform(g, t["degrees"], b), d)
            elif name == "shear":
                m = grids.shear_matrix(_uniform(g, t["degrees"], b, 2), d)
            elif name == "scale":
                m = grids.scale_matrix(_uniform(g, t["factor"], b), d)
            elif name == "translate":
                m = grids.translation_matrix(_uniform(g, t["fraction"], b, d) * torch.tensor(in_size))
            elif name == "flip":
                signs = torch.ones(b, d, dtype=torch.float64)
                signs[:, t["axes"]] = -1.0
                m = grids.flip_matrix(signs)
                if 1 in t["axes"]:
                    plan.lr_flip ^= fire
            elif name == "crop":
                u = torch.rand(b, d, generator=g, dtype=torch.float64)
                lo, hi = diff.clamp(max=0), diff.clamp(min=0)
                start = torch.minimum(lo + torch.floor(u * (hi - lo + 1)), hi)
                plan.starts = torch.where(fire[:, None], start, plan.starts)
            elif name == "elastic_grid":
                noise = torch.randn(b, d, *[t["grid"]] * d, generator=g, dtype=torch.float64) * t["sigma"]
                plan.coarse.append(noise * fire.view(-1, *[1] * (d + 1)))
            elif name == "elastic_dense":
                plan.dense.append((fire, _seeds(g, b), float(t["sigma"]), float(t["alpha"])))
            elif name == "smooth":
                kernel = torch.full((b,), float(t["kernel"]), dtype=torch.float64)
                plan.intensity.append((name, fire, kernel, torch.zeros(b, dtype=torch.int64)))
            elif name in _ONE_PARAM:
                value = _uniform(g, t[_ONE_PARAM[name]], b)
                seeds = _seeds(g, b) if name == "gaussian_noise" else torch.zeros(b, dtype=torch.int64)
                plan.intensity.append((name, fire, value, seeds))
            elif name in _APPEARANCE:  # one CPU generator per sample draws its network / curve / field
                key = _APPEARANCE[name]
                value = _uniform(g, t[key], b) if key else torch.zeros(b, dtype=torch.float64)
                plan.intensity.append((name, fire, value, _seeds(g, b)))
                plan.params[name] = t
            else:  # a transform added to spec.TRANSFORMS without an implementation here
                raise NotImplementedError(f'transform "{name}" has no torch implementation yet')
            if m is not None:
                plan.affine = plan.affine @ torch.where(fire[:, None, None], m, grids.identity(b, d))
        return plan, out_size

    # ---- applying
    def __call__(self, batch: dict, generator: torch.Generator) -> dict:
        image = batch[Keys.IMAGE]
        self._check(batch, generator)
        b, in_size = image.shape[0], tuple(image.shape[2:])
        plan, out_size = self.plan(b, in_size, generator)
        out = dict(batch)
        with torch.autocast(image.device.type, enabled=False):
            img = image.float()
            label, weight = batch.get(Keys.LABEL), batch.get(Keys.WEIGHT)
            flipped = (plan.affine.diagonal(dim1=1, dim2=2)[:, :-1] != 1).any()
            moved = bool(plan.warp.any() or flipped) or out_size != in_size
            if moved:
                img, label, weight = self._geometry(plan, img, label, weight, out_size)
                if label is not None:
                    out[Keys.LABEL] = label
                if weight is not None:
                    out[Keys.WEIGHT] = weight.to(batch[Keys.WEIGHT].dtype)
            for name, fire, value, seeds in plan.intensity:
                if name == "label_to_image":
                    img = self._synthesise(img, out.get(Keys.LABEL), fire, seeds, plan.params[name])
                else:
                    img = self._intensity(img, name, fire, value, seeds, plan.params.get(name))
        out[Keys.IMAGE] = img.to(image.dtype) if (moved or plan.intensity) else image
        return out

    def _check(self, batch: dict, generator: torch.Generator) -> None:
        if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
            raise ValueError("BatchAugment needs a CPU torch.Generator (torch.Generator().manual_seed(seed))")
        image = batch.get(Keys.IMAGE)
        if not torch.is_tensor(image) or image.ndim != self.dims + 2 or not image.is_floating_point():
            got = tuple(image.shape) if torch.is_tensor(image) else type(image).__name__
            raise ValueError(f"batch[{Keys.IMAGE}] must be a float tensor (B, C, *S) with {self.dims} spatial "
                             f"dims, got {got}")  # fmt: skip
        rgb = [t["name"] for t in self.transforms if TRANSFORMS[t["name"]].rgb_only]
        if rgb and image.shape[1] != 3:
            raise ValueError(
                f"{', '.join(rgb)} needs RGB images (3 channels), got {image.shape[1]} channel(s)"
            )
        for key in (Keys.LABEL, Keys.WEIGHT):
            v = batch.get(key)
            if v is not None and (v.shape[0] != image.shape[0] or v.shape[1:] != image.shape[2:]):
                raise ValueError(f"batch[{key}] is {tuple(v.shape)}, image is {tuple(image.shape)}: it must be "
                                 f"(B, *S) = {(image.shape[0], *image.shape[2:])}")  # fmt: skip

    def _geometry(self, plan: _Plan, img, label, weight, out_size):
        """Warp image (+weight, bilinear) and label (nearest) with one grid; flips/crops-only samples exactly."""
        dev = img.device
        stack = img if weight is None else torch.cat([img, weight[:, None].float()], dim=1)
        targets = [(stack, "bilinear")] + ([(label[:, None].float(), "nearest")] if label is not None else [])
        warp_idx, exact_idx = plan.warp.nonzero()[:, 0], (~plan.warp).nonzero()[:, 0]
        if not len(exact_idx):  # the common case: every sample warps, no gathering
            results = self._warp(plan, warp_idx, [x for x, _ in targets], [m for _, m in targets], out_size)
        elif not len(warp_idx):
            results = [self._exact(plan, exact_idx, x, out_size) for x, _ in targets]
        else:
            results = [x.new_zeros((x.shape[0], x.shape[1], *out_size)) for x, _ in targets]
            dev_w, dev_e = warp_idx.to(dev), exact_idx.to(dev)
            warped = self._warp(
                plan, warp_idx, [x[dev_w] for x, _ in targets], [m for _, m in targets], out_size
            )
            for (x, _), res, part in zip(targets, results, warped):
                res.index_copy_(0, dev_w, part)
                res.index_copy_(0, dev_e, self._exact(plan, exact_idx, x[dev_e], out_size))
        stack = results[0]
        img, weight = (stack, None) if weight is None else (stack[:, :-1], stack[:, -1])
        if label is not None:  # nearest sampling returns the exact label values (and 0 outside)
            label = self._swap(results[1][:, 0].to(label.dtype), plan.lr_flip)
        return img, label, weight

    def _exact(self, plan: _Plan, idx: torch.Tensor, x: torch.Tensor, out_size) -> torch.Tensor:
        signs = plan.affine[idx].diagonal(dim1=1, dim2=2)[:, :-1]
        return grids.lattice_resample(x, signs, plan.starts[idx], out_size)

    def _warp(self, plan: _Plan, idx: torch.Tensor, xs: list, modes: list, out_size) -> list[torch.Tensor]:
        """grid_sample the samples ``idx`` (already selected in ``xs``) with their composed grid."""
        dev, in_size = xs[0].device, tuple(xs[0].shape[2:])
        centre = torch.tensor(
            [(o - 1) / 2 - (i - 1) / 2 for i, o in zip(in_size, out_size)], dtype=torch.float64
        )
        disp = self._displacement(plan, idx, in_size, out_size, dev)
        grid = grids.sampling_grid(plan.affine[idx], plan.starts[idx] + centre, disp, in_size, out_size, dev)
        return [
            F.grid_sample(x, grid, mode=m, padding_mode="zeros", align_corners=False)
            for x, m in zip(xs, modes)
        ]

    def _displacement(self, plan: _Plan, idx: torch.Tensor, in_size, out_size, dev) -> torch.Tensor | None:
        """Sum of the elastic fields (len(idx), d, *out_size) in grid_sample units, or None when none fired."""
        unit = grids.pixels_to_normalised(in_size)  # scales the coarse grid / alpha: cheaper than the field
        disp = None
        for coarse in plan.coarse:
            c = coarse[idx]
            if c.abs().sum() > 0:
                c = c * unit.view(1, -1, *[1] * self.dims)
                f = grids.elastic_grid_field(c.float().to(dev), out_size)
                disp = f if disp is None else disp + f
        for fire, seeds, sigma, alpha in plan.dense:
            sub = fire[idx]
            if sub.any():
                noise = _fields(seeds[idx], sub, (self.dims, *out_size), normal=False).to(dev)
                f = grids.elastic_dense_field(noise, sigma, (alpha * unit).float())
                if not sub.all():
                    f = noise.new_zeros((len(idx), self.dims, *out_size)).index_copy_(
                        0, sub.nonzero()[:, 0].to(dev), f
                    )
                disp = f if disp is None else disp + f
        return disp

    def _swap(self, label: torch.Tensor, flipped: torch.Tensor) -> torch.Tensor:
        """Exchange the values of each ``swap_labels`` pair in the samples ``flipped`` (B,) (CPU) marks."""
        if not self.swap_labels or not bool(flipped.any()):
            return label
        return swap_label_pairs(label, self.swap_labels, flipped.to(label.device).view(-1, *[1] * self.dims))

    def _synthesise(self, img, label, fire, seeds, t: dict) -> torch.Tensor:
        """``label_to_image``: the fired samples' images are redrawn from their (already warped) labels."""
        if label is None:
            raise ValueError(
                "augment.transforms: label_to_image draws images from label maps, but this stream has no labels "
                "(keep it to augment.streams: [labeled])"
            )
        idx = fire.nonzero()[:, 0]
        if not len(idx):
            return img
        keys = ("mean", "std", "blur", "bias", "resolution", "noise", "gamma")
        g = torch.Generator().manual_seed(int(seeds[idx[0]]))
        dev_idx = idx.to(img.device)
        synth = labels_to_image(label[dev_idx], g, t["num_classes"], img.shape[1], **{k: t[k] for k in keys})
        return img.index_copy(0, dev_idx, synth.to(img.dtype))

    def _intensity(self, img, name, fire, value, seeds, t: dict | None = None) -> torch.Tensor:
        idx = fire.nonzero()[:, 0]
        if not len(idx):
            return img
        dev_idx = idx.to(img.device)
        x, v = img[dev_idx], value[idx].float().to(img.device)
        if name == "gin":
            return img.index_copy(
                0, dev_idx, appearance.gin(x, seeds[idx].tolist(), v, t["layers"], t["channels"])
            )
        if name == "intensity_curve":
            y = appearance.intensity_curve(x, seeds[idx].tolist(), t["knots"], t["monotone_p"])
            return img.index_copy(0, dev_idx, y)
        if name == "bias_field":
            return img.index_copy(0, dev_idx, appearance.bias_field(x, seeds[idx].tolist(), v, t["grid"]))
        if name == "smooth":
            y = intensity.median(x, int(value[0]))
        elif name == "gaussian_noise":
            unit = _fields(
                seeds[idx], torch.ones(len(idx), dtype=torch.bool), tuple(x.shape[1:]), normal=True
            )
            y = intensity.noise(x, v, unit.to(img.device))
        else:
            y = _ONE_PARAM_FN[name](x, v)
        return img.index_copy(0, dev_idx, y)
