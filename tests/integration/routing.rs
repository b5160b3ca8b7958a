//! Acting primary election with failover and failback, and live events over SSE and WebSocket.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::fleet::{add, fake, gateway, link_daemon, wait_gateway};
use crate::support::sse::Sse;
use crate::support::{Request, control, online, wait_until};

const DEADLINE: Duration = Duration::from_secs(20);

#[test]
fn failover_and_failback_are_events_metrics_and_audit_rows() {
    let a = fake(|_| {});
    let b = fake(|_| {});
    let d = link_daemon(&[]);
    let a_id = add(&d, "a", &a, Some("fake-token"));
    let b_id = add(&d, "b", &b, Some("fake-token"));
    wait_gateway(&d, a_id, "a online", online);
    wait_gateway(&d, b_id, "b online", online);
    assert_eq!(gateway(&d, a_id)["acting_primary"], true);
    assert_eq!(gateway(&d, b_id)["acting_primary"], false);
    let mut events = Sse::open(d.addr, &d.admin_key, None, "?types=gateway.primary");

    // The designated primary's socket closes: b takes over at once.
    a.stop();
    let e = events.until(DEADLINE, |e| e.data["type"] == "gateway.primary");
    assert_eq!(e.data["payload"]["acting_primary"], b_id);
    assert_eq!(e.data["payload"]["previous"], a_id);
    assert_eq!(e.data["payload"]["designated"], a_id);
    assert_eq!(e.data["payload"]["reason"], "designated_unavailable");
    assert_eq!(gateway(&d, b_id)["acting_primary"], true);
    assert_eq!(
        gateway(&d, a_id)["is_primary"],
        true,
        "the designation does not move"
    );

    // It recovers: failback.
    a.resume().unwrap();
    let e = events.until(DEADLINE, |e| e.data["type"] == "gateway.primary");
    assert_eq!(e.data["payload"]["acting_primary"], a_id);
    assert_eq!(e.data["payload"]["reason"], "designated");
    wait_gateway(&d, a_id, "a acting again", |g| g["acting_primary"] == true);

    let metrics = d.get("/metrics", "").text();
    let changes: f64 = metrics
        .lines()
        .find(|l| l.starts_with("gateway_supervisor_primary_changes_total "))
        .and_then(|l| l.split(' ').nth(1)?.parse().ok())
        .unwrap();
    assert!(changes >= 2.0, "{changes}");
    let audit = d.get("/api/audit?limit=50", &d.admin_key).json();
    let primary_rows = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "gateway.primary")
        .count();
    assert!(primary_rows >= 2, "{audit}");
}

#[test]
fn without_failback_the_stand_in_keeps_the_role() {
    let a = fake(|_| {});
    let b = fake(|_| {});
    let d = link_daemon(&[("GATEWAY_SUPERVISOR__ELECTION__FAILBACK", "false")]);
    let a_id = add(&d, "a", &a, Some("fake-token"));
    let b_id = add(&d, "b", &b, Some("fake-token"));
    wait_gateway(&d, b_id, "b online", online);
    wait_gateway(&d, a_id, "a online", online);
    a.stop();
    wait_gateway(&d, b_id, "b acting", |g| g["acting_primary"] == true);
    a.resume().unwrap();
    wait_gateway(&d, a_id, "a online again", online);
    assert_eq!(gateway(&d, b_id)["acting_primary"], true);
    assert_eq!(gateway(&d, a_id)["acting_primary"], false);
}

