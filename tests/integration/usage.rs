//! The usage and cost roll-up against fake gateways whose `usage.cost` answers as 2026.9.6's
//! does: finished runs show up per gateway and agent, each report counted once in the metrics;
//! an agent's daily budget refuses its next spawn with 429 naming the budget; bad questions are
//! refused by field.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fleet::{add, fake, link_daemon, wait_gateway};
use crate::support::{Daemon, metric, online, spawn_finished, wait_for};

const DEADLINE: Duration = Duration::from_secs(20);

fn usage(d: &Daemon, query: &str) -> Value {
    let res = d.get(&format!("/api/usage{query}"), &d.admin_key);
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

/// Runs one agent run on `gateway` to its end.
fn run(d: &Daemon, gateway: i64) {
    let res = d.call(
        "POST",
        "/api/spawn",
        &d.admin_key,
        &json!({"agent": "main", "task": "work", "gateway_id": gateway}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let id = res.json()["spawn_id"].as_str().unwrap().to_owned();
    spawn_finished(d, &id, DEADLINE);
}

/// Waits until the `group_by=gateway` report shows `tokens` for `gateway`.
fn wait_tokens(d: &Daemon, gateway: i64, tokens: i64) -> Value {
    wait_for(
        &format!("{tokens} tokens on gateway {gateway}"),
        DEADLINE,
        || {
            let report = usage(d, "?group_by=gateway");
            let found = report["groups"]
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["gateway_id"] == gateway)
                .cloned();
            match found {
                Some(g) if g["total_tokens"] == tokens => Ok(g),
                _ => Err(format!("{report:#}")),
            }
        },
    )
}

#[test]
fn finished_runs_are_rolled_up_per_gateway_and_agent_and_counted_once() {
    let fakes = [
        fake(|c| c.run_cost_usd = 0.25),
        fake(|c| c.run_cost_usd = 0.25),
    ];
    let d = link_daemon(&[("GATEWAY_SUPERVISOR__USAGE__INTERVAL", "200ms")]);
    let a = add(&d, "a", &fakes[0], Some("fake-token"));
    let b = add(&d, "b", &fakes[1], Some("fake-token"));
    for id in [a, b] {
        wait_gateway(&d, id, "online", online);
    }
    run(&d, a);
    run(&d, a);
    run(&d, b);
    // 100 input + 20 output tokens and $0.25 a run, as the gateways report.
    let on_a = wait_tokens(&d, a, 240);
    assert_eq!(on_a["input_tokens"], 200);
    assert_eq!(on_a["cost_usd"], 0.5);
    wait_tokens(&d, b, 120);
    let by_agent = usage(&d, "?group_by=agent");
    assert_eq!(
        by_agent["groups"],
        json!([{"agent_id": "main", "input_tokens": 300, "output_tokens": 60,
                "cache_read_tokens": 0, "cache_write_tokens": 0, "total_tokens": 360, "cost_usd": 0.75}])
    );
    assert_eq!(by_agent["totals"]["total_tokens"], 360);
    let by_day = usage(&d, "?group_by=day");
    assert_eq!(by_day["groups"].as_array().unwrap().len(), 1, "{by_day:#}");

    // One more run: the counters grow by it alone, however many rounds read the same day.
    run(&d, a);
    wait_tokens(&d, a, 360);
    wait_for("the counters", DEADLINE, || {
        let input = metric(
            &d,
            &format!("usage_tokens_total{{gateway_id=\"{a}\",kind=\"input\"}}"),
        );
        let cost = metric(&d, &format!("usage_cost_usd_total{{gateway_id=\"{a}\"}}"));
        if input == 300.0 && (cost - 0.75).abs() < 1e-9 {
            Ok(())
        } else {
            Err(format!("input {input}, cost {cost}"))
        }
    });
}

#[test]
fn an_agent_over_its_daily_budget_is_refused_new_spawns() {
    let f = fake(|c| c.run_cost_usd = 0.25);
    let d = link_daemon(&[
        ("GATEWAY_SUPERVISOR__USAGE__INTERVAL", "200ms"),
        ("GATEWAY_SUPERVISOR__USAGE__BUDGETS__MAIN__DAILY_USD", "0.5"),
    ]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    run(&d, id);
    run(&d, id);
    wait_tokens(&d, id, 240);
    let res = d.call(
        "POST",
        "/api/spawn",
        &d.admin_key,
        &json!({"agent": "main", "task": "one more", "gateway_id": id}),
    );
    assert_eq!(res.status, 429, "{}", res.text());
    let body = res.json();
    assert_eq!(body["error"], "budget_exceeded");
    assert_eq!(body["details"]["budget"], "usage.budgets.main.daily_usd");
    assert_eq!(body["details"]["spent_usd"], 0.5);
    assert!(
        body["message"].as_str().unwrap().contains("$0.50 of $0.50"),
        "{body}"
    );
    assert_eq!(f.runs_started(), 2, "nothing was started");
}

#[test]
fn usage_questions_are_checked() {
    let d = link_daemon(&[]);
    for (query, field) in [
        ("?since=2026-13-45", "since"),
        ("?since=yesterday", "since"),
        ("?since=", "since"),
        ("?group_by=model", "group_by"),
    ] {
        let res = d.get(&format!("/api/usage{query}"), &d.admin_key);
        assert_eq!(res.status, 400, "{query}: {}", res.text());
        assert_eq!(res.json()["details"]["field"], field, "{query}");
    }
    // Each a day, together contradictory.
    for query in [
        "?since=2026-11-23&until=2026-11-01",
        "?since=2020-01-01&until=2026-01-01",
    ] {
        let res = d.get(&format!("/api/usage{query}"), &d.admin_key);
        assert_eq!(res.status, 422, "{query}: {}", res.text());
        assert_eq!(res.json()["error"], "unprocessable", "{query}");
    }
    let empty = usage(&d, "?group_by=");
    assert_eq!(empty["groups"], json!([]));
    assert_eq!(empty["totals"]["total_tokens"], 0);
}

/// A finished run's tokens and cost show up within seconds, not at the next
/// `usage.interval` (the Usage page stayed empty after two completed runs at the default 5 m).
#[test]
fn a_finished_run_is_read_soon_whatever_the_interval() {
    let f = fake(|c| c.run_cost_usd = 0.25);
    let d = link_daemon(&[("GATEWAY_SUPERVISOR__USAGE__INTERVAL", "1h")]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    run(&d, id);
    run(&d, id);
    let g = wait_tokens(&d, id, 240);
    assert_eq!(g["cost_usd"], 0.5, "{g}");
}
