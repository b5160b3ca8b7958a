//! What a connected link hears and does between handshakes: the gateway's events and health
//! payloads, its lists, unanswered requests, and the keepalive's inputs (the rules are
//! `keepalive.rs`).

use std::time::{Duration, Instant};

use serde_json::Value;

use super::keepalive::Beat;
use super::{Action, Heard, LinkMachine, LinkPhase, MAX_UNANSWERED, Note, Now};
use crate::backoff::Backoff;
use crate::events::EventKind;
use crate::protocol::counts;
use crate::protocol::errors::LinkFailure;
use crate::protocol::frames::Frame;
use crate::protocol::suspend::SuspensionPhase;

/// A frame that tells a connected link nothing but that its socket lives: a tick without a
/// session snapshot (seed-protocol gateways carry one in theirs). The machine's event handling
/// does nothing with it, so the socket's pump keeps it (`crate::link::pump`), and the machine
/// only hears that a frame came ([`Heard::frame_at`]).
pub fn is_pulse_only(frame: &Frame) -> bool {
    match frame {
        Frame::Event { event, payload, .. } => {
            event == "tick" && payload.as_ref().is_none_or(|p| p.get("sessions").is_none())
        }
        _ => false,
    }
}

/// The longest wait between two tries of a failed `sessions.list` (from 1 s, doubling).
const SESSIONS_RETRY_MAX: Duration = Duration::from_secs(30);

/// The schedule of a failed `sessions.list`'s retries: 1 s, doubling to [`SESSIONS_RETRY_MAX`].
pub(super) fn sessions_retry() -> Backoff {
    Backoff::new(SESSIONS_RETRY_MAX)
}

impl LinkMachine {
    // ---- what a connected link hears ------------------------------------------------------

    /// The session list arrived: the cache is the gateway's again, with its count.
    pub(super) fn sessions_listed(&mut self, list: Value) -> Vec<Action> {
        self.sessions_retry.reset();
        let mut actions = Vec::new();
        if let Some(n) = counts::sessions_from_list(&list) {
            self.health.sessions_count = Some(n);
            actions.push(Action::Report);
        }
        actions.push(Action::PublishSessions(list));
        actions
    }

    /// A `sessions.list` failed on a connected link (refused during a suspension — a held
    /// 2026.9.6 suspension answers only its own methods —, timed out, rate limited): the
    /// session cache is stale, and the runs the gateway started meanwhile would be missing
    /// from it — unlisted, uncontrollable — until a `sessions.changed` that may never come.
    /// Asked again after 1 s, doubling to 30 s, until a list arrives or the link ends.
    pub(super) fn sessions_list_failed(&mut self) -> Vec<Action> {
        if !self.connected() || !self.supports("sessions.list") {
            return Vec::new();
        }
        vec![Action::RefreshSessionsAfter(
            self.sessions_retry.next_base_delay(),
        )]
    }

    /// The agent list arrived: its count.
    pub(super) fn agents_listed(&mut self, list: &Value) -> Vec<Action> {
        match counts::agents_from_list(list) {
            Some(n) => {
                self.health.agents_count = Some(n);
                vec![Action::Report]
            }
            None => Vec::new(),
        }
    }

    /// An event from a connected gateway: what it changes and what is passed on.
    pub(super) fn event(&mut self, event: &str, payload: Option<Value>) -> Vec<Action> {
        // Only a gateway with `sessions.list` can be asked again.
        let refresh = self
            .supports("sessions.list")
            .then_some(Action::RefreshSessionsSoon);
        let passed_on = |kind| Action::Publish {
            kind,
            payload: payload.clone().unwrap_or(Value::Null),
        };
        if let Some(news) = payload
            .as_ref()
            .filter(|_| self.approval_client && event.contains(".approval."))
            .and_then(|p| crate::protocol::approvals::news(event, p))
        {
            return vec![Action::Approvals(news)];
        }
        match event {
            // How soon the gateway expects to be back: a floor for the next reconnect's delay.
            "shutdown" => {
                let restart_expected = payload
                    .as_ref()
                    .and_then(|p| p.get("restartExpectedMs"))
                    .and_then(Value::as_u64)
                    .map(Duration::from_millis);
                self.retry.restart_expected(restart_expected);
                vec![Action::Log(Note::ShuttingDown { restart_expected })]
            }
            "health" => match &payload {
                Some(p) => {
                    self.health.apply(p);
                    vec![Action::Report]
                }
                None => Vec::new(),
            },
            "sessions.changed" => refresh.into_iter().collect(),
            "gateway.suspension" => {
                let phase = payload.as_ref().and_then(SuspensionPhase::in_payload);
                if phase.is_none() || phase == self.server.suspension {
                    return Vec::new();
                }
                self.server.suspension = phase;
                // Back to accepting: the list it refused meanwhile can be read again.
                let relist = (phase == Some(SuspensionPhase::Accepting))
                    .then_some(refresh)
                    .flatten();
                std::iter::once(Action::Report).chain(relist).collect()
            }
            "agent.status" => std::iter::once(passed_on(EventKind::AgentStatus))
                .chain(refresh)
                .collect(),
            "spawn_result" => vec![passed_on(EventKind::GatewaySpawnResult)],
            "log" => vec![passed_on(EventKind::Log)],
            // Sent by 2026.9.6 to every operator connection after a write, though its
            // `features.events` does not list it: a hint to read the config back. Only the hash
            // and the time go on (the payload also names the file's path on the gateway host).
            "config.changed" => vec![Action::Publish {
                kind: EventKind::GatewayConfigChanged,
                payload: config_changed(payload.as_ref()),
            }],
            // 2026.9.6 sends it to admin connections on every job change and run (`dropIfSlow`):
            // a hint to read the jobs back. Only the run's facts go on (the job's definition
            // carries its prompt).
            "cron" => vec![Action::Publish {
                kind: EventKind::GatewayCron,
                payload: cron_changed(payload.as_ref()),
            }],
            // Seed-protocol gateways carry a session snapshot in their ticks.
            "tick" => payload
                .filter(|p| p.get("sessions").is_some())
                .map(Action::PublishSessions)
                .into_iter()
                .collect(),
            _ => Vec::new(),
        }
    }

