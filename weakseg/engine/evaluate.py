"""Evaluation: predict every sample of a split, regroup 2D slices into per-case volumes, score with metrics."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from weakseg.config import InferConfig
from weakseg.engine.streams import SHAPE_KEY, pad_collate
from weakseg.keys import Keys
from weakseg.methods.infer import infer_window, predict_logits, stitch_device
from weakseg.metrics import MetricAccumulator

__all__ = ["evaluate_dataset", "infer_window", "predict_logits", "stitch_device"]


def evaluate_dataset(
    method,
    dataset,
    num_classes: int,
    class_names: list[str],
    device: torch.device,
    spacing: list[float] | None = None,
    batch_size: int = 16,
    amp_dtype: torch.dtype | None = None,
    n_examples: int = 4,
    progress: bool = False,
    window: InferConfig | None = None,
) -> tuple[MetricAccumulator, list[dict]]:
    """Score ``method`` on every labeled sample of ``dataset``; 2D slices of a case are stacked by name.

    Returns the filled accumulator and up to ``n_examples`` (image, label, pred) slices with the most
    foreground, for overlay pictures.
    """
    was_training = method.training
    method.eval()
    cases: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = defaultdict(list)
    candidates: list[tuple[int, str, dict]] = []
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=0,
        collate_fn=pad_collate(),
        generator=torch.Generator(),
    )
    try:
        for batch in tqdm(loader, desc="evaluate", leave=False, disable=not progress):
            if Keys.LABEL not in batch:
                raise ValueError("evaluation needs labeled samples; this split has no labels")
            logits = predict_logits(method, batch[Keys.IMAGE].to(device), amp_dtype, window)
            preds = logits.argmax(1).cpu().numpy().astype(np.uint8)
            labels = batch[Keys.LABEL].numpy()
            for i, (case, name) in enumerate(zip(batch[Keys.CASE_ID], batch[Keys.NAME])):
                crop = tuple(slice(0, int(s)) for s in batch[SHAPE_KEY][i])  # undo the batch padding
                cases[case].append((name, preds[i][crop], labels[i][crop]))
                fg = int((labels[i] > 0).sum())
                if preds.ndim == 3:  # 2D samples give picture candidates
                    example = {
                        "name": name,
                        "image": batch[Keys.IMAGE][i][(slice(None), *crop)].numpy(),
                        "label": labels[i][crop],
                        "pred": preds[i][crop],
                    }
                    candidates.append((fg, name, example))
                    candidates.sort(key=lambda c: (-c[0], c[1]))
                    del candidates[n_examples:]
    finally:
        method.train(was_training)
    acc = MetricAccumulator(num_classes, class_names, spacing=spacing)
    header_spacing = getattr(dataset, "case_spacing", None)
    for case in sorted(cases):
        items = sorted(cases[case], key=lambda t: t[0])
        shapes = {p.shape for _, p, _ in items}
        # data.spacing overrides; else a NIfTI case's own header spacing (mm), else voxels
        own = header_spacing(case) if spacing is None and header_spacing is not None else None
        if items[0][1].ndim == 2 and len(shapes) == 1:  # slices of one case -> one (Z,H,W) volume
            acc.add(case, np.stack([p for _, p, _ in items]), np.stack([t for _, _, t in items]), spacing=own)
        else:  # 3D samples, or slices of differing sizes: score each sample on its own
            for name, p, t in items:
                acc.add(
                    case if len(items) == 1 else f"{case}/{name}", p, t, spacing=own if p.ndim == 3 else None
                )
    return acc, [c[2] for c in candidates]
