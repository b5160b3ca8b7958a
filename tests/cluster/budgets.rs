//! A disruption budget across two instances of a cluster: the check runs in the transaction
//! that records the disruption, serialized on PostgreSQL, so two instances never both spend the
//! last unit — two suspends through both instances at the same moment end one 200 and one 429,
//! and two rolling restarts carried out by both at once never take more than one gateway out
//! (the fakes sampled every 50 ms).

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use serde_json::json;

use super::{TTL, env_refs, fakes, instance_env, register, wait_one_socket_each};
use gs_test_support::daemon::{Daemon, Database, wait_for};
use gs_test_support::http::Request;
use gs_test_support::outages::OutageSampler;

const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn two_instances_never_spend_a_budget_of_one_twice() {
    let a = Daemon::start_on(Database::postgres(), &env_refs(&instance_env("a", TTL)));
    let b = Daemon::join(&a, &env_refs(&instance_env("b", TTL)));
    let nodes = Arc::new([a, b]);
    let fakes = Arc::new(fakes(4));
    let ids = register(&nodes[0], &fakes);
    wait_one_socket_each(&fakes, Duration::from_secs(30));
    let res = nodes[0].call(
        "PUT",
        "/api/budgets/one",
        &nodes[0].admin_key,
        &json!({"selector": "", "max_unavailable": 1}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    wait_for("every gateway counted in service", DEADLINE, || {
        let b = nodes[1].get("/api/budgets/one", &nodes[1].admin_key).json();
        if b["budget"]["available"] == 4 {
            Ok(())
        } else {
            Err(b.to_string())
        }
    });

    // Two suspends at the same moment, one through each instance: one unit, one winner.
    let barrier = Arc::new(Barrier::new(2));
    let answers: Vec<u16> = (0..2)
        .map(|i| {
            let (nodes, barrier, gw) = (nodes.clone(), barrier.clone(), ids[i]);
            thread::spawn(move || {
                let d = &nodes[i];
                barrier.wait();
                d.send(
                    Request::new("POST", &format!("/api/gateways/{gw}/suspend")).key(&d.admin_key),
                )
                .status
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let mut sorted = answers.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [200, 429], "{answers:?}");
    let suspended = (0..2).find(|i| answers[*i] == 200).unwrap();
    let res = nodes[suspended].send(
        Request::new("POST", &format!("/api/gateways/{}/resume", ids[suspended]))
            .key(&nodes[suspended].admin_key),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    wait_for("every gateway in service again", DEADLINE, || {
        let b = nodes[0].get("/api/budgets/one", &nodes[0].admin_key).json();
        if b["budget"]["available"] == 4 {
            Ok(())
        } else {
            Err(b.to_string())
        }
    });

    // Two rolling restarts, started through both instances, carried out by both at once.
    let f = fakes.clone();
    let mut sampler = OutageSampler::start(f.len(), Duration::from_millis(50), move |i| {
        f[i].out_of_service()
    });
    let ops: Vec<(usize, String)> = (0..2)
        .map(|i| {
            let d = &nodes[i];
            let res = d.call(
                "POST",
                "/api/fleet/restart",
                &d.admin_key,
                &json!({"gateway_ids": [ids[2 * i], ids[2 * i + 1]], "max_unavailable": 2, "wait_ready_seconds": 30}),
            );
            assert_eq!(res.status, 202, "{}", res.text());
            (i, res.json()["operation"]["id"].as_str().unwrap().to_owned())
        })
        .collect();
    for (i, op) in &ops {
        let d = &nodes[*i];
        let done = wait_for("the rolling restart over", Duration::from_secs(120), || {
            let op =
                d.get(&format!("/api/operations/{op}"), &d.admin_key).json()["operation"].clone();
            if op["state"] == "running" {
                Err(op.to_string())
            } else {
                Ok(op)
            }
        });
        assert_eq!(done["state"], "succeeded", "{done:#}");
    }
    assert_eq!(
        sampler.most_at_once(),
        1,
        "never more than one gateway out of service at once"
    );
}
