//! Fixtures for tests that run gateways beside the daemon: a daemon with intervals short
//! enough for tests, fake gateways, and reading a gateway back.

use std::time::Duration;

use fake_gateway::{FakeConfig, FakeGateway};
use serde_json::{Value, json};

use super::Daemon;

const DEADLINE: Duration = Duration::from_secs(20);

/// A daemon with intervals short enough for tests.
pub fn link_daemon(extra: &[(&str, &str)]) -> Daemon {
    let mut env = vec![
        // A heartbeat every 200 ms, dead after ten unanswered (2 s, the silence limit of a
        // gateway ticking every second). Three (600 ms) took a live link for dead when the
        // suite ran four tests at a time beside Chromium on 2 vCPU: CI's browser test found
        // `edge-rome` "not connected" right after its drain. The keepalive's own tests
        // (`link::dropped_pongs…`) drop every pong, which ten catch as surely.
        ("GATEWAY_SUPERVISOR__GATEWAYS__HEARTBEAT_INTERVAL", "200ms"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__MISSED_PONGS", "10"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__HEALTH_INTERVAL", "1h"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__PROBE_TIMEOUT", "1s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__BREAKER_THRESHOLD", "3"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__BREAKER_COOLDOWN", "1s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__BACKOFF_MAX", "1s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__CONNECT_TIMEOUT", "1s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__HANDSHAKE_TIMEOUT", "1s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__PAIRING_RETRY", "300ms"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__RPC_TIMEOUT", "2s"),
        ("GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE", "0"),
        ("GATEWAY_SUPERVISOR__LIMITS__MANUAL_HEALTH_INTERVAL", "0s"),
    ];
    env.extend_from_slice(extra);
    Daemon::start_with(&env)
}

pub fn fake(f: impl FnOnce(&mut FakeConfig)) -> FakeGateway {
    let mut cfg = FakeConfig {
        token: Some("fake-token".into()),
        tick_interval: Duration::from_millis(500),
        ping_interval: None,
        ..FakeConfig::default()
    };
    f(&mut cfg);
    FakeGateway::start(cfg).expect("start a fake gateway")
}

/// A fake gateway imitating `release` (its handshake and HTTP side).
pub fn imitating(release: fake_gateway::Release) -> FakeGateway {
    fake(|c| {
        let imitation = FakeConfig::imitating(release);
        (c.version, c.protocol, c.signatures, c.http) = (
            imitation.version,
            imitation.protocol,
            imitation.signatures,
            imitation.http,
        );
    })
}

pub fn add(d: &Daemon, name: &str, fake: &FakeGateway, token: Option<&str>) -> i64 {
    let mut body = json!({"name": name, "host": "127.0.0.1", "port": fake.port()});
    if let Some(t) = token {
        body["token"] = json!(t);
    }
    let res = d.call("POST", "/api/gateways", &d.admin_key, &body);
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()["gateway"]["id"].as_i64().unwrap()
}

pub fn gateway(d: &Daemon, id: i64) -> Value {
    let res = d.get(&format!("/api/gateways/{id}"), &d.admin_key);
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["gateway"].clone()
}

/// Waits until the gateway satisfies `pred`; returns it.
pub fn wait_gateway(d: &Daemon, id: i64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    super::wait_for(what, DEADLINE, || {
        let g = gateway(d, id);
        if pred(&g) {
            Ok(g)
        } else {
            Err(format!("{g:#}"))
        }
    })
}

/// The actions of the newest 50 audit rows.
pub fn audit_actions(d: &Daemon) -> Vec<String> {
    d.get("/api/audit?limit=50", &d.admin_key).json()["entries"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r["action"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Starts a run through the daemon (`SLOW` in the task: it lasts an hour and says nothing;
/// `TOOL`: an hour inside one tool call; otherwise it ends after the fake's `run_duration`);
/// returns its session key once the gateway has it.
pub fn start_run(d: &Daemon, gateway: i64, f: &FakeGateway, task: &str) -> String {
    let before: Vec<String> = f.sessions().into_iter().map(|(k, _)| k).collect();
    let spawn = d.call(
        "POST",
        "/api/spawn",
        &d.admin_key,
        &json!({"agent": "main", "task": task, "gateway_id": gateway}),
    );
    assert_eq!(spawn.status, 202, "{}", spawn.text());
    super::wait_until("the run started on the gateway", DEADLINE, || {
        f.sessions()
            .into_iter()
            .map(|(k, _)| k)
            .find(|k| !before.contains(k))
    })
}

// Fleet operations.

/// How long an operation of a few fake gateways may take.
pub const OPERATION_DEADLINE: Duration = Duration::from_secs(40);

pub fn operation(d: &Daemon, id: &str) -> Value {
    let res = d.get(&format!("/api/operations/{id}"), &d.admin_key);
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()["operation"].clone()
}

/// Waits until the operation satisfies `pred`; returns it.
pub fn wait_operation(d: &Daemon, id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    super::wait_for(what, OPERATION_DEADLINE, || {
        let op = operation(d, id);
        if pred(&op) {
            Ok(op)
        } else {
            Err(format!("{op:#}"))
        }
    })
}

pub fn start(d: &Daemon, path: &str, body: &Value) -> String {
    let res = d.call("POST", path, &d.admin_key, body);
    assert_eq!(res.status, 202, "{}", res.text());
    let id = res.json()["operation"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        res.header("location"),
        Some(format!("/api/operations/{id}").as_str())
    );
    id
}

/// Each gateway's step, in order.
pub fn steps_of(op: &Value) -> Vec<&str> {
    op["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["step"].as_str().unwrap())
        .collect()
}

/// `n` fake gateways (each adjusted by `adjust(i, config)`), added and online.
pub fn fleet_of(
    n: usize,
    d: &Daemon,
    adjust: impl Fn(usize, &mut fake_gateway::FakeConfig),
) -> (Vec<FakeGateway>, Vec<i64>) {
    let fakes: Vec<FakeGateway> = (0..n).map(|i| fake(|c| adjust(i, c))).collect();
    let ids: Vec<i64> = fakes
        .iter()
        .enumerate()
        .map(|(i, f)| add(d, &format!("gw{i}"), f, Some("fake-token")))
        .collect();
    for id in &ids {
        wait_gateway(d, *id, "online", super::online);
    }
    (fakes, ids)
}

/// A daemon's settings for a fleet of a thousand fakes on one machine, with `extra`.
pub fn fleet_daemon(extra: &[(&str, &str)]) -> Daemon {
    let mut env = vec![
        ("GATEWAY_SUPERVISOR__GATEWAYS__HEARTBEAT_INTERVAL", "5s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__HEALTH_INTERVAL", "1h"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__BACKOFF_MAX", "1s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__CONNECT_TIMEOUT", "5s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__HANDSHAKE_TIMEOUT", "5s"),
        ("GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE", "0"),
    ];
    env.extend_from_slice(extra);
    Daemon::start_with(&env)
}

/// `n` fake gateways started with `cfg` (its token `fake-token`, no pings of its own), each
/// registered with `d` as `gw0000`, `gw0001`, ….
pub fn register_fakes(d: &Daemon, n: usize, cfg: FakeConfig) -> Vec<FakeGateway> {
    let cfg = FakeConfig {
        token: Some("fake-token".into()),
        ping_interval: None,
        ..cfg
    };
    let fakes: Vec<FakeGateway> = (0..n)
        .map(|_| FakeGateway::start(cfg.clone()).expect("a fake gateway"))
        .collect();
    for (i, f) in fakes.iter().enumerate() {
        let res = d.call(
            "POST",
            "/api/gateways",
            &d.admin_key,
            &json!({"name": format!("gw{i:04}"), "host": "127.0.0.1", "port": f.port(), "token": "fake-token"}),
        );
        assert_eq!(res.status, 201, "{}", res.text());
    }
    fakes
}

/// The names of the gateways `GET /api/gateways?{query}` lists (asserting a 200).
pub fn gateway_names(d: &Daemon, query: &str) -> Vec<String> {
    let res = d.get(&format!("/api/gateways?{query}"), &d.admin_key);
    assert_eq!(res.status, 200, "{query}: {}", res.text());
    res.json()["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_owned())
        .collect()
}
