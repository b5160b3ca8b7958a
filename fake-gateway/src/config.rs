//! What a fake gateway is (its configuration: the release it imitates, its timings, what
//! `update.run` does) and the faults a test can inject at run time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{HttpEndpoints, Signatures, Update, hostile, lock};

/// What a fake gateway is and how it behaves when nothing is injected.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Shared token (`gateway.auth.mode = "token"`); `None` = auth mode `none`.
    pub token: Option<String>,
    pub version: String,
    pub protocol: u64,
    pub tick_interval: Duration,
    /// WebSocket pings to the client (the real gateway pings every 25 s).
    pub ping_interval: Option<Duration>,
    /// `gateway.nodes.pairing.autoApproveLocal` (true on the real gateway).
    pub auto_approve: bool,
    /// Advertise the seed protocol's `spawn` and `control` methods.
    pub seed_protocol: bool,
    pub agents: Vec<String>,
    /// Sessions that exist at start (`agent:<first agent>:s<i>`).
    pub sessions: usize,
    /// How long an `agent` run takes unless its message contains `SLOW` (then 1 hour).
    pub run_duration: Duration,
    /// What each finished run costs (US dollars), as `usage.cost` reports it (with 100 input
    /// and 20 output tokens).
    pub run_cost_usd: f64,
    /// Emit a `health` event this often (the real gateway: ~60 s).
    pub health_event_interval: Option<Duration>,
    /// A pause longer than this between two frames of one socket is a silence in its
    /// [`crate::Dialer`] (the socket did not serve the gateway meanwhile): three of the
    /// supervisor's heartbeats, 500 ms each in the cluster tests.
    pub silence: Duration,
    /// Records the time of every accepted TCP connection (benchmarks: reconnect storms).
    pub accept_log: Option<AcceptLog>,
    /// Which release's device-signature check to imitate ([`FakeConfig::imitating`]).
    pub signatures: Signatures,
    /// Which release's HTTP endpoints to imitate.
    pub http: HttpEndpoints,
    /// How long a restart asked with `gateway.restart.request` keeps the gateway down (its
    /// handshakes refused as starting, `/readyz` 503) before it answers as a new process;
    /// `None`: it never comes back.
    pub restart_down: Option<Duration>,
    /// What `update.run` does (2026.9.6 in a test harness refuses it).
    pub update: Update,
}

/// A suspension prepared through `gateway.suspend.prepare` and not resumed.
#[derive(Debug, Clone)]
pub struct Suspension {
    pub id: String,
    /// The request it was prepared under: asking again with it renews this one.
    pub request_id: String,
    /// Prepared with `drain: true` (work in progress goes on; it is ready once idle).
    pub drain: bool,
    /// It lapses then unless renewed (2026.9.6: 120 s after each `prepare` under its request).
    pub expires_at_ms: u64,
}

impl Suspension {
    /// The phase 2026.9.6 reports for it (`gateway.suspension` events, the hello snapshot):
    /// `draining` while work holds it, `prepared` once idle.
    pub fn phase(&self, active: usize) -> &'static str {
        if active > 0 { "draining" } else { "prepared" }
    }
}

/// Accept times, shareable across many fakes.
#[derive(Debug, Clone, Default)]
pub struct AcceptLog(Arc<Mutex<Vec<Instant>>>);

impl AcceptLog {
    pub(crate) fn record(&self) {
        lock(&self.0).push(Instant::now());
    }

    /// The accept times recorded so far, and forgets them.
    pub fn take(&self) -> Vec<Instant> {
        std::mem::take(&mut *lock(&self.0))
    }
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            token: Some("fake-token".into()),
            version: "2026.9.6".into(),
            protocol: 4,
            tick_interval: Duration::from_secs(30),
            ping_interval: Some(Duration::from_secs(25)),
            auto_approve: true,
            seed_protocol: false,
            agents: vec!["main".into()],
            sessions: 0,
            run_duration: Duration::from_millis(200),
            run_cost_usd: 0.01,
            health_event_interval: None,
            silence: Duration::from_millis(1_500),
            accept_log: None,
            signatures: Signatures::default(),
            http: HttpEndpoints::default(),
            restart_down: Some(Duration::from_millis(300)),
            update: Update::default(),
        }
    }
}

/// Faults that stay in effect until cleared (see also the one-shot actions on [`FakeGateway`]).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Answer WebSocket upgrades with this HTTP status instead of 101.
    pub refuse_upgrade: Option<u16>,
    /// Close right after sending the challenge with (code, reason).
    pub close_after_challenge: Option<(u16, String)>,
    /// Hostile: close right after `hello-ok` with (code, reason), every time (a gateway that
    /// flaps; no real release does this on purpose).
    pub close_after_hello: Option<(u16, String)>,
    /// Read the client's frames (and so answer its pings) only after this delay.
    pub delay_pongs: Option<Duration>,
    /// Stop reading: pings go unanswered, requests too; ticks still flow.
    pub drop_pongs: bool,
    /// Connected sockets fall silent (no reads, no writes); new connections are accepted
    /// and never answered (TCP black hole), HTTP included.
    pub hang: bool,
    /// Delay the challenge by this much.
    pub slow_handshake: Option<Duration>,
    /// Refuse `connect` with `UNAVAILABLE` + 1013, as while starting.
    pub starting: bool,
    /// `health` reports `ok: false`.
    pub unhealthy: bool,
    /// Hostile: every response carries an id the client never used.
    pub wrong_ids: bool,
    /// Hostile: one of the misbehaviours in [`hostile::Hostile`].
    pub hostile: Option<hostile::Hostile>,
    /// Runs that an abort (or also a reset) does not release, as users of 2026.9 releases
    /// report (openclaw #92270): the request is answered as 2026.9.6 answers it, and the
    /// session keeps its active run.
    pub wedged: Option<Wedge>,
    /// Requests for these methods are read and never answered (a handler that hangs); every
    /// other request, ping and event goes on.
    pub unanswered: Vec<String>,
    /// Requests of this method are answered only after this long (the rest as usual): two
    /// requests sent together are both in flight at the gateway.
    pub slow_method: Option<(String, Duration)>,
    /// `config.get` answered with this instead of the config (a hostile or broken gateway:
    /// no hash, no config, a config that is not an object, megabytes).
    pub config_get_answer: Option<serde_json::Value>,
}

/// How a wedged run resists being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wedge {
    /// `sessions.abort` says `aborted`, the lane stays held; `sessions.reset` frees it.
    AbortIgnored,
    /// Neither `sessions.abort` nor `sessions.reset` frees it.
    Stuck,
}
