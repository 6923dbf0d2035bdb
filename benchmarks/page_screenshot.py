"""The picture of ``weakseg serve`` on a volume for docs/interactive.md: phantom CT volumes written as NIfTI the
way DICOM converters write CT (LPS, voxel i along the image columns), a first network and a refine network
trained on their slices (``data.source: nifti``, so they read the RAS arrays the page serves), the page in
headless Chromium (Playwright) on an unseen volume, scrolled to a middle slice, abdomen window, two clicks.

    python benchmarks/page_screenshot.py            # writes docs/img/interactive_volume.png

Needs Debian's chromium and the playwright package (the `[dev]` extra). Runs live in runs/bench/page/.
"""

from __future__ import annotations

import argparse
import shutil
import threading

import numpy as np
from common import REPO, fit_or_reuse

from weakseg.config import load_config

OUT = REPO / "runs" / "bench" / "page"


def _write(folder, case: int, slices: int = 16, size: int = 96) -> None:
    """Phantom case ``case`` as images/ct_pNN.nii.gz and masks/ct_pNN.nii.gz (LPS, i along the columns)."""
    import nibabel as nib

    from weakseg.data.phantoms import phantom_case

    image, label = phantom_case(case, "ct", n_slices=slices, size=size)  # (Z, H, W)
    affine = np.diag([-0.8, -0.8, 2.5, 1.0])
    for sub, array, dtype in (("images", image, np.int16), ("masks", label, np.uint8)):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        nib.save(
            nib.Nifti1Image(array.transpose(2, 1, 0).astype(dtype), affine),
            str(folder / sub / f"ct_p{case:02d}.nii.gz"),
        )


def _configs(steps: int):
    sets = ["data.source=nifti", f"data.root={OUT / 'train'}", "data.slice_axis=2", "data.intensity.preset=ct_window",
            "data.val_fraction=0.25", "train.save_pictures=false", f"train.max_steps={steps}",
            f"train.eval_every={steps}", "train.batch_size=8",
            "model.params={channels: [16, 32, 64, 128], strides: [2, 2, 2], num_res_units: 1}"]  # fmt: skip
    first = load_config(REPO / "configs" / "tiny.yaml", [*sets, "train.name=first"])
    refine = load_config(REPO / "configs" / "tiny.yaml", [*sets, "train.name=refine", "method.name=refine",
                         f"method.params={{initial: {OUT / 'first' / 'best.pt'}}}"])  # fmt: skip
    return first, refine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--steps", type=int, default=400, help="training steps of each network (default: %(default)s)"
    )
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from weakseg.interactive.server import SegmentationSession, make_server

    if not (OUT / "train" / "images").is_dir():
        for case in range(12):
            _write(OUT / "train", case)
    first, refine = _configs(args.steps)
    fit_or_reuse(first, OUT / "first")
    fit_or_reuse(refine, OUT / "refine")
    data = OUT / "data"
    shutil.rmtree(data, ignore_errors=True)
    _write(data, 20)  # a case the networks never saw
    shutil.rmtree(data / "masks")
    server = make_server(SegmentationSession(OUT / "refine" / "last.pt", data), port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    dst = REPO / "docs" / "img" / "interactive_volume.png"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 900, "height": 760})
            page.goto(f"http://127.0.0.1:{server.server_port}/")
            page.wait_for_selector("body[data-ready='1']", timeout=30_000)
            canvas = page.locator("#canvas")

            def settle(action) -> None:
                version = int(canvas.get_attribute("data-version"))
                action()
                page.wait_for_function(
                    f"Number(document.getElementById('canvas').dataset.version) > {version}"
                )

            for _ in range(8):
                settle(lambda: page.keyboard.press("ArrowUp"))
            settle(lambda: page.select_option("#window", "abdomen"))
            box = canvas.bounding_box()
            for fx, fy in ((0.3, 0.4), (0.45, 0.3)):
                settle(
                    lambda fx=fx, fy=fy: page.mouse.click(
                        box["x"] + fx * box["width"], box["y"] + fy * box["height"]
                    )
                )
            page.screenshot(path=str(dst), full_page=True)
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    print(f"wrote {dst}")


if __name__ == "__main__":
    main()
