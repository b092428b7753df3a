#!/usr/bin/env bash
# A/B of the port core's MPMC throughput between two builds of completion-port, with
# crossbeam-channel as the reference, alternated in one run (A B ref A B ref ...) so that
# the machine's drift hits every variant alike. Prints every round and the medians.
# For humans: not called by .ci/run.
#
# Usage: benchmarks/ab-port.sh REV_A [REV_B]
#   REV_A, REV_B  git revisions (REV_B defaults to the working tree). Each is built in a
#                 temporary worktree with this tree's benchmarks/src/bin/mpmc.rs and
#                 benchmarks/Cargo.toml, so any revision that has the benchmarks crate
#                 (commit 2ee5d86 on) can be measured.
# Environment (all optional):
#   AB_ROUNDS    rounds per shape (default 7)
#   AB_SHAPES    posters x getters (default "1x1 2x2 4x4")
#   AB_MESSAGES  messages per run (default 5000000)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
rev_a="${1:?usage: benchmarks/ab-port.sh REV_A [REV_B]}"
rev_b="${2:-}"
rounds="${AB_ROUNDS:-7}"
shapes="${AB_SHAPES:-1x1 2x2 4x4}"
messages="${AB_MESSAGES:-5000000}"
work="$(mktemp -d "${TMPDIR:-/tmp}/cport-ab.XXXXXX")"
trap 'git -C "$root" worktree remove --force "$work/tree" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

build_rev() { # rev -> $work/<name>
    local rev="$1" name="$2"
    git -C "$root" worktree add --detach "$work/tree" "$rev" >/dev/null
    cp "$root/benchmarks/src/bin/mpmc.rs" "$work/tree/benchmarks/src/bin/mpmc.rs"
    cp "$root/benchmarks/Cargo.toml" "$work/tree/benchmarks/Cargo.toml"
    CARGO_TARGET_DIR="$work/target-$name" cargo build --quiet --release -p benchmarks --bin mpmc \
        --manifest-path "$work/tree/Cargo.toml"
    cp "$work/target-$name/release/mpmc" "$work/$name"
    git -C "$root" worktree remove --force "$work/tree"
}

echo "== building A ($rev_a)"
build_rev "$rev_a" a
if [[ -n "$rev_b" ]]; then
    echo "== building B ($rev_b)"
    build_rev "$rev_b" b
else
    echo "== building B (working tree)"
    cargo build --quiet --release -p benchmarks --bin mpmc
    cp target/release/mpmc "$work/b"
fi

median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

echo "== $(uname -r), $(nproc) CPUs, $(date -u +%FT%TZ), $rounds rounds of $messages messages"
for shape in $shapes; do
    p="${shape%x*}" g="${shape#*x}"
    declare -A all=()
    for r in $(seq "$rounds"); do
        for v in a b ref; do
            case $v in
                a | b) out=$("$work/$v" --imp port --posters "$p" --getters "$g" --messages "$messages") ;;
                ref) out=$("$work/b" --imp crossbeam --posters "$p" --getters "$g" --messages "$messages") ;;
            esac
            all[$v]="${all[$v]:-} $(grep -oE '[0-9.]+ Mmsg/s' <<<"$out" | cut -d' ' -f1)"
        done
    done
    ma=$(median <<<"${all[a]}") mb=$(median <<<"${all[b]}") mr=$(median <<<"${all[ref]}")
    echo "$shape A:${all[a]}"
    echo "$shape B:${all[b]}"
    echo "$shape crossbeam:${all[ref]}"
    awk -v s="$shape" -v a="$ma" -v b="$mb" -v r="$mr" 'BEGIN {
        printf "%s medians (M msg/s): A %.1f, B %.1f, crossbeam %.1f; B/A %.2fx, A/crossbeam %.2fx, B/crossbeam %.2fx\n",
            s, a, b, r, b / a, a / r, b / r }'
    unset all
done
