"""Interactive refinement: Dice against the number of simulated clicks on abdominal CT organs (validation
patients) and DRIVE vessels (images 36-40): the refine network, guided feature modulation of the first network,
refine with the guided result as prior, GrabCut with the same clicks, no interaction.

    python benchmarks/interactive.py --data-root ../shared/data

Per task: a first network (the task config's U-Net, CPU size: CT slices resized to --size, DRIVE crops of
--size), then the ``refine`` network trained on the same training cases with simulated clicks
(``method.params.initial`` = the first network), then --episodes (image, class) episodes drawn from the
validation cases with the class present, each followed for --clicks clicks (``weakseg.interactive.evaluate``).
Writes the Dice after 0/1/3/5/N clicks, NoC@85 and NoC@90 per method and a plot into docs/results.md.
Runs live in runs/bench/interactive/ and are reused or resumed.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
from common import (
    REPO,
    command_line,
    default_data_root,
    finish,
    fit_or_reuse,
    parent_parser,
    publish,
    script_parser,
)

from weakseg.config import Config, load_config
from weakseg.data import build_datasets
from weakseg.interactive.evaluate import episode_pool

OUT = REPO / "runs" / "bench" / "interactive"


def first_config(args, task: str) -> Config:
    if task == "drive":
        cfg = load_config(REPO / "configs" / "drive.yaml")
        cfg.data.root = str(args.data_root / "drive" / "train")
        cfg.augment.transforms = [
            {**t, "size": [args.size] * 2} if t["name"] == "crop" else t for t in cfg.augment.transforms
        ]
        cfg.train.batch_size = 8
    else:
        cfg = load_config(REPO / "configs" / "ct.yaml")
        cfg.data.root = str(args.data_root / "abdominal_ct_mr" / "ct")
        cfg.data.resize = [args.size] * 2
    cfg.train.max_steps, cfg.train.eval_every = args.first_steps, max(1, args.first_steps // 4)
    cfg.train.name = f"{task}_first"
    return cfg


def refine_config(args, task: str, first: Path) -> Config:
    cfg = copy.deepcopy(first_config(args, task))
    cfg.method.name = "refine"
    cfg.method.params = {
        "initial": str(first),
        "max_clicks": args.train_clicks,
        "distance": args.distance,
        "corrupt_prior": args.corrupt_prior,
    }
    cfg.train.max_steps, cfg.train.eval_every = args.refine_steps, max(1, args.refine_steps // 4)
    cfg.train.name = f"{task}_refine"
    return cfg


def episodes(
    args, cfg: Config, method, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    val = build_datasets(cfg.data)["val"]
    out = []
    for i, c in episode_pool(val, args.episodes, rng):
        sample = val[i]
        probs = method.first_probabilities(sample["image"][None])[0, c].numpy()
        out.append((sample["image"].numpy(), probs, (sample["label"] == c).numpy(), int(c)))
    return out


def plot(curves: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from weakseg.methods.pictures import save_figure

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.6), squeeze=False)
    for ax, (task, per_method) in zip(axes[0], curves.items()):
        for name, c in per_method.items():
            ax.plot(range(c.shape[1]), c.mean(0), marker="o", ms=3, label=name)
        ax.set_title(task)
        ax.set_xlabel("clicks")
        ax.set_ylabel("mean Dice")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, path)


def main() -> None:
    from weakseg.api import load_trained
    from weakseg.interactive.evaluate import click_curves, grabcut_refine, guided_runner, noc, refine_runner

    shared = parent_parser(
        data_root=default_data_root(),
        size=128,
        episodes=100,
        clicks=10,
        helps={"size": "CT slices resized to SIZE, DRIVE crops of SIZE", "episodes": "episodes per task"},
    )
    ap = script_parser(__doc__, shared)
    ap.add_argument(
        "--tasks", nargs="+", default=["ct", "drive"], choices=["ct", "drive"], help="tasks to run"
    )
    ap.add_argument("--first-steps", type=int, default=1000, help="training steps of the first network")
    ap.add_argument("--refine-steps", type=int, default=1000, help="training steps of the refine network")
    ap.add_argument("--train-clicks", type=int, default=5, help="most simulated clicks in training")
    ap.add_argument(
        "--distance",
        default="geodesic",
        choices=["geodesic", "euclidean"],
        help="click maps of the refine network",
    )
    ap.add_argument(
        "--corrupt-prior", type=float, default=0.5, help="share of training priors corrupted (method.params)"
    )
    ap.add_argument("--guided-steps", type=int, default=20, help="Adam steps of guided modulation per click")
    args = ap.parse_args()
    results, curves = {}, {}
    for task in args.tasks:
        fit_or_reuse(first_config(args, task), OUT / f"{task}_first")
        first = OUT / f"{task}_first" / "best.pt"
        fit_or_reuse(refine_config(args, task, first), OUT / f"{task}_refine")
        cfg, method, dev = load_trained(OUT / f"{task}_refine" / "last.pt", device="cpu")
        eps = episodes(args, cfg, method, np.random.default_rng(0))
        first_net = method.initial.net  # the first network, frozen: guided modulation changes its features
        methods = {
            "refine": refine_runner(method, dev),
            "guided": guided_runner(first_net, dev, steps=args.guided_steps),
            "refine+guided": refine_runner(
                method, dev, guided=guided_runner(first_net, dev, steps=args.guided_steps, probabilities=True)
            ),
            "grabcut": lambda im, p, clicks, target: grabcut_refine(im, p > 0.5, clicks),
            "none": lambda im, p, clicks, target: p > 0.5,
        }
        curves[task] = click_curves(eps, methods, args.clicks)
        results[task] = {
            name: {
                "dice_after": c.mean(0).tolist(),
                "noc85": noc(c, 0.85),
                "noc90": noc(c, 0.90),
                "episodes": len(eps),
            }
            for name, c in curves[task].items()
        }
    cmd = command_line("interactive")
    finish("interactive", {"command": cmd, "results": results})
    plot(curves, REPO / "docs" / "img" / "interactive_clicks.png")
    marks = [0, 1, 3, 5, args.clicks]
    lines = [
        "| task | method | " + " | ".join(f"Dice @{k}" for k in marks) + " | NoC@85 | NoC@90 |",
        "|---|---|" + "---|" * (len(marks) + 2),
    ]
    for task, per_method in results.items():
        for name, r in per_method.items():
            cells = " | ".join(f"{r['dice_after'][k]:.3f}" for k in marks)
            lines.append(f"| {task} | {name} | {cells} | {r['noc85']:.2f} | {r['noc90']:.2f} |")
    body = (
        "## Interactive refinement: Dice against simulated clicks\n\n"
        f"Command: `{cmd}` (JSON: `benchmarks/results/interactive.json`). CPU size {args.size} px; first "
        f"network {args.first_steps} steps, refine network {args.refine_steps} steps ({args.distance} click "
        f"maps, up to {args.train_clicks} clicks in training, {args.corrupt_prior:g} of the training first results "
        f"corrupted); guided modulation: {args.guided_steps} Adam steps per click on the first network's decoder "
        f"inputs; {args.episodes} (image, class) episodes per task "
        "from the validation cases; the simulated user clicks the centre of the largest error region. GrabCut gets "
        "the same first result and clicks; both keep discs of radius 3 px around the clicks at the clicks' labels; NoC@d = clicks to reach Dice d (N + 1 when never).\n\n"
        + "\n".join(lines)
        + "\n\n![Dice against clicks](img/interactive_clicks.png)\n"
    )
    publish("interactive", body)


if __name__ == "__main__":
    main()
