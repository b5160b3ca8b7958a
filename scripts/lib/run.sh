# shellcheck shell=bash
# What the scripts that run a throwaway daemon share: `log`, `as_root`, `wait_for`, and a work
# directory ($WORK) whose processes ($PIDS) are stopped and which is removed on exit (kept with
# KEEP_WORK=1). Sourced: `. scripts/lib/run.sh; work_dir gs-name`.

log() { printf '\n==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# A fresh /tmp/$1.XXXXXX as $WORK; the processes added to $PIDS are stopped on exit.
work_dir() {
  WORK=$(mktemp -d "/tmp/$1.XXXXXX")
  PIDS=()
  trap cleanup_work EXIT
}

cleanup_work() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
