#!/usr/bin/env bash
# Installs Node 24 and openclaw@2026.9.6 from the npm registry into a cache folder (two separate
# folders: openclaw's preinstall refuses the machine's Node 20, so Node 24 comes as its own
# tarball and runs the package). Idempotent; prints the cache folder.
set -euo pipefail
NODE_VERSION=24.21.0
OPENCLAW_VERSION=2026.9.6
here="$(cd "$(dirname "$0")" && pwd)"
cache="${GS_OPENCLAW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gateway-supervisor/openclaw-$OPENCLAW_VERSION}"
mkdir -p "$cache/node24" "$cache/oc"
if [ ! -x "$cache/node24/node_modules/.bin/node" ]; then
  cp "$here/node24/package.json" "$here/node24/package-lock.json" "$cache/node24/" 2>/dev/null || true
  (cd "$cache/node24" && { [ -f package-lock.json ] && npm ci --no-audit --no-fund --loglevel=error >&2 || npm i --no-audit --no-fund --loglevel=error "node@$NODE_VERSION" >&2; })
fi
NODE_BIN="$cache/node24/node_modules/.bin"
if [ ! -f "$cache/oc/node_modules/openclaw/openclaw.mjs" ]; then
  cp "$here/oc/package.json" "$here/oc/package-lock.json" "$cache/oc/" 2>/dev/null || true
  (cd "$cache/oc" && { [ -f package-lock.json ] && PATH="$NODE_BIN:$PATH" npm ci --no-audit --no-fund --loglevel=error >&2 || PATH="$NODE_BIN:$PATH" npm i --no-audit --no-fund --loglevel=error "openclaw@$OPENCLAW_VERSION" >&2; })
fi
"$NODE_BIN/node" --version >&2
echo "$cache"
