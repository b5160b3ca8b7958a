//! One gateway per address across the instances of a cluster: two instances asked at the same
//! moment to register one `host:port` under two names each find it free in memory (neither has
//! the other's row yet), and the database's check inside the write (`db/gateways/address.rs`)
//! lets one of them have it.

use std::time::Duration;

use serde_json::json;

use super::{TTL, cluster_with, create_at_once, wait_held};

const DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn two_instances_asked_for_one_address_at_once_register_it_once() {
    let nodes = cluster_with(TTL);
    let (a, b) = (&nodes[0], &nodes[1]);
    // A first gateway, the primary, known to both: the creates below ask for no primary.
    let first = a.call(
        "POST",
        "/api/gateways",
        &a.admin_key,
        &json!({"name": "first", "host": "first.invalid", "port": 18789}),
    );
    assert_eq!(first.status, 201, "{}", first.text());
    for d in [a, b] {
        wait_held(d, 1, DEADLINE);
    }
    const ADDRESSES: usize = 12;
    for i in 0..ADDRESSES {
        // The same address, its host's case differing: one gateway all the same.
        let answers = create_at_once(&[
            (
                a,
                json!({"name": format!("a{i}"), "host": format!("Edge-{i}.invalid"), "port": 18789}),
            ),
            (
                b,
                json!({"name": format!("b{i}"), "host": format!("edge-{i}.INVALID"), "port": 18789}),
            ),
        ]);
        let mut statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
        statuses.sort_unstable();
        assert_eq!(statuses, vec![201, 409], "address {i}: {answers:?}");
        let refused = answers
            .iter()
            .find(|(s, _)| *s == 409)
            .map(|(_, body)| body);
        assert_eq!(
            refused.map(|b| b["error"].clone()),
            Some(json!("duplicate_address")),
            "address {i}: {answers:?}"
        );
    }
    // Every instance reads one gateway per address.
    for d in &nodes {
        let listed = d.get("/api/gateways", &d.admin_key).json();
        let count = listed["gateways"].as_array().map(Vec::len);
        assert_eq!(count, Some(ADDRESSES + 1), "{listed}");
    }
}
