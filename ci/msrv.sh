#!/usr/bin/env bash
# The workspace's `rust-version` is true of its locked dependencies: fails if any package in
# Cargo.lock that a build on this target uses declares a newer `rust-version` than the
# workspace does. (Our own code's use of newer std APIs is caught by clippy's
# `incompatible_msrv` lint, which reads the same field.)
#
# The loom configuration (`--cfg loom`, ci/loom.sh only) is reported, not enforced: its
# model checker may need a newer compiler than users of the crates do.
#
# Needs python3 (to read cargo's JSON). Runnable by hand: bash ci/msrv.sh
set -euo pipefail
cd "$(dirname "$0")/.."

target="$(rustc -vV | sed -n 's/^host: //p')"
check() { # check LABEL ENFORCE: reads `cargo metadata` JSON on stdin
  python3 -c '
import json, sys
label, enforce = sys.argv[1], sys.argv[2] == "1"
meta = json.load(sys.stdin)
version = lambda v: tuple(int(x) for x in v.split("."))
dotted = lambda t: ".".join(map(str, t))
members = set(meta["workspace_members"])
used = {node["id"] for node in meta["resolve"]["nodes"]}
ours = {p["rust_version"] for p in meta["packages"] if p["id"] in members}
if len(ours) != 1 or None in ours:
    sys.exit(f"workspace members disagree on rust-version (or lack one): {sorted(map(str, ours))}")
declared = ours.pop()
deps = sorted(
    ((version(p["rust_version"]), p["name"], p["version"]) for p in meta["packages"]
     if p["id"] in used and p["id"] not in members and p.get("rust_version")),
    reverse=True,
)
need, name, ver = deps[0]
print(f"{label}: workspace rust-version {declared}; {len(used) - len(members)} locked dependencies, "
      f"the most demanding {name} {ver} (rust-version {dotted(need)})")
newer = [f"{n} {v} needs {dotted(r)}" for r, n, v in deps if r > version(declared)]
if newer and enforce:
    sys.exit("rust-version too old for the locked dependencies: " + "; ".join(newer))
for line in newer:
    print(f"  (not enforced) {line}")
' "$1" "$2"
}

cargo metadata --format-version 1 --locked --filter-platform "$target" | check "build on $target" 1
RUSTFLAGS="--cfg loom" cargo metadata --format-version 1 --locked --filter-platform "$target" | check "loom models" 0
