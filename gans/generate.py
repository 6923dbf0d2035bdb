"""Write a synthetic labeled dataset from a ``cgan`` or ``dual_gan`` checkpoint, or without a GAN (SynthSeg).

    weakseg synth generate runs/dual/last.pt --n 200 --out data/synthetic --seed 0
    weakseg synth generate runs/cgan/last.pt --n 50 --out data/synth --labels edited_masks/ [--context real/]

``OUT/images/synth_pNNNNN.png`` and ``OUT/masks/synth_pNNNNN.png`` (8-bit PNG: the image's data range mapped
to 0..255, the label map's class values; every sample is its own case ``NNNNN``) and ``OUT/manifest.json``
(checkpoint and its hash, method, seed, label source, sizes) - the core's folder reader loads it directly
(``data.source: folder``, ``data.root: OUT``). The label maps come from the dual GAN's first stage (noise
drawn with ``--seed``) or from ``--labels`` (mask PNGs, cycled to ``--n``; a cGAN needs them); a cGAN trained
with ``condition: label_and_context`` also needs ``--context`` (images/ + masks/ with the same file names: the
label map is painted into the image after erasing the image's own structures).

Without a checkpoint (``weakseg synth generate --synthseg --labels DIR --num-classes K``), the label maps of
``--labels`` (with ``--deform``: each randomly rotated, zoomed and elastically deformed, so there are more
layouts than real maps) are painted by SynthSeg's random per-label intensities (``generate_synthseg``).

Nothing half-written looks complete: the dataset is built in a hidden temp folder beside ``OUT`` with the
manifest written last, then renamed; a failure (full or read-only disk included) removes the temp folder.
An existing ``OUT`` is refused unless ``overwrite``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from gans.cgan import check_label_values
from weakseg.data.readers import list_image_files, read_image_file, read_mask_file
from weakseg.fileio import atomic_dataset_dir, check_dataset_output

__all__ = ["deform_label_maps", "generate_dataset", "generate_synthseg", "recombine_label_maps"]


def _labels_from(folder: Path, num_classes: int) -> list[tuple[str, np.ndarray]]:
    """Mask PNGs of ``folder`` (or ``folder/masks``), checked against the model's classes."""
    files = list_image_files(folder / "masks" if (folder / "masks").is_dir() else folder)
    if not files:
        raise FileNotFoundError(f"--labels {folder} holds no label map images (png/tif)")
    out = []
    for stem, path in sorted(files.items()):
        label = read_mask_file(path).astype(np.int64)
        if num_classes == 2 and set(np.unique(label)) <= {0, 255}:
            label = label // 255  # binary masks stored as 0/255
        check_label_values(torch.from_numpy(label), num_classes, f"--labels {path}")
        out.append((stem, label))
    return out


def _fovs_from(folder: Path) -> list[torch.Tensor]:
    """Field-of-view masks (any size; non-zero = inside) of ``folder`` (or ``folder/fov``)."""
    files = list_image_files(folder / "fov" if (folder / "fov").is_dir() else folder)
    if not files:
        raise FileNotFoundError(f"--fov {folder} holds no field-of-view mask images (png/tif)")
    return [torch.from_numpy(read_mask_file(p) > 0) for _, p in sorted(files.items())]


def _fov_batch(fovs: list[torch.Tensor], shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    """(B, H, W) bool: for each sample a random mask of ``fovs``, randomly cropped to H x W (nearest-resized up
    first when smaller)."""
    b, h, w = shape
    out = []
    for _ in range(b):
        m = fovs[int(torch.randint(len(fovs), (1,), generator=generator))]
        if m.shape[0] < h or m.shape[1] < w:
            scale = max(h / m.shape[0], w / m.shape[1])
            size = (max(h, round(m.shape[0] * scale)), max(w, round(m.shape[1] * scale)))
            m = F.interpolate(m[None, None].float(), size=size, mode="nearest-exact")[0, 0] > 0.5
        y = int(torch.randint(m.shape[0] - h + 1, (1,), generator=generator))
        x = int(torch.randint(m.shape[1] - w + 1, (1,), generator=generator))
        out.append(m[y : y + h, x : x + w])
    return torch.stack(out)


def _resized(label: torch.Tensor, size: list[int] | None) -> torch.Tensor:
    if size is None or tuple(label.shape[-2:]) == tuple(size):
        return label
    return F.interpolate(label[:, None].float(), size=tuple(size), mode="nearest-exact")[:, 0].long()


def _png(array: np.ndarray) -> Image.Image:
    return Image.fromarray(array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0))


