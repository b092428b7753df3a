#!/usr/bin/env bash
# Runs the shutdown tests under valgrind: a port closed (and one dropped) with thousands of
# operations in flight must hand back or free every context and buffer, and leak nothing
# (docs/semantics.md P10). Fails on any definite leak or memory error.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }

bin=$(cargo test -q -p completion-port --test it --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "it":
        print(m["executable"])')
[ -n "$bin" ] || { echo "could not find the integration test binary" >&2; exit 1; }

for t in lifecycle::p10_close_with_10000_pending_receives_drains_everything \
         lifecycle::p10_dropping_a_port_with_io_in_flight_frees_everything_once \
         port::p10_dropping_an_undrained_port_drops_every_context_once; do
  echo "== valgrind: $t"
  valgrind --quiet --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite --error-exitcode=99 \
    "$bin" --test-threads=1 --exact "$t"
done
