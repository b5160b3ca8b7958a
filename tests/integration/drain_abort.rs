//! A drain held by a long run, against fake gateways that hold a suspension as 2026.9.6 does
//! (they refuse `sessions.abort` while suspended, captured from a real 2026.9.6): the progress
//! names the run; "abort the runs" releases the suspension, aborts the run, suspends again and
//! the drain is done; a drain whose timeout policy is `abort_runs` does the same by itself;
//! another client's suspension is said to be another client's.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;

use crate::support::fleet::{
    add, fake, gateway, link_daemon, start_run, wait_gateway, wait_operation,
};
use crate::support::{Daemon, Request, online};

fn abort_runs(d: &Daemon, op: &str) -> gs_test_support::http::Response {
    d.send(Request::new("POST", &format!("/api/operations/{op}/abort-runs")).key(&d.admin_key))
}

/// A drain of one gateway held by a run started just before it: the daemon, the gateway, its
/// id, the run's session key, the drain's id and the drain as it names the run.
struct HeldDrain {
    d: Daemon,
    f: fake_gateway::FakeGateway,
    id: i64,
    key: String,
    op: String,
    held: Value,
}

fn held_drain() -> HeldDrain {
    let f = fake(|_| {});
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    let key = start_run(&d, id, &f, "SLOW");
    let op = d.drain(id, "?timeout_seconds=600");
    let held = wait_operation(&d, &op, "the run named in the progress", |o| {
        o["gateways"][0]["blocking_runs"][0]["session_key"] == key.as_str()
    });
    HeldDrain {
        d,
        f,
        id,
        key,
        op,
        held,
    }
}

#[test]
fn a_drain_names_the_run_that_holds_it_and_aborting_its_runs_lets_it_finish() {
    let HeldDrain {
        d,
        f,
        id,
        key,
        op,
        held,
    } = held_drain();
    let run = &held["gateways"][0]["blocking_runs"][0];
    assert!(
        run["spawn_id"].as_str().is_some_and(|s| !s.is_empty()),
        "the spawn that started it: {run}"
    );
    assert!(f.suspended());

    let res = abort_runs(&d, &op);
    assert_eq!(res.status, 202, "{}", res.text());
    let done = wait_operation(&d, &op, "the drain over", |o| o["state"] != "running");
    assert_eq!(done["state"], "succeeded", "{done:#}");
    let p = &done["gateways"][0];
    assert!(p["runs_aborted_at"].is_i64(), "{p:#}");
    assert!(
        p.get("blocking_runs").is_none(),
        "drained: nothing blocks {p:#}"
    );
    assert_eq!(
        f.counters().aborts.load(Ordering::Relaxed),
        1,
        "the run was aborted once"
    );
    assert!(
        !f.refused_while_suspended()
            .iter()
            .any(|m| m == "sessions.abort"),
        "never asked while the gateway refuses it: {:?}",
        f.refused_while_suspended()
    );
    assert!(f.suspended(), "suspended again, drained");
    let g = gateway(&d, id);
    assert_eq!(
        (g["cordoned"].as_bool(), g["suspended"].as_bool()),
        (Some(true), Some(true)),
        "{g:#}"
    );
    let audit = d
        .get("/api/audit?limit=50", &d.admin_key)
        .json()
        .to_string();
    assert!(
        audit.contains("operation.abort_runs")
            && audit.contains("gateway.abort_runs")
            && audit.contains(&key),
        "{audit}"
    );
    // Over: nothing left to abort.
    let again = abort_runs(&d, &op);
    assert_eq!(again.status, 409, "{}", again.text());
    assert_eq!(again.json()["error"], "operation_over");
}

#[test]
fn a_drain_whose_timeout_policy_is_abort_runs_aborts_them_at_the_timeout_and_is_done() {
    let f = fake(|_| {});
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    let key = start_run(&d, id, &f, "SLOW");
    let op = d.drain(id, "?timeout_seconds=1&on_timeout=abort_runs");
    let done = wait_operation(&d, &op, "the drain over", |o| o["state"] != "running");
    assert_eq!(done["state"], "succeeded", "{done:#}");
    assert_eq!(done["params"]["on_drain_timeout"], "abort_runs", "{done:#}");
    assert_eq!(f.counters().aborts.load(Ordering::Relaxed), 1);
    let sessions = d
        .get(&format!("/api/sessions?gateway_id={id}"), &d.admin_key)
        .json();
    let s = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key.as_str())
        .cloned()
        .unwrap_or(Value::Null);
    assert_ne!(s["running"], true, "the run is over: {sessions:#}");
}

