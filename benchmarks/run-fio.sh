#!/usr/bin/env bash
# File reads through the port against `fio --ioengine=psync` (issue 10): random reads of a
# page-cached file at depth 1 and 32, 4 KiB and 64 KiB blocks. fio's psync engine is
# synchronous, so depth d is `--numjobs=d --iodepth=1`; the port keeps d reads in flight
# from one thread (benchmarks/src/bin/randread.rs). Variants, each measurement a fresh
# process, alternated within every round (A B C A B C ...), medians over the rounds:
#   fio-psync   fio --ioengine=psync
#   <label>     the port through each randread binary of BINS, on the epoll backend
#   uring       the port on io_uring (reference), through the first binary of BINS
# For humans: not called by .ci/run (timings on shared CI machines mean little).
#
# Usage: benchmarks/run-fio.sh
# Environment (all optional):
#   SECONDS_PER_RUN  seconds per measurement (default 3)
#   ROUNDS           rounds, medians over these (default 3)
#   SIZE_MIB         file size (default 256)
#   BENCH_FILE       the test file (default /tmp/cport-fio-<SIZE_MIB>m; created once)
#   DEPTHS, BLOCKS   cells (default "1 32" and "4096 65536")
#   BINS             "label=path ..." randread binaries to run on epoll (default
#                    "epoll=target/release/randread"); e.g. an A/B of two builds
#   NO_BUILD=1       do not build target/release/randread first
#   NO_URING=1       skip the io_uring reference
#   PORT_THREADS     worker threads on the port at depth > 1 (default 1), sharing the
#                    reads in flight, as fio's psync jobs share the CPUs. A BINS label
#                    ending in "-ports" runs that many ports side by side instead (one
#                    thread each, each opening the file itself, as each fio job does):
#                    BINS="epoll=target/release/randread epoll-ports=target/release/randread"
#                    compares the two layouts in one run
# Output goes to the terminal; the table at the end gives IOPS medians and ratios to fio.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${SECONDS_PER_RUN:-3}"
rounds="${ROUNDS:-3}"
size="${SIZE_MIB:-256}"
file="${BENCH_FILE:-/tmp/cport-fio-${size}m}"
depths="${DEPTHS:-1 32}"
blocks="${BLOCKS:-4096 65536}"
bins="${BINS:-epoll=target/release/randread}"

command -v fio >/dev/null 2>&1 || { echo "fio is not installed (apt-get install -y fio)" >&2; exit 1; }
[[ -n "${NO_BUILD:-}" ]] || cargo build --release -p benchmarks --bin randread

first_bin="${bins%% *}"
first_bin="${first_bin#*=}"
variants=(fio-psync)
for b in $bins; do variants+=("${b%%=*}"); done
[[ -n "${NO_URING:-}" ]] || variants+=(uring)

echo "== date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "== commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$([[ -z "$(git status --porcelain -- completion-port benchmarks 2>/dev/null)" ]] || echo ' (uncommitted changes)')"
echo "== machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1), kernel $(uname -r)"
echo "== $(fio --version); file $file ($size MiB, page-cached); $secs s per run, $rounds rounds"
echo "== binaries: $bins"
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# One measurement: prints its IOPS and CPU time per read (ns; all of the process's
# threads, or fio's usr+sys over all its jobs).
measure() { # variant depth bs
    local v="$1" d="$2" bs="$3" bin="$first_bin" backend=epoll variant=port
    case "$v" in
        fio-psync) variant=fio ;;
        uring) backend=uring ;;
        *) for b in $bins; do [[ "${b%%=*}" == "$v" ]] && bin="${b#*=}"; done ;;
    esac
    local threads=()
    if [[ "${PORT_THREADS:-1}" -gt 1 && "$d" -gt 1 && "$variant" == port ]]; then
        if [[ "$v" == *-ports ]]; then
            threads=(--ports "$PORT_THREADS")
        else
            threads=(--port-threads "$PORT_THREADS")
        fi
    fi
    COMPLETION_PORT_BACKEND="$backend" "$bin" --file "$file" --size-mib "$size" --seconds "$secs" \
        --rounds 1 --depths "$d" --bs "$bs" --variants "$variant" --fio-engine psync "${threads[@]}" \
        | awk '/ IOPS \(/ { for (i = 1; i < NF; i++) { if ($(i + 1) == "IOPS") iops = $i; if ($(i + 1) == "ns") ns = $i }
                          print iops, ns; exit }'
}

declare -A results cpu
for d in $depths; do
    for bs in $blocks; do
        for r in $(seq 1 "$rounds"); do
            for v in "${variants[@]}"; do
                read -r iops ns < <(measure "$v" "$d" "$bs")
                [[ -n "$iops" ]] || { echo "no result for $v depth $d bs $bs" >&2; exit 1; }
                printf '  depth=%-3s bs=%-6s round=%s %-12s %10s IOPS %8s ns CPU/read\n' "$d" "$bs" "$r" "$v" "$iops" "$ns"
                results["$d,$bs,$v"]+="$iops "
                cpu["$d,$bs,$v"]+="$ns "
            done
        done
    done
done

median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo
echo "== medians of $rounds runs: IOPS (ratio to fio-psync), then CPU ns per read (fio's over ours: reads per CPU-second ratio)"
printf '| depth | bs |'; for v in "${variants[@]}"; do printf ' %s |' "$v"; done; echo
printf '|---|---|'; for _ in "${variants[@]}"; do printf -- '---|'; done; echo
for d in $depths; do
    for bs in $blocks; do
        base="$(echo "${results["$d,$bs,fio-psync"]}" | median)"
        basec="$(echo "${cpu["$d,$bs,fio-psync"]}" | median)"
        printf '| %s | %s KiB |' "$d" "$((bs / 1024))"
        for v in "${variants[@]}"; do
            m="$(echo "${results["$d,$bs,$v"]}" | median)"
            c="$(echo "${cpu["$d,$bs,$v"]}" | median)"
            if [[ "$v" == fio-psync ]]; then
                printf ' %.0f; %.0f ns |' "$m" "$c"
            else
                printf ' %.0f (%.2f); %.0f ns (%.2f) |' "$m" "$(awk -v a="$m" -v b="$base" 'BEGIN { print a / b }')" \
                    "$c" "$(awk -v a="$c" -v b="$basec" 'BEGIN { print b / a }')"
            fi
        done
        echo
    done
done
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
