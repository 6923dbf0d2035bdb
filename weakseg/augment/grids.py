"""Sampling-grid geometry for the batched torch backend: affine matrices, elastic fields, one grid, warping.

Conventions (pure functions, batched over the first dimension):
- Spatial axes are in data order, 2D (H, W) and 3D (H, W, D): axis 0 = rows (up-down), axis 1 = columns
  (left-right), axis 2 = depth (slices). ``grid_sample`` wants its coordinates in the reverse order (x = last
  axis first); only :func:`sampling_grid` converts.
- Matrices are *pull* maps in pixel units about the image centre: the output pixel at centred position ``q``
  reads the input at ``A[:d, :d] @ q + A[:d, d]``. Composing transforms T1 then T2 (pipeline order) is
  ``A1 @ A2``. Homogeneous shape (B, d+1, d+1), float64 on the CPU (tiny; moved to the device once).
- Rotation and shear act in the (H, W) plane (3D: about the depth axis). Positive degrees turn the picture
  counter-clockwise as displayed with row 0 on top, i.e. ``torch.rot90(x, 1, dims=(0, 1))`` for 90.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

__all__ = [
    "elastic_dense_field",
    "elastic_grid_field",
    "flip_matrix",
    "gaussian_kernels",
    "identity",
    "pixels_to_normalised",
    "lattice_resample",
    "rotation_matrix",
    "sampling_grid",
    "scale_matrix",
    "separable_filter",
    "shear_matrix",
    "translation_matrix",
]


def identity(batch: int, dims: int) -> torch.Tensor:
    return torch.eye(dims + 1, dtype=torch.float64).repeat(batch, 1, 1)


def rotation_matrix(degrees: torch.Tensor, dims: int) -> torch.Tensor:
    """Rotate the (H, W) plane by ``degrees`` (B,), counter-clockwise on screen for positive angles."""
    a = torch.deg2rad(degrees.double())
    m = identity(len(degrees), dims)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = a.cos(), a.sin(), -a.sin(), a.cos()
    return m


def shear_matrix(degrees: torch.Tensor, dims: int) -> torch.Tensor:
    """Shear rows along columns by ``degrees[:, 0]``, then columns along rows by ``degrees[:, 1]`` (det 1)."""
    t = torch.tan(torch.deg2rad(degrees.double()))
    first, second = identity(len(t), dims), identity(len(t), dims)
    first[:, 0, 1], second[:, 1, 0] = t[:, 0], t[:, 1]
    return first @ second


def scale_matrix(factor: torch.Tensor, dims: int) -> torch.Tensor:
    """Isotropic zoom: a factor > 1 enlarges the content (the output reads the input at q / factor)."""
    m = identity(len(factor), dims)
    m[:, :dims, :dims] /= factor.double()[:, None, None]
    return m


def translation_matrix(shift_px: torch.Tensor) -> torch.Tensor:
    """Move the content by ``shift_px`` (B, d) pixels towards higher indices (like ``torch.roll``)."""
    m = identity(*shift_px.shape)
    m[:, :-1, -1] = -shift_px.double()
    return m


def flip_matrix(signs: torch.Tensor) -> torch.Tensor:
    """Mirror the axes whose sign (B, d) is -1 (about the image centre: exact on the pixel lattice)."""
    m = identity(*signs.shape)
    m[:, :-1, :-1] *= signs.double()[:, None, :]
    return m


@functools.lru_cache(maxsize=32)
def _upsample_matrix(g: int, n: int, cubic: bool) -> torch.Tensor:
    """(n, g) weights of torch's bicubic / linear interpolation with align_corners=True along one axis."""
    eye = torch.eye(g).view(g, 1, g, 1).expand(g, 1, g, 2).contiguous()  # width 2 -> 2 is the identity
    mode = "bicubic" if cubic else "bilinear"
    return F.interpolate(eye, size=(n, 2), mode=mode, align_corners=True)[:, 0, :, 0].T.contiguous()


