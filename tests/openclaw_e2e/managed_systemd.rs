//! The systemd backend with a real OpenClaw 2026.9.6: each managed gateway's keeper runs as an
//! instance of the packaged `openclaw-gateway@.service`, with the limits of `[managed_runtime]`
//! set on it and none of the gateway's environment in the unit. No systemd runs as PID 1 here,
//! so `systemctl` is `tests/fixtures/systemctl`, which does what systemd 252 does for these
//! calls with the repository's template (`Type=exec`, a session of its own, output appended,
//! `KillMode=mixed`) and writes each instance as a file that the real `systemd-analyze verify`
//! checks.

use std::path::{Path, PathBuf};
use std::process::Command;

use std::time::Duration;

use serde_json::{Value, json};

use gs_test_support::daemon::wait_for;

use super::free_gateway_port;
use super::managed::{alive, gateway_online, managed_daemon_with, wait_managed};

const UNIT: &str = "openclaw-gateway@sd1.service";
const SECRET: &str = "only-in-the-gateway-environment-7f3a";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn calls(dir: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(dir.join("calls.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["argv"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_owned())
                .collect()
        })
        .collect()
}

fn main_pid(dir: &Path) -> u32 {
    std::fs::read_to_string(dir.join(format!("{UNIT}.pid")))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn parent_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat.rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn under_systemd_each_gateway_runs_in_a_unit_of_its_own_with_its_limits_and_outlives_the_daemon() {
    let units = tempfile::tempdir().unwrap();
    let units_dir = units.path().display().to_string();
    // systemd's %S: the template's %S/gateway-supervisor is the daemon's state folder.
    let state_root = tempfile::tempdir().unwrap();
    let bin_dir = gs_test_support::daemon::binary()
        .parent()
        .unwrap()
        .to_owned();
    let (mut d, config, _reaper) = managed_daemon_with(
        &[
            ("FAKE_SYSTEMD_DIR", &units_dir),
            ("FAKE_SYSTEMD_UNIT_PATH", repo("systemd").to_str().unwrap()),
            (
                "FAKE_SYSTEMD_STATE_ROOT",
                state_root.path().to_str().unwrap(),
            ),
            ("FAKE_SYSTEMD_BIN_DIR", bin_dir.to_str().unwrap()),
        ],
        &format!(
            "backend = \"systemd\"\nsystemctl = {:?}\nmemory_max = 2147483648\n\
             cpu_quota_percent = 150\ntasks_max = 4096",
            repo("tests/fixtures/systemctl").display().to_string()
        ),
        &format!("GS_TEST_MARKER = \"{SECRET}\""),
    );
    std::os::unix::fs::symlink(d.state_dir(), state_root.path().join("gateway-supervisor"))
        .unwrap();
    let res = d.call(
        "POST",
        "/api/managed",
        &d.admin_key,
        &json!({
            "name": "sd1", "version": "2026.9.6", "port": free_gateway_port(),
            "config": {"models": {"catalogRefresh": {"enabled": false}},
                       "agents": {"defaults": {"heartbeat": {"every": "0m"}}}},
        }),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let id = res.json()["managed"]["gateway_id"].as_i64().unwrap();
    let first = wait_managed(&d, id, "running in its unit", |m| m["state"] == "running");
    gateway_online(&d, id);

    // What the gateway prints (its keeper's output.log) reaches the central log tail.
    let printed = wait_for(
        "the gateway's output in GET /api/logs",
        Duration::from_secs(60),
        || {
            let logs = d
                .get(
                    &format!("/api/logs?gateway_id={id}&limit=5000"),
                    &d.admin_key,
                )
                .json();
            let lines: Vec<Value> = logs["logs"].as_array().cloned().unwrap_or_default();
            match lines.iter().find(|l| l["payload"]["source"] == "output") {
                Some(l) => Ok(l.clone()),
                None => Err(format!("{} lines, none from the output", lines.len())),
            }
        },
    );
    assert!(
        !printed["message"].as_str().unwrap_or("").is_empty(),
        "{printed}"
    );

    // The limits set on the gateway's instance, then the instance (re)started; no environment.
    let called = calls(units.path());
    assert_eq!(
        called,
        [
            vec![
                "set-property",
                "--runtime",
                UNIT,
                "MemoryMax=2147483648",
                "CPUQuota=150%",
                "TasksMax=4096"
            ],
            vec!["restart", UNIT],
        ],
    );
    let unit_file = std::fs::read_to_string(units.path().join(UNIT)).unwrap();
    assert!(unit_file.contains("MemoryMax=2147483648") && unit_file.contains("KillMode=mixed"));
    assert!(!unit_file.contains(SECRET));
    let run_dir = d.state_dir().join("managed/gateways/sd1/run");
    assert!(
        !run_dir.join("launch.json").exists(),
        "the keeper removed the launch file once read"
    );
    let gateway = first["pid"].as_i64().unwrap();
    let environ = std::fs::read(format!("/proc/{gateway}/environ")).unwrap();
    assert!(
        String::from_utf8_lossy(&environ).contains(SECRET),
        "the gateway got its environment through the file"
    );
    // Real systemd accepts the unit's properties.
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(units.path().join(UNIT))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // The unit's main process is the keeper, not a child of the daemon.
    let keeper = main_pid(units.path());
    assert_ne!(parent_of(keeper), d.pid());
    d.kill9();
    assert!(
        alive(i64::from(keeper)) && alive(gateway),
        "the unit outlives the daemon"
    );
    d.launch_with(|c| {
        c.arg("--config").arg(&config);
    });
    let m = wait_managed(&d, id, "re-adopted", |m| {
        m["detail"] == "re-adopted after a daemon restart"
    });
    assert_eq!(m["pid"], first["pid"], "the same process: {m}");
    assert_eq!(calls(units.path()).len(), 2, "never started twice");

    // `systemctl stop openclaw-gateway@sd1` (KillMode=mixed: SIGTERM to the keeper alone): the
    // keeper passes it on, the gateway drains and exits 0, the exit is recorded, and — a clean
    // exit, as with systemd's Restart=on-failure — it stays down until asked.
    let status = Command::new("kill")
        .args(["-TERM", &keeper.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let stopped = wait_managed(&d, id, "the drained gateway's exit recorded", |m| {
        m["state"] == "exited"
    });
    assert_eq!(stopped["last_exit"], "exit 0", "{stopped}");
    assert!(!alive(gateway) && !alive(i64::from(keeper)));
    // Asked again: a new unit.
    let res = d.call(
        "POST",
        &format!("/api/managed/{id}/restart"),
        &d.admin_key,
        &json!({}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    wait_managed(&d, id, "started again in a new unit", |m| {
        m["state"] == "running" && m["pid"] != first["pid"]
    });
    assert_eq!(
        calls(units.path()).len(),
        4,
        "its limits set again, and restarted"
    );
    assert_ne!(main_pid(units.path()), keeper);
    gateway_online(&d, id);

    // GET /api/hosts says where the gateways run.
    let hosts = d.get("/api/hosts", &d.admin_key).json();
    assert_eq!(hosts["hosts"][0]["info"]["backend"], "systemd", "{hosts}");
}
