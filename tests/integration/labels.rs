//! Labels and selectors end to end: labels set on create, replaced by update and merged by
//! `PATCH …/labels` (audited, announced, in `gateway_info`); one selector language picks
//! gateways for the list, spawns (`selector` required, `prefer_selector` preferred), fleet
//! operations and the approvals inbox; every bad label or selector is a 400 naming it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fleet::{
    audit_actions, fake, link_daemon, start, steps_of, wait_gateway, wait_operation,
};
use crate::support::{Daemon, online, wait_until};

fn add_labelled(d: &Daemon, name: &str, port: u16, labels: Value) -> i64 {
    let body = json!({"name": name, "host": "127.0.0.1", "port": port, "token": "fake-token", "labels": labels});
    let res = d.call("POST", "/api/gateways", &d.admin_key, &body);
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["gateway"]["labels"], labels);
    res.json()["gateway"]["id"].as_i64().unwrap()
}

fn names(d: &Daemon, query: &str) -> Vec<String> {
    crate::support::fleet::gateway_names(d, query)
}

fn patch_labels(d: &Daemon, id: i64, body: &Value) -> crate::support::Response {
    d.call(
        "PATCH",
        &format!("/api/gateways/{id}/labels"),
        &d.admin_key,
        body,
    )
}

#[test]
fn labels_are_set_merged_shown_audited_and_every_bad_one_is_named() {
    let d = link_daemon(&[]);
    let f = fake(|_| {});
    let id = add_labelled(
        &d,
        "oslo",
        f.port(),
        json!({"region": "eu", "tier": "canary"}),
    );
    let mut events = crate::support::open_ws(
        d.addr,
        &d.admin_key,
        "?types=gateway.changed",
        Duration::from_secs(10),
    );

    let res = patch_labels(&d, id, &json!({"tier": null, "example.com/team": "ops"}));
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.json()["gateway"]["labels"],
        json!({"region": "eu", "example.com/team": "ops"})
    );
    let event = wait_until("the labels event", Duration::from_secs(10), || {
        let tungstenite::Message::Text(t) = events.read().ok()? else {
            return None;
        };
        let frame: Value = serde_json::from_str(&t).ok()?;
        (frame["payload"]["action"] == "labels").then_some(frame)
    });
    assert_eq!(event["type"], "gateway.changed", "{event:#}");
    assert_eq!(event["payload"]["labels"]["region"], "eu", "{event:#}");
    assert!(audit_actions(&d).iter().any(|a| a == "gateway.labels"));

    // A full replacement through update; `{}` clears them.
    let res = d.call(
        "PUT",
        &format!("/api/gateways/{id}"),
        &d.admin_key,
        &json!({"labels": {"zone": "a"}}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["gateway"]["labels"], json!({"zone": "a"}));

    wait_gateway(&d, id, "online", online);
    let metrics = d.get("/metrics", "").text();
    assert!(
        metrics.contains("labels=\"zone=a\""),
        "gateway_info carries them"
    );

    // Every bad one: 400, naming `labels` and the offending key or value.
    for (body, says) in [
        (json!({"bad key": "x"}), "label key `bad key`"),
        (json!({"region": "e u"}), "value `e u`"),
        (json!({"-x": null}), "label key `-x`"),
        (json!({}), "nothing to change"),
    ] {
        let res = patch_labels(&d, id, &body);
        assert_eq!(res.status, 400, "{body}: {}", res.text());
        assert_eq!(res.json()["details"]["field"], "labels", "{}", res.text());
        assert!(
            res.json()["message"].as_str().unwrap().contains(says),
            "{}",
            res.text()
        );
    }
    let many: serde_json::Map<String, Value> =
        (0..70).map(|i| (format!("k{i}"), json!("v"))).collect();
    let res = patch_labels(&d, id, &Value::Object(many));
    assert_eq!(res.status, 400);
    assert!(res.text().contains("at most 64 labels"), "{}", res.text());
    let res = d.call(
        "POST",
        "/api/gateways",
        &d.admin_key,
        &json!({"name": "x", "host": "127.0.0.1", "port": 1, "labels": {"a": "b c"}}),
    );
    assert_eq!(res.status, 400, "{}", res.text());
    assert_eq!(res.json()["details"]["field"], "labels");
    assert_eq!(patch_labels(&d, 999, &json!({"a": "b"})).status, 404);
    let operator = d.create_key("operator", "op");
    let res = d.call(
        "PATCH",
        &format!("/api/gateways/{id}/labels"),
        &operator,
        &json!({"a": "b"}),
    );
    assert_eq!(res.status, 403, "labels steer spawns: admin only");
    // Stored: a restart reads them back.
    let mut d = d;
    d.restart();
    assert_eq!(
        crate::support::fleet::gateway(&d, id)["labels"],
        json!({"zone": "a"})
    );
}

