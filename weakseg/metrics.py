"""Dice, IoU, HD95 and ASSD per class and per case (MONAI metrics) with an explicit empty-mask policy.

Empty-mask policy, per foreground class of one case (never a silent NaN):

    status          the class is in            dice  iou  hd95      assd      in the summary means
    present         prediction and reference   MONAI: hd95 = 95th percentile HD, assd symmetric   counted
    absent          neither                    1     1    0         0         EXCLUDED, counted in n_excluded_absent
    missed          reference only             0     0    diagonal  diagonal  counted (n_missed)
    false_positive  prediction only            0     0    diagonal  diagonal  counted (n_false_positive)

"diagonal" is the length of the image's physical diagonal, ``sqrt(sum((n_i * spacing_i) ** 2))``: larger than
any distance that can be measured inside the image, so a missed or hallucinated organ costs the worst score.
A class absent from every case has no measurement: its ``<metric>/<class>`` summary entries are NaN on
purpose, the ``mean_*`` keys average the other classes, and ``n_unmeasured_classes`` counts such classes.

Distances are in the units of ``spacing`` (voxels when None). A 2D slice stack is passed as one (Z, H, W)
volume with spacing (z, y, x), so distances are measured in 3D across slices.

    acc = MetricAccumulator(3, ["background", "liver", "spleen"], spacing=(2.5, 0.8, 0.8))
    acc.add("p03", pred_volume, label_volume)  # int arrays (Z, H, W), values in [0, 3)
    acc.summary()  # {"dice/liver": ..., "mean_dice": ..., "n_excluded_absent": 0.0, ...}
    print(acc.format_table()); acc.write_csv(run_dir / "metrics_per_case.csv")
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from monai.metrics import (
    compute_average_surface_distance,
    compute_dice,
    compute_hausdorff_distance,
    compute_iou,
)

from weakseg.fileio import atomic_write_csv

__all__ = ["METRICS", "STATUSES", "MetricAccumulator", "case_metrics", "image_diagonal"]

METRICS = ("dice", "iou", "hd95", "assd")
STATUSES = ("present", "absent", "missed", "false_positive")
_ABSENT = {"dice": 1.0, "iou": 1.0, "hd95": 0.0, "assd": 0.0}


def _as_labels(x: torch.Tensor | np.ndarray, what: str, num_classes: int) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.dtype == bool:
        arr = arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"{what} must hold integer class labels (e.g. logits.argmax(1)), got dtype {arr.dtype}"
        )
    if arr.size == 0:
        raise ValueError(f"{what} is empty (shape {arr.shape})")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        raise ValueError(
            f"{what} contains label {bad}, outside [0, {num_classes}): check num_classes or the label mapping"
        )
    return arr


def _spacing(spacing: Sequence[float] | None, ndim: int) -> tuple[float, ...]:
    if spacing is None:
        return (1.0,) * ndim
    out = tuple(float(s) for s in spacing)
    if len(out) != ndim or not all(s > 0 for s in out):
        raise ValueError(
            f"spacing must be {ndim} positive numbers, one per axis of the mask, got {tuple(spacing)}"
        )
    return out


def image_diagonal(shape: Sequence[int], spacing: Sequence[float] | None = None) -> float:
    """Physical diagonal of an image: the distance given to a missed or false-positive class."""
    sp = _spacing(spacing, len(shape))
    return math.sqrt(sum((n * s) ** 2 for n, s in zip(shape, sp)))


def _status(in_pred: bool, in_target: bool) -> str:
    if in_pred and in_target:
        return "present"
    if in_target:
        return "missed"
    return "false_positive" if in_pred else "absent"


def case_metrics(
    pred: torch.Tensor | np.ndarray,
    target: torch.Tensor | np.ndarray,
    num_classes: int,
    spacing: Sequence[float] | None = None,
) -> dict[str, np.ndarray]:
    """Metrics of one case, ``pred`` and ``target`` int labels of the same shape (*spatial).

    Returns float arrays "dice", "iou", "hd95", "assd" and bool arrays "present" (in prediction or
    reference), "in_pred", "in_target", each of shape (num_classes - 1,) for classes 1..num_classes-1.
    Note "present" is True unless the class is absent; the row *status* "present" means in both.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 (background + foreground), got {num_classes}")
    p = _as_labels(pred, "pred", num_classes)
    t = _as_labels(target, "target", num_classes)
    if p.shape != t.shape:
        raise ValueError(f"pred has shape {p.shape} but target has shape {t.shape}: they must match")
    sp = _spacing(spacing, p.ndim)
    diagonal = image_diagonal(p.shape, sp)
    k = num_classes - 1
    out = {m: np.zeros(k) for m in METRICS}
    out |= {key: np.zeros(k, dtype=bool) for key in ("present", "in_pred", "in_target")}
    for i, c in enumerate(range(1, num_classes)):
        pm, tm = p == c, t == c
        in_p, in_t = bool(pm.any()), bool(tm.any())
        out["in_pred"][i], out["in_target"][i], out["present"][i] = in_p, in_t, in_p or in_t
        if not (in_p or in_t):
            for m in METRICS:
                out[m][i] = _ABSENT[m]
        elif not (in_p and in_t):
            out["dice"][i] = out["iou"][i] = 0.0
            out["hd95"][i] = out["assd"][i] = diagonal
        else:
            y_pred = torch.from_numpy(pm)[None, None].float()
            y = torch.from_numpy(tm)[None, None].float()
            out["dice"][i] = compute_dice(y_pred, y, include_background=True, ignore_empty=False).item()
            out["iou"][i] = compute_iou(y_pred, y, include_background=True, ignore_empty=False).item()
            with warnings.catch_warnings():  # MONAI warns about its own internal use of a deprecated argument
                warnings.simplefilter("ignore", FutureWarning)
                out["hd95"][i] = compute_hausdorff_distance(
                    y_pred, y, include_background=True, percentile=95, spacing=list(sp)
                ).item()
                out["assd"][i] = compute_average_surface_distance(
                    y_pred, y, include_background=True, symmetric=True, spacing=list(sp)
                ).item()
    return out


