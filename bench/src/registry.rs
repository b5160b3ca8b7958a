//! Scenario `registry`: the registry's brain (`RegistryState`, pure) carrying a fleet of
//! 100,000 gateways in this process, without sockets: what one daemon's registry does when
//! such a fleet starts and runs — load the records, start a link each, take the four reports
//! each link sends while it connects (connecting, handshaking, connected, online), then a
//! steady stream of status changes with a failover among them. Measured three times: the
//! wall time of each phase, and the memory the state holds per gateway (RSS growth of this
//! process, the records included).
//!
//! Why in-process: a daemon linking 100,000 fakes needs 100,000 descriptors and its fakes as
//! many again; this machine's hard `RLIMIT_NOFILE` is 20,000 and cannot be raised (EPERM even
//! for root: no `CAP_SYS_RESOURCE` in the sandbox), so the `fleet` scenario, asked for 100,000,
//! measures the 19,000 that fit.
//! What scales with the fleet in the registry is measured here whole; the sockets' share is
//! the `fleet` scenario's per-gateway figure.
//!
//! The limit beside each phase, measured in the same run: the same number of records put in a
//! plain `HashMap` and each looked up four times — what any registry of this many gateways
//! pays at the least.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use gateway_supervisor_actors::link::messages::{LinkState, LinkUpdate};
use gateway_supervisor_actors::model::{
    ConnectionInfo, GatewayId, GatewayRecord, GatewayStatus, LinkPhase,
};
use gateway_supervisor_actors::registry::{Input, RegistryState};
use serde_json::{Value, json};

use crate::Options;
use crate::report::{Outcome, Row, Runs, Target, runs_row};

pub fn run(opts: &Options) -> Outcome {
    let count = if opts.smoke { 1_000 } else { 100_000 };
    // Each round in a process of its own: in one process a round's memory would be the heap the
    // round before freed, and read as no growth at all.
    let rounds: Vec<Round> = (0..if opts.smoke { 1 } else { 3 })
        .map(|_| in_child(count))
        .collect();
    let of = |f: fn(&Round) -> f64| Runs::of(rounds.iter().map(f));
    let n = count as f64;
    let rows: Vec<Row> = vec![
        runs_row(
            "registry",
            format!("{count}: load records"),
            of(|r| r.load_s * 1e3),
            "ms",
        ),
        runs_row(
            "registry",
            format!("{count}: start a link each"),
            of(|r| r.start_s * 1e3),
            "ms",
        ),
        runs_row(
            "registry",
            format!("{count}: 4 reports each, to all online"),
            of(|r| r.connect_s * 1e3),
            "ms",
        )
        .target(Target::AtMost(3_000.0)),
        runs_row(
            "registry",
            format!("{count}: limit, a HashMap of the records and 4 lookups each"),
            of(|r| r.limit_s * 1e3),
            "ms",
        ),
        runs_row(
            "registry",
            format!("{count}: start-up (load + start + reports) / limit"),
            of(|r| (r.load_s + r.start_s + r.connect_s) / r.limit_s),
            "x",
        ),
        runs_row(
            "registry",
            format!(
                "{count}: {} status changes, a failover among them",
                2 * count.min(5_000)
            ),
            of(|r| r.steady_s * 1e3),
            "ms",
        ),
        runs_row(
            "registry",
            format!("{count}: the sorted list, built after a change"),
            of(|r| r.list_s * 1e3),
            "ms",
        ),
        // Readers get pointers in an order kept as writes come: less than building the map.
        runs_row(
            "registry",
            format!("{count}: the sorted list / limit"),
            of(|r| r.list_s / r.limit_s),
            "x",
        )
        .target(Target::AtMost(1.0)),
        runs_row(
            "registry",
            format!("{count}: memory per gateway"),
            Runs::of(
                rounds
                    .iter()
                    .map(|r| r.rss_growth_kib as f64 * 1024.0 / n / 1000.0),
            ),
            "KB",
        )
        .target(Target::AtMost(12.0)),
    ];
    Outcome {
        name: "registry",
        rows,
        raw: json!({
            "gateways": count,
            "runs": rounds.iter().map(|r| json!({
                "load_s": r.load_s, "start_s": r.start_s, "connect_s": r.connect_s,
                "limit_s": r.limit_s, "steady_s": r.steady_s, "list_s": r.list_s,
                "rss_growth_kib": r.rss_growth_kib, "actions": r.actions,
            })).collect::<Vec<Value>>(),
        }),
    }
}

