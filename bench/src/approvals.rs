//! The approvals inbox at fleet scale: 100 fake gateways (2026.9.6's approval frames) asking
//! 10 approvals each, 1,000 pending in the inbox, listed in one page
//! (`GET /api/approvals?status=pending&limit=1000`). Each round times `REQUESTS` requests one
//! after another, the daemon's page and, back to back, a static body of the same size from a
//! trivial actix-web server (the limit, `gs-bench static-server`): the median page time is
//! judged against 50 ms, and against the limit as a ratio taken per round.

use std::time::{Duration, Instant};

use fake_gateway::{FakeConfig, FakeGateway};
use serde_json::json;

use crate::Options;
use crate::daemon::Daemon;
use crate::report::{Outcome, Runs, Target, runs_row};
use crate::rest::StaticServer;

const GATEWAYS: usize = 100;
const PER_GATEWAY: usize = 10;
const PAGE: &str = "/api/approvals?status=pending&limit=1000";

/// The median of `n` sequential GETs of `path` on `addr` (ms).
fn page_ms(addr: std::net::SocketAddr, path: &str, key: &str, n: usize) -> f64 {
    let mut times: Vec<f64> = (0..n)
        .map(|_| {
            let t0 = Instant::now();
            let res = gs_test_support::http::Request::new("GET", path)
                .key(key)
                .send(addr)
                .expect("an answer");
            assert_eq!(res.status, 200, "{path}");
            t0.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    crate::report::percentile(&times, 0.5)
}

pub fn run(opts: &Options) -> Outcome {
    let (rounds, requests) = if opts.smoke { (1, 5) } else { (3, 50) };
    let cfg = FakeConfig {
        ping_interval: None,
        ..FakeConfig::default()
    };
    let fakes: Vec<FakeGateway> = (0..GATEWAYS)
        .map(|_| FakeGateway::start(cfg.clone()).expect("fake gateway"))
        .collect();
    let d = Daemon::start(
        &opts.daemon,
        &[
            ("GATEWAY_SUPERVISOR__APPROVALS__ENABLED", "true"),
            ("GATEWAY_SUPERVISOR__APPROVALS__AUTO_DENY_AFTER", "0s"),
            ("GATEWAY_SUPERVISOR__APPROVALS__ESCALATE_AFTER", "24h"),
        ],
    );
    for (i, f) in fakes.iter().enumerate() {
        d.add_gateway(&format!("gw{i:03}"), f.port());
    }
    d.wait_online(
        GATEWAYS,
        Duration::from_secs(120),
        Duration::from_millis(50),
    );
    // Every link an approval client (the fake denies with no-route otherwise).
    crate::wait_for(
        "every link an approval client",
        Duration::from_secs(60),
        || {
            d.get("/api/gateways?limit=1000").is_some_and(|v| {
                v["gateways"].as_array().is_some_and(|gs| {
                    gs.len() == GATEWAYS
                        && gs
                            .iter()
                            .all(|g| g["connection"]["approval_client"] == true)
                })
            })
        },
    );
    for f in &fakes {
        for j in 0..PER_GATEWAY {
            f.request_approval(
                "exec",
                &format!("printf bench-{j}"),
                Duration::from_secs(3600),
            );
        }
    }
    let total = GATEWAYS * PER_GATEWAY;
    crate::wait_for(
        "every approval in the inbox",
        Duration::from_secs(120),
        || {
            d.get(PAGE)
                .and_then(|v| v["approvals"].as_array().map(Vec::len))
                == Some(total)
        },
    );
    let size = d.get_bytes(PAGE).len();
    let limit = StaticServer::start(&[size]);
    let limit_addr: std::net::SocketAddr = format!("127.0.0.1:{}", limit.port).parse().unwrap();
    let (mut ours, mut lim) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        ours.push(page_ms(d.addr, PAGE, &d.key, requests));
        lim.push(page_ms(limit_addr, "/0", "unused", requests));
    }
    let ratio = Runs::of(ours.iter().zip(&lim).map(|(o, l)| o / l));
    let what = format!("GET {PAGE} ({total} pending, {size} B)");
    let rows = vec![
        runs_row(
            "approvals",
            format!("{what}, median of {requests}"),
            Runs::of(ours.clone()),
            "ms",
        )
        .target(Target::AtMost(50.0)),
        runs_row(
            "approvals",
            format!("static {size} B limit, median of {requests}"),
            Runs::of(lim.clone()),
            "ms",
        ),
        runs_row(
            "approvals",
            format!("{what} / static limit"),
            ratio,
            "ratio",
        ),
    ];
    Outcome {
        name: "approvals",
        rows,
        raw: json!({"gateways": GATEWAYS, "pending": total, "body_bytes": size, "rounds": rounds,
                    "requests_per_round": requests, "daemon_ms": ours, "limit_ms": lim}),
    }
}
