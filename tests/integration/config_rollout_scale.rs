//! A config rollout at fleet scale: 1,000 fake gateways given a change that restarts each
//! (`gateway.controlUi.basePath`, as 2026.9.6 restarts for it), 50 at a time, under a
//! disruption budget of 40 — the fakes, sampled every 50 ms, are never more out of service at
//! once than the budget allows, and every gateway ends with the change.

use std::sync::Arc;
use std::time::Duration;

use fake_gateway::FakeConfig;
use gs_test_support::outages::OutageSampler;
use serde_json::json;

use crate::support::fleet::{fleet_daemon, register_fakes};
use crate::support::wait_for;

const GATEWAYS: usize = 1_000;
const BUDGET: usize = 40;

#[test]
fn a_thousand_gateways_roll_out_fifty_at_a_time_within_the_budget() {
    let d = fleet_daemon(&[("GATEWAY_SUPERVISOR__GATEWAYS__RPC_TIMEOUT", "10s")]);
    let fakes = register_fakes(
        &d,
        GATEWAYS,
        FakeConfig {
            restart_down: Some(Duration::from_millis(200)),
            ..FakeConfig::default()
        },
    );
    let budget = d.call(
        "PUT",
        "/api/budgets/fleet",
        &d.admin_key,
        &json!({"selector": "", "max_unavailable": BUDGET}),
    );
    assert_eq!(budget.status, 201, "{}", budget.text());
    wait_for(
        "every gateway counted in service",
        Duration::from_secs(120),
        || {
            let b = d.get("/api/budgets/fleet", &d.admin_key).json();
            if b["budget"]["available"] == GATEWAYS {
                Ok(())
            } else {
                Err(format!("{}", b["budget"]["available"]))
            }
        },
    );

    let fakes = Arc::new(fakes);
    let f = fakes.clone();
    let mut sampler = OutageSampler::start(f.len(), Duration::from_millis(50), move |i| {
        f[i].out_of_service()
    });
    let res = d.call(
        "POST",
        "/api/config/rollouts",
        &d.admin_key,
        &json!({"selector": "", "patch": {"gateway": {"controlUi": {"basePath": "/ui"}}},
                "canary": 1, "max_parallel": 50, "min_healthy_time": 0, "healthy_deadline": "5m"}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let id = res.json()["operation"]["id"].as_str().unwrap().to_owned();
    let op = wait_for("the rollout over", Duration::from_secs(600), || {
        let op = d.get(&format!("/api/operations/{id}"), &d.admin_key).json()["operation"].clone();
        let state = op["state"].as_str().unwrap_or("").to_owned();
        if ["succeeded", "failed", "reverted", "cancelled"].contains(&state.as_str()) {
            Ok(op)
        } else {
            let done = op["gateways"]
                .as_array()
                .map_or(0, |g| g.iter().filter(|g| g["step"] == "done").count());
            Err(format!("{state}: {done} done"))
        }
    });
    let most = sampler.most_at_once();
    assert_eq!(op["state"], "succeeded", "{}", op["detail"]);
    assert!(
        most <= BUDGET,
        "{most} gateways out of service at once; the budget is {BUDGET}"
    );
    assert!(most > 1, "the rollout went on in parallel ({most} at most)");
    for f in fakes.iter() {
        assert_eq!(
            f.config_value("gateway.controlUi.basePath"),
            Some(json!("/ui"))
        );
    }
}
