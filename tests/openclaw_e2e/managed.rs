//! Managed gateways with real OpenClaw 2026.9.6 (installed by the daemon from npm into a
//! releases folder cached across runs): two declared through the API from an empty state come
//! online; a restart through the API ends the process with exit 0, the handoff is accepted and
//! it comes back as a new process, not counted as a crash; a kill -9 is a crash, restarted by
//! the policy; the daemon killed with kill -9 and started again adopts both (same pids, no
//! second process); a delete stops them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use gs_test_support::daemon::{Daemon, online, wait_for};

use super::free_base_port;

/// An install from npm (about a minute with npm's cache warm) and a start (~15 s).
const UP: Duration = Duration::from_secs(420);

fn install() -> PathBuf {
    PathBuf::from(std::env::var("GS_OPENCLAW_DIR").expect("GS_OPENCLAW_DIR"))
}

/// Releases installed by the daemon, kept across runs as the e2e's own installs are.
fn releases_dir() -> PathBuf {
    let base = std::env::var_os("GS_OPENCLAW_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("gateway-supervisor"))
        })
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/gateway-supervisor")
        });
    base.join("managed-releases")
}

/// SIGKILLs whatever managed gateways are still running under a daemon's state folder when the
/// test ends (they outlive the daemon by design).
pub(super) struct Reaper(PathBuf);

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in keeper_pids(&self.0) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

fn keeper_pids(state: &Path) -> Vec<u32> {
    std::fs::read_dir(state.join("managed/gateways"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("run/keeper.json")).ok())
        .filter_map(|b| serde_json::from_slice::<Value>(&b).ok())
        .filter_map(|v| v["gateway_pid"].as_u64().map(|p| p as u32))
        .collect()
}

pub(super) fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

pub(super) fn managed(d: &Daemon, id: i64) -> Value {
    d.get(&format!("/api/managed/{id}"), &d.admin_key).json()["managed"].clone()
}

pub(super) fn wait_managed(
    d: &Daemon,
    id: i64,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    wait_for(what, UP, || {
        let m = managed(d, id);
        if pred(&m) { Ok(m) } else { Err(m.to_string()) }
    })
}

pub(super) fn gateway_online(d: &Daemon, id: i64) -> Value {
    wait_for("the managed gateway online", UP, || {
        let g = d.get(&format!("/api/gateways/{id}"), &d.admin_key).json()["gateway"].clone();
        if online(&g) {
            Ok(g)
        } else {
            Err(g.to_string())
        }
    })
}

/// A daemon that runs managed gateways with the e2e's Node and the shared releases folder; its
/// configuration file; and the reaper of its gateways.
pub(super) fn managed_daemon() -> (Daemon, PathBuf, Reaper) {
    managed_daemon_with(&[], "", "")
}

/// [`managed_daemon`] with more environment, more `[managed_runtime]` lines (`runtime`) and
/// more `[managed_runtime.env]` lines (`gateway_env`).
pub(super) fn managed_daemon_with(
    more_env: &[(&str, &str)],
    runtime: &str,
    gateway_env: &str,
) -> (Daemon, PathBuf, Reaper) {
    // npm reaches the registry as this machine does (a proxy's CA, npm's cache in HOME).
    let passed: Vec<(&str, String)> = [
        "HOME",
        "NODE_EXTRA_CA_CERTS",
        "SSL_CERT_FILE",
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "NO_PROXY",
    ]
    .into_iter()
    .filter_map(|k| std::env::var(k).ok().map(|v| (k, v)))
    .collect();
    let mut env: Vec<(&str, &str)> = passed.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("GATEWAY_SUPERVISOR__GATEWAYS__BACKOFF_MAX", "1s"));
    env.push(("GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE", "0"));
    env.extend_from_slice(more_env);
    // Started once for its admin key, then with the configuration file.
    let mut d = Daemon::start_with(&env);
    d.kill9();
    let config = d.state_dir().join("daemon.toml");
    std::fs::write(
        &config,
        format!(
            "[managed_runtime]\nnode = {:?}\nreleases_dir = {:?}\nrestart_delay = \"1s\"\n{runtime}\n\
             [managed_runtime.env]\nOPENCLAW_SKIP_CHANNELS = \"1\"\nOPENCLAW_DISABLE_BONJOUR = \"1\"\n{gateway_env}\n",
            install().join("node/node_modules/.bin/node").display().to_string(),
            releases_dir().display().to_string(),
        ),
    )
    .unwrap();
    let cfg = config.clone();
    d.launch_with(|c| {
        c.arg("--config").arg(&cfg);
    });
    let reaper = Reaper(d.state_dir().to_owned());
    (d, config, reaper)
}

