#!/usr/bin/env bash
# Installs one OpenClaw release from the npm registry, with the Node it needs, into a cache
# folder (two separate folders: openclaw's preinstall refuses the machine's Node 20, so Node comes
# as its own package and runs openclaw). Idempotent; prints the cache folder, which holds `node/`
# and `oc/`.
#
#   e2e/openclaw/install.sh              openclaw 2026.9.6 (Node 24)
#   e2e/openclaw/install.sh 2026.3.31    an older release the e2e also runs (Node 22)
#
# Each release's package.json and lockfile are pinned in releases/<version>/. Older releases
# need npm overrides to install at all (see research notes in docs/design.md, *Older releases*):
# - linkedom 0.18.12: later 0.18.x depend on `cssomnom`, which is gone from the registry (E404);
# - libsignal (2026.1.x–2.x): a git dependency of the WhatsApp channel (`libsignal-node` on
#   GitHub); a local stub (libsignal-stub/) stands in, as the channel is never started
#   (OPENCLAW_SKIP_CHANNELS=1).
set -euo pipefail
OPENCLAW_VERSION=${1:-2026.9.6}
here="$(cd "$(dirname "$0")" && pwd)"
release="$here/releases/$OPENCLAW_VERSION"
[ -f "$release/package.json" ] || { echo "release $OPENCLAW_VERSION is not pinned under $here/releases/" >&2; exit 1; }
case "$OPENCLAW_VERSION" in
  2026.8.*|2026.9.*) NODE_MAJOR=24 ;;
  *) NODE_MAJOR=22 ;;
esac
cache="${GS_OPENCLAW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gateway-supervisor}/openclaw-$OPENCLAW_VERSION"
mkdir -p "$cache/node" "$cache/oc"
if [ ! -x "$cache/node/node_modules/.bin/node" ]; then
  cp "$here/node$NODE_MAJOR/package.json" "$here/node$NODE_MAJOR/package-lock.json" "$cache/node/"
  (cd "$cache/node" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
NODE_BIN="$cache/node/node_modules/.bin"
if [ ! -f "$cache/oc/node_modules/openclaw/openclaw.mjs" ]; then
  rm -rf "$cache/libsignal-stub" && cp -r "$here/libsignal-stub" "$cache/libsignal-stub"
  cp "$release"/package*.json "$cache/oc/"
  if [ -f "$release/package-lock.json" ]; then
    (cd "$cache/oc" && PATH="$NODE_BIN:$PATH" npm ci --no-audit --no-fund --loglevel=error >&2)
  else
    # No lockfile where npm cannot write a usable one: its entry for a `file:` override of a
    # transitive dependency (libsignal) points at a folder that does not exist, and `npm ci`
    # refuses it. openclaw itself is pinned exactly in package.json.
    (cd "$cache/oc" && PATH="$NODE_BIN:$PATH" npm i --no-audit --no-fund --loglevel=error >&2)
  fi
fi
"$NODE_BIN/node" --version >&2
echo "$cache"
