//! The gateway actor: one per registered gateway, the shell around the link's decision
//! machine ([`crate::link::machine`]). It owns what the machine must not: the WebSocket, the
//! timers, the pending requests, the HTTP probes; it feeds the machine what happened and
//! carries out the actions it returns, and reports every change upward (`Upward`, the
//! registry in the daemon).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_codec::Framed;
use awc::BoxedSocket;
use awc::ws::{CloseCode, CloseReason, Codec, Message as WsMessage};
use futures_util::stream::StreamExt;
use serde_json::Value;
use tracing::{debug, info, warn};

use crate::backoff::Jitter;
use crate::handshake::Credentials;
use crate::link::http::client;
use crate::link::machine::{HttpHealth, Input, Now, ProbeVerdict, RpcHealth};
use crate::link::messages::{
    ActivityNow, ApprovalReport, Call, CallError, DeviceTokenChanged, HealthSample, LinkReport,
    LinkUpdate, LiveStats, ProbeNow, ProbeResult, ReadyNow, RunEnded, SessionsSnapshot,
    SessionsUnrecovered, StopLink,
};
use crate::link::pending::{self, Answer, Pending};
use crate::link::target::{LinkContext, LinkSettings, LinkTarget};
use crate::link::{Action, LinkMachine, LinkPhase, Note};
use crate::protocol::errors::{LinkFailure, classify_close};
use crate::protocol::frames::{ErrorShape, Frame};
use crate::unix_now;

mod calls;
mod socket;

/// Where a link reports (the registry, in the daemon): one recipient per message, so the link
/// never names the actor above it.
#[derive(Clone)]
pub struct Upward {
    /// One mailbox sender for every report (each sender costs an allocation per link, and a
    /// fleet has thousands of links).
    report: Recipient<LinkReport>,
}

impl Upward {
    pub fn to<A>(addr: &Addr<A>) -> Self
    where
        A: Actor<Context = Context<A>> + Handler<LinkReport>,
    {
        Upward {
            report: addr.clone().recipient(),
        }
    }

    pub fn update(&self, update: LinkUpdate) {
        self.report.do_send(LinkReport::Update(Box::new(update)));
    }

    pub fn device_token(&self, changed: DeviceTokenChanged) {
        self.report.do_send(LinkReport::DeviceToken(changed));
    }

    pub fn health(&self, sample: HealthSample) {
        self.report.do_send(LinkReport::Health(sample));
    }

    pub fn sessions(&self, snapshot: SessionsSnapshot) {
        self.report.do_send(LinkReport::Sessions(snapshot));
    }

    pub fn run_ended(&self, ended: RunEnded) {
        self.report.do_send(LinkReport::RunEnded(ended));
    }
}

/// How often a backing-off link asks the gateway's `/readyz`.
const READINESS_POLL: Duration = Duration::from_secs(1);
/// Coalesces bursts of `sessions.changed` into one `sessions.list`.
const SESSIONS_REFRESH_DEBOUNCE: Duration = Duration::from_millis(500);
/// Sessions fetched per gateway for the cache.
const SESSIONS_LIMIT: u32 = 1000;

/// A live connection: its pump (`crate::link::pump`), which owns the socket.
struct Conn {
    pump: crate::link::pump::PumpHandle,
    /// The frames the pump passes on.
    stream: SpawnHandle,
}

pub struct GatewayActor {
    target: LinkTarget,
    epoch: u64,
    live: Arc<LiveStats>,
    ctx: Arc<LinkContext>,
    up: Upward,
    machine: LinkMachine,
    jitter: Jitter,

    conn: Option<Conn>,
    handshake_timer: Option<SpawnHandle>,
    sessions_refresh: Option<SpawnHandle>,
    pending: Pending,
    /// The fingerprint of the last report sent (`LinkMachine::report_fingerprint`).
    last_report: Option<u64>,
    /// Where this gateway's ping round trips are recorded, looked up once when the link starts
    /// (not by label values at every pong).
    latency_series: Option<crate::link_metrics::LatencySeries>,
}

