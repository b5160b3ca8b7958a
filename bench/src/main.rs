//! `gs-bench`: the performance suite. Measures the release daemon against fleets of fake
//! gateways (and one real OpenClaw gateway), prints a table with PASS/FAIL against the targets
//! and writes it as JSON. Run it through `scripts/bench.sh` (builds, installs wrk, raises limits).
//!
//!   gs-bench [all|rest|probe|fleet|failover|storm|real|cluster|capacity|share|approvals|registry]... [--json FILE] [--smoke]
//!            [--daemon PATH] [--openclaw DIR] [--fleet 100,1000,10000,100000] [--steady SECONDS]
//!            [--pg postgres://…]
//!
//! `--smoke` runs every scenario small and short (seconds) and gives no verdict on timing: CI
//! uses it to keep the suite working. Exit code 1 when a target is missed (not in smoke runs).

use gs_test_support::{fake_model, http, real_gateway, sse};

mod approvals;
mod capacity;
mod cluster;
mod daemon;
mod failover;
mod fleet;
mod host;
mod pg;
mod probe;
mod real;
mod reaper;
mod registry;
mod report;
mod rest;
mod scrape;
mod share;
mod storm;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use report::Outcome;

pub struct Options {
    pub daemon: PathBuf,
    pub smoke: bool,
    pub openclaw: Option<PathBuf>,
    pub fleet: Vec<usize>,
    /// `--fleet` was given (the cluster scenario takes its first count; else 10,000).
    pub fleet_given: bool,
    /// The cluster scenario's instances (`--instances`, 2–26; 3 unless given).
    pub instances: usize,
    pub steady_secs: u64,
    /// A PostgreSQL server for the cluster scenario (else GS_TEST_PG_URL).
    pub pg: Option<String>,
}

/// Polls `ready` every 20 ms until it holds; panics with `what` after `deadline`.
pub fn wait_for(what: &str, deadline: Duration, ready: impl FnMut() -> bool) {
    wait_every(what, deadline, Duration::from_millis(20), ready);
}

/// Polls `ready` every `poll` until it holds (a poll that reads a 100,000-gateway cluster's
/// state is itself work the measurement would see); panics with `what` after `deadline`.
pub fn wait_every(what: &str, deadline: Duration, poll: Duration, mut ready: impl FnMut() -> bool) {
    wait_said(what, deadline, poll, || {
        if ready() { Ok(()) } else { Err(String::new()) }
    });
}

/// [`wait_every`] for a condition that says what it saw instead (in the panic at `deadline`).
pub fn wait_said(
    what: &str,
    deadline: Duration,
    poll: Duration,
    mut ready: impl FnMut() -> Result<(), String>,
) {
    let t0 = Instant::now();
    while let Err(saw) = ready() {
        assert!(
            t0.elapsed() < deadline,
            "{what}: not within {deadline:?} {saw}"
        );
        std::thread::sleep(poll);
    }
}

const SCENARIOS: [&str; 11] = [
    "rest",
    "probe",
    "fleet",
    "failover",
    "storm",
    "real",
    "cluster",
    "capacity",
    "share",
    "approvals",
    "registry",
];

fn value_of(args: &[String], name: &str) -> Option<String> {
    args.windows(2).find(|w| w[0] == name).map(|w| w[1].clone())
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("static-server") => {
            let sizes: Vec<usize> = args[1..].iter().filter_map(|a| a.parse().ok()).collect();
            return rest::static_server(&sizes);
        }
        Some("registry-round") => {
            let n = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
            return registry::round_main(n);
        }
        Some("fake-host") => {
            let n = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
            let ping_ms = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0);
            let ip = args
                .get(3)
                .and_then(|a| a.parse().ok())
                .unwrap_or(std::net::Ipv4Addr::LOCALHOST);
            return host::serve(n, ping_ms, ip);
        }
        _ => {}
    }
    reaper::take_signals();
    let opts = Options {
        daemon: value_of(&args, "--daemon")
            .map(PathBuf::from)
            .unwrap_or_else(|| "target/release/gateway-supervisor".into()),
        smoke: args.iter().any(|a| a == "--smoke"),
        openclaw: value_of(&args, "--openclaw")
            .or_else(|| std::env::var("GS_OPENCLAW_DIR").ok())
            .map(PathBuf::from),
        fleet: value_of(&args, "--fleet")
            .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
            .unwrap_or_else(|| vec![100, 1_000, 10_000, 100_000]),
        fleet_given: value_of(&args, "--fleet").is_some(),
        instances: value_of(&args, "--instances")
            .and_then(|v| v.parse().ok())
            .filter(|n| (2..=26).contains(n))
            .unwrap_or(3),
        steady_secs: value_of(&args, "--steady")
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
        pg: value_of(&args, "--pg"),
    };
    let flags_with_values = [
        "--json",
        "--daemon",
        "--openclaw",
        "--fleet",
        "--steady",
        "--instances",
        "--pg",
    ];
    let mut wanted: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if flags_with_values.contains(&a) {
            i += 2;
            continue;
        }
        match a {
            "all" => wanted.extend(SCENARIOS),
            "--smoke" => {}
            s if SCENARIOS.contains(&s) => wanted.push(s),
            other => {
                eprintln!(
                    "unknown argument {other:?}; scenarios: all {}",
                    SCENARIOS.join(" ")
                );
                std::process::exit(2);
            }
        }
        i += 1;
    }
    if wanted.is_empty() {
        wanted.extend(SCENARIOS);
    }

    let mut outcomes: Vec<Outcome> = Vec::new();
    for s in wanted {
        let t0 = Instant::now();
        eprintln!("==> {s}");
        let outcome = match s {
            "rest" => rest::run(&opts),
            "probe" => probe::run(&opts),
            "fleet" => fleet::run(&opts),
            "failover" => failover::run(&opts),
            "storm" => storm::run(&opts),
            "cluster" => cluster::run(&opts),
            "capacity" => capacity::run(&opts),
            "share" => share::run(&opts),
            "approvals" => approvals::run(&opts),
            "registry" => registry::run(&opts),
            "real" => match &opts.openclaw {
                Some(dir) if !opts.smoke => real::run(&opts, dir),
                Some(_) => {
                    eprintln!(
                        "    skipped in smoke runs (the end-to-end test covers real gateways)"
                    );
                    continue;
                }
                None => {
                    eprintln!("    skipped: no --openclaw DIR / GS_OPENCLAW_DIR");
                    continue;
                }
            },
            _ => unreachable!("checked above"),
        };
        eprintln!("    {s} took {:.0} s", t0.elapsed().as_secs_f64());
        outcomes.push(outcome);
    }
    report::print_table(&outcomes, opts.smoke);
    let doc = report::to_json(&outcomes, opts.smoke);
    if let Some(path) = value_of(&args, "--json") {
        std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap_or_default())
            .unwrap_or_else(|e| panic!("write {path}: {e}"));
        eprintln!("written to {path}");
    }
    let failed = report::failures(&outcomes);
    if failed > 0 && !opts.smoke {
        eprintln!("{failed} target(s) missed");
        std::process::exit(1);
    }
}
