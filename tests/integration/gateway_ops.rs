//! Gateway operations: suspend, resume and restart through the gateway, and a busy refusal.

use serde_json::json;

use crate::support::fleet::{add, fake, link_daemon, wait_gateway};
use crate::support::{Request, online};

#[test]
fn suspend_resume_restart_and_a_busy_refusal() {
    let f = fake(|_| {});
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    let operator = d.create_key("operator", "op");
    let post = |path: &str, key: &str| d.send(Request::new("POST", path).key(key));
    assert_eq!(
        post(&format!("/api/gateways/{id}/suspend"), &operator).status,
        403,
        "admin only"
    );
    let res = post(&format!("/api/gateways/{id}/suspend"), &d.admin_key);
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(f.suspended());
    let res = post(&format!("/api/gateways/{id}/resume"), &d.admin_key);
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(!f.suspended());
    assert_eq!(
        post(&format!("/api/gateways/{id}/resume"), &d.admin_key).status,
        409,
        "nothing to resume"
    );
    // Busy with a run: the gateway refuses and says why.
    let spawn = d.call(
        "POST",
        "/api/spawn",
        &d.admin_key,
        &json!({"agent": "main", "task": "SLOW"}),
    );
    assert_eq!(spawn.status, 202);
    let res = post(&format!("/api/gateways/{id}/suspend"), &d.admin_key);
    assert_eq!(res.status, 409, "{}", res.text());
    let body = res.json();
    assert_eq!(body["error"], "gateway_busy");
    assert_eq!(body["details"]["reason"], "active-work");
    assert!(body["details"]["activeCount"].as_u64().unwrap() >= 1);
    let res = post(&format!("/api/gateways/{id}/restart"), &d.admin_key);
    assert_eq!(res.status, 200, "{}", res.text());
    // As 2026.9.6's safe restart: deferred until the work is done, and it says why.
    let restart = &res.json()["restart"];
    assert_eq!(restart["status"], "deferred", "{restart:#}");
    assert_eq!(
        restart["preflight"]["summary"],
        "restart deferred: 1 active embedded run(s)"
    );
    assert_eq!(post("/api/gateways/999/restart", &d.admin_key).status, 404);
}

/// Disruptive actions leave a trace: each is an audit row naming the key that did it.
#[test]
fn spawns_kills_and_gateway_operations_are_audited_with_their_key() {
    let f = fake(|_| {});
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    let operator = d.create_key("operator", "ops-bot");
    let spawn = d.call(
        "POST",
        "/api/spawn",
        &operator,
        &json!({"agent": "main", "task": "hi"}),
    );
    assert_eq!(spawn.status, 202, "{}", spawn.text());
    let spawn_id = spawn.json()["spawn_id"].as_str().unwrap().to_owned();
    let session =
        crate::support::wait_until("a session", std::time::Duration::from_secs(20), || {
            crate::support::sessions(&d, "")
                .first()
                .and_then(|s| s["key"].as_str().map(str::to_owned))
        });
    let kill = crate::support::control(&d, &session, "kill");
    assert_eq!(kill.status, 200, "{}", kill.text());
    for op in ["suspend", "resume", "restart"] {
        let res =
            d.send(Request::new("POST", &format!("/api/gateways/{id}/{op}")).key(&d.admin_key));
        assert_eq!(res.status, 200, "{op}: {}", res.text());
    }
    let audit = d.get("/api/audit?limit=100", &d.admin_key).json();
    let row = |action: &str| {
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["action"] == action)
            .unwrap_or_else(|| panic!("no {action} row: {audit}"))
            .clone()
    };
    let spawned = row("spawn.create");
    assert_eq!(spawned["target_id"], spawn_id.as_str());
    assert!(
        spawned["actor"].as_str().unwrap().contains("ops-bot"),
        "{spawned}"
    );
    assert!(spawned["api_key_id"].is_i64());
    assert_eq!(row("session.control")["target_id"], session.as_str());
    for action in ["gateway.suspend", "gateway.resume", "gateway.restart"] {
        let r = row(action);
        assert_eq!(r["target_id"], id.to_string(), "{r}");
        assert!(r["api_key_id"].is_i64(), "{r}");
    }
}

