//! Scenario 7, the cluster: three instances on one PostgreSQL sharing 10,000 fake gateways (in
//! `fake-host` processes, pinging every 25 s), with the default leases (15 s TTL, renewed every
//! 3 s). Measured: a cold start of all three with the fleet registered → every gateway online
//! and linked once; the database's cost in a steady window (transactions/s, rows written from
//! `pg_stat_user_tables` — every table's, and the lease tables' — the heartbeat statement's
//! calls and time where `pg_stat_statements` is loaded, PostgreSQL's CPU share, the instances'
//! CPU share); adoption after `kill -9` of one instance (median / p99 over the
//! trials: from the kill to every one of its gateways linked again by a survivor); the most
//! sockets any one gateway had at once throughout (sampled every 50 ms by the fakes; must be
//! 1); and `GET /api/gateways` on each instance next to a static body of the same size.
//!
//! The PostgreSQL server comes from `--pg URL` or GS_TEST_PG_URL (scripts/bench.sh starts a
//! throwaway one with `pg_stat_statements` when neither is set); a fresh database is created
//! on it. File descriptors: each instance holds ~3,400 gateway sockets and its pool, each fake
//! host 2 × 2,500; the hard limit of 20,000 per process is far; the fakes are split over
//! processes for that limit and so that their CPU is not the daemons'.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Options;
use crate::daemon::{Daemon, TICKS_PER_SEC};
use crate::host::{FakeHost, peak, sum};
use crate::pg::{
    LEASE_TABLES, create_database, drop_database, pg_server, postgres_ticks, psql, renewal_stats,
    table_writes, transactions,
};
use crate::report::{Outcome, Row, Target, row, summary};
use crate::rest::{StaticServer, median, wrk};

/// The two rows every multi-instance scenario checks at the gateways: at most one socket per
/// gateway at any sample, and no two instances' frames overlapping at one.
pub(crate) fn one_owner_rows(scenario: &'static str, peak: usize, overlaps: usize) -> [Row; 2] {
    [
        row(
            scenario,
            "most sockets one gateway had at once",
            peak as f64,
            "sockets",
        )
        .target(Target::AtMost(1.0)),
        row(
            scenario,
            "frame intervals from two instances that overlapped at one gateway",
            overlaps as f64,
            "pairs",
        )
        .target(Target::AtMost(0.0)),
    ]
}

pub(crate) fn instance_env(id: &str, url: &str, smoke: bool) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "GATEWAY_SUPERVISOR__DATABASE__URL".to_owned(),
            url.to_owned(),
        ),
        (
            "GATEWAY_SUPERVISOR__CLUSTER__INSTANCE_ID".to_owned(),
            id.to_owned(),
        ),
    ];
    if smoke {
        env.push((
            "GATEWAY_SUPERVISOR__CLUSTER__LEASE_TTL".to_owned(),
            "3s".to_owned(),
        ));
        env.push((
            "GATEWAY_SUPERVISOR__CLUSTER__RENEW_INTERVAL".to_owned(),
            "1s".to_owned(),
        ));
    }
    env
}

pub(crate) fn refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The instances' ids: `a`, `b`, … (`--instances`, 3 unless given).
fn names(k: usize) -> Vec<String> {
    (b'a'..=b'z')
        .take(k)
        .map(|c| char::from(c).to_string())
        .collect()
}

