//! Managed gateways through the API, without a real release (those are the OpenClaw
//! end-to-end's): what a declaration refuses and why, a host without the Node it needs (the
//! gateway is registered, its process `failed` with the reason), a port taken twice, and a
//! managed gateway removed only through its own route.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fleet::{add, fake, link_daemon};
use crate::support::wait_for;

fn declare(d: &gs_test_support::daemon::Daemon, body: &Value) -> gs_test_support::http::Response {
    d.call("POST", "/api/managed", &d.admin_key, body)
}

#[test]
fn a_declaration_that_cannot_be_met_is_refused_naming_the_field() {
    let d = link_daemon(&[]);
    let cases = [
        (json!({"name": "a b", "version": "2026.9.6"}), "name"),
        (json!({"name": "edge", "version": "latest"}), "version"),
        (
            json!({"name": "edge", "version": "2026.9.6", "config": [1]}),
            "config",
        ),
        (
            json!({"name": "edge", "version": "2026.9.6", "config": {"gateway": {"auth": {"token": "x"}}}}),
            "config",
        ),
        (
            json!({"name": "edge", "version": "2026.9.6", "port": 80}),
            "port",
        ),
        (
            json!({"name": "edge", "version": "2026.9.6", "source": "relative.tgz"}),
            "source",
        ),
        (
            json!({"name": "edge", "version": "2026.9.6", "labels": {"-bad": "x"}}),
            "labels",
        ),
    ];
    for (body, field) in cases {
        let res = declare(&d, &body);
        assert_eq!(res.status, 400, "{body}: {}", res.text());
        assert_eq!(
            res.json()["details"]["field"],
            field,
            "{body}: {}",
            res.text()
        );
    }
    let res = declare(
        &d,
        &json!({"name": "edge", "version": "2026.9.6", "colour": "red"}),
    );
    assert_eq!(res.status, 400, "{}", res.text());
    assert!(res.text().contains("colour"), "{}", res.text());
    assert_eq!(
        d.get("/api/managed", &d.admin_key).json()["managed"],
        json!([])
    );
    assert_eq!(
        d.get("/api/managed/7", &d.admin_key).json()["error"],
        "managed_gateway_not_found"
    );
}

