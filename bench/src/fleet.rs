//! Scenario 3, fleet scale: 100, 1,000, 10,000 and 100,000 fake gateways (in `fake-host`
//! processes, pinging every 25 s like the real gateway) registered in one daemon with default
//! settings (30 s heartbeat; past 10,000, 3 metric series a gateway, [`detail`]). A fleet
//! larger than the machine's hard open-file limit lets one daemon link is measured at the
//! largest that fits, and the limit is named ([`fitting`]): 19,000 under this kind's 20,000.
//! Measured from a cold start of the daemon with the fleet registered: time until every
//! gateway reads online, RSS (total and per gateway), and the daemon's CPU share over a
//! steady-state window — three cold starts of the same registered fleet, each figure
//! their median with min–max. Beside the daemon's CPU, the fake fleet's over the same window:
//! the other end of the same sockets (every ping, pong and tick crosses loopback, and the
//! kernel charges both ends' TCP work to the writer), a reference for what the frames alone
//! cost on this machine.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Options;
use crate::daemon::{Daemon, TICKS_PER_SEC};
use crate::host::{FakeHost, sum};
use crate::report::{Outcome, Row, Runs, Target, row, runs_row};

pub fn run(opts: &Options) -> Outcome {
    let (counts, steady) = if opts.smoke {
        (vec![100], 2)
    } else {
        (opts.fleet.clone(), opts.steady_secs)
    };
    let mut rows = Vec::new();
    let mut raw = serde_json::Map::new();
    for asked in counts {
        let (count, limited_by) = fitting(asked);
        let (r, mut v) = measure(opts, count, steady);
        rows.extend(r);
        if let Some(limit) = limited_by {
            v["asked"] = json!(asked);
            v["limited_by"] = json!(format!("RLIMIT_NOFILE {limit}"));
        }
        raw.insert(count.to_string(), v);
    }
    Outcome {
        name: "fleet",
        rows,
        raw: Value::Object(raw),
    }
}

/// Descriptors a daemon holds besides its gateways' sockets: its listeners, database, event
/// loops, log and the probes' connections.
const DAEMON_OWN_FILES: usize = 500;

/// `asked`, or the most gateways one daemon can link under this machine's hard open-file
/// limit (a socket each) and that limit, said on stderr. The limit is the hard one:
/// `scripts/bench.sh` raises the soft limit to it, and only `CAP_SYS_RESOURCE` raises the hard one.
#[allow(clippy::print_stderr)]
fn fitting(asked: usize) -> (usize, Option<u64>) {
    let Some(limit) = hard_open_files() else {
        return (asked, None);
    };
    let most = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_sub(DAEMON_OWN_FILES)
        / 1000
        * 1000;
    if asked <= most {
        return (asked, None);
    }
    eprintln!(
        "    {asked} gateways need as many descriptors in one daemon; this machine's hard \
         RLIMIT_NOFILE is {limit}: measuring {most} instead"
    );
    (most, Some(limit))
}

/// The hard `RLIMIT_NOFILE` of this process (its children inherit it), from `/proc`.
fn hard_open_files() -> Option<u64> {
    std::fs::read_to_string("/proc/self/limits")
        .ok()?
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(4)?
        .parse()
        .ok()
}

/// One cold start of the daemon with the fleet registered.
struct Round {
    handshakes: Duration,
    all_online: Duration,
    /// Until the cron inventory had read every gateway once (start-up work, before the window).
    inventory: Duration,
    rss_online_kib: u64,
    rss_steady_kib: u64,
    cpu_share: f64,
    /// The fake fleet's processes over the same window: the other end of the same sockets
    /// and frames, in a lean program (a reference measured in the same run, no target).
    peer_cpu_share: f64,
    online_at_end: usize,
}

#[allow(clippy::print_stderr)]
fn round(d: &mut Daemon, hosts: &mut [FakeHost], count: usize, steady: u64) -> Round {
    d.stop();
    for h in hosts.iter_mut() {
        h.cmd("mark");
    }
    let t0 = Instant::now();
    d.relaunch();
    let deadline = Duration::from_secs(600);
    crate::wait_for("every fake to see a handshake", deadline, || {
        sum(hosts, "fresh") >= count
    });
    let handshakes = t0.elapsed();
    d.wait_online(count, deadline, Duration::from_millis(100));
    let all_online = t0.elapsed();

    // Let start-up work (first probes, session lists) finish before the idle readings; the
    // cron inventory's first read of each gateway is spread over up to 30 s after its link.
    std::thread::sleep(Duration::from_secs(5));
    crate::wait_for("every gateway's cron list read", deadline, || {
        d.metric_sum("gateway_supervisor_cron_list_reads_total") >= count as f64
    });
    let inventory = t0.elapsed();
    let rss_online_kib = d.rss_kib();
    eprintln!(
        "    {count}: all online in {:.2} s, cron inventory read in {:.2} s; steady window of {steady} s (daemon pid {})",
        all_online.as_secs_f64(),
        inventory.as_secs_f64(),
        d.pid()
    );
    let peers = |hosts: &[FakeHost]| hosts.iter().map(FakeHost::cpu_ticks).sum::<u64>();
    let (cpu0, peer0) = (d.cpu_ticks(), peers(hosts));
    let w0 = Instant::now();
    std::thread::sleep(Duration::from_secs(steady));
    let share = |ticks: u64| ticks as f64 / TICKS_PER_SEC / w0.elapsed().as_secs_f64();
    let cpu_share = share(d.cpu_ticks() - cpu0);
    let peer_cpu_share = share(peers(hosts) - peer0);
    Round {
        handshakes,
        all_online,
        inventory,
        rss_online_kib,
        rss_steady_kib: d.rss_kib(),
        cpu_share,
        peer_cpu_share,
        online_at_end: d.online_count(),
    }
}