#[test]
fn sse_resumes_from_last_event_id_and_a_stalled_consumer_blocks_nobody() {
    let d = link_daemon(&[]);
    let mut first = Sse::open(d.addr, &d.admin_key, None, "?types=gateway.changed");
    // A consumer that never reads.
    let _stalled = std::net::TcpStream::connect(d.addr).map(|mut s| {
        use std::io::Write;
        let _ = s.write_all(
            format!(
                "GET /api/events HTTP/1.1\r\nhost: x\r\nx-api-key: {}\r\n\r\n",
                d.admin_key
            )
            .as_bytes(),
        );
        s
    });
    let id = d
        .call(
            "POST",
            "/api/gateways",
            &d.admin_key,
            &json!({"name": "g0", "host": "127.0.0.1", "port": 1}),
        )
        .json()["gateway"]["id"]
        .clone();
    let e = first.until(DEADLINE, |e| e.data["payload"]["action"] == "created");
    assert_eq!(e.data["gateway_id"], id);
    let last = e.id;
    drop(first);
    // Events while disconnected...
    for i in 1..=100 {
        let res = d.call(
            "PUT",
            &format!("/api/gateways/{id}"),
            &d.admin_key,
            &json!({"port": 1000 + i}),
        );
        assert_eq!(res.status, 200);
    }
    // ...are replayed after Last-Event-ID, in order, and live ones follow.
    let mut resumed = Sse::open(d.addr, &d.admin_key, Some(last), "?types=gateway.changed");
    let started = Instant::now();
    let mut seen = 0;
    let mut prev = last;
    while seen < 100 {
        let e = resumed.next(DEADLINE).expect("replayed event");
        assert!(e.id > prev, "ids increase");
        prev = e.id;
        seen += 1;
    }
    assert!(started.elapsed() < DEADLINE);
    d.call(
        "PUT",
        &format!("/api/gateways/{id}"),
        &d.admin_key,
        &json!({"name": "renamed"}),
    );
    let e = resumed.until(DEADLINE, |e| e.data["payload"]["name"] == "renamed");
    assert_eq!(e.data["type"], "gateway.changed");
    assert!(e.id > prev);
    assert_eq!(d.get("/healthz", "").status, 200);
}

#[test]
fn websocket_delivers_filtered_events() {
    let d = link_daemon(&[]);
    let mut ws = crate::support::open_ws(d.addr, &d.admin_key, "?types=gateway.changed", DEADLINE);
    // Without a key the upgrade is refused.
    let res = d.send(
        Request::new("GET", "/api/ws")
            .header("upgrade", "websocket")
            .header("connection", "Upgrade"),
    );
    assert_eq!(res.status, 401);
    let f = fake(|_| {});
    add(&d, "ws-gw", &f, Some("fake-token"));
    let msg = wait_until("a gateway.changed message", DEADLINE, || match ws.read() {
        Ok(tungstenite::Message::Text(t)) => Some(t.to_string()),
        _ => None,
    });
    let v: serde_json::Value = serde_json::from_str(&msg).unwrap();
    assert_eq!(v["type"], "gateway.changed", "only the requested type: {v}");
    assert_eq!(v["payload"]["action"], "created");
    assert!(v["id"].as_u64().is_some() && v["ts"].as_i64().is_some());
}

fn sessions(d: &crate::support::Daemon, query: &str) -> Vec<serde_json::Value> {
    let res = d.get(&format!("/api/sessions{query}"), &d.admin_key);
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["sessions"].as_array().unwrap().clone()
}

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
    assert_eq!(res.json()["restart"]["status"], "scheduled");
    assert_eq!(post("/api/gateways/999/restart", &d.admin_key).status, 404);
}

#[test]
fn gateway_log_events_are_served_from_the_buffer() {
    let f = fake(|c| {
        c.sessions = 1;
        c.seed_protocol = true;
    });
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    let key = wait_until("a session", DEADLINE, || {
        sessions(&d, "")
            .first()
            .map(|s| s["key"].as_str().unwrap().to_owned())
    });
    control(&d, &key, "pause");
    let logs = wait_until("a log line", DEADLINE, || {
        let l = d
            .get(
                &format!("/api/logs?gateway_id={id}&session={key}"),
                &d.admin_key,
            )
            .json();
        (!l["logs"].as_array().unwrap().is_empty()).then_some(l)
    });
    let line = &logs["logs"][0];
    assert_eq!(
        (line["gateway_id"].as_i64(), line["level"].as_str()),
        (Some(id), Some("info"))
    );
    assert!(line["message"].as_str().unwrap().contains("pause"));
    assert_eq!(
        d.get("/api/logs?level=error", &d.admin_key).json()["logs"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(d.get("/api/logs?limit=0", &d.admin_key).status, 400);
}
