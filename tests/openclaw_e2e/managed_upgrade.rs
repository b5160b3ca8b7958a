//! Upgrades of managed gateways with real releases from npm: two gateways declared on 2026.9.5
//! are upgraded to 2026.9.6 by `POST /api/fleet/upgrade`, one canary first — the daemon
//! installs the target beside the current release, has it preflight a copy of the state, stops
//! the gateway, snapshots its state and starts the target on it; both come back as new
//! processes on the new release. Then a target that cannot start (a tarball whose gateway
//! exits 1, built here: its CLI answers the preflight, its `gateway run` fails) is rolled back
//! on the canary — the snapshot put back, 2026.9.6 started again, the operation `reverted`,
//! the other gateway untouched. Then a downgrade to 2026.9.5: its own preflight refuses the
//! state 2026.9.6 migrated, so the gateway is never stopped (started on that state, 2026.9.5
//! exits 78: `testdata/openclaw-captures/managed/downgrade-refused-2026.9.5.log`).

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use gs_test_support::daemon::Daemon;

use super::free_base_port;
use super::managed::{
    alive, declare_version, gateway_online, managed, managed_daemon, wait_managed,
};
use super::operations::wait_operation;

/// Installs, stops, starts and settles, canary then the other (each install from npm about a
/// minute the first time).
const UPGRADE: Duration = Duration::from_secs(900);

/// A package named `openclaw` whose CLI answers `database preflight` as 2026.9.6 does for a
/// state it reads as it is, and whose gateway cannot start (exit 1).
fn broken_tarball(dir: &Path, version: &str) -> std::path::PathBuf {
    let pkg = dir.join("package");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(
        pkg.join("package.json"),
        json!({"name": "openclaw", "version": version, "type": "module"}).to_string(),
    )
    .unwrap();
    std::fs::write(
        pkg.join("openclaw.mjs"),
        r#"const a = process.argv.slice(2);
if (a[0] === "database" && a[1] === "preflight") {
  console.log(JSON.stringify({ status: "exact" }));
  process.exit(0);
}
console.error("this build is broken: the gateway cannot start");
process.exit(1);
"#,
    )
    .unwrap();
    let tgz = dir.join(format!("openclaw-{version}.tgz"));
    let packed = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&tgz)
        .arg("-C")
        .arg(dir)
        .arg("package")
        .status()
        .unwrap();
    assert!(packed.success());
    tgz
}

fn upgrade(d: &Daemon, body: Value) -> Value {
    let res = d.call("POST", "/api/fleet/upgrade", &d.admin_key, &body);
    assert_eq!(res.status, 202, "{}", res.text());
    let id = res.json()["operation"]["id"].as_str().unwrap().to_owned();
    wait_operation(d, &id, UPGRADE)
}

fn server_version(g: &Value) -> &str {
    g["connection"]["server_version"].as_str().unwrap_or("")
}

