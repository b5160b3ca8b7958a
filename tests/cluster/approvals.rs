//! The approvals inbox in a cluster: an approval a gateway asks of its owner is in every
//! instance's inbox; an answer through an instance that does not link the gateway is carried
//! out by its owner; and two instances answering the same approval at the same moment end it
//! once — exactly one 200, the other 409 naming the answer that won.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

use super::{TTL, cluster_view, env_refs, fakes, instance_env, register, wait_one_socket_each};
use gs_test_support::daemon::{Daemon, Database, wait_for};

const DEADLINE: Duration = Duration::from_secs(20);
const MINUTE: Duration = Duration::from_secs(60);

fn pending_on(d: &Daemon, gw: i64, id: &str) {
    wait_for("the approval pending there", DEADLINE, || {
        let res = d.get(&format!("/api/approvals/{gw}/{id}"), &d.admin_key);
        if res.status == 200 && res.json()["approval"]["status"] == "pending" {
            Ok(())
        } else {
            Err(res.text())
        }
    });
}

#[test]
fn an_approval_is_answered_once_through_any_instance() {
    // Every instance answers approvals (the database is fresh: the setting is the daemons').
    let db = Database::postgres();
    let ttl = TTL;
    let with_approvals = |id: &str| {
        let mut env = instance_env(id, ttl);
        env.push((
            "GATEWAY_SUPERVISOR__APPROVALS__ENABLED".into(),
            "true".into(),
        ));
        env
    };
    let a = Daemon::start_on(db, &env_refs(&with_approvals("a")));
    let b = Daemon::join(&a, &env_refs(&with_approvals("b")));
    let c = Daemon::join(&a, &env_refs(&with_approvals("c")));
    let nodes = [a, b, c];
    let fakes = fakes(3);
    let ids = register(&nodes[0], &fakes);
    wait_one_socket_each(&fakes, Duration::from_secs(30));
    let view = cluster_view(&nodes[0]);
    let owner_of = |gw: i64| -> usize {
        let owner = view["leases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["gateway_id"] == gw)
            .map(|l| l["owner"].as_str().unwrap().to_owned())
            .unwrap();
        ["a", "b", "c"].iter().position(|n| *n == owner).unwrap()
    };
    let (gw, fake) = (ids[0], &fakes[0]);
    let owner = owner_of(gw);
    let others: Vec<usize> = (0..3).filter(|i| *i != owner).collect();
    wait_for("the owner's link an approval client", DEADLINE, || {
        let g = nodes[owner]
            .get(&format!("/api/gateways/{gw}"), &nodes[owner].admin_key)
            .json();
        if g["gateway"]["connection"]["approval_client"] == true {
            Ok(())
        } else {
            Err(g.to_string())
        }
    });

    // Asked of the owner, in every instance's inbox; answered through one that does not link it.
    let first = fake.request_approval("exec", "printf one", MINUTE);
    for d in &nodes {
        pending_on(d, gw, &first);
    }
    let via = &nodes[others[0]];
    let res = via.call(
        "POST",
        &format!("/api/approvals/{gw}/{first}/resolve"),
        &via.admin_key,
        &json!({"decision": "allow-once"}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("x-gs-answered-by"), Some(["a", "b", "c"][owner]));
    assert_eq!(fake.approval(&first).unwrap()["decision"], "allow-once");

    // Two non-owners answer the same approval at the same moment: one wins.
    let second = fake.request_approval("exec", "printf two", MINUTE);
    for d in &nodes {
        pending_on(d, gw, &second);
    }
    let nodes = Arc::new(nodes);
    let start = Arc::new(Barrier::new(2));
    let answers: Vec<(u16, Value)> = [(others[0], "deny"), (others[1], "allow-once")]
        .into_iter()
        .map(|(i, decision)| {
            let (nodes, start, second) = (nodes.clone(), start.clone(), second.clone());
            thread::spawn(move || {
                let d = &nodes[i];
                start.wait();
                let res = d.call(
                    "POST",
                    &format!("/api/approvals/{gw}/{second}/resolve"),
                    &d.admin_key,
                    &json!({"decision": decision}),
                );
                (res.status, res.json())
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let mut statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{answers:#?}");
    let won = answers.iter().find(|(s, _)| *s == 200).unwrap().1["approval"]["decision"].clone();
    let lost = &answers.iter().find(|(s, _)| *s == 409).unwrap().1;
    assert_eq!(lost["error"], "approval_already_resolved", "{lost:#}");
    assert_eq!(
        lost["details"]["decision"], won,
        "the loser is told the answer that won"
    );
    assert_eq!(
        fake.approval(&second).unwrap()["decision"],
        won,
        "the gateway kept the same"
    );
}