def generate_dataset(
    checkpoint: str | Path,
    n: int,
    output_dir: str | Path,
    seed: int = 0,
    labels: str | Path | None = None,
    context: str | Path | None = None,
    overwrite: bool = False,
    batch_size: int = 8,
    device: str = "auto",
    progress: bool = True,
    deform: bool = False,
    fov: str | Path | None = None,
    recombine: bool = False,
) -> Path:
    """Generate ``n`` (image, label map) pairs into ``output_dir``; returns it. ``deform``: each ``labels`` map
    is first warped by a random rotation, zoom and elastic deformation (``deform_label_maps``), so that the
    few real maps give new layouts for the generator to paint. ``fov``: a folder of field-of-view masks (a
    ``fov_channel`` model's extra input): each sample gets a random crop of a random one (seeded), and its
    label map is cleared outside it."""
    from weakseg.api import load_trained

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"--n must be a whole number >= 1 (how many samples to write), got {n!r}")
    output_dir = Path(output_dir)
    check_dataset_output(output_dir, overwrite, "--out")
    cfg, method, dev = load_trained(checkpoint, device=device)
    if not hasattr(method, "generate"):
        raise ValueError(
            f'{checkpoint} holds method "{cfg.method.name}", not a synthesis model: use a checkpoint of method '
            "cgan or dual_gan"
        )
    k = method.num_classes
    needs_context = method.condition_kind == "label_and_context"
    if labels is None and not hasattr(method, "sample_labels"):
        raise ValueError(
            f'{checkpoint} is a "{cfg.method.name}" model: it turns label maps into images, so pass --labels DIR '
            "(mask PNGs); a dual_gan checkpoint can also sample label maps itself"
        )
    if (deform or recombine) and (labels is None or needs_context):
        raise ValueError(
            "--deform / --recombine warp the --labels maps: pass --labels DIR (and no label_and_context "
            "checkpoint, whose context images would no longer match the warped maps)"
        )
    if needs_context and (labels is None or context is None):
        raise ValueError(
            f"{checkpoint} was trained with condition: label_and_context: pass --labels DIR (the new label maps) "
            "and --context DIR (images/ + masks/ of the real images to paint them into, same file names)"
        )
    wants_fov = getattr(method, "fov_channel", False)
    if wants_fov and fov is None and not needs_context:
        raise ValueError(
            f"{checkpoint} was trained with fov_channel: pass --fov DIR (field-of-view masks of real images, e.g. "
            "DRIVE's fov/ folder); each sample gets a random crop of one"
        )
    if fov is not None and not wants_fov:
        raise ValueError(f"--fov: {checkpoint} was trained without fov_channel; leave --fov out")
    fovs = _fovs_from(Path(fov)) if fov is not None else None
    given = _labels_from(Path(labels), k) if labels is not None else None
    contexts = {}
    if needs_context:
        ctx_root = Path(context)
        img_files = list_image_files(ctx_root / "images")
        missing = [stem for stem, _ in given if stem not in img_files]
        if missing:
            raise FileNotFoundError(
                f"--context {ctx_root}/images has no image named like the --labels maps {missing[:5]}: context "
                "images and label maps are paired by file name"
            )
        contexts = {stem: ctx_root for stem, _ in given}
    generator = torch.Generator().manual_seed(seed)
    try:
        with atomic_dataset_dir(output_dir) as tmp:
            (tmp / "images").mkdir()
            (tmp / "masks").mkdir()
            for start in tqdm(range(0, n, batch_size), desc="synth generate", disable=not progress):
                idx = list(range(start, min(start + batch_size, n)))
                image_ctx = old = None
                if given is None:
                    label = method.sample_labels(len(idx), generator).to(dev)
                else:
                    picks = [given[i % len(given)] for i in idx]
                    label = _resized(torch.from_numpy(np.stack([p[1] for p in picks])), cfg.data.resize)
                    label = new_layouts(label, generator, recombine, deform)
                    label = label.to(dev)
                    if needs_context:
                        image_ctx, old = _context_batch(picks, contexts, cfg, dev)
                view = None
                if fovs is not None:  # a random real field of view per sample; no structure outside it
                    view = _fov_batch(fovs, label.shape, generator).to(dev)
                    label = label * view
                images = method.generate(label, image_ctx, old, fov=view).cpu().numpy()
                _write_pairs(tmp, idx, (images - method.lo) / (method.hi - method.lo), label.cpu().numpy())
            manifest = {
                "checkpoint": str(checkpoint),
                "checkpoint_sha256_16": hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()[:16],
                "method": cfg.method.name,
                "method_params": cfg.method.params,
                "seed": seed,
                "n": n,
                "labels": "sampled by the dual GAN" if given is None else str(labels),
                "deform": deform,
                "recombine": recombine,
                "fov": None if fov is None else str(fov),
                "context": None if context is None else str(context),
                "num_classes": k,
                "class_names": cfg.data.class_names,
                "image": f"8-bit PNG of the data range [{method.lo:g}, {method.hi:g}]",
            }
            (tmp / "manifest.json").write_text(
                json.dumps(manifest, indent=2)
            )  # last: the dataset is complete
    except OSError as e:
        raise _write_failed(output_dir, e) from e
    return output_dir


