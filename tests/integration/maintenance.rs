//! Maintenance windows: a gateway in maintenance keeps its work, takes no new spawn and does
//! not act as primary (the refusal says why), shows the reason, is counted, and comes out by
//! itself when its window ends — audited as the daemon's; every bad request is named.

use serde_json::json;

use crate::support::fleet::{add, audit_actions, fake, link_daemon, wait_gateway};
use crate::support::{metric, online};

#[test]
fn a_gateway_in_maintenance_takes_nothing_new_says_why_and_comes_out_when_its_window_ends() {
    let (fa, fb) = (fake(|_| {}), fake(|_| {}));
    let d = link_daemon(&[]);
    let a = add(&d, "a", &fa, Some("fake-token"));
    let b = add(&d, "b", &fb, Some("fake-token"));
    wait_gateway(&d, a, "a online and primary", |g| {
        online(g) && g["acting_primary"] == true
    });
    wait_gateway(&d, b, "b online", online);
    let res = d.call(
        "POST",
        &format!("/api/gateways/{a}/maintenance"),
        &d.admin_key,
        &json!({"reason": "disk replacement", "duration_seconds": 3}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let m = &res.json()["gateway"]["maintenance"];
    assert_eq!(m["reason"], "disk replacement");
    assert_eq!(
        m["until"].as_i64().unwrap() - m["since"].as_i64().unwrap(),
        3
    );
    wait_gateway(&d, b, "b acting for a", |g| g["acting_primary"] == true);
    let spawn = |body: serde_json::Value| d.call("POST", "/api/spawn", &d.admin_key, &body);
    assert_eq!(
        spawn(json!({"agent": "main", "task": "t"})).json()["gateway_id"],
        b
    );
    let res = spawn(json!({"agent": "main", "task": "t", "gateway_id": a}));
    assert_eq!(res.status, 503, "{}", res.text());
    assert!(
        res.text()
            .contains("is in maintenance: it takes no new spawns until it is out of maintenance"),
        "{}",
        res.text()
    );
    assert_eq!(metric(&d, "gateways_in_maintenance"), 1.0);
    // The window ends by itself: primary again, audited as the daemon's.
    let g = wait_gateway(&d, a, "out of maintenance", |g| {
        g["maintenance"].is_null() && g["acting_primary"] == true
    });
    assert_eq!(g["cordoned"], false, "{g:#}");
    let actions = audit_actions(&d);
    assert!(
        ["gateway.maintenance", "gateway.maintenance.expired"]
            .iter()
            .all(|x| actions.iter().any(|a| a == x)),
        "{actions:?}"
    );
    // Ended by an operator, before its time.
    let res = d.call(
        "POST",
        &format!("/api/gateways/{b}/maintenance"),
        &d.admin_key,
        &json!({"reason": "kernel update"}),
    );
    assert_eq!(res.status, 200);
    assert!(res.json()["gateway"]["maintenance"]["until"].is_null());
    let res = d.call(
        "DELETE",
        &format!("/api/gateways/{b}/maintenance"),
        &d.admin_key,
        &json!({}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(res.json()["gateway"]["maintenance"].is_null());
    assert!(
        audit_actions(&d)
            .iter()
            .any(|a| a == "gateway.maintenance.end")
    );
}

#[test]
fn a_bad_maintenance_request_is_named() {
    let d = link_daemon(&[]);
    let f = fake(|_| {});
    let a = add(&d, "a", &f, Some("fake-token"));
    let now = gateway_supervisor_actors::unix_now();
    for (body, field) in [
        (json!({"reason": ""}), "reason"),
        (json!({"reason": "x\u{1b}[31m"}), "reason"),
        (json!({"reason": "r", "until": now - 1}), "until"),
        (json!({"reason": "r", "until": now + 31 * 86_400}), "until"),
        (
            json!({"reason": "r", "duration_seconds": 0}),
            "duration_seconds",
        ),
        (
            json!({"reason": "r", "until": now + 60, "duration_seconds": 60}),
            "until",
        ),
    ] {
        let res = d.call(
            "POST",
            &format!("/api/gateways/{a}/maintenance"),
            &d.admin_key,
            &body,
        );
        assert_eq!(res.status, 400, "{body}: {}", res.text());
        assert_eq!(res.json()["details"]["field"], field, "{}", res.text());
    }
    let res = d.call(
        "POST",
        "/api/gateways/999/maintenance",
        &d.admin_key,
        &json!({"reason": "r"}),
    );
    assert_eq!(res.status, 404);
    let operator = d.create_key("operator", "op");
    let res = d.call(
        "POST",
        &format!("/api/gateways/{a}/maintenance"),
        &operator,
        &json!({"reason": "r"}),
    );
    assert_eq!(res.status, 403);
}
