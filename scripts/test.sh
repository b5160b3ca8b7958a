#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what is missing, checks formatting and
# lints, runs every test against SQLite, then the integration suite again against a throwaway
# PostgreSQL cluster (started as the `postgres` user on a private port and socket, stopped at
# the end).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

# --- system packages -------------------------------------------------------------------------
# libpq-dev: diesel's postgres backend links libpq. postgresql: the server for the PG suite and
# psql/pg_dump. systemd: systemd-analyze for the unit check. pkg-config: finds libpq.
# prometheus: promtool, to lint /metrics.
PACKAGES=(libpq-dev postgresql postgresql-client systemd pkg-config prometheus)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$PG_BIN/initdb" ] || { echo "PostgreSQL server binaries not found under /usr/lib/postgresql" >&2; exit 1; }

# --- throwaway PostgreSQL ---------------------------------------------------------------------
PG_PORT=${GS_TEST_PG_PORT:-55432}
PG_DIR=$(mktemp -d /tmp/gateway-supervisor-pg.XXXXXX)
pg_as() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
stop_pg() {
  pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
}
trap stop_pg EXIT
[ "$(id -u)" -eq 0 ] && chown postgres "$PG_DIR"
log "starting PostgreSQL ($PG_BIN) on 127.0.0.1:$PG_PORT"
pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres >/dev/null
pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
  -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
export GS_TEST_PG_URL="postgres://postgres@127.0.0.1:$PG_PORT"

# --- checks and tests -------------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "tests: unit + integration on SQLite"
GS_TEST_DATABASE=sqlite cargo test --workspace --locked

log "tests: integration on PostgreSQL"
GS_TEST_DATABASE=postgres cargo test --locked --test integration

log "all tests passed (SQLite and PostgreSQL)"
