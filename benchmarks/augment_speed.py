"""Throughput of random affine + elastic augmentation (image and mask together), ours next to the peers.

    python benchmarks/augment_speed.py

2D: 256x256 single-channel CT phantom slices with label masks, batch 32. 3D: 96^3 phantom volumes with
masks, batch 2. Every library gets the same recipe as far as its API allows: rotation +-15 degrees in the
(H, W) plane, isotropic-ish zoom 0.9-1.1, then an elastic field of a few pixels:
- coarse-grid form (MONAI Rand2DElastic, TorchIO B-spline, ours ``elastic_grid``): ~5-7 control points
  per axis, node displacement std ~4 px (2D) / ~3 px (3D);
- dense Simard form (albumentations, kornia, MONAI Rand3DElastic, ours ``elastic_dense``): uniform(-1, 1)
  noise smoothed by a Gaussian of sigma 16 px (2D) / 8 px (3D), scaled to a displacement std ~4 / ~3 px.
Per-sample libraries run one sample at a time (as in a loader worker); batched ones take the whole batch.
A peer whose package is missing is skipped with a note (TorchIO: ``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from common import REPO, finish, machine, parent_parser

from weakseg.augment.torch_backend import BatchAugment
from weakseg.data.intensity import ct_window
from weakseg.data.phantoms import phantom_case
from weakseg.keys import Keys

ROT, ZOOM = 15.0, (0.9, 1.1)
SIGMA2, ALPHA2 = 16.0, 400.0  # dense 2D: std ~ alpha * 0.577 / (sqrt(4 pi) sigma) ~ 4 px
SIGMA3, ALPHA3 = 8.0, 780.0  # dense 3D: std ~ alpha * 0.577 / ((4 pi)^0.75 sigma^1.5) ~ 3 px
GRID_STD2, GRID_STD3 = 4.0, 3.0


def data(dims: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """(B, *S) float32 images in [0, 1] and int64 labels 0..4 from the CT phantom."""
    if dims == 2:
        image, label = phantom_case(0, "ct", n_slices=batch, size=256)
    else:
        vols = [phantom_case(i, "ct", n_slices=96, size=96) for i in range(batch)]
        image, label = (np.stack([v[k].transpose(1, 2, 0) for v in vols]) for k in (0, 1))  # (H, W, D)
    return ct_window(image, 40, 400), label.astype(np.int64)


def ours(dims: int, form: str, device: str) -> Callable:
    if form == "grid":
        elastic = {"name": "elastic_grid", "grid": 5, "sigma": GRID_STD2 if dims == 2 else GRID_STD3}
    else:
        elastic = {"name": "elastic_dense", "sigma": SIGMA2, "alpha": ALPHA2}
        if dims == 3:
            elastic.update(sigma=SIGMA3, alpha=ALPHA3)
    aug = BatchAugment(
        [{"name": "rotate", "degrees": [-ROT, ROT]}, {"name": "scale", "factor": list(ZOOM)}, elastic], dims
    )

    def make(images: np.ndarray, labels: np.ndarray) -> Callable:
        batch = {
            Keys.IMAGE: torch.from_numpy(images)[:, None].to(device),
            Keys.LABEL: torch.from_numpy(labels).to(device),
        }
        gen = torch.Generator().manual_seed(0)

        def run() -> int:
            out = aug(batch, gen)
            if device == "cuda":
                torch.cuda.synchronize()
            return len(out[Keys.IMAGE])

        return run

    return make


def albumentations_2d(images: np.ndarray, labels: np.ndarray) -> Callable:
    import albumentations as A

    aug = A.Compose(
        [
            A.Affine(rotate=(-ROT, ROT), scale=ZOOM, p=1.0),
            A.ElasticTransform(alpha=ALPHA2, sigma=SIGMA2, noise_distribution="uniform", p=1.0),
        ]
    )
    masks = labels.astype(np.uint8)

    def run() -> int:
        for img, m in zip(images, masks):
            aug(image=img, mask=m)
        return len(images)

    return run


def kornia_2d(images: np.ndarray, labels: np.ndarray) -> Callable:
    import kornia.augmentation as K

    aug = K.AugmentationSequential(
        K.RandomAffine(degrees=ROT, scale=ZOOM, p=1.0),
        K.RandomElasticTransform(
            kernel_size=(97, 97), sigma=(SIGMA2, SIGMA2), alpha=(ALPHA2 * 2 / 256,) * 2, p=1.0
        ),  # kornia's alpha is in normalised units: pixels * 2 / size
        data_keys=["input", "mask"],
    )
    x, m = torch.from_numpy(images)[:, None], torch.from_numpy(labels)[:, None].float()

    def run() -> int:
        aug(x, m)
        return len(x)

    return run


def monai_fn(dims: int) -> Callable:
    def make(images: np.ndarray, labels: np.ndarray) -> Callable:
        from monai.transforms import Rand2DElasticd, Rand3DElasticd

        common = dict(keys=["image", "label"], prob=1.0, mode=("bilinear", "nearest"), padding_mode="zeros")
        if dims == 2:
            aug = Rand2DElasticd(
                spacing=(64, 64), magnitude_range=(GRID_STD2, GRID_STD2), rotate_range=(math.radians(ROT),),
                scale_range=(0.1, 0.1), **common,
            )  # fmt: skip
        else:
            aug = Rand3DElasticd(
                sigma_range=(SIGMA3, SIGMA3), magnitude_range=(ALPHA3, ALPHA3),
                rotate_range=(0, 0, math.radians(ROT)), scale_range=(0.1, 0.1, 0.1), **common,
            )  # fmt: skip
        aug.set_random_state(0)
        samples = [
            {"image": torch.from_numpy(i)[None], "label": torch.from_numpy(lab)[None]}
            for i, lab in zip(images, labels)
        ]

        def run() -> int:
            for s in samples:
                aug(s)
            return len(samples)

        return run

    return make


def torchio_fn(dims: int) -> Callable:
    def make(images: np.ndarray, labels: np.ndarray) -> Callable:
        import torchio as tio

        if dims == 2:  # TorchIO is 3D: a slice is (1, H, W, 1), moved in-plane only
            affine = tio.RandomAffine(scales=(*ZOOM, *ZOOM, 1, 1), degrees=(0, 0, 0, 0, -ROT, ROT))
            elastic = tio.RandomElasticDeformation(
                num_control_points=(7, 7, 5), max_displacement=(7.5, 7.5, 0)
            )
        else:
            affine = tio.RandomAffine(scales=ZOOM, degrees=(0, 0, 0, 0, -ROT, ROT))
            elastic = tio.RandomElasticDeformation(num_control_points=7, max_displacement=5.0)
        aug = tio.Compose([affine, elastic])
        shape = (lambda a: a[None, ..., None]) if dims == 2 else (lambda a: a[None])
        subjects = [
            tio.Subject(
                image=tio.ScalarImage(tensor=torch.from_numpy(shape(i))),
                label=tio.LabelMap(tensor=torch.from_numpy(shape(lab))),
            )
            for i, lab in zip(images, labels)
        ]

        def run() -> int:
            for s in subjects:
                aug(s)
            return len(subjects)

        return run

    return make


def measure(make: Callable, images: np.ndarray, labels: np.ndarray, repeats: int) -> float:
    """Samples per second over ``repeats`` passes of the batch, after one warm-up pass."""
    run = make(images, labels)
    run()
    t0, n = time.perf_counter(), 0
    for _ in range(repeats):
        n += run()
    return n / (time.perf_counter() - t0)


def peers(dims: int) -> list[tuple[str, str, str, Callable | None]]:
    """(library, elastic form, package, factory) rows for ``dims``."""
    rows = [
        ("albumentations (per sample)", "dense", "albumentations", albumentations_2d if dims == 2 else None),
        ("kornia (batched)", "dense", "kornia", kornia_2d if dims == 2 else None),
        ("MONAI (per sample)", "grid" if dims == 2 else "dense", "monai", monai_fn(dims)),
        ("TorchIO (per sample)", "B-spline", "torchio", torchio_fn(dims)),
    ]
    return rows


PICTURE_PIPELINE = [
    {"name": "flip", "p": 0.5, "axes": [1]},
    {"name": "rotate", "degrees": [-20.0, 20.0]},
    {"name": "scale", "factor": [0.85, 1.15]},
    {"name": "elastic_grid", "grid": 4, "sigma": 6.0},
    {"name": "gamma", "p": 0.5, "gamma": [0.7, 1.5]},
    {"name": "gaussian_noise", "p": 0.5, "std": [0.0, 0.03]},
]


def picture(path=REPO / "docs" / "img" / "augment_torch.png") -> None:
    """One phantom CT slice and five draws of PICTURE_PIPELINE (kidneys 2 <-> 3 swap on left-right flips)."""
    import io

    import matplotlib.pyplot as plt
    from PIL import Image

    from weakseg.fileio import atomic_write_bytes
    from weakseg.methods.pictures import label_overlay

    image, label = phantom_case(0, "ct", n_slices=8, size=192)
    x = torch.from_numpy(ct_window(image[6], 40, 400))[None, None].repeat(5, 1, 1, 1)
    y = torch.from_numpy(label[6]).long()[None].repeat(5, 1, 1)
    out = BatchAugment(PICTURE_PIPELINE, 2, swap_labels=[[2, 3]])(
        {Keys.IMAGE: x, Keys.LABEL: y}, torch.Generator().manual_seed(1)
    )
    panels = [(x[0].numpy(), y[0].numpy(), "original")] + [
        (out[Keys.IMAGE][i].numpy(), out[Keys.LABEL][i].numpy(), f"draw {i + 1}") for i in range(5)
    ]
    fig, axes = plt.subplots(1, 6, figsize=(12, 2.3))
    for ax, (img, lab, title) in zip(axes, panels):
        ax.imshow(label_overlay(img, lab))
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle("torch backend, one batch: " + ", ".join(t["name"] for t in PICTURE_PIPELINE), fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    small = io.BytesIO()
    Image.open(buf).convert("RGB").quantize(colors=128).save(small, format="png", optimize=True)
    atomic_write_bytes(path, small.getvalue())
    print(f"wrote {path.relative_to(REPO)} ({len(small.getvalue()) // 1024} KB)")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__,
        parents=[parent_parser(helps={"threads": "torch and OpenCV CPU threads"}, threads=2)],
    )
    ap.add_argument("--repeats-2d", type=int, default=4, help="timed passes over the 2D batch of 32")
    ap.add_argument("--repeats-3d", type=int, default=3, help="timed passes over the 3D batch of 2")
    ap.add_argument("--picture-only", action="store_true", help="only redraw docs/img/augment_torch.png")
    args = ap.parse_args()
    picture()
    if args.picture_only:
        return
    torch.set_num_threads(args.threads)
    try:  # albumentations runs on OpenCV: give it the same number of threads as torch
        import cv2

        cv2.setNumThreads(args.threads)
    except ImportError:
        pass
    warnings.filterwarnings("ignore")
    load_before = os.getloadavg()[0]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results, notes = [], []
    for dims, batch, repeats in ((2, 32, args.repeats_2d), (3, 2, args.repeats_3d)):
        images, labels = data(dims, batch)
        rows = [
            (f"ours, BatchAugment ({dev}, batched)", form, "torch", ours(dims, form, dev), args.threads)
            for dev in devices
            for form in ("grid", "dense")
        ]
        for library, form, package, make, threads in [*[(*p, args.threads) for p in peers(dims)], *rows]:
            if make is None:
                continue
            if importlib.util.find_spec(package) is None:
                notes.append(f"{library}: skipped, `{package}` is not installed")
                print(notes[-1])
                continue
            torch.set_num_threads(threads)
            rate = measure(make, images, labels, repeats)
            torch.set_num_threads(args.threads)
            results.append(
                {"dims": dims, "library": library, "elastic": form, "per_s": rate, "samples": batch * repeats}
            )
            print(f"{dims}D {library:40s} {form:9s} {rate:8.2f} /s", flush=True)
    load_after = os.getloadavg()[0]
    busy = max(load_before, load_after) > 1.5 * (os.cpu_count() or 1) / 2
    notes.append(
        f"1-minute load average {load_before:.1f} before and {load_after:.1f} after the run on {os.cpu_count()} "
        "cores" + ("; other jobs shared the CPU, so absolute numbers are low for everyone" if busy else "")
    )
    report(results, notes, args)


def report(results: list[dict], notes: list[str], args) -> None:
    ratios = {}
    for dims in (2, 3):
        rows = [r for r in results if r["dims"] == dims]
        peer = max(
            (r for r in rows if not r["library"].startswith("ours")), key=lambda r: r["per_s"], default=None
        )
        for r in rows:
            if r["library"].startswith("ours") and peer:
                r["vs_fastest_peer"] = r["per_s"] / peer["per_s"]
                same = [
                    p["per_s"]
                    for p in rows
                    if not p["library"].startswith("ours") and p["elastic"] == r["elastic"]
                ]
                if same:
                    r["vs_same_form"] = r["per_s"] / max(same)
        ratios[f"{dims}d_fastest_peer"] = peer["library"] if peer else None
    lines = [
        "## Augmentation throughput: random affine + elastic, image and mask",
        "",
        "`python benchmarks/augment_speed.py`",
        "",
        f"Machine: {machine()}; torch threads: {args.threads}. 2D: 256x256 CT phantom slices + masks, batch 32; "
        "3D: 96^3 phantom volumes + masks, batch 2. Recipe: rotation +-15 deg in-plane, zoom 0.9-1.1, elastic "
        "field of ~4 px (2D) / ~3 px (3D) std, either coarse-grid (5-7 nodes per axis) or dense Simard "
        f"(sigma {SIGMA2:g} px 2D / {SIGMA3:g} px 3D). Per-sample libraries run one sample at a time, as in one "
        "loader worker; batched ones take the batch. Everyone runs with the same thread count (torch and "
        "OpenCV). Ratios: ours / fastest peer of the same dimension (any elastic form), and ours / fastest "
        "peer with the same elastic form.",
        "",
        "| data | library | elastic form | samples/s | ours / fastest peer | ours / fastest peer, same form |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in results:
        unit = "images" if r["dims"] == 2 else "volumes"
        ratio = f"{r['vs_fastest_peer']:.2f}x" if "vs_fastest_peer" in r else ""
        same = f"{r['vs_same_form']:.2f}x" if "vs_same_form" in r else ""
        lines.append(
            f"| {r['dims']}D | {r['library']} | {r['elastic']} | {r['per_s']:.1f} {unit}/s | {ratio} | {same} |"
        )
    lines += ["", *[f"- {n}" for n in notes]]
    finish("augment_speed", {"results": results, "notes": notes, **ratios}, "\n".join(lines), echo=False)


if __name__ == "__main__":
    main()
