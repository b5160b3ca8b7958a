//! The gateway actor: one per registered gateway. It owns the WebSocket, the handshake, the
//! keepalive, the reconnect schedule, the circuit breaker and the health probe, and reports
//! every change to the registry. Decisions are made by the plain modules it forwards to
//! (`backoff`, `breaker`, `status`, `protocol::errors`, `handshake`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::io::{SinkWrite, WriteHandler};
use actix::prelude::*;
use actix_codec::Framed;
use awc::BoxedSocket;
use awc::error::WsProtocolError as ProtocolError;
use awc::ws::{CloseCode, CloseReason, Codec, Frame as WsFrame, Message as WsMessage};
use futures_util::stream::StreamExt;
use secrecy::SecretString;
use serde_json::Value;
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use crate::backoff::{Backoff, Jitter};
use crate::bounded;
use crate::breaker::Breaker;
use crate::counts;
use crate::handshake::{AuthChoice, Credentials, connect_params};
use crate::link_metrics::LinkMetrics;
use crate::messages::SessionsSnapshot;
use crate::messages::{
    Call, CallError, DeviceTokenChanged, HealthSample, LinkState, LinkUpdate, LiveStats, ProbeNow,
    ProbeResult, StopLink,
};
use crate::model::{ConnectionInfo, GatewayId, GatewayStatus, LinkError};
use crate::protocol::device::{DeviceIdentity, SignatureVersion};
use crate::protocol::errors::{Disposition, LinkFailure, Recovery, classify_close, classify_error};
use crate::protocol::frames::{Challenge, ErrorShape, Frame, HelloOk};
use crate::registry::RegistryActor;
use crate::status::{HealthFacts, derive};
use crate::unix_now;

/// Requests in a row left unanswered past their deadline before the link is taken for dead: a
/// gateway answering under wrong ids stayed `online` until the next probe (5 min).
const MAX_UNANSWERED: u32 = 3;

/// Methods kept from a `hello-ok` (the 2026.9 gateway advertises about 150).
const MAX_METHODS: usize = 1024;

/// The advertised methods worth keeping: plausible names, at most [`MAX_METHODS`].
fn bounded_methods(methods: &[String]) -> Vec<String> {
    methods
        .iter()
        .filter(|m| bounded::identifier(m).is_some_and(|m| m.len() <= bounded::SHORT))
        .take(MAX_METHODS)
        .cloned()
        .collect()
}

/// Delay before re-connecting for a recovery step the gateway recommended.
const RECOVERY_DELAY: Duration = Duration::from_millis(100);
/// How often a backing-off link asks the gateway's `/readyz`.
const READINESS_POLL: Duration = Duration::from_secs(1);
/// Coalesces bursts of `sessions.changed` into one `sessions.list`.
const SESSIONS_REFRESH_DEBOUNCE: Duration = Duration::from_millis(500);
/// Sessions fetched per gateway for the cache.
const SESSIONS_LIMIT: u32 = 1000;

/// Timing and thresholds, from the `gateways.*` configuration.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    pub heartbeat_interval: Duration,
    pub missed_pongs: u32,
    pub health_interval: Duration,
    pub probe_timeout: Duration,
    pub connect_timeout: Duration,
    pub handshake_timeout: Duration,
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
    pub degraded_latency_ms: u64,
    pub backoff_max: Duration,
    pub pairing_retry: Duration,
    pub rpc_timeout: Duration,
    /// Reported as `client.version`.
    pub client_version: String,
}

/// Where and how to reach one gateway.
#[derive(Clone)]
pub struct LinkTarget {
    pub id: GatewayId,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub allow_insecure_tls: bool,
    pub token: Option<SecretString>,
    pub device_token: Option<SecretString>,
    /// The shared token was just changed by an admin: prove it on the first connect.
    pub verify_shared_token: bool,
}

impl LinkTarget {
    fn authority(&self) -> String {
        crate::model::authority(&self.host, self.port)
    }

    /// Never carries a token: credentials go in the `connect` frame only.
    fn ws_url(&self) -> String {
        format!(
            "{}://{}/",
            if self.tls { "wss" } else { "ws" },
            self.authority()
        )
    }

    fn health_url(&self) -> String {
        self.http_url("/health")
    }

    fn http_url(&self, path: &str) -> String {
        format!(
            "{}://{}{path}",
            if self.tls { "https" } else { "http" },
            self.authority()
        )
    }
}

/// Shared by all gateway actors.
#[derive(Clone)]
pub struct LinkContext {
    pub settings: Arc<LinkSettings>,
    pub identity: Arc<DeviceIdentity>,
    pub metrics: Arc<LinkMetrics>,
    pub events: crate::events::EventBus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Handshaking,
    Connected,
    Backoff,
    Halted,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::Handshaking => "handshaking",
            Phase::Connected => "connected",
            Phase::Backoff => "backoff",
            Phase::Halted => "halted",
        }
    }
}

type WsSink = crate::ws_io::WsWriter;

/// What the registry shows of a link, to skip reports that change none of it.
type ReportKey = (
    bool,
    GatewayStatus,
    Option<i64>,
    Option<i64>,
    Option<String>,
    &'static str,
);

struct Conn {
    sink: SinkWrite<WsMessage, WsSink>,
    stream: SpawnHandle,
    /// Raised from the handshake's frame cap to the link's at `hello-ok`.
    frame_cap: crate::ws_io::FrameCap,
}

