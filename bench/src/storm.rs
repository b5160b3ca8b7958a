//! Scenario 5, reconnect storm: 1,000 fake gateways restart at once (a `shutdown` event, close
//! 1012, the port refuses connections for the downtime, then listens again). Time from the
//! restart until every one reads online again, and the most connections the fleet accepted in
//! any 100 ms once it was back (the daemon's jittered backoff must spread them).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::Options;
use crate::daemon::Daemon;
use crate::host::{FakeHost, sum};
use crate::report::{Outcome, Target, row};

pub fn run(opts: &Options) -> Outcome {
    let (count, down) = if opts.smoke {
        (100, Duration::from_secs(1))
    } else {
        (1_000, Duration::from_secs(5))
    };
    let mut hosts = FakeHost::fleet(count, Some(Duration::from_secs(25)));
    let addrs: Vec<std::net::SocketAddr> = hosts.iter().flat_map(|h| h.addrs.clone()).collect();
    let d = Daemon::start(&opts.daemon, &[]);
    d.add_gateways(&addrs);
    d.wait_online(count, Duration::from_secs(300), Duration::from_millis(200));

    let t0 = Instant::now();
    for h in &mut hosts {
        h.cmd("down");
    }
    crate::wait_for(
        "the fleet to read not online",
        Duration::from_secs(120),
        || d.online_count() == 0,
    );
    let noticed = t0.elapsed();
    // The simulated downtime of the gateway processes (not a synchronisation wait).
    std::thread::sleep(down.saturating_sub(t0.elapsed()));
    for h in &mut hosts {
        h.cmd("mark");
    }
    let up = Instant::now();
    for h in &mut hosts {
        h.cmd("up");
    }
    let deadline = Duration::from_secs(300);
    crate::wait_for("every fake to see a new handshake", deadline, || {
        sum(&mut hosts, "fresh") >= count
    });
    d.wait_online(count, deadline, Duration::from_millis(100));
    let all_back = t0.elapsed();
    let after_up = up.elapsed();

    let accepts: Vec<u64> = hosts
        .iter_mut()
        .flat_map(|h| {
            h.cmd("accepts")
                .split_whitespace()
                .filter_map(|t| t.parse().ok())
                .collect::<Vec<u64>>()
        })
        .collect();
    let mut buckets = std::collections::BTreeMap::<u64, usize>::new();
    for t in &accepts {
        *buckets.entry(t / 100).or_default() += 1;
    }
    let max_per_100ms = buckets.values().copied().max().unwrap_or(0);
    let spread_ms = accepts.iter().max().copied().unwrap_or(0);
    Outcome {
        name: "storm",
        rows: vec![
            row(
                "storm",
                format!("{count} restart -> all online"),
                all_back.as_secs_f64(),
                "s",
            )
            .target(Target::AtMost(35.0)),
            row(
                "storm",
                "listening again -> all online",
                after_up.as_secs_f64(),
                "s",
            ),
            row(
                "storm",
                "max connects accepted per 100 ms",
                max_per_100ms as f64,
                "conn",
            ),
            row(
                "storm",
                "connects accepted after the restart",
                accepts.len() as f64,
                "conn",
            ),
        ],
        raw: json!({
            "gateways": count,
            "downtime_s": down.as_secs_f64(),
            "restart_to_all_not_online_s": noticed.as_secs_f64(),
            "restart_to_all_online_s": all_back.as_secs_f64(),
            "listening_to_all_online_s": after_up.as_secs_f64(),
            "accepts": accepts.len(),
            "max_accepts_per_100ms": max_per_100ms,
            "accepts_spread_ms": spread_ms,
            "accepts_per_100ms": buckets.iter().map(|(k, v)| json!([k * 100, v])).collect::<Vec<_>>(),
        }),
    }
}
