//! Spend budgets (docs/design.md, *Spend*): a key's budget admits exactly as many concurrent
//! runs as its estimates fit — the check and the reservation are one transaction — refusing
//! the rest with 429 `budget_exceeded`, `Retry-After` at the reset and the budget's name; a run
//! is settled at what its gateway says it cost; a tenant's budget counts every key's runs on
//! its gateways.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fleet::{add, fake, link_daemon, wait_gateway};
use crate::support::{Daemon, Response, online, spawn_finished, wait_for};

/// The id `keys list` shows for the key named `name`.
pub fn key_id(d: &Daemon, name: &str) -> i64 {
    let out = d.cli(&["keys", "list"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.split_whitespace().last() == Some(name))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no key `{name}`"))
}

fn put_budget(d: &Daemon, subject: &str, body: Value) -> Response {
    d.call(
        "PUT",
        &format!("/api/spend/budgets/{subject}"),
        &d.admin_key,
        &body,
    )
}

fn budget(d: &Daemon, subject: &str) -> Value {
    let res = d.get(&format!("/api/spend/budgets/{subject}"), &d.admin_key);
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["budget"].clone()
}

/// `n` spawns of `task` sent at once with `key`: the answers. The key is used once first, so
/// that it is in the daemon's key cache (a burst of a key the cache does not know yet meets
/// the store lookups' rate limit, by design).
pub fn burst(d: &Daemon, key: &str, n: usize, task: &str) -> Vec<Response> {
    assert_eq!(d.get("/api/spawn?limit=1", key).status, 200);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| {
                    d.call(
                        "POST",
                        "/api/spawn",
                        key,
                        &json!({"agent": "main", "task": task}),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Checks a burst's answers: `admitted` 202s, the rest 429 `budget_exceeded` naming `subject`
/// with a `Retry-After` at most a window (a month) away.
pub fn exactly(answers: &[Response], admitted: usize, subject: &str) {
    let ok = answers.iter().filter(|r| r.status == 202).count();
    assert_eq!(
        ok,
        admitted,
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for r in answers.iter().filter(|r| r.status != 202) {
        assert_eq!(r.status, 429, "{}", r.text());
        let body = r.json();
        assert_eq!(body["error"], "budget_exceeded", "{body}");
        assert_eq!(body["details"]["budget"], subject, "{body}");
        assert_eq!(body["details"]["limit"], "max_spend_usd", "{body}");
        let after: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=31 * 86_400).contains(&after), "{after}");
        // The reset, give or take the second between the answer and this reading.
        let reset = body["details"]["resets_at"].as_u64().unwrap();
        assert!(
            reset.abs_diff(now() + after) <= 2,
            "Retry-After is the reset: {body}"
        );
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn fifty_concurrent_spawns_on_a_budget_of_three_estimates_admit_exactly_three() {
    let d = link_daemon(&[]);
    let f = fake(|_| {});
    let id = add(&d, "edge", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    let key = d.create_key("operator", "spender");
    let subject = format!("key:{}", key_id(&d, "spender"));
    let res = put_budget(
        &d,
        &subject,
        json!({"window": "1d", "max_spend_usd": 3.0, "estimate_usd": 1.0}),
    );
    assert_eq!(res.status, 200, "{}", res.text());

    // Runs that last an hour: every reservation is still held when the last request comes.
    let answers = burst(&d, &key, 50, "SLOW work");
    exactly(&answers, 3, &subject);
    let b = budget(&d, &subject);
    assert_eq!(
        (
            b["reserved_usd"].as_f64(),
            b["running"].as_i64(),
            b["runs"].as_i64()
        ),
        (Some(3.0), Some(3), Some(3)),
        "{b:#}"
    );
    // Another key, no budget: not held back by this one.
    let other = d.create_key("operator", "free");
    assert_eq!(
        burst(&d, &other, 2, "SLOW other")
            .iter()
            .filter(|r| r.status == 202)
            .count(),
        2
    );
}

#[test]
fn a_run_is_settled_at_what_its_gateway_says_it_cost_and_a_tenant_counts_every_key() {
    let d = link_daemon(&[]);
    let f = fake(|c| {
        c.run_cost_usd = 0.25;
        c.run_duration = Duration::from_millis(100);
    });
    let id = add(&d, "edge", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    let key = d.create_key("operator", "settler");
    let subject = format!("key:{}", key_id(&d, "settler"));
    assert_eq!(
        put_budget(
            &d,
            &subject,
            json!({"window": "month", "time_zone": "Europe/Paris", "max_spend_usd": 1.0,
                   "estimate_usd": 0.5, "max_parallel_runs": 2}),
        )
        .status,
        200
    );
    let res = d.call(
        "POST",
        "/api/spawn",
        &key,
        &json!({"agent": "main", "task": "quick"}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    spawn_finished(
        &d,
        res.json()["spawn_id"].as_str().unwrap(),
        Duration::from_secs(20),
    );
    // The gateway's own number, not the estimate.
    let b = wait_for("the run settled", Duration::from_secs(20), || {
        let b = budget(&d, &subject);
        if b["running"] == 0 && b["spent_usd"].as_f64() == Some(0.25) {
            Ok(b)
        } else {
            Err(format!("{b}"))
        }
    });
    assert_eq!(b["reserved_usd"].as_f64(), Some(0.0), "{b:#}");
    // Cost per key: the run's cost is the key's, in its tenant.
    let report = d
        .get("/api/usage/spend?group_by=key,tenant", &d.admin_key)
        .json();
    let key_id: i64 = subject["key:".len()..].parse().unwrap();
    assert_eq!(
        report["groups"],
        json!([{"key_id": key_id, "tenant": "default", "cost_usd": 0.25, "runs": 1, "estimated_runs": 0}]),
        "{report:#}"
    );
    // By tenant on /metrics: the settled dollars and the admissions.
    let metrics = d.get("/metrics", "").text();
    assert!(
        metrics
            .contains("gateway_supervisor_spend_settled_cost_usd_total{tenant=\"default\"} 0.25"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "gateway_supervisor_spend_admissions_total{outcome=\"admitted\",tenant=\"default\"} 1"
        ),
        "{metrics}"
    );
    let res = d.get("/api/usage/spend?group_by=team", &d.admin_key);
    assert_eq!(res.status, 400, "{}", res.text());
    // 0.25 spent leaves room for one more estimate of 0.5, not two.
    let answers = burst(&d, &key, 4, "SLOW more");
    exactly(&answers, 1, &subject);

    // A tenant's budget counts every key's runs on its gateways: the platform's own too.
    assert_eq!(
        put_budget(
            &d,
            "tenant:default",
            json!({"window": "1d", "max_spend_usd": 0.3, "estimate_usd": 0.3}),
        )
        .status,
        200
    );
    let res = d.call(
        "POST",
        "/api/spawn",
        &d.admin_key,
        &json!({"agent": "main", "task": "SLOW admin"}),
    );
    assert_eq!(res.status, 429, "{}", res.text());
    assert_eq!(
        res.json()["details"]["budget"],
        "tenant:default",
        "{}",
        res.text()
    );

    // Bad budgets are named.
    for (subject, body, field) in [
        (
            "team:x",
            json!({"window": "1d", "estimate_usd": 1.0}),
            "subject",
        ),
        (
            &subject[..],
            json!({"window": "1d", "max_spend_usd": 1.0, "estimate_usd": 0.0}),
            "estimate_usd",
        ),
        (
            &subject[..],
            json!({"window": "1d", "estimate_usd": 1.0, "time_zone": "Mars/Base"}),
            "time_zone",
        ),
    ] {
        let res = put_budget(&d, subject, body);
        assert_eq!(res.status, 400, "{subject}: {}", res.text());
        assert_eq!(res.json()["details"]["field"], field, "{}", res.text());
    }
    let res = put_budget(&d, "key:999", json!({"window": "1d", "estimate_usd": 1.0}));
    assert_eq!(res.status, 404, "{}", res.text());
    assert_eq!(res.json()["error"], "key_not_found");
    let res = d.call(
        "PUT",
        "/api/spend/budgets/key:1",
        &d.admin_key,
        &json!({"window": "2d", "estimate_usd": 1.0}),
    );
    assert_eq!(res.status, 400, "{}", res.text());
}

#[test]
fn crossing_a_soft_limit_is_an_event_and_one_signed_alert() {
    let (url, got) = crate::support::webhook::receiver();
    let d = link_daemon(&[
        ("GATEWAY_SUPERVISOR__ALERTS__WEBHOOK_URL", url.as_str()),
        (
            "GATEWAY_SUPERVISOR__ALERTS__SECRET",
            "webhook-secret-0123456789",
        ),
        ("GATEWAY_SUPERVISOR__ALERTS__OFFLINE_AFTER", "1s"),
    ]);
    let f = fake(|_| {});
    let id = add(&d, "edge", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    // The alerts are sent by the instance that decides (in a cluster, on PostgreSQL, once it
    // holds the coordinator's lease): a gateway that never answers is alerted once it does.
    let res = d.call(
        "POST",
        "/api/gateways",
        &d.admin_key,
        &json!({"name": "nobody", "host": "127.0.0.1", "port": 9}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    crate::support::wait_until("the alerts sent", Duration::from_secs(30), || {
        let a = crate::support::webhook::delivered(&got);
        (crate::support::webhook::count(&a, "gateway_offline", "firing") > 0).then_some(())
    });
    let mut events = crate::support::open_ws(
        d.addr,
        &d.admin_key,
        "?types=spend.soft_limit",
        Duration::from_secs(10),
    );
    let res = put_budget(
        &d,
        "tenant:default",
        json!({"window": "1d", "soft_spend_usd": 1.5, "estimate_usd": 1.0}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    // 1.0 held, then 2.0: the second run crosses 1.5, the third does not say it again.
    let answers = burst(&d, &d.admin_key, 1, "SLOW one");
    assert_eq!(answers[0].status, 202);
    for _ in 0..2 {
        assert_eq!(burst(&d, &d.admin_key, 1, "SLOW more")[0].status, 202);
    }
    let event = crate::support::wait_until("the soft-limit event", Duration::from_secs(10), || {
        let tungstenite::Message::Text(t) = events.read().ok()? else {
            return None;
        };
        serde_json::from_str::<Value>(&t).ok()
    });
    assert_eq!(event["type"], "spend.soft_limit", "{event}");
    assert_eq!(event["payload"]["budget"], "tenant:default", "{event}");
    let alerts = crate::support::wait_until("the alert", Duration::from_secs(10), || {
        let a = crate::support::webhook::delivered(&got);
        (crate::support::webhook::count(&a, "spend_soft_limit", "firing") > 0).then_some(a)
    });
    assert_eq!(
        crate::support::webhook::count(&alerts, "spend_soft_limit", "firing"),
        1,
        "said once: {alerts:#?}"
    );
    let signed = got.lock().unwrap().iter().any(|r| {
        r.json()["kind"] == "spend_soft_limit"
            && r.header("x-gateway-supervisor-signature").is_some()
    });
    assert!(signed, "the alert is signed");
}
