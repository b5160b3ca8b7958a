//! Scenario 6, a real OpenClaw gateway (npm `openclaw@2026.9.6`, agent runs answered by a fake
//! model on loopback): time from its `/readyz` 200 to `online` in the daemon (registered while
//! ready, then after each SIGTERM + start), and spawn request latency (POST → 202).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::daemon::Daemon;
use crate::fake_model::FakeModel;
use crate::http::Request;
use crate::real_gateway::RealGateway;
use crate::report::{Outcome, row, summary};
use crate::{Options, wait_for};

fn wait_online(d: &Daemon, id: i64) -> Duration {
    let t0 = Instant::now();
    wait_for("the real gateway online", Duration::from_secs(300), || {
        d.get(&format!("/api/gateways/{id}"))
            .is_some_and(|v| v["gateway"]["status"] == "online")
    });
    t0.elapsed()
}

/// Starts `gw`, and has a signal to `gs-bench` stop it too.
fn start(gw: &mut RealGateway) {
    gw.start();
    if let Some(pid) = gw.pid() {
        crate::reaper::kill_on_signal(pid);
    }
    gw.wait_ready();
}

/// Stops `gw` (`SIGTERM`, then waits for it).
fn stop(gw: &mut RealGateway) {
    if let Some(pid) = gw.pid() {
        crate::reaper::forget(pid);
    }
    gw.stop();
}

pub fn run(opts: &Options, install: &Path) -> Outcome {
    let restarts = 3;
    let port = 23_500;
    let mut gw = RealGateway::new(install, port, "bench-token", None);
    let model = FakeModel::start();
    gw.use_model(&model.base_url());
    start(&mut gw);
    let d = Daemon::start(&opts.daemon, &[]);
    let t0 = Instant::now();
    let id = d.add_gateway_with_token("real", gw.port, "bench-token");
    let ready_to_online = t0.elapsed() + wait_online(&d, id);

    let mut spawns = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let res = Request::new("POST", "/api/spawn")
            .key(&d.key)
            .json(&json!({"agent": "main", "task": "ping"}))
            .send(d.addr)
            .expect("spawn");
        assert_eq!(res.status, 202, "{}", res.text());
        spawns.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut after_restart = Vec::new();
    for _ in 0..restarts {
        stop(&mut gw);
        start(&mut gw);
        after_restart.push(wait_online(&d, id).as_secs_f64());
    }
    drop(d);
    stop(&mut gw);
    let first_spawn = spawns[0];
    let (s50, s99, s_raw) = summary(spawns[1..].to_vec());
    let worst_restart = after_restart.iter().copied().fold(0.0, f64::max);
    Outcome {
        name: "real",
        rows: vec![
            row(
                "real",
                "registered while ready -> online",
                ready_to_online.as_secs_f64() * 1e3,
                "ms",
            ),
            row(
                "real",
                format!("restart: /readyz 200 -> online, worst of {restarts}"),
                worst_restart,
                "s",
            ),
            row(
                "real",
                "spawn request (POST -> 202), first",
                first_spawn,
                "ms",
            ),
            row(
                "real",
                "spawn request (POST -> 202), median of 19",
                s50,
                "ms",
            ),
            row("real", "spawn request (POST -> 202), p99 of 19", s99, "ms"),
        ],
        raw: json!({
            "gateway": "openclaw 2026.9.6 on loopback, fake model",
            "readyz_to_online_s": ready_to_online.as_secs_f64(),
            "restart_readyz_to_online_s": after_restart,
            "spawn_first_ms": first_spawn,
            "spawn_request": s_raw,
            "settings": "defaults: heartbeat 30 s, backoff 1-30 s with jitter, breaker cooldown 30 s",
        }),
    }
}
