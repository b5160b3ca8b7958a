//! The link's brain: every decision a gateway link makes, with no sockets, timers or
//! mailboxes. The actor shell (`crate::link::actor`) feeds it what happened — a dial started, a
//! socket opened, a challenge, a `hello-ok`, a failure, a heartbeat tick, a pong, a probe's
//! outcome — with the time as an input, and carries out the [`Action`]s it returns. So every
//! link behaviour is a unit test here, in microseconds (see `machine_tests.rs`); the phases and
//! what moves between them are tabled in `docs/design.md` ("The link state machine").
//!
//! The rules it applies live in their own modules and stay there: `backoff` (delays),
//! `breaker` (when to stop trying), `status` (the verdict), `protocol::errors` (what a
//! failure means), `heartbeat` (when to ping).

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::backoff::Backoff;
use crate::bounded;
use crate::breaker::Breaker;
use crate::handshake::AuthChoice;
pub use crate::handshake::ConnectPlan;
use crate::link::messages::LinkState;
pub use crate::model::LinkPhase;
use crate::model::{ConnectionInfo, GatewayStatus, LinkError};
use crate::protocol::counts;
use crate::protocol::device::SignatureVersion;
use crate::protocol::errors::{Disposition, LinkFailure, Recovery};
use crate::protocol::frames::{Challenge, HelloOk};
use crate::status::{HealthFacts, derive};

/// Requests in a row left unanswered past their deadline before the link is taken for dead: a
/// gateway answering under wrong ids stayed `online` until the next probe (5 min).
pub const MAX_UNANSWERED: u32 = 3;

/// Methods kept from a `hello-ok` (the 2026.9 gateway advertises about 150).
const MAX_METHODS: usize = 1024;

/// Delay before re-connecting for a recovery step the gateway recommended.
pub const RECOVERY_DELAY: Duration = Duration::from_millis(100);

/// Recommended recovery steps (device token, re-pair) allowed between two good handshakes.
const RECOVERIES: u8 = 2;

/// The part of the `gateways.*` configuration the machine decides with.
#[derive(Debug, Clone)]
pub struct MachineSettings {
    pub missed_pongs: u32,
    pub handshake_timeout: Duration,
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
    pub degraded_latency_ms: u64,
    pub backoff_max: Duration,
    pub pairing_retry: Duration,
}

/// Why a log line is written; the shell words it.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// The gateway rejected the v3 device signature; the next attempt signs v2.
    V2Fallback,
    /// A recovery step the gateway recommended (device token only, or drop it and re-pair).
    Recovering {
        code: String,
        recovery: Recovery,
    },
    /// The link stops until an admin changes the gateway.
    Halted {
        code: String,
        message: String,
    },
    PairingRequired {
        request_id: Option<String>,
    },
    Reconnecting {
        code: String,
        delay: Duration,
    },
    BreakerOpened {
        failures: u32,
    },
    /// Failed probes opened the breaker.
    BreakerOpenedByProbes,
    NoPong {
        missed: u32,
    },
    Silent {
        silence: Duration,
    },
    ShuttingDown {
        restart_expected: Option<Duration>,
    },
    Connected {
        protocol: u32,
        version: String,
        auth: String,
    },
}

