//! Spawns: selection, both forms, idempotency, tracking to a final status, kill.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fleet::{add, fake, link_daemon, wait_gateway};
use crate::support::{
    Daemon, Request, control, online, spawn_finished, wait_session_listed, wait_session_where,
    wait_until,
};

const DEADLINE: Duration = Duration::from_secs(20);

fn spawn(d: &Daemon, body: Value, idempotency_key: Option<&str>) -> crate::support::Response {
    let mut req = Request::new("POST", "/api/spawn")
        .key(&d.admin_key)
        .json(&body);
    if let Some(k) = idempotency_key {
        req = req.header("Idempotency-Key", k);
    }
    d.send(req)
}

fn finished(d: &Daemon, id: &str) -> Value {
    spawn_finished(d, id, DEADLINE)
}

#[test]
fn an_agent_run_is_tracked_to_ok_with_its_reply_and_never_started_twice() {
    let f = fake(|_| {});
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    let res = spawn(
        &d,
        json!({"agent": "main", "task": "say pong"}),
        Some("client-key-1"),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let s = res.json();
    assert_eq!(
        (
            s["gateway_id"].as_i64(),
            s["method"].as_str(),
            s["status"].as_str()
        ),
        (Some(id), Some("agent"), Some("running"))
    );
    assert!(s["run_id"].is_string() && s["session_key"].is_string());
    let spawn_id = s["spawn_id"].as_str().unwrap().to_owned();
    // The same Idempotency-Key: the same spawn, no second run.
    let again = spawn(
        &d,
        json!({"agent": "main", "task": "say pong"}),
        Some("client-key-1"),
    );
    assert_eq!(again.status, 202);
    assert_eq!(again.json()["spawn_id"], spawn_id.as_str());
    // The same key for another request is a client bug: 422 naming the first spawn.
    let other = spawn(
        &d,
        json!({"agent": "main", "task": "something else"}),
        Some("client-key-1"),
    );
    assert_eq!(other.status, 422, "{}", other.text());
    assert_eq!(other.json()["error"], "idempotency_key_reused");
    assert_eq!(other.json()["details"]["spawn_id"], spawn_id.as_str());
    let done = finished(&d, &spawn_id);
    assert_eq!(done["status"], "ok", "{done}");
    assert_eq!(done["result"]["reply"], "echo: say pong");
    assert!(done["finished_at"].as_i64().is_some());
    assert_eq!(f.runs_started(), 1);
    assert_eq!(d.get("/api/spawn/nope", &d.admin_key).status, 404);
    // Listed, newest first, filtered by status and gateway.
    let ok = d.get("/api/spawn?status=ok", &d.admin_key).json();
    assert_eq!(ok["spawns"][0]["spawn_id"], spawn_id.as_str(), "{ok}");
    assert_eq!(
        (ok["total"].as_i64(), ok["truncated"].as_bool()),
        (Some(1), Some(false))
    );
    let running = d.get("/api/spawn?status=running", &d.admin_key).json();
    assert_eq!(running["total"], 0, "{running}");
    let elsewhere = d
        .get(&format!("/api/spawn?gateway_id={}", id + 1), &d.admin_key)
        .json();
    assert_eq!(elsewhere["total"], 0, "{elsewhere}");
    let bad = d.get("/api/spawn?status=finished", &d.admin_key);
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert_eq!(d.get("/api/spawn?limit=0", &d.admin_key).status, 400);
    assert_eq!(d.get("/api/spawn?gateway_id=0", &d.admin_key).status, 400);
    // Counted for Prometheus: two requests answered (the first and its retry), one refused,
    // one run that ended ok.
    let metrics = d.get("/metrics", "").text();
    for needle in [
        r#"gateway_supervisor_spawns_total{outcome="ok"} 2"#,
        r#"gateway_supervisor_spawns_total{outcome="idempotency_key_reused"} 1"#,
        r#"gateway_supervisor_spawns_finished_total{status="ok"} 1"#,
    ] {
        assert!(metrics.contains(needle), "missing {needle}\n{metrics}");
    }
}

#[test]
fn selection_uses_the_explicit_gateway_then_the_acting_primary_then_the_least_loaded() {
    let a = fake(|c| c.sessions = 5);
    let b = fake(|c| c.sessions = 1);
    let c = fake(|c| c.sessions = 3);
    let d = link_daemon(&[]);
    let a_id = add(&d, "a", &a, Some("fake-token"));
    let b_id = add(&d, "b", &b, Some("fake-token"));
    let c_id = add(&d, "c", &c, Some("fake-token"));
    for id in [a_id, b_id, c_id] {
        wait_gateway(&d, id, "online", online);
    }
    let gw = |body: Value| {
        let res = spawn(&d, body, None);
        assert_eq!(res.status, 202, "{}", res.text());
        res.json()["gateway_id"].as_i64().unwrap()
    };
    assert_eq!(
        gw(json!({"agent": "main", "task": "t", "gateway_id": c_id})),
        c_id,
        "explicit"
    );
    assert_eq!(
        gw(json!({"agent": "main", "task": "t"})),
        a_id,
        "acting primary"
    );
    a.stop();
    wait_gateway(&d, b_id, "b acting", |g| g["acting_primary"] == true);
    assert_eq!(
        gw(json!({"agent": "main", "task": "t"})),
        b_id,
        "the new acting primary"
    );
    let res = spawn(
        &d,
        json!({"agent": "main", "task": "t", "gateway_id": a_id}),
        None,
    );
    assert_eq!(
        res.status,
        503,
        "an explicit unhealthy gateway is refused: {}",
        res.text()
    );
    let res = spawn(
        &d,
        json!({"agent": "main", "task": "t", "gateway_id": 999}),
        None,
    );
    assert_eq!(res.status, 404);
}

#[test]
fn no_healthy_gateway_is_503_with_the_reason() {
    let d = link_daemon(&[]);
    let res = spawn(&d, json!({"agent": "main", "task": "t"}), None);
    assert_eq!(res.status, 503);
    assert_eq!(res.json()["error"], "no_healthy_gateway");
    assert!(
        res.json()["message"]
            .as_str()
            .unwrap()
            .contains("no gateway is registered")
    );
    let f = fake(|_| {});
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    // The process form needs a gateway that offers the seed's `spawn`.
    let res = spawn(&d, json!({"command": "true"}), None);
    assert_eq!(res.status, 503);
    assert!(
        res.json()["message"].as_str().unwrap().contains("`spawn`"),
        "{}",
        res.text()
    );
    for (body, field) in [
        (json!({"agent": "main"}), "task"),
        (json!({"task": "t"}), "agent"),
        (
            json!({"agent": "main", "task": "t", "timeout_seconds": 5}),
            "timeout_seconds",
        ),
        (json!({"command": "true", "env": {"A": 1}}), "env"),
    ] {
        let res = spawn(&d, body, None);
        assert_eq!(res.status, 400, "{}", res.text());
        assert_eq!(res.json()["details"]["field"], field);
    }
}

#[test]
fn process_spawns_report_their_exit_code() {
    let f = fake(|c| c.seed_protocol = true);
    let d = link_daemon(&[]);
    let id = add(&d, "seed", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    let res = spawn(
        &d,
        json!({"command": "sh", "args": ["-c", "echo hi; exit 3"], "env": {"SECRET_THING": "do-not-store"}}),
        None,
    );
    assert_eq!(res.status, 202, "{}", res.text());
    assert_eq!(res.json()["method"], "spawn");
    let done = finished(&d, res.json()["spawn_id"].as_str().unwrap());
    assert_eq!(done["status"], "error");
    assert_eq!(done["result"]["exit_code"], 3);
    assert_eq!(done["result"]["stdout"], "hi\n");
    let res = spawn(&d, json!({"command": "true"}), None);
    let done = finished(&d, res.json()["spawn_id"].as_str().unwrap());
    assert_eq!(done["status"], "ok");
    assert!(
        !crate::support::contains(&d.database_bytes(), b"do-not-store"),
        "env values are not stored"
    );
}

#[test]
fn a_long_run_killed_through_session_control_reads_aborted() {
    let f = fake(|_| {});
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    let res = spawn(&d, json!({"agent": "main", "task": "SLOW work"}), None);
    assert_eq!(res.status, 202, "{}", res.text());
    let s = res.json();
    let key = s["session_key"].as_str().unwrap().to_owned();
    wait_session_listed(&d, &key, DEADLINE);
    let res = control(&d, &key, "kill");
    assert_eq!(res.status, 200, "{}", res.text());
    let done = finished(&d, s["spawn_id"].as_str().unwrap());
    assert_eq!(done["status"], "aborted", "{done}");
}

/// A run whose gateway is deleted mid-run can never be followed to its end: it is recorded as
/// over (its outcome unknown) and announced, instead of reading `running` forever.
/// A run that ends while nobody waits on it — the daemon's `agent.wait` never reached the
/// gateway (read by a gateway that is going away, or lost with a connection) — is `ok` once it
/// is followed again from the next link: the gateway answers `agent.wait` on an ended run at
/// once. The fake kept such a run unended for ever (a rolling restart in the cluster suite left
/// its spawn `running`).
#[test]
fn a_run_that_ended_while_nobody_waited_on_it_is_recorded_when_followed_again() {
    let f = fake(|_| {});
    f.update_faults(|x| x.unanswered = vec!["agent.wait".into()]);
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    let res = spawn(&d, json!({"agent": "main", "task": "say pong"}), None);
    assert_eq!(res.status, 202, "{}", res.text());
    let s = res.json();
    let (spawn_id, key) = (
        s["spawn_id"].as_str().unwrap(),
        s["session_key"].as_str().unwrap(),
    );
    // The run ends at the gateway (its lifecycle end reaches the session list) while the
    // daemon's wait for it is still unanswered.
    wait_session_where(&d, "the run over at the gateway", key, DEADLINE, |s| {
        s["running"] == false
    });
    assert_eq!(
        d.get(&format!("/api/spawn/{spawn_id}"), &d.admin_key)
            .json()["status"],
        "running"
    );
    // The connection goes (the wait with it); the next link follows the run again.
    f.clear_faults();
    f.close_all(1012, "service restart");
    let done = finished(&d, spawn_id);
    assert_eq!(done["status"], "ok", "{done}");
    assert_eq!(done["result"]["reply"], "echo: say pong", "{done}");
}

#[test]
fn a_run_whose_gateway_is_deleted_is_over_not_running_forever() {
    let (fa, fb) = (fake(|_| {}), fake(|_| {}));
    let d = link_daemon(&[]);
    let a = add(&d, "a", &fa, Some("fake-token"));
    let b = add(&d, "b", &fb, Some("fake-token"));
    wait_gateway(&d, a, "a online", online);
    wait_gateway(&d, b, "b online", online);
    let res = spawn(
        &d,
        json!({"agent": "main", "task": "SLOW: an hour", "gateway_id": b}),
        None,
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let id = res.json()["spawn_id"].as_str().unwrap().to_owned();
    let res = d.send(Request::new("DELETE", &format!("/api/gateways/{b}")).key(&d.admin_key));
    assert_eq!(res.status, 200, "{}", res.text());
    let done = wait_until("the spawn over", Duration::from_secs(20), || {
        let s = d.get(&format!("/api/spawn/{id}"), &d.admin_key).json();
        (s["status"] != "running").then_some(s)
    });
    assert_eq!(done["status"], "error", "{done}");
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .contains("gateway was deleted"),
        "{done}"
    );
    assert!(done["finished_at"].is_i64(), "{done}");
}

/// An `Idempotency-Key` is the API key's own: another key sending the same string starts its
/// own spawn (it got the admin's spawn back). And a retry right after a restart — before any
/// gateway is linked again — gets the acknowledged spawn, not 503.
#[test]
fn an_idempotency_key_is_its_api_keys_own_and_a_retry_after_a_restart_gets_its_spawn() {
    let f = fake(|_| {});
    let mut d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    let body = json!({"agent": "main", "task": "SLOW report"});
    let first = spawn(&d, body.clone(), Some("nightly-1"));
    assert_eq!(first.status, 202, "{}", first.text());
    let first_id = first.json()["spawn_id"].as_str().unwrap().to_owned();
    let operator = d.create_key("operator", "night-shift");
    let theirs = d.send(
        Request::new("POST", "/api/spawn")
            .key(&operator)
            .json(&body)
            .header("Idempotency-Key", "nightly-1"),
    );
    assert_eq!(theirs.status, 202, "{}", theirs.text());
    assert_ne!(
        theirs.json()["spawn_id"].as_str().unwrap(),
        first_id,
        "another key's spawn is not handed over"
    );
    assert_eq!(f.runs_started(), 2);
    d.restart();
    let again = spawn(&d, body, Some("nightly-1"));
    assert_eq!(again.status, 202, "{}", again.text());
    assert_eq!(again.json()["spawn_id"], first_id.as_str());
    assert_eq!(f.runs_started(), 2, "nothing new started");
}
