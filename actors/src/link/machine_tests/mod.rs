//! The link machine, one behaviour per test, driven with frames captured from real gateways
//! (openclaw 2026.9.6, and older releases where they differ; `testdata/openclaw-captures/`) and
//! a clock the test moves by hand. Every input goes through the machine's one door,
//! `LinkMachine::handle`; [`Drive`] gives the inputs the tests' words.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::machine::*;
use crate::handshake::AuthChoice;
use crate::link::messages::CallError;
use crate::model::{BreakerState, GatewayStatus};
use crate::protocol::captures::{at, capture, capture_of, captured_failure, frame_of};
use crate::protocol::device::SignatureVersion;
use crate::protocol::errors::{LinkFailure, classify_close, classify_error};
use crate::protocol::frames::ErrorShape;
use crate::protocol::frames::Frame;

const UNIX: i64 = 1_795_238_987;
/// The middle of the jitter range: every backoff delay is exactly its base.
const MID: f64 = 0.5;

fn real_hello() -> Value {
    at(&capture("ok_v3.json"), &["connectResponse", "payload"])
}

fn real_challenge() -> Value {
    at(&capture("ok_v3.json"), &["challenge", "payload"])
}

/// The tests' words for what happens to a link. Each is one [`Input`] through
/// `LinkMachine::handle` — a frame where the gateway sends one — at the clocks the test
/// gives (the wall clock at `UNIX` where the test gives none).
trait Drive {
    fn input(&mut self, input: Input, now: Instant, unix: i64, jitter: f64) -> Vec<Action>;

    /// A dial: the first, or the reconnect the machine scheduled (the shell's timer).
    fn begin_connect(&mut self) -> (u64, bool);
    fn socket_opened(&mut self, now: Instant) -> Vec<Action> {
        self.input(Input::SocketOpened, now, UNIX, MID)
    }
    /// The gateway's `connect.challenge`: the plan the machine answers it with, or why the link
    /// failed.
    fn challenge(&mut self, payload: Option<Value>) -> Result<ConnectPlan, LinkFailure>;
    /// The gateway's answer to our `connect`, `ok`, with this payload.
    fn hello(
        &mut self,
        payload: Option<Value>,
        now: Instant,
        unix: i64,
        jitter: f64,
    ) -> Vec<Action>;
    fn event(&mut self, event: &str, payload: Option<Value>) -> Vec<Action> {
        let frame = json!({"type": "event", "event": event, "payload": payload});
        let frame: Frame = serde_json::from_value(frame).expect("an event frame");
        self.input(Input::Frame(frame), Instant::now(), UNIX, MID)
    }
    /// The `shutdown` event, and what the machine noted of it.
    fn shutting_down(&mut self, payload: Option<&Value>) -> Note {
        let actions = self.event("shutdown", payload.cloned());
        match &actions[..] {
            [Action::Log(note)] => note.clone(),
            other => panic!("{other:?}"),
        }
    }
    /// The heartbeat, without the next one it arms (checked: armed exactly while connected).
    fn heartbeat(&mut self, now: Instant, jitter: f64) -> Vec<Action>;
    /// The gateway pinged (the pump answered it) at `unix`, heard at `now`; without the live
    /// numbers' refresh it always brings on a connected link (checked).
    fn gateway_pinged(&mut self, now: Instant, unix: i64) -> Vec<Action>;
    fn heard(&mut self, heard: Heard, now: Instant) -> Vec<Action> {
        self.input(Input::Heard(heard), now, UNIX, MID)
    }
    fn frame_seen(&mut self, at: Instant) {
        let heard = Heard {
            frame_at: Some(at),
            ..Heard::default()
        };
        assert!(self.heard(heard, at).is_empty());
    }
    fn heartbeats_passed(&mut self, quiet: u32, pinged_since: bool) {
        let heard = Heard {
            quiet,
            pinged_since,
            ..Heard::default()
        };
        assert!(self.heard(heard, Instant::now()).is_empty());
    }
    /// A pong: the round trip it measured, if it answered our ping.
    fn pong(&mut self, payload: &[u8], now: Instant, unix: i64) -> Option<Duration> {
        let actions = self.input(Input::Pong(payload.to_vec()), now, unix, MID);
        actions.iter().find_map(|a| match a {
            Action::RoundTrip(rtt) => Some(*rtt),
            _ => None,
        })
    }
    fn fail(&mut self, failure: LinkFailure, now: Instant, jitter: f64) -> Vec<Action> {
        self.input(Input::Failed(failure), now, UNIX, jitter)
    }
    fn unanswered(&mut self, now: Instant, jitter: f64) -> Vec<Action> {
        self.input(Input::Unanswered, now, UNIX, jitter)
    }
    fn answered(&mut self) {
        assert!(
            self.input(Input::Answered, Instant::now(), UNIX, MID)
                .is_empty()
        );
    }
    fn stop(&mut self) -> Vec<Action> {
        self.input(Input::Stop, Instant::now(), UNIX, MID)
    }
    /// A probe's outcome, and the machine's verdict on it.
    fn probed(
        &mut self,
        http: HttpHealth,
        rpc: RpcHealth,
        now: Instant,
        unix: i64,
    ) -> ProbeVerdict {
        let actions = self.input(Input::Probed { http, rpc }, now, unix, MID);
        actions
            .into_iter()
            .find_map(|a| match a {
                Action::Probed(verdict) => Some(verdict),
                _ => None,
            })
            .expect("a probe always has a verdict")
    }
    /// `sessions.list` failed: when it is asked again, if it is.
    fn sessions_list_failed(&mut self) -> Option<Duration> {
        let actions = self.input(Input::SessionsListFailed, Instant::now(), UNIX, MID);
        match &actions[..] {
            [] => None,
            [Action::RefreshSessionsAfter(after)] => Some(*after),
            other => panic!("{other:?}"),
        }
    }
    fn sessions_listed(&mut self, list: Value) -> Vec<Action> {
        self.input(Input::SessionsListed(list), Instant::now(), UNIX, MID)
    }
    fn answering_approvals(&mut self, on: bool) {
        let actions = self.input(Input::AnswerApprovals(on), Instant::now(), UNIX, MID);
        assert!(actions.is_empty());
    }
    fn quiet_heartbeats(&self, every: Duration) -> u32;
}