def _write_failed(output_dir: Path, e: OSError) -> OSError:
    return OSError(
        f"writing the synthetic dataset under {output_dir.parent} failed ({e}); nothing was left behind: free "
        "disk space, check write permission or choose another --out"
    )


def _write_pairs(folder: Path, idx: list[int], images: np.ndarray, labels: np.ndarray) -> None:
    """images (B, C, H, W) in [0, 1] and label maps (B, H, W) as ``images/`` + ``masks/`` PNGs of ``folder``."""
    pixels = np.round(images * 255).clip(0, 255).astype(np.uint8)
    for i, image, lab in zip(idx, pixels, labels):
        name = f"synth_p{i:05d}.png"
        _png(image).save(folder / "images" / name)
        Image.fromarray(lab.astype(np.uint8)).save(folder / "masks" / name)


def generate_synthseg(
    labels: str | Path,
    n: int,
    output_dir: str | Path,
    num_classes: int,
    seed: int = 0,
    deform: bool = False,
    in_channels: int = 1,
    recombine: bool = False,
    overwrite: bool = False,
    batch_size: int = 8,
    progress: bool = True,
) -> Path:
    """A GAN-free synthetic dataset: the label maps of ``labels`` (cycled to ``n``; with ``deform`` each one
    warped by a random rotation, zoom and elastic deformation, ``deform_label_maps``) painted by SynthSeg's
    ``labels_to_image``. Written like ``generate_dataset`` (atomic, manifest last)."""
    from weakseg.augment.synthseg import labels_to_image

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"--n must be a whole number >= 1 (how many samples to write), got {n!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            f"--num-classes must be an integer >= 2 (background + structures), got {num_classes!r}"
        )
    output_dir = Path(output_dir)
    check_dataset_output(output_dir, overwrite, "--out")
    given = _labels_from(Path(labels), num_classes)
    sizes = {lab.shape for _, lab in given}
    if len(sizes) > 1:
        raise ValueError(
            f"--labels {labels}: the label maps have different sizes {sorted(sizes)}; resize them alike"
        )
    generator = torch.Generator().manual_seed(seed)
    try:
        with atomic_dataset_dir(output_dir) as tmp:
            (tmp / "images").mkdir()
            (tmp / "masks").mkdir()
            for start in tqdm(
                range(0, n, batch_size), desc="synth generate (synthseg)", disable=not progress
            ):
                idx = list(range(start, min(start + batch_size, n)))
                label = torch.from_numpy(np.stack([given[i % len(given)][1] for i in idx]))
                label = new_layouts(label, generator, recombine, deform)
                image = labels_to_image(label, generator, num_classes, in_channels)
                _write_pairs(tmp, idx, image.numpy(), label.numpy())
            manifest = {
                "generator": "synthseg (weakseg.augment.synthseg.labels_to_image)",
                "labels": str(labels),
                "deform": deform,
                "recombine": recombine,
                "seed": seed,
                "n": n,
                "num_classes": num_classes,
                "image": "8-bit PNG of [0, 1]",
            }
            (tmp / "manifest.json").write_text(
                json.dumps(manifest, indent=2)
            )  # last: the dataset is complete
    except OSError as e:
        raise _write_failed(output_dir, e) from e
    return output_dir


