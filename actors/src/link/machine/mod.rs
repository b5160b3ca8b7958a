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
use crate::link::activity::Activity;
use crate::link::messages::CallError;
use crate::link::messages::LinkState;
pub use crate::model::LinkPhase;
use crate::model::{ConnectionInfo, GatewayStatus, LinkError};
use crate::protocol::APPROVALS_CAP;
use crate::protocol::approvals::ApprovalNews;
use crate::protocol::device::SignatureVersion;
use crate::protocol::errors::LinkFailure;
use crate::protocol::frames::{Challenge, HelloOk};
use crate::protocol::suspend::SuspensionPhase;
use crate::status::{HealthFacts, derive};

mod connected;
mod failure;
pub use connected::is_pulse_only;
mod io;
mod probe;
pub use io::{Action, HttpHealth, MachineSettings, Note, ProbeVerdict, ReportKey, RpcHealth};

/// Requests in a row left unanswered past their deadline before the link is taken for dead: a
/// gateway answering under wrong ids stayed `online` until the next probe (5 min).
pub const MAX_UNANSWERED: u32 = 3;

/// With the gateway keeping the socket alive itself (its pings), the link still pings on
/// every this-many-th heartbeat, for the round trip (`latency_ms`): 5 min at the default
/// 30 s (docs/design.md, *Keepalive*).
pub const RTT_EVERY_HEARTBEATS: u32 = 10;

/// Methods kept from a `hello-ok` (the 2026.9 gateway advertises about 150).
const MAX_METHODS: usize = 1024;

/// Delay before re-connecting for a recovery step the gateway recommended.
pub const RECOVERY_DELAY: Duration = Duration::from_millis(100);

/// Recommended recovery steps (device token, re-pair) allowed between two good handshakes.
const RECOVERIES: u8 = 2;

