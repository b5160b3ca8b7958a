//! The central log tail against fake gateways whose `logs.tail` reads a file log as 2026.9.6
//! does: a gateway's recent lines appear in `GET /api/logs` once each, with level, subsystem
//! and the gateway's time; filters by gateway, level and text; a live stream of the matching
//! lines; credentials redacted; a hostile line bounded.

use std::time::Duration;

use serde_json::Value;

use crate::support::fleet::{add, fake, link_daemon, wait_gateway};
use crate::support::sse::Sse;
use crate::support::{Daemon, online, wait_for};

const DEADLINE: Duration = Duration::from_secs(20);

fn logs(d: &Daemon, query: &str) -> Vec<Value> {
    let res = d.get(&format!("/api/logs{query}"), &d.admin_key);
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["logs"].as_array().cloned().unwrap_or_default()
}

/// Waits until `GET /api/logs{query}` has `n` lines; returns them.
fn wait_logs(d: &Daemon, query: &str, n: usize) -> Vec<Value> {
    wait_for(&format!("{n} lines at {query}"), DEADLINE, || {
        let found = logs(d, query);
        if found.len() == n {
            Ok(found)
        } else {
            Err(format!("{found:#?}"))
        }
    })
}

#[test]
fn a_gateway_s_file_log_is_tailed_once_filtered_streamed_and_redacted() {
    let f = fake(|_| {});
    let quiet = fake(|_| {});
    for i in 0..3 {
        f.log("info", "gateway", &format!("started part {i}"));
    }
    quiet.log("info", "gateway", "started elsewhere");
    let d = link_daemon(&[
        ("GATEWAY_SUPERVISOR__GATEWAY_LOGS__INTERVAL", "200ms"),
        ("GATEWAY_SUPERVISOR__GATEWAY_LOGS__IDLE_INTERVAL", "1s"),
    ]);
    let id = add(&d, "loud", &f, Some("fake-token"));
    let other = add(&d, "quiet", &quiet, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    wait_gateway(&d, other, "online", online);

    // Its recent past, each line once, as the gateway wrote it.
    let q = format!("?gateway_id={id}&q=STARTED");
    let started = wait_logs(&d, &q, 3);
    let first = &started[0];
    assert_eq!(first["gateway_id"], id);
    assert_eq!(first["level"], "info");
    assert_eq!(first["message"], "started part 0");
    assert_eq!(first["payload"]["source"], "logs.tail");
    assert_eq!(first["payload"]["subsystem"], "gateway");
    assert!(
        first["payload"]["time"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{first}"
    );
    wait_logs(&d, &format!("?gateway_id={other}&q=started"), 1);

    // Live: only the matching lines, in order; a token in a line never gets out.
    let mut stream = Sse::open_path(
        d.addr,
        &d.admin_key,
        None,
        &format!("/api/logs?follow=true&gateway_id={id}&level=error"),
    );
    f.log(
        "error",
        "agents",
        "provider refused Authorization: Bearer abcdef0123456789secret",
    );
    f.log("info", "agents", "noise that is not an error");
    quiet.log("error", "agents", "an error on the other gateway");
    f.log("error", "agents", "second error");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let e = stream
            .next(DEADLINE)
            .unwrap_or_else(|| panic!("the stream ended; saw {seen:#?}"));
        seen.push(e.data);
    }
    let messages: Vec<&str> = seen
        .iter()
        .map(|e| e["payload"]["message"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        messages,
        [
            "provider refused Authorization: [redacted] [redacted]",
            "second error"
        ]
    );
    assert!(
        seen.iter()
            .all(|e| e["type"] == "log" && e["gateway_id"] == id)
    );
    // The buffer has them too, and the first three were never read again.
    wait_logs(&d, &format!("?gateway_id={id}&level=error"), 2);
    assert_eq!(logs(&d, &q).len(), 3);
    let all = d.get("/api/logs?limit=5000", &d.admin_key).text();
    assert!(!all.contains("abcdef0123456789secret"), "{all}");
}

#[test]
fn a_hostile_log_line_is_bounded_and_the_tail_goes_on() {
    let f = fake(|_| {});
    let d = link_daemon(&[
        ("GATEWAY_SUPERVISOR__GATEWAY_LOGS__INTERVAL", "200ms"),
        ("GATEWAY_SUPERVISOR__GATEWAY_LOGS__IDLE_INTERVAL", "1s"),
    ]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    // A huge argument with a terminal escape in it (JSON-escaped, as tslog writes it).
    f.write_log(&format!("{{\"0\": \"{}\\u001b[2J\"}}", "A".repeat(100_000)));
    f.write_log("not json at all \u{7} password=hunter22");
    f.log("info", "gateway", "after the noise");
    wait_logs(&d, &format!("?gateway_id={id}&q=after%20the%20noise"), 1);
    let lines = logs(&d, &format!("?gateway_id={id}"));
    let big = lines
        .iter()
        .find(|l| l["message"].as_str().is_some_and(|m| m.starts_with("AAAA")))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    let m = big["message"].as_str().unwrap();
    assert!(m.len() < 4096, "{}", m.len());
    let plain = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("not json"))
        })
        .unwrap();
    let m = plain["message"].as_str().unwrap();
    assert!(!m.contains("hunter22") && !m.contains('\u{7}'), "{m}");
    // Bad filters are refused by name.
    let res = d.get(&format!("/api/logs?q={}", "x".repeat(300)), &d.admin_key);
    assert_eq!(res.status, 400, "{}", res.text());
    assert!(res.text().contains("q"), "{}", res.text());
}

#[test]
fn a_gateway_that_never_answers_holds_up_no_other_gateway_s_tail() {
    // The silent one is registered first: read in turn, every other read would wait out its
    // 30 s deadline each round.
    let silent = fake(|_| {});
    silent.set_faults(fake_gateway::Faults {
        unanswered: vec!["logs.tail".into()],
        ..fake_gateway::Faults::default()
    });
    let f = fake(|_| {});
    let d = link_daemon(&[
        ("GATEWAY_SUPERVISOR__GATEWAY_LOGS__INTERVAL", "200ms"),
        ("GATEWAY_SUPERVISOR__GATEWAY_LOGS__IDLE_INTERVAL", "1s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__OPERATION_TIMEOUT", "30s"),
    ]);
    let s = add(&d, "silent", &silent, Some("fake-token"));
    let id = add(&d, "talking", &f, Some("fake-token"));
    wait_gateway(&d, s, "online", online);
    wait_gateway(&d, id, "online", online);
    for i in 0..3 {
        f.log("info", "gateway", &format!("line {i}"));
        wait_logs(&d, &format!("?gateway_id={id}&q=line%20{i}"), 1);
    }
}
