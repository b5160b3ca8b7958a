# Sourced by scripts/test.sh and scripts/bench.sh: `throwaway_pg [postgres -c options…]` starts
# a throwaway PostgreSQL cluster as the `postgres` user on a private port (below the kernel's
# ephemeral range, which the tests' client sockets use) and socket directory, exports
# GS_TEST_PG_URL, and stops and removes it when the calling script exits.

pg_as() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

throwaway_pg() {
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$PG_BIN/initdb" ] || { echo "PostgreSQL server binaries not found under /usr/lib/postgresql" >&2; return 1; }
  PG_PORT=${GS_TEST_PG_PORT:-25432}
  PG_DIR=$(mktemp -d /tmp/gateway-supervisor-pg.XXXXXX)
  trap stop_throwaway_pg EXIT
  [ "$(id -u)" -eq 0 ] && chown postgres "$PG_DIR"
  pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres >/dev/null
  local extra="" attempt
  for o in "$@"; do extra="$extra -c $o"; done
  for attempt in 1 2 3 4 5; do
    printf '\n==> starting PostgreSQL (%s) on 127.0.0.1:%s\n' "$PG_BIN" "$PG_PORT" >&2
    if pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
      -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300$extra" start >/dev/null; then
      export GS_TEST_PG_URL="postgres://postgres@127.0.0.1:$PG_PORT"
      return 0
    fi
    tail -n 3 "$PG_DIR/server.log" >&2 || true
    PG_PORT=$((PG_PORT + 1))
  done
  echo "PostgreSQL did not start" >&2
  return 1
}

stop_throwaway_pg() {
  [ -n "${PG_DIR:-}" ] || return 0
  pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
}
