//! Cordon: a gateway an operator holds back keeps its work, takes no new spawn, and does not act
//! as primary — with the reason given — until uncordoned; the cordon is stored (it survives a
//! restart), audited, counted and announced.

use serde_json::json;

use crate::support::fleet::{add, fake, link_daemon, wait_gateway};
use crate::support::{Request, online};

#[test]
fn a_cordoned_gateway_takes_no_new_spawns_and_is_not_primary_until_uncordoned() {
    let (fa, fb) = (fake(|_| {}), fake(|_| {}));
    let mut d = link_daemon(&[]);
    let a = add(&d, "a", &fa, Some("fake-token"));
    let b = add(&d, "b", &fb, Some("fake-token"));
    wait_gateway(&d, a, "a online and primary", |g| {
        online(g) && g["acting_primary"] == true
    });
    wait_gateway(&d, b, "b online", online);
    let post = |d: &crate::support::Daemon, key: &str, path: String| {
        d.send(Request::new("POST", &path).key(key))
    };
    let operator = d.create_key("operator", "op");
    assert_eq!(
        post(&d, &operator, format!("/api/gateways/{a}/cordon")).status,
        403,
        "admin only"
    );
    let res = post(&d, &d.admin_key, format!("/api/gateways/{a}/cordon"));
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["gateway"]["cordoned"], true);
    // The stand-in takes the role; spawns go there; a spawn naming `a` is refused with why.
    wait_gateway(&d, b, "b acting for the cordoned primary", |g| {
        g["acting_primary"] == true
    });
    let spawn = |d: &crate::support::Daemon, body: serde_json::Value| {
        d.call("POST", "/api/spawn", &d.admin_key, &body)
    };
    let res = spawn(&d, json!({"agent": "main", "task": "t"}));
    assert_eq!(res.status, 202, "{}", res.text());
    assert_eq!(res.json()["gateway_id"], b);
    let res = spawn(&d, json!({"agent": "main", "task": "t", "gateway_id": a}));
    assert_eq!(res.status, 503, "{}", res.text());
    assert!(
        res.json()["message"]
            .as_str()
            .unwrap()
            .contains("is cordoned: it takes no new spawns until it is uncordoned"),
        "{}",
        res.text()
    );
    assert!(
        d.get("/metrics", "")
            .text()
            .contains("gateway_supervisor_gateways_cordoned 1"),
        "counted"
    );
    // Stored: still cordoned after a restart.
    d.restart();
    let g = wait_gateway(&d, a, "online and still cordoned", |g| {
        online(g) && g["cordoned"] == true
    });
    assert_eq!(g["acting_primary"], false, "{g:#}");
    let res = post(&d, &d.admin_key, format!("/api/gateways/{a}/uncordon"));
    assert_eq!(res.status, 200, "{}", res.text());
    wait_gateway(&d, a, "a primary again", |g| {
        g["cordoned"] == false && g["acting_primary"] == true
    });
    let res = spawn(&d, json!({"agent": "main", "task": "t"}));
    assert_eq!(res.json()["gateway_id"], a, "{}", res.text());
    let actions = crate::support::fleet::audit_actions(&d);
    assert!(
        ["gateway.cordon", "gateway.uncordon"]
            .iter()
            .all(|a| actions.iter().any(|x| x == a)),
        "{actions:?}"
    );
    assert_eq!(
        post(&d, &d.admin_key, "/api/gateways/999/cordon".into()).status,
        404
    );
}
