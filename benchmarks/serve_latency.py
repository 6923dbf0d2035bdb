"""Latency of ``weakseg serve`` on 256x256 CT slices: the HTTP round trip of one /api/segment request, per mode,
beside OpenCV's GrabCut given the same clicks (the peer, timed in the same run on the same machine).

    python benchmarks/serve_latency.py --data-root ../shared/data

Trains (or reuses) three networks with configs/ct.yaml's U-Net at the slices' native 256x256: the first
network, the ``refine`` network (geodesic click maps) and the ``box`` network, --steps steps each. Latency
depends on the architecture and the image size, not on how well the weights are trained (the quality of
refinement is benchmarks/interactive.py's measurement), so the runs are short. Then a server on 127.0.0.1
serves the CT folder and a simulated user works through --episodes (validation slice, organ) episodes:
up to --clicks clicks each, placed on the current error (weakseg.interactive.clicks.next_click), each click one
POST /api/segment with all clicks so far (refine mode); then the organ's bounding box alone (box mode) and the
box with the first --box-clicks clicks (box mode + image-specific fine-tuning). The first request of each
slice includes the first network's forward pass (cached after). Runs live in runs/bench/serve_latency/.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import torch
from common import (
    REPO,
    command_line,
    default_data_root,
    finish,
    fit_or_reuse,
    machine,
    parent_parser,
    publish,
    script_parser,
)

from weakseg.config import Config, load_config
from weakseg.data import build_datasets

OUT = REPO / "runs" / "bench" / "serve_latency"
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 never goes through a proxy


def configs(args) -> dict[str, Config]:
    first = load_config(REPO / "configs" / "ct.yaml")
    first.data.root = str(args.data_root / "abdominal_ct_mr" / "ct")
    first.train.max_steps, first.train.eval_every = args.steps, args.steps
    first.train.name = "first"
    refine = copy.deepcopy(first)
    refine.method.name = "refine"
    refine.method.params = {"initial": str(OUT / "first" / "last.pt"), "distance": "geodesic"}
    refine.train.name = "refine"
    box = copy.deepcopy(first)
    box.method.name = "box"
    box.train.name = "box"
    return {"first": first, "refine": refine, "box": box}


def _post(url: str, body: dict) -> tuple[float, dict]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    t0 = time.perf_counter()
    try:
        with _LOCAL.open(req) as res:
            out = json.loads(res.read())
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"{url} answered {e.code}: {e.read().decode(errors='replace')}") from None
    return (time.perf_counter() - t0) * 1000, out


def _mask(answer: dict) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["mask"])))) > 0


def _stats(ms: list[float]) -> dict:
    v = np.asarray(ms)
    return {
        "n": len(v),
        "median_ms": float(np.median(v)),
        "p95_ms": float(np.percentile(v, 95)),
        "max_ms": float(v.max()),
    }


def measure(args, session, val) -> dict[str, list[float]]:
    from weakseg.interactive.box import bounding_box
    from weakseg.interactive.clicks import next_click
    from weakseg.interactive.evaluate import episode_pool, grabcut_refine
    from weakseg.interactive.server import make_server

    index = {name: i for i, name in enumerate(session.names)}
    server = make_server(session, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/api/segment"
    seen: set[int] = set()  # slices whose first-network result the server has cached
    times: dict[str, list[float]] = {
        k: [] for k in ("refine", "refine_first", "guided", "box", "box_fine_tune", "grabcut")
    }
    try:
        for i, target in episode_pool(val, args.episodes, np.random.default_rng(0)):
            sample = val[i]
            slot = index[val.records[i].name]
            truth = (sample["label"] == target).numpy()
            image = sample["image"].numpy()
            state, clicks = None, []
            for _ in range(args.clicks + 1):  # the first result, then one request per click
                if state is not None:
                    click = next_click(state, truth)
                    if click is None:
                        break
                    clicks.append(click)
                body = {
                    "index": slot,
                    "target": target,
                    "clicks": [{"y": c.y, "x": c.x, "fg": c.foreground} for c in clicks],
                }
                ms, out = _post(url, body)
                if clicks:
                    times["refine"].append(ms)
                elif slot not in seen:  # the first network runs once per slice, then its result is cached
                    times["refine_first"].append(ms)
                seen.add(slot)
                state = _mask(out)
                if clicks and "guided" in session.modes():  # the same click by guided feature modulation
                    times["guided"].append(_post(url, {**body, "mode": "guided"})[0])
                if clicks:
                    prior = session._first_probs(slot)[target].numpy() > 0.5
                    t0 = time.perf_counter()
                    grabcut_refine(image, prior, clicks)
                    times["grabcut"].append((time.perf_counter() - t0) * 1000)
            box = bounding_box(truth)
            ms, _ = _post(url, {"index": slot, "target": target, "clicks": [], "box": list(box)})
            times["box"].append(ms)
            inside = [c for c in clicks if box[0] <= c.y < box[2] and box[1] <= c.x < box[3]]
            body = {
                "index": slot,
                "target": target,
                "clicks": [{"y": c.y, "x": c.x, "fg": c.foreground} for c in inside[: args.box_clicks]]
                or [{"y": (box[0] + box[2]) // 2, "x": (box[1] + box[3]) // 2, "fg": True}],
                "box": list(box),
            }
            ms, _ = _post(url, body)
            times["box_fine_tune"].append(ms)
    finally:
        server.shutdown()
        server.server_close()
    return times


def main() -> None:
    from weakseg.interactive.server import SegmentationSession

    shared = parent_parser(
        data_root=default_data_root(),
        steps=100,
        episodes=20,
        clicks=10,
        threads=torch.get_num_threads(),
        helps={
            "steps": "training steps of each network",
            "threads": "torch CPU threads while serving (training runs with the default)",
        },
    )
    ap = script_parser(__doc__, shared)
    ap.add_argument(
        "--box-clicks", type=int, default=3, help="clicks added to the box for fine-tuning, at most"
    )
    args = ap.parse_args()
    cfgs = configs(args)
    for name, cfg in cfgs.items():
        fit_or_reuse(cfg, OUT / name)
    torch.set_num_threads(args.threads)
    session = SegmentationSession(
        OUT / "refine" / "last.pt",
        args.data_root / "abdominal_ct_mr" / "ct",
        box_checkpoint=OUT / "box" / "last.pt",
    )
    val = build_datasets(cfgs["first"].data)["val"]
    times = measure(args, session, val)
    stats = {k: _stats(v) for k, v in times.items() if v}
    cmd = command_line("serve_latency")
    finish("serve_latency", {"command": cmd, "stats": stats})
    labels = {
        "refine_first": "first result of a slice (first network + refine network, no click)",
        "refine": "a click (geodesic maps of all clicks + refine network)",
        "guided": "a click by guided feature modulation (20 Adam steps on the first network's decoder inputs)",
        "box": "box (crop, box network)",
        "box_fine_tune": f"box + up to {args.box_clicks} clicks (image-specific fine-tuning)",
        "grabcut": "peer: OpenCV GrabCut, same image, first result and clicks (in process, no HTTP)",
    }
    lines = ["| request | n | median ms | p95 ms | max ms |", "|---|---|---|---|---|"]
    for k, s in stats.items():
        lines.append(
            f"| {labels[k]} | {s['n']} | {s['median_ms']:.0f} | {s['p95_ms']:.0f} | {s['max_ms']:.0f} |"
        )
    if "refine" not in stats or "grabcut" not in stats:
        raise SystemExit("no click was made (--clicks 0?): nothing to compare")
    ratio = stats["refine"]["median_ms"] / stats["grabcut"]["median_ms"]
    body = (
        "## Interactive page latency (256x256 CT slices)\n\n"
        f"Command: `{cmd}` (JSON: `benchmarks/results/serve_latency.json`); {machine()}. HTTP round trip of `POST /api/segment` to `weakseg serve` on 127.0.0.1 "
        f"(client-side clock), {args.episodes} (validation slice, organ) episodes of up to {args.clicks} "
        "simulated clicks; configs/ct.yaml's U-Net at 256x256 for the first, refine (geodesic) and box "
        f"networks ({args.steps} training steps each: latency does not depend on training). Target: a refined "
        "mask within a second on CPU.\n\n"
        + "\n".join(lines)
        + f"\n\nRefine click (HTTP included) / GrabCut (no HTTP) median: {ratio:.2f}x.\n"
    )
    publish("serve_latency", body)


if __name__ == "__main__":
    main()
