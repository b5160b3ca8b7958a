//! PostgreSQL for the cluster scenarios (`cluster`, `capacity`): the server and a fresh
//! database on it, one statement through psql, and what the server says it spent — its CPU,
//! the heartbeat statement's calls, rows written per table, transactions.

use std::collections::BTreeMap;
use std::process::Command;

use crate::Options;
use crate::daemon::cpu_ticks;

/// One SQL statement through psql; its single value.
pub(crate) fn psql(url: &str, sql: &str) -> Option<String> {
    let out = Command::new("psql")
        .args([url, "-XAtqc", sql])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The PostgreSQL server a scenario runs on: `--pg URL`, else GS_TEST_PG_URL.
pub(crate) fn pg_server(opts: &Options, scenario: &str) -> String {
    opts.pg
        .clone()
        .or_else(|| std::env::var("GS_TEST_PG_URL").ok())
        .unwrap_or_else(|| panic!("the {scenario} scenario needs a PostgreSQL server: --pg URL or GS_TEST_PG_URL (scripts/bench.sh starts one)"))
}

/// Drops the database [`create_database`] made on `base`.
pub(crate) fn drop_database(base: &str) {
    let _ = psql(
        &format!("{base}/postgres"),
        &format!("DROP DATABASE IF EXISTS gs_bench_{}", std::process::id()),
    );
}

/// A fresh database on the server `base` names.
pub(crate) fn create_database(base: &str) -> String {
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
pub(crate) fn postgres_ticks() -> u64 {
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

/// The heartbeat statement's calls and total time (ms), where `pg_stat_statements` is loaded
/// (with epoch leases, the one statement a steady round writes).
pub(crate) fn renewal_stats(url: &str) -> Option<(f64, f64)> {
    let text = psql(
        url,
        "SELECT coalesce(sum(calls),0) || ' ' || coalesce(sum(total_exec_time),0) FROM pg_stat_statements \
         WHERE query LIKE 'INSERT INTO cluster_instances%' \
         AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some((it.next()??, it.next()??))
}

/// The tables a steady cluster writes for its leases (instances, gateway leases, roles).
pub(crate) const LEASE_TABLES: [&str; 4] = [
    "cluster_instances",
    "gateway_leases",
    "cluster_roles",
    "cluster_acting_primary",
];

/// Rows written so far per table (inserts, updates, deletes), from PostgreSQL's own statistics.
pub(crate) fn table_writes(url: &str) -> BTreeMap<String, i64> {
    psql(
        url,
        "SELECT relname || '=' || (n_tup_ins + n_tup_upd + n_tup_del) FROM pg_stat_user_tables",
    )
    .unwrap_or_default()
    .lines()
    .filter_map(|l| {
        let (t, n) = l.split_once('=')?;
        Some((t.to_owned(), n.parse().ok()?))
    })
    .collect()
}

pub(crate) fn transactions(url: &str) -> f64 {
    psql(
        url,
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()",
    )
    .and_then(|v| v.parse().ok())
    .unwrap_or(f64::NAN)
}
