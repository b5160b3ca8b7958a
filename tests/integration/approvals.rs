//! Approvals opt-in: the daemon becomes a gateway's approval client (its `connect` asks for
//! `caps: ["approvals"]`, which makes a 2026.9 gateway wait for its answers) only when asked —
//! fleet-wide with `approvals.enabled`, or per gateway, whose own setting wins — and says so in
//! the gateway object.

use serde_json::json;

use crate::support::fleet::{add, fake, link_daemon, wait_gateway};
use crate::support::{online, wait_until};

const DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

#[test]
fn a_gateway_is_answered_for_only_when_asked_and_its_own_setting_wins() {
    let f = fake(|_| {});
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    let put = |body: serde_json::Value| {
        d.call("PUT", &format!("/api/gateways/{id}"), &d.admin_key, &body)
    };
    let g = wait_gateway(&d, id, "online", online);
    assert_eq!(
        g["approvals"],
        serde_json::Value::Null,
        "follows the fleet: {g:#}"
    );
    assert_eq!(
        g["connection"]["approval_client"], false,
        "off by default: {g:#}"
    );
    assert!(
        f.last_connect_caps().is_empty(),
        "{:?}",
        f.last_connect_caps()
    );

    // Turned on for this gateway: the link reconnects asking for the capability.
    let res = put(json!({"approvals": true}));
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["gateway"]["approvals"], true);
    let g = wait_gateway(&d, id, "an approval client", |g| {
        online(g) && g["connection"]["approval_client"] == true
    });
    assert_eq!(f.last_connect_caps(), ["approvals"], "{g:#}");
    // `null`: back to the fleet's default (off).
    let res = put(json!({"approvals": null}));
    assert_eq!(res.status, 200, "{}", res.text());
    wait_gateway(&d, id, "no longer an approval client", |g| {
        online(g) && g["connection"]["approval_client"] == false && g["approvals"].is_null()
    });
    wait_until("a connect without caps", DEADLINE, || {
        f.last_connect_caps().is_empty().then_some(())
    });
    let audit = d.get("/api/audit?limit=20", &d.admin_key).text();
    assert!(
        audit.contains("approvals"),
        "the change is audited: {audit}"
    );
    let res = put(json!({"approvals": "yes"}));
    assert_eq!(res.status, 400, "{}", res.text());
}

#[test]
fn fleet_wide_approvals_apply_to_every_gateway_but_one_that_says_no() {
    let (fa, fb) = (fake(|_| {}), fake(|_| {}));
    let d = link_daemon(&[("GATEWAY_SUPERVISOR__APPROVALS__ENABLED", "true")]);
    let a = add(&d, "answered", &fa, Some("fake-token"));
    let res = d.call(
        "POST",
        "/api/gateways",
        &d.admin_key,
        &json!({"name": "own-ui", "host": "127.0.0.1", "port": fb.addr().port(), "token": "fake-token", "approvals": false}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let b = res.json()["gateway"]["id"].as_i64().unwrap();
    let ga = wait_gateway(&d, a, "online", online);
    let gb = wait_gateway(&d, b, "online", online);
    assert_eq!(ga["connection"]["approval_client"], true, "{ga:#}");
    assert_eq!(fa.last_connect_caps(), ["approvals"]);
    assert_eq!(
        (
            gb["approvals"].as_bool(),
            gb["connection"]["approval_client"].as_bool()
        ),
        (Some(false), Some(false)),
        "{gb:#}"
    );
    assert!(fb.last_connect_caps().is_empty());
}