#[test]
fn an_upgrade_swaps_managed_releases_canary_first_and_a_target_that_cannot_start_is_rolled_back() {
    let (d, _config, _reaper) = managed_daemon();
    let base = free_base_port();
    let ids: Vec<i64> = [("up1", base), ("up2", base + 300)]
        .iter()
        .map(|(name, port)| declare_version(&d, name, "2026.9.5", *port, json!({})))
        .collect();
    let mut pids = Vec::new();
    for id in &ids {
        let m = wait_managed(&d, *id, "2026.9.5 running", |m| m["state"] == "running");
        pids.push(m["pid"].as_i64().unwrap());
        let g = gateway_online(&d, *id);
        assert_eq!(server_version(&g), "2026.9.5", "{g:#}");
    }

    // 2026.9.5 → 2026.9.6, the first a canary.
    let op = upgrade(
        &d,
        json!({"gateway_ids": ids, "version": "2026.9.6", "canary": 1,
               "canary_bake_seconds": 5, "min_healthy_seconds": 5, "wait_ready_seconds": 600}),
    );
    assert_eq!(op["state"], "succeeded", "{op:#}");
    let progress = op["gateways"].as_array().unwrap();
    assert_eq!(progress[0]["canary"], true, "{op:#}");
    assert!(
        progress[0]["finished_at"].as_i64() <= progress[1]["started_at"].as_i64(),
        "the other waits for the canary: {op:#}"
    );
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(progress[i]["version_before"], "2026.9.5", "{op:#}");
        assert_eq!(progress[i]["version_after"], "2026.9.6", "{op:#}");
        let m = managed(&d, *id);
        assert_eq!(m["version"], "2026.9.6", "{m:#}");
        assert_eq!(m["state"], "running", "{m:#}");
        assert_eq!(m["crashes"], 0, "a swap is not a crash: {m:#}");
        let pid = m["pid"].as_i64().unwrap();
        assert_ne!(pid, pids[i], "a new process: {m:#}");
        assert!(!alive(pids[i]), "the old process is gone");
        pids[i] = pid;
        let g = gateway_online(&d, *id);
        assert_eq!(server_version(&g), "2026.9.6", "{g:#}");
        assert_eq!(g["cordoned"], false, "back in service: {g:#}");
    }

    // A target that cannot start: the canary is put back, the other is left untouched.
    let tmp = tempfile::tempdir().unwrap();
    let tgz = broken_tarball(tmp.path(), "2026.9.7-broken");
    let op = upgrade(
        &d,
        json!({"gateway_ids": ids, "version": "2026.9.7-broken", "source": tgz, "canary": 1,
               "min_healthy_seconds": 5, "wait_ready_seconds": 600}),
    );
    assert_eq!(op["state"], "reverted", "{op:#}");
    let progress = op["gateways"].as_array().unwrap();
    assert_eq!(progress[0]["step"], "failed", "{op:#}");
    assert_eq!(progress[0]["rolled_back"], true, "{op:#}");
    let detail = progress[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("rolled back") && detail.contains("exit 1") && detail.contains("2026.9.6"),
        "{detail}"
    );
    assert_eq!(progress[1]["step"], "skipped", "{op:#}");
    let canary = managed(&d, ids[0]);
    assert_eq!(canary["version"], "2026.9.6", "{canary:#}");
    assert_eq!(canary["state"], "running", "{canary:#}");
    let g = gateway_online(&d, ids[0]);
    assert_eq!(
        server_version(&g),
        "2026.9.6",
        "serves again on its old release: {g:#}"
    );
    assert_eq!(g["cordoned"], false, "{g:#}");
    let other = managed(&d, ids[1]);
    assert_eq!(other["pid"].as_i64(), Some(pids[1]), "untouched: {other:#}");

    // A downgrade: 2026.9.5's own preflight refuses the state 2026.9.6 migrated, so the
    // gateway is never stopped, and nothing is retried.
    let op = upgrade(
        &d,
        json!({"gateway_ids": [ids[1]], "version": "2026.9.5", "canary": 1,
               "min_healthy_seconds": 5, "wait_ready_seconds": 600}),
    );
    assert_eq!(op["state"], "failed", "{op:#}");
    let detail = op["gateways"][0]["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("refused a copy of the state") && detail.contains("incompatible"),
        "{detail}"
    );
    let other = managed(&d, ids[1]);
    assert_eq!(
        other["pid"].as_i64(),
        Some(pids[1]),
        "never stopped: {other:#}"
    );
    assert_eq!(other["version"], "2026.9.6", "{other:#}");
    assert_eq!(other["restarts"], 0, "{other:#}");
    // Left as it was: back in service (it stayed cordoned, and with one gateway on the host
    // every spawn failed `no_healthy_gateway`).
    let g = gateway_online(&d, ids[1]);
    assert_eq!(g["cordoned"], false, "{g:#}");
    assert!(!String::from_utf8_lossy(&d.logs()).contains("panicked"));
}
