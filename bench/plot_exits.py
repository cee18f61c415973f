#!/usr/bin/env python3
"""Draws the report of `tandem train-exits --report --report-json R.json` as a PNG.

    python3 bench/plot_exits.py R.json OUT.png [TITLE]

Left: top-1 agreement of each exit with the last layer, with and without its
adapter, and the share of rows kept at 90% / 95% precision. Right: how often
the provisional verdict (from the exit) equals the final one, per γ.
The C tool computes every number; this script only draws (matplotlib, PyPI).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        r = json.load(f)
    exits = r["exits"]
    layers = [e["layer"] for e in exits]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))

    left.plot(layers, [e["agreement"] for e in exits], "o-", label="top-1 agreement, exit as stored")
    left.plot(layers, [e["agreement_none"] for e in exits], "s--", label="top-1 agreement, no adapter")
    for k, style in ((0, "^:"), (1, "v:")):
        p = exits[0]["row_thresholds"][k]["precision"]
        left.plot(layers, [e["row_thresholds"][k]["kept"] for e in exits], style,
                  label=f"rows kept at {p:.0%} precision")
    left.set_xlabel("exit layer (0-based)")
    left.set_ylabel("share of rows")
    left.set_ylim(0, 1)
    left.grid(alpha=0.3)
    left.legend(fontsize=8)

    cmap = plt.get_cmap("viridis")
    gammas = r["gammas"]
    for i, g in enumerate(gammas):
        right.plot(layers, [e["verdict_agreement"][i] for e in exits], "o-", ms=3,
                   color=cmap(i / max(1, len(gammas) - 1)), label=f"γ={g}")
    right.set_xlabel("exit layer (0-based)")
    right.set_ylabel("P(provisional verdict = final verdict)")
    right.set_ylim(0, 1)
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.grid(alpha=0.3)
    right.legend(fontsize=8, ncol=2)

    title = sys.argv[3] if len(sys.argv) == 4 else r["model"]
    fig.suptitle(f"{title}: {r['tokens']} tokens of {r['data']} ({r['prompts']} prompts)", fontsize=10)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