    /// A request ran out of time with no answer at all.
    pub(super) fn unanswered(&mut self, now: Instant, jitter: f64) -> Vec<Action> {
        if !self.connected() {
            return Vec::new();
        }
        self.unanswered += 1;
        if self.unanswered >= MAX_UNANSWERED {
            return self.fail(LinkFailure::unanswered(self.unanswered), now, jitter);
        }
        Vec::new()
    }

    // ---- keepalive (the rules: `keepalive.rs`) ----------------------------------------------

    /// What the pump noticed by itself: frames heard, a gateway ping it answered, heartbeats it
    /// took quietly. A round-trip ping that is due goes out behind the pong.
    pub(super) fn heard(&mut self, heard: Heard, now: Now) -> Vec<Action> {
        if let Some(at) = heard.frame_at {
            self.keepalive.frame_heard(at);
        }
        if !self.connected() {
            return Vec::new();
        }
        let mut actions = Vec::new();
        if let Some(unix) = heard.pinged_at {
            self.health.last_seen = Some(unix);
            actions.push(Action::Live);
            actions.extend(self.keepalive.gateway_pinged(now.at).map(Action::SendPing));
        }
        // After the ping: one the quiet heartbeats already counted does not vouch again.
        self.keepalive.passed(&heard);
        actions
    }

    /// The heartbeat of `generation`: the socket is dead (missed pongs, silence), or a ping, or
    /// nothing (the gateway vouched for it); then the next one, while connected.
    pub(super) fn heartbeat(&mut self, generation: u64, now: Instant, jitter: f64) -> Vec<Action> {
        if !self.is_current(generation, LinkPhase::Connected) {
            return Vec::new();
        }
        let mut actions = match self.keepalive.heartbeat(now, self.settings.missed_pongs) {
            Beat::Quiet => Vec::new(),
            Beat::Ping(payload) => vec![Action::SendPing(payload)],
            Beat::NoPong(missed) => {
                let mut actions = vec![Action::Log(Note::NoPong { missed })];
                actions.extend(self.fail(LinkFailure::heartbeat(), now, jitter));
                actions
            }
            Beat::Silent(silence) => {
                let mut actions = vec![Action::Log(Note::Silent { silence })];
                actions.extend(self.fail(LinkFailure::heartbeat(), now, jitter));
                actions
            }
        };
        if self.connected() {
            actions.push(Action::ArmHeartbeat { first: false });
        }
        actions
    }

    /// A pong: the round trip, when it answers our outstanding ping.
    pub(super) fn pong(&mut self, payload: &[u8], now: Now) -> Vec<Action> {
        let Some(rtt) = self.keepalive.pong(payload, now.at) else {
            return Vec::new();
        };
        self.health.latency_ms = Some(rtt.as_millis() as u64);
        self.health.last_seen = Some(now.unix());
        vec![Action::RoundTrip(rtt), Action::Report]
    }
}

/// What is passed on of a `config.changed` event: its hash (bounded) and its time.
/// What `cron` says happened: the job, one of its five actions (else `other`), a run's
/// status and times; ids and words bounded.
fn cron_changed(payload: Option<&Value>) -> Value {
    let p = payload.unwrap_or(&Value::Null);
    let action = p
        .get("action")
        .and_then(Value::as_str)
        .filter(|a| ["added", "updated", "removed", "started", "finished"].contains(a))
        .unwrap_or("other");
    let job_id = p
        .get("jobId")
        .and_then(Value::as_str)
        .and_then(crate::bounded::identifier)
        .filter(|id| id.len() <= crate::bounded::SHORT);
    let status = p
        .get("status")
        .and_then(Value::as_str)
        .map(|s| crate::bounded::text(s, 32));
    let ms = |k: &str| p.get(k).and_then(Value::as_i64);
    serde_json::json!({"job_id": job_id, "action": action, "status": status,
        "run_at_ms": ms("runAtMs"), "duration_ms": ms("durationMs"), "next_run_at_ms": ms("nextRunAtMs")})
}

fn config_changed(payload: Option<&Value>) -> Value {
    let hash = payload
        .and_then(|p| p.get("hash"))
        .and_then(Value::as_str)
        .map(|h| crate::bounded::text(h, 128));
    let ts = payload.and_then(|p| p.get("ts")).and_then(Value::as_i64);
    serde_json::json!({"hash": hash, "ts": ts})
}