/// Runs one round in `gs-bench registry-round COUNT` and reads its figures back.
fn in_child(count: usize) -> Round {
    let out = std::process::Command::new(std::env::current_exe().expect("own path"))
        .args(["registry-round", &count.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("registry round");
    assert!(
        out.status.success(),
        "registry round failed: {}",
        out.status
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("round figures");
    let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    Round {
        load_s: f("load_s"),
        start_s: f("start_s"),
        connect_s: f("connect_s"),
        limit_s: f("limit_s"),
        steady_s: f("steady_s"),
        list_s: f("list_s"),
        rss_growth_kib: v["rss_growth_kib"].as_u64().unwrap_or(0),
        actions: v["actions"].as_u64().unwrap_or(0) as usize,
    }
}

/// `gs-bench registry-round COUNT`: one round, its figures as JSON on stdout.
#[allow(clippy::print_stdout)]
pub fn round_main(count: usize) {
    let r = round(count);
    println!(
        "{}",
        json!({
            "load_s": r.load_s, "start_s": r.start_s, "connect_s": r.connect_s,
            "limit_s": r.limit_s, "steady_s": r.steady_s, "list_s": r.list_s,
            "rss_growth_kib": r.rss_growth_kib, "actions": r.actions,
        })
    );
}

struct Round {
    load_s: f64,
    start_s: f64,
    connect_s: f64,
    limit_s: f64,
    steady_s: f64,
    list_s: f64,
    rss_growth_kib: u64,
    actions: usize,
}

fn record(id: i64) -> GatewayRecord {
    GatewayRecord {
        is_primary: id == 1,
        ..GatewayRecord::new(
            GatewayId(id),
            format!("gw{id:06}"),
            format!("10.{}.{}.{}", (id >> 16) & 255, (id >> 8) & 255, id & 255),
            18_789,
        )
    }
}

fn report(phase: LinkPhase, status: GatewayStatus, methods: &Arc<Vec<String>>) -> LinkState {
    LinkState {
        connected: phase == LinkPhase::Connected,
        connection: ConnectionInfo {
            state: Some(phase),
            server_version: Some("2026.9.6".into()),
            ..ConnectionInfo::default()
        },
        status,
        last_seen: Some(1_795_238_987),
        latency: Some(3),
        sessions_count: Some(0),
        agents_count: Some(1),
        methods: methods.clone(),
        ..LinkState::default()
    }
}

#[allow(clippy::print_stderr)]
fn round(count: usize) -> Round {
    let ids: Vec<i64> = (1..=count as i64).collect();
    let rss0 = crate::daemon::rss_kib(std::process::id());
    // The limit: the records in a plain map, each looked up four times.
    let t = Instant::now();
    let map: HashMap<i64, GatewayRecord> = ids.iter().map(|id| (*id, record(*id))).collect();
    let mut found = 0usize;
    for _ in 0..4 {
        found += ids.iter().filter(|id| map.contains_key(id)).count();
    }
    let limit_s = t.elapsed().as_secs_f64();
    assert_eq!(found, 4 * count);
    drop(map);

    let t = Instant::now();
    let mut state = RegistryState::new(ids.iter().map(|id| record(*id)).collect(), true);
    let load_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut actions = state.apply(Input::Started).len();
    let start_s = t.elapsed().as_secs_f64();

    // One method list per release, as the link interns them.
    let methods = Arc::new(vec!["health".to_owned(), "sessions.list".to_owned()]);
    let t = Instant::now();
    for (phase, status) in [
        (LinkPhase::Connecting, GatewayStatus::Unknown),
        (LinkPhase::Handshaking, GatewayStatus::Unknown),
        (LinkPhase::Connected, GatewayStatus::Unknown),
        (LinkPhase::Connected, GatewayStatus::Online),
    ] {
        for id in &ids {
            let epoch = state.epoch_of(GatewayId(*id)).expect("linked");
            let state_now = report(phase, status, &methods);
            actions += state
                .apply(Input::Link(LinkUpdate {
                    id: GatewayId(*id),
                    epoch,
                    state: state_now,
                }))
                .len();
        }
    }
    let connect_s = t.elapsed().as_secs_f64();
    let rss_growth_kib = crate::daemon::rss_kib(std::process::id()).saturating_sub(rss0);
    let online = state
        .views()
        .filter(|v| v.record.status == GatewayStatus::Online)
        .count();
    assert_eq!(online, count, "every gateway online");

    // Steady: status changes spread over the fleet, the designated primary lost among them.
    let t = Instant::now();
    let step = (count / 5_000).max(1);
    for (i, id) in ids.iter().step_by(step).take(5_000).enumerate() {
        // The first is the designated primary: it drops (a failover) and comes back; the
        // others degrade and recover.
        let down = if i == 0 {
            (LinkPhase::Backoff, GatewayStatus::Offline)
        } else {
            (LinkPhase::Connected, GatewayStatus::Degraded)
        };
        for (phase, status) in [down, (LinkPhase::Connected, GatewayStatus::Online)] {
            let epoch = state.epoch_of(GatewayId(*id)).expect("linked");
            actions += state
                .apply(Input::Link(LinkUpdate {
                    id: GatewayId(*id),
                    epoch,
                    state: report(phase, status, &methods),
                }))
                .len();
        }
    }
    let steady_s = t.elapsed().as_secs_f64();

    // The sorted list readers get (the whole-list and paged routes, /metrics, the alert
    // watch): built once after each change of the registry's own, then shared; a pong is no
    // such change (the views read their link's numbers when shown).
    let t = Instant::now();
    let list = state.sorted_views();
    let list_s = t.elapsed().as_secs_f64();
    assert_eq!(list.len(), count);
    drop(list);
    eprintln!(
        "    {count}: start-up {:.0} ms (limit {:.0} ms), +{} MiB",
        (load_s + start_s + connect_s) * 1e3,
        limit_s * 1e3,
        rss_growth_kib / 1024
    );
    Round {
        load_s,
        start_s,
        connect_s,
        limit_s,
        steady_s,
        list_s,
        rss_growth_kib,
        actions,
    }
}
