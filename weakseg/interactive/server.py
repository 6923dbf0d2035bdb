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

import numpy as np
import torch
from PIL import Image

from weakseg.data.readers import read_folder_records
from weakseg.fileio import atomic_write_bytes
from weakseg.interactive.clicks import Click, enforce_clicks

__all__ = ["MAX_BODY", "BoundedServer", "SegmentationSession", "make_server"]

MAX_BODY = 64 * 1024  # bytes of one JSON request
MAX_CLICKS = 200
GUIDED_STEPS = 20  # Adam steps of guided modulation per request
MASK_DIR = "interactive_masks"


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


class SegmentationSession:
    """The models and the data folder behind the page; every method is safe to call from handler threads."""

    def __init__(
        self, checkpoint: str | Path, data: str | Path, box_checkpoint: str | Path | None = None
    ) -> None:
        from weakseg.api import load_trained
        from weakseg.data.dataset import SegDataset

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
        records = read_folder_records(self.root / self.cfg.data.image_dir, None, self.cfg.data.case_regex)
        self.dataset = SegDataset(records, self.cfg.data, labeled=False)
        self.names = [r.name for r in records]
        self.lock = threading.Lock()
        self._first: dict[int, torch.Tensor] = {}

    # ------------------------------------------------------------------ requests
    def slices(self) -> list[dict]:
        out = self.root / MASK_DIR
        return [
            {"index": i, "name": n, "saved": (out / f"{n}.png").is_file()} for i, n in enumerate(self.names)
        ]

    def modes(self) -> list[str]:
        """The interaction modes this session offers."""
        guided = ["guided", "refine+guided"] if self.guide is not None else []
        return ["refine", *guided, *(["box"] if self.box is not None else [])]

    def classes(self) -> list[str]:
        return list(self.cfg.data.class_names)

    def image_png(self, index: int) -> bytes:
        image = self._image(index)[0].numpy()
        lo, hi = np.percentile(image, [0.5, 99.5])
        return _png((np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8))

    def segment(
        self,
        index: int,
        target: int,
        clicks: list[Click],
        box: tuple[int, int, int, int] | None,
        mode: str = "refine",
    ) -> np.ndarray:
        """The binary mask (H, W) of class ``target`` after the user's clicks (and box) in ``mode``."""
        image = self._image(index)
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
            prior = self._first_probs(index)[target]
            logits = self.method.refine_logits(image[None], prior[None], [clicks])
            return enforce_clicks((logits.argmax(1)[0] == 1).numpy(), clicks)

    def save(self, index: int, target: int, mask: np.ndarray, overwrite: bool) -> Path:
        """Write the mask as class ``target`` of the image's label map, at the image file's own size."""
        path = self.root / MASK_DIR / f"{self.names[index]}.png"
        with Image.open(self.dataset.records[index].image) as f:
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

    # ------------------------------------------------------------------ helpers
    def _image(self, index: int) -> torch.Tensor:
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(self.names):
            raise ValueError(f"image index must be 0..{len(self.names) - 1}, got {index!r}")
        return self.dataset[index]["image"]

    def _first_probs(self, index: int) -> torch.Tensor:
        if index not in self._first:
            self._first[index] = self.method.first_probabilities(self._image(index)[None])[0]
        return self._first[index]


def _parse(body: dict, session: SegmentationSession) -> tuple[int, int, list[Click], tuple | None, str]:
    index, target = body.get("index"), body.get("target", 1)
    mode = body.get("mode", "refine")
    if mode not in session.modes():
        raise ValueError(f"mode must be one of {session.modes()}, got {mode!r}")
    image = session._image(index)
    h, w = image.shape[1:]
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
        clicks.append(Click(c["y"], c["x"], c["fg"]))
    box = body.get("box")
    if box is not None:
        ok = isinstance(box, list) and len(box) == 4 and all(isinstance(v, int) for v in box)
        if not ok or not (0 <= box[0] < box[2] <= h and 0 <= box[1] < box[3] <= w):
            raise ValueError(f"box must be [y0, x0, y1, x1] inside the {h}x{w} image, got {box!r}")
        box = tuple(box)
    return index, target, clicks, box, mode


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
                if self.path == "/":
                    return self._send(200, page, "text/html; charset=utf-8")
                if self.path == "/api/slices":
                    return self._json(
                        200,
                        {
                            "slices": session.slices(),
                            "classes": session.classes(),
                            "box": session.box is not None,
                            "modes": session.modes(),
                        },
                    )
                if self.path.startswith("/api/image/"):
                    index = int(self.path.rsplit("/", 1)[1])  # an index, never a file name
                    return self._send(200, session.image_png(index), "image/png")
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
                index, target, clicks, box, mode = _parse(body, session)
                t0 = time.perf_counter()
                mask = session.segment(index, target, clicks, box, mode)
                ms = (time.perf_counter() - t0) * 1000
                if self.path == "/api/segment":
                    png = base64.b64encode(_png(mask.astype(np.uint8) * 255)).decode()
                    return self._json(200, {"mask": png, "pixels": int(mask.sum()), "ms": ms})
                if self.path == "/api/save":
                    path = session.save(index, target, mask, bool(body.get("overwrite", False)))
                    return self._json(200, {"saved": path.name, "pixels": int(mask.sum())})
                return self._json(404, {"error": "not found"})
            except FileExistsError as e:
                return self._json(409, {"error": str(e)})
            except (ValueError, json.JSONDecodeError) as e:
                return self._json(400, {"error": str(e)})
            except Exception as e:  # noqa: BLE001 - the page must always get an answer
                return self._json(500, {"error": f"{type(e).__name__}: {e}"})

    return BoundedServer((host, port), Handler, max_threads)