impl Drive for LinkMachine {
    fn input(&mut self, input: Input, now: Instant, unix: i64, jitter: f64) -> Vec<Action> {
        let now = Now {
            at: now,
            unix_ms: unix * 1000,
        };
        self.handle(input, now, jitter)
    }

    fn begin_connect(&mut self) -> (u64, bool) {
        let due = (self.phase() == LinkPhase::Backoff).then(|| self.generation());
        let actions = self.input(Input::Dial { generation: due }, Instant::now(), UNIX, MID);
        match &actions[..] {
            [
                Action::Report,
                Action::Dial {
                    generation,
                    reconnect,
                },
            ] => (*generation, *reconnect),
            other => panic!("no dial: {other:?}"),
        }
    }

    fn challenge(&mut self, payload: Option<Value>) -> Result<ConnectPlan, LinkFailure> {
        let actions = self.event("connect.challenge", payload);
        match actions.into_iter().next() {
            Some(Action::SendConnect(plan)) => Ok(plan),
            _ => Err(self.last_failure().cloned().expect("a failure")),
        }
    }

    fn hello(
        &mut self,
        payload: Option<Value>,
        now: Instant,
        unix: i64,
        jitter: f64,
    ) -> Vec<Action> {
        let frame = Frame::Res {
            id: format!("connect-{}", self.generation()),
            ok: true,
            payload,
            error: None,
        };
        self.input(Input::Frame(frame), now, unix, jitter)
    }

    fn heartbeat(&mut self, now: Instant, jitter: f64) -> Vec<Action> {
        let generation = self.generation();
        let mut actions = self.input(Input::Heartbeat { generation }, now, UNIX, jitter);
        let armed = matches!(actions.last(), Some(Action::ArmHeartbeat { first: false }));
        assert_eq!(armed, self.connected(), "the next heartbeat: {actions:?}");
        if armed {
            actions.pop();
        }
        actions
    }

    fn gateway_pinged(&mut self, now: Instant, unix: i64) -> Vec<Action> {
        let heard = Heard {
            pinged_at: Some(unix),
            ..Heard::default()
        };
        let mut actions = self.input(Input::Heard(heard), now, unix, MID);
        if self.connected() {
            assert!(matches!(actions.first(), Some(Action::Live)), "{actions:?}");
            actions.remove(0);
        }
        actions
    }

    fn quiet_heartbeats(&self, every: Duration) -> u32 {
        self.pump_orders(every).quiet
    }
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
mod door;
mod failures;
mod handshake;
mod probes;
