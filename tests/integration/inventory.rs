//! The version inventory: `GET /api/fleet/versions` groups the fleet by release and build, each
//! gateway's object shows its build, bootId and capabilities, `gateway_info` carries the build,
//! and an upgrade moves the gateway to its new group.

use std::time::Duration;

use fake_gateway::{FakeConfig, FakeGateway, Release};

use crate::support::fleet::{add, fake, gateway, link_daemon, wait_gateway};
use crate::support::{online, wait_for};

fn versions(d: &crate::support::Daemon) -> serde_json::Value {
    let res = d.get("/api/fleet/versions", &d.admin_key);
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

#[test]
fn the_fleet_is_grouped_by_release_and_an_upgrade_moves_a_gateway() {
    let d = link_daemon(&[]);
    let new_a = fake(|_| {});
    let new_b = fake(|_| {});
    let old = FakeGateway::start(FakeConfig {
        ping_interval: None,
        ..FakeConfig::imitating(Release::R2026_3_31)
    })
    .unwrap();
    let a = add(&d, "a", &new_a, Some("fake-token"));
    let b = add(&d, "b", &new_b, Some("fake-token"));
    let o = add(&d, "old", &old, Some("fake-token"));
    // Nothing listens there: registered, never connected.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let silent = d.create_gateway("silent", port, None)["id"]
        .as_i64()
        .unwrap();
    for id in [a, b] {
        wait_gateway(&d, id, "online", online);
    }
    wait_gateway(&d, o, "connected", |g| {
        g["connection"]["state"] == "connected"
    });

    let inv = versions(&d);
    assert_eq!(inv["total"], 4, "{inv:#}");
    let groups = inv["versions"].as_array().unwrap();
    assert_eq!(
        groups[0]["version"], "2026.9.6",
        "the largest group first: {inv:#}"
    );
    assert_eq!(groups[0]["build_id"], "2026.9.6-fake");
    assert_eq!(groups[0]["protocol"], 4);
    assert_eq!(groups[0]["gateway_ids"], serde_json::json!([a, b]));
    let find = |v: serde_json::Value| {
        groups
            .iter()
            .find(|g| g["version"] == v)
            .unwrap_or_else(|| panic!("no {v} group: {inv:#}"))
            .clone()
    };
    assert_eq!(
        find("2026.3.31".into())["gateway_ids"],
        serde_json::json!([o])
    );
    assert_eq!(find("2026.3.31".into())["protocol"], 3);
    assert_eq!(
        find(serde_json::Value::Null)["gateway_ids"],
        serde_json::json!([silent])
    );

    // The object: build, process and capabilities (2026.9 names them; 2026.3 does not).
    let g = gateway(&d, a);
    let caps = g["connection"]["capabilities"].as_array().unwrap();
    assert_eq!(caps.len(), 21, "{g:#}");
    assert!(caps.iter().any(|c| c == "gateway-restart-target-safe-v1"));
    assert_eq!(g["connection"]["build_id"], "2026.9.6-fake");
    assert!(g["connection"]["boot_id"].is_string());
    let g = gateway(&d, o);
    assert_eq!(g["connection"]["capabilities"], serde_json::json!([]));
    assert!(g["connection"]["boot_id"].is_null());
    let metrics = d.get("/metrics", "").text();
    assert!(
        metrics.contains(&format!(
            "gateway_supervisor_gateway_info{{build=\"2026.9.6-fake\",gateway_id=\"{a}\",labels=\"\",name=\"a\",protocol=\"4\",version=\"2026.9.6\"}} 1"
        )),
        "{metrics}"
    );

    // An upgrade by hand: back as another release, in its new group.
    new_b.update_config(|c| c.version = "2026.9.7".into());
    new_b.restart(Duration::from_millis(200));
    wait_for("b in its new group", Duration::from_secs(20), || {
        let inv = versions(&d);
        let moved = inv["versions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["version"] == "2026.9.7" && g["gateway_ids"] == serde_json::json!([b]));
        if moved {
            Ok(())
        } else {
            Err(format!("{inv:#}"))
        }
    });
}
