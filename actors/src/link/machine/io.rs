//! What goes into the link machine besides its inputs' own arguments (settings, probe
//! findings) and what comes out of it (actions, log notes, probe verdicts, report keys).

use crate::protocol::failure_code::FailureCode;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;

use crate::model::GatewayStatus;
use crate::protocol::errors::Recovery;

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
        code: FailureCode,
        recovery: Recovery,
    },
    /// The link stops until an admin changes the gateway.
    Halted {
        code: FailureCode,
        message: String,
    },
    PairingRequired {
        request_id: Option<String>,
    },
    Reconnecting {
        code: FailureCode,
        delay: Duration,
    },
    /// The breaker opened: an outage begins (said once per outage).
    BreakerOpened {
        failures: u32,
    },
    /// The breaker opened again within the same outage (a failed trial).
    BreakerReopened {
        failures: u32,
    },
    /// A handshake went through after the breaker had opened: the gateway is reachable again
    /// (said once per outage).
    BackAfterOutage {
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
    /// The gateway sent a request (it has none to make of us); its method, bounded.
    IgnoredRequest {
        method: String,
    },
    /// A frame that means nothing in this phase, bounded.
    UnexpectedFrame {
        phase: crate::model::LinkPhase,
        frame: String,
    },
}

/// What the shell does, in order.
#[derive(Debug, Clone)]
pub enum Action {
    /// Dial the gateway for connection `generation` (`reconnect`: not the link's first, it is
    /// counted); report back with [`super::Input::SocketOpened`] or a failure.
    Dial {
        generation: u64,
        reconnect: bool,
    },
    /// Answer the challenge with this `connect` (signed by the shell, which holds the keys).
    SendConnect(crate::handshake::ConnectPlan),
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
    /// Arm the next heartbeat on the shared grid (`first`: the connection's first).
    ArmHeartbeat {
        first: bool,
    },
    /// Send a WebSocket ping with this payload (the machine counts it sent).
    SendPing(Vec<u8>),
    /// Our ping was answered after this long (the latency histogram).
    RoundTrip(Duration),
    /// A response for a request of ours: the shell resolves its caller, and tells the machine
    /// [`super::Input::Answered`] when the id was one it asked under.
    Resolve {
        id: String,
        ok: bool,
        payload: Option<Value>,
        error: Option<crate::protocol::frames::ErrorShape>,
    },
    /// Store this device token for the gateway (`None`: forget it).
    PersistDeviceToken(Option<SecretString>),
    /// Subscribe to session changes (the gateway offers it).
    SubscribeSessions,
    /// Refresh the session and agent counts.
    RefreshCounts,
    /// Refresh the session cache soon (bursts of changes coalesce into one `sessions.list`).
    RefreshSessionsSoon,
    /// Ask for the session list again after this long (the last one failed).
    RefreshSessionsAfter(Duration),
    /// Hand this session list (a `sessions.list` answer or a seed tick) to the registry.
    PublishSessions(Value),
    /// The gateway said a run of this session ended: the session cache shows it not running
    /// from now (a gateway holding a suspension refuses `sessions.list`, so the next list may
    /// be minutes away).
    RunEnded(String),
    /// Publish an event on the daemon's bus under this type, tagged with the gateway.
    Publish {
        kind: crate::events::EventKind,
        payload: Value,
    },
    /// Hand what the gateway said about its approvals to the inbox (only on a link that is
    /// the gateway's approval client).
    Approvals(crate::protocol::approvals::ApprovalNews),
    /// Tell the registry (it skips reports that change nothing it shows).
    Report,
    /// Only the live numbers changed (latency, last seen): into the shared ones, no message.
    Live,
    /// A probe's verdict: counted, and a health sample for the registry.
    Probed(ProbeVerdict),
    Log(Note),
}

/// What a health probe found besides the machine's own facts.
#[derive(Debug, Clone)]
pub enum HttpHealth {
    /// `GET /health` answered 2xx (JSON) after this long.
    Answered(Duration),
    /// It answered 2xx but not as a health endpoint (releases before 2026.3 serve their Control
    /// UI page on every path): nothing was measured.
    NoEndpoint,
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
}

/// What the registry shows of a link, to skip reports that change none of it.
pub type ReportKey = (
    bool,
    GatewayStatus,
    Option<i64>,
    Option<i64>,
    Option<FailureCode>,
    &'static str,
    Option<&'static str>,
);
