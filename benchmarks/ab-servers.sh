#!/usr/bin/env bash
# Echo servers side by side under the blocking ping-pong client (`peers client`): each
# round runs every server once, in the order given, on a fresh process; server and client
# share CPUS (default 0,1). Prints every run, then per server the median rate and server
# CPU per message (and the user-space part of it), and its ratios to the first server's:
# of the medians, and the median of the same-round ratios (neighbours in time compare
# better on a drifting machine). Each row
# also gives "least": the fewest messages one connection had echoed in the window, against
# the mean (1.00 is even; a server that drains one connection long starves the others).
#
#   benchmarks/ab-servers.sh ROUNDS SIZE CONNS 'label=command with PORT' ...
#
# The word PORT (a whole word: COMPLETION_PORT_BACKEND is left alone) becomes a free port.
# A command may start with VAR=value words, set for that server only, e.g.
#   'ep=COMPLETION_PORT_BACKEND=epoll target/release/cport serve --addr 127.0.0.1:PORT --eager'
# SECS [3]: seconds of each measured window. PEERS [target/release/peers]. OUT: a file
# that also receives every row.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=$1 size=$2 conns=$3
shift 3
secs=${SECS:-3}
cpus=${CPUS:-0,1}
peers=${PEERS:-target/release/peers}
tmp=$(mktemp -d)
sp=
trap '[ -n "$sp" ] && kill "$sp" 2>/dev/null; rm -rf "$tmp"' EXIT
port=$((20000 + RANDOM % 10000))
echo "# $(date -u +%FT%TZ) $(uname -r) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) commit $(git rev-parse --short HEAD 2>/dev/null || echo -) ${size} B x ${conns} conns, ${secs} s windows" | tee "$tmp/rows"
for r in $(seq "$rounds"); do
  for spec in "$@"; do
    name=${spec%%=*} cmd=${spec#*=}
    port=$((port + 1))
    # shellcheck disable=SC2001
    cmd=$(sed "s/\bPORT\b/$port/g" <<<"$cmd")
    # shellcheck disable=SC2086
    env $cmd >/dev/null 2>&1 &
    sp=$!
    sleep 0.5
    taskset -p -a -c "$cpus" "$sp" >/dev/null
    taskset -c "$cpus" "$peers" client --addr "127.0.0.1:$port" --conns "$conns" --size "$size" \
      --seconds "$secs" --server-pid "$sp" --json >"$tmp/c.json"
    kill "$sp"
    wait "$sp" 2>/dev/null || true
    sp=
    python3 - "$name" "$r" "$tmp/c.json" <<'PY' | tee -a "$tmp/rows"
import json, sys
name, r, f = sys.argv[1:]
d = json.load(open(f))
print(f"{name:16s} {r:>3s} {d['msgs_per_sec']:9.0f} msgs/s  server {d['server_us_per_msg']:5.2f} us/msg  user {d['server_user_us_per_msg']:4.2f}  client {d['client_us_per_msg']:5.2f} us/msg  busy {d['busy']:.2f}  least {float('nan') if d.get('conn_least_share') is None else d['conn_least_share']:.2f}")
PY
  done
done
python3 - "$tmp/rows" <<'PY' | tee -a "$tmp/rows"
import collections, statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if not l.startswith("#")]
order, by_round = [], collections.defaultdict(dict)
for f in rows:
    if f[0] not in order:
        order.append(f[0])
    user = float(f[f.index("user") + 1]) if "user" in f else float("nan")
    by_round[f[1]][f[0]] = (float(f[2]), float(f[5]), float(f[-1]) if f[-2] == "least" else float("nan"), user)
first = order[0]
def med(name, i):
    return statistics.median(v[name][i] for v in by_round.values() if name in v)
def paired(name, i):
    return statistics.median(v[name][i] / v[first][i] for v in by_round.values() if name in v and first in v)
print(f"medians over {len(by_round)} rounds; ratios to {first}: of the medians, and (in brackets) the median of same-round ratios")
for n in order:
    print(f"{n:16s} {med(n, 0):9.0f} msgs/s  {med(n, 1):5.2f} us/msg  rate {med(n, 0) / med(first, 0):.3f} ({paired(n, 0):.3f})  cpu {med(n, 1) / med(first, 1):.3f} ({paired(n, 1):.3f})  user {med(n, 3):.2f} us/msg  least {med(n, 2):.2f}")
PY
[ -n "${OUT:-}" ] && cp "$tmp/rows" "$OUT"
exit 0
