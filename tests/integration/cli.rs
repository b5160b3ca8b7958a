//! The command line: check-config, migrate, keys.

use std::io::Write;

use crate::support::{Daemon, binary};
use std::process::Command;

fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(binary());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn check_config_names_unknown_keys_and_bad_values() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "[gateways]\nheartbeat_intervall = \"30s\"").unwrap();
    let out = run(
        &["check-config", "--config", file.path().to_str().unwrap()],
        &[],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("heartbeat_intervall"), "{stderr}");

    let out = run(
        &["check-config"],
        &[("GATEWAY_SUPERVISOR__SERVER__BIND", "not-an-address")],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.bind"));

    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/gateway-supervisor.example.toml"
    );
    let secret = "c2VjcmV0LW1hc3Rlci1rZXktMzItYnl0ZXMtbG9uZyE=";
    let out = run(
        &["check-config", "--config", example],
        &[
            ("GATEWAY_SUPERVISOR__SECRETS__MASTER_KEY", secret),
            (
                "GATEWAY_SUPERVISOR__DATABASE__URL",
                "postgres://app:pw123@db/gs",
            ),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("heartbeat_interval") && stdout.contains("30s"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(secret) && !stdout.contains("pw123"),
        "secrets are not printed: {stdout}"
    );
    // For tools: only the settings, as one JSON document.
    let out = run(
        &["check-config", "--config", example, "--format", "json"],
        &[("GATEWAY_SUPERVISOR__SECRETS__MASTER_KEY", secret)],
    );
    assert!(out.status.success());
    let settings: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(settings["gateways"]["heartbeat_interval"], "30s");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(secret));
}

#[test]
fn migrate_and_keys_commands() {
    let d = Daemon::start();
    let out = d.cli(&["migrate"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 migration(s) applied"));

    let out = d.cli(&["keys", "create", "--role", "superuser", "--name", "x"]);
    assert!(!out.status.success());
    let key = d.create_key("operator", "ci bot");
    assert!(key.starts_with("gsk_") && key.len() == 44, "{key}");
    let out = d.cli(&["keys", "revoke", "999"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no key"));
    let out = d.cli(&["keys", "revoke", &key[..12]]);
    assert!(out.status.success());
    let out = d.cli(&["keys", "revoke", &key[..12]]);
    assert!(!out.status.success(), "revoking twice is an error");
    let listing = String::from_utf8_lossy(&d.cli(&["keys", "list"]).stdout).to_string();
    assert!(
        listing
            .lines()
            .any(|l| l.contains("ci bot") && l.contains("revoked")),
        "{listing}"
    );
    assert!(
        listing
            .lines()
            .any(|l| l.contains("initial-admin") && l.contains("active")),
        "{listing}"
    );
}

/// A start that cannot work fails at once with one line naming the cause: no panic, no
/// backtrace, no retries, nothing written for a busy port.
#[test]
fn start_up_failures_are_one_clear_line() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = run(&["serve", "--bind", &addr, "--state-dir", dir], &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(
        !state.path().join("master.key").exists(),
        "nothing is created before the listener is bound"
    );

    // A file that is not a database.
    std::fs::write(state.path().join("supervisor.db"), vec![0x5a; 8192]).unwrap();
    let out = run(&["serve", "--bind", "127.0.0.1:0", "--state-dir", dir], &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("r2d2"),
        "{stderr}"
    );
    let errors = stderr.lines().filter(|l| l.contains("error")).count();
    assert_eq!(errors, 1, "{stderr}");
    assert!(stderr.contains("not a database"), "{stderr}");
}
