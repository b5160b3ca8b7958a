//! The link's mailbox and what it reports: the messages a gateway actor handles (`Call`,
//! `ProbeNow`, `StopLink`) and the ones it sends upward (`LinkUpdate`, `DeviceTokenChanged`,
//! `HealthSample`, `SessionsSnapshot`, carried in one `LinkReport`), which whoever holds the
//! link's `Upward` handles.

use std::sync::Arc;
use std::time::Duration;

use actix::Message;
use secrecy::SecretString;
use serde::Serialize;

use crate::model::{BreakerInfo, ConnectionInfo, GatewayId, GatewayStatus};
use crate::protocol::frames::ErrorShape;

/// What a link reports upward, as one message type: one mailbox sender per link instead of one
/// per kind of report.
#[derive(Message)]
#[rtype(result = "()")]
pub enum LinkReport {
    Update(Box<LinkUpdate>),
    DeviceToken(DeviceTokenChanged),
    Health(HealthSample),
    Sessions(SessionsSnapshot),
    RunEnded(RunEnded),
}

/// Everything a gateway actor knows about its link, sent to the registry on each change.
#[derive(Debug, Clone, Default)]
pub struct LinkState {
    pub connected: bool,
    pub connection: ConnectionInfo,
    pub breaker: BreakerInfo,
    pub status: GatewayStatus,
    pub last_seen: Option<i64>,
    pub latency: Option<i64>,
    pub sessions_count: Option<i64>,
    pub agents_count: Option<i64>,
    /// `features.methods` of the last hello: what this gateway can do.
    pub methods: Arc<Vec<String>>,
}

pub use crate::model::LiveStats;

#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct LinkUpdate {
    pub id: GatewayId,
    /// Bumped each time the registry (re)starts the link; stale actors' reports are dropped.
    pub epoch: u64,
    pub state: LinkState,
}

/// A new device token from `hello-ok` (or `None`: the cached one is no longer valid).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct DeviceTokenChanged {
    pub id: GatewayId,
    pub epoch: u64,
    pub token: Option<SecretString>,
}

/// One health probe's outcome, kept 24 h for the latency graph.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct HealthSample {
    pub gateway_id: GatewayId,
    pub ts: i64,
    pub status: GatewayStatus,
    pub latency: Option<i64>,
    pub error: Option<String>,
}

/// To a gateway actor: does the gateway's unauthenticated `GET /readyz` answer 2xx now?
#[derive(Message)]
#[rtype(result = "bool")]
pub struct ReadyNow;

/// To a gateway actor: what its connection said about runs (see `link::activity`), keyed by
/// session.
#[derive(Message)]
#[rtype(result = "std::collections::BTreeMap<String, crate::link::activity::SessionActivity>")]
pub struct ActivityNow;

/// To a gateway actor: the stuck-session watchdog's verdict on it (`true`: a stalled session
/// could not be recovered, so the gateway reads `degraded` until this is `false` again).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionsUnrecovered(pub bool);

/// To a gateway actor: probe now (HTTP `GET /health` plus the live socket's `health` RPC).
#[derive(Message)]
#[rtype(result = "ProbeResult")]
pub struct ProbeNow;

#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    pub healthy: bool,
    pub latency_ms: Option<u64>,
    pub status: GatewayStatus,
    pub version: Option<String>,
    pub uptime_ms: Option<u64>,
    pub protocol: Option<u32>,
    pub connected: bool,
    pub error: Option<String>,
}

impl ProbeResult {
    /// A probe that measured nothing, with why.
    pub fn unanswered(error: &str) -> Self {
        ProbeResult {
            healthy: false,
            latency_ms: None,
            status: GatewayStatus::Unknown,
            version: None,
            uptime_ms: None,
            protocol: None,
            connected: false,
            error: Some(error.to_owned()),
        }
    }

    /// A link whose lease ended does not probe.
    pub fn fenced() -> Self {
        Self::unanswered("this instance no longer holds the gateway's lease")
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("the gateway is not connected")]
    NotConnected,
    #[error("the gateway did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the gateway refused: {} ({})", .0.message, .0.code)]
    Gateway(ErrorShape),
    /// The call was decided on one gateway process and the socket now reaches another (or one
    /// that does not say which it is): nothing was sent.
    #[error("the gateway is no longer the process the action was decided on (bootId {expected}, now {})", .now.as_deref().unwrap_or("not reported"))]
    AnotherProcess {
        expected: String,
        now: Option<String>,
    },
}

/// To a gateway actor: one RPC over its live socket.
#[derive(Message)]
#[rtype(result = "Result<serde_json::Value, CallError>")]
pub struct Call {
    /// One of the daemon's own method names (it labels a metric).
    pub method: &'static str,
    pub params: Option<serde_json::Value>,
    pub timeout: Duration,
    /// Only to this gateway process (its `bootId`): a destructive action decided on it must
    /// not reach a restarted gateway.
    pub on_process: Option<String>,
    /// The W3C trace context of the request this call is made for ([`crate::trace`]); sent
    /// only to gateways that take it.
    pub traceparent: Option<String>,
}

/// To a gateway actor: close the socket with 1000 and stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopLink;

/// A gateway's current sessions (from `sessions.list` or a seed `tick` snapshot).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionsSnapshot {
    pub id: GatewayId,
    pub epoch: u64,
    pub sessions: Arc<Vec<crate::protocol::sessions::SessionEntry>>,
}

/// A gateway said a run of session `key` ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RunEnded {
    pub id: GatewayId,
    pub epoch: u64,
    pub key: String,
}

/// What one gateway's link heard about its approvals, for the daemon's inbox.
#[derive(Debug, Clone)]
pub struct ApprovalReport {
    pub gateway_id: GatewayId,
    pub news: crate::protocol::approvals::ApprovalNews,
}

/// Where links hand their approval news: a bounded queue, so a gateway flooding approval
/// events fills it and no more (what does not fit is dropped and counted; the inbox's periodic
/// reconcile reads every pending approval from the gateway again).
#[derive(Clone)]
pub struct ApprovalSink {
    tx: tokio::sync::mpsc::Sender<ApprovalReport>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl ApprovalSink {
    /// A sink holding at most `capacity` reports, and its receiving end.
    pub fn bounded(capacity: usize) -> (Self, tokio::sync::mpsc::Receiver<ApprovalReport>) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        let dropped = Arc::default();
        (ApprovalSink { tx, dropped }, rx)
    }

    /// Hands `report` on, unless the queue is full (then it is dropped and counted).
    pub fn tell(&self, report: ApprovalReport) {
        if self.tx.try_send(report).is_err() {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Reports dropped so far (the queue was full, or the inbox gone).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}
