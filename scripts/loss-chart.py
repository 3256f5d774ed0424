#!/usr/bin/env python3
"""Draws the loss matrix (scripts/loss-matrix.sh's results.txt) as a PNG: received frame rate
and total freeze time per receiver against the applied end-to-end loss, lossy phase only.

    python3 scripts/loss-chart.py target/loss-matrix/results.txt docs/loss-matrix/chart.png

Needs matplotlib (pip install matplotlib); not part of the test suite.
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

src, out = sys.argv[1], sys.argv[2]
rows = {}
for line in open(src):
    f = line.split()
    if len(f) >= 12 and f[1] == "lossy" and f[0].isdigit():
        loss = float(f[11])
        rows.setdefault(f[2], []).append((loss, float(f[3]), float(f[6])))

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
for name, pts in sorted(rows.items()):
    pts.sort()
    ax1.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{name} receives")
    ax2.plot([p[0] for p in pts], [p[2] for p in pts], marker="o", label=f"{name} receives")
ax1.set(xlabel="end-to-end loss applied (%)", ylabel="decoded fps over 40 s", ylim=(0, 32))
ax1.axhline(25, color="grey", lw=0.8, ls="--")
ax2.set(xlabel="end-to-end loss applied (%)", ylabel="total freeze time over 40 s (s)", ylim=(0, 5))
ax2.axhline(1, color="grey", lw=0.8, ls="--")
for ax in (ax1, ax2):
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
fig.suptitle("Chromium 1280x720 through Lamina's TURN with random UDP loss (NACK/RTX repair)", fontsize=10)
fig.tight_layout()
fig.savefig(out, dpi=110)
