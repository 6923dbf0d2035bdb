"""Two-stage adaptation, stage 1: translate a labeled dataset with a trained CycleGAN and write it out.

    weakseg adapt translate runs/cyclegan/last.pt --input ct_data/ --output synthetic_mr/ --direction ct2mr

``--input`` holds ``images/`` (and ``masks/``, copied unchanged: translation keeps the anatomy). Images are
normalised (and resized, ``data.resize``) with the checkpoint's config for the input domain, translated, and
written at their input size as 8-bit PNG of the [0, 1] data range, with a ``manifest.json``. The dataset appears atomically (built in a temp folder, then
renamed); an existing output is refused unless ``overwrite``. Stage 2 is a plain supervised run on it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from weakseg.config import DataConfig
from weakseg.data.dataset import SegDataset
from weakseg.data.readers import read_folder_records
from weakseg.fileio import atomic_dataset_dir, check_dataset_output
from weakseg.keys import Keys

__all__ = ["translate_dataset"]


def _domain_cfg(cfg, direction: str, method) -> DataConfig:
    """The data config of the domain the images come from (source for source->target, else target)."""
    source_first = direction in (f"{method.source_name}2{method.target_name}", "source2target")
    if source_first or cfg.target is None:
        return cfg.data
    return cfg.target


def _stored_size(image: np.ndarray, path: str | Path) -> np.ndarray:
    """A translated (C, h, w) image at the size of its input file (``data.resize`` may have shrunk it), so the
    copied masks still fit; resampled bilinearly."""
    with Image.open(path) as f:
        width, height = f.size
    if image.shape[1:] == (height, width):
        return image
    resized = F.interpolate(torch.from_numpy(image)[None], size=(height, width), mode="bilinear")
    return resized[0].clamp(0, 1).numpy()


def _same_size_batches(dataset: SegDataset, batch_size: int) -> list[list[int]]:
    """Indices in order, cut into batches of at most ``batch_size`` images of one size (folders may mix sizes)."""
    batches: list[list[int]] = []
    last = None
    for i in range(len(dataset)):
        shape = tuple(dataset[i][Keys.IMAGE].shape)
        if batches and shape == last and len(batches[-1]) < batch_size:
            batches[-1].append(i)
        else:
            batches.append([i])
        last = shape
    return batches


def translate_dataset(
    checkpoint: str | Path,
    input_dir: str | Path,
    output_dir: str | Path,
    direction: str | None = None,
    overwrite: bool = False,
    batch_size: int = 8,
    device: str = "auto",
    progress: bool = True,
) -> Path:
    """Translate ``input_dir/images`` (masks copied) into a new dataset at ``output_dir``; returns it."""
    from weakseg.api import load_trained

    input_dir, output_dir = Path(input_dir), Path(output_dir)
    check_dataset_output(output_dir, overwrite, "--output")
    cfg, method, dev = load_trained(checkpoint, device=device)
    if not hasattr(method, "translate"):
        raise ValueError(
            f'{checkpoint} holds method "{cfg.method.name}", which cannot translate; use a cyclegan checkpoint'
        )
    direction = direction or f"{method.source_name}2{method.target_name}"
    method.translate(
        torch.zeros(1, cfg.data.in_channels, 32, 32, device=dev), direction
    )  # checks the direction
    domain = _domain_cfg(cfg, direction, method)
    masks = input_dir / domain.mask_dir
    records = read_folder_records(
        input_dir / domain.image_dir, masks if masks.is_dir() else None, domain.case_regex
    )
    dataset = SegDataset(records, domain, labeled=masks.is_dir())
    with atomic_dataset_dir(output_dir) as tmp:
        (tmp / "images").mkdir()
        if dataset.labeled:
            shutil.copytree(masks, tmp / "masks")
        names = [Path(r.image).stem for r in records]
        lo, hi = method.lo, method.hi
        for idx in tqdm(_same_size_batches(dataset, batch_size), desc="translate", disable=not progress):
            batch = torch.stack([dataset[i][Keys.IMAGE] for i in idx]).to(dev)
            with torch.no_grad():
                out = ((method.translate(batch, direction) - lo) / (hi - lo)).clamp(0, 1).cpu().numpy()
            for i, image in zip(idx, out):
                image = _stored_size(image, records[i].image)
                pixels = np.round(image * 255).astype(np.uint8)
                pixels = pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)
                Image.fromarray(pixels).save(tmp / "images" / f"{names[i]}.png")
        digest = hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()[:16]
        manifest = {
            "checkpoint": str(checkpoint),
            "checkpoint_sha256_16": digest,
            "direction": direction,
            "input": str(input_dir),
            "images": len(dataset),
            "labels_copied": dataset.labeled,
            "intensity": "8-bit PNG of the translated image, its data range (method.params.image_range) mapped to 0..255",
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return output_dir
