//! Every list/add/update/delete example of seeds/mission-control-gateways-api.txt (and the
//! multi-gateway doc's add/set-primary examples), sent as written with our key.

use serde_json::{Value, json};

use crate::support::{Daemon, Request};

/// The fields the seed documents for a gateway object.
const DOCUMENTED: [&str; 14] = [
    "id",
    "name",
    "host",
    "port",
    "token",
    "token_set",
    "is_primary",
    "status",
    "last_seen",
    "latency",
    "sessions_count",
    "agents_count",
    "created_at",
    "updated_at",
];

fn assert_documented_shape(g: &Value) {
    for field in DOCUMENTED {
        assert!(
            g.get(field).is_some(),
            "gateway object lacks `{field}`: {g}"
        );
    }
    assert!(g["id"].is_i64());
    assert!(g["port"].is_u64());
    assert!(g["token_set"].is_boolean() && g["is_primary"].is_boolean());
    assert!(
        ["online", "offline", "degraded", "timeout", "unknown"]
            .contains(&g["status"].as_str().unwrap())
    );
    assert!(g["last_seen"].is_null() || g["last_seen"].is_i64());
    assert!(g["latency"].is_null() || g["latency"].is_i64());
    assert!(g["sessions_count"].is_i64() && g["agents_count"].is_i64());
    assert!(g["created_at"].is_i64() && g["updated_at"].is_i64());
    let token = g["token"].as_str().unwrap();
    assert_eq!(
        token,
        if g["token_set"].as_bool().unwrap() {
            "--------"
        } else {
            ""
        }
    );
}

/// The seed's curl: `-H "Content-Type: application/json" -H "x-api-key: KEY" -d '...'`.
fn curl(d: &Daemon, method: &str, path: &str, body: &str) -> crate::support::Response {
    d.send(
        Request::new(method, path)
            .header("Content-Type", "application/json")
            .key(&d.admin_key)
            .body(body.as_bytes().to_vec()),
    )
}

