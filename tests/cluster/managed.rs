//! A managed gateway belongs to its host: it listens on that host's loopback, so only an
//! instance on that host can link it. Lease placement spreads the other gateways over both
//! instances and never hands the managed one to the instance on another host — not while its
//! own instance is up, and not when it dies (then nobody links it) — and its instance takes
//! it back when it returns.

use std::time::Duration;

use serde_json::{Value, json};

use super::{TTL, env_refs, fakes, instance_env, register, wait_one_socket_each};
use gs_test_support::daemon::{Daemon, Database, wait_for};

const DEADLINE: Duration = Duration::from_secs(60);

fn on_host(id: &str, host: &str) -> Vec<(String, String)> {
    let mut env = instance_env(id, TTL);
    env.push(("GATEWAY_SUPERVISOR__CLUSTER__HOST_ID".into(), host.into()));
    // Nothing is installed: the process is `failed`, the gateway and its lease are the point.
    env.push((
        "GATEWAY_SUPERVISOR__MANAGED_RUNTIME__NODE".into(),
        "/nonexistent/node".into(),
    ));
    env
}

/// Who holds gateway `id`'s lease now, as `d` sees the cluster.
fn owner(d: &Daemon, id: i64) -> Option<String> {
    let c = d.get("/api/cluster", &d.admin_key).json();
    c["leases"].as_array()?.iter().find_map(|l| {
        (l["gateway_id"] == id && l["expires_in_ms"].as_i64() > Some(0))
            .then(|| l["owner"].as_str().unwrap_or_default().to_owned())
    })
}

fn owners(d: &Daemon) -> Vec<Value> {
    d.get("/api/cluster", &d.admin_key).json()["leases"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_managed_gateway_is_linked_only_by_an_instance_on_its_host() {
    let mut a = Daemon::start_on(Database::postgres(), &env_refs(&on_host("a", "host-a")));
    let b = Daemon::join(&a, &env_refs(&on_host("b", "host-b")));
    let fakes = fakes(6);
    let ids = register(&a, &fakes);
    wait_one_socket_each(&fakes, Duration::from_secs(30));
    let res = a.call(
        "POST",
        "/api/managed",
        &a.admin_key,
        &json!({"name": "edge-1", "version": "2026.9.6", "port": 39300}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let managed = res.json()["managed"]["gateway_id"].as_i64().unwrap();
    assert_eq!(res.json()["managed"]["host_id"], "host-a");
    wait_for(
        "host-a's instance to link its managed gateway",
        DEADLINE,
        || match owner(&b, managed) {
            Some(o) if o == "a" => Ok(()),
            other => Err(format!("{other:?}: {:?}", owners(&b))),
        },
    );
    // The others are spread over both.
    wait_for("the plain gateways placed on both", DEADLINE, || {
        let held: Vec<Option<String>> = ids.iter().map(|id| owner(&b, *id)).collect();
        let on_b = held.iter().filter(|o| o.as_deref() == Some("b")).count();
        if on_b > 0 && held.iter().all(Option::is_some) {
            Ok(())
        } else {
            Err(format!("{held:?}"))
        }
    });

    // Process actions belong to its host: asked of b (another host), they go to a, and b
    // starts nothing.
    let restart = format!("/api/managed/{managed}/restart");
    let res = b.call("POST", &restart, &b.admin_key, &json!({}));
    assert_eq!(res.status, 202, "{}", res.text());
    assert_eq!(res.header("x-gs-answered-by"), Some("a"));
    assert_eq!(res.json()["managed"]["host_id"], "host-a", "{}", res.text());
    assert!(!b.state_dir().join("managed/gateways/edge-1").exists());

    // Its instance dies: b adopts the plain gateways a held, never the managed one.
    a.kill9();
    wait_for("b to adopt every plain gateway", DEADLINE, || {
        let held: Vec<Option<String>> = ids.iter().map(|id| owner(&b, *id)).collect();
        if held.iter().all(|o| o.as_deref() == Some("b")) {
            Ok(())
        } else {
            Err(format!("{held:?}"))
        }
    });
    assert_eq!(owner(&b, managed), None, "{:?}", owners(&b));
    let g = b
        .get(&format!("/api/gateways/{managed}"), &b.admin_key)
        .json()["gateway"]
        .clone();
    assert_eq!(
        g["name"], "edge-1",
        "any instance serves it through the API"
    );
    // Nobody watches its process now: shown as such, not as its last state.
    let m = wait_for("edge-1 unsupervised", DEADLINE, || {
        let m = b
            .get(&format!("/api/managed/{managed}"), &b.admin_key)
            .json()["managed"]
            .clone();
        if m["state"] == "unsupervised" {
            Ok(m)
        } else {
            Err(m.to_string())
        }
    });
    assert!(
        m["detail"]
            .as_str()
            .unwrap()
            .contains("no daemon of host `host-a` is up"),
        "{m:#}"
    );
    let hosts = b.get("/api/hosts", &b.admin_key).json();
    let host = |id: &str| {
        hosts["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["host_id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} in {hosts:#}"))
    };
    let (host_a, host_b) = (host("host-a"), host("host-b"));
    assert_eq!(host_a["supervised"], false, "{hosts:#}");
    assert_eq!(host_a["instances"], json!([]), "{hosts:#}");
    assert_eq!(host_a["managed"][0]["gateway_id"], managed, "{hosts:#}");
    assert_eq!(host_b["supervised"], true, "{hosts:#}");
    assert_eq!(host_b["instances"], json!(["b"]), "{hosts:#}");
    assert!(host_b["info"]["cpus"].as_u64() >= Some(1), "{hosts:#}");
    // No daemon of its host to act on its process: said, not attempted here.
    let res = b.call("POST", &restart, &b.admin_key, &json!({}));
    assert_eq!(res.status, 503, "{}", res.text());
    assert_eq!(res.json()["error"], "owner_unavailable", "{}", res.text());
    assert!(res.text().contains("host-a"), "{}", res.text());
    assert!(!b.state_dir().join("managed/gateways/edge-1").exists());

    // Its instance returns and takes it back.
    a.launch();
    wait_for(
        "host-a's instance to link it again",
        DEADLINE,
        || match owner(&b, managed) {
            Some(o) if o == "a" => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    let m = b
        .get(&format!("/api/managed/{managed}"), &b.admin_key)
        .json()["managed"]
        .clone();
    assert_ne!(m["state"], "unsupervised", "its daemon is back: {m:#}");

    // Deleted through b: done by a, on host-a.
    let res = b.call(
        "DELETE",
        &format!("/api/managed/{managed}?purge=true"),
        &b.admin_key,
        &json!(null),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-gs-answered-by"), Some("a"));
    assert!(!a.state_dir().join("managed/gateways/edge-1").exists());
    assert_eq!(
        b.get(&format!("/api/managed/{managed}"), &b.admin_key)
            .status,
        404
    );
}
