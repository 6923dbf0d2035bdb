"""docs/img/architecture.png: the layers of the package as the import walk of tests/test_architecture.py sees
them, bottom to top, each with its modules and how many imports reach it from the layers above.

    python benchmarks/architecture_picture.py
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from common import REPO  # noqa: E402

sys.path.insert(0, str(REPO))
from tests.test_architecture import MODULES, imports, layer  # noqa: E402
from weakseg.methods.pictures import save_figure  # noqa: E402

NAMES = [
    "keys, registry, fileio", "config", "nets, metrics", "data, losses", "augment", "methods", "engine", "api",
    "plug-ins: interactive, gans, adapt", "cli",
]  # fmt: skip


def main() -> None:
    members: dict[int, list[str]] = defaultdict(list)
    into: Counter = Counter()
    for m in MODULES:
        if m == "weakseg":
            continue
        members[layer(m)].append(m.removeprefix("weakseg."))
        for t, _ in imports(m):
            if t != "weakseg" and layer(t) < layer(m):
                into[layer(t)] += 1
    fig, ax = plt.subplots(figsize=(11, 7.5))
    ax.set_xlim(0, 10)
    ax.set_ylim(-0.2, len(NAMES))
    ax.axis("off")
    for k, name in enumerate(NAMES):
        ax.add_patch(plt.Rectangle((0.1, k + 0.08), 9.8, 0.84, color=plt.cm.Blues(0.15 + 0.06 * k)))
        ax.text(0.25, k + 0.62, f"{k}  {name}", fontsize=10, weight="bold", va="center")
        mods = sorted(members[k])
        text = ", ".join(mods)
        if len(text) > 150:
            text = text[:147] + "..."
        ax.text(0.25, k + 0.3, text, fontsize=6.5, va="center", color="#333")
        if into[k]:
            ax.text(9.75, k + 0.62, f"{into[k]} imports from above", fontsize=8, ha="right", va="center")
    ax.annotate(
        "", xy=(9.95, 0.2), xytext=(9.95, len(NAMES) - 0.2), arrowprops={"arrowstyle": "->", "lw": 1.5}
    )
    ax.set_title(
        "weakseg layers: every import points down (tests/test_architecture.py); plug-ins register through entry "
        "points",
        fontsize=10,
    )
    out = REPO / "docs" / "img" / "architecture.png"
    save_figure(fig, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