def new_layouts(
    label: torch.Tensor, generator: torch.Generator, recombine: bool, deform: bool
) -> torch.Tensor:
    """Real label maps (B, H, W) turned into new ones: recombined structure by structure, then deformed."""
    if recombine:
        label = recombine_label_maps(label, generator)
    return deform_label_maps(label, generator) if deform else label


def recombine_label_maps(
    label: torch.Tensor,
    generator: torch.Generator,
    shift: float = 0.08,
    scale: tuple[float, float] = (0.9, 1.1),
    swap_p: float = 0.5,
) -> torch.Tensor:
    """New label maps (B, H, W) from real ones, structure by structure: each foreground class of a map is taken
    from another map of the batch with probability ``swap_p`` (recombination), then moved by up to ``shift`` of
    the side and scaled by a factor in ``scale`` about its own centre, nearest-neighbour; classes are pasted in
    order (a later one covers an earlier one where they meet). Hand-written: per-structure warps of label maps
    are no library's transform."""
    b, h, w = label.shape
    out = torch.zeros_like(label)
    num = int(label.max()) + 1 if label.numel() else 1

    def uniform(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=generator))

    for i in range(b):
        for c in range(1, num):
            src = i
            if b > 1 and float(torch.rand((), generator=generator)) < swap_p:
                src = int(torch.randint(b - 1, (), generator=generator))
                src += src >= i  # another map of the batch
            mask = (label[src] == c).float()
            if not mask.any():
                continue
            ys, xs = torch.nonzero(mask, as_tuple=True)
            cy, cx = ys.float().mean() / (h - 1) * 2 - 1, xs.float().mean() / (w - 1) * 2 - 1  # [-1, 1]
            s = uniform(*scale)
            dy, dx = uniform(-shift, shift) * 2, uniform(-shift, shift) * 2
            # output pixel p samples the input at centre + (p - centre - d) / s
            theta = torch.tensor(
                [[1 / s, 0.0, cx - (cx + dx) / s], [0.0, 1 / s, cy - (cy + dy) / s]], dtype=torch.float32
            )
            grid = F.affine_grid(theta[None], [1, 1, h, w], align_corners=True)
            moved = F.grid_sample(mask[None, None], grid, mode="nearest", align_corners=True)[0, 0] > 0.5
            out[i][moved] = c
    return out


def deform_label_maps(label: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """New label maps (B, H, W) from real ones: a random rotation (+-15 deg), zoom (0.85-1.15) and a smooth
    elastic deformation, one draw per map, nearest-neighbour (the batched torch backend's geometry)."""
    from weakseg.augment.torch_backend import BatchAugment
    from weakseg.keys import Keys

    warp = BatchAugment(
        [
            {"name": "rotate", "degrees": [-15, 15]},
            {"name": "scale", "factor": [0.85, 1.15]},
            {"name": "elastic_grid", "grid": 4, "sigma": 6.0},
        ],  # fmt: skip
        spatial_dims=2,
    )
    image = torch.zeros((label.shape[0], 1, *label.shape[1:]))
    return warp({Keys.IMAGE: image, Keys.LABEL: label.long()}, generator)[Keys.LABEL]


def _context_batch(picks, contexts: dict, cfg, dev) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (data range, via the checkpoint's intensity preset) and their own label maps for context mode."""
    from weakseg.data.dataset import preset_for

    images, olds = [], []
    for stem, _ in picks:
        root = contexts[stem]
        img_path = list_image_files(root / "images")[stem]
        raw = read_image_file(img_path)
        images.append(
            torch.from_numpy(np.asarray(preset_for(cfg.data, raw, img_path)(raw), dtype=np.float32))
        )
        masks = list_image_files(root / "masks")  # the image's own structures, erased before painting
        own = (
            read_mask_file(masks[stem]).astype(np.int64)
            if stem in masks
            else np.zeros(raw.shape[-2:], np.int64)
        )
        olds.append(torch.from_numpy(own))
    image = torch.stack(images)
    if cfg.data.resize is not None:
        image = F.interpolate(image, size=tuple(cfg.data.resize), mode="area")
    return image.to(dev), _resized(torch.stack(olds), cfg.data.resize).to(dev)
