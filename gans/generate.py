"""Write a synthetic labeled dataset from a ``cgan`` or ``dual_gan`` checkpoint.

    weakseg synth generate runs/dual/last.pt --n 200 --out data/synthetic --seed 0
    weakseg synth generate runs/cgan/last.pt --n 50 --out data/synth --labels edited_masks/ [--context real/]

``OUT/images/synth_pNNNNN.png`` and ``OUT/masks/synth_pNNNNN.png`` (8-bit PNG: the image's data range mapped
to 0..255, the label map's class values; every sample is its own case ``NNNNN``) and ``OUT/manifest.json``
(checkpoint and its hash, method, seed, label source, sizes) - the core's folder reader loads it directly
(``data.source: folder``, ``data.root: OUT``). The label maps come from the dual GAN's first stage (noise
drawn with ``--seed``) or from ``--labels`` (mask PNGs, cycled to ``--n``; a cGAN needs them); a cGAN trained
with ``condition: label_and_context`` also needs ``--context`` (images/ + masks/ with the same file names: the
label map is painted into the image after erasing the image's own structures).

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

__all__ = ["generate_dataset"]


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
) -> Path:
    """Generate ``n`` (image, label map) pairs into ``output_dir``; returns it."""
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
    if needs_context and (labels is None or context is None):
        raise ValueError(
            f"{checkpoint} was trained with condition: label_and_context: pass --labels DIR (the new label maps) "
            "and --context DIR (images/ + masks/ of the real images to paint them into, same file names)"
        )
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
                    label = _resized(torch.from_numpy(np.stack([p[1] for p in picks])), cfg.data.resize).to(
                        dev
                    )
                    if needs_context:
                        image_ctx, old = _context_batch(picks, contexts, cfg, dev)
                images = method.generate(label, image_ctx, old).cpu().numpy()
                pixels = (
                    np.round((images - method.lo) / (method.hi - method.lo) * 255)
                    .clip(0, 255)
                    .astype(np.uint8)
                )
                for i, image, lab in zip(idx, pixels, label.cpu().numpy()):
                    name = f"synth_p{i:05d}.png"
                    _png(image).save(tmp / "images" / name)
                    Image.fromarray(lab.astype(np.uint8)).save(tmp / "masks" / name)
            manifest = {
                "checkpoint": str(checkpoint),
                "checkpoint_sha256_16": hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()[:16],
                "method": cfg.method.name,
                "method_params": cfg.method.params,
                "seed": seed,
                "n": n,
                "labels": "sampled by the dual GAN" if given is None else str(labels),
                "context": None if context is None else str(context),
                "num_classes": k,
                "class_names": cfg.data.class_names,
                "image": f"8-bit PNG of the data range [{method.lo:g}, {method.hi:g}]",
            }
            (tmp / "manifest.json").write_text(
                json.dumps(manifest, indent=2)
            )  # last: the dataset is complete
    except OSError as e:
        raise OSError(
            f"writing the synthetic dataset under {output_dir.parent} failed ({e}); nothing was left behind: free "
            "disk space, check write permission or choose another --out"
        ) from e
    return output_dir


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
