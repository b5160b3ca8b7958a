//! A real PostgreSQL failover under three instances (issue 61): a primary with a synchronous
//! streaming replica, the instances on a multi-host URL with `target_session_attrs=read-write`;
//! the primary is killed (`pg_ctl stop -m immediate`) and the replica promoted (`pg_promote()`,
//! a new timeline). Every instance sees another server answer its heartbeat: it counts the
//! failover, audits it, holds adoption — nothing taken — for one lease TTL plus the clocks' skew
//! allowance, and compares its leases with the new server's. No gateway ever has two sockets,
//! every one has an owner again, what was acknowledged before is there, and every instance
//! writes again. Then the faults around it: an asynchronous replica that missed the last
//! hand-overs (with the instance that made them alive, or dying with the primary), and a
//! promoted server whose clock runs 5 s ahead or behind (libfaketime). Each checked at the
//! fakes: never two sockets at one gateway, fencing epochs that only grow, none from two
//! instances.

use std::sync::Arc;
use std::time::Duration;

use fake_gateway::FakeGateway;
use gs_test_support::daemon::{Daemon, Database, psql, wait_for};

use super::private_pg::PrivatePg;
use super::{
    Sampler, TTL, cluster_on, cluster_view, env_refs, fakes, instance_env, owners, register,
    wait_every_gateway_owned, wait_one_socket_each, wait_ready_again,
};

