//! Declared cron jobs against fake gateways answering `cron.add`, `cron.get` and `cron.remove`
//! as 2026.9.6 does: a job declared by selector lands on every gateway it picks (one job per
//! gateway however often it is written: the declaration's key), drift by value is shown, a
//! gateway that stops matching loses it, a refusal stops the rollout at the canary with the
//! gateway's words and nothing else written, and a single-firing job is enabled on one
//! gateway and moves when that gateway goes.

use std::time::Duration;

use fake_gateway::FakeGateway;
use serde_json::{Value, json};

use crate::support::fleet::{audit_actions, fake, link_daemon, wait_gateway, wait_operation};
use crate::support::{Daemon, online, wait_until};

const DEADLINE: Duration = Duration::from_secs(30);

fn daemon() -> Daemon {
    link_daemon(&[
        ("GATEWAY_SUPERVISOR__CRON__SWEEP_INTERVAL", "10s"),
        ("GATEWAY_SUPERVISOR__CRON__WATCH_INTERVAL", "1s"),
    ])
}

fn linked(d: &Daemon, name: &str, f: &FakeGateway, labels: Value) -> i64 {
    let body = json!({"name": name, "host": "127.0.0.1", "port": f.port(),
        "token": "fake-token", "labels": labels});
    let res = d.call("POST", "/api/gateways", &d.admin_key, &body);
    assert_eq!(res.status, 201, "{}", res.text());
    let id = res.json()["gateway"]["id"].as_i64().unwrap();
    wait_gateway(d, id, "online", online);
    id
}

fn job(expr: &str) -> Value {
    json!({"name": "nightly-report", "schedule": {"kind": "cron", "expr": expr, "tz": "Europe/Oslo"},
        "sessionTarget": "isolated", "payload": {"kind": "agentTurn", "message": "write the report"},
        "delivery": {"mode": "none"}})
}

fn declare(d: &Daemon, name: &str, body: &Value) -> crate::support::Response {
    d.call(
        "PUT",
        &format!("/api/cron/declarations/{name}"),
        &d.admin_key,
        body,
    )
}

/// Declares and waits for the rollout to end; the operation.
fn declared(d: &Daemon, name: &str, body: &Value) -> Value {
    let res = declare(d, name, body);
    assert_eq!(res.status, 202, "{}", res.text());
    let id = res.json()["operation"]["id"].as_str().unwrap().to_owned();
    wait_operation(d, &id, "the declaration's rollout over", |op| {
        !["running", "cancelling"].contains(&op["state"].as_str().unwrap_or(""))
    })
}

/// The gateway's jobs carrying declaration key `key`.
fn carried(f: &FakeGateway, key: &str) -> Vec<Value> {
    let list = f
        .cron("cron.list", json!({"includeDisabled": true, "limit": 200}))
        .unwrap();
    list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["declarationKey"] == key)
        .cloned()
        .collect()
}

