//! Maintenance windows end by themselves in a cluster too: every instance looks every 5 s for
//! the windows that ran out, asking the database for those few rows (`stored_maintenance_over`,
//! a partial index) rather than reading the fleet, and the write that ends one ends it once
//! (`maintenance_until <= now` in its filter), however many instances found it.

use std::time::Duration;

use gs_test_support::daemon::{psql, wait_for};
use serde_json::json;

use super::{cluster, wait_held};

const DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn a_window_that_ran_out_is_ended_once_and_every_instance_reads_it_ended() {
    let nodes = cluster();
    let (a, b) = (&nodes[0], &nodes[1]);
    // Nobody listens there: maintenance needs no link.
    let mut ids = Vec::new();
    for (name, port) in [("first", 1), ("kept", 2), ("ended", 3)] {
        let res = a.call(
            "POST",
            "/api/gateways",
            &a.admin_key,
            &json!({"name": name, "host": "maintenance.invalid", "port": port}),
        );
        assert_eq!(res.status, 201, "{}", res.text());
        ids.push(res.json()["gateway"]["id"].as_i64().expect("an id"));
    }
    let (kept, ended) = (ids[1], ids[2]);
    // A write goes through an instance's memory.
    wait_held(b, 3, DEADLINE);
    for (id, body) in [
        (kept, json!({"reason": "no end"})),
        (ended, json!({"reason": "disk", "duration_seconds": 2})),
    ] {
        let path = format!("/api/gateways/{id}/maintenance");
        let res = b.call("POST", &path, &b.admin_key, &body);
        assert_eq!(res.status, 200, "{}", res.text());
    }
    for d in &nodes {
        wait_for("the window ended", DEADLINE, || {
            let g = d
                .get(&format!("/api/gateways/{ended}"), &d.admin_key)
                .json();
            g["gateway"]["maintenance"]
                .is_null()
                .then_some(())
                .ok_or(format!("{g}"))
        });
    }
    let count = |action: &str| {
        let sql = format!("SELECT count(*) FROM audit_log WHERE action = '{action}'");
        psql(&a.database_url(), &sql).trim().to_owned()
    };
    assert_eq!(count("gateway.maintenance.expired"), "1", "ended once");
    for d in &nodes {
        let g = d.get(&format!("/api/gateways/{kept}"), &d.admin_key).json();
        assert_eq!(g["gateway"]["maintenance"]["reason"], "no end", "{g}");
    }
}