/// `gateway_supervisor_database_failovers_total` as `d` exports it (0 when absent).
fn failovers_seen(d: &Daemon) -> u64 {
    d.get("/metrics", "")
        .text()
        .lines()
        .find_map(|l| l.strip_prefix("gateway_supervisor_database_failovers_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// At each fake, as it was dialled (`instance:epoch` at every connect): no two instances'
/// frames interleaved (issue 61's first check); the fencing epoch never goes back, grows at
/// each change of instance, and no epoch was sent by two instances — also across a failover to
/// a server that missed the last leases (its second).
fn assert_one_owner_at_a_time(fakes: &[FakeGateway]) {
    for (i, f) in fakes.iter().enumerate() {
        let frames = f.dialer_frames();
        assert_eq!(
            fake_gateway::frame_overlaps(&frames),
            0,
            "fake {i} received frames from two instances at once: {frames:#?}"
        );
        let faults = fake_gateway::fencing_faults(&f.dialers());
        assert!(
            faults.is_empty(),
            "fake {i}: {faults:?} ({:?})",
            f.dialers()
        );
    }
}

/// Waits until every one of `nodes` has counted exactly one failover.
fn wait_each_sees_one_failover(nodes: &[&Daemon]) {
    for d in nodes {
        wait_for(
            "the instance to see the failover",
            Duration::from_secs(30),
            || match failovers_seen(d) {
                1 => Ok(()),
                // (The cluster's view may be unreadable until the new server answers.)
                n => Err(format!(
                    "failovers counted: {n}; GET /api/cluster: {}",
                    d.get("/api/cluster", &d.admin_key).text()
                )),
            },
        );
    }
}

/// The database as the instances are told of it: both servers, the writable one wanted.
fn both(primary: &PrivatePg, replica: &PrivatePg) -> Database {
    Database::Postgres {
        url: format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/gs?target_session_attrs=read-write&connect_timeout=2",
            primary.port, replica.port
        ),
    }
}

#[test]
fn a_database_failover_is_seen_by_every_instance_holds_adoption_and_keeps_one_owner_each() {
    let primary = PrivatePg::start();
    let replica = primary.replica();
    primary.synchronous();
    let nodes = cluster_on(both(&primary, &replica), TTL);
    let fakes = Arc::new(fakes(30));
    register(&nodes[0], &fakes);
    wait_one_socket_each(&fakes, Duration::from_secs(30));
    wait_every_gateway_owned(&nodes[0], 30);
    // Acknowledged before the failover: a key made through one instance, and a spawn.
    let before = nodes[1].create_key("viewer", "made-before-the-failover");
    let spawned = spawn(&nodes[1], "before-failover");
    assert_eq!(spawned.status, 202, "{}", spawned.text());
    for d in &nodes {
        assert_eq!(failovers_seen(d), 0, "no failover yet");
    }
    let sampler = Sampler::start(&fakes);

    primary.kill();
    // A spawn asked for while no primary answers (the pool waits up to 10 s for a connection,
    // then 503): whatever its answer, asked again under the same Idempotency-Key once the
    // failover is over, it runs at most once.
    let during = std::thread::scope(|scope| {
        let asked = scope.spawn(|| spawn(&nodes[0], "during-failover"));
        replica.promote();
        asked.join().unwrap()
    });

    // Every instance saw the new server, and held adoption for it.
    wait_each_sees_one_failover(&nodes.iter().collect::<Vec<_>>());
    wait_for(
        "one audit row per instance",
        Duration::from_secs(10),
        || {
            let audited = psql(
                &replica.url("gs"),
                "SELECT coalesce(string_agg(target_id || ' ' || \
             (details::jsonb->'from'->>'timeline') || '->' || \
             (details::jsonb->'to'->>'timeline') || ' held ' || (details::jsonb->>'hold_ms'), \
             ', ' ORDER BY target_id), '') \
             FROM audit_log WHERE action = 'cluster.db_failover'",
            );
            // Held for the lease (3 s) and the default skew allowance (5 s).
            if audited == "a 1->2 held 8000, b 1->2 held 8000, c 1->2 held 8000" {
                Ok(())
            } else {
                Err(audited)
            }
        },
    );

    wait_every_gateway_owned(&nodes[0], 30);
    wait_one_socket_each(&fakes, TTL + Duration::from_secs(15));
    for d in &nodes {
        wait_ready_again(d);
        // The hold has ended by now (one TTL and 5 s after the failover at most).
        wait_for("adoption paced again", Duration::from_secs(15), || {
            let adoption = cluster_view(d)["adoption"].clone();
            if adoption["state"] == "paced" {
                Ok(())
            } else {
                Err(adoption.to_string())
            }
        });
    }
    // What was acknowledged is there (synchronous replication), and every instance writes.
    assert_eq!(nodes[2].get("/api/gateways", &before).status, 200);
    for (i, d) in nodes.iter().enumerate() {
        let key = d.create_key("viewer", &format!("made-after-on-{i}"));
        assert_eq!(nodes[(i + 1) % 3].get("/api/gateways", &key).status, 200);
    }
    // The spawns: the one acknowledged before is the same spawn asked again anywhere, the one
    // asked during the failover is taken once asked again, each ran once at its gateway.
    let again = spawn(&nodes[2], "before-failover");
    assert_eq!(again.status, 202, "{}", again.text());
    assert_eq!(again.json()["spawn_id"], spawned.json()["spawn_id"]);
    let retried = wait_for(
        "the spawn asked during the failover taken",
        Duration::from_secs(20),
        || {
            let res = spawn(&nodes[2], "during-failover");
            if res.status == 202 {
                Ok(res)
            } else {
                Err(format!("{} {}", res.status, res.text()))
            }
        },
    );
    if during.status == 202 {
        assert_eq!(retried.json()["spawn_id"], during.json()["spawn_id"]);
    }
    for res in [&spawned, &retried] {
        let id = res.json()["spawn_id"].as_str().unwrap().to_owned();
        let done = gs_test_support::daemon::spawn_finished(&nodes[0], &id, Duration::from_secs(30));
        assert_eq!(done["status"], "ok", "{done}");
    }
    let runs: usize = fakes.iter().map(|f| f.runs_started()).sum();
    assert_eq!(
        runs, 2,
        "each spawn ran once (the one during the failover answered {})",
        during.status
    );
    assert_eq!(sampler.finish(), 1, "a gateway had two sockets at once");
    assert_one_owner_at_a_time(&fakes);
}

/// `POST /api/spawn` through `d` under `idempotency_key` (the same task each time).
fn spawn(d: &Daemon, idempotency_key: &str) -> gs_test_support::daemon::Response {
    d.send(
        gs_test_support::daemon::Request::new("POST", "/api/spawn")
            .key(&d.admin_key)
            .header("Idempotency-Key", idempotency_key)
            .json(&serde_json::json!({"agent": "main", "task": format!("say {idempotency_key}")})),
    )
}

/// An asynchronous replica that missed the last hand-overs: `a` and `b` share the fleet, the
/// replica stops following, `c` joins and takes its third — from `a` and `b`, on the primary
/// only — and then the primary dies and the replica is promoted. The new server says `a` and
/// `b` last held the gateways `c` links. Without the failover hold, `a` and `b` (whose rows
/// lapsed on the stale server) would take them straight back — "own only" — while `c` still
/// links them; with it nobody takes anything until `c` has compared its leases with the new
/// server's and stopped those links. The fakes, not the daemons, say whether any gateway ever
/// had two sockets, and whether a fencing epoch went back or was sent by two instances.
#[test]
fn a_failover_to_a_replica_that_missed_the_last_hand_overs_never_gives_a_gateway_two_owners() {
    failover_past_lost_hand_overs(false);
}

/// The same, with `c` killed with the primary: its gateways go to `a` and `b`, whose new server
/// has them at the fencing epoch before `c`'s. Taken at that epoch plus one, they would reach
/// the gateways under the epoch `c` last sent; on the new timeline they start above 2^32.
#[test]
fn an_instance_dying_with_the_primary_leaves_no_fencing_epoch_sent_twice() {
    failover_past_lost_hand_overs(true);
}

fn failover_past_lost_hand_overs(c_dies_too: bool) {
    let primary = PrivatePg::start();
    let replica = primary.replica();
    let db = both(&primary, &replica);
    let a = Daemon::start_on(db, &env_refs(&instance_env("a", TTL)));
    let b = Daemon::join(&a, &env_refs(&instance_env("b", TTL)));
    let fakes = Arc::new(fakes(30));
    register(&a, &fakes);
    wait_one_socket_each(&fakes, Duration::from_secs(30));
    wait_every_gateway_owned(&a, 30);
    replica.stop_following();

    let sampler = Sampler::start(&fakes);
    let mut c = Daemon::join(&a, &env_refs(&instance_env("c", TTL)));
    wait_for("c to take its share", Duration::from_secs(30), || {
        let by = owners(&cluster_view(&a));
        match by.get("c") {
            Some(n) if *n >= 5 && by.values().sum::<usize>() == 30 => Ok(()),
            _ => Err(format!("{by:?}")),
        }
    });
    wait_one_socket_each(&fakes, Duration::from_secs(15));
    // The hand-overs are on the primary only.
    assert_eq!(
        psql(
            &replica.url("gs"),
            "SELECT count(*) FROM gateway_leases WHERE owner = 'c'"
        ),
        "0",
        "the replica saw c's leases"
    );

    primary.kill();
    if c_dies_too {
        c.kill9();
    }
    replica.promote();
    let nodes: Vec<&Daemon> = if c_dies_too {
        vec![&a, &b]
    } else {
        vec![&a, &b, &c]
    };
    wait_each_sees_one_failover(&nodes);
    wait_every_gateway_owned(&a, 30);
    wait_one_socket_each(&fakes, TTL + Duration::from_secs(20));
    assert_eq!(sampler.finish(), 1, "a gateway had two sockets at once");
    assert_one_owner_at_a_time(&fakes);
}

/// The promoted replica's clock runs 5 s ahead of the old primary's: every instance row it
/// holds (3 s leases) reads expired at once, so every instance lapses, and every gateway is
/// linked again after the hold — never by two instances, under epochs that only grow.
#[test]
fn a_failover_to_a_server_whose_clock_runs_ahead_keeps_one_owner_per_gateway() {
    failover_to_a_clock("+5s");
}

/// 5 s behind: the old rows look younger, nothing lapses early; the same guarantees.
#[test]
fn a_failover_to_a_server_whose_clock_runs_behind_keeps_one_owner_per_gateway() {
    failover_to_a_clock("-5s");
}

fn failover_to_a_clock(offset: &str) {
    let primary = PrivatePg::start();
    let replica = primary.replica();
    primary.synchronous();
    replica.restart_with_clock(offset);
    // The standby's clock is `offset` from this machine's.
    let apart: f64 = psql(
        &replica.url("postgres"),
        "SELECT extract(epoch FROM clock_timestamp())",
    )
    .parse()
    .unwrap();
    let here = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let want: f64 = offset.trim_end_matches('s').parse().unwrap();
    assert!(
        ((apart - here) - want).abs() < 2.0,
        "the replica's clock is {:.1} s apart, not {want}",
        apart - here
    );
    let nodes = cluster_on(both(&primary, &replica), TTL);
    let fakes = Arc::new(fakes(30));
    register(&nodes[0], &fakes);
    wait_one_socket_each(&fakes, Duration::from_secs(30));
    wait_every_gateway_owned(&nodes[0], 30);
    let sampler = Sampler::start(&fakes);

    primary.kill();
    replica.promote();
    wait_each_sees_one_failover(&nodes.iter().collect::<Vec<_>>());
    wait_every_gateway_owned(&nodes[0], 30);
    wait_one_socket_each(&fakes, TTL + Duration::from_secs(20));
    assert_eq!(sampler.finish(), 1, "a gateway had two sockets at once");
    assert_one_owner_at_a_time(&fakes);
}