thread_local! {
    // One HTTP/WebSocket client per arbiter thread (verified, insecure), shared by its actors.
    static CLIENTS: RefCell<HashMap<bool, awc::Client>> = RefCell::new(HashMap::new());
}

pub(crate) fn client(
    insecure: bool,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> awc::Client {
    CLIENTS.with(|c| {
        c.borrow_mut()
            .entry(insecure)
            .or_insert_with(|| {
                awc::Client::builder()
                    .connector(
                        awc::Connector::new()
                            .rustls_0_23(crate::tls::client_config(insecure))
                            // An upgraded WebSocket keeps its connector permit: the default
                            // limit (100 per client) would cap the fleet at 100 per thread.
                            .limit(0)
                            .timeout(connect_timeout)
                            .handshake_timeout(connect_timeout),
                    )
                    .timeout(request_timeout)
                    .finish()
            })
            .clone()
    })
}

pub struct GatewayActor {
    target: LinkTarget,
    epoch: u64,
    live: Arc<LiveStats>,
    ctx: LinkContext,
    registry: Addr<RegistryActor>,

    phase: Phase,
    generation: u64,
    conn: Option<Conn>,
    connect_request_id: Option<String>,
    handshake_timer: Option<SpawnHandle>,
    heartbeat: Option<SpawnHandle>,
    attempts: u64,

    auth_choice: AuthChoice,
    signature_version: SignatureVersion,
    v2_fallback_used: bool,
    recoveries_left: u8,

    backoff: Backoff,
    jitter: Jitter,
    breaker: Breaker,
    restart_hint: Option<Duration>,

    next_request: u64,
    pending: HashMap<String, (String, oneshot::Sender<Result<Value, CallError>>)>,

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
    /// Whether the last failure came before the WebSocket upgrade (see `retry_after`).
    failed_before_upgrade: bool,
    /// Requests in a row that timed out without an answer on this connection.
    unanswered: u32,
    uptime_at_connect_ms: Option<u64>,
    methods: Arc<Vec<String>>,
    sessions_count: Option<i64>,
    agents_count: Option<i64>,
    sessions_refresh: Option<SpawnHandle>,
    last_report: Option<ReportKey>,
}

impl GatewayActor {
    pub fn new(
        target: LinkTarget,
        epoch: u64,
        live: Arc<LiveStats>,
        ctx: LinkContext,
        registry: Addr<RegistryActor>,
    ) -> Self {
        let s = ctx.settings.clone();
        let auth_choice = if target.verify_shared_token && target.token.is_some() {
            AuthChoice::SharedTokenFirst
        } else {
            AuthChoice::Preferred
        };
        GatewayActor {
            target,
            epoch,
            live,
            registry,
            phase: Phase::Connecting,
            generation: 0,
            conn: None,
            connect_request_id: None,
            handshake_timer: None,
            heartbeat: None,
            attempts: 0,
            auth_choice,
            signature_version: SignatureVersion::V3,
            v2_fallback_used: false,
            recoveries_left: 2,
            backoff: Backoff::new(s.backoff_max),
            jitter: Jitter::from_os(),
            breaker: Breaker::new(s.breaker_threshold, s.breaker_cooldown),
            restart_hint: None,
            next_request: 0,
            pending: HashMap::new(),
            ping_outstanding: None,
            ping_counter: 0,
            missed_pongs: 0,
            last_frame_at: Instant::now(),
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
            sessions_refresh: None,
            last_report: None,
            ctx,
        }
    }

    fn settings(&self) -> &LinkSettings {
        &self.ctx.settings
    }

    fn status(&self) -> GatewayStatus {
        derive(&HealthFacts {
            checked: self.checked,
            connected: self.phase == Phase::Connected,
            halted: self.phase == Phase::Halted,
            breaker_tripped: self.breaker.is_tripped(),
            last_probe_timed_out: self.last_probe_timed_out,
            consecutive_failures: self.breaker.consecutive_failures(),
            latency_ms: self.latency_ms,
            degraded_latency_ms: self.settings().degraded_latency_ms,
            reports_unhealthy: self.reports_unhealthy,
        })
    }

    fn state(&self) -> LinkState {
        LinkState {
            connected: self.phase == Phase::Connected,
            connection: ConnectionInfo {
                state: Some(self.phase.as_str().to_owned()),
                protocol: self.protocol,
                server_version: self.server_version.clone(),
                last_error: self.last_error.as_ref().map(|f| LinkError {
                    code: f.code.clone(),
                    message: f.message.clone(),
                    retryable: f.retryable(),
                }),
                pairing_request_id: self.pairing_request_id.clone(),
            },
            breaker: self.breaker.info(Instant::now()),
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

    /// Tells the registry; skips reports that change nothing it shows.
    /// Latency and last-seen go through the shared [`LiveStats`]; a message only when
    /// something else changed.
    fn report(&mut self) {
        self.live.set(
            self.latency_ms
                .map(|l| i64::try_from(l).unwrap_or(i64::MAX)),
            self.last_seen,
        );
        let key = (
            self.phase == Phase::Connected,
            self.status(),
            self.sessions_count,
            self.agents_count,
            self.last_error.as_ref().map(|e| e.code.clone()),
            self.phase.as_str(),
        );
        if self.last_report.as_ref() == Some(&key) {
            return;
        }
        self.last_report = Some(key);
        let state = self.state();
        self.registry.do_send(LinkUpdate {
            id: self.target.id,
            epoch: self.epoch,
            state,
        });
    }

    // ---- connecting ---------------------------------------------------------------------

    fn connect(&mut self, ctx: &mut Context<Self>) {
        self.generation += 1;
        let generation = self.generation;
        if self.attempts > 0 {
            self.ctx
                .metrics
                .reconnects
                .with_label_values(&[&self.target.name])
                .inc();
        }
        self.attempts += 1;
        self.phase = Phase::Connecting;
        self.report();
        let s = self.settings();
        let client = client(
            self.target.allow_insecure_tls,
            s.connect_timeout,
            s.probe_timeout,
        );
        let request = client
            .ws(self.target.ws_url())
            .max_frame_size(crate::ws_io::HANDSHAKE_MAX_FRAME);
        let deadline = s.connect_timeout;
        debug!(gateway = %self.target.name, url = %self.target.ws_url(), "connecting");
        ctx.spawn(
            async move { tokio::time::timeout(deadline, request.connect()).await }
                .into_actor(self)
                .map(move |result, act, ctx| {
                    if act.generation != generation || act.phase != Phase::Connecting {
                        return;
                    }
                    match result {
                        Err(_) => act.fail(ctx, LinkFailure::timeout("connect")),
                        Ok(Err(err)) => {
                            let failure = crate::ws_io::connect_failure(&err, &act.target.ws_url());
                            act.fail(ctx, failure);
                        }
                        Ok(Ok((_response, framed))) => act.on_socket(ctx, framed, generation),
                    }
                }),
        );
    }

    fn on_socket(
        &mut self,
        ctx: &mut Context<Self>,
        framed: Framed<BoxedSocket, Codec>,
        generation: u64,
    ) {
        let frame_cap = crate::ws_io::FrameCap::new(crate::ws_io::HANDSHAKE_MAX_FRAME);
        let (stream, sink) = crate::ws_io::split(framed, frame_cap.clone());
        // Items carry their connection's generation: frames a torn-down stream had already
        // buffered must not be taken for the next connection's.
        let tagged = stream
            .map(move |item| Inbound::Frame(generation, item))
            .chain(futures_util::stream::once(async move {
                Inbound::Ended(generation)
            }));
        let stream = ctx.add_stream(tagged);
        self.conn = Some(Conn {
            sink: SinkWrite::new(sink, ctx),
            stream,
            frame_cap,
        });
        self.phase = Phase::Handshaking;
        self.last_frame_at = Instant::now();
        let timeout = self.settings().handshake_timeout;
        self.handshake_timer = Some(ctx.run_later(timeout, move |act, ctx| {
            if act.generation == generation && act.phase == Phase::Handshaking {
                act.fail(ctx, LinkFailure::timeout("handshake"));
            }
        }));
        self.report();
    }

    fn send_frame(&mut self, frame: &Frame) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        match serde_json::to_string(frame) {
            Ok(text) => conn.sink.write(WsMessage::Text(text.into())).is_ok(),
            Err(_) => false,
        }
    }

    fn on_challenge(&mut self, ctx: &mut Context<Self>, payload: Option<Value>) {
        let challenge: Challenge = match payload.map(serde_json::from_value) {
            Some(Ok(c)) => c,
            _ => {
                return self.fail(
                    ctx,
                    LinkFailure::protocol("connect.challenge without a nonce"),
                );
            }
        };
        let creds = Credentials {
            token: self.target.token.as_ref(),
            device_token: self.target.device_token.as_ref(),
        };
        let params = connect_params(
            &self.ctx.identity,
            &creds,
            self.auth_choice,
            &challenge,
            self.signature_version,
            &self.ctx.settings.client_version,
        );
        let id = format!("connect-{}", self.generation);
        self.connect_request_id = Some(id.clone());
        let params = match serde_json::to_value(&params) {
            Ok(p) => p,
            Err(e) => {
                return self.fail(
                    ctx,
                    LinkFailure::protocol(format!("cannot encode connect: {e}")),
                );
            }
        };
        if !self.send_frame(&Frame::request(id, "connect", Some(params))) {
            self.fail(
                ctx,
                LinkFailure::network("socket closed during the handshake"),
            );
        }
    }

    fn on_hello(&mut self, ctx: &mut Context<Self>, payload: Option<Value>) {
        let hello: HelloOk = match payload.map(serde_json::from_value) {
            Some(Ok(h)) => h,
            Some(Err(e)) => {
                return self.fail(
                    ctx,
                    LinkFailure::protocol(format!("unreadable hello-ok: {e}")),
                );
            }
            None => return self.fail(ctx, LinkFailure::protocol("hello-ok without a payload")),
        };
        if let Some(timer) = self.handshake_timer.take() {
            ctx.cancel_future(timer);
        }
        if let Some(conn) = &self.conn {
            conn.frame_cap.set(crate::ws_io::LINK_MAX_FRAME);
        }
        self.phase = Phase::Connected;
        self.checked = true;
        // The backoff is reset only once the link has proved stable (see `fail`): a gateway
        // that closes right after every handshake must not be re-dialled every second.
        self.breaker.record_success();
        self.recoveries_left = 2;
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
        self.connected_at = Some(Instant::now());
        self.last_seen = Some(unix_now());
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
                .target
                .device_token
                .as_ref()
                .is_none_or(|old| secrecy::ExposeSecret::expose_secret(old) != token.as_str());
            if changed {
                let token = SecretString::from(token);
                self.target.device_token = Some(token.clone());
                self.registry.do_send(DeviceTokenChanged {
                    id: self.target.id,
                    epoch: self.epoch,
                    token: Some(token),
                });
            }
        }
        info!(
            gateway = %self.target.name,
            protocol = hello.protocol,
            %version,
            auth = bounded::text(
                hello.auth.as_ref().and_then(|a| a.method.as_deref()).unwrap_or("?"),
                bounded::SHORT
            )
            .as_str(),
            "gateway connected"
        );
        self.schedule_heartbeat(ctx, true);
        self.report();
        if self.supports("sessions.subscribe") {
            self.fire_and_forget(ctx, "sessions.subscribe", Some(serde_json::json!({})));
        }
        self.refresh_counts(ctx);
    }

    fn supports(&self, method: &str) -> bool {
        self.methods.iter().any(|m| m == method)
    }

    fn apply_health(&mut self, health: &Value) {
        let (sessions, agents) = counts::from_health(health);
        self.sessions_count = sessions.or(self.sessions_count);
        self.agents_count = agents.or(self.agents_count);
        self.reports_unhealthy = counts::health_not_ok(health);
    }

    /// `sessions.list` and `agents.list`, when the gateway has them.
    fn refresh_counts(&mut self, ctx: &mut Context<Self>) {
        self.refresh_sessions(ctx);
        if self.supports("agents.list") {
            let timeout = self.settings().rpc_timeout;
            let rx = self.call(ctx, "agents.list", Some(serde_json::json!({})), timeout);
            ctx.spawn(rx.into_actor(self).map(|res, act, _| {
                if let Ok(payload) = res
                    && let Some(n) = counts::agents_from_list(&payload)
                {
                    act.agents_count = Some(n);
                    act.report();
                }
            }));
        }
    }

    /// The session cache: one `sessions.list`, handed to the registry.
    fn refresh_sessions(&mut self, ctx: &mut Context<Self>) {
        if !self.supports("sessions.list") {
            return;
        }
        let timeout = self.settings().rpc_timeout;
        let rx = self.call(
            ctx,
            "sessions.list",
            Some(serde_json::json!({"limit": SESSIONS_LIMIT})),
            timeout,
        );
        ctx.spawn(rx.into_actor(self).map(|res, act, _| {
            if let Ok(payload) = res {
                if let Some(n) = counts::sessions_from_list(&payload) {
                    act.sessions_count = Some(n);
                    act.report();
                }
                act.publish_sessions(&payload);
            }
        }));
    }

    fn publish_sessions(&mut self, payload: &Value) {
        if let Some(list) = crate::sessions::parse_list(payload, self.target.id) {
            self.registry.do_send(SessionsSnapshot {
                id: self.target.id,
                epoch: self.epoch,
                sessions: Arc::new(list),
            });
        }
    }

    fn fire_and_forget(&mut self, ctx: &mut Context<Self>, method: &str, params: Option<Value>) {
        let timeout = self.settings().rpc_timeout;
        let rx = self.call(ctx, method, params, timeout);
        ctx.spawn(rx.into_actor(self).map(|_, _, _| ()));
    }

    // ---- calls ------------------------------------------------------------------------------

    /// Sends a request; the returned future resolves with the response or an error.
    fn call(
        &mut self,
        ctx: &mut Context<Self>,
        method: &str,
        params: Option<Value>,
        timeout: Duration,
    ) -> impl Future<Output = Result<Value, CallError>> + 'static {
        let (tx, rx) = oneshot::channel();
        let metrics = self.ctx.metrics.clone();
        let (gateway, method_label) = (self.target.name.clone(), method.to_owned());
        let outcome = move |res: &Result<Value, CallError>| {
            let label = match res {
                Ok(_) => "ok",
                Err(CallError::NotConnected) => "not_connected",
                Err(CallError::Timeout(_)) => "timeout",
                Err(CallError::Gateway(_)) => "error",
            };
            metrics
                .rpc_calls
                .with_label_values(&[&gateway, &method_label, label])
                .inc();
        };
        if self.phase != Phase::Connected {
            let res = Err(CallError::NotConnected);
            outcome(&res);
            return futures_util::future::Either::Left(std::future::ready(res));
        }
        self.next_request += 1;
        let id = format!("r{}", self.next_request);
        if !self.send_frame(&Frame::request(id.clone(), method, params)) {
            let res = Err(CallError::NotConnected);
            outcome(&res);
            return futures_util::future::Either::Left(std::future::ready(res));
        }
        self.pending.insert(id.clone(), (method.to_owned(), tx));
        let addr = ctx.address();
        futures_util::future::Either::Right(async move {
            let res = match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(res)) => res,
                Ok(Err(_)) => Err(CallError::NotConnected),
                Err(_) => {
                    addr.do_send(ForgetRequest(id));
                    Err(CallError::Timeout(timeout))
                }
            };
            outcome(&res);
            res
        })
    }

    fn on_response(
        &mut self,
        id: String,
        ok: bool,
        payload: Option<Value>,
        error: Option<ErrorShape>,
    ) {
        let Some((_method, tx)) = self.pending.remove(&id) else {
            // (an answer under an id never asked for counts for nothing)
            debug!(gateway = %self.target.name, %id, "response to an unknown or expired request");
            return;
        };
        self.unanswered = 0;
        let res = if ok {
            Ok(payload.unwrap_or(Value::Null))
        } else {
            Err(CallError::Gateway(error.unwrap_or(ErrorShape {
                code: "UNKNOWN".into(),
                message: "error response without an error".into(),
                details: None,
                retryable: None,
                retry_after_ms: None,
            })))
        };
        let _ = tx.send(res);
    }

    // ---- events and keepalive -------------------------------------------------------------

    fn on_event(&mut self, ctx: &mut Context<Self>, event: &str, payload: Option<Value>) {
        match event {
            "shutdown" => {
                self.restart_hint = payload
                    .as_ref()
                    .and_then(|p| p.get("restartExpectedMs"))
                    .and_then(Value::as_u64)
                    .map(Duration::from_millis);
                info!(gateway = %self.target.name, restart_expected = ?self.restart_hint, "gateway is shutting down");
            }
            "health" => {
                if let Some(p) = payload {
                    self.apply_health(&p);
                    self.report();
                }
            }
            "sessions.changed" => self.schedule_sessions_refresh(ctx),
            "agent.status" => {
                self.ctx.events.publish(
                    "agent.status",
                    Some(self.target.id),
                    payload.unwrap_or(Value::Null),
                );
                self.schedule_sessions_refresh(ctx);
            }
            "spawn_result" => {
                self.ctx.events.publish(
                    "gateway.spawn_result",
                    Some(self.target.id),
                    payload.unwrap_or(Value::Null),
                );
            }
            "log" => {
                self.ctx.events.publish(
                    "log",
                    Some(self.target.id),
                    payload.unwrap_or(Value::Null),
                );
            }
            // Seed-protocol gateways carry a session snapshot in their ticks.
            "tick" => {
                if let Some(p) = payload.filter(|p| p.get("sessions").is_some()) {
                    self.publish_sessions(&p);
                }
            }
            _ => {}
        }
    }

    fn schedule_sessions_refresh(&mut self, ctx: &mut Context<Self>) {
        if self.sessions_refresh.is_some() || !self.supports("sessions.list") {
            return;
        }
        self.sessions_refresh = Some(ctx.run_later(SESSIONS_REFRESH_DEBOUNCE, |act, ctx| {
            act.sessions_refresh = None;
            act.refresh_sessions(ctx);
        }));
    }

    /// The next ping, on the shared grid (see [`crate::heartbeat`]).
    fn schedule_heartbeat(&mut self, ctx: &mut Context<Self>, first: bool) {
        static GRID_ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let origin = *GRID_ORIGIN.get_or_init(Instant::now);
        let when = if first {
            crate::heartbeat::first_ping_in
        } else {
            crate::heartbeat::next_ping_in
        };
        let delay = when(
            origin.elapsed(),
            self.settings().heartbeat_interval,
            self.target.id,
        );
        let generation = self.generation;
        self.heartbeat = Some(ctx.run_later(delay, move |act, ctx| {
            if act.generation != generation || act.phase != Phase::Connected {
                return;
            }
            act.on_heartbeat(ctx);
            if act.generation == generation && act.phase == Phase::Connected {
                act.schedule_heartbeat(ctx, false);
            }
        }));
    }

    fn on_heartbeat(&mut self, ctx: &mut Context<Self>) {
        if self.phase != Phase::Connected {
            return;
        }
        if self.ping_outstanding.is_some() {
            self.missed_pongs += 1;
            if self.missed_pongs >= self.settings().missed_pongs {
                warn!(gateway = %self.target.name, missed = self.missed_pongs, "no pong: the socket is dead");
                return self.fail(ctx, LinkFailure::heartbeat());
            }
        }
        let silence = self.last_frame_at.elapsed();
        if silence > self.tick_interval * 2 {
            warn!(gateway = %self.target.name, ?silence, "no frame for twice the tick interval: the socket is dead");
            return self.fail(ctx, LinkFailure::heartbeat());
        }
        self.ping_counter += 1;
        let payload = self.ping_counter.to_be_bytes().to_vec();
        let sent = self
            .conn
            .as_mut()
            .is_some_and(|c| c.sink.write(WsMessage::Ping(payload.into())).is_ok());
        if sent && self.ping_outstanding.is_none() {
            self.ping_outstanding = Some((self.ping_counter, Instant::now()));
        }
    }

    fn on_pong(&mut self, payload: &[u8]) {
        let Some((_, sent_at)) = self.ping_outstanding else {
            return;
        };
        if payload.len() != 8 {
            return;
        }
        let rtt = sent_at.elapsed();
        self.ping_outstanding = None;
        self.missed_pongs = 0;
        self.latency_ms = Some(rtt.as_millis() as u64);
        self.last_seen = Some(unix_now());
        self.ctx
            .metrics
            .latency
            .with_label_values(&[&self.target.name])
            .observe(rtt.as_secs_f64());
        self.report();
    }

    // ---- failure handling ------------------------------------------------------------------

    fn teardown(&mut self, ctx: &mut Context<Self>, close: Option<CloseCode>) {
        if let Some(mut conn) = self.conn.take() {
            ctx.cancel_future(conn.stream);
            if let Some(code) = close {
                let _ = conn
                    .sink
                    .write(WsMessage::Close(Some(CloseReason::from(code))));
            }
            conn.sink.close();
        }
        for handle in [
            self.handshake_timer.take(),
            self.heartbeat.take(),
            self.sessions_refresh.take(),
        ]
        .into_iter()
        .flatten()
        {
            ctx.cancel_future(handle);
        }
        for (_, (_, tx)) in self.pending.drain() {
            let _ = tx.send(Err(CallError::NotConnected));
        }
        self.connect_request_id = None;
        self.ping_outstanding = None;
        self.missed_pongs = 0;
        self.unanswered = 0;
        self.connected_at = None;
    }

    /// Every failure ends here: tear the socket down, let the error's class decide what next.
    fn fail(&mut self, ctx: &mut Context<Self>, failure: LinkFailure) {
        let was_connected = self.phase == Phase::Connected;
        self.failed_before_upgrade = self.phase == Phase::Connecting;
        if crate::backoff::stable_link(self.connected_at.map(|t| t.elapsed())) {
            self.backoff.reset();
        }
        self.teardown(ctx, Some(CloseCode::Normal));
        self.checked = true;
        if !was_connected {
            self.ctx
                .metrics
                .handshake_failures
                .with_label_values(&[&self.target.name, &failure.code])
                .inc();
        }
        // The gateway rejected the v3 signature: offer the v2 form once.
        if failure.code == "DEVICE_AUTH_SIGNATURE_INVALID" && !self.v2_fallback_used {
            self.v2_fallback_used = true;
            self.signature_version = SignatureVersion::V2;
            info!(gateway = %self.target.name, "v3 device signature rejected; retrying with v2");
            return self.retry_after(ctx, RECOVERY_DELAY, failure, false);
        }
        if failure.disposition == Disposition::Halt && self.recoveries_left > 0 {
            let recovered = match failure.recovery {
                Recovery::RetryWithDeviceToken if self.target.device_token.is_some() => {
                    self.auth_choice = AuthChoice::DeviceTokenOnly;
                    true
                }
                Recovery::DropDeviceToken if self.target.device_token.is_some() => {
                    self.target.device_token = None;
                    self.auth_choice = AuthChoice::SharedTokenFirst;
                    self.registry.do_send(DeviceTokenChanged {
                        id: self.target.id,
                        epoch: self.epoch,
                        token: None,
                    });
                    true
                }
                _ => false,
            };
            if recovered {
                self.recoveries_left -= 1;
                info!(gateway = %self.target.name, code = %failure.code, recovery = ?failure.recovery, "following the gateway's recommended next step");
                return self.retry_after(ctx, RECOVERY_DELAY, failure, false);
            }
        }
        match failure.disposition.clone() {
            Disposition::Halt => {
                warn!(gateway = %self.target.name, code = %failure.code, message = %failure.message, "link halted until the gateway is changed");
                self.phase = Phase::Halted;
                self.last_error = Some(failure);
                self.report();
            }
            Disposition::Pairing { request_id } => {
                warn!(gateway = %self.target.name, request_id = ?request_id, "device pairing required; approve it on the gateway");
                self.pairing_request_id = request_id;
                let delay = self.settings().pairing_retry;
                self.retry_after(ctx, delay, failure, true);
            }
            Disposition::Retry { after } => {
                let hint = after.or(self.restart_hint.take());
                let delay = self.backoff.next_delay(self.jitter.sample(), hint);
                debug!(gateway = %self.target.name, code = %failure.code, ?delay, "reconnecting after backoff");
                self.retry_after(ctx, delay, failure, true);
            }
        }
    }

    fn retry_after(
        &mut self,
        ctx: &mut Context<Self>,
        delay: Duration,
        failure: LinkFailure,
        counts: bool,
    ) {
        let now = Instant::now();
        if counts && self.breaker.record_failure(now) {
            warn!(gateway = %self.target.name, failures = self.breaker.consecutive_failures(), "circuit breaker opened");
        }
        // While open, wait for the half-open trial.
        let delay = delay.max(self.breaker.wait(now));
        self.phase = Phase::Backoff;
        self.last_error = Some(failure);
        self.report();
        let generation = self.generation;
        ctx.run_later(delay, move |act, ctx| {
            if act.generation == generation && act.phase == Phase::Backoff {
                act.connect(ctx);
            }
        });
        // A pairing approval gives no readiness signal; a WebSocket that broke after the
        // upgrade is not mended by a ready HTTP side (the breaker decides); a gateway that was
        // unreachable may come back early.
        let pairing = matches!(
            self.last_error.as_ref().map(|f| &f.disposition),
            Some(Disposition::Pairing { .. })
        );
        if counts && crate::backoff::readiness_shortcut(self.failed_before_upgrade, pairing) {
            self.schedule_readiness_poll(ctx, generation, delay);
        }
    }

    /// While backing off, asks the gateway's unauthenticated `/readyz` about once a second
    /// (jittered) and reconnects as soon as it answers 200: a restarted gateway is back in
    /// seconds, not after the backoff or breaker cooldown, and a dead one costs one cheap
    /// HTTP request per second instead of WebSocket handshakes.
    fn schedule_readiness_poll(
        &mut self,
        ctx: &mut Context<Self>,
        generation: u64,
        until: Duration,
    ) {
        let every = READINESS_POLL.mul_f64(0.75 + 0.5 * self.jitter.sample());
        if every >= until {
            return; // the scheduled reconnect comes first anyway
        }
        let remaining = until - every;
        ctx.run_later(every, move |act, ctx| {
            if act.generation != generation || act.phase != Phase::Backoff {
                return;
            }
            let timeout = READINESS_POLL.min(act.settings().probe_timeout);
            let s = act.settings();
            let client = client(act.target.allow_insecure_tls, s.connect_timeout, s.probe_timeout);
            let request = client.get(act.target.http_url("/readyz")).timeout(timeout).send();
            ctx.spawn(
                async move {
                    matches!(tokio::time::timeout(timeout, request).await, Ok(Ok(resp)) if resp.status().is_success())
                }
                .into_actor(act)
                .map(move |ready, act, ctx| {
                    if act.generation != generation || act.phase != Phase::Backoff {
                        return;
                    }
                    if ready {
                        debug!(gateway = %act.target.name, "gateway ready again; reconnecting now");
                        act.connect(ctx);
                    } else {
                        act.schedule_readiness_poll(ctx, generation, remaining);
                    }
                }),
            );
        });
    }

    // ---- probing ---------------------------------------------------------------------------

    fn probe(&mut self, ctx: &mut Context<Self>) -> ResponseActFuture<Self, ProbeResult> {
        let s = self.settings();
        let timeout = s.probe_timeout;
        let client = client(self.target.allow_insecure_tls, s.connect_timeout, timeout);
        let url = self.target.health_url();
        let rpc = (self.phase == Phase::Connected && self.supports("health"))
            .then(|| self.call(ctx, "health", None, timeout));
        let started = Instant::now();
        let http = async move {
            match tokio::time::timeout(timeout, client.get(url).timeout(timeout).send()).await {
                Err(_) => Err((true, "HTTP /health timed out".to_owned())),
                Ok(Err(awc::error::SendRequestError::Timeout)) => {
                    Err((true, "HTTP /health timed out".to_owned()))
                }
                Ok(Err(e)) => Err((false, format!("HTTP /health failed: {e}"))),
                Ok(Ok(resp)) if resp.status().is_success() => Ok(started.elapsed()),
                Ok(Ok(resp)) => Err((false, format!("HTTP /health answered {}", resp.status()))),
            }
        };
        let rpc = async move {
            match rpc {
                Some(rpc) => Some(rpc.await),
                None => None,
            }
        };
        // Both at once: a probe costs one timeout, not two.
        let fut = futures_util::future::join(http, rpc);
        Box::pin(
            fut.into_actor(self)
                .map(|(http, rpc), act, _ctx| act.on_probe(http, rpc)),
        )
    }

    fn on_probe(
        &mut self,
        http: Result<Duration, (bool, String)>,
        rpc: Option<Result<Value, CallError>>,
    ) -> ProbeResult {
        let connected = self.phase == Phase::Connected;
        let mut error = None;
        let mut timed_out = false;
        let mut latency = None;
        match &http {
            Ok(rtt) => latency = Some(rtt.as_millis() as u64),
            Err((t, msg)) => {
                timed_out |= *t;
                error = Some(msg.clone());
            }
        }
        match rpc {
            Some(Ok(health)) => self.apply_health(&health),
            Some(Err(CallError::Timeout(_))) => {
                timed_out = true;
                error.get_or_insert_with(|| "health RPC timed out".into());
            }
            Some(Err(e)) => {
                error.get_or_insert_with(|| format!("health RPC failed: {e}"));
            }
            None if !connected => {
                error.get_or_insert_with(|| {
                    self.last_error
                        .as_ref()
                        .map(|f| format!("not connected: {}", f.message))
                        .unwrap_or_else(|| "not connected".into())
                });
            }
            None => {}
        }
        let healthy = error.is_none() && connected && !self.reports_unhealthy;
        self.checked = true;
        self.last_probe_timed_out = timed_out;
        let outcome = if healthy {
            self.breaker.record_success();
            self.last_seen = Some(unix_now());
            "healthy"
        } else {
            if self.breaker.record_failure(Instant::now()) {
                warn!(gateway = %self.target.name, "circuit breaker opened by failed probes");
            }
            if timed_out { "timeout" } else { "unhealthy" }
        };
        self.ctx
            .metrics
            .probes
            .with_label_values(&[&self.target.name, outcome])
            .inc();
        let status = self.status();
        self.report();
        let latency = latency.or(self.latency_ms);
        self.registry.do_send(HealthSample {
            gateway_id: self.target.id,
            ts: unix_now(),
            status,
            latency: latency.map(|l| l as i64),
            error: error.clone(),
        });
        ProbeResult {
            healthy,
            latency_ms: latency,
            status,
            version: self.server_version.clone(),
            uptime_ms: self
                .uptime_at_connect_ms
                .zip(self.connected_at)
                .map(|(up, at)| up + at.elapsed().as_millis() as u64),
            protocol: self.protocol,
            connected,
            error,
        }
    }
}

