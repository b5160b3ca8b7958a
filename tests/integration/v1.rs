//! The v1 gateway API: create connects first (502 / 503 / warnings), RFC 3339, same registry.

use serde_json::json;

use crate::support::fleet::{fake, link_daemon, wait_gateway};
use crate::support::{Request, online};

#[test]
fn v1_create_checks_the_gateway_first() {
    let good = fake(|_| {});
    let old = fake(|c| c.version = "2026.1.30".into());
    let dev = fake(|c| c.version = "dev".into());
    let d = link_daemon(&[]);
    let create = |name: &str, url: String, token: &str, root: &str| {
        d.call("POST", "/api/v1/gateways", &d.admin_key, &json!({"name": name, "url": url, "workspace_root": root, "token": token, "disable_device_pairing": true}))
    };
    let res = create(
        "Production Gateway",
        format!("ws://127.0.0.1:{}", good.port()),
        "fake-token",
        "/home/ubuntu/.openclaw/workspaces",
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let g = res.json();
    assert_eq!(g["name"], "Production Gateway");
    assert_eq!(g["url"], format!("ws://127.0.0.1:{}", good.port()));
    assert_eq!(g["workspace_root"], "/home/ubuntu/.openclaw/workspaces");
    assert_eq!(g["gateway_agent_id"], "main");
    assert_eq!(g["disable_device_pairing"], true);
    let created_at = g["created_at"].as_str().unwrap();
    assert!(
        created_at.len() == 20 && created_at.ends_with('Z') && created_at.as_bytes()[10] == b'T',
        "{created_at}"
    );
    let id = g["id"].as_i64().unwrap();
    // Same registry: the classic API sees it, and its link comes online.
    wait_gateway(&d, id, "online", online);

    // A dead port: 502 with a friendly message; nothing stored.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let res = create("dead", format!("ws://127.0.0.1:{dead_port}"), "x", "/w");
    assert_eq!(res.status, 502, "{}", res.text());
    assert_eq!(res.json()["error"], "gateway_unreachable");
    assert!(
        res.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("Gateway is unreachable")
    );
    // Refused (wrong token): 502 too.
    let res = create(
        "refused",
        format!("ws://127.0.0.1:{}", good.port()),
        "wrong",
        "/w",
    );
    assert_eq!(
        (res.status, res.json()["error"].as_str()),
        (502, Some("gateway_refused"))
    );
    // Too old: 503.
    let res = create(
        "old",
        format!("ws://127.0.0.1:{}", old.port()),
        "fake-token",
        "/w",
    );
    assert_eq!(res.status, 503, "{}", res.text());
    assert_eq!(res.json()["error"], "gateway_version_too_old");
    assert!(
        res.json()["message"]
            .as_str()
            .unwrap()
            .contains("2026.1.30")
    );
    // `dev` is accepted with a warning.
    let res = create(
        "dev",
        format!("ws://127.0.0.1:{}", dev.port()),
        "fake-token",
        "/w",
    );
    assert_eq!(res.status, 201, "{}", res.text());
    assert!(res.json()["warnings"][0].as_str().unwrap().contains("dev"));
    // Empty workspace_root: 422.
    let res = create(
        "empty-root",
        format!("ws://127.0.0.1:{}", good.port()),
        "fake-token",
        " ",
    );
    assert_eq!(
        (res.status, res.json()["error"].as_str()),
        (422, Some("unprocessable"))
    );
    let names: Vec<String> = d
        .gateways()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names.len(),
        2,
        "only the checked gateways were stored: {names:?}"
    );

    let list = d.get("/api/v1/gateways", &d.admin_key).json();
    assert_eq!(list["total"], 2);
    assert_eq!(
        d.get(&format!("/api/v1/gateways/{id}"), &d.admin_key)
            .json()["name"],
        "Production Gateway"
    );
    let res = d.call(
        "PATCH",
        &format!("/api/v1/gateways/{id}"),
        &d.admin_key,
        &json!({"workspace_root": "/srv/ws"}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["workspace_root"], "/srv/ws");
    // The audit row of a v1 PATCH names what it changed (it was recorded with no changes).
    // Newest first; in a cluster the instance's adoption of the gateway may land after it.
    let audit = d.get("/api/audit?limit=50", &d.admin_key).json();
    let update = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["action"] == "gateway.update" && r["target_id"].as_str() == Some(&*id.to_string())
        })
        .unwrap_or_else(|| panic!("no gateway.update row for {id}: {audit}"));
    let details: serde_json::Value =
        serde_json::from_str(update["details"].as_str().unwrap()).unwrap();
    assert_eq!(details["workspace_root"], "/srv/ws", "{audit}");
    let res = d.call(
        "PATCH",
        &format!("/api/v1/gateways/{id}"),
        &d.admin_key,
        &json!({"url": format!("ws://127.0.0.1:{dead_port}")}),
    );
    assert_eq!(res.status, 502, "a new url is checked before it is stored");
    let dev_id = d.gateways().iter().find(|g| g["name"] == "dev").unwrap()["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        d.send(Request::new("DELETE", &format!("/api/v1/gateways/{dev_id}")).key(&d.admin_key))
            .status,
        200
    );
    assert_eq!(
        d.get(&format!("/api/v1/gateways/{dev_id}"), &d.admin_key)
            .status,
        404
    );
}