/// The advertised methods (or capabilities) worth keeping: plausible names, at most
/// [`MAX_METHODS`].
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
    /// The gateway pinged this socket since the last heartbeat: it checks the socket both
    /// ways itself (it closes a socket whose pong is late), so ours is not needed for that.
    gateway_pinged: bool,
    /// Heartbeats left before a ping for the round trip falls due, while the gateway pings;
    /// at 0 it is due, and goes out with the pong to the gateway's next ping.
    heartbeats_to_rtt: u32,
    last_frame_at: Instant,
    tick_interval: Duration,

    checked: bool,
    /// A handshake ever succeeded on this link (since the daemon started it).
    connected_once: bool,
    /// The gateway's own suspension phase, as its hello and `gateway.suspension` events say.
    suspension: Option<SuspensionPhase>,
    /// This daemon is the gateway's approval client: its `connect` asks for
    /// `caps: ["approvals"]` (see [`LinkMachine::answering_approvals`]).
    approval_client: bool,
    last_error: Option<LinkFailure>,
    pairing_request_id: Option<String>,
    last_probe_timed_out: bool,
    reports_unhealthy: bool,
    /// What the last probe found wrong beside the socket and the RPC (HTTP `/health`).
    probe_error: Option<String>,
    latency_ms: Option<u64>,
    last_seen: Option<i64>,
    protocol: Option<u32>,
    server_version: Option<String>,
    /// The process the socket is connected to (`hello-ok.server.bootId`), where the release
    /// names it.
    boot_id: Option<String>,
    /// Its build (`hello-ok.server.buildId`), where the release names it.
    build_id: Option<String>,
    /// `hello-ok.features.capabilities`, bounded like the methods.
    capabilities: Arc<Vec<String>>,
    connected_at: Option<Instant>,
    /// Whether the last failure came before the WebSocket upgrade (see `backoff`).
    failed_before_upgrade: bool,
    /// The gateway's "not now" answers since the last stable link (see
    /// [`crate::backoff::taken_at_its_word`]).
    words_not_now: u32,
    /// Requests in a row that timed out without an answer on this connection.
    unanswered: u32,
    /// The retries of a failed `sessions.list` on this connection (see
    /// [`LinkMachine::sessions_list_failed`]).
    sessions_retry: Backoff,
    uptime_at_connect_ms: Option<u64>,
    methods: Arc<Vec<String>>,
    sessions_count: Option<i64>,
    agents_count: Option<i64>,
    /// Signs of life of this connection's runs, for the stuck-session watchdog.
    activity: Activity,
    /// The watchdog found a stalled session here it could not recover.
    sessions_unrecovered: bool,
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
            gateway_pinged: false,
            heartbeats_to_rtt: 0,
            last_frame_at: now,
            tick_interval: Duration::from_secs(30),
            checked: false,
            connected_once: false,
            suspension: None,
            approval_client: false,
            last_error: None,
            pairing_request_id: None,
            last_probe_timed_out: false,
            reports_unhealthy: false,
            probe_error: None,
            latency_ms: None,
            last_seen: None,
            protocol: None,
            server_version: None,
            boot_id: None,
            build_id: None,
            capabilities: Arc::default(),
            connected_at: None,
            failed_before_upgrade: false,
            words_not_now: 0,
            unanswered: 0,
            sessions_retry: connected::sessions_retry(),
            uptime_at_connect_ms: None,
            methods: Arc::new(Vec::new()),
            sessions_count: None,
            agents_count: None,
            activity: Activity::default(),
            sessions_unrecovered: false,
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

    /// The gateway process of the last handshake (`None`: the release does not say).
    pub fn boot_id(&self) -> Option<&str> {
        self.boot_id.as_deref()
    }

    /// Whether a call decided on the process `expected` may go out: only on a live socket to
    /// that very process (a socket does not outlive its process, so a reconnect to a restarted
    /// gateway has another `bootId`). `None`: no condition.
    pub fn fence(&self, expected: Option<&str>) -> Result<(), CallError> {
        let Some(expected) = expected else {
            return Ok(());
        };
        if !self.connected() {
            return Err(CallError::NotConnected);
        }
        if self.boot_id.as_deref() == Some(expected) {
            return Ok(());
        }
        Err(CallError::AnotherProcess {
            expected: expected.to_owned(),
            now: self.boot_id.clone(),
        })
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
        let connected = self.phase == LinkPhase::Connected;
        derive(&HealthFacts {
            checked: self.checked,
            connected,
            never_connected: !self.connected_once,
            halted: self.phase == LinkPhase::Halted,
            breaker_tripped: self.breaker.is_tripped(),
            last_probe_timed_out: self.last_probe_timed_out,
            // A link up now is judged by what it shows now; the failures before its
            // handshake stay counted by the breaker until the link lasts.
            consecutive_failures: if connected {
                0
            } else {
                self.breaker.consecutive_failures()
            },
            latency_ms: self.latency_ms,
            degraded_latency_ms: self.settings.degraded_latency_ms,
            reports_unhealthy: self.reports_unhealthy,
            secondary_failing: self.probe_error.is_some(),
            sessions_unrecovered: self.sessions_unrecovered,
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
            self.suspension.map(SuspensionPhase::as_str),
        )
    }

    pub fn state(&self, now: Instant) -> LinkState {
        LinkState {
            connected: self.phase == LinkPhase::Connected,
            connection: ConnectionInfo {
                state: Some(self.phase),
                protocol: self.protocol,
                server_version: self.server_version.clone(),
                boot_id: self.boot_id.clone(),
                build_id: self.build_id.clone(),
                capabilities: self.capabilities.clone(),
                last_error: self.last_error.as_ref().map(|f| LinkError {
                    code: f.code.to_string(),
                    message: f.message.clone(),
                    retryable: f.retryable(),
                }),
                pairing_request_id: self.pairing_request_id.clone(),
                probe_error: self.probe_error.clone(),
                suspension: self.suspension.map(SuspensionPhase::as_str),
                approval_client: self.approval_client,
                // The registry puts the link's own clock in each view.
                last_frame: Default::default(),
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
            caps: if self.approval_client {
                vec![APPROVALS_CAP]
            } else {
                Vec::new()
            },
        })
    }

    /// Makes this link the gateway's approval client (or not) from its next `connect` on: a
    /// 2026.9 gateway then sends it every exec and plugin approval and waits for its answer
    /// instead of denying at once when no approval client is there.
    pub fn answering_approvals(&mut self, on: bool) {
        self.approval_client = on;
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
        self.connected_once = true;
        // The backoff and the breaker's count are reset only once the link has proved stable
        // (see `fail`): a gateway that closes right after every handshake must not be
        // re-dialled every second, and must open the breaker like any failing gateway.
        let failures = self.breaker.consecutive_failures();
        if self.breaker.handshake_ok() {
            actions.push(Action::Log(Note::BackAfterOutage { failures }));
        }
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
        self.boot_id = hello
            .server
            .boot_id
            .as_deref()
            .map(|b| bounded::text(b, bounded::SHORT));
        self.build_id = hello
            .server
            .build_id
            .as_deref()
            .map(|b| bounded::text(b, bounded::SHORT));
        self.tick_interval = Duration::from_millis(hello.policy.tick_interval_ms.max(1000));
        self.methods = crate::intern::names(bounded_methods(&hello.features.methods));
        self.capabilities = crate::intern::names(bounded_methods(&hello.features.capabilities));
        self.connected_at = Some(now);
        self.last_seen = Some(unix_now);
        self.missed_pongs = 0;
        self.ping_outstanding = None;
        // The round trip is due at once: it leaves with the pong to the gateway's first ping,
        // or at the first heartbeat if that comes first.
        self.heartbeats_to_rtt = 0;
        // A release that does not report it (before 2026.9) shows none.
        self.suspension = None;
        if let Some(snapshot) = &hello.snapshot {
            self.uptime_at_connect_ms = snapshot.get("uptimeMs").and_then(Value::as_u64);
            self.suspension = snapshot
                .get("suspension")
                .and_then(SuspensionPhase::in_payload);
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
        // As its approval client, to this process: the inbox reads what is pending now.
        if self.approval_client {
            actions.push(Action::Approvals(ApprovalNews::Connected {
                boot_id: self.boot_id.clone(),
            }));
        }
        actions
    }

    // ---- the stuck-session watchdog -----------------------------------------------------------

    /// Records what a run event says about its session (heard at `unix_now_ms`).
    pub fn note_activity(&mut self, event: &str, payload: Option<&Value>, unix_now_ms: i64) {
        if let Some(payload) = payload {
            self.activity.note(event, payload, unix_now_ms);
        }
    }

    pub fn activity(&self) -> &Activity {
        &self.activity
    }

    /// The watchdog's verdict: a stalled session here could not be recovered (the gateway is
    /// `degraded` while so). Whether the status changed.
    pub fn set_sessions_unrecovered(&mut self, unrecovered: bool) -> bool {
        let before = self.status();
        self.sessions_unrecovered = unrecovered;
        before != self.status()
    }
}