/// Internal: a timed-out request's slot is freed.
#[derive(Message)]
#[rtype(result = "()")]
struct ForgetRequest(String);

impl Actor for GatewayActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.connect(ctx);
        let interval = self.settings().health_interval;
        ctx.run_interval(interval, |act, ctx| {
            let probe = act.probe(ctx);
            ctx.spawn(probe.map(|_, _, _| ()));
        });
    }

    fn stopping(&mut self, ctx: &mut Self::Context) -> Running {
        self.teardown(ctx, Some(CloseCode::Normal));
        Running::Stop
    }
}

/// One item of a connection's stream, tagged with the connection's generation.
enum Inbound {
    Frame(u64, Result<WsFrame, ProtocolError>),
    Ended(u64),
}

impl StreamHandler<Inbound> for GatewayActor {
    fn handle(&mut self, item: Inbound, ctx: &mut Self::Context) {
        let (generation, item) = match item {
            Inbound::Frame(generation, item) => (generation, item),
            Inbound::Ended(generation) => {
                // The stream ended without a close frame (TCP reset, process killed).
                if generation == self.generation && self.conn.is_some() {
                    self.fail(ctx, classify_close(1006, "connection lost"));
                }
                return;
            }
        };
        if generation != self.generation || self.conn.is_none() {
            return;
        }
        self.last_frame_at = Instant::now();
        let frame = match item {
            Ok(frame) => frame,
            Err(err) => {
                let cap = self.conn.as_ref().map_or(0, |c| c.frame_cap.get());
                return self.fail(ctx, crate::ws_io::read_failure(&err, cap));
            }
        };
        match frame {
            WsFrame::Text(bytes) => {
                let parsed = std::str::from_utf8(&bytes)
                    .map_err(|_| "a text frame that is not UTF-8".to_owned())
                    .and_then(|t| {
                        Frame::parse(t).map_err(|e| format!("an unreadable frame ({e})"))
                    });
                match parsed {
                    Ok(frame) => self.on_frame(ctx, frame),
                    Err(what) => self.fail(
                        ctx,
                        LinkFailure::protocol(format!("the gateway sent {what}")),
                    ),
                }
            }
            WsFrame::Ping(payload) => {
                if let Some(conn) = self.conn.as_mut() {
                    let _ = conn.sink.write(WsMessage::Pong(payload));
                }
            }
            WsFrame::Pong(payload) => self.on_pong(&payload),
            WsFrame::Close(reason) => {
                let (code, text) = reason
                    .map(|r| (u16::from(r.code), r.description.unwrap_or_default()))
                    .unwrap_or((1005, String::new()));
                self.fail(ctx, classify_close(code, &text));
            }
            WsFrame::Binary(_) | WsFrame::Continuation(_) => {
                self.fail(
                    ctx,
                    LinkFailure::protocol("the gateway sent a binary frame"),
                );
            }
        }
    }