/// The daemon's settings beside its defaults: past 10,000 gateways, 3 series a gateway
/// (`metrics.gateway_detail = "basic"`), as docs/operations.md tells an operator of such a fleet —
/// the default's 30–40 would be millions of series in one scrape at 100,000.
fn detail(count: usize) -> &'static [(&'static str, &'static str)] {
    if count > 10_000 {
        &[("GATEWAY_SUPERVISOR__METRICS__GATEWAY_DETAIL", "basic")]
    } else {
        &[]
    }
}

/// Registers `count` gateways once, then measures three cold starts (one in a smoke run).
fn measure(opts: &Options, count: usize, steady: u64) -> (Vec<Row>, Value) {
    let mut hosts = FakeHost::fleet(count, Some(Duration::from_secs(25)));
    let addrs: Vec<std::net::SocketAddr> = hosts.iter().flat_map(|h| h.addrs.clone()).collect();
    let mut d = Daemon::start(&opts.daemon, detail(count));
    let rss_empty = d.rss_kib();
    d.add_gateways(&addrs);
    d.wait_online(count, Duration::from_secs(600), Duration::from_millis(500));
    let rounds: Vec<Round> = (0..if opts.smoke { 1 } else { 3 })
        .map(|_| round(&mut d, &mut hosts, count, steady))
        .collect();
    d.stop();

    let n = count as f64;
    let tag = match detail(count) {
        [] => count.to_string(),
        _ => format!("{count} (gateway_detail basic)"),
    };
    let of = |f: fn(&Round) -> f64| Runs::of(rounds.iter().map(f));
    let mut online = runs_row(
        "fleet",
        format!("{tag}: start -> all online"),
        of(|r| r.all_online.as_secs_f64()),
        "s",
    );
    let mut rss = runs_row(
        "fleet",
        format!("{tag}: RSS idle"),
        of(|r| r.rss_steady_kib as f64 * 1.024 / 1000.0),
        "MB",
    );
    let per_gateway = Runs::of(rounds.iter().map(|r| r.rss_steady_kib as f64 * 1.024 / n));
    let mut per_gw = runs_row("fleet", format!("{tag}: RSS / gateways"), per_gateway, "KB");
    let mut cpu = runs_row(
        "fleet",
        format!("{tag}: CPU, {steady} s steady state"),
        of(|r| r.cpu_share * 100.0),
        "% core",
    );
    let peer_cpu = runs_row(
        "fleet",
        format!("{tag}: CPU of the fake fleet, same window"),
        of(|r| r.peer_cpu_share * 100.0),
        "% core",
    );
    let mut cpu_ratio = runs_row(
        "fleet",
        format!("{tag}: CPU, daemon / fake fleet"),
        // A window too short for the fake fleet to read a clock tick (a smoke run's 2 s) has
        // no ratio, not a 300-digit one.
        of(|r| match r.peer_cpu_share {
            p if p > 0.0 => r.cpu_share / p,
            _ => f64::NAN,
        }),
        "x",
    );
    match count {
        100 => rss = rss.target(Target::AtMost(30.0)),
        10_000 => {
            online = online.target(Target::AtMost(5.0));
            per_gw = per_gw.target(Target::AtMost(20.0));
            cpu = cpu.target(Target::AtMost(1.0));
        }
        // The 100,000-gateway targets. A smaller fleet (one the machine's limit allows) is held
        // to its share of the fleet-wide figures, which grow with the fleet (every gateway is
        // dialled and pinged), and to the same per-gateway ones: what it passes, 100,000
        // would too at the rate measured.
        n if n > 10_000 => {
            let share = n as f64 / 100_000.0;
            online = online.target(Target::AtMost(30.0 * share));
            per_gw = per_gw.target(Target::AtMost(12.0));
            cpu = cpu.target(Target::AtMost(5.0 * share));
            cpu_ratio = cpu_ratio.target(Target::AtMost(0.2));
        }
        _ => {}
    }
    let least_online = rounds.iter().map(|r| r.online_at_end).min().unwrap_or(0);
    let rows = vec![
        online,
        rss,
        per_gw,
        cpu,
        peer_cpu,
        cpu_ratio,
        row(
            "fleet",
            format!("{tag}: online at end (fewest of the runs)"),
            least_online as f64,
            "gw",
        )
        .target(Target::AtLeast(n)),
    ];
    let raw = json!({
        "gateways": count,
        "fake_hosts": hosts.len(),
        "rss_kib_empty_daemon": rss_empty,
        "steady_window_s": steady,
        "heartbeat": "30s (default)",
        "settings": detail(count).iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "runs": rounds.iter().map(|r| json!({
            "start_to_handshakes_s": r.handshakes.as_secs_f64(),
            "start_to_all_online_s": r.all_online.as_secs_f64(),
            "start_to_cron_inventory_read_s": r.inventory.as_secs_f64(),
            "rss_kib_all_online": r.rss_online_kib,
            "rss_kib_after_steady": r.rss_steady_kib,
            "fake_fleet_cpu_share_of_one_core": r.peer_cpu_share,
            "rss_bytes_per_gateway_total": r.rss_steady_kib as f64 * 1024.0 / n,
            "rss_bytes_per_gateway_over_empty": (r.rss_steady_kib.saturating_sub(rss_empty)) as f64 * 1024.0 / n,
            "cpu_share_of_one_core": r.cpu_share,
            "online_at_end": r.online_at_end,
        })).collect::<Vec<_>>(),
    });
    (rows, raw)
}
