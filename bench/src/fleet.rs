//! Scenario 3, fleet scale: 100, 1,000 and 10,000 fake gateways (in `fake-host` processes,
//! pinging every 25 s like the real gateway) registered in one daemon with default settings
//! (30 s heartbeat). Measured from a cold start of the daemon with the fleet registered: time
//! until every gateway reads online, RSS (total and per gateway), and the daemon's CPU share
//! over a steady-state window.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Options;
use crate::daemon::{Daemon, TICKS_PER_SEC};
use crate::host::{FakeHost, sum};
use crate::report::{Outcome, Row, Target, row};

pub fn run(opts: &Options) -> Outcome {
    let (counts, steady) = if opts.smoke {
        (vec![100], 2)
    } else {
        (opts.fleet.clone(), opts.steady_secs)
    };
    let mut rows = Vec::new();
    let mut raw = serde_json::Map::new();
    for count in counts {
        let (r, v) = measure(opts, count, steady);
        rows.extend(r);
        raw.insert(count.to_string(), v);
    }
    Outcome {
        name: "fleet",
        rows,
        raw: Value::Object(raw),
    }
}

#[allow(clippy::print_stderr)]
fn measure(opts: &Options, count: usize, steady: u64) -> (Vec<Row>, Value) {
    let mut hosts = FakeHost::fleet(count, Some(Duration::from_secs(25)));
    let ports: Vec<u16> = hosts.iter().flat_map(|h| h.ports.clone()).collect();
    let mut d = Daemon::start(&opts.daemon, &[]);
    let rss_empty = d.rss_kib();
    d.add_gateways(&ports);
    d.wait_online(count, Duration::from_secs(600), Duration::from_millis(500));

    d.stop();
    for h in &mut hosts {
        h.cmd("mark");
    }
    let t0 = Instant::now();
    d.relaunch();
    let deadline = Duration::from_secs(600);
    crate::wait_for("every fake to see a handshake", deadline, || {
        sum(&mut hosts, "fresh") >= count
    });
    let handshakes = t0.elapsed();
    d.wait_online(count, deadline, Duration::from_millis(100));
    let all_online = t0.elapsed();

    // Let start-up work (first probes, session lists) finish before the idle readings.
    std::thread::sleep(Duration::from_secs(5));
    let rss_online = d.rss_kib();
    eprintln!(
        "    {count}: all online in {:.2} s; steady window of {steady} s (daemon pid {})",
        all_online.as_secs_f64(),
        d.pid()
    );
    let cpu0 = d.cpu_ticks();
    let w0 = Instant::now();
    std::thread::sleep(Duration::from_secs(steady));
    let cpu_share = (d.cpu_ticks() - cpu0) as f64 / TICKS_PER_SEC / w0.elapsed().as_secs_f64();
    let rss_steady = d.rss_kib();
    let online_at_end = d.online_count();
    d.stop();

    let n = count as f64;
    let per_gateway_kb = rss_steady as f64 * 1.024 / n;
    let mut rows = vec![
        row(
            "fleet",
            format!("{count}: start -> all online"),
            all_online.as_secs_f64(),
            "s",
        ),
        row(
            "fleet",
            format!("{count}: RSS idle"),
            rss_steady as f64 * 1.024 / 1000.0,
            "MB",
        ),
        row(
            "fleet",
            format!("{count}: RSS / gateways"),
            per_gateway_kb,
            "KB",
        ),
        row(
            "fleet",
            format!("{count}: CPU, {steady} s steady state"),
            cpu_share * 100.0,
            "% core",
        ),
        row(
            "fleet",
            format!("{count}: online at end"),
            online_at_end as f64,
            "gw",
        )
        .target(Target::AtLeast(n)),
    ];
    match count {
        100 => rows[1] = rows[1].clone().target(Target::AtMost(30.0)),
        10_000 => {
            rows[0] = rows[0].clone().target(Target::AtMost(60.0));
            rows[2] = rows[2].clone().target(Target::AtMost(25.0));
            rows[3] = rows[3].clone().target(Target::AtMost(2.0));
        }
        _ => {}
    }
    let raw = json!({
        "gateways": count,
        "fake_hosts": hosts.len(),
        "start_to_handshakes_s": handshakes.as_secs_f64(),
        "start_to_all_online_s": all_online.as_secs_f64(),
        "rss_kib_empty_daemon": rss_empty,
        "rss_kib_all_online": rss_online,
        "rss_kib_after_steady": rss_steady,
        "rss_bytes_per_gateway_total": rss_steady as f64 * 1024.0 / n,
        "rss_bytes_per_gateway_over_empty": (rss_steady.saturating_sub(rss_empty)) as f64 * 1024.0 / n,
        "steady_window_s": steady,
        "cpu_share_of_one_core": cpu_share,
        "online_at_end": online_at_end,
        "heartbeat": "30s (default)",
    });
    (rows, raw)
}
