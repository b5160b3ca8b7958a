//! Fleet operations against fake gateways that drain and restart as 2026.9.6 does: a drain
//! that waits for the gateway's work, a drain that times out, a rolling restart of five
//! gateways, one that stops at the gateway that never comes back, one that survives a daemon
//! kill, and the request's refusals.

use std::sync::atomic::Ordering;
use std::time::Duration;

use fake_gateway::FakeGateway;
use serde_json::{Value, json};

use crate::support::fleet::{
    add, audit_actions, fake, fleet_of, gateway, link_daemon, start, start_run, steps_of,
    wait_gateway, wait_operation,
};
use crate::support::sse::Sse;

const DEADLINE: Duration = Duration::from_secs(40);
use crate::support::{Daemon, Request, online};

fn restarts(f: &FakeGateway) -> u64 {
    f.counters().restart_requests.load(Ordering::Relaxed)
}

#[test]
fn a_drain_waits_for_the_gateway_s_work_then_leaves_it_suspended_and_cordoned() {
    let f = fake(|c| c.run_duration = Duration::from_secs(3));
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    start_run(&d, id, &f, "work");
    let mut events = Sse::open(d.addr, &d.admin_key, None, "?types=operation.progress");
    let op = d.drain(id, "");
    // The gateway is held (no new work) while its run goes on; the blockers are reported.
    let waiting = events.until(DEADLINE, |e| {
        e.data["payload"]["gateway"]["detail"]
            .as_str()
            .is_some_and(|s| s.contains("waiting for 1 active: embedded-run"))
    });
    assert_eq!(waiting.data["gateway_id"], id);
    assert!(f.suspended(), "suspended with drain while the run goes on");
    assert_eq!(gateway(&d, id)["cordoned"], true);
    let refused = d.call(
        "POST",
        "/api/spawn",
        &d.admin_key,
        &json!({"agent": "main", "task": "x", "gateway_id": id}),
    );
    assert_eq!(
        refused.status,
        503,
        "a draining gateway takes no new spawn: {}",
        refused.text()
    );
    // The work ends by itself: the drain is done.
    let done = wait_operation(&d, &op, "the drain done", |o| o["state"] != "running");
    assert_eq!(done["state"], "succeeded", "{done:#}");
    assert_eq!(done["gateways"][0]["step"], "done");
    assert_eq!(done["kind"], "drain");
    let g = gateway(&d, id);
    assert_eq!(g["cordoned"], true, "{g:#}");
    assert_eq!(g["suspended"], true, "resumable through this daemon: {g:#}");
    // Brought back the usual way.
    d.back_in_service(id);
    assert!(!f.suspended());
    assert_eq!(restarts(&f), 0, "a drain restarts nothing");
}

#[test]
fn a_drain_past_its_timeout_fails_releases_the_gateway_and_keeps_the_cordon() {
    let f = fake(|_| {});
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    start_run(&d, id, &f, "SLOW");
    let op = d.drain(id, "?timeout_seconds=1");
    let over = wait_operation(&d, &op, "the drain over", |o| o["state"] != "running");
    assert_eq!(over["state"], "failed", "{over:#}");
    let detail = over["gateways"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("still busy after the drain timeout (1s)"),
        "{detail}"
    );
    assert!(detail.contains("embedded-run"), "{detail}");
    assert!(!f.suspended(), "the operation's suspension was released");
    let g = gateway(&d, id);
    assert_eq!(g["cordoned"], true, "left cordoned for the operator: {g:#}");
    assert_eq!(g["suspended"], false, "{g:#}");
    let audit = d
        .get("/api/audit?limit=50", &d.admin_key)
        .json()
        .to_string();
    assert!(
        audit.contains("operation.drain") && audit.contains("operation.failed"),
        "{audit}"
    );
}