def _along_axis(x: torch.Tensor, a: int, m: torch.Tensor) -> torch.Tensor:
    """Multiply spatial axis a of ``x`` (B, C, *S) by ``m``: (n_out, n_in) shared, or (B, n_out, n_in) per sample."""
    mt = m.transpose(-1, -2).to(x.dtype)
    if mt.ndim == 3 and mt.shape[0] == 1:
        mt = mt[0]  # one matrix for the whole batch: a single large GEMM
    if mt.ndim == 3:  # per sample: broadcast over the channel and the other spatial axes
        mt = mt.view(mt.shape[0], *[1] * (x.ndim - 3), *mt.shape[1:])
    return torch.matmul(x.movedim(2 + a, -1), mt).movedim(-1, 2 + a)


def elastic_grid_field(coarse: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """U-Net form: displacements (B, d, g, g[, g]) at the nodes of a coarse grid spanning the image corners,
    interpolated smoothly to ``size`` (bicubic in 2D, tricubic in 3D) -> (B, d, *size), same units.

    Cubic interpolation is separable, so it runs as one small matrix product per axis (the same numbers as
    ``F.interpolate(..., mode="bicubic", align_corners=True)`` applied axis by axis, several times faster on
    the CPU; torch has no tricubic mode)."""
    for a, (g, n) in enumerate(zip(coarse.shape[2:], size)):
        coarse = _along_axis(coarse, a, _upsample_matrix(g, n, True).to(coarse.device))
    return coarse


def gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Normalised 1D Gaussian kernels (B, 2*radius+1) for per-sample ``sigma`` (B,) in pixels."""
    x = torch.arange(-radius, radius + 1, dtype=sigma.dtype, device=sigma.device)
    k = torch.exp(-0.5 * (x[None, :] / sigma[:, None]) ** 2)
    return k / k.sum(dim=1, keepdim=True)


def _filter_matrix(kernels: torch.Tensor, n: int) -> torch.Tensor:
    """(B, n, n) matrices that convolve a length-n signal with ``kernels`` (B, K) under reflect borders."""
    b, k = kernels.shape
    r = k // 2
    i = torch.arange(n, device=kernels.device)
    j = i[:, None] + torch.arange(-r, r + 1, device=kernels.device)[None, :]  # (n, K) source index
    j = torch.where(j < 0, -j, j)
    j = torch.where(j > n - 1, 2 * (n - 1) - j, j).clamp(0, n - 1)  # reflect, then clamp very wide kernels
    m = kernels.new_zeros(b, n, n)
    m.scatter_add_(2, j.expand(b, n, k), kernels[:, None, :].expand(b, n, k).contiguous())
    return m


def separable_filter(x: torch.Tensor, kernels: torch.Tensor, method: str = "auto") -> torch.Tensor:
    """Filter every spatial axis of ``x`` (B, C, *S) with sample b's 1D kernel ``kernels[b]`` (reflect border);
    ``kernels`` (1, K) is one kernel for the whole batch.

    ``matrix``: one (n x n) banded matrix product per axis (fast on short axes); ``conv``: ``conv1d`` with the
    batch as channels and ``groups=B`` (wins on long axes); ``auto`` picks by axis length and kernel size.
    """
    k = kernels.shape[1]
    for a, n in enumerate(x.shape[2:]):
        use_matrix = method == "matrix" or (method == "auto" and n <= max(256, 8 * k))
        if use_matrix:
            x = _along_axis(x, a, _filter_matrix(kernels.to(x.dtype), n))
            continue
        b = x.shape[0]
        radius, weight = k // 2, kernels.to(x.dtype).expand(b, k)[:, None, :]
        moved = x.movedim(2 + a, -1)
        shape = moved.shape
        rows = moved.reshape(b, -1, n).transpose(0, 1)  # (rest, B, L)
        mode = "reflect" if radius < n else "replicate"
        rows = F.conv1d(F.pad(rows, (radius, radius), mode=mode), weight, groups=b)
        x = rows.transpose(0, 1).reshape(shape).movedim(-1, 2 + a)
    return x


def elastic_dense_field(noise: torch.Tensor, sigma: float, alpha: torch.Tensor | float) -> torch.Tensor:
    """Simard form: uniform(-1, 1) noise (B, d, *S) smoothed by a Gaussian of std ``sigma`` px (truncated at
    3 sigma, reflect borders), times ``alpha`` (a number, or (d,) per component to change units)."""
    radius = max(1, math.ceil(3.0 * sigma))
    smooth = separable_filter(
        noise, gaussian_kernels(torch.tensor([float(sigma)], device=noise.device), radius)
    )
    scale = torch.as_tensor(alpha, dtype=noise.dtype, device=noise.device)
    return smooth * (scale.view(1, -1, *[1] * (noise.ndim - 2)) if scale.ndim else scale)


def sampling_grid(
    affine: torch.Tensor,
    offset: torch.Tensor,
    displacement: torch.Tensor | None,
    in_size: tuple[int, ...],
    out_size: tuple[int, ...],
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """The ``grid_sample`` grid (B, *out_size, d) for ``x_in = A (q + offset) + t + displacement(q)``.

    ``affine`` (B, d+1, d+1) and ``offset`` (B, d) (window centre minus image centre) are in pixels, on the
    CPU; ``displacement`` (B, d, *out_size) is already in normalised input units (``pixels * 2 / N_in``, see
    :func:`pixels_to_normalised`) on ``device``. Positions become grid_sample's [-1, 1] per axis with
    align_corners=False (pixel i of N -> (2i+1)/N - 1).
    """
    d, b = len(in_size), affine.shape[0]
    to_in = pixels_to_normalised(in_size)
    from_out = torch.tensor([n / 2.0 for n in out_size], dtype=torch.float64)
    lin, t = affine[:, :d, :d].double(), affine[:, :d, d].double()
    theta_lin = (to_in[None, :, None] * lin * from_out[None, None, :]).float().to(device)
    theta_t = (to_in[None, :] * ((lin @ offset.double()[:, :, None])[..., 0] + t)).float().to(device)
    base = []  # normalised output coordinate along each axis, shaped to broadcast over (B, *out_size)
    for a, n in enumerate(out_size):
        shape = [1] * (d + 1)
        shape[1 + a] = n
        base.append(((2 * torch.arange(n, device=device, dtype=torch.float32) + 1) / n - 1).view(shape))
    # channels-first components (contiguous writes), returned as a channels-last view (grid_sample reads
    # strided grids at full speed); channel j holds the coordinate of spatial axis d-1-j (x = last axis first)
    comps = torch.empty((b, d, *out_size), device=device)
    for k in range(d):  # small terms first: only the last operations touch every voxel
        c = theta_t[:, k].view(b, *[1] * d)
        for a in range(d - 1):
            c = c + theta_lin[:, k, a].view(b, *[1] * d) * base[a]
        last = theta_lin[:, k, d - 1].view(b, *[1] * d) * base[d - 1]
        out = comps[:, d - 1 - k]
        if displacement is None:
            torch.add(c, last, out=out)
        else:
            torch.add(displacement[:, k], c, out=out).add_(last)
    return comps.movedim(1, -1)


def pixels_to_normalised(size: tuple[int, ...]) -> torch.Tensor:
    """Per-axis factor (d,) float64 from a displacement in pixels to grid_sample units (align_corners=False)."""
    return torch.tensor([2.0 / n for n in size], dtype=torch.float64)


def lattice_resample(x: torch.Tensor, signs: torch.Tensor, starts: torch.Tensor, out_size: tuple[int, ...]):
    """Exact flips and crops (zero padding) by integer indexing: ``x`` (B, C, *S) -> (B, C, *out_size).

    Sample b, axis a reads input index ``starts[b, a] + j`` (sign +1) or ``N - 1 - starts[b, a] - j`` (sign -1)
    for output index j; indices outside the input give 0.
    """
    b, c = x.shape[:2]
    for a, n_out in enumerate(out_size):
        n_in = x.shape[2 + a]
        j = torch.arange(n_out, dtype=torch.int64)
        idx = starts[:, a, None].long() + j[None, :]
        idx = torch.where(signs[:, a, None] < 0, n_in - 1 - idx, idx)  # (B, n_out), on the CPU
        valid = ((idx >= 0) & (idx < n_in)).to(x.device)
        idx = idx.clamp(0, n_in - 1).to(x.device)
        view = [b] + [1] * (x.ndim - 1)
        view[2 + a] = n_out
        shape = list(x.shape)
        shape[2 + a] = n_out
        x = torch.gather(x, 2 + a, idx.view(view).expand(shape))
        x = x * valid.view(view) if x.is_floating_point() else torch.where(valid.view(view), x, 0)
    return x
