//! Sessions across the fleet: the merged list and session control on each kind of gateway.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use serde_json::json;

use crate::support::fleet::{add, fake, link_daemon};
use crate::support::{control, sessions, wait_until};

const DEADLINE: Duration = Duration::from_secs(20);

#[test]
fn sessions_are_merged_from_every_connected_gateway() {
    let a = fake(|c| {
        c.sessions = 3;
        c.agents = vec!["researcher".into()];
    });
    let b = fake(|c| {
        c.sessions = 2;
        c.agents = vec!["writer".into()];
    });
    let d = link_daemon(&[]);
    let a_id = add(&d, "a", &a, Some("fake-token"));
    let b_id = add(&d, "b", &b, Some("fake-token"));
    let all = wait_until("5 sessions", DEADLINE, || {
        Some(sessions(&d, "")).filter(|s| s.len() == 5)
    });
    for s in &all {
        for field in [
            "key",
            "agent",
            "model",
            "status",
            "totalTokens",
            "updatedAt",
            "gateway_id",
        ] {
            assert!(s.get(field).is_some(), "{field} missing: {s}");
        }
        assert_eq!(s["status"], "active");
    }
    let researcher = sessions(&d, "?agent=researcher");
    assert_eq!(researcher.len(), 3);
    assert!(
        researcher
            .iter()
            .all(|s| s["gateway_id"] == a_id && s["agent"] == "researcher")
    );
    assert_eq!(sessions(&d, &format!("?gateway_id={b_id}")).len(), 2);
    assert_eq!(sessions(&d, "?limit=2").len(), 2);
    assert_eq!(d.get("/api/sessions?limit=0", &d.admin_key).status, 400);
    // A gateway that goes away takes its sessions out of the list.
    b.stop();
    wait_until("b's sessions gone", DEADLINE, || {
        (sessions(&d, "").len() == 3).then_some(())
    });
}

#[test]
fn session_control_on_a_seed_protocol_gateway() {
    let f = fake(|c| {
        c.sessions = 2;
        c.seed_protocol = true;
    });
    let d = link_daemon(&[]);
    add(&d, "seed", &f, Some("fake-token"));
    let key = wait_until("sessions", DEADLINE, || {
        sessions(&d, "")
            .first()
            .map(|s| s["key"].as_str().unwrap().to_owned())
    });
    let status_of = |want: &str| {
        wait_until(&format!("session {want}"), DEADLINE, || {
            sessions(&d, "")
                .iter()
                .any(|s| s["key"] == key.as_str() && s["status"] == want)
                .then_some(())
        })
    };
    let res = control(&d, &key, "pause");
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["method"], "control");
    status_of("paused");
    assert_eq!(control(&d, &key, "resume").status, 200);
    status_of("active");
    assert_eq!(control(&d, &key, "kill").status, 200);
    status_of("completed");
    assert!(
        f.sessions()
            .iter()
            .any(|(k, s)| *k == key && s == "completed"),
        "the gateway really changed it"
    );
}

#[test]
fn pause_without_per_session_control_is_409_and_kill_uses_sessions_abort() {
    let f = fake(|c| c.sessions = 1);
    let d = link_daemon(&[]);
    let id = add(&d, "plain", &f, Some("fake-token"));
    let key = wait_until("a session", DEADLINE, || {
        sessions(&d, "")
            .first()
            .map(|s| s["key"].as_str().unwrap().to_owned())
    });
    let res = control(&d, &key, "pause");
    assert_eq!(res.status, 409, "{}", res.text());
    let body = res.json();
    assert_eq!(body["error"], "unsupported_action");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("plain") && message.contains("2026.9.6") && message.contains("suspend"),
        "{message}"
    );
    assert_eq!(body["details"]["gateway_id"], id);
    let res = control(&d, &key, "kill");
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["method"], "sessions.abort");
    assert_eq!(res.json()["result"]["status"], "no-active-run");

    let res = d.call(
        "POST",
        "/api/sessions/agent:nobody:x/control",
        &d.admin_key,
        &json!({"action": "kill"}),
    );
    assert_eq!(
        (res.status, res.json()["error"].as_str()),
        (404, Some("session_not_found"))
    );
    let res = control(&d, &key, "explode");
    assert_eq!(res.status, 400);
    assert_eq!(res.json()["details"]["field"], "action");
    let viewer = d.create_key("viewer", "v");
    let res = d.call(
        "POST",
        &format!("/api/sessions/{key}/control"),
        &viewer,
        &json!({"action": "kill"}),
    );
    assert_eq!(res.status, 403);
}

#[test]
fn session_control_is_limited_per_session() {
    let f = fake(|c| c.sessions = 2);
    let d = link_daemon(&[(
        "GATEWAY_SUPERVISOR__LIMITS__SESSION_CONTROL_PER_MINUTE",
        "10",
    )]);
    add(&d, "gw", &f, Some("fake-token"));
    let keys: Vec<String> = wait_until("two sessions", DEADLINE, || {
        let s = sessions(&d, "");
        (s.len() == 2).then(|| {
            s.iter()
                .map(|x| x["key"].as_str().unwrap().to_owned())
                .collect()
        })
    });
    for _ in 0..10 {
        let res = d.call(
            "POST",
            &format!("/api/sessions/{}/control", keys[0]),
            &d.admin_key,
            &json!({"action": "kill"}),
        );
        assert_eq!(res.status, 200, "{}", res.text());
    }
    let res = d.call(
        "POST",
        &format!("/api/sessions/{}/control", keys[0]),
        &d.admin_key,
        &json!({"action": "kill"}),
    );
    assert_eq!(res.status, 429);
    assert!(res.header("retry-after").is_some());
    let res = d.call(
        "POST",
        &format!("/api/sessions/{}/control", keys[1]),
        &d.admin_key,
        &json!({"action": "kill"}),
    );
    assert_eq!(res.status, 200, "another session has its own budget");
}

