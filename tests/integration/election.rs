//! Acting primary election: failover to a stand-in and failback to the designated primary.

use std::time::Duration;

use crate::support::fleet::{add, fake, gateway, link_daemon, wait_gateway};
use crate::support::online;
use crate::support::sse::Sse;

const DEADLINE: Duration = Duration::from_secs(20);

#[test]
fn failover_and_failback_are_events_metrics_and_audit_rows() {
    let a = fake(|_| {});
    let b = fake(|_| {});
    let d = link_daemon(&[]);
    let a_id = add(&d, "a", &a, Some("fake-token"));
    let b_id = add(&d, "b", &b, Some("fake-token"));
    wait_gateway(&d, a_id, "a online", online);
    wait_gateway(&d, b_id, "b online", online);
    assert_eq!(gateway(&d, a_id)["acting_primary"], true);
    assert_eq!(gateway(&d, b_id)["acting_primary"], false);
    let mut events = Sse::open(d.addr, &d.admin_key, None, "?types=gateway.primary");

    // The designated primary's socket closes: b takes over at once. (On PostgreSQL events go
    // through the database: the first election's event may reach the stream after it opened,
    // so the failover is the event that names b.)
    a.stop();
    let e = events.until(DEADLINE, |e| {
        e.data["type"] == "gateway.primary" && e.data["payload"]["acting_primary"] == b_id
    });
    assert_eq!(e.data["payload"]["acting_primary"], b_id);
    assert_eq!(e.data["payload"]["previous"], a_id);
    assert_eq!(e.data["payload"]["designated"], a_id);
    assert_eq!(e.data["payload"]["reason"], "designated_unavailable");
    assert_eq!(gateway(&d, b_id)["acting_primary"], true);
    assert_eq!(
        gateway(&d, a_id)["is_primary"],
        true,
        "the designation does not move"
    );

    // It recovers: failback.
    a.resume().unwrap();
    let e = events.until(DEADLINE, |e| {
        e.data["type"] == "gateway.primary" && e.data["payload"]["acting_primary"] == a_id
    });
    assert_eq!(e.data["payload"]["acting_primary"], a_id);
    assert_eq!(e.data["payload"]["reason"], "designated");
    wait_gateway(&d, a_id, "a acting again", |g| g["acting_primary"] == true);

    let metrics = d.get("/metrics", "").text();
    let changes: f64 = metrics
        .lines()
        .find(|l| l.starts_with("gateway_supervisor_primary_changes_total "))
        .and_then(|l| l.split(' ').nth(1)?.parse().ok())
        .unwrap();
    assert!(changes >= 2.0, "{changes}");
    let audit = d.get("/api/audit?limit=50", &d.admin_key).json();
    let primary_rows = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "gateway.primary")
        .count();
    assert!(primary_rows >= 2, "{audit}");
}

#[test]
fn without_failback_the_stand_in_keeps_the_role() {
    let a = fake(|_| {});
    let b = fake(|_| {});
    let d = link_daemon(&[("GATEWAY_SUPERVISOR__ELECTION__FAILBACK", "false")]);
    let a_id = add(&d, "a", &a, Some("fake-token"));
    let b_id = add(&d, "b", &b, Some("fake-token"));
    wait_gateway(&d, b_id, "b online", online);
    wait_gateway(&d, a_id, "a online", online);
    a.stop();
    wait_gateway(&d, b_id, "b acting", |g| g["acting_primary"] == true);
    a.resume().unwrap();
    wait_gateway(&d, a_id, "a online again", online);
    assert_eq!(gateway(&d, b_id)["acting_primary"], true);
    assert_eq!(gateway(&d, a_id)["acting_primary"], false);
}
