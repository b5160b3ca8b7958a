//! What a connected link hears and does between handshakes: the gateway's events and health
//! payloads, answered and unanswered requests, and the keepalive (pings, pongs, silence).

use crate::events::EventKind;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Action, LinkMachine, LinkPhase, MAX_UNANSWERED, Note, RTT_EVERY_HEARTBEATS};
use crate::backoff::Backoff;
use crate::protocol::counts;
use crate::protocol::errors::LinkFailure;
use crate::protocol::frames::Frame;
use crate::protocol::suspend::SuspensionPhase;

/// A frame that tells a connected link nothing but that its socket lives: a tick without a
/// session snapshot (seed-protocol gateways carry one in theirs). [`LinkMachine::event`] does
/// nothing with it, so the socket's pump keeps it (`crate::link::pump`), and the machine only
/// hears that a frame came ([`LinkMachine::frame_seen`]).
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

    /// A `health` payload (an event or a probe's RPC answer): counts and the gateway's own
    /// verdict.
    pub fn apply_health(&mut self, health: &Value) {
        let (sessions, agents) = counts::from_health(health);
        self.sessions_count = sessions.or(self.sessions_count);
        self.agents_count = agents.or(self.agents_count);
        self.reports_unhealthy = counts::health_not_ok(health);
    }

    pub fn set_sessions_count(&mut self, n: i64) {
        self.sessions_count = Some(n);
    }

    /// The session list arrived: the cache is the gateway's again.
    pub fn sessions_listed(&mut self) {
        self.sessions_retry.reset();
    }

    /// A `sessions.list` failed on a connected link (refused during a suspension — a held
    /// 2026.9.6 suspension answers only its own methods —, timed out, rate limited): the
    /// session cache is stale, and the runs the gateway started meanwhile would be missing
    /// from it — unlisted, uncontrollable — until a `sessions.changed` that may never come.
    /// Asked again after 1 s, doubling to 30 s, until a list arrives or the link ends.
    pub fn sessions_list_failed(&mut self) -> Option<Duration> {
        if !self.supports("sessions.list") {
            return None;
        }
        Some(self.sessions_retry.next_base_delay())
    }

    pub fn set_agents_count(&mut self, n: i64) {
        self.agents_count = Some(n);
    }

    /// The `shutdown` event: how soon the gateway expects to be back (a floor for the next
    /// reconnect's delay).
    pub fn shutting_down(&mut self, payload: Option<&Value>) -> Note {
        self.restart_hint = payload
            .and_then(|p| p.get("restartExpectedMs"))
            .and_then(Value::as_u64)
            .map(Duration::from_millis);
        Note::ShuttingDown {
            restart_expected: self.restart_hint,
        }
    }

    /// An event from a connected gateway: what it changes and what is passed on.
    pub fn event(&mut self, event: &str, payload: Option<Value>) -> Vec<Action> {
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
            "shutdown" => vec![Action::Log(self.shutting_down(payload.as_ref()))],
            "health" => match &payload {
                Some(p) => {
                    self.apply_health(p);
                    vec![Action::Report]
                }
                None => Vec::new(),
            },
            "sessions.changed" => refresh.into_iter().collect(),
            "gateway.suspension" => {
                let phase = payload.as_ref().and_then(SuspensionPhase::in_payload);
                if phase.is_none() || phase == self.suspension {
                    return Vec::new();
                }
                self.suspension = phase;
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
            // Seed-protocol gateways carry a session snapshot in their ticks.
            "tick" => payload
                .filter(|p| p.get("sessions").is_some())
                .map(Action::PublishSessions)
                .into_iter()
                .collect(),
            _ => Vec::new(),
        }
    }

    /// A request was answered (under its own id).
    pub fn answered(&mut self) {
        self.unanswered = 0;
    }

    /// A request ran out of time with no answer at all.
    pub fn unanswered(&mut self, now: Instant, jitter: f64) -> Vec<Action> {
        if self.phase != LinkPhase::Connected {
            return Vec::new();
        }
        self.unanswered += 1;
        if self.unanswered >= MAX_UNANSWERED {
            return self.fail(LinkFailure::unanswered(self.unanswered), now, jitter);
        }
        Vec::new()
    }

    // ---- keepalive --------------------------------------------------------------------------

    /// The heartbeat timer fired: fail a socket that missed its pongs or fell silent; else
    /// ping, unless the gateway pinged since the last heartbeat. A gateway that pings has the
    /// socket checked both ways already — it closes one whose pong is late, and a socket that
    /// stops delivering its frames falls silent here — so a second ping each way would double
    /// the fleet's keepalive traffic for nothing (as gRPC's keepalive pings only an idle
    /// connection). Then only the handshake and every [`RTT_EVERY_HEARTBEATS`]-th heartbeat
    /// make a ping due, for the round trip, and it leaves with the pong to the gateway's
    /// next ping ([`LinkMachine::gateway_pinged`]): one write instead of two.
    pub fn heartbeat(&mut self, now: Instant, jitter: f64) -> Vec<Action> {
        if self.phase != LinkPhase::Connected {
            return Vec::new();
        }
        if self.ping_outstanding.is_some() {
            self.missed_pongs += 1;
            if self.missed_pongs >= self.settings.missed_pongs {
                let mut actions = vec![Action::Log(Note::NoPong {
                    missed: self.missed_pongs,
                })];
                actions.extend(self.fail(LinkFailure::heartbeat(), now, jitter));
                return actions;
            }
        }
        let silence = now.saturating_duration_since(self.last_frame_at);
        if silence > self.tick_interval * 2 {
            let mut actions = vec![Action::Log(Note::Silent { silence })];
            actions.extend(self.fail(LinkFailure::heartbeat(), now, jitter));
            return actions;
        }
        let vouched = std::mem::take(&mut self.gateway_pinged);
        if vouched && self.ping_outstanding.is_none() {
            self.heartbeats_to_rtt = self.heartbeats_to_rtt.saturating_sub(1);
            return Vec::new();
        }
        vec![self.ping()]
    }

    /// How many heartbeats from now may pass without the machine, each one vouched for by a
    /// ping of the gateway's since the one before (the link thread's heartbeat rounds take
    /// them, `link/beats.rs`): such a heartbeat would only count down to the round trip. None
    /// while anything else could come of one: the link is not connected, a ping of ours waits
    /// for its pong, or the heartbeat interval (`every`) is longer than the silence a
    /// heartbeat fails on, so a ping since the last one would not prove the socket lively.
    /// The last heartbeat before the round trip is always the machine's own (it asks for the
    /// gateway's next ping).
    pub fn quiet_heartbeats(&self, every: Duration) -> u32 {
        if self.phase != LinkPhase::Connected
            || self.ping_outstanding.is_some()
            || every > self.tick_interval * 2
        {
            return 0;
        }
        self.heartbeats_to_rtt.saturating_sub(1)
    }

    /// `passed` heartbeats went by without the machine (at most what
    /// [`LinkMachine::quiet_heartbeats`] allowed), each vouched for by a ping of the gateway's;
    /// `pinged_since`: whether the gateway pinged again after the last of them. The same as
    /// each of those heartbeats having reached [`LinkMachine::heartbeat`].
    pub fn heartbeats_passed(&mut self, passed: u32, pinged_since: bool) {
        if passed == 0 || self.phase != LinkPhase::Connected {
            return;
        }
        self.heartbeats_to_rtt = self.heartbeats_to_rtt.saturating_sub(passed);
        self.gateway_pinged = pinged_since;
    }

    /// The gateway pinged (the shell has queued the pong): it is alive and checking the
    /// socket. A round-trip ping that is due goes out behind the pong.
    pub fn gateway_pinged(&mut self, unix_now: i64) -> Vec<Action> {
        if self.phase != LinkPhase::Connected {
            return Vec::new();
        }
        self.gateway_pinged = true;
        self.last_seen = Some(unix_now);
        if self.wants_next_ping() {
            return vec![self.ping()];
        }
        Vec::new()
    }

    /// Whether the gateway's next ping should reach the machine at once: a round-trip ping is
    /// due to leave with its pong ([`LinkMachine::gateway_pinged`]). Other pings the socket's
    /// pump answers by itself, and the machine hears of them before its next heartbeat.
    pub fn wants_next_ping(&self) -> bool {
        self.phase == LinkPhase::Connected
            && self.heartbeats_to_rtt == 0
            && self.ping_outstanding.is_none()
    }

    /// The next ping; the round trip is then not due for [`RTT_EVERY_HEARTBEATS`] heartbeats.
    fn ping(&mut self) -> Action {
        self.heartbeats_to_rtt = RTT_EVERY_HEARTBEATS;
        self.ping_counter += 1;
        Action::SendPing(self.ping_counter.to_be_bytes().to_vec())
    }

    /// The ping of [`Action::SendPing`] went out.
    pub fn ping_sent(&mut self, now: Instant) {
        if self.ping_outstanding.is_none() {
            self.ping_outstanding = Some((self.ping_counter, now));
        }
    }

    /// A pong; returns the round trip when it answers our outstanding ping.
    pub fn pong(&mut self, payload: &[u8], now: Instant, unix_now: i64) -> Option<Duration> {
        let (_, sent_at) = self.ping_outstanding?;
        if payload.len() != 8 {
            return None;
        }
        let rtt = now.saturating_duration_since(sent_at);
        self.ping_outstanding = None;
        self.missed_pongs = 0;
        self.latency_ms = Some(rtt.as_millis() as u64);
        self.last_seen = Some(unix_now);
        Some(rtt)
    }
}

/// What is passed on of a `config.changed` event: its hash (bounded) and its time.
fn config_changed(payload: Option<&Value>) -> Value {
    let hash = payload
        .and_then(|p| p.get("hash"))
        .and_then(Value::as_str)
        .map(|h| crate::bounded::text(h, 128));
    let ts = payload.and_then(|p| p.get("ts")).and_then(Value::as_i64);
    serde_json::json!({"hash": hash, "ts": ts})
}
