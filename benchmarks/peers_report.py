#!/usr/bin/env python3
"""Report and plot of a `benchmarks/run-peers.sh` run, from its `peers-<stamp>.jsonl`
(one JSON object per run: the client's report plus server, cell, run and client).

    python3 benchmarks/peers_report.py benchmarks/results/peers-XXXX.jsonl           # Markdown
    python3 benchmarks/peers_report.py benchmarks/results/peers-XXXX.jsonl --plot docs/peers.png
    python3 benchmarks/peers_report.py --line ONE_RUN.json                           # one line

Medians over the runs of each (cell, server). Ratios: a server's median rate over the best
peer's (cport excluded from "peer"), and its median CPU per message over the lowest peer's.
The plot needs matplotlib: when it is missing, `pip install --user matplotlib` is tried
once (not when PEERS_NO_PIP is set), and if that fails the plot is skipped with a message (exit status 0). Nothing is
typed in by hand: every figure comes from the file.
"""
import json
import os
import statistics
import subprocess
import sys

NAMES = {"tokio": "tokio", "monoio": "monoio", "compio": "compio", "mio": "mio", "threads": "std thread/conn"}


def server_label(server):
    """A server's name in tables: cport variants spelled as their flags."""
    if not ours(server):
        return NAMES.get(server, server)
    parts = server.split("-")[1:]
    def flag(part):
        if part[:1] == "b" and part[1:].isdigit():
            return f" --batch {part[1:]}"
        return {"ports": " --ports N", "eager": " --eager", "defer": " --defer"}.get(part, "")

    flags = "".join(flag(p) for p in parts)
    return "cport serve" + flags + (" (epoll)" if "epoll" in parts else "")


def order(server):
    """Table order: cport variants first (shortest name first), then the peers as listed."""
    if ours(server):
        return (0, len(server), server)
    return (1, list(NAMES).index(server) if server in NAMES else 99, server)


def ours(server):
    """A cport variant (`cport`, `cport-ports`, `cport-epoll`), not a peer."""
    return server.startswith("cport")


OURS_COLORS = {"cport": "black", "cport-ports": "dimgray", "cport-epoll": "darkgray",
               "cport-eager": "dimgray", "cport-ports-eager": "black"}


def load(path):
    runs = [json.loads(line) for line in open(path) if line.strip()]
    for r in runs:
        # Share of the counted CPUs' time that the server and the client used in the window
        # (the rest went to other processes, or was idle). Files written before the client
        # reported busy_cpus: the CPU count of the machine running this script.
        cpus = r.get("busy_cpus") or os.cpu_count()
        secs = num(r.get("seconds"))
        for who in ("server", "client"):
            cpu = num(r.get(f"{who}_cpu_s"))
            if cpu is not None and secs:
                r[f"{who}_share"] = cpu / (cpus * secs)
    return runs


def num(v):
    return v if isinstance(v, (int, float)) and v == v else None


def med(rows, key):
    vals = [num(r.get(key)) for r in rows]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else float("nan")


def cells_of(runs):
    """{cell: {server: [runs]}} of the blocking-client matrix, in first-seen order."""
    out = {}
    for r in runs:
        if r.get("group") != "matrix":
            continue
        out.setdefault(r["cell"], {}).setdefault(r["server"], []).append(r)
    return out


def summary(rows):
    return dict(rate=med(rows, "msgs_per_sec"), us=med(rows, "server_us_per_msg"), busy=med(rows, "busy"),
                sshare=med(rows, "server_share"), cshare=med(rows, "client_share"),
                cus=med(rows, "client_us_per_msg"), least=med(rows, "conn_least_share"), errors=sum(int(r.get("errors") or 0) for r in rows),
                rates=sorted(num(r.get("msgs_per_sec")) or 0 for r in rows))


def paired(per, mine):
    """Per round (`run`), `mine`'s rate over the best peer's of that round and its CPU per
    message over the lowest peer's of that round: ratios of neighbours in time, which the
    machine's drift between rounds does not move as it moves the medians of each server."""
    rates, cpus = [], []
    for mine_r in per.get(mine, []):
        peer_r = [r for s, rows in per.items() if not ours(s) for r in rows if r["run"] == mine_r["run"]]
        rate, us = num(mine_r.get("msgs_per_sec")), num(mine_r.get("server_us_per_msg"))
        best = max((num(r.get("msgs_per_sec")) or 0 for r in peer_r), default=0)
        low = min((u for u in (num(r.get("server_us_per_msg")) for r in peer_r) if u), default=None)
        if rate and best and us and low:
            rates.append(rate / best)
            cpus.append(us / low)
    return rates, cpus