/// A suspension is the gateway's stored state: shown, counted, kept from spawns and from the
/// primary role, and still resumable after the daemon restarts; a second suspend does not
/// orphan the first.
#[test]
fn a_suspension_survives_a_daemon_restart_and_keeps_spawns_away() {
    let f = fake(|_| {});
    let mut d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    let post = |d: &crate::support::Daemon, op: &str| {
        d.send(Request::new("POST", &format!("/api/gateways/{id}/{op}")).key(&d.admin_key))
    };
    assert_eq!(post(&d, "suspend").status, 200);
    wait_gateway(&d, id, "suspended", |g| g["suspended"] == true);
    let again = post(&d, "suspend");
    assert_eq!(again.status, 409, "{}", again.text());
    assert!(
        again.text().contains("already suspended"),
        "{}",
        again.text()
    );
    assert!(
        d.get("/metrics", "")
            .text()
            .contains("gateway_supervisor_gateways_suspended 1"),
        "counted"
    );
    let spawn = d.call(
        "POST",
        "/api/spawn",
        &d.admin_key,
        &json!({"agent": "main", "task": "t"}),
    );
    assert_eq!(
        spawn.status,
        503,
        "a suspended gateway takes no spawns: {}",
        spawn.text()
    );

    d.restart();
    let g = wait_gateway(&d, id, "online and still suspended", |g| {
        online(g) && g["suspended"] == true
    });
    assert_eq!(g["suspended"], true);
    let res = post(&d, "resume");
    assert_eq!(res.status, 200, "resumable after a restart: {}", res.text());
    assert!(!f.suspended());
    wait_gateway(&d, id, "resumed", |g| g["suspended"] == false);
    let spawn = d.call(
        "POST",
        "/api/spawn",
        &d.admin_key,
        &json!({"agent": "main", "task": "t"}),
    );
    assert_eq!(spawn.status, 202, "takes spawns again: {}", spawn.text());
    let actions = crate::support::fleet::audit_actions(&d);
    assert!(
        ["gateway.suspend", "gateway.resume"]
            .iter()
            .all(|a| actions.iter().any(|x| x == a)),
        "{actions:?}"
    );
}

/// A destructive action goes only to the gateway process it was decided on (#143073 acted on a
/// container it had not verified): the caller names the process it saw (`connection.boot_id`),
/// and after the gateway restarted the action is refused with nothing sent.
#[test]
fn restart_and_kill_reach_only_the_process_the_caller_saw() {
    use std::sync::atomic::Ordering::Relaxed;
    let f = fake(|c| c.sessions = 1);
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    let first = f.boot_id();
    let g = wait_gateway(&d, id, "online with its process", |g| {
        online(g) && g["connection"]["boot_id"] == first.as_str()
    });
    assert_eq!(g["connection"]["boot_id"], first.as_str());
    let restart = |boot: &str| {
        d.send(
            Request::new(
                "POST",
                &format!("/api/gateways/{id}/restart?expected_boot_id={boot}"),
            )
            .key(&d.admin_key),
        )
    };
    // The gateway restarts (a new process) between what the caller saw and its action.
    f.restart(std::time::Duration::from_millis(200));
    let second = f.boot_id();
    assert_ne!(first, second);
    wait_gateway(&d, id, "back as another process", |g| {
        online(g) && g["connection"]["boot_id"] == second.as_str()
    });
    let res = restart(&first);
    assert_eq!(res.status, 409, "{}", res.text());
    let body = res.json();
    assert_eq!(body["error"], "gateway_changed");
    assert_eq!(
        (
            body["details"]["expected_boot_id"].as_str(),
            body["details"]["boot_id"].as_str()
        ),
        (Some(first.as_str()), Some(second.as_str()))
    );
    assert_eq!(
        f.counters().restart_requests.load(Relaxed),
        0,
        "nothing sent"
    );
    let kill = d.call(
        "POST",
        &format!("/api/sessions/agent:main:s0/control?expected_boot_id={first}"),
        &d.admin_key,
        &json!({"action": "kill"}),
    );
    assert_eq!(kill.status, 409, "{}", kill.text());
    assert_eq!(kill.json()["error"], "gateway_changed");
    assert_eq!(f.counters().aborts.load(Relaxed), 0, "nothing sent");
    // The process the caller sees now: carried out.
    let res = restart(&second);
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(f.counters().restart_requests.load(Relaxed), 1);
    // A condition that is not a bootId is a bad request, not a refusal by the gateway.
    assert_eq!(restart("two%20words").status, 400);
}

