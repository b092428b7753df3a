#!/usr/bin/env python3
"""Plot a `benchmarks/run-echo.sh` result table: messages per server core-second and
msgs/s for each message size and connection count, one bar per server mode, with the
135k msgs per core-second bar from issue 5 drawn across.

    python3 benchmarks/plot_echo.py benchmarks/results/echo-XXXX.txt docs/echo.png

Needs matplotlib (pip install matplotlib). Reads the figures from the table; nothing is
typed in by hand.
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def parse(path):
    rows = []
    for line in open(path):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 9 or not cells[0].isdigit():
            continue
        size, conns, mode, rate, p50, p99, us, per_core, errors = cells
        rows.append(
            dict(size=int(size), conns=int(conns), mode=mode, rate=float(rate.replace(",", "")),
                 p99=float(p99), per_core=float(per_core.replace(",", "")))
        )
    return rows


def main():
    src, dst = sys.argv[1], sys.argv[2]
    rows = parse(src)
    modes = sorted({r["mode"] for r in rows}, key=lambda m: (m != "port", m))
    cells = sorted({(r["size"], r["conns"]) for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / len(modes)
    for ax, key, title in (
        (axes[0], "per_core", "echoed messages per server core-second"),
        (axes[1], "rate", "messages per second (cport load)"),
    ):
        for i, mode in enumerate(modes):
            ys = [next((r[key] for r in rows if (r["size"], r["conns"]) == c and r["mode"] == mode), 0) for c in cells]
            ax.bar([x + i * width for x in range(len(cells))], ys, width, label=mode)
        ax.set_xticks([x + width * (len(modes) - 1) / 2 for x in range(len(cells))])
        ax.set_xticklabels([f"{s} B\n{c} conn" for s, c in cells])
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    axes[0].axhline(135_000, color="red", linestyle="--", linewidth=1, label="issue 5 bar (135k)")
    axes[0].legend()
    fig.suptitle(f"cport serve under cport load (2-vCPU VM) - {src.rsplit('/', 1)[-1]}")
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main()
