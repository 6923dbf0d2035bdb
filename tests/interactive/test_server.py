"""``weakseg serve``: the JSON API (no path from the browser, bounded bodies, validated clicks, atomic save
that asks before overwriting) and an end-to-end browser test with headless Chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from weakseg.cli import main
from weakseg.config import DataConfig
from weakseg.data import build_datasets

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def refine_ckpt(tmp_path_factory):
    from tests.conftest import REPO

    root = tmp_path_factory.mktemp("serve")
    tiny = str(REPO / "configs" / "tiny.yaml")
    assert (
        main(["train", tiny, "--set", f"train.run_dir={root / 'first'}", "--set", "train.max_steps=1"]) == 0
    )
    sets = [
        "method.name=refine",
        f"method.params={{initial: {root / 'first' / 'last.pt'}}}",
        f"train.run_dir={root / 'refine'}",
    ]
    assert main(["train", tiny, *[a for s in sets for a in ("--set", s)], "--set", "train.max_steps=1"]) == 0
    return root / "refine" / "last.pt"


def _serve(ckpt, data):
    from weakseg.interactive.server import SegmentationSession, make_server

    server = make_server(SegmentationSession(ckpt, data), port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def served(refine_ckpt, tmp_path_factory):
    from tests.test_cli import _phantom_folder

    data = _phantom_folder(tmp_path_factory.mktemp("data") / "data", n=1, size=32)
    shutil.rmtree(data / "masks")  # images only, as a user's folder to annotate
    server = _serve(refine_ckpt, data)
    yield f"http://127.0.0.1:{server.server_port}", data
    server.shutdown()
    server.server_close()


LPS = np.diag([-0.8, -0.8, 2.5, 1.0])  # a CT volume as DICOM converters write it: LPS, anisotropic


@pytest.fixture(scope="module")
def served_volume(refine_ckpt, tmp_path_factory):
    import nibabel as nib

    from weakseg.data.phantoms import phantom_case

    data = tmp_path_factory.mktemp("volume") / "data"
    (data / "images").mkdir(parents=True)
    image, _ = phantom_case(0, "ct", n_slices=6, size=32)  # (Z, H, W) HU
    nib.save(
        nib.Nifti1Image(image.transpose(1, 2, 0).astype(np.int16), LPS),
        str(data / "images" / "ct_p00.nii.gz"),
    )
    server = _serve(refine_ckpt, data)
    yield f"http://127.0.0.1:{server.server_port}", data
    server.shutdown()
    server.server_close()


def _request(url: str, body: dict | bytes | None = None) -> tuple[int, dict | bytes]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as res:
            raw, code, kind = res.read(), res.status, res.headers.get("Content-Type")
    except urllib.error.HTTPError as e:
        raw, code, kind = e.read(), e.code, e.headers.get("Content-Type")
    return code, json.loads(raw) if kind == "application/json" else raw


def test_api_segments_validates_and_saves_without_clobbering(served):
    url, data = served
    code, listing = _request(f"{url}/api/slices")
    assert code == 200 and len(listing["slices"]) == 2 and listing["classes"][1] == "liver"
    code, png = _request(f"{url}/api/image/0")
    assert code == 200 and png[:4] == b"\x89PNG"
    for bad in ("/api/image/..%2F..%2Fetc%2Fpasswd", "/api/image/7", "/../../etc/passwd"):
        assert _request(url + bad)[0] in (400, 404)
    code, out = _request(
        f"{url}/api/segment", {"index": 0, "target": 1, "clicks": [{"y": 10, "x": 12, "fg": True}]}
    )
    assert code == 200 and out["ms"] >= 0  # latency: benchmarks/serve_latency.py
    import base64
    import io

    from PIL import Image

    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(out["mask"]))))
    assert mask.shape == (32, 32) and set(np.unique(mask)) <= {0, 255}
    assert mask[10, 12] == 255  # the foreground click is kept (click discs are enforced)
    assert out["pixels"] == int((mask == 255).sum()) > 0
    assert _request(f"{url}/api/segment", {"index": 0, "clicks": [{"y": 99, "x": 0, "fg": True}]})[0] == 400
    assert _request(f"{url}/api/segment", {"index": "../x"})[0] == 400
    assert _request(f"{url}/api/segment", b"x" * (64 * 1024 + 1))[0] == 413
    form = urllib.request.Request(f"{url}/api/save", data=b"{}", headers={"Content-Type": "text/plain"})
    with pytest.raises(urllib.error.HTTPError, match="415"):  # a cross-site form post
        urllib.request.urlopen(form)
    rebound = urllib.request.Request(f"{url}/api/slices", headers={"Host": "evil.example:80"})
    with pytest.raises(urllib.error.HTTPError, match="403"):  # DNS rebinding
        urllib.request.urlopen(rebound)
    body = {"index": 1, "target": 2, "clicks": [{"y": 16, "x": 8, "fg": True}]}
    code, saved = _request(f"{url}/api/save", body)
    assert code == 200
    target = data / "interactive_masks" / saved["saved"]
    before = target.read_bytes()
    assert _request(f"{url}/api/save", body)[0] == 409 and target.read_bytes() == before  # asks first
    assert _request(f"{url}/api/save", {**body, "overwrite": True})[0] == 200
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]  # no temp file left


@contextlib.contextmanager
def _page(url: str):
    """The page at ``url`` in headless Chromium (Playwright), ready, dialogs accepted; skips without them."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium on this machine (Debian package chromium); .ci/run installs it")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=20_000)
        try:
            yield page
        finally:
            browser.close()