def share(v):
    """'server + client' shares of the CPUs, or n/a when the runs did not record them."""
    if v["sshare"] != v["sshare"] or v["cshare"] != v["cshare"]:
        return "n/a"
    return f"{v['sshare']:.2f} + {v['cshare']:.2f}"


def cell_label(cell):
    size, conns = cell.split("x")
    size = f"{int(size) // 1024} KiB" if int(size) % 1024 == 0 else f"{size} B"
    return f"{size} x {conns}"


def report(runs):
    matrix = cells_of(runs)
    servers = []
    for per in matrix.values():
        servers += [s for s in per if s not in servers]
    servers.sort(key=order)
    out = []
    stats = {c: {s: summary(rows) for s, rows in per.items()} for c, per in matrix.items()}
    out.append("| cell | " + " | ".join(server_label(s) for s in servers) + " |")
    out.append("|---|" + "---|" * len(servers))
    for c, per in stats.items():
        peers = {s: v for s, v in per.items() if not ours(s)}
        best = max((v["rate"] for v in peers.values()), default=float("nan"))
        low = min((v["us"] for v in peers.values()), default=float("nan"))

        def row(label, fmt, bold):
            cells = []
            for s in servers:
                if s not in per:
                    cells.append("-")
                    continue
                text = fmt(per[s])
                cells.append(f"**{text}**" if not ours(s) and bold(per[s]) else text)
            out.append(f"| {cell_label(c)}: {label} | " + " | ".join(cells) + " |")

        row("msgs/s", lambda v: f"{v['rate'] / 1000:.1f}k", lambda v: v["rate"] == best)
        row("rate / best peer", lambda v: f"{v['rate'] / best:.2f}", lambda v: v["rate"] == best)
        row("server CPU µs/msg", lambda v: f"{v['us']:.2f}", lambda v: v["us"] == low)
        row("CPU / lowest peer", lambda v: f"{v['us'] / low:.2f}", lambda v: v["us"] == low)
        row("client CPU µs/msg", lambda v: f"{v['cus']:.2f}", lambda v: False)
        row("CPUs busy", lambda v: f"{v['busy']:.2f}", lambda v: False)
        row("share of CPUs: server + client", share, lambda v: False)
        row("least served connection / mean", lambda v: "n/a" if v["least"] != v["least"] else f"{v['least']:.2f}",
            lambda v: False)
    out.append("")
    out.append("Medians over the runs; **bold**: the best peer's rate, the lowest peer CPU per message. "
               "Least served connection: the fewest messages one connection had echoed in the window, "
               "against the mean (1.00 is even).")
    errs = {(c, s): v["errors"] for c, per in stats.items() for s, v in per.items() if v["errors"]}
    out.append(f"Runs with errors: {errs if errs else 'none'}.")
    out.append("")
    for mine in [s for s in servers if ours(s)]:
        out.append(f"{server_label(mine)} against the best peer (rate) and the lowest peer CPU per message:")
        out.append("")
        for c, per in stats.items():
            if mine not in per:
                continue
            peers = {s: v for s, v in per.items() if not ours(s)}
            if not peers:
                continue
            bs = max(peers, key=lambda s: peers[s]["rate"])
            ls = min(peers, key=lambda s: peers[s]["us"])
            v = per[mine]
            line = (f"- {cell_label(c)}: {v['rate'] / peers[bs]['rate']:.2f}x the rate of {server_label(bs)}, "
                    f"{v['us'] / peers[ls]['us']:.2f}x the CPU/msg of {server_label(ls)}, busy {v['busy']:.2f}")
            rate_r, cpu_r = paired(matrix[c], mine)
            if rate_r:
                line += (f"; round by round (ratio to the best and lowest peer of the same round), "
                         f"median {statistics.median(rate_r):.2f}x ({min(rate_r):.2f}–{max(rate_r):.2f}) "
                         f"and {statistics.median(cpu_r):.2f}x ({min(cpu_r):.2f}–{max(cpu_r):.2f})")
            out.append(line)
        out.append("")
    out.append("Every run (msgs/s, server µs/msg, busy), in the order they ran:")
    out.append("")
    out.append("| cell | server | runs |")
    out.append("|---|---|---|")
    for c, per in matrix.items():
        for s in servers:
            if s in per:
                cells = ", ".join(f"{(num(r.get('msgs_per_sec')) or 0) / 1000:.1f}k/{num(r.get('server_us_per_msg')) or float('nan'):.2f}/"
                                  f"{num(r.get('busy')) or float('nan'):.2f}" for r in sorted(per[s], key=lambda r: r["run"]))
                out.append(f"| {cell_label(c)} | {server_label(s)} | {cells} |")
    lc = [r for r in runs if r.get("group") == "load"]
    if lc:
        out.append("")
        out.append("`cport load` against the mio server (64 B x 50), next to the blocking client, alternated:")
        out.append("")
        out.append("| client | msgs/s | client CPU µs/msg | server CPU µs/msg | CPUs busy | share of CPUs: server + client | errors | runs (msgs/s) |")
        out.append("|---|---|---|---|---|---|---|---|")
        by = {}
        for r in lc:
            by.setdefault(r["client"], []).append(r)
        for cl, rows in by.items():
            v = summary(rows)
            out.append(f"| {cl} | {v['rate'] / 1000:.1f}k | {v['cus']:.2f} | {v['us']:.2f} | {v['busy']:.2f} | {share(v)} | {v['errors']} | "
                       + ", ".join(f"{x / 1000:.1f}k" for x in v["rates"]) + " |")
        if "blocking" in by:
            b = summary(by["blocking"])
            out.append("")
            for cl, label in (("cport-load", "cport load"), ("cport-load-ports", "cport load --ports")):
                if cl in by:
                    v = summary(by[cl])
                    out.append(f"{label} / blocking client: {v['rate'] / b['rate']:.2f}x the rate, "
                               f"{v['cus'] / b['cus']:.2f}x the client CPU per message.")
    return "\n".join(out)