fn view(d: &Daemon, name: &str) -> Value {
    let res = d.get(&format!("/api/cron/declarations/{name}"), &d.admin_key);
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

#[test]
fn a_declared_job_lands_on_every_picked_gateway_once_shows_drift_and_follows_the_selector() {
    let d = daemon();
    let (a, b, c) = (fake(|_| {}), fake(|_| {}), fake(|_| {}));
    let ga = linked(&d, "decl-a", &a, json!({"team": "payments"}));
    let gb = linked(&d, "decl-b", &b, json!({"team": "payments"}));
    let gc = linked(&d, "decl-c", &c, json!({"team": "search"}));
    let body = json!({"selector": "team=payments", "job": job("0 3 * * *")});
    let op = declared(&d, "nightly", &body);
    assert_eq!(op["state"], "succeeded", "{op:#}");
    assert_eq!(op["kind"], "cron_declaration");
    for f in [&a, &b] {
        let jobs = carried(f, "gs:nightly");
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert_eq!(jobs[0]["enabled"], true);
        assert_eq!(jobs[0]["schedule"]["expr"], "0 3 * * *");
        assert_eq!(jobs[0]["payload"]["message"], "write the report");
    }
    assert!(carried(&c, "gs:nightly").is_empty(), "not picked");

    // Written again with another schedule: the same job updated, still one per gateway.
    let op = declared(
        &d,
        "nightly",
        &json!({"selector": "team=payments", "job": job("0 4 * * *")}),
    );
    assert_eq!(op["state"], "succeeded", "{op:#}");
    let jobs = carried(&a, "gs:nightly");
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["schedule"]["expr"], "0 4 * * *");
    let v = view(&d, "nightly");
    assert_eq!(v["revision"], 2);
    assert_eq!(v["drifted"], 0, "{v:#}");
    // The same from a terminal.
    let table = crate::support::admin_ctl(&d, &["cron", "declarations"]);
    let row = table
        .lines()
        .find(|l| l.starts_with("nightly"))
        .unwrap_or_default();
    for part in [
        "team=payments",
        "cron 0 4 * * * Europe/Oslo",
        "every one",
        " 2 ",
        "in sync",
    ] {
        assert!(row.contains(part), "{part}: {table}");
    }

    // Edited on gateway b by hand: drift by value, on the field that differs.
    let id = jobs_of(&b)[0]["id"].as_str().unwrap().to_owned();
    b.cron(
        "cron.update",
        json!({"id": id, "patch": {"payload": {"kind": "agentTurn", "message": "something else"}}}),
    )
    .unwrap();
    let drifted = wait_until("b's drift", DEADLINE, || {
        let v = view(&d, "nightly");
        let g = v["gateways"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["gateway_id"] == gb)
            .cloned()?;
        (g["drift"] != json!([])).then_some(g)
    });
    assert_eq!(
        drifted["drift"],
        json!(["job.payload.message"]),
        "{drifted:#}"
    );

    // Gateway a leaves the selector and c joins it: the keeper removes and writes.
    let relabel = |id: i64, team: &str| {
        let res = d.call(
            "PATCH",
            &format!("/api/gateways/{id}/labels"),
            &d.admin_key,
            &json!({"team": team}),
        );
        assert_eq!(res.status, 200, "{}", res.text());
    };
    relabel(ga, "search");
    relabel(gc, "payments");
    wait_until("the job off a and on c", DEADLINE, || {
        (carried(&a, "gs:nightly").is_empty() && carried(&c, "gs:nightly").len() == 1).then_some(())
    });
    wait_until("the removal audited", DEADLINE, || {
        let actions = audit_actions(&d);
        // Newest first: the keeper's removal and write after the relabelling.
        let relabelled = actions.iter().position(|a| a == "gateway.labels")?;
        let since = &actions[..relabelled];
        (since.iter().any(|a| a == "cron.declaration.remove")
            && since.iter().any(|a| a == "cron.declaration.write"))
        .then_some(())
    });

    // Deleted: removed from every gateway that carries it.
    // Refused (409) while the keeper's own writes still hold a gateway.
    wait_until("the delete taken", DEADLINE, || {
        let res = d.call(
            "DELETE",
            "/api/cron/declarations/nightly",
            &d.admin_key,
            &json!(null),
        );
        assert!([202, 409].contains(&res.status), "{}", res.text());
        (res.status == 202).then_some(())
    });
    wait_until("the job off every gateway", DEADLINE, || {
        [&a, &b, &c]
            .iter()
            .all(|f| carried(f, "gs:nightly").is_empty())
            .then_some(())
    });
    let res = d.get("/api/cron/declarations/nightly", &d.admin_key);
    assert_eq!(res.status, 404, "{}", res.text());
    assert_eq!(res.json()["error"], "cron_declaration_not_found");
}

fn jobs_of(f: &FakeGateway) -> Vec<Value> {
    carried(f, "gs:nightly")
}