/// A listing cut at `limit` says so: `total` counts every match, `truncated` tells the client
/// there is more than it got.
#[test]
fn a_truncated_listing_says_how_many_matched() {
    let f = fake(|c| c.sessions = 60);
    let d = link_daemon(&[]);
    add(&d, "gw", &f, Some("fake-token"));
    let page = wait_until("60 sessions cached", DEADLINE, || {
        let page = d.get("/api/sessions", &d.admin_key).json();
        (page["total"] == 60).then_some(page)
    });
    assert_eq!(
        page["sessions"].as_array().unwrap().len(),
        50,
        "the default limit"
    );
    assert_eq!(page["truncated"], true);
    let all = d.get("/api/sessions?limit=100", &d.admin_key).json();
    assert_eq!(all["sessions"].as_array().unwrap().len(), 60);
    assert_eq!(
        (all["total"].as_u64(), all["truncated"].as_bool()),
        (Some(60), Some(false))
    );
    let none = d.get("/api/sessions?agent=nobody", &d.admin_key).json();
    assert_eq!(
        (none["total"].as_u64(), none["truncated"].as_bool()),
        (Some(0), Some(false))
    );
}

/// Real gateways all have `agent:main:main`: a session is (gateway, key). A key on two gateways
/// without `?gateway_id=` is a 409 naming both, never a guess; with it, the action runs on that
/// gateway only.
#[test]
fn a_key_on_two_gateways_is_controlled_only_with_its_gateway_named() {
    let a = fake(|c| c.sessions = 1);
    let b = fake(|c| c.sessions = 1);
    let d = link_daemon(&[]);
    let a_id = add(&d, "a", &a, Some("fake-token"));
    let b_id = add(&d, "b", &b, Some("fake-token"));
    let key = "agent:main:s0";
    wait_until("the key on both gateways", DEADLINE, || {
        (sessions(&d, "").iter().filter(|s| s["key"] == key).count() == 2).then_some(())
    });
    let kill = json!({"action": "kill"});
    let res = d.call(
        "POST",
        &format!("/api/sessions/{key}/control"),
        &d.admin_key,
        &kill,
    );
    assert_eq!(res.status, 409, "{}", res.text());
    let body = res.json();
    assert_eq!(body["error"], "ambiguous_session");
    let candidates: Vec<i64> = body["details"]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["gateway_id"].as_i64().unwrap())
        .collect();
    assert_eq!(candidates, [a_id, b_id]);
    let aborts = |f: &fake_gateway::FakeGateway| f.counters().aborts.load(Relaxed);
    let (a_aborts, b_aborts) = (aborts(&a), aborts(&b));
    let res = d.call(
        "POST",
        &format!("/api/sessions/{key}/control?gateway_id={b_id}"),
        &d.admin_key,
        &kill,
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["gateway_id"], b_id);
    assert_eq!((aborts(&a), aborts(&b)), (a_aborts, b_aborts + 1));
    // Unknown query parameters are errors, not ignored.
    let res = d.call(
        "POST",
        &format!("/api/sessions/{key}/control?gateway=2"),
        &d.admin_key,
        &kill,
    );
    assert_eq!(res.status, 400, "{}", res.text());
}

/// A run that starts just before its gateway is suspended: the session list its start asked for
/// is refused (a held suspension answers only its own methods). The list is asked again, so
/// the run is listed and controllable once the suspension ends — before, it stayed unlisted
/// for good and killing it by its key answered `session_not_found`.
#[test]
fn a_run_started_just_before_a_suspension_is_listed_and_controllable_after_it() {
    let f = fake(|_| {});
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    crate::support::fleet::wait_gateway(&d, id, "online", crate::support::online);
    let key = crate::support::fleet::start_run(&d, id, &f, "SLOW");
    // Suspended by another client before the daemon's list of the new run (it waits 500 ms
    // to coalesce the burst of `sessions.changed` a run's start sends).
    f.hold_suspension();
    wait_until("the session list refused", DEADLINE, || {
        f.refused_while_suspended()
            .iter()
            .any(|m| m == "sessions.list")
            .then_some(())
    });
    assert!(
        !sessions(&d, "").iter().any(|s| s["key"] == key.as_str()),
        "not listed while the gateway refuses to list"
    );
    // Its spawn is still running: the gateway refused the wait for it for now, not the run.
    let spawns = d.get("/api/spawn", &d.admin_key).json();
    assert_eq!(spawns["spawns"][0]["status"], "running", "{spawns:#}");
    // Named with its gateway, the spawn's session is still controllable: the gateway's own
    // refusal comes back, not `session_not_found`.
    let res = gs_test_support::daemon::control_on(&d, id, &key, "kill");
    assert!(
        res.text().contains("unavailable during gateway suspension"),
        "{} {}",
        res.status,
        res.text()
    );
    f.release_suspension();
    crate::support::wait_session_listed(&d, &key, DEADLINE);
    let res = control(&d, &key, "kill");
    assert_eq!(res.status, 200, "{}", res.text());
    let spawn = wait_until("the spawn's end recorded", DEADLINE, || {
        let s = d.get("/api/spawn", &d.admin_key).json()["spawns"][0].clone();
        (s["status"] != "running").then_some(s)
    });
    assert_eq!(spawn["status"], "aborted", "{spawn:#}");
}
