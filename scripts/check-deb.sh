#!/usr/bin/env bash
# Installs the Debian package (scripts/package-deb.sh) on this machine with `dpkg -i` and checks
# what an operator gets: the binary, the system user from sysusers.d, the configuration as a
# conffile only that user can read, the unit enabled and accepted by `systemd-analyze verify`,
# nothing started where systemd is not running, completions and manual pages, and the daemon
# serving under that user with the packaged configuration. Then removes the package (the
# conffile stays) and purges it (the conffile goes). Needs root (or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}
fail() { echo "check-deb: FAILED: $*" >&2; exit 1; }
ok() { echo "check-deb: ok: $*"; }

deb=${1:-$(ls target/debian/gateway-supervisor_*.deb)}
version=$(dpkg-deb -f "$deb" Version)
conf=/etc/gateway-supervisor/gateway-supervisor.toml
unit=/usr/lib/systemd/system/gateway-supervisor.service

as_root env DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" || fail "dpkg -i $deb"
ok "dpkg -i $(basename "$deb")"

out=$(gateway-supervisor --version)
[[ "$out" == "gateway-supervisor ${version%-*}"* ]] || fail "--version said: $out"
[ "$(command -v gateway-supervisor)" = /usr/bin/gateway-supervisor ] || fail "not in /usr/bin"
ok "$out"

entry=$(getent passwd gateway-supervisor) || fail "no gateway-supervisor user"
[[ "$entry" == *":/var/lib/gateway-supervisor:/usr/sbin/nologin" ]] || fail "user: $entry"
ok "system user: $entry"

dpkg-query -W -f='${Conffiles}\n' gateway-supervisor | grep -q " $conf " || fail "$conf is not a conffile"
perms=$(stat -c '%a %U %G' "$conf")
[ "$perms" = "640 root gateway-supervisor" ] || fail "$conf is $perms"
ok "conffile $conf ($perms)"

rules=/usr/share/polkit-1/rules.d/gateway-supervisor.rules
[ "$(stat -c '%a %U' "$rules" 2>/dev/null)" = "644 root" ] || fail "no polkit rule at $rules"
ok "polkit rule $rules (managed gateways' units)"
template=/usr/lib/systemd/system/openclaw-gateway@.service
grep -q '^ExecStart=/usr/bin/gateway-supervisor keep ' "$template" || fail "no packaged $template"
ok "template $template"

verify=$(systemd-analyze verify --man=no "$unit" 2>&1) || fail "systemd-analyze verify: $verify"
# Lines about the host (no running systemd in a container) are not about the unit.
if grep -q "gateway-supervisor" <<<"$verify"; then fail "systemd-analyze verify: $verify"; fi
grep -q '^ExecStart=/usr/bin/gateway-supervisor serve --config /etc/gateway-supervisor/gateway-supervisor.toml$' "$unit" ||
  fail "the packaged unit's ExecStart"
[ -L /etc/systemd/system/multi-user.target.wants/gateway-supervisor.service ] || fail "unit not enabled"
ok "unit verified and enabled"

if [ ! -d /run/systemd/system ]; then
  if pgrep -u gateway-supervisor >/dev/null; then fail "started without systemd"; fi
  ok "no systemd running here: nothing started"
fi

for f in /usr/share/bash-completion/completions/gateway-supervisor \
  /usr/share/zsh/vendor-completions/_gateway-supervisor \
  /usr/share/fish/vendor_completions.d/gateway-supervisor.fish \
  /usr/share/gateway-supervisor/mixin/prometheus/alerts.yml \
  /usr/share/doc/gateway-supervisor/copyright; do
  [ -s "$f" ] || fail "missing $f"
done
page=$(zcat /usr/share/man/man1/gateway-supervisor.1.gz | groff -man -Tutf8 -P-cbou 2>&1) || fail "man page"
grep -q "gateway-supervisor-serve(1)" <<<"$page" || fail "the manual page does not list its subcommands"
ok "completions, manual pages, mixin, copyright"

# The daemon as the unit runs it: its user, the packaged configuration, a state directory.
state=$(mktemp -d)
as_root chown gateway-supervisor:gateway-supervisor "$state"
as_root chmod 0700 "$state"
as_root runuser -u gateway-supervisor -- env STATE_DIRECTORY="$state" \
  gateway-supervisor serve --config "$conf" --bind 127.0.0.1:0 >"$state.log" 2>&1 &
pid=$!
stop() { as_root pkill -TERM -u gateway-supervisor -x gateway-supervi 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
addr=""
for _ in $(seq 1 200); do
  addr=$(as_root cat "$state/http.addr" 2>/dev/null | awk '{print $1}') && [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$state.log" >&2; fail "the daemon exited"; }
  sleep 0.1
done
[ -n "$addr" ] || { stop; cat "$state.log" >&2; fail "the daemon did not listen within 20 s"; }
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$addr/readyz") || true
stop
[ "$code" = 200 ] || { cat "$state.log" >&2; fail "GET /readyz answered $code"; }
as_root test -s "$state/admin.key" || fail "no admin.key in the state directory"
as_root rm -rf "$state" "$state.log"
ok "serves as gateway-supervisor with the packaged configuration (GET /readyz 200 on $addr)"

as_root dpkg -r gateway-supervisor >/dev/null || fail "dpkg -r"
[ ! -e /usr/bin/gateway-supervisor ] || fail "binary left after dpkg -r"
[ -f "$conf" ] || fail "dpkg -r removed the conffile"
as_root dpkg --purge gateway-supervisor >/dev/null || fail "dpkg --purge"
[ ! -e "$conf" ] || fail "conffile left after purge"
[ ! -e /etc/systemd/system/multi-user.target.wants/gateway-supervisor.service ] || fail "enablement left after purge"
ok "removed (conffile kept), then purged (conffile gone)"