/// A release that does not name its process (2026.2.25 sends no bootId) cannot be held to a
/// condition: asked with one, the action is refused and says why; without, it goes ahead.
#[test]
fn a_release_without_boot_ids_refuses_a_process_condition_in_plain_words() {
    let f = fake(|c| {
        *c = fake_gateway::FakeConfig {
            token: c.token.take(),
            ping_interval: None,
            ..fake_gateway::FakeConfig::imitating(fake_gateway::Release::R2026_2_25)
        }
    });
    let d = link_daemon(&[]);
    let id = add(&d, "old", &f, Some("fake-token"));
    let g = wait_gateway(&d, id, "online", online);
    assert!(g["connection"]["boot_id"].is_null(), "{g:#}");
    let res = d.send(
        Request::new(
            "POST",
            &format!("/api/gateways/{id}/restart?expected_boot_id=22fc61c4"),
        )
        .key(&d.admin_key),
    );
    assert_eq!(res.status, 409, "{}", res.text());
    let body = res.json();
    assert_eq!(body["error"], "unsupported_action");
    assert!(
        body["message"].as_str().unwrap().contains("no bootId"),
        "{body}"
    );
    let res =
        d.send(Request::new("POST", &format!("/api/gateways/{id}/restart")).key(&d.admin_key));
    assert_eq!(res.status, 200, "{}", res.text());
}

/// A gateway that comes back as another process (a restart nobody asked the daemon for) or
/// another release (an upgrade by hand) is announced, with both sides; its build is shown.
#[test]
fn a_gateway_back_as_another_process_or_release_is_announced() {
    use crate::support::sse::Sse;
    let f = fake(|_| {});
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    let first = f.boot_id();
    let g = wait_gateway(&d, id, "online with its process", |g| {
        online(g) && g["connection"]["boot_id"] == first.as_str()
    });
    assert_eq!(g["connection"]["build_id"], "2026.9.6-fake");
    let mut events = Sse::open(d.addr, &d.admin_key, None, "?types=gateway.changed");
    f.restart(std::time::Duration::from_millis(200));
    let second = f.boot_id();
    let e = events.until(std::time::Duration::from_secs(20), |e| {
        e.data["payload"]["action"] == "restarted"
    });
    assert_eq!(e.data["gateway_id"], id, "{:?}", e.data);
    assert_eq!(
        (
            e.data["payload"]["previous_boot_id"].as_str(),
            e.data["payload"]["boot_id"].as_str()
        ),
        (Some(first.as_str()), Some(second.as_str()))
    );
    f.update_config(|c| c.version = "2026.9.7".into());
    f.restart(std::time::Duration::from_millis(200));
    let e = events.until(std::time::Duration::from_secs(20), |e| {
        e.data["payload"]["action"] == "version_changed"
    });
    assert_eq!(
        (
            e.data["payload"]["from"].as_str(),
            e.data["payload"]["to"].as_str()
        ),
        (Some("2026.9.6"), Some("2026.9.7"))
    );
}
