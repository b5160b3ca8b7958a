#!/usr/bin/env bash
# The OpenAPI document checked by openapi-spec-validator, then Schemathesis against the
# running daemon (README "Two commands"): every check, the examples,
# coverage, fuzzing and stateful phases, with a bounded budget, against a throwaway daemon on
# SQLite with two live fake gateways. Everything runs inside a fresh network namespace that has
# only loopback, so hosts the fuzzer invents for new gateways never leave the machine. Rate
# limits are off for the run (the limiter has its own tests); the run fails on any 5xx other
# than the documented 502/503s, on any response the OpenAPI document does not describe, and if
# the daemon is not up and ready afterwards.
#
#   scripts/api-fuzz.sh                   the CI budget
#   GS_FUZZ_MAX_EXAMPLES=200 scripts/api-fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/run.sh
. scripts/lib/run.sh

VENV=target/schemathesis-venv
REQ=e2e/schemathesis/requirements.txt

if [ "${GS_FUZZ_IN_NETNS:-0}" != 1 ]; then
  cargo build --locked -p gateway-supervisor -p fake-gateway >&2
  if ! cmp -s "$REQ" "$VENV/requirements.txt" 2>/dev/null; then
    log "installing $(grep -v '^#' "$REQ") into $VENV"
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV" 2>/dev/null; then
      as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv
      rm -rf "$VENV"
      python3 -m venv "$VENV"
    fi
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ"
    cp "$REQ" "$VENV/requirements.txt"
  fi
  userns=()
  [ "$(id -u)" -eq 0 ] || userns=(--map-root-user)
  exec unshare --net "${userns[@]}" env GS_FUZZ_IN_NETNS=1 "$0" "$@"
fi

# --- inside the namespace: loopback only ----------------------------------------------------
ip link set lo up
if ip -o link show | grep -qv ' lo:'; then
  echo "the namespace has an interface besides lo" >&2; exit 1
fi

work_dir gs-api-fuzz

API=127.0.0.1:8080
TOKEN=fuzz-gateway-token


log "two fake gateways (127.0.0.1:18789-18790)"
tail -f /dev/null | target/debug/fake-gateway --count 2 --base-port 18789 --token "$TOKEN" \
  --sessions 3 >"$WORK/fake.out" 2>&1 &
PIDS+=($!)
wait_for 30 grep -q '^ready 2' "$WORK/fake.out" || { cat "$WORK/fake.out" >&2; exit 1; }

log "daemon on $API (SQLite, rate limits off)"
mkdir -m 700 "$WORK/state"
env GATEWAY_SUPERVISOR__STATE__DIR="$WORK/state" \
  GATEWAY_SUPERVISOR__SERVER__BIND="$API" \
  GATEWAY_SUPERVISOR__SERVER__WORKERS=2 \
  GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE=0 \
  GATEWAY_SUPERVISOR__MANAGED_RUNTIME__NODE=/nonexistent/node \
  GATEWAY_SUPERVISOR__LIMITS__SESSION_CONTROL_PER_MINUTE=0 \
  GATEWAY_SUPERVISOR__LIMITS__MANUAL_HEALTH_INTERVAL=0s \
  target/debug/gateway-supervisor serve >"$WORK/daemon.log" 2>&1 &
DAEMON=$!
PIDS+=("$DAEMON")
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$API/readyz")" = 200 ]; }
wait_for 60 ready || { tail -n 30 "$WORK/daemon.log" >&2; exit 1; }
KEY=$(cat "$WORK/state/admin.key")

for i in 0 1; do
  curl -sf -o /dev/null -H "x-api-key: $KEY" -H 'content-type: application/json' \
    -d "{\"name\":\"fake-$i\",\"host\":\"127.0.0.1\",\"port\":$((18789 + i)),\"token\":\"$TOKEN\"}" \
    "http://$API/api/gateways"
done
both_online() {
  curl -sf -H "x-api-key: $KEY" "http://$API/api/gateways" |
    python3 -c 'import json,sys; g=json.load(sys.stdin)["gateways"]; sys.exit(0 if sum(x["status"]=="online" for x in g)==2 else 1)'
}
wait_for 30 both_online || { echo "the fake gateways did not come online" >&2; tail -n 30 "$WORK/daemon.log" >&2; exit 1; }

log "the OpenAPI document is valid OpenAPI 3.1 (openapi-spec-validator)"
curl -sf "http://$API/api/openapi.json" >"$WORK/openapi.json"
"$VENV/bin/openapi-spec-validator" "$WORK/openapi.json"
log "each rule of schemathesis.toml applies to the operations it names, one rule each"
"$VENV/bin/python" e2e/schemathesis/check_rules.py e2e/schemathesis/schemathesis.toml "$WORK/openapi.json"

log "schemathesis $("$VENV/bin/st" --version 2>&1 | awk '{print $NF}'): all checks, all phases"
# The key in both headers the document declares: the daemon refuses credentials that disagree
# (a malformed Authorization beside a good x-api-key is 401), so a generated Authorization would
# keep the fuzzer out of every operation it sent one to.
# Older Pythons (3.11.7 here) keep the AST converter's recursion depth in state the threads
# share, so two workers parsing at once (hypothesis reads lambda sources with ast.parse) can
# fail the run with "SystemError: AST constructor recursion depth mismatch" (CPython
# gh-106905; seen here with seed 1730): one worker on those.
workers=$("$VENV/bin/python" -c 'import sys; print(2 if sys.version_info >= (3, 13) else 1)')
rc=0
"$VENV/bin/st" --config-file e2e/schemathesis/schemathesis.toml run "http://$API/api/openapi.json" \
  --checks all \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "${GS_FUZZ_MAX_EXAMPLES:-25}" \
  --max-time "${GS_FUZZ_MAX_TIME:-180}" \
  --workers "$workers" \
  --request-timeout 10 \
  --seed "${GS_FUZZ_SEED:-$RANDOM}" \
  --header "x-api-key: $KEY" \
  --header "Authorization: Bearer $KEY" \
  --report junit --report-dir "$WORK/report" \
  --no-color || rc=$?

log "after the run: the daemon is up and ready"
if ! kill -0 "$DAEMON" 2>/dev/null; then
  echo "the daemon died during the run" >&2; tail -n 50 "$WORK/daemon.log" >&2; exit 1
fi
ready || { echo "the daemon is not ready after the run" >&2; exit 1; }
if grep -q 'panicked' "$WORK/daemon.log"; then
  echo "the daemon logged a panic:" >&2; grep -A5 'panicked' "$WORK/daemon.log" >&2; exit 1
fi
exit "$rc"