def test_browser_clicks_change_the_mask_and_save_loads(served):
    url, data = served
    for old in (data / "interactive_masks").glob("*.png") if (data / "interactive_masks").is_dir() else []:
        old.unlink()
    with _page(url) as page:
        canvas = page.locator("#canvas")
        version = int(canvas.get_attribute("data-version"))
        pixels = canvas.get_attribute("data-pixels")
        box = canvas.bounding_box()
        for fx, fy in ((0.3, 0.4), (0.6, 0.5), (0.5, 0.7)):  # foreground clicks on the phantom's body
            page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
            page.wait_for_function(f"Number(document.getElementById('canvas').dataset.version) > {version}")
            version = int(canvas.get_attribute("data-version"))
            if canvas.get_attribute("data-pixels") != pixels:
                break
        assert canvas.get_attribute("data-pixels") != pixels, "the clicks should change the mask"
        page.click("#undo")
        page.wait_for_function(f"Number(document.getElementById('canvas').dataset.version) > {version}")
        page.click("#save")
        page.wait_for_function("document.getElementById('save').dataset.saved !== undefined")
        saved = page.locator("#save").get_attribute("data-saved")
    assert (data / "interactive_masks" / saved).is_file()
    other = {"index": 1, "target": 1, "clicks": [{"y": 16, "x": 16, "fg": True}], "overwrite": True}
    assert _request(f"{url}/api/save", other)[0] == 200  # every image masked: the folder is a dataset
    cfg = DataConfig(source="folder", root=str(data), mask_dir="interactive_masks", val_fraction=0.0)
    ds = build_datasets(cfg)["labeled"]
    assert len(ds) == 2 and ds[0]["label"].shape == (32, 32) and int(ds[0]["label"].max()) <= 4
    assert np.asarray(ds[0]["label"]).dtype.kind == "i" and saved in {Path(r.label).name for r in ds.records}


def test_guided_modes_answer_and_unknown_modes_are_refused(served):
    import base64
    import io

    from PIL import Image

    url, _ = served
    code, listing = _request(f"{url}/api/slices")
    assert listing["modes"] == ["refine", "guided", "refine+guided"]  # no box checkpoint: no box mode
    clicks = [{"y": 10, "x": 12, "fg": True}, {"y": 25, "x": 25, "fg": False}]
    for mode in ("guided", "refine+guided"):
        code, out = _request(f"{url}/api/segment", {"index": 0, "target": 1, "clicks": clicks, "mode": mode})
        assert code == 200, out
        mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(out["mask"])))) > 0
        assert mask[10, 12] and not mask[25, 25]  # the clicks' discs hold their labels
    code, out = _request(f"{url}/api/segment", {"index": 0, "target": 1, "clicks": clicks, "mode": "box"})
    assert code == 400 and "mode must be one of" in out["error"]


def test_empty_body_is_400(served):
    url, _ = served
    code, payload = _request(f"{url}/api/segment", b"")
    assert code == 400 and "empty body" in payload["error"]


def test_stalled_clients_time_out_threads_are_bounded_and_drops_are_quiet(capfd):
    import socket
    import time

    from weakseg.interactive.server import make_server

    server = make_server(None, port=0, timeout=0.5, max_threads=2)  # no session: only the page is asked for
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = ("127.0.0.1", server.server_port)
    try:
        stalled = [socket.create_connection(address) for _ in range(2)]  # they never send a byte
        time.sleep(0.2)
        extra = socket.create_connection(address, timeout=2)
        assert extra.recv(200).startswith(b"HTTP/1.1 503")  # answered at once, no third thread
        time.sleep(1.0)  # the stalled ones timed out: their threads are free again
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/", timeout=5) as res:
            assert res.status == 200
        drop = socket.create_connection(address)  # a client that sends half a request and goes away
        head = f"POST /api/segment HTTP/1.1\r\nHost: 127.0.0.1:{server.server_port}\r\n"
        drop.sendall((head + "Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{").encode())
        drop.close()
        time.sleep(0.8)
        for s in [*stalled, extra]:
            s.close()
    finally:
        server.shutdown()
        server.server_close()
    assert "Traceback" not in capfd.readouterr().err


