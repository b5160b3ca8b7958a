#!/usr/bin/env bash
# Installs the OpenID Provider the console's single sign-on test runs (oidc-provider, pinned in
# package-lock.json) into a cache folder, and prints that folder (it holds provider.mjs and
# node_modules/). Idempotent; ~2 s once. Runs on the machine's Node (20 or later).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${GS_OIDC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gateway-supervisor}/oidc-provider"
mkdir -p "$cache"
if ! cmp -s "$here/package-lock.json" "$cache/package-lock.json" || [ ! -d "$cache/node_modules/oidc-provider" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$cache/"
  (cd "$cache" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
cp "$here/provider.mjs" "$cache/provider.mjs"
echo "$cache"
