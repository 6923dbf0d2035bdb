"""``weakseg serve CKPT --data DIR``: a local web page to correct a model's segmentation with clicks or a box.

The page (``page.html`` beside this file) lists the images of ``DIR/images``, shows one with the current mask
of the chosen class over it, and sends the user's clicks (left: foreground, right or shift: background) or box
to the server, which answers with the refined mask; undo drops the last click; save writes the mask.

Server side (standard library ``http.server``, bound to 127.0.0.1 unless ``--host``):

* ``CKPT`` is a ``refine`` checkpoint (its first network gives the initial result; clicks go to the
  refinement network); ``--box CKPT`` adds a ``box`` checkpoint for box mode (then clicks inside a box
  fine-tune it to the image, BIFSeg). Modes (``mode`` of a request; ``/api/slices`` lists those available):
  ``refine``, ``guided`` (guided feature modulation of the first network, Rupprecht et al.: its features
  rescaled per channel to fit the clicks, weights frozen), ``refine+guided`` (refine with the guided result as
  prior) and ``box``.
* The browser names images by their index in the server's own list; nothing it sends is ever used as a path.
  Request bodies are bounded (``MAX_BODY`` bytes), and clicks, boxes and classes are validated. Requests must
  carry this server's Host (no DNS rebinding) and POSTs a JSON content type (no cross-site form posts).
* Save recomputes the mask from the clicks (the browser's picture is never trusted) and writes
  ``DIR/interactive_masks/NAME.png`` atomically (temp file + rename), a label map that keeps the other classes
  saved before; an existing mask is replaced only when the request confirms it (``overwrite``), else the
  answer is 409 and the page asks. ``DIR`` with ``mask_dir: interactive_masks`` then loads through the core
  folder reader.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from weakseg.data.dataset import interp_mode
from weakseg.data.io import network_input_size
from weakseg.data.nifti import NIFTI_SUFFIXES, load_nifti, nifti_shape, nifti_stem
from weakseg.data.readers import read_folder_records
from weakseg.fileio import atomic_write_bytes
from weakseg.interactive.clicks import Click, enforce_clicks

__all__ = ["MAX_BODY", "WINDOWS", "BoundedServer", "SegmentationSession", "make_server"]

MAX_BODY = 64 * 1024  # bytes of one JSON request
MAX_CLICKS = 200
GUIDED_STEPS = 20  # Adam steps of guided modulation per request
MASK_DIR = "interactive_masks"


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


# window / level presets of the page (HU: centre, width); "auto": the 0.5-99.5 percentiles of the image or
# volume (MR, PNG images)
WINDOWS: dict[str, tuple[float, float] | None] = {
    "auto": None,
    "abdomen": (40.0, 400.0),
    "bone": (400.0, 1800.0),
    "lung": (-600.0, 1500.0),
}


class SegmentationSession:
    """The models and the data folder behind the page; every method is safe to call from handler threads.

    Items are the 2D images of ``DIR/images`` and its NIfTI volumes; a volume is cut into slices along the
    model's ``data.slice_axis`` (2 when null) as in training. Coordinates: the model works on the arrays as the
    readers give them (NIfTI in RAS); the page sees each slice in its view, for axial slices the radiological one
    (anterior up, the patient's right on the left): ``view`` / ``from_view`` convert, clicks and boxes arrive
    in view coordinates."""

    def __init__(
        self, checkpoint: str | Path, data: str | Path, box_checkpoint: str | Path | None = None
    ) -> None:
        from weakseg.api import load_trained
        from weakseg.data.dataset import SegDataset
        from weakseg.data.readers import list_image_files

        self.cfg, self.method, self.device = load_trained(checkpoint, device="cpu")
        if self.cfg.method.name != "refine" or getattr(self.method, "initial", None) is None:
            raise ValueError(
                f"{checkpoint} holds method {self.cfg.method.name!r}; weakseg serve needs a refine checkpoint "
                "trained with method.params.initial (the first network)"
            )
        self.box = None
        if box_checkpoint is not None:
            box_cfg, self.box, _ = load_trained(box_checkpoint, device="cpu")
            if box_cfg.method.name != "box":
                raise ValueError(f"--box {box_checkpoint} holds method {box_cfg.method.name!r}, not box")
        self.guide = None  # GuidedModulation of the first network, when it has the features to modulate
        try:
            from weakseg.interactive.guided import GuidedModulation

            self.guide = GuidedModulation(self.method.initial.net.eval())
        except (ValueError, AttributeError):
            pass
        self.root = Path(data)
        folder = self.root / self.cfg.data.image_dir
        if not folder.is_dir():
            raise ValueError(
                f"{folder} does not exist: weakseg serve --data DIR reads DIR/{self.cfg.data.image_dir}"
            )
        images = list_image_files(folder)
        volumes = sorted(
            p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(NIFTI_SUFFIXES)
        )
        if not images and not volumes:
            raise ValueError(f"{folder} holds no images (png/jpg/tif) and no NIfTI volumes (.nii/.nii.gz)")
        records = read_folder_records(folder, None, self.cfg.data.case_regex) if images else []
        self.dataset = SegDataset(records, self.cfg.data, labeled=False)
        self.axis = 2 if self.cfg.data.slice_axis is None else int(self.cfg.data.slice_axis)
        self.items: list[dict] = [{"name": r.name, "kind": "image", "row": i} for i, r in enumerate(records)]
        for path in volumes:
            depth = int(nifti_shape(path)[self.axis])
            self.items.append({"name": nifti_stem(path), "kind": "volume", "path": path, "depth": depth})
        self.names = [it["name"] for it in self.items]
        self.lock = threading.Lock()
        self._first: dict[tuple[int, int], torch.Tensor] = {}
        self._volumes: dict[int, tuple[torch.Tensor, np.ndarray, dict]] = {}

    # ------------------------------------------------------------------ what the page lists
    def slices(self) -> list[dict]:
        return [{"index": i, "name": it["name"], "saved": self._mask_path(i).is_file(), "kind": it["kind"],
                 "depth": it.get("depth", 1)} for i, it in enumerate(self.items)]  # fmt: skip

    def modes(self) -> list[str]:
        """The interaction modes this session offers."""
        guided = ["guided", "refine+guided"] if self.guide is not None else []
        return ["refine", *guided, *(["box"] if self.box is not None else [])]

    def classes(self) -> list[str]:
        return list(self.cfg.data.class_names)

    # ------------------------------------------------------------------ pictures
    def image_png(self, index: int, z: int = 0, window: str = "auto") -> bytes:
        """The slice as the page shows it: windowed (``WINDOWS``; raw HU of a volume), in its view."""
        if window not in WINDOWS:
            raise ValueError(f"window must be one of {list(WINDOWS)}, got {window!r}")
        if self._is_volume(index):
            _, raw, _ = self._volume(index)
            image = self.view(index, self._fit(index, np.take(raw, self._z(index, z), axis=self.axis)))
            full = raw
        else:
            image = full = self._image(index, z)[0].numpy()
        if WINDOWS[window] is None:
            lo, hi = np.percentile(full, [0.5, 99.5])
        else:
            centre, width = WINDOWS[window]
            lo, hi = centre - width / 2, centre + width / 2
        return _png((np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8))

    def labels_png(self, index: int, z: int = 0) -> bytes:
        """Class indices (uint8 PNG, in the view) of the slice: the first network's answer, with the classes
        saved for it laid over."""
        with self.lock, torch.no_grad():
            label = self._first_probs(index, z).argmax(0).numpy().astype(np.uint8)
        saved = self._saved_slice(index, z)
        if saved is not None:
            label = np.where(saved > 0, saved, label).astype(np.uint8)
        return _png(self.view(index, label))

    # ------------------------------------------------------------------ views
    def view(self, index: int, array: np.ndarray) -> np.ndarray:
        """A slice (..., H, W) as the model reads it -> as the page shows it (axial volume slices: anterior up,
        the patient's right on the left, i.e. the RAS array flipped in both axes and transposed)."""
        if self._radiological(index):
            return np.ascontiguousarray(np.swapaxes(array[..., ::-1, ::-1], -1, -2))
        return array

    def view_shape(self, index: int) -> tuple[int, int]:
        h, w = self._image(index, 0).shape[1:]
        return (w, h) if self._radiological(index) else (h, w)

    def from_view(self, index: int, y: int, x: int) -> tuple[int, int]:
        """A pixel of the view -> (row, column) of the model's slice."""
        if self._radiological(index):
            h, w = self._image(index, 0).shape[1:]
            return h - 1 - x, w - 1 - y
        return y, x

    def box_from_view(self, index: int, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        (a, b), (c, d) = self.from_view(index, box[0], box[1]), self.from_view(index, box[2] - 1, box[3] - 1)
        return min(a, c), min(b, d), max(a, c) + 1, max(b, d) + 1

    # ------------------------------------------------------------------ answers
    def segment(
        self,
        index: int,
        target: int,
        clicks: list[Click],
        box: tuple[int, int, int, int] | None,
        mode: str = "refine",
        z: int = 0,
    ) -> np.ndarray:
        """The binary mask (H, W) of class ``target`` after the user's clicks (and box) in ``mode``, in the
        model's coordinates (clicks and box in them too)."""
        image = self._image(index, z)
        with self.lock, torch.no_grad():
            if mode in ("guided", "refine+guided"):
                with torch.enable_grad():
                    self.guide.reset()
                    prob = self.guide.fit(image[None], clicks, target, GUIDED_STEPS).softmax(1)[0, target]
                if mode == "guided":
                    return enforce_clicks((prob > 0.5).numpy(), clicks)
                logits = self.method.refine_logits(image[None], prob[None].detach(), [clicks])
                return enforce_clicks((logits.argmax(1)[0] == 1).numpy(), clicks)
            if box is not None and self.box is not None:
                fg = np.zeros(image.shape[1:], bool)
                bg = np.zeros(image.shape[1:], bool)
                for c in clicks:
                    (fg if c.foreground else bg)[c.y, c.x] = True
                if clicks:
                    with torch.enable_grad():
                        prob = self.box.fine_tune(image, box, fg, bg)
                else:
                    prob = self.box.segment_box(image, box)
                return (prob > 0.5).numpy()
            prior = self._first_probs(index, z)[target]
            logits = self.method.refine_logits(image[None], prior[None], [clicks])
            return enforce_clicks((logits.argmax(1)[0] == 1).numpy(), clicks)

    def save(self, index: int, target: int, mask: np.ndarray, overwrite: bool, z: int = 0) -> Path:
        """Write the mask (model coordinates) as class ``target``: of the image's label map (PNG, at the image
        file's own size), or of slice ``z`` of the volume's label volume (NIfTI with the volume's affine and
        header, ``DIR/interactive_masks/NAME.nii.gz``)."""
        if self._is_volume(index):
            return self._save_volume(index, target, mask, overwrite, z)
        path = self._mask_path(index)
        with Image.open(self.dataset.records[self.items[index]["row"]].image) as f:
            width, height = f.size
        if mask.shape != (height, width):  # data.resize: back to the stored size, as the reader expects
            mask = (
                np.asarray(Image.fromarray(mask.astype(np.uint8)).resize((width, height), Image.NEAREST)) > 0
            )
        with self.lock:  # read-modify-write of one label map
            if path.is_file() and not overwrite:
                raise FileExistsError(f"{path.name} already has a saved mask; confirm to overwrite it")
            previous = np.asarray(Image.open(path)) if path.is_file() else None
            if previous is None or previous.shape != mask.shape:
                previous = np.zeros(mask.shape, np.uint8)
            label = previous.copy()
            label[label == target] = 0  # this class is replaced as a whole
            label[mask] = target
            path.parent.mkdir(exist_ok=True)
            atomic_write_bytes(path, _png(label.astype(np.uint8)))
        return path

    def _save_volume(self, index: int, target: int, mask: np.ndarray, overwrite: bool, z: int) -> Path:
        from weakseg.data.io import write_label

        path = self._mask_path(index)
        _, raw, meta = self._volume(index)
        z = self._z(index, z)
        plane_shape = tuple(s for i, s in enumerate(raw.shape) if i != self.axis)
        if (
            mask.shape != plane_shape
        ):  # the network's input size (data.resize / target_spacing): back, nearest
            mask = F.interpolate(
                torch.from_numpy(mask)[None, None].float(), size=plane_shape, mode="nearest-exact"
            )
            mask = mask[0, 0].numpy() > 0.5
        with self.lock:  # read-modify-write of one label volume
            label = np.zeros(raw.shape, np.uint8)
            if path.is_file():
                label = np.asarray(load_nifti(path)[0]).astype(np.uint8).reshape(raw.shape)  # RAS, as read
            plane = np.take(label, z, axis=self.axis)
            if (plane == target).any() and not overwrite:
                raise FileExistsError(
                    f"slice {z} of {path.name} already has class {self.classes()[target]} saved; confirm to overwrite it"
                )
            plane[plane == target] = 0  # this class of this slice is replaced as a whole
            plane[mask] = target
            index_z = [slice(None)] * 3
            index_z[self.axis] = z
            label[tuple(index_z)] = plane
            path.parent.mkdir(exist_ok=True)
            write_label(
                path, label, meta, overwrite=True
            )  # atomic; the volume's stored orientation and header
        return path

    # ------------------------------------------------------------------ helpers
    def _is_volume(self, index: int) -> bool:
        return self.items[self._index(index)]["kind"] == "volume"

    def _radiological(self, index: int) -> bool:
        """Axial slices of a volume: shown anterior up, the patient's right on the left."""
        return self._is_volume(index) and self.axis == 2

    def _mask_path(self, index: int) -> Path:
        """Where the corrections of item ``index`` are saved: NAME.png, or NAME.nii.gz for a volume."""
        suffix = ".nii.gz" if self._is_volume(index) else ".png"
        return self.root / MASK_DIR / f"{self.names[index]}{suffix}"

    def _index(self, index: int) -> int:
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(self.items):
            raise ValueError(f"image index must be 0..{len(self.items) - 1}, got {index!r}")
        return index

    def _z(self, index: int, z: int) -> int:
        depth = self.items[self._index(index)].get("depth", 1)
        if not isinstance(z, int) or isinstance(z, bool) or not 0 <= z < depth:
            raise ValueError(f"slice z must be 0..{depth - 1} for {self.items[index]['name']}, got {z!r}")
        return z

    def _volume(self, index: int) -> tuple[torch.Tensor, np.ndarray, dict]:
        """(normalised (C, X, Y, Z) image as predict reads it, raw first channel (X, Y, Z) in RAS, meta)."""
        if index not in self._volumes:
            from weakseg.data.io import load_image_for_inference
            from weakseg.data.nifti import channels_first

            path = self.items[index]["path"]
            image, meta = load_image_for_inference(path, self.cfg.data)
            raw = channels_first(load_nifti(path)[0], path)[0].astype(np.float32)
            self._volumes[index] = (image, raw, meta)
        return self._volumes[index]

    def _fit(self, index: int, plane: np.ndarray | torch.Tensor, label: bool = False):
        """A volume's slice (..., H, W) at the size the network saw such slices at in training (``data.resize``
        or ``data.target_spacing``), intensities resampled like the dataset does, labels nearest."""
        size = network_input_size(self.cfg.data, self._volume(index)[2])
        tensor = torch.as_tensor(np.ascontiguousarray(plane)) if isinstance(plane, np.ndarray) else plane
        if size is None or tuple(tensor.shape[-2:]) == tuple(size):
            return plane
        x = tensor.float().reshape(-1, 1, *tensor.shape[-2:])  # every leading axis a batch of planes
        mode = "nearest-exact" if label else interp_mode(tuple(tensor.shape[-2:]), tuple(size))
        out = F.interpolate(x, size=tuple(size), mode=mode).reshape(*tensor.shape[:-2], *size)
        if isinstance(plane, np.ndarray):
            return out.numpy().astype(plane.dtype) if label else out.numpy()
        return out

    def _image(self, index: int, z: int = 0) -> torch.Tensor:
        if self._is_volume(index):
            return self._fit(index, self._volume(index)[0].select(self.axis + 1, self._z(index, z)))
        self._z(index, z)
        return self.dataset[self.items[index]["row"]]["image"]

    def _first_probs(self, index: int, z: int = 0) -> torch.Tensor:
        key = (index, z)
        if key not in self._first:
            self._first[key] = self.method.first_probabilities(self._image(index, z)[None])[0]
        return self._first[key]

    def _saved_slice(self, index: int, z: int) -> np.ndarray | None:
        """The classes saved for slice ``z`` of item ``index`` at the network's size, or None."""
        path = self._mask_path(index)
        if not path.is_file():
            return None
        if self._is_volume(index):
            _, raw, _ = self._volume(index)
            plane = np.take(
                np.asarray(load_nifti(path)[0]).reshape(raw.shape), self._z(index, z), axis=self.axis
            )
            return self._fit(index, plane.astype(np.uint8), label=True)
        saved = np.asarray(Image.open(path))
        size = tuple(self._image(index).shape[1:])
        if saved.shape != size:
            saved = np.asarray(Image.fromarray(saved).resize(size[::-1], Image.NEAREST))
        return saved


def _parse(body: dict, session: SegmentationSession) -> tuple[int, int, list[Click], tuple | None, str, int]:
    """A request's (index, target, clicks, box, mode, z), clicks and box converted from the page's view to
    the model's coordinates."""
    index, target, z = body.get("index"), body.get("target", 1), body.get("z", 0)
    mode = body.get("mode", "refine")
    if mode not in session.modes():
        raise ValueError(f"mode must be one of {session.modes()}, got {mode!r}")
    session._image(index, z)  # index and z checked
    h, w = session.view_shape(index)
    if not isinstance(target, int) or isinstance(target, bool) or not 0 < target < len(session.classes()):
        raise ValueError(f"target must be a foreground class 1..{len(session.classes()) - 1}, got {target!r}")
    raw = body.get("clicks", [])
    if not isinstance(raw, list) or len(raw) > MAX_CLICKS:
        raise ValueError(f"clicks must be a list of at most {MAX_CLICKS} clicks")
    clicks = []
    for c in raw:
        ok = (
            isinstance(c, dict)
            and all(isinstance(c.get(k), int) for k in ("y", "x"))
            and isinstance(c.get("fg"), bool)
        )
        if not ok or not (0 <= c["y"] < h and 0 <= c["x"] < w):
            raise ValueError(f"a click must be {{y, x, fg}} inside the {h}x{w} image, got {c!r}")
        clicks.append(Click(*session.from_view(index, c["y"], c["x"]), c["fg"]))
    box = body.get("box")
    if box is not None:
        ok = isinstance(box, list) and len(box) == 4 and all(isinstance(v, int) for v in box)
        if not ok or not (0 <= box[0] < box[2] <= h and 0 <= box[1] < box[3] <= w):
            raise ValueError(f"box must be [y0, x0, y1, x1] inside the {h}x{w} image, got {box!r}")
        box = session.box_from_view(index, tuple(box))
    return index, target, clicks, box, mode, z


class BoundedServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` with at most ``max_threads`` connections served at once: one more is answered
    503 at once and closed (stalled clients cannot pile up threads), and a client that drops its connection
    costs no traceback on the console."""

    daemon_threads = True

    def __init__(self, address, handler, max_threads: int = 16) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(max_threads)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 26"
                    b'\r\nConnection: close\r\n\r\n{"error": "server busy"}\n\n'
                )
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address) -> None:
        err = sys.exc_info()[1]
        if isinstance(
            err, (ConnectionError, TimeoutError)
        ):  # the client went away or stalled: nothing to report
            return
        print(
            f"weakseg serve: error while answering {client_address[0]}: {type(err).__name__}: {err}",
            file=sys.stderr,
        )


def make_server(
    session: SegmentationSession,
    host: str = "127.0.0.1",
    port: int = 8000,
    timeout: float = 10.0,
    max_threads: int = 16,
) -> ThreadingHTTPServer:
    """The HTTP server of ``session``; each connection is closed after ``timeout`` seconds without data."""
    page = (Path(__file__).with_name("page.html")).read_bytes()
    names = {host, "127.0.0.1", "localhost"}

    class Handler(BaseHTTPRequestHandler):
        timeout_seconds = timeout

        def setup(self) -> None:
            self.timeout = self.timeout_seconds  # StreamRequestHandler sets the socket timeout from this
            super().setup()

        def _trusted(self) -> bool:
            """Requests must name this server (no DNS rebinding); POSTs must be JSON (no cross-site forms)."""
            allowed = {f"{n}:{self.server.server_port}" for n in names}
            if self.headers.get("Host") not in allowed:
                self._json(403, {"error": "unexpected Host header"})
                return False
            kind = self.headers.get("Content-Type") or ""
            if self.command == "POST" and not kind.startswith("application/json"):
                self._json(415, {"error": "POST bodies must be application/json"})
                return False
            return True

        def log_message(self, fmt: str, *args) -> None:  # quiet: the page polls often
            pass

        def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, payload: dict) -> None:
            self._send(status, json.dumps(payload).encode())

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if not self._trusted():
                return None
            try:
                path, _, query = self.path.partition("?")
                args = {k: v[-1] for k, v in parse_qs(query).items()}
                if path == "/":
                    return self._send(200, page, "text/html; charset=utf-8")
                if path == "/api/slices":
                    listing = {"slices": session.slices(), "classes": session.classes(),
                               "box": session.box is not None, "modes": session.modes(), "windows": list(WINDOWS)}  # fmt: skip
                    return self._json(200, listing)
                if path.startswith(("/api/image/", "/api/labels/")):
                    index = int(path.rsplit("/", 1)[1])  # an index, never a file name
                    z = int(args.get("z", "0"))
                    if path.startswith("/api/labels/"):
                        return self._send(200, session.labels_png(index, z), "image/png")
                    return self._send(
                        200, session.image_png(index, z, args.get("window", "auto")), "image/png"
                    )
                return self._json(404, {"error": "not found"})
            except ValueError as e:
                return self._json(400, {"error": str(e)})
            except Exception as e:  # noqa: BLE001 - the page must always get an answer
                return self._json(500, {"error": f"{type(e).__name__}: {e}"})

        def do_POST(self) -> None:  # noqa: N802
            if not self._trusted():
                return None
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length == 0:
                return self._json(HTTPStatus.BAD_REQUEST, {"error": "empty body: send a JSON object"})
            if length < 0 or length > MAX_BODY:
                return self._json(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"body must be 1..{MAX_BODY} bytes"}
                )
            try:
                body = json.loads(self.rfile.read(length))
                if not isinstance(body, dict):
                    raise ValueError("the body must be a JSON object")
                index, target, clicks, box, mode, z = _parse(body, session)
                t0 = time.perf_counter()
                mask = session.segment(index, target, clicks, box, mode, z)
                ms = (time.perf_counter() - t0) * 1000
                if self.path == "/api/segment":
                    png = base64.b64encode(_png(session.view(index, mask).astype(np.uint8) * 255)).decode()
                    return self._json(200, {"mask": png, "pixels": int(mask.sum()), "ms": ms})
                if self.path == "/api/save":
                    path = session.save(index, target, mask, bool(body.get("overwrite", False)), z)
                    return self._json(200, {"saved": path.name, "pixels": int(mask.sum())})
                return self._json(404, {"error": "not found"})
            except FileExistsError as e:
                return self._json(409, {"error": str(e)})
            except (ValueError, json.JSONDecodeError) as e:
                return self._json(400, {"error": str(e)})
            except Exception as e:  # noqa: BLE001 - the page must always get an answer
                return self._json(500, {"error": f"{type(e).__name__}: {e}"})

    return BoundedServer((host, port), Handler, max_threads)