#[test]
fn a_rolling_restart_restarts_each_gateway_once_as_a_new_process_and_uncordons_it() {
    let d = link_daemon(&[]);
    let (fakes, ids) = fleet_of(5, &d, |_, _| {});
    let before: Vec<String> = fakes.iter().map(FakeGateway::boot_id).collect();
    let op = start(
        &d,
        "/api/fleet/restart",
        &json!({"gateway_ids": ids, "wait_ready_seconds": 20}),
    );
    let done = wait_operation(&d, &op, "the rolling restart over", |o| {
        o["state"] != "running"
    });
    assert_eq!(done["state"], "succeeded", "{done:#}");
    for (i, (f, id)) in fakes.iter().zip(&ids).enumerate() {
        let p = &done["gateways"][i];
        assert_eq!(p["gateway_id"], *id);
        assert_eq!(p["step"], "done", "{p:#}");
        assert_eq!(restarts(f), 1, "gateway {id} restarted once");
        assert_eq!(p["boot_id_before"], before[i].as_str());
        assert_eq!(
            p["boot_id_after"],
            f.boot_id().as_str(),
            "the new process is recorded"
        );
        assert_ne!(before[i], f.boot_id());
        // Online as its link reports it (uncordoning once read the status back from the
        // database's last batched write and left it `degraded` for good).
        let g = wait_gateway(&d, *id, "back online", online);
        assert_eq!(g["cordoned"], false, "{g:#}");
        assert_eq!(g["connection"]["boot_id"], f.boot_id().as_str());
    }
    // One at a time (max_unavailable 1): each gateway started after the previous one ended.
    let gws = done["gateways"].as_array().unwrap();
    for pair in gws.windows(2) {
        assert!(
            pair[1]["started_at"].as_i64() >= pair[0]["finished_at"].as_i64(),
            "{pair:#?}"
        );
    }
}

#[test]
fn a_rolling_restart_stops_at_the_gateway_that_does_not_come_back_and_leaves_the_rest_untouched() {
    let d = link_daemon(&[]);
    // The third never comes back from its restart.
    let (fakes, ids) = fleet_of(5, &d, |i, c| {
        if i == 2 {
            c.restart_down = None;
        }
    });
    let op = start(
        &d,
        "/api/fleet/restart",
        &json!({"gateway_ids": ids, "wait_ready_seconds": 3}),
    );
    let over = wait_operation(&d, &op, "the rolling restart over", |o| {
        o["state"] != "running"
    });
    assert_eq!(over["state"], "failed", "{over:#}");
    let steps = steps_of(&over);
    assert_eq!(steps, ["done", "done", "failed", "skipped", "skipped"]);
    let failed = over["gateways"][2]["detail"].as_str().unwrap();
    assert!(
        failed.contains("did not come back healthy within 3s"),
        "{failed}"
    );
    assert_eq!(
        fakes.iter().map(restarts).collect::<Vec<_>>(),
        [1, 1, 1, 0, 0],
        "the gateways after the failed one were not touched"
    );
    assert_eq!(
        gateway(&d, ids[2])["cordoned"],
        true,
        "the failed gateway stays cordoned"
    );
    for id in &ids[3..] {
        assert_eq!(gateway(&d, *id)["cordoned"], false);
    }
    assert_eq!(
        over["gateways"][3]["detail"],
        format!("left untouched: gateway {} failed", ids[2])
    );
}

#[test]
fn an_operation_interrupted_by_a_daemon_kill_is_resumed_after_the_restart() {
    let mut d = link_daemon(&[]);
    let (fakes, ids) = fleet_of(2, &d, |i, c| {
        if i == 0 {
            c.run_duration = Duration::from_secs(8);
        }
    });
    start_run(&d, ids[0], &fakes[0], "work");
    let op = start(
        &d,
        "/api/fleet/restart",
        &json!({"gateway_ids": ids, "drain_timeout_seconds": 120}),
    );
    wait_operation(&d, &op, "the first gateway draining", |o| {
        o["gateways"][0]["step"] == "draining"
    });
    d.kill9();
    assert_eq!(
        fakes.iter().map(restarts).sum::<u64>(),
        0,
        "killed mid-drain"
    );
    d.launch();
    // The run ends after the restart: the same operation goes on from where it was.
    let done = wait_operation(&d, &op, "the rolling restart over", |o| {
        o["state"] != "running"
    });
    assert_eq!(done["state"], "succeeded", "{done:#}");
    assert_eq!(
        fakes.iter().map(restarts).collect::<Vec<_>>(),
        [1, 1],
        "each restarted once"
    );
    for (f, id) in fakes.iter().zip(&ids) {
        wait_gateway(&d, *id, "back and uncordoned", |g| {
            online(g)
                && g["cordoned"] == false
                && g["connection"]["boot_id"] == f.boot_id().as_str()
        });
    }
}

