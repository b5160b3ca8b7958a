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

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Options;
use crate::daemon::{Daemon, TICKS_PER_SEC, cpu_ticks};
use crate::host::{FakeHost, sum};
use crate::report::{Outcome, Target, row, summary};
use crate::rest::{StaticServer, median, wrk};

const INSTANCES: [&str; 3] = ["a", "b", "c"];

/// One SQL statement through psql; its single value.
fn psql(url: &str, sql: &str) -> Option<String> {
    let out = Command::new("psql")
        .args([url, "-XAtqc", sql])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A fresh database on the server `base` names.
fn create_database(base: &str) -> String {
    let name = format!("gs_bench_{}", std::process::id());
    let admin = format!("{base}/postgres");
    psql(&admin, &format!("DROP DATABASE IF EXISTS {name}"));
    psql(&admin, &format!("CREATE DATABASE {name}"))
        .unwrap_or_else(|| panic!("CREATE DATABASE on {base} failed (is psql installed?)"));
    let url = format!("{base}/{name}");
    // Where the server loads it (scripts/bench.sh's does): the renewal statement's own numbers.
    psql(&url, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    url
}

/// CPU ticks of every PostgreSQL server process on this machine.
fn postgres_ticks() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(cpu_ticks)
        .sum()
}

/// Unexpired leases by owner, as instance `d` reads the cluster.
fn owners(d: &Daemon) -> std::collections::BTreeMap<String, usize> {
    let mut by = std::collections::BTreeMap::new();
    if let Some(leases) = d
        .get("/api/cluster")
        .and_then(|v| v["leases"].as_array().cloned())
    {
        for l in leases {
            if l["expires_in_ms"].as_i64() > Some(0)
                && let Some(o) = l["owner"].as_str()
            {
                *by.entry(o.to_owned()).or_insert(0) += 1;
            }
        }
    }
    by
}

/// The heartbeat statement's calls and total time (ms), where `pg_stat_statements` is loaded
/// (with epoch leases, the one statement a steady round writes).
fn renewal_stats(url: &str) -> Option<(f64, f64)> {
    let text = psql(
        url,
        "SELECT coalesce(sum(calls),0) || ' ' || coalesce(sum(total_exec_time),0) FROM pg_stat_statements \
         WHERE query LIKE 'INSERT INTO cluster_instances%' \
         AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some((it.next()??, it.next()??))
}

/// Rows written so far (inserts, updates, deletes), over every table and over the lease
/// tables (instances, gateway leases, roles), from PostgreSQL's own statistics.
fn row_writes(url: &str) -> (f64, f64) {
    let text = psql(
        url,
        "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) || ' ' || \
         coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del) FILTER (WHERE relname IN \
           ('cluster_instances', 'gateway_leases', 'cluster_roles', 'cluster_acting_primary')), 0) \
         FROM pg_stat_user_tables",
    )
    .unwrap_or_default();
    let mut it = text
        .split_whitespace()
        .map(|v| v.parse::<f64>().unwrap_or(0.0));
    (it.next().unwrap_or(0.0), it.next().unwrap_or(0.0))
}

fn transactions(url: &str) -> f64 {
    psql(
        url,
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()",
    )
    .and_then(|v| v.parse().ok())
    .unwrap_or(f64::NAN)
}

fn instance_env(id: &str, url: &str, smoke: bool) -> Vec<(String, String)> {
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

fn refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[allow(clippy::print_stderr)]
pub fn run(opts: &Options) -> Outcome {
    let base = opts
        .pg
        .clone()
        .or_else(|| std::env::var("GS_TEST_PG_URL").ok())
        .expect("the cluster scenario needs a PostgreSQL server: --pg URL or GS_TEST_PG_URL (scripts/bench.sh starts one)");
    let (count, steady, trials, rounds, seconds) = if opts.smoke {
        (300, 2, 2, 1, 2)
    } else {
        (10_000, opts.steady_secs, 10, 3, 10)
    };
    let url = create_database(&base);
    let mut hosts = FakeHost::fleet(count, Some(Duration::from_secs(25)));
    let ports: Vec<u16> = hosts.iter().flat_map(|h| h.ports.clone()).collect();

    let first = Daemon::start(&opts.daemon, &refs(&instance_env("a", &url, opts.smoke)));
    first.add_gateways(&ports);
    let b = Daemon::join(&first, &refs(&instance_env("b", &url, opts.smoke)));
    let c = Daemon::join(&first, &refs(&instance_env("c", &url, opts.smoke)));
    let mut nodes = vec![first, b, c];
    let deadline = Duration::from_secs(600);
    for n in &nodes {
        n.wait_online(count, deadline, Duration::from_millis(500));
    }

    // Cold start: every instance stopped (leases released), then all three started at once.
    for n in nodes.iter_mut() {
        n.stop();
    }
    for h in &mut hosts {
        h.cmd("mark");
        h.cmd("peakreset");
    }
    let t0 = Instant::now();
    for n in nodes.iter_mut() {
        n.relaunch();
    }
    crate::wait_for("every fake linked once", deadline, || {
        sum(&mut hosts, "fresh") >= count && sum(&mut hosts, "sockets") == count
    });
    let linked = t0.elapsed();
    for n in &nodes {
        n.wait_online(count, deadline, Duration::from_millis(100));
    }
    let all_online = t0.elapsed();
    // The first instance up takes what it sees no one else for; placement then hands each
    // newcomer its share (the holder closes, then releases, then the newcomer links).
    let even = count / INSTANCES.len();
    crate::wait_for("the fleet spread within 20 % of even", deadline, || {
        let by = owners(&nodes[0]);
        by.len() == INSTANCES.len()
            && by
                .values()
                .all(|n| n * 10 >= even * 8 && n * 10 <= even * 12)
            && by.values().sum::<usize>() == count
            && sum(&mut hosts, "sockets") == count
    });
    let balanced = t0.elapsed();
    let spread = owners(&nodes[0]);
    eprintln!(
        "    {count} gateways: linked in {:.2} s, online on every instance in {:.2} s, balanced in {:.2} s; spread {spread:?}",
        linked.as_secs_f64(),
        all_online.as_secs_f64(),
        balanced.as_secs_f64()
    );

    // Steady window: the database's and the instances' cost while nothing changes (after the
    // hand-overs' first writes and session lists have settled).
    std::thread::sleep(Duration::from_secs(if opts.smoke { 1 } else { 10 }));
    let _ = psql(&url, "SELECT pg_stat_statements_reset()");
    let (tx0, renew0, pg0) = (transactions(&url), renewal_stats(&url), postgres_ticks());
    let rows0 = row_writes(&url);
    let cpu0: Vec<u64> = nodes.iter().map(|n| n.cpu_ticks()).collect();
    let w0 = Instant::now();
    std::thread::sleep(Duration::from_secs(steady));
    let window = w0.elapsed().as_secs_f64();
    let tx_per_s = (transactions(&url) - tx0) / window;
    // Statistics a busy backend has not flushed yet are flushed within a second of idling.
    std::thread::sleep(Duration::from_secs(2));
    let rows1 = row_writes(&url);
    let (rows_per_s, lease_rows_per_s) =
        ((rows1.0 - rows0.0) / window, (rows1.1 - rows0.1) / window);
    let pg_share = (postgres_ticks() - pg0) as f64 / TICKS_PER_SEC / window;
    let daemon_share: Vec<f64> = nodes
        .iter()
        .zip(&cpu0)
        .map(|(n, c0)| (n.cpu_ticks() - c0) as f64 / TICKS_PER_SEC / window)
        .collect();
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

    // Adoption: kill -9 one instance; every gateway it linked is linked again by a survivor.
    let mut adoption_ms = Vec::new();
    for trial in 0..trials {
        let victim = trial % INSTANCES.len();
        let survivor = (victim + 1) % INSTANCES.len();
        let owned = owners(&nodes[survivor])
            .get(INSTANCES[victim])
            .copied()
            .unwrap_or(0);
        for h in &mut hosts {
            h.cmd("mark");
        }
        let t0 = Instant::now();
        nodes[victim].kill9();
        crate::wait_for("the victim's gateways linked again", deadline, || {
            sum(&mut hosts, "fresh") >= owned
        });
        adoption_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        // Back, and its share handed back to it, before the next trial.
        nodes[victim].relaunch();
        crate::wait_for("the victim's share back", deadline, || {
            let by = owners(&nodes[survivor]);
            by.get(INSTANCES[victim]).copied().unwrap_or(0) * INSTANCES.len() * 10 >= count * 8
                && by.values().sum::<usize>() == count
                && sum(&mut hosts, "sockets") == count
        });
        eprintln!(
            "    trial {trial}: {} gateways of {} adopted in {:.0} ms",
            owned,
            INSTANCES[victim],
            adoption_ms.last().unwrap_or(&0.0)
        );
    }
    let peak: usize = hosts
        .iter_mut()
        .map(|h| h.cmd("peak").parse::<usize>().unwrap_or(usize::MAX))
        .max()
        .unwrap_or(0);

    // The read path on each instance, next to a static body of the same size.
    let size = nodes[0].get_bytes("/api/gateways").len();
    let limit = StaticServer::start(&[size]);
    let mut reads = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let (mut ours, mut lim) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let w = wrk(&format!("http://{}/api/gateways", n.addr), &n.key, seconds);
            assert_eq!(
                w.non_2xx, 0,
                "GET /api/gateways on {}: non-2xx",
                INSTANCES[i]
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
            format!("{count} gateways, 3 instances: cold start -> every gateway linked once"),
            linked.as_secs_f64(),
            "s",
        ),
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
            "database transactions/s, steady (3 instances)",
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
            "instances' CPU share, steady (max of 3)",
            daemon_share.iter().copied().fold(0.0, f64::max) * 100.0,
            "% core",
        ),
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
            "most sockets one gateway had at once",
            peak as f64,
            "sockets",
        )
        .target(Target::AtMost(1.0)),
    ];
    rows.push(row(
        "cluster",
        "database rows written/s, steady (every table)",
        rows_per_s,
        "rows/s",
    ));
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
                count / 3
            ),
            ms,
            "ms",
        ));
    }
    let mut raw_reads = serde_json::Map::new();
    for (i, (ours, lim)) in reads.iter().enumerate() {
        let (o, l) = (median(ours.clone()), median(lim.clone()));
        rows.push(row(
            "cluster",
            format!(
                "GET /api/gateways on {} ({size} B) / static limit",
                INSTANCES[i]
            ),
            o / l,
            "ratio",
        ));
        raw_reads.insert(
            INSTANCES[i].to_owned(),
            json!({"rps": ours, "limit_rps": lim, "body_bytes": size}),
        );
    }
    let raw = json!({
        "gateways": count, "instances": 3, "spread": spread,
        "linked_s": linked.as_secs_f64(), "online_s": all_online.as_secs_f64(),
        "balanced_s": balanced.as_secs_f64(),
        "steady_window_s": window, "tx_per_s": tx_per_s, "postgres_cpu_share": pg_share,
        "instance_cpu_share": daemon_share,
        "top_statements_in_window": top_statements.lines().collect::<Vec<_>>(),
        "heartbeats_per_s": renewals.map(|r| r.0), "heartbeat_mean_ms": renewals.map(|r| r.1),
        "rows_written_per_s": rows_per_s, "lease_rows_written_per_s": lease_rows_per_s,
        "adoption": adoption_raw, "adoption_ms": adoption_ms, "peak_sockets": peak,
        "reads": Value::Object(raw_reads),
        "wrk": format!("wrk -t2 -c64 -d{seconds}s, {rounds} rounds per instance, interleaved with the limit"),
    });
    drop(nodes);
    let _ = psql(
        &format!("{base}/postgres"),
        &format!("DROP DATABASE IF EXISTS gs_bench_{}", std::process::id()),
    );
    Outcome {
        name: "cluster",
        rows,
        raw,
    }
}
