#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what is missing, checks formatting and
# lints, runs every test against SQLite, then the integration suite again against a throwaway
# PostgreSQL cluster (started as the `postgres` user on a private port and socket, stopped at
# the end).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> [%s, %d s in] %s\n' "$(date -u +%T)" "$SECONDS" "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

# --- system packages -------------------------------------------------------------------------
# libssl-dev: the libpq built into the daemon (pq-sys "bundled") speaks TLS through the system's
# OpenSSL. postgresql: the server for the PG suite and psql/pg_dump. systemd: systemd-analyze for
# the unit check. pkg-config: finds OpenSSL.
# prometheus: promtool, to lint /metrics. groff-base: renders the manual page `man` prints.
# iproute2: finds (or adds) a non-loopback address for the real-gateway test, and brings up
# loopback in the API fuzz run's network namespace (util-linux's unshare makes it). npm: fetches
# Node 24 and openclaw (the machine's Node 20 runs npm only). wrk: the benchmark's load
# generator (its smoke run below). python3, python3-venv, curl: the API fuzz run (schemathesis
# from PyPI in a venv, pinned in e2e/schemathesis/requirements.txt). dpkg-dev: dpkg-shlibdeps,
# which computes the Debian package's library dependencies. chromium, chromium-driver: the web
# console's browser test (a real headless Chromium over WebDriver). jq: the README's recipes,
# which the real-gateway tests run as written. faketime: libfaketime, the clock of a promoted
# PostgreSQL replica set ahead or behind in the cluster suite's failover tests, and an instance's
# clock 5 % fast in the fault run. iptables: the fault run's partitions and packet loss.
PACKAGES=(libssl-dev postgresql postgresql-client systemd pkg-config prometheus groff-base iproute2 wrk
  util-linux python3 python3-venv curl dpkg-dev chromium chromium-driver jq faketime iptables)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v npm >/dev/null; then
  log "installing npm"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm
fi

# --- throwaway PostgreSQL ---------------------------------------------------------------------
# shellcheck source=scripts/throwaway-pg.sh
. scripts/throwaway-pg.sh
throwaway_pg

# A clean clone builds once: incremental caches would only double the target directory.
export CARGO_INCREMENTAL=0

# --- checks and tests -------------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
# --all-targets skips `test = false` targets: the real-gateway e2e and the cluster suite.
cargo clippy --locked --test openclaw_e2e --test cluster --test faults -- -D warnings

log "no import cycles between modules (scripts/module-cycles.py)"
python3 scripts/module-cycles.py

# Four tests at a time on two cores: the integration tests wait (on daemons, gateways, a
# browser) more than they compute. Measured 2026-12-02 on 2 vCPU: on SQLite 351 s with two
# threads (226 s of CPU) and 191 s with four; on PostgreSQL 517 s and 340 s.
log "tests: unit + integration on SQLite"
GS_TEST_DATABASE=sqlite cargo test --workspace --locked -- --test-threads=4

log "tests: integration on PostgreSQL"
# --workspace: built with the same features as the run above, so its binary is reused (alone,
# the package's features differ and three crates are compiled again, ~1.5 minutes).
GS_TEST_DATABASE=postgres cargo test --workspace --locked --test integration -- --test-threads=4

log "tests: a cluster of daemons on PostgreSQL (tests/cluster)"
cargo test --locked --test cluster

# --- the cluster under real faults --------------------------------------------------------------
# Each fault once (kill, pauses, partitions, a slow and lossy link, database restart and
# failovers, clocks apart) over 300 fake gateways, checked at the gateways (~3 minutes; root:
# network namespaces and iptables). Beside the API fuzz run and the generated clients below, which
# run in a namespace of their own and on daemons of their own.
log "the cluster under faults (scripts/faults.sh), beside the API fuzz run"
faults_log=$(mktemp /tmp/gs-faults.XXXXXX.log)
scripts/faults.sh >"$faults_log" 2>&1 &
faults=$!

