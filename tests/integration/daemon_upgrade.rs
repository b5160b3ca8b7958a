//! A daemon upgraded in the middle of its fleet work carries it on: the state directory of
//! main as of 2026-11-28 (before the one engine; `tests/fixtures/operations-2026-11-28/`,
//! written by its `make.py` with that commit's binaries) holds a config rollout whose canary is
//! done and which awaits an operator's promote, and an update hold that finished. Today's
//! daemon reads both as they were stored, and its engine takes the rollout to the end.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::support::Daemon;
use crate::support::fleet::{fake, gateway, steps_of, wait_operation};
use fake_gateway::FakeGateway;

const CHAT: &str = "gateway.http.endpoints.chatCompletions.enabled";

fn fixture() -> (PathBuf, Value) {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/operations-2026-11-28");
    let made: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("fixture.json")).unwrap()).unwrap();
    (dir, made)
}

#[test]
fn a_rollout_an_older_daemon_left_awaiting_promotion_is_carried_to_the_end_by_today_s() {
    let (dir, made) = fixture();
    let d = Daemon::start_from(
        &dir,
        &[
            ("GATEWAY_SUPERVISOR__GATEWAYS__BACKOFF_MAX", "1s"),
            ("GATEWAY_SUPERVISOR__GATEWAYS__HEARTBEAT_INTERVAL", "200ms"),
        ],
    );
    let rollout = made["rollout"].as_str().unwrap();
    let hold = made["update_hold"].as_str().unwrap();
    // As the older daemon left them, read by today's.
    let op = wait_operation(&d, rollout, "the stored rollout read", |_| true);
    assert_eq!(op["state"], "awaiting_promotion", "{op:#}");
    assert_eq!(op["kind"], "config_rollout");
    assert_eq!(steps_of(&op), ["done", "pending", "pending"]);
    assert_eq!(op["params"]["canary"], 1, "{op:#}");
    assert_eq!(op["params"]["rollout"]["auto_promote"], false, "{op:#}");
    let held = wait_operation(&d, hold, "the stored hold read", |_| true);
    assert_eq!(held["state"], "succeeded", "{held:#}");
    assert_eq!(held["kind"], "update_hold");
    // Its gateways, moved to where they listen now (the fixture's fakes are gone).
    let fakes: Vec<FakeGateway> = (0..3).map(|_| fake(|_| {})).collect();
    for (id, f) in made["gateways"].as_array().unwrap().iter().zip(&fakes) {
        let id = id.as_i64().unwrap();
        let moved = d.call(
            "PUT",
            &format!("/api/gateways/{id}"),
            &d.admin_key,
            &json!({"id": id, "port": f.port()}),
        );
        assert_eq!(moved.status, 200, "{}", moved.text());
        crate::support::wait_for(
            "the gateway online",
            std::time::Duration::from_secs(30),
            || {
                let g = gateway(&d, id);
                if crate::support::online(&g) {
                    Ok(())
                } else {
                    Err(format!("{g:#}"))
                }
            },
        );
    }
    let promoted = d.call(
        "POST",
        &format!("/api/config/rollouts/{rollout}/promote"),
        &d.admin_key,
        &json!({}),
    );
    assert_eq!(promoted.status, 202, "{}", promoted.text());
    let op = wait_operation(&d, rollout, "the rollout over", |op| {
        op["state"] != "running" && op["state"] != "awaiting_promotion"
    });
    assert_eq!(op["state"], "succeeded", "{op:#}");
    assert_eq!(steps_of(&op), ["done", "done", "done"]);
    // The rest were written by today's engine; the canary was written before the upgrade.
    assert_eq!(fakes[1].config_value(CHAT), Some(json!(true)));
    assert_eq!(fakes[2].config_value(CHAT), Some(json!(true)));
}