#[test]
fn managed_gateways_start_restart_through_the_handoff_crash_and_survive_the_daemon() {
    let (mut d, config, _reaper) = managed_daemon();
    // One range of ports for both (a gateway uses its port to +110; the two are 300 apart).
    let base = free_base_port();
    let ids: Vec<i64> = [("m1", base), ("m2", base + 300)]
        .iter()
        .map(|(name, port)| {
            let res = d.call(
                "POST",
                "/api/managed",
                &d.admin_key,
                &json!({
                    "name": name, "version": "2026.9.6", "port": port,
                    "labels": {"tier": "managed"},
                    "config": {"models": {"catalogRefresh": {"enabled": false}},
                               "agents": {"defaults": {"heartbeat": {"every": "0m"}}}},
                }),
            );
            assert_eq!(res.status, 201, "{}", res.text());
            let m = &res.json()["managed"];
            assert_eq!(m["state"], "installing");
            m["gateway_id"].as_i64().unwrap()
        })
        .collect();
    for id in &ids {
        let m = wait_managed(&d, *id, "the managed gateway running", |m| {
            m["state"] == "running"
        });
        assert_eq!(m["restarts"], 0, "{m}");
        gateway_online(&d, *id);
    }

    // A restart through the gateway API: exit 0, the handoff accepted, a new process.
    let before = managed(&d, ids[0]);
    let res = d.call(
        "POST",
        &format!("/api/gateways/{}/restart", ids[0]),
        &d.admin_key,
        &json!({}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let after = wait_managed(&d, ids[0], "the requested restart", |m| {
        m["restarts"] == 1 && m["state"] == "running"
    });
    assert_eq!(
        after["crashes"], 0,
        "a requested restart is not a crash: {after}"
    );
    assert_eq!(after["last_exit"], "exit 0", "{after}");
    assert_ne!(after["pid"], before["pid"], "a new process");
    assert!(!alive(before["pid"].as_i64().unwrap()));
    gateway_online(&d, ids[0]);

    // kill -9: a crash, restarted by the policy.
    let victim = managed(&d, ids[1])["pid"].as_i64().unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status();
    let crashed = wait_managed(&d, ids[1], "the crash restarted", |m| {
        m["crashes"] == 1 && m["state"] == "running"
    });
    // util-linux's unshare reports its killed child as its own exit 1.
    assert_ne!(crashed["last_exit"], "exit 0", "{crashed}");
    assert_ne!(crashed["pid"], victim);
    gateway_online(&d, ids[1]);

    // The daemon killed with kill -9 and started again: both adopted, not started again.
    let pids: Vec<Value> = ids
        .iter()
        .map(|id| managed(&d, *id)["pid"].clone())
        .collect();
    d.kill9();
    for p in &pids {
        assert!(
            alive(p.as_i64().unwrap()),
            "a managed gateway outlives its daemon"
        );
    }
    d.launch_with(|c| {
        c.arg("--config").arg(&config);
    });
    for (id, pid) in ids.iter().zip(&pids) {
        let m = wait_managed(&d, *id, "re-adopted", |m| {
            m["detail"] == "re-adopted after a daemon restart"
        });
        assert_eq!(&m["pid"], pid, "the same process: {m}");
        assert_eq!(m["state"], "running");
        gateway_online(&d, *id);
    }
    assert_eq!(managed(&d, ids[0])["restarts"], 1, "never started twice");

    // A budget that keeps both in service: neither a managed restart nor a delete of a running
    // one gets past it (before, both went straight through).
    let res = d.call(
        "PUT",
        "/api/budgets/keep-both",
        &d.admin_key,
        &json!({"selector": "", "min_available": 2}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    for (method, path) in [
        ("POST", format!("/api/managed/{}/restart", ids[1])),
        ("DELETE", format!("/api/managed/{}", ids[1])),
    ] {
        let res = d.call(method, &path, &d.admin_key, &json!(null));
        assert_eq!(res.status, 429, "{method} {path}: {}", res.text());
        assert_eq!(res.json()["error"], "disruption_budget");
    }
    assert!(alive(pids[1].as_i64().unwrap()), "untouched");
    let res = d.call(
        "DELETE",
        "/api/budgets/keep-both",
        &d.admin_key,
        &json!(null),
    );
    assert_eq!(res.status, 200, "{}", res.text());

    // Delete stops one; the primary is refused as any gateway's removal is, and keeps running.
    let res = d.call(
        "DELETE",
        &format!("/api/managed/{}?purge=true", ids[1]),
        &d.admin_key,
        &json!(null),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(!alive(pids[1].as_i64().unwrap()), "stopped");
    assert_eq!(
        d.get(&format!("/api/gateways/{}", ids[1]), &d.admin_key)
            .status,
        404
    );
    assert_eq!(
        d.get(&format!("/api/managed/{}", ids[1]), &d.admin_key)
            .status,
        404
    );
    assert!(
        !d.state_dir().join("managed/gateways/m2").exists(),
        "purged"
    );
    let res = d.call(
        "DELETE",
        &format!("/api/managed/{}", ids[0]),
        &d.admin_key,
        &json!(null),
    );
    assert_eq!(res.status, 400, "{}", res.text());
    assert_eq!(res.json()["error"], "primary_gateway");
    assert!(
        alive(pids[0].as_i64().unwrap()),
        "a refused delete stops nothing"
    );
}

fn declare(d: &Daemon, name: &str, port: u16, config: Value) -> i64 {
    declare_version(d, name, "2026.9.6", port, config)
}

pub(super) fn declare_version(
    d: &Daemon,
    name: &str,
    version: &str,
    port: u16,
    config: Value,
) -> i64 {
    let res = d.call(
        "POST",
        "/api/managed",
        &d.admin_key,
        &json!({"name": name, "version": version, "port": port, "config": config}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()["managed"]["gateway_id"].as_i64().unwrap()
}

#[test]
fn a_crash_loop_is_given_up_after_five_and_a_refusal_is_never_retried() {
    let (d, _config, _reaper) = managed_daemon();
    // Its port held: 2026.9.6 exits 1 ("another gateway instance is already listening").
    let base = free_base_port();
    let port = base;
    let _holder = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let looping = declare(&d, "looping", port, json!({}));
    // An unknown gateway.mode: 2026.9.6 exits 78 ("Gateway start blocked").
    let refused = declare(
        &d,
        "refused",
        base + 300,
        json!({"gateway": {"mode": "bogus"}}),
    );

    let r = wait_managed(&d, refused, "the refusal", |m| m["state"] == "failed");
    assert_eq!(r["last_exit"], "exit 78", "{r}");
    assert_eq!(r["restarts"], 0, "exit 78 is not retried: {r}");
    assert!(r["detail"].as_str().unwrap().contains("exit 78"), "{r}");

    let l = wait_managed(&d, looping, "the crash loop given up", |m| {
        m["state"] == "failed"
    });
    assert_eq!(l["crashes"], 5, "{l}");
    assert_eq!(l["restarts"], 4, "started five times: {l}");
    assert_eq!(l["detail"], "gave up after 5 crashes within 10m", "{l}");
    assert_eq!(l["pid"], Value::Null);
    // Given up stays given up.
    let later = managed(&d, looping);
    assert_eq!(later["restarts"], 4);
    assert!(!String::from_utf8_lossy(&d.logs()).contains("panicked"));
}

/// The runbook's *Managed gateways* recipe (docs/operations.md), run as written: `ctl managed add … --wait` returns
/// once the gateway runs, and `ctl managed list` shows it.
#[test]
fn the_readme_managed_recipe_runs_as_written() {
    let (d, _config, _reaper) = managed_daemon();
    let out =
        super::rollout::run_recipe(&d, &super::rollout::runbook_block("### Managed gateways"));
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("edge-1") || l.contains("2026.9.6"))
        .collect();
    assert!(
        lines
            .iter()
            .filter(|l| l.contains("running") && l.contains("2026.9.6"))
            .count()
            >= 2,
        "add --wait and list both show it running:\n{out}"
    );
    let id = d.get("/api/managed", &d.admin_key).json()["managed"][0]["gateway_id"]
        .as_i64()
        .unwrap();
    let g = gateway_online(&d, id);
    assert_eq!(g["name"], "edge-1");
    assert_eq!(g["labels"]["tier"], "edge");

    // The upgrade recipe: edge-1 runs 2026.9.6 already, so its swap has nothing to do.
    let out = super::rollout::run_recipe(
        &d,
        &super::rollout::runbook_block("**Upgrading managed gateways**"),
    );
    let shown: Value = serde_json::from_str(out.trim()).expect("the recipe prints one object");
    assert_eq!(shown["gateways"][0]["gateway_id"], id, "{out}");
    let op = d.get("/api/operations", &d.admin_key).json()["operations"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = super::operations::wait_operation(&d, &op, UP);
    assert_eq!(done["state"], "succeeded", "{done:#}");
    assert_eq!(
        done["gateways"][0]["detail"], "already on 2026.9.6: nothing to swap",
        "{done:#}"
    );
}
