//! Scenario 4, failover: two fake gateways; the acting primary's socket closes (1012) → time to
//! the `gateway.primary` event naming the other one (SSE), and to the next spawn accepted on
//! it. Failback (default on) restores the designated primary before the next trial, and the
//! next trial waits until that link has been up for the daemon's stability window (10 s): a link
//! closed sooner is a flapping gateway, whose reconnects the daemon rightly spaces out more and
//! more, and the trials would measure that backoff instead of a failover.

use std::time::{Duration, Instant};

use fake_gateway::{FakeConfig, FakeGateway};
use serde_json::json;

use crate::Options;
use crate::daemon::Daemon;
use crate::http::Request;
use crate::report::{Outcome, Target, row, summary};
use crate::sse::Sse;

/// How long the restored primary's link is left up before the next trial: the daemon's own
/// stability window, plus a margin for the clocks of two processes. Elapsed time is the
/// precondition itself (the daemon shows no "stable" flag to wait on); the failback event, which
/// follows the link's handshake, is where it is counted from.
const STABLE_LINK: Duration =
    gateway_supervisor_actors::backoff::STABLE_LINK.saturating_add(Duration::from_millis(500));

fn acting_and_online(d: &Daemon, id: i64) -> bool {
    d.get(&format!("/api/gateways/{id}")).is_some_and(|v| {
        v["gateway"]["acting_primary"] == true && v["gateway"]["status"] == "online"
    })
}

pub fn run(opts: &Options) -> Outcome {
    let trials = if opts.smoke { 5 } else { 50 };
    let cfg = FakeConfig {
        ping_interval: None,
        ..FakeConfig::default()
    };
    let a = FakeGateway::start(cfg.clone()).expect("fake");
    let b = FakeGateway::start(cfg).expect("fake");
    let d = Daemon::start(&opts.daemon, &[]);
    let a_id = d.add_gateway("a", a.port());
    let b_id = d.add_gateway("b", b.port());
    d.wait_online(2, Duration::from_secs(60), Duration::from_millis(10));
    crate::wait_for("a acting primary", Duration::from_secs(60), || {
        acting_and_online(&d, a_id)
    });
    let mut events = Sse::open(d.addr, &d.key, None, "?types=gateway.primary");
    let (mut to_event, mut to_spawn) = (Vec::new(), Vec::new());
    let mut primary_back = None;
    for _ in 0..trials {
        if let Some(back) = primary_back {
            std::thread::sleep(STABLE_LINK.saturating_sub(Instant::now() - back));
        }
        let t0 = Instant::now();
        a.close_all(1012, "service restart");
        events.until(Duration::from_secs(30), |e| {
            e.data["payload"]["acting_primary"] == b_id
        });
        to_event.push(t0.elapsed().as_secs_f64() * 1e3);
        loop {
            let res = Request::new("POST", "/api/spawn")
                .key(&d.key)
                .json(&json!({"agent": "main", "task": "t"}))
                .send(d.addr)
                .expect("spawn");
            let on_b = serde_json::from_slice::<serde_json::Value>(&res.body)
                .is_ok_and(|v| v["gateway_id"] == b_id);
            if res.status == 202 && on_b {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "no spawn accepted on the stand-in: {}",
                res.text()
            );
        }
        to_spawn.push(t0.elapsed().as_secs_f64() * 1e3);
        // Failback before the next trial.
        events.until(Duration::from_secs(30), |e| {
            e.data["payload"]["acting_primary"] == a_id
        });
        primary_back = Some(Instant::now());
    }
    let (e50, e99, e_raw) = summary(to_event);
    let (s50, s99, s_raw) = summary(to_spawn);
    Outcome {
        name: "failover",
        rows: vec![
            row(
                "failover",
                "socket close -> gateway.primary, median",
                e50,
                "ms",
            ),
            row(
                "failover",
                format!("socket close -> gateway.primary, p99 of {trials}"),
                e99,
                "ms",
            )
            .target(Target::AtMost(50.0)),
            row(
                "failover",
                "socket close -> spawn accepted, median",
                s50,
                "ms",
            ),
            row(
                "failover",
                format!("socket close -> spawn accepted, p99 of {trials}"),
                s99,
                "ms",
            ),
        ],
        raw: json!({"trials": trials, "close_to_primary_event": e_raw, "close_to_spawn_accepted": s_raw}),
    }
}
