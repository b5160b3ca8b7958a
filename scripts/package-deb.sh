#!/usr/bin/env bash
# Builds the Debian package, target/debian/gateway-supervisor_<version>-1_<arch>.deb, with
# cargo-deb (pinned; installed when missing): the release binary, the unit with the binary in
# /usr/bin, the sysusers.d user, the example configuration as a conffile, completions for bash,
# zsh and fish, the manual pages, and the Prometheus mixin. Prints the package's path.
# GS_DEB_BINARY=<path>: package that binary instead of building the release one (the test
# suite's check of the packaging).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
if ! cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
  # Built in cargo's own temporary directory, whatever CARGO_TARGET_DIR says: a tool is not
  # one of the project's build products.
  env -u CARGO_TARGET_DIR cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION" >&2
fi

if [ -n "${GS_DEB_BINARY:-}" ]; then
  # A binary built already (the test suite's): packaged as it is, less its debug information,
  # instead of a release build of every crate (~13 minutes on 2 cores). What the test suite
  # checks is the packaging; a package to ship is built without this.
  stage=target/deb-stage
  rm -rf "$stage"
  mkdir -p "$stage/release"
  objcopy --strip-debug "$GS_DEB_BINARY" "$stage/release/gateway-supervisor"
  export CARGO_TARGET_DIR=$stage
else
  cargo build --release --locked --bin gateway-supervisor >&2
fi
# Where cargo put it: CARGO_TARGET_DIR when set (relative to the project, as cargo reads it).
# cargo-deb finds it there too (it maps the `target/release/` of the asset list to it); the
# generated files below stay under the project's target/package, where the asset list names them.
bin=${CARGO_TARGET_DIR:-target}/release/gateway-supervisor
out=target/package
rm -rf "$out"
mkdir -p "$out/completions" "$out/man" "$out/systemd" "$out/units"
"$bin" completions bash >"$out/completions/gateway-supervisor"
"$bin" completions zsh >"$out/completions/_gateway-supervisor"
"$bin" completions fish >"$out/completions/gateway-supervisor.fish"
"$bin" man --dir "$out/man" >&2
gzip -9n "$out"/man/*.1
# The unit as packaged: the binary where the package puts it, without the manual-install notes
# that open the repository's copy.
sed -e 's#/usr/local/bin/gateway-supervisor#/usr/bin/gateway-supervisor#' \
  -e '1,/^\[Unit\]/{/^#/d}' systemd/gateway-supervisor.service >"$out/systemd/gateway-supervisor.service"
# The managed gateways' template, installed, never enabled (the daemon starts its instances).
sed -e 's#/usr/local/bin/gateway-supervisor#/usr/bin/gateway-supervisor#' \
  systemd/openclaw-gateway@.service >"$out/units/openclaw-gateway@.service"

rm -rf target/debian
cargo deb --no-build --locked -p gateway-supervisor --output target/debian/ >&2
ls target/debian/gateway-supervisor_*.deb
