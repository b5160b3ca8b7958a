//! The link's brain: every decision a gateway link makes, with no sockets, timers or
//! mailboxes. Everything that happens to a link comes in through one door,
//! [`LinkMachine::handle`] — a dial, a socket opened, a frame, what the pump heard by itself,
//! a heartbeat, a pong, a probe's outcome, a failure — with the time and the jitter as
//! inputs, and goes out as the [`Action`]s the actor shell (`crate::link::actor`) carries
//! out. So every link behaviour is a unit test (`link/machine_tests/`, driven by captured
//! frames), in microseconds; the phases and what moves between them are tabled in
//! `docs/design.md` ("The link state machine").
//!
//! The machine's memory is grouped by concern, each part with its own tests: [`auth`] (how
//! the link proves itself), [`retry`] (when it dials again), [`keepalive`] (pings, pongs,
//! silence, quiet heartbeats), [`server`] (what the gateway said of itself) and [`health`]
//! (what was observed of it). The rules they apply live in their own modules and stay there:
//! `backoff`, `breaker`, `status`, `protocol::errors`, `heartbeat`.

use std::sync::Arc;
use std::time::Instant;

use crate::backoff::Backoff;
pub use crate::handshake::ConnectPlan;
use crate::link::activity::Activity;
use crate::link::messages::CallError;
use crate::link::messages::LinkState;
pub use crate::model::LinkPhase;
use crate::model::{ConnectionInfo, GatewayStatus, LinkError};
use crate::protocol::errors::LinkFailure;
use crate::protocol::suspend::SuspensionPhase;
use crate::status::derive;
use secrecy::SecretString;

mod auth;
mod connected;
mod failure;
mod handshake;
mod health;
mod input;
mod io;
mod keepalive;
mod probe;
mod retry;
mod server;
pub use connected::is_pulse_only;
pub use input::{Heard, Input, Now, PumpOrders};
pub use io::{Action, HttpHealth, MachineSettings, Note, ProbeVerdict, ReportKey, RpcHealth};
pub use keepalive::RTT_EVERY_HEARTBEATS;

/// Requests in a row left unanswered past their deadline before the link is taken for dead: a
/// gateway answering under wrong ids stayed `online` until the next probe (5 min).
pub const MAX_UNANSWERED: u32 = 3;

/// Delay before re-connecting for a recovery step the gateway recommended.
pub const RECOVERY_DELAY: std::time::Duration = std::time::Duration::from_millis(100);

pub struct LinkMachine {
    settings: Arc<MachineSettings>,
    phase: LinkPhase,
    /// Bumped at every dial and at a stop: timers and callbacks of an older one are stale.
    generation: u64,
    auth: auth::Auth,
    retry: retry::Retry,
    keepalive: keepalive::Keepalive,
    server: server::Server,
    health: health::Health,
    /// This daemon is the gateway's approval client: its `connect` asks for
    /// `caps: ["approvals"]`, and the gateway's approval events go to the inbox.
    approval_client: bool,
    /// Why the link last failed (cleared by a good handshake).
    /// Boxed: 80 bytes inline in every link's task, set only while a link fails.
    last_error: Option<Box<LinkFailure>>,
    pairing_request_id: Option<Box<str>>,
    /// Requests in a row that timed out without an answer on this connection.
    unanswered: u32,
    /// The retries of a failed `sessions.list` on this connection.
    sessions_retry: Backoff,
    /// Signs of life of this connection's runs, for the stuck-session watchdog.
    activity: Activity,
}

impl LinkMachine {
    /// `verify_shared_token`: an admin just changed the shared token, so the first handshake
    /// proves it (rather than riding on a cached device token).
    pub fn new(
        settings: impl Into<Arc<MachineSettings>>,
        device_token: Option<SecretString>,
        verify_shared_token: bool,
        has_shared_token: bool,
        now: Instant,
    ) -> Self {
        let settings = settings.into();
        LinkMachine {
            phase: LinkPhase::Connecting,
            generation: 0,
            auth: auth::Auth::new(device_token, verify_shared_token && has_shared_token),
            retry: retry::Retry::new(
                settings.backoff_max,
                settings.breaker_threshold,
                settings.breaker_cooldown,
            ),
            keepalive: keepalive::Keepalive::new(now),
            server: server::Server::default(),
            health: health::Health::default(),
            approval_client: false,
            last_error: None,
            pairing_request_id: None,
            unanswered: 0,
            sessions_retry: connected::sessions_retry(),
            activity: Activity::default(),
            settings,
        }
    }

