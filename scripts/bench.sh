#!/usr/bin/env bash
# The performance suite (docs/performance.md "Performance"): builds release binaries, installs wrk and the
# pinned real OpenClaw gateway when missing, raises the open-file limit, runs every scenario
# and prints the table; the JSON goes to target/bench/results.json (or --json FILE).
#
#   scripts/bench.sh                      every scenario, PASS/FAIL against the targets
#   scripts/bench.sh rest probe           some scenarios (rest probe fleet failover storm real cluster capacity share approvals registry)
#   scripts/bench.sh fleet --fleet 1000 --steady 30
#   scripts/bench.sh --smoke              CI: all small and short, debug build, no verdicts
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

if ! command -v wrk >/dev/null; then
  echo "==> installing wrk (the load generator)" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk
fi

# 10,000 gateways: the daemon holds a socket each; the fake fleets are split over processes.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

smoke=0
for a in "$@"; do [ "$a" = "--smoke" ] && smoke=1; done

# The cluster, capacity and share scenarios (in `all`) need a PostgreSQL server: the one GS_TEST_PG_URL names
# (scripts/test.sh's), else a throwaway one here, with pg_stat_statements for the renewal
# statement's own numbers.
wants_cluster=1
for a in "$@"; do
  case "$a" in rest | probe | fleet | failover | storm | real | registry) wants_cluster=0 ;; esac
done
for a in "$@"; do case "$a" in cluster | capacity | share | all) wants_cluster=1 ;; esac; done
if [ "$wants_cluster" = 1 ] && [ -z "${GS_TEST_PG_URL:-}" ]; then
  # shellcheck source=scripts/throwaway-pg.sh
  . scripts/throwaway-pg.sh
  throwaway_pg shared_preload_libraries=pg_stat_statements
fi

if [ "$smoke" = 1 ]; then
  cargo build --locked -p gateway-supervisor -p gs-bench >&2
  target/debug/gs-bench all --smoke --daemon target/debug/gateway-supervisor "$@"
  exit
fi

cargo build --release --locked -p gateway-supervisor -p gs-bench >&2
if [ -z "${GS_OPENCLAW_DIR:-}" ]; then
  GS_OPENCLAW_DIR=$(e2e/openclaw/install.sh)
  export GS_OPENCLAW_DIR
fi
json=()
case " $* " in *" --json "*) ;; *) mkdir -p target/bench; json=(--json target/bench/results.json) ;; esac
target/release/gs-bench "$@" "${json[@]}"