/// What the shell does, in order.
#[derive(Debug, Clone)]
pub enum Action {
    /// Close the socket with 1000, cancel its timers, answer its pending calls "not connected".
    Teardown,
    /// Count a failed handshake under this code (`gateway_handshake_failures_total`; a code
    /// from the fixed set, see `LinkFailure::label`).
    CountHandshakeFailure(&'static str),
    /// Dial again after `delay` unless the link moved on; `poll_readiness`: meanwhile ask the
    /// gateway's `/readyz` and dial at once when it is ready.
    ReconnectAfter {
        delay: Duration,
        poll_readiness: bool,
    },
    /// Fail the handshake if it has not finished within this.
    ArmHandshakeTimeout(Duration),
    /// The handshake is done: stop its timeout, lift the frame cap to the link's.
    HandshakeDone,
    /// Start the keepalive (the first ping on the shared grid).
    StartHeartbeat,
    /// Send a WebSocket ping with this payload; report back with [`LinkMachine::ping_sent`].
    SendPing(Vec<u8>),
    /// Store this device token for the gateway (`None`: forget it).
    PersistDeviceToken(Option<SecretString>),
    /// Subscribe to session changes (the gateway offers it).
    SubscribeSessions,
    /// Refresh the session and agent counts.
    RefreshCounts,
    /// Refresh the session cache soon (bursts of changes coalesce into one `sessions.list`).
    RefreshSessionsSoon,
    /// Hand this session list (a `sessions.list` answer or a seed tick) to the registry.
    PublishSessions(Value),
    /// Publish an event on the daemon's bus under this type, tagged with the gateway.
    Publish {
        kind: &'static str,
        payload: Value,
    },
    /// Tell the registry (it skips reports that change nothing it shows).
    Report,
    Log(Note),
}

/// What a health probe found besides the machine's own facts.
#[derive(Debug, Clone)]
pub enum HttpHealth {
    /// `GET /health` answered 2xx after this long.
    Answered(Duration),
    /// It did not, and this is why; `timed_out` when it ran out of time.
    Failed { timed_out: bool, message: String },
}

/// The `health` RPC on the live socket, if it was asked.
#[derive(Debug, Clone)]
pub enum RpcHealth {
    NotAsked,
    Answered(Value),
    TimedOut,
    Failed(String),
}

/// A probe's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeVerdict {
    pub healthy: bool,
    /// `healthy`, `timeout` or `unhealthy` (the metric label).
    pub outcome: &'static str,
    pub status: GatewayStatus,
    pub latency_ms: Option<u64>,
    pub error: Option<String>,
    pub connected: bool,
    pub uptime_ms: Option<u64>,
    pub breaker_opened: bool,
}

/// What the registry shows of a link, to skip reports that change none of it.
pub type ReportKey = (
    bool,
    GatewayStatus,
    Option<i64>,
    Option<i64>,
    Option<String>,
    &'static str,
);

/// The advertised methods worth keeping: plausible names, at most [`MAX_METHODS`].
fn bounded_methods(methods: &[String]) -> Vec<String> {
    methods
        .iter()
        .filter(|m| bounded::identifier(m).is_some_and(|m| m.len() <= bounded::SHORT))
        .take(MAX_METHODS)
        .cloned()
        .collect()
}

pub struct LinkMachine {
    settings: MachineSettings,
    phase: LinkPhase,
    generation: u64,
    attempts: u64,
    connect_request_id: Option<String>,

    device_token: Option<SecretString>,
    auth_choice: AuthChoice,
    signature_version: SignatureVersion,
    v2_fallback_used: bool,
    recoveries_left: u8,

    backoff: Backoff,
    breaker: Breaker,
    restart_hint: Option<Duration>,

    ping_outstanding: Option<(u64, Instant)>,
    ping_counter: u64,
    missed_pongs: u32,
    last_frame_at: Instant,
    tick_interval: Duration,

    checked: bool,
    last_error: Option<LinkFailure>,
    pairing_request_id: Option<String>,
    last_probe_timed_out: bool,
    reports_unhealthy: bool,
    latency_ms: Option<u64>,
    last_seen: Option<i64>,
    protocol: Option<u32>,
    server_version: Option<String>,
    connected_at: Option<Instant>,
    /// Whether the last failure came before the WebSocket upgrade (see `backoff`).
    failed_before_upgrade: bool,
    /// Requests in a row that timed out without an answer on this connection.
    unanswered: u32,
    uptime_at_connect_ms: Option<u64>,
    methods: Arc<Vec<String>>,
    sessions_count: Option<i64>,
    agents_count: Option<i64>,
}

