//! Disruption budgets: every voluntary disruption is checked as it begins — an operation's
//! gateway waits its turn (the fakes, sampled every 50 ms, are never more out of service at
//! once than the budget allows), a suspend or restart through the API is answered 429 with
//! `Retry-After` and the budget's name — and a gateway out for any reason counts against it.

use std::sync::Arc;
use std::time::Duration;

use gs_test_support::outages::OutageSampler;

use serde_json::{Value, json};

use crate::support::fleet::{fleet_of, link_daemon, start, steps_of, wait_gateway, wait_operation};
use crate::support::{Daemon, wait_for};

fn put_budget(d: &Daemon, name: &str, body: &Value) -> crate::support::Response {
    d.call("PUT", &format!("/api/budgets/{name}"), &d.admin_key, body)
}

#[test]
fn a_rolling_restart_takes_out_no_more_gateways_than_the_budget_allows() {
    let d = link_daemon(&[]);
    let (fakes, ids) = fleet_of(3, &d, |_, c| {
        c.restart_down = Some(Duration::from_millis(600))
    });
    let res = put_budget(
        &d,
        "one-at-a-time",
        &json!({"selector": "", "max_unavailable": 1}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let fakes = Arc::new(fakes);
    let f = fakes.clone();
    let mut sampler = OutageSampler::start(f.len(), Duration::from_millis(50), move |i| {
        f[i].out_of_service()
    });
    let op = start(
        &d,
        "/api/fleet/restart",
        &json!({"gateway_ids": ids, "max_unavailable": 3, "wait_ready_seconds": 30}),
    );
    let waited = wait_operation(&d, &op, "a gateway waiting for the budget", |op| {
        op["gateways"].as_array().unwrap().iter().any(|g| {
            g["detail"]
                .as_str()
                .is_some_and(|t| t.contains("disruption budget `one-at-a-time`"))
        })
    });
    assert!(steps_of(&waited).contains(&"admitted"), "{waited:#}");
    let done = wait_operation(&d, &op, "the restart over", |op| op["state"] != "running");
    assert_eq!(done["state"], "succeeded", "{done:#}");
    assert_eq!(
        sampler.most_at_once(),
        1,
        "never more than one gateway out at once"
    );
    let budgets = d.get("/api/budgets", &d.admin_key).json();
    assert_eq!(budgets["budgets"][0]["covered"], 3, "{budgets:#}");
}

#[test]
fn a_suspend_that_would_break_a_budget_is_refused_429_naming_it_and_an_outage_counts() {
    let d = link_daemon(&[]);
    let (fakes, ids) = fleet_of(3, &d, |_, _| {});
    let res = put_budget(
        &d,
        "keep-two",
        &json!({"selector": "", "min_available": 2, "note": "two serve"}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    // The budget reads the gateways' stored state, written a moment after they connect.
    wait_for(
        "every gateway counted in service",
        Duration::from_secs(20),
        || {
            let b = d.get("/api/budgets/keep-two", &d.admin_key).json();
            if b["budget"]["available"] == 3 {
                Ok(())
            } else {
                Err(format!("{b:#}"))
            }
        },
    );
    let suspend = |id: i64| {
        d.send(
            crate::support::Request::new("POST", &format!("/api/gateways/{id}/suspend"))
                .key(&d.admin_key),
        )
    };
    let res = suspend(ids[0]);
    assert_eq!(res.status, 200, "{}", res.text());
    let refused = suspend(ids[1]);
    assert_eq!(refused.status, 429, "{}", refused.text());
    let body = refused.json();
    assert_eq!(body["error"], "disruption_budget");
    assert_eq!(body["details"]["budget"], "keep-two");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("at least 2 must be"),
        "{body}"
    );
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    assert!(!fakes[1].suspended(), "nothing was asked of the gateway");

    let res = d.send(
        crate::support::Request::new("POST", &format!("/api/gateways/{}/resume", ids[0]))
            .key(&d.admin_key),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    // An outage counts: with one gateway down, the restart of another is refused.
    fakes[2].stop();
    wait_gateway(&d, ids[2], "offline", |g| g["status"] != "online");
    wait_for(
        "the budget to see the outage",
        Duration::from_secs(20),
        || {
            let b = d.get("/api/budgets/keep-two", &d.admin_key).json();
            if b["budget"]["unavailable"] == json!([ids[2]]) {
                Ok(b)
            } else {
                Err(format!("{b:#}"))
            }
        },
    );
    let res = d.send(
        crate::support::Request::new("POST", &format!("/api/gateways/{}/restart", ids[1]))
            .key(&d.admin_key),
    );
    assert_eq!(res.status, 429, "{}", res.text());
    let b = d.get("/api/budgets/keep-two", &d.admin_key).json();
    assert_eq!(b["budget"]["disruptions_allowed"], 0, "{b:#}");
    assert_eq!(b["budget"]["available"], 2);
}

#[test]
fn a_budget_is_one_limit_over_a_selector_and_a_missing_one_is_named() {
    let d = link_daemon(&[]);
    let cases = [
        (json!({"selector": ""}), "max_unavailable"),
        (
            json!({"selector": "", "max_unavailable": 1, "min_available": 1}),
            "min_available",
        ),
        (
            json!({"selector": "region in (eu", "max_unavailable": 1}),
            "selector",
        ),
        (
            json!({"selector": "", "max_unavailable": 1, "note": "a\u{7}b"}),
            "note",
        ),
    ];
    for (body, field) in cases {
        let res = put_budget(&d, "b", &body);
        assert_eq!(res.status, 400, "{body}: {}", res.text());
        assert_eq!(res.json()["details"]["field"], field, "{body}");
    }
    let res = put_budget(
        &d,
        "Bad_Name",
        &json!({"selector": "", "max_unavailable": 1}),
    );
    assert_eq!(res.json()["details"]["field"], "name");
    let res = d.get("/api/budgets/none", &d.admin_key);
    assert_eq!(res.status, 404);
    assert_eq!(res.json()["error"], "budget_not_found");
    assert_eq!(
        put_budget(
            &d,
            "b",
            &json!({"selector": "tier=edge", "max_unavailable": 2})
        )
        .status,
        201
    );
    assert_eq!(
        put_budget(
            &d,
            "b",
            &json!({"selector": "tier=edge", "max_unavailable": 1})
        )
        .status,
        200
    );
    let res = d.call("DELETE", "/api/budgets/b", &d.admin_key, &json!({}));
    assert_eq!(res.status, 200, "{}", res.text());
    let actions = crate::support::fleet::audit_actions(&d);
    assert!(
        actions.contains(&"budget.put".to_owned()) && actions.contains(&"budget.delete".to_owned())
    );
}

#[test]
fn a_budget_that_can_never_be_met_is_refused_and_a_loose_one_allows_only_what_is_in_service() {
    let d = link_daemon(&[]);
    let (_fakes, _ids) = crate::support::fleet::fleet_of(2, &d, |_, _| {});
    let res = put_budget(&d, "floor", &json!({"selector": "", "min_available": 3}));
    assert_eq!(res.status, 400, "{}", res.text());
    let e = res.json();
    assert_eq!(e["details"]["field"], "min_available", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("min_available 3 is more than the 2 gateway(s) the selector picks"),
        "{e}"
    );
    assert_eq!(
        d.get("/api/budgets", &d.admin_key).json()["budgets"],
        json!([])
    );
    let res = put_budget(&d, "loose", &json!({"selector": "", "max_unavailable": 10}));
    assert_eq!(res.status, 201, "{}", res.text());
    // Both in service as stored (a link's status is written a moment after it connects).
    let b = wait_for("both in service", Duration::from_secs(20), || {
        let b = d.get("/api/budgets/loose", &d.admin_key).json()["budget"].clone();
        if b["available"] == 2 {
            Ok(b)
        } else {
            Err(b.to_string())
        }
    });
    assert_eq!(b["covered"], 2, "{b}");
    assert_eq!(b["max_unavailable"], 10, "as given: {b}");
    assert_eq!(
        b["disruptions_allowed"], 2,
        "no more than are in service: {b}"
    );
}