#[test]
fn without_its_node_a_managed_gateway_is_registered_failed_with_the_reason_and_removed_through_its_route()
 {
    let d = link_daemon(&[(
        "GATEWAY_SUPERVISOR__MANAGED_RUNTIME__NODE",
        "/nonexistent/node",
    )]);
    // Another gateway is primary, so the managed one may be removed.
    let other = fake(|_| {});
    add(&d, "primary", &other, Some("fake-token"));
    let res = declare(
        &d,
        &json!({"name": "edge-1", "version": "2026.9.6", "port": 39100, "labels": {"tier": "edge"}}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let id = res.json()["managed"]["gateway_id"].as_i64().unwrap();
    let failed = wait_for("the install to fail", Duration::from_secs(30), || {
        let m = d.get(&format!("/api/managed/{id}"), &d.admin_key).json()["managed"].clone();
        if m["state"] == "failed" {
            Ok(m)
        } else {
            Err(m.to_string())
        }
    });
    let detail = failed["detail"].as_str().unwrap();
    assert!(
        detail.contains("/nonexistent/node") && detail.contains("managed_runtime.node"),
        "{detail}"
    );
    assert_eq!(failed["port"], 39100);
    // Its host: this daemon's, supervised (a daemon on its own), with what it says of itself.
    let hosts = wait_for("this host's report", Duration::from_secs(30), || {
        let h = d.get("/api/hosts", &d.admin_key).json();
        if h["hosts"][0]["info"].is_object() {
            Ok(h)
        } else {
            Err(h.to_string())
        }
    });
    let host = &hosts["hosts"][0];
    assert_eq!(hosts["hosts"].as_array().unwrap().len(), 1, "{hosts:#}");
    assert_eq!(host["host_id"], failed["host_id"], "{hosts:#}");
    assert_eq!(host["supervised"], true, "{hosts:#}");
    // A daemon alone: no instances on SQLite; on PostgreSQL a cluster of one.
    assert!(
        host["instances"].is_null() || host["instances"].as_array().is_some_and(|i| i.len() == 1),
        "{hosts:#}"
    );
    assert!(host["info"]["cpus"].as_u64() >= Some(1), "{hosts:#}");
    assert_eq!(
        host["info"]["releases"],
        json!([]),
        "nothing installed: {hosts:#}"
    );
    assert_eq!(host["managed"][0]["gateway_id"], id, "{hosts:#}");
    assert_eq!(host["managed"][0]["state"], "failed", "{hosts:#}");
    // A restart tries again from the install (and fails again, for the same reason).
    let res = d.call(
        "POST",
        &format!("/api/managed/{id}/restart"),
        &d.admin_key,
        &json!(null),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let again = wait_for("the install tried again", Duration::from_secs(30), || {
        let m = d.get(&format!("/api/managed/{id}"), &d.admin_key).json()["managed"].clone();
        if m["state"] == "failed" && m["updated_at_ms"].as_i64() > failed["updated_at_ms"].as_i64()
        {
            Ok(m)
        } else {
            Err(m.to_string())
        }
    });
    assert_eq!(again["detail"], failed["detail"], "{again:#}");
    // A gateway like any other: listed, labelled.
    let g = d.get(&format!("/api/gateways/{id}"), &d.admin_key).json()["gateway"].clone();
    assert_eq!(g["name"], "edge-1");
    assert_eq!(g["labels"]["tier"], "edge");
    // Its port is its own on this host.
    let res = declare(
        &d,
        &json!({"name": "edge-2", "version": "2026.9.6", "port": 39100}),
    );
    assert_eq!(res.status, 409, "{}", res.text());
    assert_eq!(res.json()["error"], "port_unavailable");
    // `ctl managed` shows it, and `add --wait` fails with the reason.
    let ctl = |args: &[&str]| {
        std::process::Command::new(gs_test_support::daemon::binary())
            .env_clear()
            .env("GATEWAY_SUPERVISOR_URL", format!("http://{}", d.addr))
            .env("GATEWAY_SUPERVISOR_API_KEY", &d.admin_key)
            .arg("ctl")
            .args(args)
            .output()
            .unwrap()
    };
    let list = ctl(&["managed", "list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success(), "{text}");
    let row = text.lines().find(|l| l.contains("edge-1")).expect(&text);
    assert!(row.contains("failed") && row.contains("39100"), "{text}");
    let add = ctl(&[
        "managed",
        "add",
        "edge-3",
        "--version",
        "2026.9.6",
        "--port",
        "39500",
        "--wait",
        "30s",
    ]);
    assert!(!add.status.success());
    let err = String::from_utf8_lossy(&add.stderr);
    assert!(
        err.contains("failed") && err.contains("managed_runtime.node"),
        "{err}"
    );
    let id3 = d.get("/api/managed", &d.admin_key).json()["managed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "edge-3")
        .unwrap()["gateway_id"]
        .as_i64()
        .unwrap();
    let del = ctl(&["managed", "delete", &id3.to_string(), "--purge"]);
    assert!(
        del.status.success(),
        "{}",
        String::from_utf8_lossy(&del.stderr)
    );
    // Removed through its own route only.
    let res = d.call(
        "DELETE",
        &format!("/api/gateways/{id}"),
        &d.admin_key,
        &json!(null),
    );
    assert_eq!(res.status, 409, "{}", res.text());
    assert_eq!(res.json()["error"], "managed_gateway");
    let res = d.call(
        "DELETE",
        &format!("/api/managed/{id}?purge=true"),
        &d.admin_key,
        &json!(null),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        d.get(&format!("/api/gateways/{id}"), &d.admin_key).status,
        404
    );
    assert!(!d.state_dir().join("managed/gateways/edge-1").exists());
    assert_eq!(
        d.get("/api/managed", &d.admin_key).json()["managed"],
        json!([])
    );
}

/// `[[managed]]` in the configuration file: a wrong table stops the daemon naming it; a good
/// one is declared at start on this host (once: a restart finds it declared).
#[test]
fn configured_managed_gateways_are_declared_once_and_a_wrong_table_stops_the_start() {
    let mut d = gs_test_support::daemon::Daemon::start_with(&[(
        "GATEWAY_SUPERVISOR__MANAGED_RUNTIME__NODE",
        "/nonexistent/node",
    )]);
    d.kill9();
    let config = d.state_dir().join("daemon.toml");
    std::fs::write(
        &config,
        "[[managed]]\nname = \"edge-1\"\nversion = \"2026.9.6\"\nport = 39700\n\
         [managed.labels]\ntier = \"edge\"\n[[managed]]\nname = \"edge-2\"\nversion = \"latest\"\n",
    )
    .unwrap();
    let out = d
        .command()
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "a wrong table stops the start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[[managed]] #2: version: a release version"),
        "{stderr}"
    );

    std::fs::write(
        &config,
        "[[managed]]\nname = \"edge-1\"\nversion = \"2026.9.6\"\nport = 39700\n\
         [managed.labels]\ntier = \"edge\"\n",
    )
    .unwrap();
    let cfg = config.clone();
    d.launch_with(|c| {
        c.arg("--config").arg(&cfg);
    });
    let listed = wait_for(
        "edge-1 declared from the file",
        Duration::from_secs(30),
        || {
            let l = d.get("/api/managed", &d.admin_key).json()["managed"].clone();
            if l.as_array().is_some_and(|a| a.len() == 1) {
                Ok(l)
            } else {
                Err(l.to_string())
            }
        },
    );
    assert_eq!(listed[0]["name"], "edge-1", "{listed:#}");
    assert_eq!(listed[0]["port"], 39700, "{listed:#}");
    let id = listed[0]["gateway_id"].as_i64().unwrap();
    let g = d.get(&format!("/api/gateways/{id}"), &d.admin_key).json()["gateway"].clone();
    assert_eq!(g["labels"]["tier"], "edge", "{g:#}");
    // Started again with the same file: still one.
    d.kill9();
    d.launch_with(|c| {
        c.arg("--config").arg(&config);
    });
    let again = d.get("/api/managed", &d.admin_key).json()["managed"].clone();
    assert_eq!(again.as_array().map(Vec::len), Some(1), "{again:#}");
    assert_eq!(again[0]["gateway_id"], id, "{again:#}");
}

/// A managed gateway whose process failed is lost, not stuck: the only gateway, and so the
/// primary, it can still be deleted (the registry has none after) and its name used again;
/// among others, the primary role moves to the oldest of them. A release without the
/// external-supervisor contract is refused up front, naming the first release that has it.
#[test]
fn a_failed_managed_gateway_can_always_be_deleted_and_its_name_used_again() {
    let d = link_daemon(&[(
        "GATEWAY_SUPERVISOR__MANAGED_RUNTIME__NODE",
        "/nonexistent/node",
    )]);
    let failed = |name: &str, port: u16| -> i64 {
        let res = declare(
            &d,
            &json!({"name": name, "version": "2026.9.6", "port": port}),
        );
        assert_eq!(res.status, 201, "{}", res.text());
        let id = res.json()["managed"]["gateway_id"].as_i64().unwrap();
        wait_for("the install to fail", Duration::from_secs(30), || {
            let m = d.get(&format!("/api/managed/{id}"), &d.admin_key).json()["managed"].clone();
            if m["state"] == "failed" {
                Ok(())
            } else {
                Err(m.to_string())
            }
        });
        id
    };
    let delete = |id: i64| {
        d.call(
            "DELETE",
            &format!("/api/managed/{id}?purge=true"),
            &d.admin_key,
            &json!(null),
        )
    };
    let only = failed("lone", 39200);
    let g = d.get(&format!("/api/gateways/{only}"), &d.admin_key).json()["gateway"].clone();
    assert_eq!(g["is_primary"], true, "the first gateway is primary: {g}");
    let res = delete(only);
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(d.gateways().len(), 0);
    // The name is free again.
    let again = failed("lone", 39200);
    // Among others: the role moves to the oldest other gateway.
    let other = fake(|_| {});
    let kept = add(&d, "kept", &other, Some("fake-token"));
    let res = delete(again);
    assert_eq!(res.status, 200, "{}", res.text());
    let g = d.get(&format!("/api/gateways/{kept}"), &d.admin_key).json()["gateway"].clone();
    assert_eq!(g["is_primary"], true, "{g}");
    // An unmanaged primary still stays, as the seed contract says.
    let res = d.call(
        "DELETE",
        &format!("/api/gateways/{kept}"),
        &d.admin_key,
        &json!(null),
    );
    assert_eq!(res.status, 400, "{}", res.text());
    // Too old to be managed: refused before anything is installed.
    let res = declare(
        &d,
        &json!({"name": "old", "version": "2026.6.35", "port": 39400}),
    );
    assert_eq!(res.status, 400, "{}", res.text());
    let e = res.json();
    assert_eq!(e["details"]["field"], "version", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("releases before 2026.8.1"),
        "{e}"
    );
}
