#!/usr/bin/env bash
# Benchmarks (release build). Usage: scripts/bench.sh fleet --count 1000 [--steady 60] [--json out.json]
set -euo pipefail
cd "$(dirname "$0")/.."
# Each gateway costs the daemon one socket and this process a listener and a socket.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo build --release --locked -p gateway-supervisor -p gs-bench >&2
exec target/release/gs-bench "$@"
