//! One gateway per address across the instances of a cluster: two instances asked at the same
//! moment to register one `host:port` under two names each find it free in memory (neither has
//! the other's row yet), and the database's check inside the write (`db/gateways/address.rs`)
//! lets one of them have it.

use std::sync::Barrier;
use std::thread;

use std::time::Duration;

use gs_test_support::daemon::wait_for;
use serde_json::json;

use super::{TTL, cluster_with};

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
        wait_for("the first gateway in memory", DEADLINE, || {
            let text = d.get("/metrics", "").text();
            let held: f64 = text
                .lines()
                .filter_map(|l| l.strip_prefix("gateway_supervisor_gateways{status="))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum();
            (held == 1.0).then_some(()).ok_or(format!("{held} held"))
        });
    }
    const ADDRESSES: usize = 12;
    for i in 0..ADDRESSES {
        let at_once = Barrier::new(2);
        // The same address, its host's case differing: one gateway all the same.
        let asked = [
            (a, format!("a{i}"), format!("Edge-{i}.invalid")),
            (b, format!("b{i}"), format!("edge-{i}.INVALID")),
        ];
        let answers: Vec<(u16, serde_json::Value)> = thread::scope(|s| {
            let asks: Vec<_> = asked
                .iter()
                .map(|(d, name, host)| {
                    let at_once = &at_once;
                    s.spawn(move || {
                        at_once.wait();
                        let res = d.call(
                            "POST",
                            "/api/gateways",
                            &d.admin_key,
                            &json!({"name": name, "host": host, "port": 18789}),
                        );
                        (res.status, res.json())
                    })
                })
                .collect();
            asks.into_iter()
                .map(|t| t.join().expect("a create"))
                .collect()
        });
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