    /// The one door: what happened, at `now`, with `jitter` (uniform in [0, 1)) for any delay
    /// it decides; what to do about it, in order.
    pub fn handle(&mut self, input: Input, now: Now, jitter: f64) -> Vec<Action> {
        match input {
            Input::Dial { generation } => self.dial(generation),
            Input::SocketOpened => self.socket_opened(now.at),
            Input::HandshakeDeadline { generation } => {
                if !self.is_current(generation, LinkPhase::Handshaking) {
                    return Vec::new();
                }
                self.fail(LinkFailure::timeout("handshake"), now.at, jitter)
            }
            Input::Frame(frame) => self.frame(frame, now, jitter),
            Input::Heard(heard) => self.heard(heard, now),
            Input::Pong(payload) => self.pong(&payload, now),
            Input::Heartbeat { generation } => self.heartbeat(generation, now.at, jitter),
            Input::Answered => {
                self.unanswered = 0;
                Vec::new()
            }
            Input::Unanswered => self.unanswered(now.at, jitter),
            Input::SessionsListed(list) => self.sessions_listed(list),
            Input::SessionsListFailed => self.sessions_list_failed(),
            Input::AgentsListed(list) => self.agents_listed(&list),
            Input::Probed { http, rpc } => self.probed(http, rpc, now),
            Input::Failed(failure) => self.fail(failure, now.at, jitter),
            Input::AnswerApprovals(on) => {
                self.approval_client = on;
                Vec::new()
            }
            Input::SessionsUnrecovered(unrecovered) => {
                let before = self.status();
                self.health.sessions_unrecovered = unrecovered;
                if before == self.status() {
                    return Vec::new();
                }
                vec![Action::Report]
            }
            Input::Stop => self.stop(),
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
        self.auth.device_token()
    }

    pub fn supports(&self, method: &str) -> bool {
        self.server.supports(method)
    }

    /// Why the link last failed (cleared by a good handshake).
    pub fn last_failure(&self) -> Option<&LinkFailure> {
        self.last_error.as_deref()
    }

    pub fn server_version(&self) -> Option<&str> {
        self.server.version.as_deref()
    }

    /// The gateway process of the last handshake (`None`: the release does not say).
    pub fn boot_id(&self) -> Option<&str> {
        self.server.boot_id.as_deref()
    }

    /// Whether a call decided on the process `expected` may go out: only on a live socket to
    /// that very process. `None`: no condition.
    pub fn fence(&self, expected: Option<&str>) -> Result<(), CallError> {
        self.server.fence(self.connected(), expected)
    }

    pub fn protocol(&self) -> Option<u32> {
        self.server.protocol
    }

    pub fn latency_ms(&self) -> Option<u64> {
        self.health.latency_ms
    }

    pub fn last_seen(&self) -> Option<i64> {
        self.health.last_seen
    }

    /// What the pump may do without the machine until it next looks, with heartbeats every
    /// `every` (see [`keepalive`]).
    pub fn pump_orders(&self, every: std::time::Duration) -> PumpOrders {
        if !self.connected() {
            return PumpOrders::default();
        }
        self.keepalive.orders(every)
    }

    /// The runs' signs of life on this connection, for the stuck-session watchdog.
    pub fn activity(&self) -> &Activity {
        &self.activity
    }

    pub fn status(&self) -> GatewayStatus {
        derive(&self.health.facts(
            self.connected(),
            self.phase == LinkPhase::Halted,
            &self.retry.breaker,
            self.settings.degraded_latency_ms,
        ))
    }

    /// A fingerprint of [`Self::report_key`]: what a link keeps to tell whether a report
    /// changes anything (8 bytes in its task, not the key's 96). Two different keys share one
    /// with a chance of 2⁻⁶⁴ per report, when the registry would miss that report's change
    /// until the next.
    pub fn report_fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        // SipHash with fixed keys: the same key, the same fingerprint, in every process.
        let mut h = std::hash::DefaultHasher::new();
        self.report_key().hash(&mut h);
        h.finish()
    }

    pub fn report_key(&self) -> ReportKey {
        (
            self.connected(),
            self.status(),
            self.health.sessions_count,
            self.health.agents_count,
            self.last_error.as_ref().map(|e| e.code.clone()),
            self.phase.as_str(),
            self.server.suspension.map(SuspensionPhase::as_str),
        )
    }

    pub fn state(&self, now: Instant) -> LinkState {
        let server = &self.server;
        LinkState {
            connected: self.connected(),
            connection: ConnectionInfo {
                state: Some(self.phase),
                protocol: server.protocol,
                server_version: server.version.as_deref().map(str::to_owned),
                boot_id: server.boot_id.as_deref().map(str::to_owned),
                build_id: server.build_id.as_deref().map(str::to_owned),
                capabilities: server.capabilities.clone(),
                last_error: self.last_error.as_ref().map(|f| LinkError {
                    code: f.code.to_string(),
                    message: f.message.clone(),
                    retryable: f.retryable(),
                }),
                pairing_request_id: self.pairing_request_id.as_deref().map(str::to_owned),
                probe_error: self.health.probe_error.as_deref().map(str::to_owned),
                suspension: server.suspension.map(SuspensionPhase::as_str),
                approval_client: self.approval_client,
            },
            breaker: self.retry.breaker.info(now),
            status: self.status(),
            last_seen: self.health.last_seen,
            latency: self
                .health
                .latency_ms
                .map(|l| i64::try_from(l).unwrap_or(i64::MAX)),
            sessions_count: self.health.sessions_count,
            agents_count: self.health.agents_count,
            methods: server.methods.clone(),
        }
    }
}