impl GatewayActor {
    pub fn new(
        target: LinkTarget,
        epoch: u64,
        live: Arc<LiveStats>,
        ctx: Arc<LinkContext>,
        up: Upward,
    ) -> Self {
        let mut machine = LinkMachine::new(
            ctx.settings.machine.clone(),
            target.device_token.clone(),
            target.verify_shared_token,
            target.token.is_some(),
            Instant::now(),
        );
        let approvals = target.approvals.unwrap_or(ctx.settings.approvals);
        // Decides nothing to carry out: it shapes the first `connect`.
        let none = machine.handle(Input::AnswerApprovals(approvals), Now::system(), 0.5);
        debug_assert!(none.is_empty());
        GatewayActor {
            target,
            epoch,
            live,
            up,
            machine,
            jitter: Jitter::from_os(),
            conn: None,
            handshake_timer: None,
            sessions_refresh: None,
            pending: Pending::default(),
            last_report: None,
            latency_series: None,
            ctx,
        }
    }

    fn settings(&self) -> &LinkSettings {
        &self.ctx.settings
    }

    /// Tells the registry; skips reports that change nothing it shows.
    /// Latency and last-seen, into the shared [`LiveStats`] (no message).
    fn publish_live(&self) {
        self.live.set(
            self.machine
                .latency_ms()
                .map(|l| i64::try_from(l).unwrap_or(i64::MAX)),
            self.machine.last_seen(),
        );
    }

    /// Latency and last-seen go through the shared [`LiveStats`]; a message only when
    /// something else changed.
    fn report(&mut self) {
        self.publish_live();
        let key = self.machine.report_fingerprint();
        if self.last_report == Some(key) {
            return;
        }
        self.last_report = Some(key);
        let state = self.machine.state(Instant::now());
        self.up.update(LinkUpdate {
            id: self.target.id,
            epoch: self.epoch,
            state,
        });
    }

    /// The one door: tells the machine what happened, now, and carries out what it decided,
    /// in order; then gives the pump its orders.
    fn feed(&mut self, ctx: &mut Context<Self>, input: Input) {
        let actions = self
            .machine
            .handle(input, Now::system(), self.jitter.sample());
        self.carry_out(ctx, actions);
        self.tell_pump();
    }

    /// What the pump and the heartbeat rounds act on for the machine, in one value: whether
    /// it wants the gateway's next ping, and how many heartbeats may pass without it.
    fn tell_pump(&self) {
        if let Some(conn) = &self.conn {
            let orders = self
                .machine
                .pump_orders(self.ctx.settings.heartbeat_interval);
            conn.pump.pulse().order(orders);
        }
    }