#[test]
fn bad_fields_are_named_and_a_refusal_stops_at_the_canary_with_nothing_else_written() {
    let d = daemon();
    let (a, b) = (fake(|_| {}), fake(|_| {}));
    linked(&d, "refuse-a", &a, json!({"team": "x"}));
    linked(&d, "refuse-b", &b, json!({"team": "x"}));
    for (body, field) in [
        (
            json!({"selector": "team=x", "job": job("61 * * * *")}),
            "job.schedule.expr",
        ),
        (
            json!({"selector": "team=x", "job": {"name": "n", "payload": {"kind": "agentTurn", "message": "m"},
                "schedule": {"kind": "cron", "expr": "0 3 * * *", "tz": "Mars/Olympus"}}}),
            "job.schedule.tz",
        ),
        (
            json!({"selector": "team=x", "job": job("0 3 * * *"), "move": "gap"}),
            "move",
        ),
        (
            json!({"selector": "team=x", "job": job("0 3 * * *"), "max_parallel": 0}),
            "max_parallel",
        ),
    ] {
        let res = declare(&d, "bad", &body);
        assert_eq!(res.status, 400, "{}", res.text());
        assert_eq!(res.json()["details"]["field"], field, "{}", res.text());
    }
    let res = declare(
        &d,
        "Bad Name",
        &json!({"selector": "", "job": job("0 3 * * *")}),
    );
    assert_eq!(res.status, 400, "{}", res.text());

    // A field the daemon passes and the gateway refuses (2026.9.6: a blank delivery channel).
    let mut refused = job("0 3 * * *");
    refused["delivery"] = json!({"mode": "announce", "channel": " "});
    let op = declared(
        &d,
        "refused",
        &json!({"selector": "team=x", "job": refused, "max_parallel": 2}),
    );
    assert_eq!(op["state"], "failed", "{op:#}");
    let steps: Vec<(&str, &str)> = op["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["step"].as_str().unwrap(),
                g["detail"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        steps[0].0 == "failed"
            && steps[0]
                .1
                .contains("delivery.channel must be a non-empty string"),
        "the canary fails with the gateway's words: {steps:?}"
    );
    assert_eq!(steps[1].0, "skipped", "{steps:?}");
    assert!(carried(&a, "gs:refused").is_empty() && carried(&b, "gs:refused").is_empty());
    let v = view(&d, "refused");
    assert_eq!(v["drifted"], 1, "the refusal is shown: {v:#}");
    assert!(
        v["gateways"][0]["error"]
            .as_str()
            .unwrap()
            .contains("delivery.channel"),
        "{v:#}"
    );
}

#[test]
fn a_single_firing_job_is_enabled_on_one_gateway_and_moves_when_it_goes() {
    let d = daemon();
    let (a, b) = (fake(|_| {}), fake(|_| {}));
    let ga = linked(&d, "single-a", &a, json!({"group": "g"}));
    let gb = linked(&d, "single-b", &b, json!({"group": "g"}));
    let op = declared(
        &d,
        "once",
        &json!({"selector": "group=g", "job": job("*/5 * * * *"), "single": true}),
    );
    assert_eq!(op["state"], "succeeded", "{op:#}");
    let owner = view(&d, "once")["owner_gateway_id"].as_i64().unwrap();
    let (on, off, off_id) = if owner == ga {
        (&a, &b, gb)
    } else {
        (&b, &a, ga)
    };
    assert_eq!(carried(on, "gs:once")[0]["enabled"], true);
    assert_eq!(carried(off, "gs:once")[0]["enabled"], false);

    // The gateway firing it stops: the job is enabled on the other within seconds.
    on.stop();
    wait_until("the job enabled on the other gateway", DEADLINE, || {
        (carried(off, "gs:once").first()?["enabled"] == true).then_some(())
    });
    assert_eq!(view(&d, "once")["owner_gateway_id"], off_id);
}
