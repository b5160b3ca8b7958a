//! Gateway operations: suspend, resume and restart through the gateway, and a busy refusal.

use serde_json::json;

use crate::support::fleet::{add, fake, link_daemon, wait_gateway};
use crate::support::{Request, online};

#[test]
fn suspend_resume_restart_and_a_busy_refusal() {
    let f = fake(|_| {});
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    let operator = d.create_key("operator", "op");
    let post = |path: &str, key: &str| d.send(Request::new("POST", path).key(key));
    assert_eq!(
        post(&format!("/api/gateways/{id}/suspend"), &operator).status,
        403,
        "admin only"
    );
    let res = post(&format!("/api/gateways/{id}/suspend"), &d.admin_key);
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(f.suspended());
    let res = post(&format!("/api/gateways/{id}/resume"), &d.admin_key);
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(!f.suspended());
    assert_eq!(
        post(&format!("/api/gateways/{id}/resume"), &d.admin_key).status,
        409,
        "nothing to resume"
    );
    // Busy with a run: the gateway refuses and says why.
    let spawn = d.call(
        "POST",
        "/api/spawn",
        &d.admin_key,
        &json!({"agent": "main", "task": "SLOW"}),
    );
    assert_eq!(spawn.status, 202);
    let res = post(&format!("/api/gateways/{id}/suspend"), &d.admin_key);
    assert_eq!(res.status, 409, "{}", res.text());
    let body = res.json();
    assert_eq!(body["error"], "gateway_busy");
    assert_eq!(body["details"]["reason"], "active-work");
    assert!(body["details"]["activeCount"].as_u64().unwrap() >= 1);
    let res = post(&format!("/api/gateways/{id}/restart"), &d.admin_key);
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["restart"]["status"], "scheduled");
    assert_eq!(post("/api/gateways/999/restart", &d.admin_key).status, 404);
}
