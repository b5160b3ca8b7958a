//! Two daemons on one PostgreSQL (GS_TEST_PG_URL; scripts/test.sh starts one) supervising two
//! REAL OpenClaw 2026.9.6 gateways: each gateway is linked by one instance; a spawn through
//! the instance that does not link the primary runs there anyway (forwarded to its owner);
//! `kill -9` the primary's owner and the survivor adopts it within the lease, and spawns keep
//! working through the survivor.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use gs_test_support::daemon::{Daemon, Database, online, wait_for};
use gs_test_support::{fake_model, real_gateway::RealGateway};
use serde_json::{Value, json};

use super::{DEADLINE, add, finished, free_base_port, spawn};

/// A short lease, so that adoption takes seconds.
const TTL: Duration = Duration::from_secs(3);

fn instance(id: &str) -> Vec<(String, String)> {
    [
        ("GATEWAY_SUPERVISOR__CLUSTER__INSTANCE_ID", id),
        ("GATEWAY_SUPERVISOR__CLUSTER__LEASE_TTL", "3s"),
        ("GATEWAY_SUPERVISOR__CLUSTER__RENEW_INTERVAL", "1s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__HEARTBEAT_INTERVAL", "1s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__BACKOFF_MAX", "2s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__HEALTH_INTERVAL", "1h"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The instance holding gateway `id`'s unexpired lease, as `d` sees the cluster.
fn owner_of(d: &Daemon, id: i64) -> Option<String> {
    let view = d.get("/api/cluster", &d.admin_key).json();
    view["leases"].as_array()?.iter().find_map(|l| {
        (l["gateway_id"] == id && l["expires_in_ms"].as_i64() > Some(0))
            .then(|| l["owner"].as_str().map(str::to_owned))
            .flatten()
    })
}

/// Waits until `d` reads gateway `id` online and acting as primary — with `own_link`, over a
/// link of its own (connected there), not as the row another instance wrote.
fn wait_primary_online(d: &Daemon, id: i64, own_link: bool, deadline: Duration) -> Value {
    wait_for("the primary online and acting", deadline, || {
        let res = d.get(&format!("/api/gateways/{id}"), &d.admin_key);
        let g = res.json()["gateway"].clone();
        let shown = if own_link {
            online(&g)
        } else {
            g["status"] == "online"
        };
        if shown && g["acting_primary"] == true {
            Ok(g)
        } else {
            Err(format!("{} {}", res.status, res.text()))
        }
    })
}

#[test]
fn two_instances_share_real_gateways_and_survive_the_primary_s_owner_dying() {
    let install = PathBuf::from(
        std::env::var("GS_OPENCLAW_DIR")
            .expect("GS_OPENCLAW_DIR must point at the openclaw install (scripts/test.sh)"),
    );
    let base = free_base_port();
    let model = fake_model::FakeModel::start();
    let mut one = RealGateway::new(&install, base, "cluster-token-1", None);
    let mut two = RealGateway::new(&install, base + 300, "cluster-token-2", None);
    one.use_model(&model.base_url());
    two.use_model(&model.base_url());
    one.start();
    two.start();
    one.wait_ready();
    two.wait_ready();

    let a = Daemon::start_on(Database::postgres(), &refs(&instance("a")));
    let b = Daemon::join(&a, &refs(&instance("b")));
    let mut nodes = [a, b];
    // The first gateway registered is the primary.
    let primary = add(&nodes[0], "one", "127.0.0.1", one.port, "cluster-token-1");
    let other = add(&nodes[0], "two", "127.0.0.1", two.port, "cluster-token-2");
    for node in &nodes {
        wait_primary_online(node, primary, false, DEADLINE);
        wait_for("the second gateway online", DEADLINE, || {
            let g = node.get(&format!("/api/gateways/{other}"), &node.admin_key);
            let g = g.json()["gateway"].clone();
            (g["status"] == "online").then_some(()).ok_or(g.to_string())
        });
        // The reads above come from the database; a spawn is routed on the instance's memory,
        // which the change feed brings up to date a moment later (docs/design.md, *Cluster*,
        // "Reading the fleet") — `/metrics` reads that memory.
        wait_for(
            "both gateways online in the instance's memory",
            DEADLINE,
            || {
                let text = node.get("/metrics", "").text();
                let online = text.lines().find_map(|l| {
                    l.strip_prefix("gateway_supervisor_gateways{status=\"online\"} ")
                });
                (online == Some("2"))
                    .then_some(())
                    .ok_or(format!("{online:?} online"))
            },
        );
    }
    let owner = wait_for("the primary's lease", DEADLINE, || {
        owner_of(&nodes[0], primary).ok_or("no owner yet".to_owned())
    });
    let (owner_at, survivor_at) = if owner == "a" { (0, 1) } else { (1, 0) };

    // Through the instance that does not link the primary: the spawn runs on the primary.
    let res = nodes[survivor_at].call(
        "POST",
        "/api/spawn",
        &nodes[survivor_at].admin_key,
        &json!({"agent": "main", "task": "ping", "timeout_seconds": 180}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    assert_eq!(res.header("x-gs-answered-by"), Some(owner.as_str()));
    assert_eq!(res.json()["gateway_id"], primary);
    let done = finished(
        &nodes[survivor_at],
        res.json()["spawn_id"].as_str().unwrap(),
    );
    assert_eq!(done["status"], "ok", "{done}");

    // The primary's owner dies; the survivor adopts the primary within the lease and 5 s.
    nodes[owner_at].kill9();
    let killed = Instant::now();
    let survivor = &nodes[survivor_at];
    let survivor_id = if survivor_at == 0 { "a" } else { "b" };
    wait_for(
        "the primary adopted",
        TTL + Duration::from_secs(5),
        || match owner_of(survivor, primary) {
            Some(o) if o == survivor_id => Ok(()),
            o => Err(format!("owner {o:?}")),
        },
    );
    // Over its own link, not only shown online: until the runner's round reaches the
    // registry, the survivor shows the row the dead owner last wrote (`online`) though the
    // lease is already its own, and a spawn in that window finds no link up.
    wait_primary_online(survivor, primary, true, DEADLINE);
    eprintln!(
        "a real gateway adopted and online in {:?}",
        killed.elapsed()
    );

    // Spawns keep working through the survivor, on the primary.
    let s = spawn(
        survivor,
        json!({"agent": "main", "task": "ping again", "timeout_seconds": 180}),
    );
    assert_eq!(s["gateway_id"], primary);
    let done = finished(survivor, s["spawn_id"].as_str().unwrap());
    assert_eq!(done["status"], "ok", "{done}");
    one.stop();
    two.stop();
}