def plot(runs, dst, title):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        if os.environ.get("PEERS_NO_PIP"):
            print("matplotlib is missing (PEERS_NO_PIP set): plot skipped", file=sys.stderr)
            return
        print("matplotlib is missing: trying `pip install --user matplotlib`", file=sys.stderr)
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--user", "-q", "matplotlib"])
        if r.returncode != 0:
            print("cannot install matplotlib: plot skipped", file=sys.stderr)
            return
        import site
        import importlib
        importlib.reload(site)
        try:
            import matplotlib  # noqa: F401,F811
        except ImportError:
            print("matplotlib still not importable: plot skipped", file=sys.stderr)
            return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = cells_of(runs)
    servers = []
    for per in matrix.values():
        servers += [s for s in per if s not in servers]
    servers.sort(key=order)
    cells = list(matrix)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    width = 0.8 / max(len(servers), 1)
    panels = (("msgs_per_sec", "echoed msgs/s (median; bars: min-max)", 1e-3, "k msgs/s"),
              ("server_us_per_msg", "server CPU per message (µs)", 1, "µs/msg"),
              ("server_share", "share of the CPUs: server (solid) + client (light)", 1, "fraction"))
    colors = {}
    for ax, (key, title_, scale, unit) in zip(axes, panels):
        for i, s in enumerate(servers):
            meds, lo, hi = [], [], []
            for c in cells:
                vals = [num(r.get(key)) for r in matrix[c].get(s, [])]
                vals = [v * scale for v in vals if v is not None]
                m = statistics.median(vals) if vals else 0
                meds.append(m)
                lo.append(m - min(vals) if vals else 0)
                hi.append(max(vals) - m if vals else 0)
            xs = [x + i * width for x in range(len(cells))]
            bars = ax.bar(xs, meds, width, yerr=[lo, hi], capsize=2, label=server_label(s),
                          color=colors.get(s, OURS_COLORS.get(s)))
            colors[s] = bars.patches[0].get_facecolor()
            if key == "server_share":
                client = [statistics.median([num(r.get("client_share")) or 0 for r in matrix[c].get(s, [])] or [0])
                          for c in cells]
                ax.bar(xs, client, width, bottom=meds, color=colors[s], alpha=0.35)
        ax.set_xticks([x + width * (len(servers) - 1) / 2 for x in range(len(cells))])
        ax.set_xticklabels([cell_label(c) for c in cells])
        ax.set_title(title_, fontsize=10)
        ax.set_ylabel(unit)
        ax.grid(axis="y", alpha=0.3)
    axes[2].set_ylim(0, 1.05)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(dst, dpi=100)
    print(f"plot: {dst}")


def main():
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return
    if args[0] == "--line":  # one run's figures, for the progress lines of run-peers.sh
        try:
            d = json.load(open(args[1]))
            print(f"{d['msgs_per_sec']:.0f} msgs/s, server {d['server_us_per_msg']:.2f} us/msg, "
                  f"client {d['client_us_per_msg']:.2f} us/msg, busy {d['busy']:.2f}, errors {d['errors']}")
        except Exception as e:  # noqa: BLE001 (a progress line must not stop the run)
            print(f"no figures ({e})")
        return
    runs = load(args[0])
    if "--plot" in args:
        dst = args[args.index("--plot") + 1]
        plot(runs, dst, f"echo servers, blocking ping-pong client - {args[0].rsplit('/', 1)[-1]}")
    else:
        print(report(runs))


if __name__ == "__main__":
    main()