#[test]
fn a_cancelled_rolling_restart_lets_go_of_its_drain_and_starts_no_other_gateway() {
    let fakes: Vec<FakeGateway> = (0..3).map(|_| fake(|_| {})).collect();
    let d = link_daemon(&[]);
    let ids: Vec<i64> = fakes
        .iter()
        .enumerate()
        .map(|(i, f)| add(&d, &format!("gw{i}"), f, Some("fake-token")))
        .collect();
    for id in &ids {
        wait_gateway(&d, *id, "online", online);
    }
    // The first gateway's run holds its drain.
    start_run(&d, ids[0], &fakes[0], "SLOW");
    let op = start(
        &d,
        "/api/fleet/restart",
        &json!({"gateway_ids": ids, "drain_timeout_seconds": 600}),
    );
    wait_operation(&d, &op, "the first gateway draining", |o| {
        o["gateways"][0]["detail"]
            .as_str()
            .is_some_and(|s| s.contains("waiting for 1 active"))
    });
    assert!(fakes[0].suspended());
    let res =
        d.send(Request::new("POST", &format!("/api/operations/{op}/cancel")).key(&d.admin_key));
    assert_eq!(res.status, 202, "{}", res.text());
    assert_eq!(res.json()["operation"]["state"], "cancelling");
    let over = wait_operation(&d, &op, "the cancel carried out", |o| {
        o["state"] != "cancelling"
    });
    assert_eq!(over["state"], "cancelled", "{over:#}");
    let steps = steps_of(&over);
    assert_eq!(steps, ["skipped", "skipped", "skipped"]);
    // Back in service: the drain's suspension released, uncordoned; nothing restarted.
    assert!(!fakes[0].suspended());
    assert_eq!(gateway(&d, ids[0])["cordoned"], false);
    assert_eq!(fakes.iter().map(restarts).sum::<u64>(), 0);
    // Once over, there is nothing to cancel.
    let again =
        d.send(Request::new("POST", &format!("/api/operations/{op}/cancel")).key(&d.admin_key));
    assert_eq!(again.status, 409, "{}", again.text());
    assert_eq!(again.json()["error"], "operation_over");
    let missing = d.send(Request::new("POST", "/api/operations/op_nope/cancel").key(&d.admin_key));
    assert_eq!(missing.status, 404);
    assert!(audit_actions(&d).iter().any(|a| a == "operation.cancel"));
}

