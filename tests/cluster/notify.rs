//! Wake-ups: another instance's change is seen at once through LISTEN/NOTIFY, not at the next
//! poll. With the polls and renewal rounds set far apart (a poll every hour, a round every
//! 20 s), only a notification can bring a gateway created or renamed on one instance into the
//! other's list within seconds.

use std::time::Duration;

use gs_test_support::daemon::{Daemon, Database, Request, wait_for};
use serde_json::json;

use super::{env_refs, fakes, instance_env, register_one};

fn slow_polls(id: &str) -> Vec<(String, String)> {
    let mut env = instance_env(id, Duration::from_secs(60));
    for (k, v) in &mut env {
        if k == "GATEWAY_SUPERVISOR__CLUSTER__RENEW_INTERVAL" {
            *v = "20s".into();
        }
    }
    env.push((
        "GATEWAY_SUPERVISOR__CLUSTER__POLL_INTERVAL".into(),
        "1h".into(),
    ));
    env
}

/// Waits until `d` lists a gateway named `name`: well inside the 20 s round and the hour's
/// poll.
fn wait_named(d: &Daemon, name: &str) {
    wait_for(
        &format!("a gateway named {name}"),
        Duration::from_secs(8),
        || {
            let names: Vec<String> = d
                .gateways()
                .iter()
                .filter_map(|g| g["name"].as_str().map(str::to_owned))
                .collect();
            if names.iter().any(|n| n == name) {
                Ok(())
            } else {
                Err(format!("{names:?}"))
            }
        },
    );
}

#[test]
fn a_change_on_one_instance_reaches_the_others_through_notifications() {
    let a = Daemon::start_on(Database::postgres(), &env_refs(&slow_polls("a")));
    let b = Daemon::join(&a, &env_refs(&slow_polls("b")));
    let nodes = [a, b];
    let fakes = fakes(1);
    let res = nodes[0].call(
        "POST",
        "/api/gateways",
        &nodes[0].admin_key,
        &json!({"name": "created-on-a", "host": "127.0.0.1", "port": fakes[0].port(), "token": "fake-token"}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let id = res.json()["gateway"]["id"].as_i64().unwrap();
    wait_named(&nodes[1], "created-on-a");
    let res = nodes[0].call(
        "PUT",
        &format!("/api/gateways/{id}"),
        &nodes[0].admin_key,
        &json!({"name": "renamed-on-a"}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    wait_named(&nodes[1], "renamed-on-a");
}

/// A client behind a load balancer writes to a gateway through another instance than the one
/// that created it, at once: the write is carried out, not refused as unknown while the change
/// feed is still on its way (it was: 404 for the few milliseconds before the notification).
/// With the polls an hour apart only a notification would bring the row, and the writes here
/// follow the creates by a request's round trip — sooner than a notification is read (every
/// 20 ms) and applied.
#[test]
fn a_gateway_created_through_one_instance_is_written_through_another_at_once() {
    let a = Daemon::start_on(Database::postgres(), &env_refs(&slow_polls("a")));
    let b = Daemon::join(&a, &env_refs(&slow_polls("b")));
    let fakes = fakes(6);
    let create = |i: usize| register_one(&a, &format!("made-on-a-{i}"), &fakes[i]);
    for i in 0..4 {
        let id = create(i);
        let res = b.call(
            "PUT",
            &format!("/api/gateways/{id}"),
            &b.admin_key,
            &json!({"name": format!("renamed-on-b-{i}")}),
        );
        assert_eq!(res.status, 200, "rename {i} through b: {}", res.text());
        assert_eq!(res.json()["gateway"]["name"], format!("renamed-on-b-{i}"));
    }
    let id = create(4);
    let res = b.call(
        "PATCH",
        &format!("/api/gateways/{id}/labels"),
        &b.admin_key,
        &json!({"team": "blue"}),
    );
    assert_eq!(res.status, 200, "labels through b: {}", res.text());
    assert_eq!(res.json()["gateway"]["labels"], json!({"team": "blue"}));
    let id = create(5);
    let res = b.send(Request::new("DELETE", &format!("/api/gateways/{id}")).key(&b.admin_key));
    assert_eq!(res.status, 200, "delete through b: {}", res.text());
    // Written through b, read on a: the one list both share.
    wait_named(&a, "renamed-on-b-3");
    let res = b.call(
        "PUT",
        "/api/gateways/987654",
        &b.admin_key,
        &json!({"name": "nobody"}),
    );
    assert_eq!(res.status, 404, "{}", res.text());
}

/// The same through a tenant's key, whose every route checks the gateway its path names before
/// the handler runs: a gateway of its tenant registered through one instance is read and
/// written through another at once (it was 404 until the change feed brought the row); another
/// tenant's, and one that does not exist, stay not-found there.
#[test]
fn a_tenant_s_gateway_created_through_one_instance_is_seen_through_another_at_once() {
    let a = Daemon::start_on(Database::postgres(), &env_refs(&slow_polls("a")));
    let b = Daemon::join(&a, &env_refs(&slow_polls("b")));
    let blue = a.create_scoped_key("admin", "blue-admin", &["--tenant", "blue"]);
    let fakes = fakes(4);
    let register = |key: &str, name: &str, f: &fake_gateway::FakeGateway| {
        let body =
            json!({"name": name, "host": "127.0.0.1", "port": f.port(), "token": "fake-token"});
        let res = a.call("POST", "/api/gateways", key, &body);
        assert_eq!(res.status, 201, "{}", res.text());
        res.json()["gateway"]["id"].as_i64().unwrap()
    };
    for (i, f) in fakes.iter().take(3).enumerate() {
        let id = register(&blue, &format!("blue-{i}"), f);
        let res = b.get(&format!("/api/gateways/{id}"), &blue);
        assert_eq!(res.status, 200, "read {i} through b: {}", res.text());
        assert_eq!(res.json()["gateway"]["labels"]["tenant"], "blue");
        let res = b.call(
            "PUT",
            &format!("/api/gateways/{id}"),
            &blue,
            &json!({"name": format!("blue-renamed-{i}")}),
        );
        assert_eq!(res.status, 200, "rename {i} through b: {}", res.text());
    }
    let platform_s = register(&a.admin_key, "nobody-s", &fakes[3]);
    for id in [platform_s, 987_654] {
        let res = b.get(&format!("/api/gateways/{id}"), &blue);
        assert_eq!(res.status, 404, "{id} through b: {}", res.text());
        assert_eq!(res.json()["error"], "gateway_not_found", "{}", res.text());
    }
    wait_named(&a, "blue-renamed-2");
}