#[test]
fn one_selector_language_picks_gateways_for_the_list_spawns_and_operations() {
    let d = link_daemon(&[]);
    let fakes: Vec<_> = (0..3).map(|_| fake(|_| {})).collect();
    let us = add_labelled(&d, "us-1", fakes[0].port(), json!({"region": "us"}));
    let eu1 = add_labelled(
        &d,
        "eu-1",
        fakes[1].port(),
        json!({"region": "eu", "tier": "canary"}),
    );
    let eu2 = add_labelled(&d, "eu-2", fakes[2].port(), json!({"region": "eu"}));
    for id in [us, eu1, eu2] {
        wait_gateway(&d, id, "online", online);
    }
    wait_gateway(&d, us, "the first gateway is primary", |g| {
        g["acting_primary"] == true
    });

    // The list.
    assert_eq!(names(&d, "selector=region%3Deu"), ["eu-1", "eu-2"]);
    assert_eq!(names(&d, "selector=region%3Deu,tier!%3Dcanary"), ["eu-2"]);
    assert_eq!(names(&d, "selector=tier%20in%20(canary,beta)"), ["eu-1"]);
    assert_eq!(names(&d, "selector=!tier"), ["us-1", "eu-2"]);
    let res = d.get("/api/gateways?selector=region%3D%3D%3Deu", &d.admin_key);
    assert_eq!(res.status, 400, "{}", res.text());
    assert_eq!(res.json()["details"]["field"], "selector");
    assert!(
        res.json()["message"]
            .as_str()
            .unwrap()
            .contains("at character 8"),
        "{}",
        res.text()
    );

    // Spawns: the selector is required (the primary is passed over), the preference preferred.
    let spawn = |body: Value| d.call("POST", "/api/spawn", &d.admin_key, &body);
    let res = spawn(json!({"agent": "main", "task": "t", "selector": "region=eu"}));
    assert_eq!(res.status, 202, "{}", res.text());
    assert!(
        [eu1, eu2].contains(&res.json()["gateway_id"].as_i64().unwrap()),
        "{}",
        res.text()
    );
    let res = spawn(json!({"agent": "main", "task": "t", "prefer_selector": "tier=canary"}));
    assert_eq!(res.json()["gateway_id"], eu1, "{}", res.text());
    let res = spawn(json!({"agent": "main", "task": "t", "prefer_selector": "region=ap"}));
    assert_eq!(
        res.json()["gateway_id"],
        us,
        "an unmet preference falls back: {}",
        res.text()
    );
    let res = spawn(json!({"agent": "main", "task": "t", "selector": "region=ap"}));
    assert_eq!(res.status, 503, "{}", res.text());
    assert!(
        res.text()
            .contains("no gateway's labels are picked by the selector `region=ap`"),
        "{}",
        res.text()
    );
    let res =
        spawn(json!({"agent": "main", "task": "t", "selector": "region=eu", "gateway_id": us}));
    assert_eq!(res.status, 503, "{}", res.text());
    assert!(
        res.text()
            .contains("is not picked by the selector `region=eu` (its labels: `region=us`)"),
        "{}",
        res.text()
    );
    let res = spawn(json!({"agent": "main", "task": "t", "selector": "region="}));
    assert_eq!(res.status, 503, "an empty value is a value: nobody has it");
    let res = spawn(json!({"agent": "main", "task": "t", "prefer_selector": "in (x"}));
    assert_eq!(res.status, 400);
    assert_eq!(
        res.json()["details"]["field"],
        "prefer_selector",
        "{}",
        res.text()
    );

    // A fleet operation over a selector: those gateways, in id order, and no other.
    let op = start(
        &d,
        "/api/fleet/update-hold",
        &json!({"selector": "region=eu"}),
    );
    let op = wait_operation(&d, &op, "the hold done", |op| op["state"] != "running");
    let ids: Vec<i64> = op["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["gateway_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [eu1, eu2], "{op:#}");
    assert_eq!(steps_of(&op).len(), 2);
    let op = start(
        &d,
        "/api/fleet/update-hold",
        &json!({"selector": {"all": true}}),
    );
    assert_eq!(
        wait_operation(&d, &op, "done", |op| op["state"] != "running")["gateways"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    for (body, says) in [
        (json!({"selector": "region=ap"}), "picks no gateway"),
        (json!({"selector": "region in"}), "expected `(`"),
        (json!({"selector": {"all": false}}), "a label selector"),
    ] {
        let res = d.call("POST", "/api/fleet/update-hold", &d.admin_key, &body);
        assert_eq!(res.status, 400, "{body}: {}", res.text());
        assert!(res.text().contains(says), "{body}: {}", res.text());
    }
}

#[test]
fn the_approvals_inbox_is_filtered_by_the_labels_of_the_gateways_that_asked() {
    let d = link_daemon(&[("GATEWAY_SUPERVISOR__APPROVALS__ENABLED", "true")]);
    let (fa, fb) = (fake(|_| {}), fake(|_| {}));
    let a = add_labelled(&d, "eu-1", fa.port(), json!({"region": "eu"}));
    let b = add_labelled(&d, "us-1", fb.port(), json!({"region": "us"}));
    for id in [a, b] {
        wait_gateway(&d, id, "an approval client", |g| {
            online(g) && g["connection"]["approval_client"] == true
        });
    }
    let minute = Duration::from_secs(60);
    let ask_a = fa.request_approval("exec", "printf eu", minute);
    let ask_b = fb.request_approval("exec", "printf us", minute);
    let ids = |query: &str| -> Vec<String> {
        let res = d.get(&format!("/api/approvals?{query}"), &d.admin_key);
        assert_eq!(res.status, 200, "{}", res.text());
        res.json()["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_owned())
            .collect()
    };
    wait_until("both in the inbox", Duration::from_secs(20), || {
        (ids("").len() == 2).then_some(())
    });
    assert_eq!(ids("selector=region%3Deu"), [ask_a]);
    assert_eq!(ids("selector=region!%3Deu"), [ask_b]);
    assert!(ids("selector=region%3Dap").is_empty());
    let res = d.get("/api/approvals?selector=%2C", &d.admin_key);
    assert_eq!(res.status, 400);
    assert_eq!(res.json()["details"]["field"], "selector");
}
