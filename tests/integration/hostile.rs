//! Hostile gateways beside a healthy one: whatever a peer sends, the daemon stays up, its
//! memory stays bounded, what it logs and shows is escaped and bounded, and the healthy
//! gateway stays online.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use serde_json::json;

use crate::support::fleet::{add, fake, gateway, link_daemon};
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
    // A keepalive slower than the test's 200 ms: while the (debug-built) fake serializes the
    // flood it answers pings late, and a link torn down for that would lose the events.
    let d = link_daemon(&[("GATEWAY_SUPERVISOR__GATEWAYS__HEARTBEAT_INTERVAL", "30s")]);
    let healthy = fake(|_| {});
    let hostile = fake(|_| {});
    let healthy_id = add(&d, "healthy", &healthy, Some("fake-token"));
    let hostile_id = add(&d, "hostile", &hostile, Some("fake-token"));
    wait_online(&d, healthy_id);
    wait_online(&d, hostile_id);
    let before = rss_bytes(&d);

    // 200 log events of 256 KB each: 50 MB that main kept twice (log buffer and event
    // replay; 400 events of 1 MB took it from 23 MB to 1.2 GB).
    let big = "x".repeat(256 * 1024);
    for i in 0..200 {
        hostile.emit(
            "log",
            json!({"level": "info", "message": big, "seq": i, "session": "agent:main:main"}),
        );
    }
    hostile.emit("log", json!({"level": "info", "message": "last"}));
    wait_until("the last log line to arrive", 2 * DEADLINE, || {
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
    // Whether lines were left out is said (the byte cap itself is unit-tested in `logs.rs`).
    assert!(body["truncated"].is_boolean());
    assert_eq!(body["logs"].as_array().unwrap().len(), 201);
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

#[test]
fn gateway_strings_cannot_forge_log_lines_or_grow_without_bound() {
    let d = link_daemon(&[]);
    let forged = format!(
        "2026.9.6\n2026-11-22T00:00:00.000000Z ERROR gateway_supervisor::daemon: INJECTED\x1b[31m{}",
        "v".repeat(64 * 1024)
    );
    let hostile = fake(|c| c.version = forged.clone());
    let id = add(&d, "hostile", &hostile, Some("fake-token"));
    wait_online(&d, id);
    // Absurd counts are not shown as reported. Events arrive in order on the one socket, so
    // once a later plausible count shows, the absurd one before it was handled.
    hostile.emit(
        "health",
        json!({"ok": true, "sessions": {"count": 1_000_000_000_000i64}, "agents": ["main"]}),
    );
    wait_until("a later plausible count to show", DEADLINE, || {
        let g = gateway(&d, id);
        let shown = g["sessions_count"].as_i64().unwrap_or(0);
        assert!(
            (0..=10_000_000).contains(&shown),
            "sessions_count shown as reported: {shown}"
        );
        // Repeated: the count from the initial `sessions.list` may land after one of these.
        hostile.emit(
            "health",
            json!({"ok": true, "sessions": {"count": 5}, "agents": ["main"]}),
        );
        (shown == 5).then_some(())
    });

    let g = gateway(&d, id);
    let version = g["connection"]["server_version"].as_str().unwrap();
    assert!(
        version.len() < 200,
        "server_version is {} bytes",
        version.len()
    );
    assert!(
        !version.contains('\n') && !version.contains('\x1b'),
        "{version}"
    );
    assert!(version.starts_with("2026.9.6\\n"), "{version}");

    let logs = String::from_utf8_lossy(&d.logs()).to_string();
    assert!(
        !logs
            .lines()
            .any(|l| l.contains("INJECTED") && !l.contains("gateway connected")),
        "a gateway string forged a log line:\n{logs}"
    );
    assert!(!logs.contains('\x1b'), "an escape sequence reached the log");
    assert!(
        logs.lines().all(|l| l.len() < 4096),
        "a log line of {} bytes",
        logs.lines().map(str::len).max().unwrap_or(0)
    );
}

/// A gateway whose HTTP side is ready but whose WebSocket breaks after the upgrade: the
/// breaker holds (main re-dialled it about once a second on `/readyz`: 38 failures in 40 s).
#[test]
fn a_broken_websocket_behind_a_ready_http_side_waits_for_the_breaker() {
    let d = link_daemon(&[
        ("GATEWAY_SUPERVISOR__GATEWAYS__BREAKER_COOLDOWN", "60s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__BACKOFF_MAX", "60s"),
    ]);
    let hostile = fake(|_| {});
    hostile.update_faults(|f| f.close_after_challenge = Some((1011, "broken".into())));
    let id = add(&d, "hostile", &hostile, Some("fake-token"));
    wait_until("the breaker to open", DEADLINE, || {
        (gateway(&d, id)["breaker"]["state"] == "open").then_some(())
    });
    let upgrades = || hostile.counters().upgrades.load(Relaxed);
    let at_open = upgrades();
    // An observation window, not a synchronisation: the breaker's cooldown is 60 s, so no
    // upgrade at all should happen in it (main made about one per second).
    std::thread::sleep(Duration::from_secs(5));
    let extra = upgrades() - at_open;
    assert!(extra <= 1, "{extra} more upgrades with the breaker open");
    let g = gateway(&d, id);
    assert_eq!(g["status"], "offline");
    assert!(g["connection"]["last_error"]["code"].is_string(), "{g}");
}

/// A gateway that closes right after every handshake is re-dialled on a growing schedule,
/// not every second (main reset the backoff at each `hello-ok`: 15 handshakes in 14 s).
#[test]
fn a_gateway_that_closes_after_every_hello_is_not_redialled_in_a_storm() {
    let d = link_daemon(&[
        ("GATEWAY_SUPERVISOR__GATEWAYS__BACKOFF_MAX", "30s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__BREAKER_THRESHOLD", "1000"),
    ]);
    let flapping = fake(|_| {});
    flapping.update_faults(|f| f.close_after_hello = Some((1011, "flap".into())));
    let healthy = fake(|_| {});
    let healthy_id = add(&d, "healthy", &healthy, Some("fake-token"));
    add(&d, "flapping", &flapping, Some("fake-token"));
    let hellos = || flapping.counters().hellos.load(Relaxed);
    wait_until("the first handshake", DEADLINE, || {
        (hellos() >= 1).then_some(())
    });
    let start = std::time::Instant::now();
    // Observation window: 1, 2, 4, 8 s of backoff (±25 %) allow at most 5 handshakes in 10 s.
    std::thread::sleep(Duration::from_secs(10));
    let seen = hellos();
    assert!(
        seen <= 6,
        "{seen} handshakes in {:?} for a gateway that closes after each",
        start.elapsed()
    );
    wait_online(&d, healthy_id);
}

/// A gateway that answers every request under a wrong id is not `online` for long (main
/// kept it online until the next probe, 5 minutes later).
#[test]
fn a_gateway_answering_under_wrong_ids_is_taken_for_dead() {
    let d = link_daemon(&[]);
    let hostile = fake(|_| {});
    let id = add(&d, "hostile", &hostile, Some("fake-token"));
    wait_online(&d, id);
    hostile.update_faults(|f| f.wrong_ids = true);
    // Each `sessions.changed` makes the link ask `sessions.list` (debounced), which now never
    // gets its answer; the 2 s RPC deadline runs out again and again.
    let g = wait_until("the link to give up on the gateway", DEADLINE, || {
        hostile.emit("sessions.changed", json!({}));
        let g = gateway(&d, id);
        (g["connection"]["last_error"]["code"] == "RPC_TIMEOUT").then_some(g)
    });
    assert!(
        g["connection"]["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("no answer"),
        "{g}"
    );
}