#[test]
fn gateways_api_examples_work_as_written() {
    let d = Daemon::start();

    // List (empty registry, no seeding variables set).
    let res = d.get("/api/gateways", &d.admin_key);
    assert_eq!(res.status, 200);
    assert_eq!(res.json(), json!({ "gateways": [] }));

    // Add Gateway, verbatim.
    let res = curl(
        &d,
        "POST",
        "/api/gateways",
        r#"{
    "name": "production",
    "host": "gateway.prod.example.com",
    "port": 18789,
    "token": "your-gateway-auth-token",
    "is_primary": false
  }"#,
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let created = res.json()["gateway"].clone();
    assert_documented_shape(&created);
    assert_eq!(created["name"], "production");
    assert_eq!(created["host"], "gateway.prod.example.com");
    assert_eq!(created["token"], "--------");
    assert_eq!(created["token_set"], true);
    assert_eq!(
        created["status"], "unknown",
        "nothing measured yet, so nothing claimed"
    );
    // The first gateway becomes primary even though the example asks for false.
    assert_eq!(created["is_primary"], true);
    assert_eq!(created["id"], 1);

    // A second gateway so the update example (id 1 → primary) and delete ({"id": 2}) apply.
    let second = d.create_gateway("staging", 18790, None);
    assert_eq!(second["id"], 2);
    assert_eq!(second["is_primary"], false);
    assert_eq!(second["token"], "");
    assert_eq!(second["token_set"], false);

    // Update Gateway, verbatim: rename id 1 and (re)assert it as primary.
    let res = curl(
        &d,
        "PUT",
        "/api/gateways",
        r#"{
    "id": 1,
    "name": "primary-gateway",
    "is_primary": true
  }"#,
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let updated = res.json()["gateway"].clone();
    assert_documented_shape(&updated);
    assert_eq!(updated["name"], "primary-gateway");
    assert_eq!(updated["is_primary"], true);

    // List: documented fields, primary first, tokens redacted.
    let res = d.get("/api/gateways", &d.admin_key);
    assert_eq!(res.status, 200);
    let list = res.json()["gateways"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    list.iter().for_each(assert_documented_shape);
    assert_eq!(list[0]["name"], "primary-gateway");
    assert!(!res.text().contains("your-gateway-auth-token"));

    // Delete Gateway, verbatim.
    let res = curl(&d, "DELETE", "/api/gateways", r#"{"id": 2}"#);
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json(), json!({ "deleted": true }));
    assert_eq!(d.gateways().len(), 1);

    // "You cannot delete the primary gateway. Assign another gateway as primary first."
    let res = curl(&d, "DELETE", "/api/gateways", r#"{"id": 1}"#);
    assert_eq!(res.status, 400);
    let body = res.json();
    assert_eq!(body["error"], "primary_gateway");
    assert_eq!(
        body["message"],
        "Cannot delete the primary gateway. Assign another gateway as primary first."
    );

    // Unknown id: 404 for update and delete.
    assert_eq!(
        curl(&d, "DELETE", "/api/gateways", r#"{"id": 99}"#).status,
        404
    );
    assert_eq!(
        curl(&d, "PUT", "/api/gateways", r#"{"id": 99, "name": "x"}"#).json()["error"],
        "gateway_not_found"
    );
}

#[test]
fn multi_gateway_examples_work_as_written() {
    let d = Daemon::start();
    d.create_gateway("local", 18789, None);
    let res = curl(
        &d,
        "POST",
        "/api/gateways",
        r#"{
"name": "Production Gateway",
"host": "10.0.1.50",
"port": 18789,
"token": "your-gateway-token",
"is_primary": false
}"#,
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let id = res.json()["gateway"]["id"].as_i64().unwrap();
    assert_eq!(res.json()["gateway"]["is_primary"], false);
    // "Setting Primary Gateway": `is_primary: 1`.
    let res = curl(
        &d,
        "PUT",
        "/api/gateways",
        &format!(
            r#"{{
"id": {id},
"is_primary": 1
}}"#
        ),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let list = d.gateways();
    assert_eq!(list[0]["name"], "Production Gateway");
    assert_eq!(list.iter().filter(|g| g["is_primary"] == true).count(), 1);
}

#[test]
fn path_forms_url_form_and_duplicates() {
    let d = Daemon::start();
    let a = d.create_gateway("a", 1000, Some("tok"));
    let res = d.call(
        "POST",
        "/api/gateways",
        &d.admin_key,
        &json!({"name": "b", "url": "wss://gw.example.com:8443"}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let b = res.json()["gateway"].clone();
    assert_eq!(
        (b["host"].as_str(), b["port"].as_u64(), b["url"].as_str()),
        (
            Some("gw.example.com"),
            Some(8443),
            Some("wss://gw.example.com:8443")
        )
    );

    let res = d.get(&format!("/api/gateways/{}", a["id"]), &d.admin_key);
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["gateway"]["name"], "a");
    assert_eq!(d.get("/api/gateways/999", &d.admin_key).status, 404);

    let res = d.call(
        "PUT",
        &format!("/api/gateways/{}", b["id"]),
        &d.admin_key,
        &json!({"port": 9443, "token": "new"}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["gateway"]["port"], 9443);
    assert_eq!(res.json()["gateway"]["token_set"], true);
    // Removing the token.
    let res = d.call(
        "PUT",
        &format!("/api/gateways/{}", b["id"]),
        &d.admin_key,
        &json!({"token": ""}),
    );
    assert_eq!(res.json()["gateway"]["token_set"], false);
    // Body id must agree with the path.
    let res = d.call(
        "PUT",
        &format!("/api/gateways/{}", b["id"]),
        &d.admin_key,
        &json!({"id": 12345, "port": 1}),
    );
    assert_eq!(res.status, 400);
    assert_eq!(res.json()["details"]["field"], "id");

    // Duplicate names: 409 on create and on rename.
    let res = d.call(
        "POST",
        "/api/gateways",
        &d.admin_key,
        &json!({"name": "a", "host": "h", "port": 1}),
    );
    assert_eq!(res.status, 409);
    assert_eq!(res.json()["error"], "duplicate_name");
    let res = d.call(
        "PUT",
        "/api/gateways",
        &d.admin_key,
        &json!({"id": b["id"], "name": "a"}),
    );
    assert_eq!(res.status, 409);

    let res =
        d.send(Request::new("DELETE", &format!("/api/gateways/{}", b["id"])).key(&d.admin_key));
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(d.gateways().len(), 1);
}

#[test]
fn default_gateway_is_seeded_from_the_environment_once() {
    let mut d = Daemon::start_with(&[
        ("OPENCLAW_GATEWAY_HOST", "10.1.2.3"),
        ("GATEWAY_PORT", "18800"),
        ("GATEWAY_TOKEN", "seeded-token-value"),
        ("MC_DEFAULT_GATEWAY_NAME", "home"),
    ]);
    let list = d.gateways();
    assert_eq!(list.len(), 1);
    let g = &list[0];
    assert_eq!(
        (g["name"].as_str(), g["host"].as_str(), g["port"].as_u64()),
        (Some("home"), Some("10.1.2.3"), Some(18800))
    );
    assert_eq!(
        (g["is_primary"].as_bool(), g["token_set"].as_bool()),
        (Some(true), Some(true))
    );
    // Not seeded again on restart (the registry is no longer empty).
    d.restart();
    assert_eq!(d.gateways().len(), 1);
}