def test_volume_api_slices_windows_and_saves_a_nifti_slice_with_the_affine(served_volume):
    import nibabel as nib

    url, data = served_volume
    code, listing = _request(f"{url}/api/slices")
    assert code == 200 and listing["slices"][0]["kind"] == "volume" and listing["slices"][0]["depth"] == 6
    assert listing["windows"] == ["auto", "abdomen", "bone", "lung"]
    soft, bone = (
        _request(f"{url}/api/image/0?z=2&window=abdomen")[1],
        _request(f"{url}/api/image/0?z=2&window=bone")[1],
    )
    assert soft[:4] == b"\x89PNG" and soft != bone  # the window changes the picture
    assert _request(f"{url}/api/labels/0?z=2")[1][:4] == b"\x89PNG"
    for bad in ("/api/image/0?z=6", "/api/image/0?z=-1", "/api/image/0?window=brain", "/api/labels/0?z=x"):
        assert _request(url + bad)[0] == 400, bad
    click = {"index": 0, "z": 2, "target": 1, "clicks": [{"y": 5, "x": 7, "fg": True}]}
    assert _request(f"{url}/api/segment", {**click, "z": 6})[0] == 400
    code, out = _request(f"{url}/api/save", click)
    assert code == 200 and out["saved"] == "ct_p00.nii.gz"
    saved = nib.load(str(data / "interactive_masks" / "ct_p00.nii.gz"))
    source = nib.load(str(data / "images" / "ct_p00.nii.gz"))
    assert saved.shape == source.shape and np.allclose(saved.affine, source.affine)
    label = np.asarray(saved.dataobj)
    assert set(np.unique(label)) <= {0, 1} and label[..., 2].any() and not np.delete(label, 2, axis=2).any()
    # the view is radiological (anterior up, patient right on the left): the clicked view pixel (5, 7) of an
    # LPS volume is stored voxel (x=7, y=5): RAS flips both in-plane axes, the view flips and transposes back
    assert label[7, 5, 2] == 1
    code, out = _request(f"{url}/api/save", click)
    assert code == 409 and "slice 2 of ct_p00.nii.gz already has class liver" in out["error"]
    assert _request(f"{url}/api/save", {**click, "overwrite": True})[0] == 200


def test_browser_on_a_volume_scrolls_windows_clicks_and_saves(served_volume):
    import nibabel as nib

    url, data = served_volume
    saved = data / "interactive_masks" / "ct_p00.nii.gz"
    saved.unlink(missing_ok=True)
    with _page(url) as page:
        canvas = page.locator("#canvas")
        for _ in range(3):  # slice 0 -> 3 with the keyboard
            version = int(canvas.get_attribute("data-version"))
            page.keyboard.press("ArrowUp")
            page.wait_for_function(f"Number(document.getElementById('canvas').dataset.version) > {version}")
        assert canvas.get_attribute("data-z") == "3"
        version = int(canvas.get_attribute("data-version"))
        page.select_option("#window", "bone")
        page.wait_for_function(f"Number(document.getElementById('canvas').dataset.version) > {version}")
        page.keyboard.press("+")
        assert float(canvas.get_attribute("data-zoom")) > 1
        page.keyboard.press("0")
        box = canvas.bounding_box()
        version = int(canvas.get_attribute("data-version"))
        page.mouse.click(box["x"] + 0.5 * box["width"], box["y"] + 0.5 * box["height"])
        page.wait_for_function(f"Number(document.getElementById('canvas').dataset.version) > {version}")
        page.click("#save")
        page.wait_for_function("document.getElementById('save').dataset.saved !== undefined")
    label = np.asarray(nib.load(str(saved)).dataobj)
    assert nib.load(str(saved)).shape == (32, 32, 6) and np.allclose(nib.load(str(saved)).affine, LPS)
    assert label[..., 3].any() and not np.delete(label, 3, axis=2).any()  # the clicked slice, only
    assert label[15:17, 15:17, 3].all()  # the click at the centre of the view: its disc is the class


def test_volume_slices_reach_the_network_at_its_training_size_and_save_at_the_volumes(refine_ckpt, tmp_path):
    """A model trained with data.resize sees the volume's slices resized as in training; the saved label
    volume keeps the volume's own grid."""
    import nibabel as nib

    from weakseg.data.phantoms import phantom_case
    from weakseg.interactive.clicks import Click
    from weakseg.interactive.server import SegmentationSession

    (tmp_path / "images").mkdir()
    image, _ = phantom_case(1, "ct", n_slices=4, size=32)
    nib.save(
        nib.Nifti1Image(image.transpose(1, 2, 0).astype(np.int16), LPS), str(tmp_path / "images" / "v.nii.gz")
    )
    session = SegmentationSession(refine_ckpt, tmp_path)
    session.cfg.data.resize = [16, 16]  # as if trained at 16 px
    assert tuple(session._image(0, 1).shape) == (1, 16, 16) and session.view_shape(0) == (16, 16)
    assert session.image_png(0, 1, "abdomen")[:4] == b"\x89PNG"
    mask = session.segment(0, 1, [Click(8, 8, True)], None, "refine", 1)
    assert mask.shape == (16, 16) and mask[8, 8]
    session.save(0, 1, mask, False, 1)
    saved = np.asarray(nib.load(str(tmp_path / "interactive_masks" / "v.nii.gz")).dataobj)
    assert (
        saved.shape == (32, 32, 4) and saved[..., 1].sum() >= 4 * mask.sum() * 0.9
    )  # upsampled 2x2 per pixel
