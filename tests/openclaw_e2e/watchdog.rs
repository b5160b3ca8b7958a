//! The stuck-session watchdog against a real OpenClaw 2026.9.6 gateway whose model provider
//! accepts a request and then sends nothing (the fake model's `HANG`): the run is active and
//! silent, so the watchdog finds it stalled in `sessions.list {activeOnly}` (its `hasActiveRun`
//! and `activeRunIds`), aborts it with `sessions.abort`, and sees the lane freed. The same
//! gateway's file log reaches `GET /api/logs` through `logs.tail`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use gs_test_support::daemon::{Daemon, online, wait_for};
use gs_test_support::fake_model::FakeModel;
use gs_test_support::real_gateway::RealGateway;
use gs_test_support::sse::Sse;

use super::{DEADLINE, add, free_gateway_port, spawn, wait_gateway};

#[test]
fn a_silent_run_on_a_real_gateway_is_found_stalled_and_aborted_and_its_log_is_tailed() {
    let install = PathBuf::from(std::env::var("GS_OPENCLAW_DIR").expect(
        "GS_OPENCLAW_DIR must point at the openclaw install (run scripts/test.sh, or e2e/openclaw/install.sh)",
    ));
    let model = FakeModel::start();
    let mut gw = RealGateway::new(&install, free_gateway_port(), "watch-token-1", None);
    gw.use_model(&model.base_url());
    gw.start();
    gw.wait_ready();
    let d = Daemon::start_with(&[
        ("GATEWAY_SUPERVISOR__GATEWAYS__HEARTBEAT_INTERVAL", "1s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__HEALTH_INTERVAL", "1h"),
        ("GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE", "0"),
        ("GATEWAY_SUPERVISOR__WATCHDOG__INTERVAL", "1s"),
        ("GATEWAY_SUPERVISOR__WATCHDOG__STALL_AFTER", "8s"),
        ("GATEWAY_SUPERVISOR__WATCHDOG__VERIFY_AFTER", "10s"),
        ("GATEWAY_SUPERVISOR__WATCHDOG__DRY_RUN", "false"),
        ("GATEWAY_SUPERVISOR__GATEWAY_LOGS__INTERVAL", "1s"),
        ("GATEWAY_SUPERVISOR__GATEWAY_LOGS__IDLE_INTERVAL", "2s"),
    ]);
    let id = add(&d, "real", "127.0.0.1", gw.port, "watch-token-1");
    wait_gateway(&d, id, "online", online);
    let mut events = Sse::open(d.addr, &d.admin_key, None, "?types=session.watchdog");
    spawn(
        &d,
        json!({"agent": "main", "task": "HANG until aborted", "gateway_id": id}),
    );

    let until = Instant::now() + DEADLINE + Duration::from_secs(60);
    let mut seen: Vec<Value> = Vec::new();
    while !seen.iter().any(|e| e["payload"]["step"] == "recovered") {
        assert!(
            Instant::now() < until,
            "no recovery: {seen:#?} (model requests: {})",
            model.requests.load(std::sync::atomic::Ordering::Relaxed)
        );
        if let Some(e) = events.next(until.saturating_duration_since(Instant::now())) {
            seen.push(e.data);
        }
    }
    let steps: Vec<(String, String)> = seen
        .iter()
        .map(|e| {
            let p = &e["payload"];
            (
                p["step"].as_str().unwrap_or("?").to_owned(),
                p["outcome"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("stalled".to_owned(), "detected".to_owned()),
            ("abort".to_owned(), "taken".to_owned()),
            ("recovered".to_owned(), "effective".to_owned()),
        ],
        "{seen:#?}"
    );
    // 2026.9.6 lists an `agent` run's session with `hasActiveRun: true` and `status: running`
    // but without `activeRunIds` (identities unavailable): the lane is judged by
    // `hasActiveRun` alone. It answered the abort with the run it stopped.
    let stalled = &seen[0]["payload"];
    assert_eq!(stalled["run_ids"], json!([]), "{stalled:#}");
    let answer = &seen[1]["payload"]["answer"];
    assert_eq!(answer["status"], "aborted", "{answer:#}");
    assert!(answer["abortedRunId"].is_string(), "{answer:#}");
    // And the session is idle on the gateway's own word.
    let key = stalled["session_key"].as_str().unwrap();
    let active = gw.call("sessions.list", json!({"activeOnly": true}));
    let still: Vec<&Value> = active["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["key"] == key)
        .collect();
    assert!(still.is_empty(), "{active:#}");

    // Its own log lines, tailed: parsed (a known level, its subsystem, its time), redacted.
    let tailed = wait_for("the gateway's log lines", DEADLINE, || {
        let res = d.get(
            &format!("/api/logs?gateway_id={id}&limit=5000"),
            &d.admin_key,
        );
        let lines = res.json()["logs"].as_array().cloned().unwrap_or_default();
        let tailed: Vec<Value> = lines
            .into_iter()
            .filter(|l| l["payload"]["source"] == "logs.tail")
            .collect();
        if tailed.iter().any(|l| l["payload"]["subsystem"].is_string()) {
            Ok(tailed)
        } else {
            Err(format!("{tailed:#?}"))
        }
    });
    assert!(
        tailed
            .iter()
            .all(|l| l["level"].is_string() && l["payload"]["time"].is_string()),
        "{tailed:#?}"
    );
    let all = d.get("/api/logs?limit=5000", &d.admin_key).text();
    assert!(
        !all.contains("watch-token-1"),
        "the gateway's token is never shown"
    );
}