impl LinkMachine {
    /// `verify_shared_token`: an admin just changed the shared token, so the first handshake
    /// proves it (rather than riding on a cached device token).
    pub fn new(
        settings: MachineSettings,
        device_token: Option<SecretString>,
        verify_shared_token: bool,
        has_shared_token: bool,
        now: Instant,
    ) -> Self {
        let auth_choice = if verify_shared_token && has_shared_token {
            AuthChoice::SharedTokenFirst
        } else {
            AuthChoice::Preferred
        };
        LinkMachine {
            phase: LinkPhase::Connecting,
            generation: 0,
            attempts: 0,
            connect_request_id: None,
            device_token,
            auth_choice,
            signature_version: SignatureVersion::V3,
            v2_fallback_used: false,
            recoveries_left: RECOVERIES,
            backoff: Backoff::new(settings.backoff_max),
            breaker: Breaker::new(settings.breaker_threshold, settings.breaker_cooldown),
            restart_hint: None,
            ping_outstanding: None,
            ping_counter: 0,
            missed_pongs: 0,
            last_frame_at: now,
            tick_interval: Duration::from_secs(30),
            checked: false,
            last_error: None,
            pairing_request_id: None,
            last_probe_timed_out: false,
            reports_unhealthy: false,
            latency_ms: None,
            last_seen: None,
            protocol: None,
            server_version: None,
            connected_at: None,
            failed_before_upgrade: false,
            unanswered: 0,
            uptime_at_connect_ms: None,
            methods: Arc::new(Vec::new()),
            sessions_count: None,
            agents_count: None,
            settings,
        }
    }

    // ---- what the shell reads ---------------------------------------------------------------

