#!/usr/bin/env bash
# Clients generated from the served OpenAPI document, driven against a running daemon: a
# Python client (openapi-python-client; any generator warning fails the run — a warning is a
# piece of the API the client dropped) and a TypeScript client (openapi-typescript types,
# openapi-fetch calls, type-checked by tsc). Each registers a fake gateway, spawns with an
# idempotency key, follows a rolling restart's operation and reads the event list
# (e2e/clients/drive.py, e2e/clients/ts/drive.ts).
#
#   scripts/client-gen.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/run.sh
. scripts/lib/run.sh
VENV=target/clients-venv
REQ=e2e/clients/requirements.txt
TS=e2e/clients/ts

cargo build --locked -p gateway-supervisor -p fake-gateway >&2
if ! cmp -s "$REQ" "$VENV/requirements.txt" 2>/dev/null; then
  log "installing $(grep -v '^#' "$REQ" | tr '\n' ' ')into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
  cp "$REQ" "$VENV/requirements.txt"
fi
if ! cmp -s "$TS/package-lock.json" "$TS/node_modules/.package-lock.json" 2>/dev/null; then
  log "npm ci in $TS"
  (cd "$TS" && npm ci --no-audit --no-fund --loglevel=error)
fi

work_dir gs-clients

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

API=127.0.0.1:$(free_port)
BASE=$(free_port)
TOKEN=client-gateway-token
log "two fake gateways from port $BASE, the daemon on $API"
tail -f /dev/null | target/debug/fake-gateway --count 2 --base-port "$BASE" --token "$TOKEN" \
  >"$WORK/fake.out" 2>&1 &
PIDS+=($!)
wait_for 30 grep -q '^ready 2' "$WORK/fake.out" || { cat "$WORK/fake.out" >&2; exit 1; }
mkdir -m 700 "$WORK/state"
env GATEWAY_SUPERVISOR__STATE__DIR="$WORK/state" \
  GATEWAY_SUPERVISOR__SERVER__BIND="$API" \
  GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE=0 \
  target/debug/gateway-supervisor serve >"$WORK/daemon.log" 2>&1 &
PIDS+=($!)
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$API/readyz")" = 200 ]; }
wait_for 60 ready || { tail -n 30 "$WORK/daemon.log" >&2; exit 1; }
KEY=$(cat "$WORK/state/admin.key")
curl -sf "http://$API/api/openapi.json" >"$WORK/openapi.json"

rc=0
log "Python: openapi-python-client $("$VENV/bin/openapi-python-client" --version | awk '{print $NF}')"
PATH="$PWD/$VENV/bin:$PATH" "$VENV/bin/openapi-python-client" generate --path "$WORK/openapi.json" \
  --output-path "$WORK/py/gateway_supervisor_client" --meta none >"$WORK/py-gen.log" 2>&1 || rc=$?
cat "$WORK/py-gen.log" >&2
if [ "$rc" -ne 0 ] || grep -qi 'warning' "$WORK/py-gen.log"; then
  echo "openapi-python-client could not generate the whole client from the document" >&2; exit 1
fi
GS_URL="http://$API" GS_KEY="$KEY" GS_GATEWAY_PORT="$BASE" GS_GATEWAY_TOKEN="$TOKEN" \
  PYTHONPATH="$WORK/py" "$VENV/bin/python" e2e/clients/drive.py

log "TypeScript: openapi-typescript + openapi-fetch, checked by tsc"
(cd "$TS" && npx --no-install openapi-typescript "$WORK/openapi.json" -o schema.d.ts >&2 && npx --no-install tsc -p .)
GS_URL="http://$API" GS_KEY="$KEY" GS_GATEWAY_PORT="$((BASE + 1))" GS_GATEWAY_TOKEN="$TOKEN" \
  node "$TS/out/drive.js"
log "both generated clients drove the daemon"
