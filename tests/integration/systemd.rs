//! The unit file passes `systemd-analyze verify`, and the daemon speaks sd_notify: READY=1,
//! WATCHDOG=1, RELOADING=1 on SIGHUP, STOPPING=1 on SIGTERM, on a socket the test owns.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{Daemon, binary};

/// The repository's `systemd/<file>`, written as `name` with ExecStart's binary the one under
/// test (verify checks that it exists), passes `systemd-analyze verify`: nothing it says names
/// the unit (lines about the host — no running systemd in a container — are not about it).
fn verify(file: &str, name: &str) -> String {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("systemd")
            .join(file),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(
        &path,
        unit.replace(
            "/usr/local/bin/gateway-supervisor",
            binary().to_str().unwrap(),
        ),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze must be installed (scripts/test.sh installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stem = name.split(['@', '.']).next().unwrap();
    let ours: Vec<&str> = stderr.lines().filter(|l| l.contains(stem)).collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify {name}:\n{stderr}"
    );
    unit
}

#[test]
fn unit_file_passes_systemd_analyze_verify() {
    let unit = verify("gateway-supervisor.service", "gateway-supervisor.service");
    assert!(
        unit.contains("Type=notify")
            && unit.contains("WatchdogSec=")
            && unit.contains("StateDirectory=")
    );
}

/// The managed gateways' template passes `systemd-analyze verify` as an instance.
#[test]
fn the_managed_gateway_template_passes_systemd_analyze_verify() {
    let unit = verify(
        "openclaw-gateway@.service",
        "openclaw-gateway@edge-1.service",
    );
    for must in [
        "Type=exec",
        "KillMode=mixed",
        "Restart=no",
        "keep --dir %S/gateway-supervisor/managed/gateways/%i/run",
    ] {
        assert!(unit.contains(must), "{must}");
    }
    assert!(
        !unit
            .lines()
            .any(|l| l.starts_with("PartOf=") || l.starts_with("BindsTo=")),
        "a daemon restart must not reach it"
    );
}

fn wait_for(sock: &UnixDatagram, want: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 4096];
    while !seen.iter().any(|m| m.lines().any(|l| l == want)) {
        assert!(
            Instant::now() < deadline,
            "no {want} within 20 s; got {seen:?}"
        );
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
}

#[test]
fn sd_notify_ready_watchdog_reload_stopping() {
    let mut d = Daemon::start();
    d.kill9();
    let sock_path = d.state_dir().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    d.launch_with(|cmd| {
        cmd.env("NOTIFY_SOCKET", &sock_path)
            .env("WATCHDOG_USEC", "1000000");
    });
    let mut seen = Vec::new();
    wait_for(&sock, "READY=1", &mut seen);
    wait_for(&sock, "WATCHDOG=1", &mut seen);
    // More than one: it is a timer, not a one-off.
    let first = seen.iter().filter(|m| m.contains("WATCHDOG=1")).count();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while seen.iter().filter(|m| m.contains("WATCHDOG=1")).count() == first {
        assert!(Instant::now() < deadline, "only one WATCHDOG=1");
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    seen.clear();
    d.signal("HUP");
    wait_for(&sock, "RELOADING=1", &mut seen);
    assert!(
        seen.iter().any(|m| m.contains("MONOTONIC_USEC=")),
        "{seen:?}"
    );
    wait_for(&sock, "READY=1", &mut seen);
    assert_eq!(d.get("/healthz", "").status, 200);
    let status = d.terminate();
    wait_for(&sock, "STOPPING=1", &mut seen);
    assert!(status.success(), "clean exit after SIGTERM: {status}");
}

/// The package's polkit rule, evaluated as polkit evaluates it (a JavaScript function given the
/// action and the subject): the daemon's user may manage its gateways' units and nothing else.
#[test]
fn the_polkit_rule_lets_the_daemon_manage_its_gateway_units_and_nothing_else() {
    let rules =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/polkit/gateway-supervisor.rules");
    let script = format!(
        r#"
const rules = [];
globalThis.polkit = {{ Result: {{ YES: "yes", NOT_HANDLED: null }}, addRule: (f) => rules.push(f) }};
require({rules:?});
const ask = (id, user, unit, verb) => rules[0](
  {{ id, lookup: (k) => ({{ unit, verb }})[k] }}, {{ user }});
const m = "org.freedesktop.systemd1.manage-units";
console.log(JSON.stringify([
  ask(m, "gateway-supervisor", "openclaw-gateway@alpha.service", "restart"),
  ask(m, "gateway-supervisor", "openclaw-gateway@a.b_c-1.service", "stop"),
  ask(m, "gateway-supervisor", "openclaw-gateway@alpha.service", "set-property"),
  ask(m, "gateway-supervisor", "sshd.service", "start"),
  ask(m, "gateway-supervisor", "openclaw-gateway@x.service sshd.service", "start"),
  ask(m, "gateway-supervisor", "openclaw-gateway@alpha.service", "enable"),
  // A transient unit's start, which systemd 252 asks about without naming it.
  ask(m, "gateway-supervisor", undefined, undefined),
  ask(m, "nobody", "openclaw-gateway@alpha.service", "start"),
  ask("org.freedesktop.systemd1.manage-unit-files", "gateway-supervisor", "openclaw-gateway@alpha.service", "start"),
]));
"#,
        rules = rules.display().to_string()
    );
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("rule.js");
    std::fs::write(&copy, script).unwrap();
    let out = Command::new("node")
        .arg(&copy)
        .output()
        .expect("node must be installed (scripts/test.sh installs npm, which brings it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"["yes","yes","yes",null,null,null,null,null,null]"#
    );
}
