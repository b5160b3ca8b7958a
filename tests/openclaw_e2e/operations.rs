//! Fleet operations against a real OpenClaw 2026.9.6 gateway: a drain of an idle gateway, then
//! a rolling restart of it (drain, the restart request to the process noted at the start, back
//! as a new process with its `health` RPC and `/readyz` answering, uncordoned), with the new
//! bootId recorded; then a canary upgrade with it as the canary, which it refuses as this
//! harness installs it (the gateway's own reason is shown; a fake gateway after it is left
//! untouched — a real managed-service update needs a systemd-managed install).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use gs_test_support::daemon::{self, Daemon, online, wait_for};
use gs_test_support::real_gateway::RealGateway;

use super::{DEADLINE, add, free_gateway_port, gateway, wait_gateway};

pub(super) fn wait_operation(d: &Daemon, id: &str, budget: Duration) -> Value {
    wait_for(&format!("operation {id} over"), budget, || {
        let op = d.get(&format!("/api/operations/{id}"), &d.admin_key).json()["operation"].clone();
        if op["state"] != "running" {
            Ok(op)
        } else {
            Err(format!("{op:#}"))
        }
    })
}

/// A drained gateway is left suspended (the gateway's own word) and cordoned; resume and
/// uncordon bring it back.
fn drained_then_back(d: &Daemon, id: i64) {
    let g = gateway(d, id);
    assert_eq!(
        (g["cordoned"].as_bool(), g["suspended"].as_bool()),
        (Some(true), Some(true)),
        "{g:#}"
    );
    d.back_in_service(id);
}

