//! The gateway actor: one per registered gateway, the shell around the link's decision
//! machine ([`crate::link::machine`]). It owns what the machine must not: the WebSocket, the
//! timers, the pending requests, the HTTP probes; it feeds the machine what happened and
//! carries out the actions it returns, and reports every change to the registry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::io::{SinkWrite, WriteHandler};
use actix::prelude::*;
use actix_codec::Framed;
use awc::BoxedSocket;
use awc::error::WsProtocolError as ProtocolError;
use awc::ws::{CloseCode, CloseReason, Codec, Frame as WsFrame, Message as WsMessage};
use futures_util::stream::StreamExt;
use serde_json::Value;
use tracing::{debug, info, warn};

use crate::backoff::Jitter;
use crate::bounded;
use crate::counts;
use crate::handshake::{Credentials, connect_params};
use crate::link::http::client;
use crate::link::machine::{HttpHealth, ReportKey, RpcHealth};
use crate::link::pending::{self, Answer, Pending};
pub use crate::link::target::{LinkContext, LinkSettings, LinkTarget};
use crate::link::{Action, LinkMachine, LinkPhase, Note};
use crate::messages::SessionsSnapshot;
use crate::messages::{
    Call, CallError, DeviceTokenChanged, HealthSample, LinkUpdate, LiveStats, ProbeNow,
    ProbeResult, StopLink,
};
use crate::protocol::errors::{LinkFailure, classify_close, classify_error};
use crate::protocol::frames::{ErrorShape, Frame};
use crate::registry::RegistryActor;
use crate::unix_now;

/// How often a backing-off link asks the gateway's `/readyz`.
const READINESS_POLL: Duration = Duration::from_secs(1);
/// Coalesces bursts of `sessions.changed` into one `sessions.list`.
const SESSIONS_REFRESH_DEBOUNCE: Duration = Duration::from_millis(500);
/// Sessions fetched per gateway for the cache.
const SESSIONS_LIMIT: u32 = 1000;

type WsSink = crate::ws_io::WsWriter;

struct Conn {
    sink: SinkWrite<WsMessage, WsSink>,
    stream: SpawnHandle,
    /// Raised from the handshake's frame cap to the link's at `hello-ok`.
    frame_cap: crate::ws_io::FrameCap,
}

pub struct GatewayActor {
    target: LinkTarget,
    epoch: u64,
    live: Arc<LiveStats>,
    ctx: LinkContext,
    registry: Addr<RegistryActor>,
    machine: LinkMachine,
    jitter: Jitter,

