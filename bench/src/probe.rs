//! Scenario 2, probe-all: 100 gateways, of which 10 and then all 100 accept TCP and never
//! answer (the fake's `hang`: live sockets fall silent, new connections are black holes, HTTP
//! included). Wall time of `POST /api/gateways/health` against `gateways.probe_timeout`.

use std::time::{Duration, Instant};

use fake_gateway::{FakeConfig, FakeGateway};
use serde_json::{Value, json};

use crate::Options;
use crate::daemon::Daemon;
use crate::http::Request;
use crate::report::{Outcome, Target, row};

pub fn run(opts: &Options) -> Outcome {
    let (count, probe_timeout_s) = if opts.smoke { (10, 1) } else { (100, 5) };
    let timeout = format!("{probe_timeout_s}s");
    let cfg = FakeConfig {
        ping_interval: None,
        ..FakeConfig::default()
    };
    let fakes: Vec<FakeGateway> = (0..count)
        .map(|_| FakeGateway::start(cfg.clone()).expect("fake gateway"))
        .collect();
    let d = Daemon::start(
        &opts.daemon,
        &[
            ("GATEWAY_SUPERVISOR__GATEWAYS__PROBE_TIMEOUT", &timeout),
            ("GATEWAY_SUPERVISOR__LIMITS__MANUAL_HEALTH_INTERVAL", "0s"),
        ],
    );
    for (i, f) in fakes.iter().enumerate() {
        d.add_gateway(&format!("gw{i:03}"), f.port());
    }
    d.wait_online(count, Duration::from_secs(120), Duration::from_millis(50));

    let probe_all = |d: &Daemon| -> (f64, Value) {
        let t0 = Instant::now();
        let res = Request::new("POST", "/api/gateways/health")
            .key(&d.key)
            .send(d.addr)
            .expect("probe");
        let wall = t0.elapsed().as_secs_f64();
        assert_eq!(res.status, 200, "{}", res.text());
        (wall, serde_json::from_slice(&res.body).expect("json"))
    };
    let healthy = |v: &Value| {
        v["results"]
            .as_array()
            .map(|a| a.iter().filter(|r| r["healthy"] == true).count())
            .unwrap_or(0)
    };
    let (all_ok, v) = probe_all(&d);
    assert_eq!(healthy(&v), count, "every gateway healthy before the fault");

    let mut rows = vec![row("probe", format!("{count} healthy, wall"), all_ok, "s")];
    let mut raw =
        json!({"gateways": count, "probe_timeout_s": probe_timeout_s, "all_healthy_s": all_ok});
    for hung in [count / 10, count] {
        for f in &fakes[..hung] {
            f.update_faults(|x| x.hang = true);
        }
        let (wall, v) = probe_all(&d);
        assert_eq!(
            healthy(&v),
            count - hung,
            "the black-holed gateways read unhealthy, the rest healthy"
        );
        let ratio = wall / probe_timeout_s as f64;
        rows.push(row(
            "probe",
            format!("{hung} of {count} black-holed, wall"),
            wall,
            "s",
        ));
        rows.push(
            row(
                "probe",
                format!("{hung} of {count} black-holed / probe_timeout"),
                ratio,
                "x",
            )
            .target(Target::AtMost(1.1)),
        );
        raw[format!("hung_{hung}")] =
            json!({"wall_s": wall, "ratio": ratio, "healthy": healthy(&v)});
    }
    Outcome {
        name: "probe",
        rows,
        raw,
    }
}