#[test]
fn a_real_gateway_is_drained_then_restarted_as_a_new_process_and_uncordoned() {
    let install = PathBuf::from(std::env::var("GS_OPENCLAW_DIR").expect(
        "GS_OPENCLAW_DIR must point at the openclaw install (run scripts/test.sh, or e2e/openclaw/install.sh)",
    ));
    let mut gw = RealGateway::new(&install, free_gateway_port(), "ops-token-1", None);
    gw.start();
    gw.wait_ready();
    let d = Daemon::start_with(&[
        ("GATEWAY_SUPERVISOR__GATEWAYS__HEARTBEAT_INTERVAL", "1s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__BACKOFF_MAX", "2s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__HEALTH_INTERVAL", "1h"),
        ("GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE", "0"),
    ]);
    let id = add(&d, "real", "127.0.0.1", gw.port, "ops-token-1");
    let g = wait_gateway(&d, id, "online", online);
    let before = g["connection"]["boot_id"].as_str().unwrap().to_owned();

    // Drained while idle: ready at once, left suspended (the gateway's own word) and cordoned.
    let res = d
        .send(daemon::Request::new("POST", &format!("/api/gateways/{id}/drain")).key(&d.admin_key));
    assert_eq!(res.status, 202, "{}", res.text());
    let op = res.json()["operation"]["id"].as_str().unwrap().to_owned();
    let drained = wait_operation(&d, &op, DEADLINE);
    assert_eq!(drained["state"], "succeeded", "{drained:#}");
    drained_then_back(&d, id);

    // Rolling restart of the one gateway: back as another process, recorded, uncordoned.
    let res = d.call(
        "POST",
        "/api/fleet/restart",
        &d.admin_key,
        &json!({"gateway_ids": [id], "wait_ready_seconds": 120}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let op = res.json()["operation"]["id"].as_str().unwrap().to_owned();
    let done = wait_operation(&d, &op, Duration::from_secs(180));
    assert_eq!(done["state"], "succeeded", "{done:#}");
    let p = &done["gateways"][0];
    assert_eq!(p["boot_id_before"], before.as_str());
    let after = p["boot_id_after"]
        .as_str()
        .expect("the new process is recorded");
    assert_ne!(after, before, "another process answers");
    let g = wait_gateway(&d, id, "online as the new process", |g| {
        online(g) && g["connection"]["boot_id"] == after
    });
    assert_eq!(g["cordoned"], false, "{g:#}");
    let audit = d
        .get("/api/audit?limit=50", &d.admin_key)
        .json()
        .to_string();
    assert!(
        audit.contains("gateway.restart") && audit.contains("operation.succeeded"),
        "{audit}"
    );

    // A canary upgrade: the real gateway first, a fake after it.
    let fake = fake_gateway::FakeGateway::start(fake_gateway::FakeConfig {
        update: fake_gateway::Update::To {
            version: "2026.10.1".into(),
        },
        ..fake_gateway::FakeConfig::default()
    })
    .unwrap();
    let other = add(&d, "fake", "127.0.0.1", fake.addr().port(), "fake-token");
    wait_gateway(&d, other, "the fake online", online);
    let res = d.call(
        "POST",
        "/api/fleet/upgrade",
        &d.admin_key,
        &json!({"gateway_ids": [id, other], "canary": 1, "wait_ready_seconds": 120}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let op = res.json()["operation"]["id"].as_str().unwrap().to_owned();
    let refused = wait_operation(&d, &op, Duration::from_secs(120));
    assert_eq!(refused["state"], "failed", "{refused:#}");
    let canary = &refused["gateways"][0];
    assert_eq!(canary["version_before"], gw.version.as_str());
    let detail = canary["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("the gateway did not start the update: skipped ("),
        "the real gateway's refusal, with its reason: {detail}"
    );
    assert_eq!(refused["gateways"][1]["step"], "skipped", "{refused:#}");
    assert_eq!(
        fake.counters()
            .update_runs
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "nothing after a failed canary"
    );
    let g = wait_gateway(&d, id, "still online as the same process", online);
    assert_eq!(
        g["connection"]["boot_id"], after,
        "the refusal restarted nothing"
    );
    assert_eq!(g["cordoned"], true, "left for the operator: {g:#}");
}

/// The runbook's drain recipe (docs/operations.md, *Operating a fleet*, **Drain**), step for step, against a real
/// 2026.9.6 whose agent run streams for ten minutes (the fake model's `SLOW`): the drain waits
/// on the run and names it; killing the session meanwhile is refused by the gateway (it runs
/// only its suspension's methods while one is held — the reason the old recipe could not
/// work); "abort the runs" releases the suspension, aborts the run, suspends again, and the
/// drain is done; resume and uncordon bring the gateway back.
#[test]
fn the_readme_drain_recipe_drains_a_real_gateway_held_by_a_long_run() {
    let install = PathBuf::from(std::env::var("GS_OPENCLAW_DIR").expect(
        "GS_OPENCLAW_DIR must point at the openclaw install (run scripts/test.sh, or e2e/openclaw/install.sh)",
    ));
    let model = gs_test_support::fake_model::FakeModel::start();
    let mut gw = RealGateway::new(&install, free_gateway_port(), "drain-token-1", None);
    gw.use_model(&model.base_url());
    gw.start();
    gw.wait_ready();
    let d = Daemon::start_with(&[
        ("GATEWAY_SUPERVISOR__GATEWAYS__HEARTBEAT_INTERVAL", "1s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__BACKOFF_MAX", "2s"),
        ("GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE", "0"),
    ]);
    let id = add(&d, "real", "127.0.0.1", gw.port, "drain-token-1");
    wait_gateway(&d, id, "online", online);

    // 1. A run that takes ten minutes.
    let res = d.call(
        "POST",
        "/api/spawn",
        &d.admin_key,
        &json!({"agent": "main", "task": "SLOW work", "gateway_id": id}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let spawn_id = res.json()["spawn_id"].as_str().unwrap().to_owned();
    wait_for("the run going", DEADLINE, || {
        let s = d
            .get(&format!("/api/spawn/{spawn_id}"), &d.admin_key)
            .json();
        if s["status"] == "running" {
            Ok(())
        } else {
            Err(format!("{s:#}"))
        }
    });

    // 2. The drain waits on it, and names it.
    let res = d.send(
        daemon::Request::new(
            "POST",
            &format!("/api/gateways/{id}/drain?timeout_seconds=600&on_timeout=abort_runs"),
        )
        .key(&d.admin_key),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let op = res.json()["operation"]["id"].as_str().unwrap().to_owned();
    let held = wait_for("the drain waiting on the run, naming it", DEADLINE, || {
        let o = d.get(&format!("/api/operations/{op}"), &d.admin_key).json()["operation"].clone();
        let p = &o["gateways"][0];
        let waiting = p["step"] == "draining"
            && p["detail"]
                .as_str()
                .is_some_and(|s| s.starts_with("waiting for"));
        if waiting && p["blocking_runs"].as_array().is_some_and(|r| !r.is_empty()) {
            Ok(p.clone())
        } else {
            Err(format!("{o:#}"))
        }
    });
    let session = held["blocking_runs"][0]["session_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        ["chat-run", "embedded-run"]
            .iter()
            .any(|k| held["detail"].as_str().unwrap().contains(k)),
        "the gateway's own blockers: {held:#}"
    );

    // 3. Killing the session while the gateway is suspended: the gateway refuses, and the
    // daemon says which drain holds it and how to abort its runs.
    let res = d.call(
        "POST",
        &format!("/api/sessions/{session}/control?gateway_id={id}"),
        &d.admin_key,
        &json!({"action": "kill"}),
    );
    assert_eq!(res.status, 409, "{}", res.text());
    assert_eq!(res.json()["error"], "gateway_busy", "{}", res.text());
    assert!(
        res.text()
            .contains(&format!("POST /api/operations/{op}/abort-runs")),
        "{}",
        res.text()
    );

    // 4. Abort the runs that hold the drain: done in the order the gateway accepts.
    let res = d.send(
        daemon::Request::new("POST", &format!("/api/operations/{op}/abort-runs")).key(&d.admin_key),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let done = wait_operation(&d, &op, Duration::from_secs(120));
    assert_eq!(done["state"], "succeeded", "{done:#}");
    let p = &done["gateways"][0];
    assert!(p["runs_aborted_at"].is_i64(), "{p:#}");
    let spawn = d
        .get(&format!("/api/spawn/{spawn_id}"), &d.admin_key)
        .json();
    assert_ne!(spawn["status"], "running", "the run is over: {spawn:#}");
    // Aborted by the action, not ended on its own: the audit names it among the aborted.
    let audit = d.get("/api/audit?limit=50", &d.admin_key).json();
    let entry = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "gateway.abort_runs")
        .cloned()
        .unwrap_or_else(|| panic!("no gateway.abort_runs in {audit:#}"));
    let details: Value = serde_json::from_str(entry["details"].as_str().unwrap()).unwrap();
    assert_eq!(details["aborted"], json!([session]), "{details:#}");
    // The gateway's own word on its suspension (its `gateway.suspension` events).
    wait_gateway(&d, id, "the gateway reporting itself suspended", |g| {
        g["connection"]["suspension"] == "prepared"
    });

    // 5. Back in service.
    drained_then_back(&d, id);
    wait_gateway(&d, id, "the gateway accepting again", |g| {
        g["connection"]["suspension"] == "accepting"
    });

    // The real gateway takes this daemon as an approval client (`caps: ["approvals"]`).
    let res = d.call(
        "PUT",
        &format!("/api/gateways/{id}"),
        &d.admin_key,
        &json!({"approvals": true}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    wait_gateway(&d, id, "online as an approval client", |g| {
        online(g) && g["connection"]["approval_client"] == true
    });
    let g = wait_gateway(&d, id, "online and in service", online);
    assert_eq!(g["cordoned"], false, "{g:#}");
    gw.stop();
}