    conn: Option<Conn>,
    handshake_timer: Option<SpawnHandle>,
    heartbeat: Option<SpawnHandle>,
    sessions_refresh: Option<SpawnHandle>,
    pending: Pending,
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
        let machine = LinkMachine::new(
            ctx.settings.machine.clone(),
            target.device_token.clone(),
            target.verify_shared_token,
            target.token.is_some(),
            Instant::now(),
        );
        GatewayActor {
            target,
            epoch,
            live,
            registry,
            machine,
            jitter: Jitter::from_os(),
            conn: None,
            handshake_timer: None,
            heartbeat: None,
            sessions_refresh: None,
            pending: Pending::default(),
            last_report: None,
            ctx,
        }
    }

    fn settings(&self) -> &LinkSettings {
        &self.ctx.settings
    }

    /// Tells the registry; skips reports that change nothing it shows.
    /// Latency and last-seen go through the shared [`LiveStats`]; a message only when
    /// something else changed.
    fn report(&mut self) {
        self.live.set(
            self.machine
                .latency_ms()
                .map(|l| i64::try_from(l).unwrap_or(i64::MAX)),
            self.machine.last_seen(),
        );
        let key = self.machine.report_key();
        if self.last_report.as_ref() == Some(&key) {
            return;
        }
        self.last_report = Some(key);
        let state = self.machine.state(Instant::now());
        self.registry.do_send(LinkUpdate {
            id: self.target.id,
            epoch: self.epoch,
            state,
        });
    }

    /// Carries out what the machine decided, in order.
    fn perform(&mut self, ctx: &mut Context<Self>, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Teardown => self.teardown(ctx, Some(CloseCode::Normal)),
                Action::CountHandshakeFailure(code) => self
                    .ctx
                    .metrics
                    .handshake_failures
                    .with_label_values(&[&self.target.name, &code])
                    .inc(),
                Action::ReconnectAfter {
                    delay,
                    poll_readiness,
                } => {
                    let generation = self.machine.generation();
                    ctx.run_later(delay, move |act, ctx| {
                        if act.machine.is_current(generation, LinkPhase::Backoff) {
                            act.connect(ctx);
                        }
                    });
                    if poll_readiness {
                        self.schedule_readiness_poll(ctx, generation, delay);
                    }
                }
                Action::ArmHandshakeTimeout(timeout) => {
                    let generation = self.machine.generation();
                    self.handshake_timer = Some(ctx.run_later(timeout, move |act, ctx| {
                        if act.machine.is_current(generation, LinkPhase::Handshaking) {
                            act.fail(ctx, LinkFailure::timeout("handshake"));
                        }
                    }));
                }
                Action::HandshakeDone => {
                    if let Some(timer) = self.handshake_timer.take() {
                        ctx.cancel_future(timer);
                    }
                    if let Some(conn) = &self.conn {
                        conn.frame_cap.set(crate::ws_io::LINK_MAX_FRAME);
                    }
                }
                Action::StartHeartbeat => self.schedule_heartbeat(ctx, true),
                Action::SendPing(payload) => {
                    let sent = self
                        .conn
                        .as_mut()
                        .is_some_and(|c| c.sink.write(WsMessage::Ping(payload.into())).is_ok());
                    if sent {
                        self.machine.ping_sent(Instant::now());
                    }
                }
                Action::PersistDeviceToken(token) => {
                    self.target.device_token = token.clone();
                    self.registry.do_send(DeviceTokenChanged {
                        id: self.target.id,
                        epoch: self.epoch,
                        token,
                    });
                }
                Action::SubscribeSessions => {
                    self.fire_and_forget(ctx, "sessions.subscribe", Some(serde_json::json!({})));
                }
                Action::RefreshCounts => self.refresh_counts(ctx),
                Action::Report => self.report(),
                Action::Log(note) => self.log(note),
            }
        }
    }

    fn log(&self, note: Note) {
        let gateway = &self.target.name;
        match note {
            Note::V2Fallback => {
                info!(%gateway, "v3 device signature rejected; retrying with v2");
            }
            Note::Recovering { code, recovery } => {
                info!(%gateway, %code, ?recovery, "following the gateway's recommended next step");
            }
            Note::Halted { code, message } => {
                warn!(%gateway, %code, %message, "link halted until the gateway is changed");
            }
            Note::PairingRequired { request_id } => {
                warn!(%gateway, ?request_id, "device pairing required; approve it on the gateway");
            }
            Note::Reconnecting { code, delay } => {
                debug!(%gateway, %code, ?delay, "reconnecting after backoff");
            }
            Note::BreakerOpened { failures } => {
                warn!(%gateway, failures, "circuit breaker opened");
            }
            Note::BreakerOpenedByProbes => {
                warn!(%gateway, "circuit breaker opened by failed probes");
            }
            Note::NoPong { missed } => warn!(%gateway, missed, "no pong: the socket is dead"),
            Note::Silent { silence } => {
                warn!(%gateway, ?silence, "no frame for twice the tick interval: the socket is dead");
            }
            Note::ShuttingDown { restart_expected } => {
                info!(%gateway, ?restart_expected, "gateway is shutting down");
            }
            Note::Connected {
                protocol,
                version,
                auth,
            } => {
                info!(%gateway, protocol, %version, auth = auth.as_str(), "gateway connected");
            }
        }
    }

    // ---- connecting ---------------------------------------------------------------------

    fn connect(&mut self, ctx: &mut Context<Self>) {
        let (generation, reconnect) = self.machine.begin_connect();
        if reconnect {
            self.ctx
                .metrics
                .reconnects
                .with_label_values(&[&self.target.name])
                .inc();
        }
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
                    if !act.machine.is_current(generation, LinkPhase::Connecting) {
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
        let actions = self.machine.socket_opened(Instant::now());
        self.perform(ctx, actions);
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
        let plan = match self.machine.challenge(payload) {
            Ok(plan) => plan,
            Err(failure) => return self.fail(ctx, failure),
        };
        let creds = Credentials {
            token: self.target.token.as_ref(),
            device_token: self.machine.device_token(),
        };
        let params = connect_params(
            &self.ctx.identity,
            &creds,
            plan.auth,
            &plan.challenge,
            plan.signature,
            &self.ctx.settings.client_version,
        );
        let params = match serde_json::to_value(&params) {
            Ok(p) => p,
            Err(e) => {
                return self.fail(
                    ctx,
                    LinkFailure::protocol(format!("cannot encode connect: {e}")),
                );
            }
        };
        if !self.send_frame(&Frame::request(plan.request_id, "connect", Some(params))) {
            self.fail(
                ctx,
                LinkFailure::network("socket closed during the handshake"),
            );
        }
    }

    fn on_hello(&mut self, ctx: &mut Context<Self>, payload: Option<Value>) {
        let actions = self
            .machine
            .hello(payload, Instant::now(), unix_now(), self.jitter.sample());
        self.perform(ctx, actions);
    }

    fn supports(&self, method: &str) -> bool {
        self.machine.supports(method)
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
                    act.machine.set_agents_count(n);
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
                    act.machine.set_sessions_count(n);
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
        let metrics = self.ctx.metrics.clone();
        let (gateway, method_label) = (self.target.name.clone(), method.to_owned());
        let outcome = move |res: &Answer| {
            metrics
                .rpc_calls
                .with_label_values(&[&gateway, &method_label, pending::outcome(res)])
                .inc();
        };
        if !self.machine.connected() {
            let res = Err(CallError::NotConnected);
            outcome(&res);
            return futures_util::future::Either::Left(std::future::ready(res));
        }
        let (id, rx) = self.pending.open();
        if !self.send_frame(&Frame::request(id.clone(), method, params)) {
            self.pending.expire(&id);
            let res = Err(CallError::NotConnected);
            outcome(&res);
            return futures_util::future::Either::Left(std::future::ready(res));
        }
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
        if self.pending.answer(&id, ok, payload, error) {
            self.machine.answered();
        } else {
            // (an answer under an id never asked for counts for nothing)
            debug!(gateway = %self.target.name, %id, "response to an unknown or expired request");
        }
    }

    // ---- events and keepalive -------------------------------------------------------------

    fn on_event(&mut self, ctx: &mut Context<Self>, event: &str, payload: Option<Value>) {
        match event {
            "shutdown" => {
                let note = self.machine.shutting_down(payload.as_ref());
                self.log(note);
            }
            "health" => {
                if let Some(p) = payload {
                    self.machine.apply_health(&p);
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
        let generation = self.machine.generation();
        self.heartbeat = Some(ctx.run_later(delay, move |act, ctx| {
            if !act.machine.is_current(generation, LinkPhase::Connected) {
                return;
            }
            let actions = act.machine.heartbeat(Instant::now(), act.jitter.sample());
            act.perform(ctx, actions);
            if act.machine.is_current(generation, LinkPhase::Connected) {
                act.schedule_heartbeat(ctx, false);
            }
        }));
    }

    fn on_pong(&mut self, payload: &[u8]) {
        let Some(rtt) = self.machine.pong(payload, Instant::now(), unix_now()) else {
            return;
        };
        self.ctx
            .metrics
            .latency
            .with_label_values(&[&self.target.name])
            .observe(rtt.as_secs_f64());
        self.report();
    }

    // ---- failure handling ------------------------------------------------------------------

    /// The socket's side of a teardown: close it, cancel its timers, answer its pending calls
    /// (the machine forgets its own per-connection state when it decides the teardown).
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
        self.pending.fail_all();
    }

    /// Every failure ends here; the machine decides what next.
    fn fail(&mut self, ctx: &mut Context<Self>, failure: LinkFailure) {
        let actions = self
            .machine
            .fail(failure, Instant::now(), self.jitter.sample());
        self.perform(ctx, actions);
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
            if !act.machine.is_current(generation, LinkPhase::Backoff) {
                return;
            }
            let timeout = READINESS_POLL.min(act.settings().probe_timeout);
            let s = act.settings();
            let client = client(
                act.target.allow_insecure_tls,
                s.connect_timeout,
                s.probe_timeout,
            );
            let ready = crate::link::http::ready(client, act.target.http_url("/readyz"), timeout);
            ctx.spawn(ready.into_actor(act).map(move |ready, act, ctx| {
                if !act.machine.is_current(generation, LinkPhase::Backoff) {
                    return;
                }
                if ready {
                    debug!(gateway = %act.target.name, "gateway ready again; reconnecting now");
                    act.connect(ctx);
                } else {
                    act.schedule_readiness_poll(ctx, generation, remaining);
                }
            }));
        });
    }

    // ---- probing ---------------------------------------------------------------------------

    fn probe(&mut self, ctx: &mut Context<Self>) -> ResponseActFuture<Self, ProbeResult> {
        let s = self.settings();
        let timeout = s.probe_timeout;
        let client = client(self.target.allow_insecure_tls, s.connect_timeout, timeout);
        let url = self.target.health_url();
        let rpc = (self.machine.connected() && self.supports("health"))
            .then(|| self.call(ctx, "health", None, timeout));
        let http = crate::link::http::health(client, url, timeout);
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

    fn on_probe(&mut self, http: HttpHealth, rpc: Option<Answer>) -> ProbeResult {
        let rpc = match rpc {
            None => RpcHealth::NotAsked,
            Some(Ok(health)) => RpcHealth::Answered(health),
            Some(Err(CallError::Timeout(_))) => RpcHealth::TimedOut,
            Some(Err(e)) => RpcHealth::Failed(e.to_string()),
        };
        let now = unix_now();
        let verdict = self.machine.probed(http, rpc, Instant::now(), now);
        if verdict.breaker_opened {
            self.log(Note::BreakerOpenedByProbes);
        }
        self.ctx
            .metrics
            .probes
            .with_label_values(&[&self.target.name, verdict.outcome])
            .inc();
        self.report();
        self.registry.do_send(HealthSample {
            gateway_id: self.target.id,
            ts: now,
            status: verdict.status,
            latency: verdict.latency_ms.map(|l| l as i64),
            error: verdict.error.clone(),
        });
        ProbeResult {
            healthy: verdict.healthy,
            latency_ms: verdict.latency_ms,
            status: verdict.status,
            version: self.machine.server_version().map(str::to_owned),
            uptime_ms: verdict.uptime_ms,
            protocol: self.machine.protocol(),
            connected: verdict.connected,
            error: verdict.error,
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
                if generation == self.machine.generation() && self.conn.is_some() {
                    self.fail(ctx, classify_close(1006, "connection lost"));
                }
                return;
            }
        };
        if generation != self.machine.generation() || self.conn.is_none() {
            return;
        }
        self.machine.frame_seen(Instant::now());
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
        match (self.machine.phase(), frame) {
            (LinkPhase::Handshaking, Frame::Event { event, payload, .. })
                if event == "connect.challenge" =>
            {
                self.on_challenge(ctx, payload);
            }
            (
                LinkPhase::Handshaking,
                Frame::Res {
                    id,
                    ok,
                    payload,
                    error,
                },
            ) if self.machine.is_connect_response(&id) => {
                if ok {
                    self.on_hello(ctx, payload);
                } else {
                    let error = error
                        .unwrap_or_else(|| ErrorShape::unknown("connect refused without an error"));
                    self.fail(ctx, classify_error(&error));
                }
            }
            (
                LinkPhase::Connected,
                Frame::Res {
                    id,
                    ok,
                    payload,
                    error,
                },
            ) => self.on_response(id, ok, payload, error),
            (LinkPhase::Connected, Frame::Event { event, payload, .. }) => {
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
        if self.pending.expire(&msg.0) {
            let actions = self
                .machine
                .unanswered(Instant::now(), self.jitter.sample());
            self.perform(ctx, actions);
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
        let actions = self.machine.stop();
        self.perform(ctx, actions);
        Box::pin(
            tokio::time::sleep(CLOSE_FLUSH)
                .into_actor(self)
                .map(|_, _, ctx| ctx.stop()),
        )
    }
}