    // Stream ends arrive as `Inbound::Ended`; the actor outlives every connection.
    fn finished(&mut self, _ctx: &mut Self::Context) {}
}

impl GatewayActor {
    fn on_frame(&mut self, ctx: &mut Context<Self>, frame: Frame) {
        match (self.phase, frame) {
            (Phase::Handshaking, Frame::Event { event, payload, .. })
                if event == "connect.challenge" =>
            {
                self.on_challenge(ctx, payload);
            }
            (
                Phase::Handshaking,
                Frame::Res {
                    id,
                    ok,
                    payload,
                    error,
                },
            ) if Some(&id) == self.connect_request_id.as_ref() => {
                if ok {
                    self.on_hello(ctx, payload);
                } else {
                    let error = error.unwrap_or(ErrorShape {
                        code: "UNKNOWN".into(),
                        message: "connect refused without an error".into(),
                        details: None,
                        retryable: None,
                        retry_after_ms: None,
                    });
                    self.fail(ctx, classify_error(&error));
                }
            }
            (
                Phase::Connected,
                Frame::Res {
                    id,
                    ok,
                    payload,
                    error,
                },
            ) => self.on_response(id, ok, payload, error),
            (Phase::Connected, Frame::Event { event, payload, .. }) => {
                self.on_event(ctx, &event, payload)
            }
            (_, Frame::Req { method, .. }) => {
                let method = bounded::text(&method, bounded::SHORT);
                debug!(gateway = %self.target.name, %method, "ignoring a request from the gateway");
            }
            (phase, other) => {
                let frame = bounded::text(&format!("{other:?}"), bounded::SHORT);
                debug!(gateway = %self.target.name, phase = phase.as_str(), %frame, "ignoring an unexpected frame");
            }
        }
    }
}

