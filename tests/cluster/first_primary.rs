//! The first gateway of an empty fleet is its primary. Two instances asked at the same moment
//! to register a first gateway each find the fleet empty in memory and each ask for a primary;
//! the database lets one primary stand (the second write demotes the first, queued behind it:
//! `db/gateways/mod.rs::demote_primary`), and neither is refused — before, the second hit the
//! one-primary index and was answered 409 `duplicate_name` for a name nobody held.

use std::time::Duration;

use gs_test_support::daemon::{Daemon, Database, wait_for};
use serde_json::json;

use super::{TTL, create_at_once, env_refs, instance_env, wait_held};

const DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn two_first_gateways_registered_at_once_are_both_registered_one_primary() {
    // A primary cannot be deleted while it is not lost, so each round is a new, empty fleet.
    const ROUNDS: usize = 5;
    for round in 0..ROUNDS {
        let a = Daemon::start_on(Database::postgres(), &env_refs(&instance_env("a", TTL)));
        let b = Daemon::join(&a, &env_refs(&instance_env("b", TTL)));
        let answers = create_at_once(&[
            (&a, json!({"name": "a", "host": "first.invalid", "port": 1})),
            (&b, json!({"name": "b", "host": "first.invalid", "port": 2})),
        ]);
        let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
        assert_eq!(statuses, vec![201, 201], "round {round}: {answers:?}");
        // Both instances come to hold the two, one of them primary, in memory and as listed.
        for d in [&a, &b] {
            wait_held(d, 2, DEADLINE);
            wait_for("one primary", DEADLINE, || {
                let listed = d.get("/api/gateways", &d.admin_key).json();
                let gateways = listed["gateways"].as_array().cloned().unwrap_or_default();
                let primaries = gateways.iter().filter(|g| g["is_primary"] == json!(true));
                match (gateways.len(), primaries.count()) {
                    (2, 1) => Ok(()),
                    other => Err(format!("(gateways, primaries) {other:?}: {listed}")),
                }
            });
        }
    }
}
