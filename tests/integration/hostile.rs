//! Hostile gateways beside a healthy one: whatever a peer sends, the daemon stays up, its
//! memory stays bounded, what it logs and shows is escaped and bounded, and the healthy
//! gateway stays online.

use std::time::Duration;

use serde_json::json;

use crate::link::{add, fake, gateway, link_daemon};
use crate::support::{Daemon, online, wait_until};

const DEADLINE: Duration = Duration::from_secs(30);

/// The daemon's resident memory, from `/proc`.
fn rss_bytes(d: &Daemon) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kb * 1024
}

fn wait_online(d: &Daemon, id: i64) {
    wait_until("the gateway to be online", DEADLINE, || {
        online(&gateway(d, id)).then_some(())
    });
}

#[test]
fn a_gateway_flooding_large_log_events_cannot_exhaust_memory() {
    let d = link_daemon(&[]);
    let healthy = fake(|_| {});
    let hostile = fake(|_| {});
    let healthy_id = add(&d, "healthy", &healthy, Some("fake-token"));
    let hostile_id = add(&d, "hostile", &hostile, Some("fake-token"));
    wait_online(&d, healthy_id);
    wait_online(&d, hostile_id);
    let before = rss_bytes(&d);

    // 400 log events of 256 KB each: 100 MB that main kept twice (log buffer and event
    // replay; 400 events of 1 MB took it from 23 MB to 1.2 GB).
    let big = "x".repeat(256 * 1024);
    for i in 0..400 {
        hostile.emit(
            "log",
            json!({"level": "info", "message": big, "seq": i, "session": "agent:main:main"}),
        );
    }
    hostile.emit("log", json!({"level": "info", "message": "last"}));
    wait_until("the last log line to arrive", DEADLINE, || {
        let res = d.get("/api/logs?limit=1", &d.admin_key);
        (res.json()["logs"][0]["message"] == "last").then_some(())
    });
    let after = rss_bytes(&d);
    assert!(
        after < before + 48 * 1024 * 1024,
        "RSS grew from {} MB to {} MB",
        before >> 20,
        after >> 20
    );

    // The biggest answer the log API gives is bounded too, and says what it left out.
    let res = d.get("/api/logs?limit=5000", &d.admin_key);
    assert_eq!(res.status, 200);
    assert!(
        res.body.len() <= 3 * 1024 * 1024,
        "{} bytes",
        res.body.len()
    );
    let body = res.json();
    assert_eq!(body["truncated"], true);
    let lines = body["logs"].as_array().unwrap();
    let message = lines[0]["message"].as_str().unwrap();
    assert!(
        message.len() < 4096,
        "a kept message is {} bytes",
        message.len()
    );
    assert!(
        message.ends_with("bytes]"),
        "the cut is marked: {}",
        &message[message.len() - 40..]
    );

    // Both links still up; the daemon still answers.
    assert!(online(&gateway(&d, healthy_id)));
    assert!(online(&gateway(&d, hostile_id)));
}