impl WriteHandler<ProtocolError> for GatewayActor {
    // A failed write cannot be tied to a connection (the sink of a torn-down one may report
    // late); a dead socket is found by the read side and the keepalive instead.
    fn error(&mut self, err: ProtocolError, _ctx: &mut Self::Context) -> Running {
        debug!(gateway = %self.target.name, %err, "write failed");
        Running::Continue
    }

    // The sink closes whenever a connection is torn down; the actor lives on.
    fn finished(&mut self, _ctx: &mut Self::Context) {}
}

impl Handler<ForgetRequest> for GatewayActor {
    type Result = ();
    fn handle(&mut self, msg: ForgetRequest, ctx: &mut Self::Context) {
        // Still pending: the gateway never answered it (a response under a wrong id, say).
        if self.pending.remove(&msg.0).is_some() && self.phase == Phase::Connected {
            self.unanswered += 1;
            if self.unanswered >= MAX_UNANSWERED {
                self.fail(ctx, LinkFailure::unanswered(self.unanswered));
            }
        }
    }
}

impl Handler<ProbeNow> for GatewayActor {
    type Result = ResponseActFuture<Self, ProbeResult>;
    fn handle(&mut self, _msg: ProbeNow, ctx: &mut Self::Context) -> Self::Result {
        self.probe(ctx)
    }
}

impl Handler<Call> for GatewayActor {
    type Result = ResponseFuture<Result<Value, CallError>>;
    fn handle(&mut self, msg: Call, ctx: &mut Self::Context) -> Self::Result {
        Box::pin(self.call(ctx, &msg.method, msg.params, msg.timeout))
    }
}

/// How long a stopping link gives its close frame to reach the gateway.
const CLOSE_FLUSH: Duration = Duration::from_millis(100);

impl Handler<StopLink> for GatewayActor {
    type Result = ResponseActFuture<Self, ()>;
    fn handle(&mut self, _msg: StopLink, ctx: &mut Self::Context) -> Self::Result {
        // Close with 1000 now; stop once the close frame had its chance to go out.
        self.generation += 1;
        self.phase = Phase::Halted;
        self.teardown(ctx, Some(CloseCode::Normal));
        Box::pin(
            tokio::time::sleep(CLOSE_FLUSH)
                .into_actor(self)
                .map(|_, _, ctx| ctx.stop()),
        )
    }
}