#[test]
fn a_fleet_update_hold_holds_each_pending_update_and_passes_over_releases_without_it() {
    let d = link_daemon(&[]);
    let pending = fake(|_| {});
    pending.schedule_update();
    let idle = fake(|_| {});
    let old = FakeGateway::start(fake_gateway::FakeConfig {
        ping_interval: None,
        ..fake_gateway::FakeConfig::imitating(fake_gateway::Release::R2026_3_31)
    })
    .unwrap();
    let ids = [
        add(&d, "pending", &pending, Some("fake-token")),
        add(&d, "idle", &idle, Some("fake-token")),
        add(&d, "old", &old, Some("fake-token")),
    ];
    for id in ids {
        wait_gateway(&d, id, "connected", |g| {
            g["connection"]["state"] == "connected"
        });
    }
    let op = start(
        &d,
        "/api/fleet/update-hold",
        &json!({"selector": {"all": true}}),
    );
    let over = wait_operation(&d, &op, "the hold over", |o| o["state"] != "running");
    assert_eq!(over["state"], "succeeded", "{over:#}");
    assert_eq!(over["kind"], "update_hold");
    let steps: Vec<(&str, &str)> = over["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["step"].as_str().unwrap(), g["detail"].as_str().unwrap()))
        .collect();
    assert_eq!(steps[0], ("done", "update held"));
    assert_eq!(steps[1].0, "done");
    assert!(steps[1].1.starts_with("nothing held"), "{}", steps[1].1);
    assert_eq!(steps[2].0, "skipped");
    assert!(
        steps[2].1.contains("2026.3.31 does not offer update.hold"),
        "{}",
        steps[2].1
    );
    assert!(pending.update_held());
    // Nothing was cordoned, drained or restarted.
    for id in ids {
        assert_eq!(gateway(&d, id)["cordoned"], false);
    }
    assert_eq!(restarts(&pending) + restarts(&idle) + restarts(&old), 0);
    let bad = d.call(
        "POST",
        "/api/fleet/update-hold",
        &d.admin_key,
        &json!({"gateway_ids": [ids[0], ids[0]]}),
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert_eq!(bad.json()["details"]["field"], "gateway_ids");
}

#[test]
fn a_release_that_names_no_process_is_not_restarted_blind() {
    let d = link_daemon(&[]);
    let f = FakeGateway::start(fake_gateway::FakeConfig {
        ping_interval: None,
        ..fake_gateway::FakeConfig::imitating(fake_gateway::Release::R2026_2_25)
    })
    .unwrap();
    let id = add(&d, "old", &f, Some("fake-token"));
    wait_gateway(&d, id, "connected", |g| {
        g["connection"]["state"] == "connected"
    });
    let op = start(
        &d,
        "/api/fleet/restart",
        &json!({"selector": {"all": true}}),
    );
    let over = wait_operation(&d, &op, "the rolling restart over", |o| {
        o["state"] != "running"
    });
    assert_eq!(over["state"], "failed");
    let detail = over["gateways"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("no bootId"), "{detail}");
    assert_eq!(restarts(&f), 0);
}

#[test]
fn operation_requests_are_checked() {
    let d = link_daemon(&[]);
    let (fakes, ids) = fleet_of(2, &d, |_, _| {});
    let operator = d.create_key("operator", "op");
    let post = |body: Value| d.call("POST", "/api/fleet/restart", &d.admin_key, &body);
    for (body, field) in [
        (json!({}), "gateway_ids"),
        (
            json!({"gateway_ids": ids, "selector": {"all": true}}),
            "gateway_ids",
        ),
        (json!({"gateway_ids": []}), "gateway_ids"),
        (json!({"gateway_ids": [ids[0], ids[0]]}), "gateway_ids"),
        (
            json!({"gateway_ids": ids, "max_unavailable": 0}),
            "max_unavailable",
        ),
        (
            json!({"gateway_ids": ids, "wait_ready_seconds": 0}),
            "wait_ready_seconds",
        ),
        (json!({"selector": {"all": false}}), "selector"),
    ] {
        let res = post(body.clone());
        assert_eq!(res.status, 400, "{body}: {}", res.text());
        assert_eq!(
            res.json()["details"]["field"],
            field,
            "{body}: {}",
            res.text()
        );
    }
    assert_eq!(post(json!({"gateway_ids": [ids[0], 999]})).status, 404);
    assert_eq!(
        d.call(
            "POST",
            "/api/fleet/restart",
            &operator,
            &json!({"gateway_ids": ids})
        )
        .status,
        403,
        "admin only"
    );
    // One operation per gateway at a time.
    start_run(&d, ids[1], &fakes[1], "SLOW");
    d.drain(ids[1], "");
    let res = post(json!({"gateway_ids": ids}));
    assert_eq!(res.status, 409, "{}", res.text());
    assert_eq!(res.json()["details"]["gateway_id"], ids[1]);
    assert_eq!(d.get("/api/operations/op_nope", &operator).status, 404);
    let list = d.get("/api/operations", &operator);
    assert_eq!(list.status, 200);
    assert_eq!(list.json()["operations"].as_array().unwrap().len(), 1);
    assert_eq!(d.get("/api/operations?limit=0", &operator).status, 400);
}

/// A daemon whose primary is registered first (the primary is never deleted), and `f` beside
/// it, online: its id.
fn online_beside_the_primary(f: &FakeGateway) -> (Daemon, i64) {
    let d = link_daemon(&[]);
    add(&d, "first", &fake(|_| {}), Some("fake-token"));
    let id = add(&d, "gw", f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    (d, id)
}

/// A drain holds its gateway: uncordoning it or deleting it meanwhile is refused (409 naming
/// the operation). Deleted mid-drain, the gateway kept the drain's suspension with nobody to
/// release it: every spawn to it failed while the daemon had forgotten it.
#[test]
fn a_gateway_a_drain_holds_can_be_neither_uncordoned_nor_deleted_until_it_ends() {
    let f = fake(|_| {});
    let (d, id) = online_beside_the_primary(&f);
    start_run(&d, id, &f, "SLOW");
    let op = d.drain(id, "?timeout_seconds=600");
    wait_operation(&d, &op, "the drain waiting on the run", |o| {
        o["gateways"][0]["detail"]
            .as_str()
            .is_some_and(|s| s.contains("waiting for 1 active"))
    });
    for (method, path) in [
        ("POST", format!("/api/gateways/{id}/uncordon")),
        ("DELETE", format!("/api/gateways/{id}")),
        ("DELETE", format!("/api/v1/gateways/{id}")),
    ] {
        let res = d.send(Request::new(method, &path).key(&d.admin_key));
        assert_eq!(res.status, 409, "{method} {path}: {}", res.text());
        let body = res.json();
        assert_eq!(body["error"], "gateway_busy");
        assert_eq!(body["details"]["operation_id"], op.as_str());
        assert!(body["message"].as_str().unwrap().contains(&op), "{body}");
    }
    assert_eq!(gateway(&d, id)["cordoned"], true);
    // Cancelled, the drain lets go; the gateway is the operator's again.
    let res =
        d.send(Request::new("POST", &format!("/api/operations/{op}/cancel")).key(&d.admin_key));
    assert_eq!(res.status, 202, "{}", res.text());
    wait_operation(&d, &op, "the cancel carried out", |o| {
        o["state"] == "cancelled"
    });
    assert!(!f.suspended());
    let res = d.send(Request::new("DELETE", &format!("/api/gateways/{id}")).key(&d.admin_key));
    assert_eq!(res.status, 200, "{}", res.text());
}

/// A gateway suspended through the daemon is not deleted from under its suspension: resume
/// first (nothing else could release it afterwards).
#[test]
fn a_gateway_suspended_through_the_daemon_is_resumed_before_it_is_deleted() {
    let f = fake(|_| {});
    let (d, id) = online_beside_the_primary(&f);
    let res =
        d.send(Request::new("POST", &format!("/api/gateways/{id}/suspend")).key(&d.admin_key));
    assert_eq!(res.status, 200, "{}", res.text());
    let res = d.send(Request::new("DELETE", &format!("/api/gateways/{id}")).key(&d.admin_key));
    assert_eq!(res.status, 409, "{}", res.text());
    assert!(res.text().contains("resume it first"), "{}", res.text());
    assert!(f.suspended());
    let res = d.send(Request::new("POST", &format!("/api/gateways/{id}/resume")).key(&d.admin_key));
    assert_eq!(res.status, 200, "{}", res.text());
    let res = d.send(Request::new("DELETE", &format!("/api/gateways/{id}")).key(&d.admin_key));
    assert_eq!(res.status, 200, "{}", res.text());
}