class MetricAccumulator:
    """Collects whole cases and reports per-case rows, per-class means (absent entries excluded) and a table.

    ``class_names``: all ``num_classes`` names including background (as in ``data.class_names``) or only the
    foreground ones; default "class_1", ... ``spacing`` is the default for ``add``.
    """

    def __init__(
        self,
        num_classes: int,
        class_names: Sequence[str] | None = None,
        spacing: Sequence[float] | None = None,
    ) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2 (background + foreground), got {num_classes}")
        names = list(class_names) if class_names is not None else [f"class_{c}" for c in range(num_classes)]
        if len(names) == num_classes:
            names = names[1:]
        if len(names) != num_classes - 1:
            raise ValueError(
                f"class_names has {len(names)} names; expected {num_classes} (with background) "
                f"or {num_classes - 1} (foreground only) for num_classes={num_classes}"
            )
        self.num_classes = num_classes
        self.class_names = names
        self.spacing = None if spacing is None else tuple(float(s) for s in spacing)
        self._cases: dict[str, dict[str, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self._cases)

    def add(
        self,
        case_id: str,
        pred: torch.Tensor | np.ndarray,
        target: torch.Tensor | np.ndarray,
        spacing: Sequence[float] | None = None,
    ) -> dict[str, np.ndarray]:
        """Add one whole case (2D slices stacked as (Z, H, W)); ``spacing`` overrides the default."""
        if case_id in self._cases:
            raise ValueError(f'case "{case_id}" was added twice: group all its slices into one volume first')
        try:
            result = case_metrics(
                pred, target, self.num_classes, spacing if spacing is not None else self.spacing
            )
        except ValueError as e:
            raise ValueError(f'case "{case_id}": {e}') from None
        self._cases[case_id] = result
        return result

    def per_case(self) -> list[dict[str, str | float]]:
        """One row per (case, foreground class): case_id, class, status, dice, iou, hd95, assd."""
        rows: list[dict[str, str | float]] = []
        for case_id, r in self._cases.items():
            for i, name in enumerate(self.class_names):
                row: dict[str, str | float] = {"case_id": case_id, "class": name}
                row["status"] = _status(bool(r["in_pred"][i]), bool(r["in_target"][i]))
                row |= {m: float(r[m][i]) for m in METRICS}
                rows.append(row)
        return rows

    def _counted(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        stacked = {key: np.stack([r[key] for r in self._cases.values()]) for key in (*METRICS, "present")}
        return stacked, stacked["present"]  # (cases, classes); absent entries are those not present

    def summary(self) -> dict[str, float]:
        """Per-class means over cases (absent entries excluded), their means over classes, and counts."""
        if not self._cases:
            raise ValueError("no cases were added: call add(case_id, pred, target) before summary()")
        values, counted = self._counted()
        out: dict[str, float] = {}
        measured = counted.any(axis=0)
        for m in METRICS:
            per_class = [
                float(values[m][counted[:, i], i].mean()) if measured[i] else math.nan
                for i in range(len(self.class_names))
            ]
            out |= {f"{m}/{name}": v for name, v in zip(self.class_names, per_class)}
            kept = [v for v, ok in zip(per_class, measured) if ok]
            out[f"mean_{m}"] = float(np.mean(kept)) if kept else math.nan
        statuses = [row["status"] for row in self.per_case()]
        out["n_cases"] = float(len(self._cases))
        out["n_excluded_absent"] = float(statuses.count("absent"))
        out["n_missed"] = float(statuses.count("missed"))
        out["n_false_positive"] = float(statuses.count("false_positive"))
        out["n_unmeasured_classes"] = float((~measured).sum())
        return out

    def write_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the per-case rows to ``path`` atomically (temp file in the same folder, then rename)."""
        return atomic_write_csv(path, self.per_case(), ["case_id", "class", "status", *METRICS])

    def format_case_table(self) -> str:
        """Per-case console table: Dice and HD95 of each class (absent classes shown as "-")."""
        width = max(len("case"), *(len(c) for c in self._cases))
        head = f"{'case':<{width}}  " + "  ".join(f"{n[:12]:>12} {'hd95':>7}" for n in self.class_names)
        lines = [head, "-" * len(head)]
        for case_id, r in self._cases.items():
            cells = [
                f"{r['dice'][i]:>12.3f} {r['hd95'][i]:>7.2f}" if r["present"][i] else f"{'-':>12} {'-':>7}"
                for i in range(len(self.class_names))
            ]
            lines.append(f"{case_id:<{width}}  " + "  ".join(cells))
        return "\n".join(lines)

    def format_table(self) -> str:
        """Per-class console table: means, number of counted cases and the status counts."""
        s = self.summary()
        rows = self.per_case()
        width = max(len("class"), *(len(n) for n in self.class_names))
        head = f"{'class':<{width}}  {'dice':>6}  {'iou':>6}  {'hd95':>8}  {'assd':>8}  {'n':>4}  absent  missed  false_pos"
        lines = [head, "-" * len(head)]
        for name in self.class_names:
            st = [r["status"] for r in rows if r["class"] == name]
            n_counted = len(st) - st.count("absent")
            vals = "  ".join(
                f"{s[f'{m}/{name}']:>{w}.{p}f}" for m, w, p in zip(METRICS, (6, 6, 8, 8), (3, 3, 2, 2))
            )
            lines.append(
                f"{name:<{width}}  {vals}  {n_counted:>4}  {st.count('absent'):>6}  {st.count('missed'):>6}  "
                f"{st.count('false_positive'):>9}"
            )
        means = "  ".join(
            f"{s[f'mean_{m}']:>{w}.{p}f}" for m, w, p in zip(METRICS, (6, 6, 8, 8), (3, 3, 2, 2))
        )
        lines += ["-" * len(head), f"{'mean':<{width}}  {means}"]
        lines.append(
            f"{int(s['n_cases'])} cases; {int(s['n_excluded_absent'])} absent class entries (in neither prediction "
            "nor reference) excluded from the means; missed / false positives scored dice 0, distance = diagonal"
        )
        if s["n_unmeasured_classes"]:
            lines.append(f"{int(s['n_unmeasured_classes'])} class(es) absent from every case: shown as nan")
        return "\n".join(lines)
