#!/usr/bin/env bash
# Runs every example of the library and checks what it prints; the echo server is driven by
# a real client (socat) over 127.0.0.1 and every echoed byte is compared.
# Needs socat (.ci/run installs it). Runnable by hand: bash ci/examples.sh
set -euo pipefail
cd "$(dirname "$0")/.."

command -v socat >/dev/null || { echo "ci/examples.sh needs socat (apt-get install socat)" >&2; exit 1; }
cargo build -q -p completion-port --examples
bin="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/debug/examples"
work="$(mktemp -d)"
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# run NAME [ARGS...]: runs an example with a time limit, output in $work/NAME.out.
run() {
  local name="$1"
  shift
  echo "== example $name $*"
  local rc=0
  timeout 60 "$bin/$name" "$@" >"$work/$name.out" 2>&1 || rc=$?
  [ "$rc" = 0 ] || { cat "$work/$name.out"; fail "$name exited with $rc"; }
  cat "$work/$name.out"
}
# expect NAME PATTERN: the example's output has a line matching PATTERN (grep -E).
expect() { grep -Eq -- "$2" "$work/$1.out" || fail "$1: no line matching '$2'"; }

run shutdown_key
expect shutdown_key '^all workers stopped; 10 jobs done$'
[ "$(grep -c 'shutdown packet, exiting' "$work/shutdown_key.out")" = 4 ] || fail "shutdown_key: not 4 workers stopped"

run interrupt_wait
expect interrupt_wait '^worker: read of 4096 bytes at offset 0 completed, 4096 bytes transferred$'
expect interrupt_wait '^worker: the port is closed, exiting$'
expect interrupt_wait '^main: post after close: .* \(context back: "too late"\)$'
expect interrupt_wait '^main: left in the port: 0 packets$'

run read_file
expect read_file '^read 8388608 bytes in 128 reads of up to 65536 bytes, 32 in flight at most$'
expect read_file '^fnv1a64 ([0-9a-f]{16}), std::fs::read gives \1: match$'
run read_file Cargo.lock 3
expect read_file ': match$'

run client
expect client '^connect: connected to 127\.0\.0\.1:[0-9]+$'
expect client '^send: 4 bytes sent$'
expect client '^recv: "ping" received$'
expect client '^recv to cancel: cancelled \(.*\); its context and its buffer \(capacity 64\) came back$'
expect client '^cancel again: entity not found$'
expect client '^recv after shutdown: end of stream \(0 bytes, a success\)$'
expect client '^the peer echoed 4 bytes and closed$'

echo "== example echo_server 127.0.0.1:0 3, driven by socat"
"$bin/echo_server" 127.0.0.1:0 3 >"$work/echo_server.out" 2>&1 &
server=$!
for _ in $(seq 100); do
  grep -q '^listening on' "$work/echo_server.out" && break
  sleep 0.1
done
port="$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$work/echo_server.out")"
[ -n "$port" ] || { cat "$work/echo_server.out"; fail "echo_server did not start listening"; }
# 1: a line; 2: 4 MiB of random bytes (many receives, possibly partial sends); 3: one byte.
printf 'hello, port\n' >"$work/in1"
head -c $((4 << 20)) /dev/urandom >"$work/in2"
printf 'x' >"$work/in3"
for i in 1 2 3; do
  timeout 30 socat -t 10 - "TCP:127.0.0.1:$port" <"$work/in$i" >"$work/got$i" || fail "socat $i failed"
  cmp "$work/in$i" "$work/got$i" || fail "echo_server: connection $i echoed different bytes"
done
# After its third connection the server posts its shutdown packets and exits by itself.
for _ in $(seq 100); do
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$server" 2>/dev/null; then fail "echo_server still running after 3 connections"; fi
rc=0
wait "$server" || rc=$?
server=""
[ "$rc" = 0 ] || { cat "$work/echo_server.out"; fail "echo_server exited with $rc"; }
cat "$work/echo_server.out"
for n in "12 bytes" "$((4 << 20)) bytes" "1 bytes"; do
  expect echo_server "^connection [123]: $n echoed, closed by the peer$"
done
expect echo_server '^served 3 connections; 1 packets drained at shutdown$'
echo "== examples: all checked"