/// Gateways each instance holds an unexpired lease on, as instance `d` reads the cluster.
pub(crate) fn owners(d: &Daemon) -> std::collections::BTreeMap<String, usize> {
    d.get("/api/cluster")
        .and_then(|v| v["instances"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|i| {
            let n = i["gateways"].as_u64()?;
            let id = i["instance_id"].as_str()?.to_owned();
            (n > 0).then_some((id, n as usize))
        })
        .collect()
}

#[allow(clippy::print_stderr)]
pub fn run(opts: &Options) -> Outcome {
    let base = pg_server(opts, "cluster");
    let k = opts.instances;
    let instances = names(k);
    let (count, steady, trials, rounds, seconds) = if opts.smoke {
        (300, 2, 2, 1, 2)
    } else {
        let count = if opts.fleet_given {
            opts.fleet[0]
        } else {
            10_000
        };
        // Each trial at 100,000 relinks a tenth of the fleet twice; three give a median.
        let trials = if count >= 100_000 { 3 } else { 10 };
        (count, opts.steady_secs, trials, 3, 10)
    };
    let big = count >= 100_000;
    // Polls of the cluster's state at 100,000 gateways read every lease: not every 20 ms.
    let poll = Duration::from_millis(if big { 1_000 } else { 20 });
    let url = create_database(&base);
    let mut hosts = FakeHost::fleet(count, Some(Duration::from_secs(25)));
    let addrs: Vec<std::net::SocketAddr> = hosts.iter().flat_map(|h| h.addrs.clone()).collect();

    let first = Daemon::start(
        &opts.daemon,
        &refs(&instance_env(&instances[0], &url, opts.smoke)),
    );
    first.add_gateways(&addrs);
    let mut nodes = vec![first];
    // At 100,000 the first instance registers the fleet and each other one is only created
    // (its state directory, its key) before the cold start: ten instances joining one by one
    // and settling would take longer than the run.
    if big {
        nodes[0].stop();
    }
    for id in &instances[1..] {
        let mut n = Daemon::join(&nodes[0], &refs(&instance_env(id, &url, opts.smoke)));
        if big {
            n.stop();
        }
        nodes.push(n);
    }
    let deadline = Duration::from_secs(if big { 1_200 } else { 600 });
    if !big {
        for n in &nodes {
            n.wait_online(count, deadline, Duration::from_millis(500));
        }
        // Cold start: every instance stopped (leases released), then all started at once.
        for n in nodes.iter_mut() {
            n.stop();
        }
    }
    for h in &mut hosts {
        h.cmd("mark");
        h.cmd("peakreset");
    }
    let t0 = Instant::now();
    for n in nodes.iter_mut() {
        n.relaunch();
    }
    // Every instance answers its API: the last one is ready.
    let ready = t0.elapsed();
    crate::wait_every("every fake linked once", deadline, poll, || {
        sum(&mut hosts, "fresh") >= count && sum(&mut hosts, "sockets") == count
    });
    let linked = t0.elapsed();
    for n in &nodes {
        n.wait_online(count, deadline, poll.max(Duration::from_millis(100)));
    }
    let all_online = t0.elapsed();
    // The first instance up takes what it sees no one else for; placement then hands each
    // newcomer its share (the holder closes, then releases, then the newcomer links).
    let even = count / k;
    crate::wait_every(
        "the fleet spread within 20 % of even",
        deadline,
        poll,
        || {
            let by = owners(&nodes[0]);
            by.len() == k
                && by
                    .values()
                    .all(|n| n * 10 >= even * 8 && n * 10 <= even * 12)
                && by.values().sum::<usize>() == count
                && sum(&mut hosts, "sockets") == count
        },
    );
    let balanced = t0.elapsed();
    let spread = owners(&nodes[0]);
    eprintln!(
        "    {count} gateways over {k}: last instance ready in {:.2} s, linked in {:.2} s, online on every instance in {:.2} s, balanced in {:.2} s; spread {spread:?}",
        ready.as_secs_f64(),
        linked.as_secs_f64(),
        all_online.as_secs_f64(),
        balanced.as_secs_f64()
    );

    // Steady window: the database's and the instances' cost while nothing changes (after the
    // hand-overs' first writes and session lists have settled, and each gateway's cron list
    // was read once).
    if !opts.smoke {
        crate::wait_every(
            "every gateway's cron list read",
            deadline,
            poll.max(Duration::from_millis(200)),
            || {
                nodes
                    .iter()
                    .map(|n| n.metric_sum("gateway_supervisor_cron_list_reads_total"))
                    .sum::<f64>()
                    >= count as f64
            },
        );
    }
    // The registries' first periodic save, a minute after each started, stores every link's
    // first latency (measured after the handshake's status row): one row per link-up, start-up's
    // cost and not the steady state's (a window over it read 398 rows/s, 10,000 at once).
    if !opts.smoke {
        let first_save = Duration::from_secs(
            gateway_supervisor_actors::store::LinkRecord::LAST_SEEN_EVERY as u64 + 2,
        );
        std::thread::sleep((t0 + ready + first_save).saturating_duration_since(Instant::now()));
    }
    // 11 s: PostgreSQL counts an idle backend's writes up to 10 s late
    // (`PGSTAT_IDLE_INTERVAL`), so the hand-overs' rows are counted before the window.
    std::thread::sleep(Duration::from_secs(if opts.smoke { 1 } else { 11 }));
    let _ = psql(&url, "SELECT pg_stat_statements_reset()");
    let (tx0, renew0, pg0) = (transactions(&url), renewal_stats(&url), postgres_ticks());
    let tables0 = table_writes(&url);
    let cpu0: Vec<u64> = nodes.iter().map(|n| n.cpu_ticks()).collect();
    let w0 = Instant::now();
    std::thread::sleep(Duration::from_secs(steady));
    let window = w0.elapsed().as_secs_f64();
    let tx_per_s = (transactions(&url) - tx0) / window;
    let daemon_share: Vec<f64> = nodes
        .iter()
        .zip(&cpu0)
        .map(|(n, c0)| (n.cpu_ticks() - c0) as f64 / TICKS_PER_SEC / window)
        .collect();
    let pg_share = (postgres_ticks() - pg0) as f64 / TICKS_PER_SEC / window;
    // Resident memory per gateway each instance links (the most of any instance).
    let held = owners(&nodes[0]);
    let rss_per_gateway_kb = nodes
        .iter()
        .zip(&instances)
        .filter_map(|(n, id)| {
            let g = *held.get(id)?;
            Some(n.rss_kib() as f64 * 1.024 / g as f64)
        })
        .fold(0.0, f64::max);
    // A Prometheus scrape of each instance: the per-gateway gauges are built for it.
    let scrapes: Vec<crate::scrape::Scrape> = nodes.iter().map(crate::scrape::measure).collect();
    for (s, id) in scrapes.iter().zip(&instances) {
        eprintln!(
            "    /metrics on {id}: {} B in {:.1} ms (median of 3), RSS {:+} KiB over the three",
            s.bytes, s.ms, s.rss_rise_kib
        );
    }
    // Statistics a busy backend has not flushed yet are flushed within a second of idling.
    std::thread::sleep(Duration::from_secs(2));
    let by_table: BTreeMap<String, i64> = table_writes(&url)
        .into_iter()
        .map(|(t, n)| {
            let before = tables0.get(&t).copied().unwrap_or(0);
            (t, n - before)
        })
        .filter(|(_, n)| *n != 0)
        .collect();
    eprintln!("    rows written in the steady window ({window:.0} s), by table: {by_table:?}");
    let rows_per_s = by_table.values().sum::<i64>() as f64 / window;
    let lease_rows_per_s = LEASE_TABLES
        .iter()
        .filter_map(|t| by_table.get(*t))
        .sum::<i64>() as f64
        / window;
    // What the database spends its statements on (where pg_stat_statements is loaded).
    let top_statements = psql(
        &url,
        "SELECT string_agg(calls || ' ' || left(regexp_replace(query, '\\s+', ' ', 'g'), 90), E'\\n' ORDER BY calls DESC) \
         FROM (SELECT calls, query FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         ORDER BY calls DESC LIMIT 10) t",
    )
    .unwrap_or_default();
    let renewals = match (renew0, renewal_stats(&url)) {
        (Some((c0, t0)), Some((c1, t1))) if c1 > c0 => {
            Some(((c1 - c0) / window, (t1 - t0) / (c1 - c0)))
        }
        _ => None,
    };

    // Adoption: kill -9 one instance; every gateway it linked is linked again by a survivor,
    // and no survivor holds more than ⌈1.1 × even⌉ of the fleet.
    let mut adoption_ms = Vec::new();
    let mut most_on_a_survivor = 0usize;
    let survivors_even = count.div_ceil(k - 1);
    for trial in 0..trials {
        let victim = trial % k;
        let survivor = (victim + 1) % k;
        let owned = owners(&nodes[survivor])
            .get(&instances[victim])
            .copied()
            .unwrap_or(0);
        for h in &mut hosts {
            h.cmd("mark");
        }
        let t0 = Instant::now();
        nodes[victim].kill9();
        crate::wait_every(
            "the victim's gateways linked again",
            deadline,
            poll.min(Duration::from_millis(100)),
            || sum(&mut hosts, "fresh") >= owned,
        );
        adoption_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        crate::wait_every("the survivors' leases read", deadline, poll, || {
            let by = owners(&nodes[survivor]);
            !by.contains_key(&instances[victim]) && by.values().sum::<usize>() == count
        });
        let by = owners(&nodes[survivor]);
        most_on_a_survivor = most_on_a_survivor.max(by.values().copied().max().unwrap_or(0));
        // Back, and its share handed back to it, before the next trial.
        nodes[victim].relaunch();
        crate::wait_every("the victim's share back", deadline, poll, || {
            let by = owners(&nodes[survivor]);
            by.get(&instances[victim]).copied().unwrap_or(0) * k * 10 >= count * 8
                && by.values().sum::<usize>() == count
                && sum(&mut hosts, "sockets") == count
        });
        eprintln!(
            "    trial {trial}: {} gateways of {} adopted in {:.0} ms; survivors {by:?}",
            owned,
            instances[victim],
            adoption_ms.last().unwrap_or(&0.0)
        );
    }
    let peak = peak(&mut hosts);
    let overlaps = sum(&mut hosts, "overlaps");

    // The read path on (at most three) instances, next to a static body of the same size.
    let size = nodes[0].get_bytes("/api/gateways").len();
    let limit = StaticServer::start(&[size]);
    let mut reads = Vec::new();
    for (i, n) in nodes.iter().enumerate().take(3) {
        let (mut ours, mut lim) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let w = wrk(&format!("http://{}/api/gateways", n.addr), &n.key, seconds);
            assert_eq!(
                w.non_2xx, 0,
                "GET /api/gateways on {}: non-2xx",
                instances[i]
            );
            ours.push(w.rps);
            lim.push(
                wrk(
                    &format!("http://127.0.0.1:{}/0", limit.port),
                    "unused",
                    seconds,
                )
                .rps,
            );
        }
        reads.push((ours, lim));
    }

    let (p50, p99, adoption_raw) = summary(adoption_ms.clone());
    let mut rows = vec![
        row(
            "cluster",
            format!("{count} gateways, {k} instances: cold start -> every gateway linked once"),
            linked.as_secs_f64(),
            "s",
        ),
        row(
            "cluster",
            format!("{count}: last instance ready -> every gateway linked once"),
            (linked - ready).as_secs_f64(),
            "s",
        )
        .target(Target::AtMost(60.0)),
        row(
            "cluster",
            format!("{count}: cold start -> online on every instance"),
            all_online.as_secs_f64(),
            "s",
        ),
        row(
            "cluster",
            format!("{count}: cold start -> spread within 20 % of even, one socket each"),
            balanced.as_secs_f64(),
            "s",
        ),
        row(
            "cluster",
            format!("database transactions/s, steady ({k} instances)"),
            tx_per_s,
            "tx/s",
        ),
        row(
            "cluster",
            "PostgreSQL CPU share, steady",
            pg_share * 100.0,
            "% core",
        ),
        row(
            "cluster",
            format!("instances' CPU share, steady (max of {k})"),
            daemon_share.iter().copied().fold(0.0, f64::max) * 100.0,
            "% core",
        ),
        row(
            "cluster",
            format!("instances' CPU share, steady (sum of {k}, {count} gateways)"),
            daemon_share.iter().sum::<f64>() * 100.0,
            "% core",
        )
        // 0.5 µs per gateway-second: 5 % of a core for 100,000 (a target at that scale only:
        // a small fleet's cost is the instances' own).
        .target_if(big, Target::AtMost(count as f64 * 0.5e-6 * 100.0)),
        row(
            "cluster",
            "RSS per gateway linked, steady (most of any instance)",
            rss_per_gateway_kb,
            "KB",
        )
        .target_if(big, Target::AtMost(12.0)),
        row(
            "cluster",
            format!("adoption after kill -9, median of {trials}"),
            p50,
            "ms",
        ),
        row(
            "cluster",
            format!("adoption after kill -9, p99 of {trials}"),
            p99,
            "ms",
        )
        .target(Target::AtMost(if opts.smoke { 8_000.0 } else { 20_000.0 })),
        row(
            "cluster",
            format!(
                "most gateways on one survivor after a kill -9 (even over {}: {survivors_even})",
                k - 1
            ),
            most_on_a_survivor as f64,
            "gateways",
        )
        .target(Target::AtMost((survivors_even as f64 * 1.1).ceil())),
    ];
    rows.extend(one_owner_rows("cluster", peak, overlaps));
    rows.push(
        row(
            "cluster",
            "database rows written/s, steady (every table)",
            rows_per_s,
            "rows/s",
        )
        .target(Target::AtMost(10.0)),
    );
    rows.push(
        row(
            "cluster",
            "lease rows written/s, steady (instances, leases, roles)",
            lease_rows_per_s,
            "rows/s",
        )
        // Epoch leases: one heartbeat row per instance per round, whatever the fleet.
        .target(Target::AtMost(4.0)),
    );
    if let Some((per_s, ms)) = renewals {
        rows.push(row(
            "cluster",
            "heartbeat statements/s (one per instance per round)",
            per_s,
            "stmt/s",
        ));
        rows.push(row(
            "cluster",
            format!(
                "heartbeat statement time, mean ({} gateways/instance)",
                count / k
            ),
            ms,
            "ms",
        ));
    }
    if let Some(s) = scrapes.iter().max_by_key(|s| s.bytes) {
        rows.push(row(
            "cluster",
            "/metrics body, the largest instance's",
            s.bytes as f64 / 1e6,
            "MB",
        ));
        rows.push(row(
            "cluster",
            "/metrics scrape time, the largest instance's, median of 3",
            s.ms,
            "ms",
        ));
    }
    rows.push(row(
        "cluster",
        "RSS rise over 3 scrapes, most of any instance",
        scrapes.iter().map(|s| s.rss_rise_kib).max().unwrap_or(0) as f64 / 1024.0,
        "MB",
    ));
    let mut raw_reads = serde_json::Map::new();
    for (i, (ours, lim)) in reads.iter().enumerate() {
        let (o, l) = (median(ours.clone()), median(lim.clone()));
        rows.push(row(
            "cluster",
            format!(
                "GET /api/gateways on {} ({size} B) / static limit",
                instances[i]
            ),
            o / l,
            "ratio",
        ));
        raw_reads.insert(
            instances[i].clone(),
            json!({"rps": ours, "limit_rps": lim, "body_bytes": size}),
        );
    }
    let raw = json!({
        "gateways": count, "instances": k, "spread": spread, "last_ready_s": ready.as_secs_f64(),
        "summed_instance_cpu_share": daemon_share.iter().sum::<f64>(), "rss_per_gateway_kb": rss_per_gateway_kb,
        "overlaps": overlaps, "most_on_a_survivor": most_on_a_survivor,
        "linked_s": linked.as_secs_f64(), "online_s": all_online.as_secs_f64(),
        "balanced_s": balanced.as_secs_f64(),
        "steady_window_s": window, "tx_per_s": tx_per_s, "postgres_cpu_share": pg_share,
        "instance_cpu_share": daemon_share,
        "rows_by_table_in_window": by_table,
        "top_statements_in_window": top_statements.lines().collect::<Vec<_>>(),
        "heartbeats_per_s": renewals.map(|r| r.0), "heartbeat_mean_ms": renewals.map(|r| r.1),
        "rows_written_per_s": rows_per_s, "lease_rows_written_per_s": lease_rows_per_s,
        "adoption": adoption_raw, "adoption_ms": adoption_ms, "peak_sockets": peak,
        "reads": Value::Object(raw_reads),
        "scrapes": scrapes.iter().map(|s| json!({"bytes": s.bytes, "ms": s.ms, "rss_rise_kib": s.rss_rise_kib})).collect::<Vec<_>>(),
        "wrk": format!("wrk -t2 -c64 -d{seconds}s, {rounds} rounds per instance, interleaved with the limit"),
    });
    drop(nodes);
    drop_database(&base);
    Outcome {
        name: "cluster",
        rows,
        raw,
    }
}