    fn carry_out(&mut self, ctx: &mut Context<Self>, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Dial {
                    generation,
                    reconnect,
                } => {
                    if reconnect {
                        self.ctx.metrics.reconnect(self.target.id);
                    }
                    self.open_socket(ctx, generation);
                }
                Action::SendConnect(plan) => self.send_connect(ctx, &plan),
                Action::Teardown => self.teardown(ctx, Some(CloseCode::Normal)),
                Action::CountHandshakeFailure(code) => {
                    self.ctx.metrics.handshake_failure(self.target.id, code)
                }
                Action::ReconnectAfter {
                    delay,
                    poll_readiness,
                } => {
                    let generation = self.machine.generation();
                    ctx.run_later(delay, move |act, ctx| act.dial(ctx, Some(generation)));
                    if poll_readiness {
                        self.schedule_readiness_poll(ctx, generation, delay);
                    }
                }
                Action::ArmHandshakeTimeout(timeout) => {
                    let generation = self.machine.generation();
                    self.handshake_timer = Some(ctx.run_later(timeout, move |act, ctx| {
                        act.feed(ctx, Input::HandshakeDeadline { generation });
                    }));
                }
                Action::HandshakeDone => {
                    if let Some(timer) = self.handshake_timer.take() {
                        ctx.cancel_future(timer);
                    }
                    if let Some(conn) = &self.conn {
                        conn.pump.pulse().set_cap(crate::ws_io::LINK_MAX_FRAME);
                    }
                }
                Action::ArmHeartbeat { first } => self.schedule_heartbeat(first),
                Action::SendPing(payload) => {
                    if !self.target.may_touch() {
                        return self.fenced(ctx);
                    }
                    self.write(WsMessage::Ping(payload.into()));
                }
                Action::RoundTrip(rtt) => {
                    if let Some(series) = &self.latency_series {
                        series.observe(rtt.as_secs_f64());
                    }
                }
                Action::Resolve {
                    id,
                    ok,
                    payload,
                    error,
                } => self.resolve(ctx, id, ok, payload, error),
                Action::PersistDeviceToken(token) => {
                    self.target.device_token = token.clone();
                    self.up.device_token(DeviceTokenChanged {
                        id: self.target.id,
                        epoch: self.epoch,
                        token,
                    });
                }
                Action::SubscribeSessions => {
                    self.fire_and_forget(ctx, "sessions.subscribe", Some(serde_json::json!({})));
                }
                Action::RefreshCounts => self.refresh_counts(ctx),
                Action::RefreshSessionsSoon => self.schedule_sessions_refresh(ctx),
                Action::RefreshSessionsAfter(after) => {
                    debug!(gateway = %self.target.name, retry_in_ms = after.as_millis() as u64,
                        "sessions.list failed; the session cache is asked again");
                    self.schedule_sessions_refresh_after(ctx, after);
                }
                Action::PublishSessions(payload) => self.publish_sessions(&payload),
                Action::RunEnded(key) => self.up.run_ended(RunEnded {
                    id: self.target.id,
                    epoch: self.epoch,
                    key,
                }),
                Action::Publish { kind, payload } => {
                    self.ctx.events.publish(kind, Some(self.target.id), payload);
                }
                Action::Approvals(news) => {
                    if let Some(sink) = &self.ctx.approvals {
                        sink.tell(ApprovalReport {
                            gateway_id: self.target.id,
                            news,
                        });
                    }
                }
                Action::Report => self.report(),
                Action::Live => self.publish_live(),
                Action::Probed(verdict) => self.probed(&verdict),
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
                let recovery = recovery.as_str();
                info!(%gateway, %code, recovery, "following the gateway's recommended next step");
            }
            Note::Halted { code, message } => {
                warn!(%gateway, %code, %message, "link halted until the gateway is changed");
            }
            Note::PairingRequired { request_id } => {
                let request_id = request_id.as_deref().unwrap_or("unknown");
                warn!(%gateway, request_id, "device pairing required; approve it on the gateway");
            }
            Note::Reconnecting { code, delay } => {
                debug!(%gateway, %code, ?delay, "reconnecting after backoff");
            }
            Note::BreakerOpened { failures } => {
                warn!(%gateway, failures, "circuit breaker opened: the gateway is offline");
            }
            Note::BreakerReopened { failures } => {
                debug!(%gateway, failures, "circuit breaker opened again: the trial failed");
            }
            Note::BackAfterOutage { failures } => {
                warn!(%gateway, failures, "the gateway is reachable again after an outage");
            }
            Note::BreakerOpenedByProbes => {
                warn!(%gateway, "circuit breaker opened by failed probes");
            }
            Note::NoPong { missed } => warn!(%gateway, missed, "no pong: the socket is dead"),
            Note::Silent { silence } => {
                warn!(%gateway, ?silence, "no frame for twice the tick interval: the socket is dead");
            }
            Note::ShuttingDown { restart_expected } => {
                let restart_expected_ms = restart_expected.map(|d| d.as_millis() as u64);
                match restart_expected_ms {
                    Some(ms) => {
                        info!(%gateway, restart_expected_ms = ms, "gateway is shutting down")
                    }
                    None => info!(%gateway, "gateway is shutting down, no restart announced"),
                }
            }
            Note::Connected {
                protocol,
                version,
                auth,
            } => {
                info!(%gateway, protocol, %version, auth = auth.as_str(), "gateway connected");
            }
            Note::IgnoredRequest { method } => {
                debug!(%gateway, %method, "ignoring a request from the gateway");
            }
            Note::UnexpectedFrame { phase, frame } => {
                debug!(%gateway, phase = phase.as_str(), %frame, "ignoring an unexpected frame");
            }
        }
    }

    fn supports(&self, method: &str) -> bool {
        self.machine.supports(method)
    }
}

