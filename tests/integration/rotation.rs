//! A gateway's shared token rotated by the daemon, coordinated with its own link, against
//! fake gateways that take a token change as 2026.9.6 does (hot: the new token in force at
//! once, sockets on the old one closed with 4001 `gateway auth changed`): the gateway gets a
//! new token, the daemon's link comes back on it, neither token is ever shown; a gateway that
//! cannot be rotated is refused before anything is written; and a daemon killed between the
//! gateway's write and its own settles the rotation at its next start instead of losing the
//! token the gateway now holds.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fleet::{add, fake, link_daemon, wait_gateway};
use crate::support::{Daemon, online};

const DEADLINE: Duration = Duration::from_secs(40);

fn rotate(d: &Daemon, id: i64) -> crate::support::Response {
    d.call(
        "POST",
        &format!("/api/gateways/{id}/rotate-token"),
        &d.admin_key,
        &json!(null),
    )
}

fn token_of(f: &fake_gateway::FakeGateway) -> String {
    f.config_value("gateway.auth.token")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Every place a token must never appear.
fn shown_anywhere(d: &Daemon, id: i64, token: &str) -> bool {
    let texts = [
        d.get(&format!("/api/gateways/{id}"), &d.admin_key).text(),
        d.get("/api/gateways", &d.admin_key).text(),
        d.get("/api/audit?limit=200", &d.admin_key).text(),
        d.get("/metrics", "").text(),
        String::from_utf8_lossy(&d.logs()).into_owned(),
    ];
    texts.iter().any(|t| t.contains(token))
}

#[test]
fn a_token_is_rotated_with_the_daemon_s_own_link_and_never_shown() {
    let d = link_daemon(&[]);
    let f = fake(|_| {});
    let id = add(&d, "edge", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    let res = rotate(&d, id);
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["rotated"], true, "{}", res.text());
    let first = token_of(&f);
    assert_ne!(first, "fake-token", "the gateway holds a new token");
    assert_eq!(first.len(), 43);
    let g = wait_gateway(&d, id, "back on the new token", online);
    assert_eq!(g["status"], "online");
    // Again: the daemon writes the second over its link on the first.
    let res = rotate(&d, id);
    assert_eq!(res.status, 200, "{}", res.text());
    let second = token_of(&f);
    assert_ne!(second, first);
    wait_gateway(&d, id, "back on the second token", online);
    for token in [&first, &second] {
        assert!(!shown_anywhere(&d, id, token), "a token was shown");
    }
    let audit = d
        .get("/api/audit?limit=50", &d.admin_key)
        .json()
        .to_string();
    assert!(audit.contains("gateway.rotate_token"), "{audit}");
}

#[test]
fn a_gateway_that_cannot_be_rotated_is_refused_before_anything_is_written() {
    let d = link_daemon(&[]);
    let f = fake(|_| {});
    let id = add(&d, "edge", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    f.set_config("gateway.auth.mode", json!("password"));
    let res = rotate(&d, id);
    assert_eq!(res.status, 409, "{}", res.text());
    let e: Value = res.json();
    assert_eq!(e["error"], "gateway_busy", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("auth mode is `password`"),
        "{e}"
    );
    assert_eq!(token_of(&f), "fake-token", "untouched");
    assert_eq!(rotate(&d, 999).status, 404);
}

#[test]
fn a_daemon_killed_mid_rotation_settles_it_at_its_next_start() {
    let mut d = link_daemon(&[]);
    // The write is applied 3 s after it arrives: time to kill the daemon while it waits.
    let f = fake(|_| {});
    let id = add(&d, "edge", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    f.update_faults(|x| x.slow_method = Some(("config.patch".into(), Duration::from_secs(3))));
    let addr = d.addr;
    let key = d.admin_key.clone();
    let asked = std::thread::spawn(move || {
        gs_test_support::http::Request::new("POST", &format!("/api/gateways/{id}/rotate-token"))
            .key(&key)
            .send(addr)
    });
    // The record is written before the write is sent: once the gateway has the request in
    // hand, the daemon dies.
    crate::support::wait_until("the write in flight", DEADLINE, || {
        (f.counters()
            .config_patches_received
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0)
        .then_some(())
    });
    d.kill9();
    let _ = asked.join();
    crate::support::wait_until("the write applied", DEADLINE, || {
        (token_of(&f) != "fake-token").then_some(())
    });
    d.launch();
    let g = wait_gateway(&d, id, "back on the token the gateway now holds", online);
    assert_eq!(g["connection"]["state"], "connected", "{g}");
    let log = String::from_utf8_lossy(&d.logs()).into_owned();
    assert!(
        log.contains("a token rotation was under way when the daemon stopped"),
        "{log}"
    );
    assert!(!shown_anywhere(&d, id, &token_of(&f)));
}