    pub fn phase(&self) -> LinkPhase {
        self.phase
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether a timer or a callback from `generation` still concerns the link in `phase`.
    pub fn is_current(&self, generation: u64, phase: LinkPhase) -> bool {
        self.generation == generation && self.phase == phase
    }

    pub fn connected(&self) -> bool {
        self.phase == LinkPhase::Connected
    }

    pub fn device_token(&self) -> Option<&SecretString> {
        self.device_token.as_ref()
    }

    pub fn supports(&self, method: &str) -> bool {
        self.methods.iter().any(|m| m == method)
    }

    pub fn is_connect_response(&self, id: &str) -> bool {
        self.connect_request_id.as_deref() == Some(id)
    }

    /// Why the link last failed (cleared by a good handshake).
    pub fn last_failure(&self) -> Option<&LinkFailure> {
        self.last_error.as_ref()
    }

    pub fn server_version(&self) -> Option<&str> {
        self.server_version.as_deref()
    }

    pub fn protocol(&self) -> Option<u32> {
        self.protocol
    }

    pub fn latency_ms(&self) -> Option<u64> {
        self.latency_ms
    }

    pub fn last_seen(&self) -> Option<i64> {
        self.last_seen
    }

    pub fn status(&self) -> GatewayStatus {
        derive(&HealthFacts {
            checked: self.checked,
            connected: self.phase == LinkPhase::Connected,
            halted: self.phase == LinkPhase::Halted,
            breaker_tripped: self.breaker.is_tripped(),
            last_probe_timed_out: self.last_probe_timed_out,
            consecutive_failures: self.breaker.consecutive_failures(),
            latency_ms: self.latency_ms,
            degraded_latency_ms: self.settings.degraded_latency_ms,
            reports_unhealthy: self.reports_unhealthy,
        })
    }

    pub fn report_key(&self) -> ReportKey {
        (
            self.phase == LinkPhase::Connected,
            self.status(),
            self.sessions_count,
            self.agents_count,
            self.last_error.as_ref().map(|e| e.code.clone()),
            self.phase.as_str(),
        )
    }

    pub fn state(&self, now: Instant) -> LinkState {
        LinkState {
            connected: self.phase == LinkPhase::Connected,
            connection: ConnectionInfo {
                state: Some(self.phase),
                protocol: self.protocol,
                server_version: self.server_version.clone(),
                last_error: self.last_error.as_ref().map(|f| LinkError {
                    code: f.code.clone(),
                    message: f.message.clone(),
                    retryable: f.retryable(),
                }),
                pairing_request_id: self.pairing_request_id.clone(),
            },
            breaker: self.breaker.info(now),
            status: self.status(),
            last_seen: self.last_seen,
            latency: self
                .latency_ms
                .map(|l| i64::try_from(l).unwrap_or(i64::MAX)),
            sessions_count: self.sessions_count,
            agents_count: self.agents_count,
            methods: self.methods.clone(),
        }
    }

    // ---- connecting -------------------------------------------------------------------------

    /// A dial starts. Returns its generation and whether it is a reconnect (counted).
    pub fn begin_connect(&mut self) -> (u64, bool) {
        self.generation += 1;
        let reconnect = self.attempts > 0;
        self.attempts += 1;
        self.phase = LinkPhase::Connecting;
        (self.generation, reconnect)
    }

    /// The WebSocket is upgraded; the handshake starts.
    pub fn socket_opened(&mut self, now: Instant) -> Vec<Action> {
        self.phase = LinkPhase::Handshaking;
        self.last_frame_at = now;
        vec![
            Action::ArmHandshakeTimeout(self.settings.handshake_timeout),
            Action::Report,
        ]
    }

    /// A frame arrived (any frame proves the socket alive).
    pub fn frame_seen(&mut self, now: Instant) {
        self.last_frame_at = now;
    }

    /// `connect.challenge`: how to answer it, or why the link fails.
    pub fn challenge(&mut self, payload: Option<Value>) -> Result<ConnectPlan, LinkFailure> {
        let challenge: Challenge = match payload.map(serde_json::from_value) {
            Some(Ok(c)) => c,
            _ => return Err(LinkFailure::protocol("connect.challenge without a nonce")),
        };
        let request_id = format!("connect-{}", self.generation);
        self.connect_request_id = Some(request_id.clone());
        Ok(ConnectPlan {
            request_id,
            challenge,
            auth: self.auth_choice,
            signature: self.signature_version,
        })
    }

    /// `hello-ok` for our `connect`.
    pub fn hello(
        &mut self,
        payload: Option<Value>,
        now: Instant,
        unix_now: i64,
        jitter: f64,
    ) -> Vec<Action> {
        let hello: HelloOk = match payload.map(serde_json::from_value) {
            Some(Ok(h)) => h,
            Some(Err(e)) => {
                let failure = LinkFailure::protocol(format!("unreadable hello-ok: {e}"));
                return self.fail(failure, now, jitter);
            }
            None => {
                let failure = LinkFailure::protocol("hello-ok without a payload");
                return self.fail(failure, now, jitter);
            }
        };
        let mut actions = vec![Action::HandshakeDone];
        self.phase = LinkPhase::Connected;
        self.checked = true;
        // The backoff is reset only once the link has proved stable (see `fail`): a gateway
        // that closes right after every handshake must not be re-dialled every second.
        self.breaker.record_success();
        self.recoveries_left = RECOVERIES;
        // From now on the cached device token (which outlives a shared-token rotation).
        self.auth_choice = AuthChoice::Preferred;
        self.restart_hint = None;
        self.last_error = None;
        self.pairing_request_id = None;
        self.last_probe_timed_out = false;
        self.protocol = Some(hello.protocol);
        let version = bounded::text(&hello.server.version, bounded::SHORT);
        self.server_version = Some(version.clone());
        self.tick_interval = Duration::from_millis(hello.policy.tick_interval_ms.max(1000));
        self.methods = Arc::new(bounded_methods(&hello.features.methods));
        self.connected_at = Some(now);
        self.last_seen = Some(unix_now);
        self.missed_pongs = 0;
        self.ping_outstanding = None;
        if let Some(snapshot) = &hello.snapshot {
            self.uptime_at_connect_ms = snapshot.get("uptimeMs").and_then(Value::as_u64);
            if let Some(health) = snapshot.get("health") {
                self.apply_health(health);
            }
        }
        if let Some(token) = hello
            .auth
            .as_ref()
            .and_then(|a| a.device_token.clone())
            .filter(|t| bounded::identifier(t).is_some())
        {
            let changed = self
                .device_token
                .as_ref()
                .is_none_or(|old| old.expose_secret() != token.as_str());
            if changed {
                let token = SecretString::from(token);
                self.device_token = Some(token.clone());
                actions.push(Action::PersistDeviceToken(Some(token)));
            }
        }
        let auth = hello
            .auth
            .as_ref()
            .and_then(|a| a.method.as_deref())
            .unwrap_or("?");
        actions.push(Action::Log(Note::Connected {
            protocol: hello.protocol,
            version,
            auth: bounded::text(auth, bounded::SHORT),
        }));
        actions.push(Action::StartHeartbeat);
        actions.push(Action::Report);
        if self.supports("sessions.subscribe") {
            actions.push(Action::SubscribeSessions);
        }
        actions.push(Action::RefreshCounts);
        actions
    }

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
            "agent.status" => std::iter::once(passed_on("agent.status"))
                .chain(refresh)
                .collect(),
            "spawn_result" => vec![passed_on("gateway.spawn_result")],
            "log" => vec![passed_on("log")],
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

    /// The heartbeat timer fired: fail a socket that missed its pongs or fell silent, else
    /// ping.
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
        self.ping_counter += 1;
        vec![Action::SendPing(self.ping_counter.to_be_bytes().to_vec())]
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

    // ---- failure ----------------------------------------------------------------------------

    /// Every failure ends here: the socket goes, and the failure's class decides what next —
    /// the v2 signature once, a recommended recovery step, a halt, a pairing wait, or a
    /// reconnect after the backoff (never before the breaker allows one).
    pub fn fail(&mut self, failure: LinkFailure, now: Instant, jitter: f64) -> Vec<Action> {
        let was_connected = self.phase == LinkPhase::Connected;
        self.failed_before_upgrade = self.phase == LinkPhase::Connecting;
        if crate::backoff::stable_link(self.connected_at.map(|t| now.saturating_duration_since(t)))
        {
            self.backoff.reset();
        }
        let mut actions = vec![Action::Teardown];
        self.connect_request_id = None;
        self.ping_outstanding = None;
        self.missed_pongs = 0;
        self.unanswered = 0;
        self.connected_at = None;
        self.checked = true;
        if !was_connected {
            actions.push(Action::CountHandshakeFailure(failure.label()));
        }
        // The gateway rejected the v3 signature: offer the v2 form once.
        if failure.code == "DEVICE_AUTH_SIGNATURE_INVALID" && !self.v2_fallback_used {
            self.v2_fallback_used = true;
            self.signature_version = SignatureVersion::V2;
            actions.push(Action::Log(Note::V2Fallback));
            actions.extend(self.retry_after(RECOVERY_DELAY, failure, false, now));
            return actions;
        }
        if failure.disposition == Disposition::Halt && self.recoveries_left > 0 {
            let recovered = match failure.recovery {
                Recovery::RetryWithDeviceToken if self.device_token.is_some() => {
                    self.auth_choice = AuthChoice::DeviceTokenOnly;
                    true
                }
                Recovery::DropDeviceToken if self.device_token.is_some() => {
                    self.device_token = None;
                    self.auth_choice = AuthChoice::SharedTokenFirst;
                    actions.push(Action::PersistDeviceToken(None));
                    true
                }
                _ => false,
            };
            if recovered {
                self.recoveries_left -= 1;
                actions.push(Action::Log(Note::Recovering {
                    code: failure.code.clone(),
                    recovery: failure.recovery,
                }));
                actions.extend(self.retry_after(RECOVERY_DELAY, failure, false, now));
                return actions;
            }
        }
        match failure.disposition.clone() {
            Disposition::Halt => {
                actions.push(Action::Log(Note::Halted {
                    code: failure.code.clone(),
                    message: failure.message.clone(),
                }));
                self.phase = LinkPhase::Halted;
                self.last_error = Some(failure);
                actions.push(Action::Report);
            }
            Disposition::Pairing { request_id } => {
                actions.push(Action::Log(Note::PairingRequired {
                    request_id: request_id.clone(),
                }));
                self.pairing_request_id = request_id;
                let delay = self.settings.pairing_retry;
                actions.extend(self.retry_after(delay, failure, true, now));
            }
            Disposition::Retry { after } => {
                let hint = after.or(self.restart_hint.take());
                let delay = self.backoff.next_delay(jitter, hint);
                actions.push(Action::Log(Note::Reconnecting {
                    code: failure.code.clone(),
                    delay,
                }));
                actions.extend(self.retry_after(delay, failure, true, now));
            }
        }
        actions
    }

    fn retry_after(
        &mut self,
        delay: Duration,
        failure: LinkFailure,
        counts: bool,
        now: Instant,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        if counts && self.breaker.record_failure(now) {
            actions.push(Action::Log(Note::BreakerOpened {
                failures: self.breaker.consecutive_failures(),
            }));
        }
        // While open, wait for the half-open trial.
        let delay = delay.max(self.breaker.wait(now));
        let pairing = matches!(failure.disposition, Disposition::Pairing { .. });
        self.phase = LinkPhase::Backoff;
        self.last_error = Some(failure);
        actions.push(Action::Report);
        // A pairing approval gives no readiness signal; a WebSocket that broke after the
        // upgrade is not mended by a ready HTTP side (the breaker decides); a gateway that was
        // unreachable may come back early.
        let poll_readiness =
            counts && crate::backoff::readiness_shortcut(self.failed_before_upgrade, pairing);
        actions.push(Action::ReconnectAfter {
            delay,
            poll_readiness,
        });
        actions
    }

    /// An admin removed the gateway (or changed it): the link stops for good.
    pub fn stop(&mut self) -> Vec<Action> {
        self.generation += 1;
        self.phase = LinkPhase::Halted;
        self.connect_request_id = None;
        self.ping_outstanding = None;
        self.missed_pongs = 0;
        self.unanswered = 0;
        self.connected_at = None;
        vec![Action::Teardown]
    }

    // ---- probing ----------------------------------------------------------------------------

    /// A probe's outcome: HTTP `/health` and, when connected, the `health` RPC.
    pub fn probed(
        &mut self,
        http: HttpHealth,
        rpc: RpcHealth,
        now: Instant,
        unix_now: i64,
    ) -> ProbeVerdict {
        let connected = self.phase == LinkPhase::Connected;
        let mut error = None;
        let mut timed_out = false;
        let mut latency = None;
        match http {
            HttpHealth::Answered(rtt) => latency = Some(rtt.as_millis() as u64),
            HttpHealth::Failed {
                timed_out: t,
                message,
            } => {
                timed_out |= t;
                error = Some(message);
            }
        }
        match rpc {
            RpcHealth::Answered(health) => self.apply_health(&health),
            RpcHealth::TimedOut => {
                timed_out = true;
                error.get_or_insert_with(|| "health RPC timed out".into());
            }
            RpcHealth::Failed(e) => {
                error.get_or_insert_with(|| format!("health RPC failed: {e}"));
            }
            RpcHealth::NotAsked if !connected => {
                error.get_or_insert_with(|| {
                    self.last_error
                        .as_ref()
                        .map(|f| format!("not connected: {}", f.message))
                        .unwrap_or_else(|| "not connected".into())
                });
            }
            RpcHealth::NotAsked => {}
        }
        let healthy = error.is_none() && connected && !self.reports_unhealthy;
        self.checked = true;
        self.last_probe_timed_out = timed_out;
        let mut breaker_opened = false;
        let outcome = if healthy {
            self.breaker.record_success();
            self.last_seen = Some(unix_now);
            "healthy"
        } else {
            breaker_opened = self.breaker.record_failure(now);
            if timed_out { "timeout" } else { "unhealthy" }
        };
        ProbeVerdict {
            healthy,
            outcome,
            status: self.status(),
            latency_ms: latency.or(self.latency_ms),
            error,
            connected,
            uptime_ms: self
                .uptime_at_connect_ms
                .zip(self.connected_at)
                .map(|(up, at)| up + now.saturating_duration_since(at).as_millis() as u64),
            breaker_opened,
        }
    }
}