/// Internal: a timed-out request's slot is freed.
#[derive(Message)]
#[rtype(result = "()")]
struct ForgetRequest(String);

impl Actor for GatewayActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.latency_series = self.ctx.metrics.latency_series(self.target.id);
        self.dial(ctx, None);
        self.schedule_probe(ctx, true);
    }

    fn stopping(&mut self, ctx: &mut Self::Context) -> Running {
        self.teardown(ctx, Some(CloseCode::Normal));
        Running::Stop
    }
}

impl Handler<ForgetRequest> for GatewayActor {
    type Result = ();
    fn handle(&mut self, msg: ForgetRequest, ctx: &mut Self::Context) {
        // Still pending: the gateway never answered it (a response under a wrong id, say).
        if self.pending.expire(&msg.0) {
            self.feed(ctx, Input::Unanswered);
        }
    }
}

impl Handler<ReadyNow> for GatewayActor {
    type Result = ResponseFuture<bool>;
    fn handle(&mut self, _msg: ReadyNow, _ctx: &mut Self::Context) -> Self::Result {
        let s = self.settings();
        let client = crate::link::http::client(
            self.target.allow_insecure_tls,
            s.connect_timeout,
            s.probe_timeout,
        );
        Box::pin(crate::link::http::ready(
            client,
            self.target.http_url("/readyz"),
            s.probe_timeout,
        ))
    }
}

impl Handler<ActivityNow> for GatewayActor {
    type Result = MessageResult<ActivityNow>;
    fn handle(&mut self, _msg: ActivityNow, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.machine.activity().snapshot())
    }
}

impl Handler<SessionsUnrecovered> for GatewayActor {
    type Result = ();
    fn handle(&mut self, msg: SessionsUnrecovered, ctx: &mut Self::Context) {
        self.feed(ctx, Input::SessionsUnrecovered(msg.0));
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
        if let Err(e) = self.machine.fence(msg.on_process.as_deref()) {
            return Box::pin(std::future::ready(Err(e)));
        }
        Box::pin(self.call_traced(ctx, msg.method, msg.params, msg.timeout, msg.traceparent))
    }
}

/// How long a stopping link gives its close frame to reach the gateway.
const CLOSE_FLUSH: Duration = Duration::from_millis(100);

impl Handler<StopLink> for GatewayActor {
    type Result = ResponseActFuture<Self, ()>;
    fn handle(&mut self, _msg: StopLink, ctx: &mut Self::Context) -> Self::Result {
        // Close with 1000 now; stop once the close frame had its chance to go out.
        self.feed(ctx, Input::Stop);
        Box::pin(
            tokio::time::sleep(CLOSE_FLUSH)
                .into_actor(self)
                .map(|_, _, ctx| ctx.stop()),
        )
    }
}

#[cfg(test)]
mod size_tests {
    use std::mem::size_of;

    /// A link's task is one allocation: tokio's task cell (header, scheduler, id, trailer and
    /// the stage's tag: 104 bytes, aligned to 128) around actix's context future, which holds
    /// the actor inline. Up to 1,176 bytes of future the cell is 1,280 bytes, a jemalloc class
    /// of its own; past it, 1,408, served from the 1,536-byte class (it was 1,664, in the
    /// 1,792-byte class, before the settings and context were shared, the last failure boxed
    /// and the report kept as a fingerprint: 512 bytes a link, 5 MB at 10,000). A field added
    /// to the actor or its machine that crosses the line shows here first.
    #[test]
    fn a_link_s_task_fits_jemalloc_s_1280_byte_class() {
        let future = size_of::<
            actix::dev::ContextFut<super::GatewayActor, actix::Context<super::GatewayActor>>,
        >();
        assert!(
            future <= 1176,
            "the link's task future is {future} bytes: over 1,176 its task takes the next size class"
        );
    }

    /// A cluster instance keeps one peer for each gateway another instance links (90,000 of
    /// 100,000 over 10 instances): 8 bytes here are 0.7 MB there.
    #[test]
    fn a_peer_is_80_bytes() {
        assert!(size_of::<crate::registry::peer_table::Peer>() <= 80);
    }
}
