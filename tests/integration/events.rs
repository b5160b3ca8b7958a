//! Live events: SSE with resume and slow consumers, WebSocket with filters, and gateway log events.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::fleet::{add, fake, link_daemon};
use crate::support::sse::Sse;
use crate::support::{Request, control, sessions, wait_until};

const DEADLINE: Duration = Duration::from_secs(20);

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

/// A client resuming with an id this daemon never issued (it restarted and numbers from 1
/// again) is told that it missed events, not left to wait in silence.
#[test]
fn a_resumption_that_missed_events_starts_with_a_reset() {
    let d = link_daemon(&[]);
    d.create_gateway("g0", 1, None);
    let mut resumed = Sse::open(d.addr, &d.admin_key, Some(1_000_000), "");
    let reset = resumed
        .reset(DEADLINE)
        .expect("a reset frame before any event");
    assert_eq!(reset["reason"], "unknown_event_id", "{reset}");
    assert_eq!(reset["last_event_id"], 1_000_000);
    // A client that is up to date gets no reset.
    let mut current = Sse::open(
        d.addr,
        &d.admin_key,
        Some(reset["next_id"].as_u64().unwrap() - 1),
        "",
    );
    assert_eq!(current.reset(std::time::Duration::from_millis(300)), None);
}

/// A stream is one request that lasts for hours: a key revoked, or a console session logged out
/// (in another tab, say), ends the streams it opened, and no event after that reaches them.
#[test]
fn a_revoked_key_or_a_logged_out_console_session_ends_its_event_streams() {
    let d = link_daemon(&[]);
    let viewer = d.create_key("viewer", "wall");
    let origin = format!("http://{}", d.addr);
    let res = d.send(
        Request::new("POST", "/console/login")
            .header("origin", &origin)
            .json(&json!({"key": d.admin_key})),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let cookie = res.header("set-cookie").expect("a cookie").to_owned();
    let cookie = cookie.split(';').next().unwrap().to_owned();

    let path = "/api/events?types=gateway.changed";
    let mut by_key = Sse::open(d.addr, &viewer, None, "?types=gateway.changed");
    let mut by_session = Sse::open_as(d.addr, &format!("cookie: {cookie}"), None, path);
    let mut by_admin = Sse::open(d.addr, &d.admin_key, None, "?types=gateway.changed");
    let mut ws = crate::support::open_ws(d.addr, &viewer, "?types=gateway.changed", DEADLINE);
    let create = |name: &str, port: u16| {
        let res = d.call(
            "POST",
            "/api/gateways",
            &d.admin_key,
            &json!({"name": name, "host": "127.0.0.1", "port": port}),
        );
        assert_eq!(res.status, 201, "{}", res.text());
    };
    create("before", 1);
    for s in [&mut by_key, &mut by_session, &mut by_admin] {
        s.until(DEADLINE, |e| e.data["payload"]["name"] == "before");
    }
    match ws.read() {
        Ok(tungstenite::Message::Text(t)) => assert!(t.contains("\"before\""), "{t}"),
        other => panic!("the WebSocket's first event: {other:?}"),
    }

    let out = d.cli(&["keys", "revoke", &viewer[..12]]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let res = d.send(
        Request::new("POST", "/console/logout")
            .header("cookie", &cookie)
            .header("origin", &origin),
    );
    assert_eq!(res.status, 204, "{}", res.text());
    // The revocation reaches the key cache at its next refresh.
    wait_until("the revoked key to be refused", DEADLINE, || {
        (d.get("/api/gateways", &viewer).status == 401).then_some(())
    });

    create("after", 2);
    for s in [&mut by_key, &mut by_session] {
        assert_eq!(
            s.ends(DEADLINE),
            "the key that opened this stream was revoked, or its console session ended"
        );
    }
    match ws.read() {
        Ok(tungstenite::Message::Close(Some(frame))) => {
            assert_eq!(
                frame.code,
                tungstenite::protocol::frame::coding::CloseCode::Policy
            );
            assert_eq!(
                frame.reason.as_str(),
                "the key that opened this stream was revoked, or its console session ended"
            );
        }
        other => panic!("the WebSocket after the revocation: {other:?}"),
    }
    // Every other stream goes on.
    by_admin.until(DEADLINE, |e| e.data["payload"]["name"] == "after");
}