# --- the API as a hostile client sees it -------------------------------------------------------
# Schemathesis (every check; examples, coverage, fuzzing and stateful phases, ~3 minutes)
# against a daemon with two live fake gateways, in a loopback-only network namespace.
# Beside it, Python and TypeScript clients generated from the served document drive a daemon of
# their own (~1 minute; PyPI and npm packages pinned in e2e/clients/).
log "generated clients (scripts/client-gen.sh), beside the API fuzz run"
clients_log=$(mktemp /tmp/gs-client-gen.XXXXXX.log)
scripts/client-gen.sh >"$clients_log" 2>&1 &
clients=$!
log "API fuzz run (scripts/api-fuzz.sh)"
scripts/api-fuzz.sh
if ! wait "$clients"; then
  cat "$clients_log" >&2
  echo "the generated clients failed (scripts/client-gen.sh)" >&2
  exit 1
fi
tail -n 4 "$clients_log" >&2
if ! wait "$faults"; then
  cat "$faults_log" >&2
  echo "the fault run failed (scripts/faults.sh)" >&2
  exit 1
fi
sed -n '/^Fault run:/,$p' "$faults_log" >&2

# --- real OpenClaw gateways -------------------------------------------------------------------
# Node 24 + openclaw@2026.9.6 from the npm registry, cached between runs (~840 MB, ~30-60 s once),
# and two older releases a real fleet still runs (Node 22; ~1 min each once): 2026.2.25 (v2-only
# device signatures, no health endpoints) and 2026.3.31 (protocol 3, HTTP side broken).
log "installing Node 24 and openclaw@2026.9.6, Node 22 and openclaw 2026.2.25 and 2026.3.31 (cached)"
export GS_OPENCLAW_DIR GS_OPENCLAW_RELEASES
GS_OPENCLAW_DIR=$(e2e/openclaw/install.sh)
GS_OPENCLAW_RELEASES="$(e2e/openclaw/install.sh 2026.2.25) $(e2e/openclaw/install.sh 2026.3.31)"
# The "remote" gateway is reached over a non-loopback address of this host (the real gateway
# pairs only non-local devices). Use one the host has; otherwise add a test address to lo.
GS_E2E_REMOTE_IP=$(ip -4 -o addr show scope global 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -n 1)
if [ -z "$GS_E2E_REMOTE_IP" ]; then
  GS_E2E_REMOTE_IP=198.18.0.1
  as_root ip addr add "$GS_E2E_REMOTE_IP/32" dev lo 2>/dev/null || true
fi
export GS_E2E_REMOTE_IP
log "tests: end to end against real OpenClaw gateways: 2026.9.6 twice (remote address $GS_E2E_REMOTE_IP), 2026.2.25, 2026.3.31"
# Three at a time: the real gateways' tests wait (cron minutes, restarts) more than they compute.
# Measured 2026-12-02 on 2 vCPU: 1,061 s with two threads (964 s of CPU), 752 s with three,
# 676 s with four (all 34 passed each time).
cargo test --locked --test openclaw_e2e -- --test-threads=3

# --- the performance suite, small and short: it must keep working; timings get no verdict ---
log "benchmark smoke run (scripts/bench.sh --smoke)"
scripts/bench.sh --smoke

# --- the Debian package, installed on this machine ----------------------------------------------
log "Debian package: build (scripts/package-deb.sh), dpkg -i and check (scripts/check-deb.sh)"
# What is checked is the packaging, so it packages the binary the tests above ran (its debug
# information stripped) rather than building every crate again in the release profile (~13 of
# this run's minutes on 2 cores); a package to ship is built by scripts/package-deb.sh alone.
deb=$(GS_DEB_BINARY=target/debug/gateway-supervisor scripts/package-deb.sh)
scripts/check-deb.sh "$deb"
# The container recipe is built only where a builder runs (none is required).
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  log "container image (Containerfile)"
  docker build -q -f Containerfile -t gateway-supervisor:test .
else
  log "no container builder on this machine: Containerfile not built"
fi

log "all tests passed (SQLite, PostgreSQL, real OpenClaw gateways, benchmark smoke, Debian package)"
