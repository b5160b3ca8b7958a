//! The link machine, one behaviour per test, driven with frames captured from real gateways
//! (openclaw 2026.9.6, and older releases where they differ; `testdata/openclaw-captures/`) and
//! a clock the test moves by hand.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::machine::*;
use crate::handshake::AuthChoice;
use crate::link::messages::CallError;
use crate::model::{BreakerState, GatewayStatus};
use crate::protocol::captures::{at, capture, capture_of};
use crate::protocol::device::SignatureVersion;
use crate::protocol::errors::{LinkFailure, classify_close, classify_error};
use crate::protocol::frames::ErrorShape;

const UNIX: i64 = 1_795_238_987;
/// The middle of the jitter range: every backoff delay is exactly its base.
const MID: f64 = 0.5;

/// The failure a captured `ok: false` connect response means.
fn captured_failure(file: &str, path: &[&str]) -> LinkFailure {
    let shape: ErrorShape = serde_json::from_value(at(&capture(file), path)["error"].clone())
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    classify_error(&shape)
}

fn real_hello() -> Value {
    at(&capture("ok_v3.json"), &["connectResponse", "payload"])
}

fn real_challenge() -> Value {
    at(&capture("ok_v3.json"), &["challenge", "payload"])
}

fn settings() -> MachineSettings {
    MachineSettings {
        missed_pongs: 3,
        handshake_timeout: Duration::from_secs(10),
        breaker_threshold: 3,
        breaker_cooldown: Duration::from_secs(60),
        degraded_latency_ms: 500,
        backoff_max: Duration::from_secs(30),
        pairing_retry: Duration::from_secs(5),
    }
}

fn machine(device_token: Option<&str>) -> (LinkMachine, Instant) {
    let now = Instant::now();
    let token = device_token.map(|t| SecretString::from(t.to_owned()));
    (LinkMachine::new(settings(), token, false, true, now), now)
}

/// Dial, upgrade, challenge: the plan for the `connect` request.
fn handshake(m: &mut LinkMachine, now: Instant) -> ConnectPlan {
    m.begin_connect();
    m.socket_opened(now);
    m.challenge(Some(real_challenge()))
        .expect("a real challenge")
}

/// A whole handshake with the real `hello-ok`.
fn connect(m: &mut LinkMachine, now: Instant) -> Vec<Action> {
    handshake(m, now);
    m.hello(Some(real_hello()), now, UNIX, MID)
}

fn reconnect(actions: &[Action]) -> Option<(Duration, bool)> {
    actions.iter().find_map(|a| match a {
        Action::ReconnectAfter {
            delay,
            poll_readiness,
        } => Some((*delay, *poll_readiness)),
        _ => None,
    })
}

fn delay(actions: &[Action]) -> Duration {
    reconnect(actions).expect("a reconnect is scheduled").0
}

fn noted(actions: &[Action], pred: impl Fn(&Note) -> bool) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Log(n) if pred(n)))
}

/// `n` dials refused before the upgrade; the actions of the last one.
fn refused_dials(m: &mut LinkMachine, n: usize, now: Instant) -> Vec<Action> {
    let mut actions = Vec::new();
    for _ in 0..n {
        m.begin_connect();
        actions = m.fail(LinkFailure::network("refused"), now, MID);
    }
    actions
}

fn last_error_code(m: &LinkMachine, now: Instant) -> Option<String> {
    m.state(now).connection.last_error.map(|e| e.code)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

mod connected;
mod failures;
mod handshake;
mod probes;
