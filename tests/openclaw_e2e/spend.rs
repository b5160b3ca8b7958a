//! Spend settled from the gateway's own numbers: a spawn on a real 2026.9.6 gateway whose model
//! has a price is settled at what the gateway says its run cost — the session's total for the
//! first run of a fresh session, and only its own model call for the next run in the same
//! shared session (`agent:main:main`), whose `sessions.usage` totals are every run's.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use gs_test_support::daemon::{Daemon, online, wait_until};
use gs_test_support::fake_model::FakeModel;
use gs_test_support::real_gateway::RealGateway;

use super::rollout::{run_recipe, runbook_block};
use super::{add, finished, free_gateway_port, spawn, wait_gateway};

const TOKEN: &str = "spend-token-1";

fn install() -> PathBuf {
    PathBuf::from(std::env::var("GS_OPENCLAW_DIR").expect("GS_OPENCLAW_DIR"))
}

/// A real gateway whose fake model costs $3 per million input tokens and $15 per million output.
fn priced_gateway(model: &FakeModel) -> RealGateway {
    let mut g = RealGateway::new(&install(), free_gateway_port(), TOKEN, None);
    g.use_model(&model.base_url());
    g.with_config(json!({"models": {"providers": {"fake": {"models": [
        {"id": "slow-model", "name": "Slow fake", "reasoning": false, "input": ["text"],
         "cost": {"input": 3, "output": 15, "cacheRead": 0.3, "cacheWrite": 3.75},
         "contextWindow": 128000, "maxTokens": 4096}]}}}}));
    g.start();
    g.wait_ready();
    g
}

fn budget(d: &Daemon, subject: &str) -> serde_json::Value {
    d.get(&format!("/api/spend/budgets/{subject}"), &d.admin_key)
        .json()["budget"]
        .clone()
}

/// Waits until the budget has no run going and has spent more than `above` (USD): its spend.
fn settled(d: &Daemon, subject: &str, above: f64) -> f64 {
    wait_until("the run settled", Duration::from_secs(60), || {
        let b = budget(d, subject);
        let spent = b["spent_usd"].as_f64()?;
        (b["running"] == 0 && spent > above).then_some(spent)
    })
}

#[test]
fn a_spawn_is_settled_at_what_the_gateway_says_its_run_cost() {
    let model = FakeModel::start();
    let g = priced_gateway(&model);
    let d = Daemon::start_with(&[("GATEWAY_SUPERVISOR__GATEWAYS__HEALTH_INTERVAL", "1h")]);
    let id = add(&d, "priced", "127.0.0.1", g.port, TOKEN);
    wait_gateway(&d, id, "online", online);
    let subject = "tenant:default";
    let res = d.call(
        "PUT",
        &format!("/api/spend/budgets/{subject}"),
        &d.admin_key,
        &json!({"window": "1d", "max_spend_usd": 1.0, "estimate_usd": 0.5}),
    );
    assert_eq!(res.status, 200, "{}", res.text());

    // The first run on a fresh gateway: its session's whole cost, as the gateway totals it.
    let s = spawn(
        &d,
        json!({"agent": "main", "task": "hello", "gateway_id": id}),
    );
    let done = finished(&d, s["spawn_id"].as_str().unwrap());
    let key = done["session_key"].as_str().unwrap().to_owned();
    let first = settled(&d, subject, 0.0);
    let totals = wait_until("the gateway's totals", Duration::from_secs(30), || {
        let u = g.call("sessions.usage", json!({"key": key}));
        (u["cacheStatus"]["status"] == "fresh").then(|| u["totals"]["totalCost"].as_f64())?
    });
    assert!(
        (first - totals).abs() < 1e-9,
        "settled {first}, the gateway says {totals}"
    );
    assert!(
        first > 0.0 && first < 0.5,
        "the gateway's number, not the estimate: {first}"
    );

    // The second run in the same session: its own call's cost, not the session's total.
    let s = spawn(
        &d,
        json!({"agent": "main", "task": "hello again", "gateway_id": id}),
    );
    let done = finished(&d, s["spawn_id"].as_str().unwrap());
    assert_eq!(
        done["session_key"],
        key.as_str(),
        "the agent's shared session"
    );
    let both = settled(&d, subject, first);
    let points = g.call("sessions.usage.timeseries", json!({"key": key}));
    let last = points["points"].as_array().unwrap().last().unwrap()["cost"]
        .as_f64()
        .unwrap();
    assert!(
        (both - first - last).abs() < 1e-9,
        "{both} = {first} + {last}: {points}"
    );
}

/// The runbook's spend recipe (docs/operations.md, *Spend budgets*) run as written against a
/// real 2026.9.6 gateway whose model has a price: the budget is set, a run admitted, held, and
/// settled at the gateway's number.
#[test]
fn the_readme_spend_recipe_runs_as_written() {
    let model = FakeModel::start();
    let g = priced_gateway(&model);
    let d = Daemon::start_with(&[("GATEWAY_SUPERVISOR__GATEWAYS__HEALTH_INTERVAL", "1h")]);
    let id = add(&d, "priced", "127.0.0.1", g.port, TOKEN);
    wait_gateway(&d, id, "online", online);
    let out = run_recipe(&d, &runbook_block("### Spend budgets"));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with(r#"{"subject":"tenant:default","max_spend_usd":25,"resets_at":"#),
        "{out}"
    );
    assert_eq!(lines[1], "running", "{out}");
    assert_eq!(
        lines[2],
        r#"{"subject":"tenant:default","spent_usd":4.5e-05,"reserved_usd":0,"runs":1,"running":0}"#,
        "{out}"
    );
}