#[test]
fn abort_runs_and_the_timeout_policy_are_checked() {
    let f = fake(|_| {});
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    let res = d.send(
        Request::new("POST", &format!("/api/gateways/{id}/drain?on_timeout=kill"))
            .key(&d.admin_key),
    );
    assert_eq!(res.status, 400, "{}", res.text());
    assert_eq!(
        res.json()["details"]["field"],
        "on_timeout",
        "{}",
        res.text()
    );
    assert!(res.text().contains("abort_runs"), "{}", res.text());
    assert_eq!(abort_runs(&d, "op_nope").status, 404);
    let operator = d.create_key("operator", "op");
    let res = d.send(Request::new("POST", "/api/operations/op_nope/abort-runs").key(&operator));
    assert_eq!(res.status, 403, "admin only: {}", res.text());
}

#[test]
fn another_client_s_suspension_is_said_to_be_another_client_s() {
    let f = fake(|_| {});
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    f.hold_suspension();
    // Shown as the gateway reports it, though not made here.
    let g = wait_gateway(&d, id, "the gateway's own suspension shown", |g| {
        g["connection"]["suspension"] == "prepared"
    });
    assert_eq!(g["suspended"], false, "not through this daemon: {g:#}");
    let res =
        d.send(Request::new("POST", &format!("/api/gateways/{id}/suspend")).key(&d.admin_key));
    assert_eq!(res.status, 409, "{}", res.text());
    let body = res.json();
    assert_eq!(body["error"], "gateway_busy");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("suspended by another client"),
        "{body:#}"
    );
    assert!(body["details"]["expires_at_ms"].is_i64(), "{body:#}");
    let op = d.drain(id, "?timeout_seconds=600");
    let over = wait_operation(&d, &op, "the drain over", |o| o["state"] != "running");
    assert_eq!(over["state"], "failed", "{over:#}");
    let detail = over["gateways"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("another suspension"), "{detail}");
    f.release_suspension();
    wait_gateway(&d, id, "accepting again", |g| {
        g["connection"]["suspension"] == "accepting"
    });
}

#[test]
fn a_run_holding_a_drain_is_listed_and_its_kill_names_the_drain_and_its_abort() {
    // Started just before the drain: the gateway's suspension refuses the sessions.list that
    // would have put it in the daemon's sessions.
    let HeldDrain {
        d,
        f: _gateway,
        id,
        key,
        op,
        ..
    } = held_drain();
    let listed = crate::support::wait_until("the run listed", Duration::from_secs(20), || {
        let sessions = d.get("/api/sessions", &d.admin_key).json();
        sessions["sessions"]
            .as_array()
            .and_then(|all| all.iter().find(|s| s["key"] == key.as_str()).cloned())
    });
    assert_eq!(listed["running"], true, "{listed}");
    assert_eq!(listed["gateway_id"], id, "{listed}");
    // A kill the suspended gateway would refuse: 409 naming the drain and how to abort its
    // runs, not the gateway's 502.
    let res = d.send(
        Request::new("POST", &format!("/api/sessions/{key}/control"))
            .key(&d.admin_key)
            .json(&serde_json::json!({"action": "kill"})),
    );
    assert_eq!(res.status, 409, "{}", res.text());
    let e = res.json();
    assert_eq!(e["error"], "gateway_busy", "{e}");
    assert_eq!(e["details"]["operation_id"], op.as_str(), "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains(&format!("POST /api/operations/{op}/abort-runs")),
        "{e}"
    );
    // As it says: the drain's abort-runs ends the run, and the drain is done.
    assert_eq!(abort_runs(&d, &op).status, 202);
    let done = wait_operation(&d, &op, "the drain over", |o| o["state"] != "running");
    assert_eq!(done["state"], "succeeded", "{done:#}");
}
