//! The link's socket: dialling, the handshake's frames, failures and teardown, the
//! keepalive, and reading the stream. Decisions are the machine's; this carries them out.

use super::*;
use crate::handshake::ConnectPlan;
use crate::link::machine::Heard;
use crate::link::pump::{self, PumpContext, Up};
use crate::model::GatewayId;
use crate::ws_io::Received;

/// WebSocket upgrades under way at once, process-wide. Until its socket is split (`ws_io`),
/// an upgrade holds awc's two 8 KB buffers: 10,000 gateways dialled together at start-up held
/// ~110 MB of them at the peak (heaptrack), and the heap kept that high-water mark, in holes
/// between what lived on, long after they were freed. The wait for a turn is not counted
/// against `connect_timeout`; a turn is held at most that long (a black-holed gateway cannot
/// keep it), so only more than this many unreachable gateways at once could slow the others.
static UPGRADES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1024);

impl GatewayActor {
    // ---- connecting ---------------------------------------------------------------------

    /// A dial, if the machine decides one: at the start (`None`), or when the reconnect of
    /// `due` falls due. Never past the lease.
    pub(super) fn dial(&mut self, ctx: &mut Context<Self>, due: Option<u64>) {
        if !self.target.may_touch() {
            return self.fenced(ctx);
        }
        self.feed(ctx, Input::Dial { generation: due });
    }

    /// The machine's dial for connection `generation`: the upgrade, in a turn of its own.
    pub(super) fn open_socket(&mut self, ctx: &mut Context<Self>, generation: u64) {
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
            async move {
                // Never closed, so a turn always comes; without one, dial anyway.
                let _turn = UPGRADES.acquire().await.ok();
                tokio::time::timeout(deadline, request.connect()).await
            }
            .into_actor(self)
            .map(move |result, act, ctx| {
                if !act.machine.is_current(generation, LinkPhase::Connecting) {
                    return;
                }
                let failure = match result {
                    Err(_) => LinkFailure::timeout("connect"),
                    Ok(Err(err)) => crate::ws_io::connect_failure(&err, &act.target.ws_url()),
                    Ok(Ok((_response, framed))) => return act.on_socket(ctx, framed, generation),
                };
                act.feed(ctx, Input::Failed(failure));
            }),
        );
    }

    pub(super) fn on_socket(
        &mut self,
        ctx: &mut Context<Self>,
        framed: Framed<BoxedSocket, Codec>,
        generation: u64,
    ) {
        let cap = crate::ws_io::HANDSHAKE_MAX_FRAME;
        let (early, framed) = crate::ws_io::reframe(framed, cap);
        let (pump, frames) = pump::start(
            framed,
            early,
            cap,
            PumpContext {
                lease: self.target.lease.clone(),
                live: self.live.clone(),
            },
        );
        // Items carry their connection's generation: frames a torn-down pump had already
        // passed on must not be taken for the next connection's.
        let tagged = frames
            .map(move |item| match item {
                Up::Frame(item) => Inbound::Frame(generation, item),
                Up::Heartbeat => Inbound::Heartbeat(generation),
            })
            .chain(futures_util::stream::once(async move {
                Inbound::Ended(generation)
            }));
        let stream = ctx.add_stream(tagged);
        self.conn = Some(Conn { pump, stream });
        self.feed(ctx, Input::SocketOpened);
    }

    /// What the pump heard since the machine last looked, in one value: the machine decides
    /// on the latest.
    pub(super) fn absorb_pulse(&mut self, ctx: &mut Context<Self>) {
        let Some(conn) = &self.conn else { return };
        let heard = conn.pump.pulse().take();
        if !heard.is_empty() {
            self.feed(ctx, Input::Heard(heard));
        }
    }

    pub(super) fn send_frame(&mut self, frame: &Frame) -> bool {
        match serde_json::to_string(frame) {
            Ok(text) => self.write(WsMessage::Text(text.into())),
            Err(_) => false,
        }
    }

    /// Every message to the gateway goes out here, and only while the lease lasts: past it,
    /// the socket is dropped unwritten (the next event the actor handles stops it).
    pub(super) fn write(&mut self, message: WsMessage) -> bool {
        if !self.target.may_touch() {
            // Dropping the pump's handle ends it.
            self.conn = None;
            return false;
        }
        self.conn.as_ref().is_some_and(|c| c.pump.write(message))
    }

    /// The lease ended (this instance was paused or cut off from the database): stop without
    /// another word to the gateway; its new owner has it, or will.
    pub(super) fn fenced(&mut self, ctx: &mut Context<Self>) {
        warn!(gateway = %self.target.name, "lease ended: leaving the gateway to its next owner");
        self.teardown(ctx, None);
        ctx.stop();
    }

    /// The machine's answer to the challenge: signed here, where the keys are.
    pub(super) fn send_connect(&mut self, ctx: &mut Context<Self>, plan: &ConnectPlan) {
        let creds = Credentials {
            token: self.target.token.as_ref(),
            device_token: self.machine.device_token(),
            dialer: self.target.dialer.as_deref(),
        };
        let failure = match plan.request(
            &self.ctx.identity,
            &creds,
            &self.ctx.settings.client_version,
        ) {
            Err(failure) => failure,
            Ok(text) => {
                if self.write(WsMessage::Text(text.into())) {
                    return;
                }
                LinkFailure::network("socket closed during the handshake")
            }
        };
        self.feed(ctx, Input::Failed(failure));
    }

    /// How long until this gateway's slot, by `when`, on the shared grid at `interval`.
    fn on_grid(
        &self,
        when: fn(Duration, Duration, GatewayId) -> Duration,
        interval: Duration,
    ) -> Duration {
        when(crate::heartbeat::on_grid(), interval, self.target.id)
    }

    /// The next heartbeat, on the shared grid (see [`crate::heartbeat`]), in this thread's
    /// heartbeat rounds (`link/beats.rs`): they take it quietly when the machine allows, or
    /// pass it to [`GatewayActor::on_heartbeat`].
    pub(super) fn schedule_heartbeat(&mut self, first: bool) {
        let when = if first {
            crate::heartbeat::first_ping_in
        } else {
            crate::heartbeat::next_ping_in
        };
        let every = self.settings().heartbeat_interval;
        let at = crate::heartbeat::grid_instant(when, every, self.target.id);
        if let Some(conn) = &self.conn {
            crate::link::beats::arm(conn.pump.pulse(), at.into(), every);
        }
    }

    /// A heartbeat the rounds did not take: the machine hears of the quiet ones first.
    fn on_heartbeat(&mut self, ctx: &mut Context<Self>, generation: u64) {
        self.absorb_pulse(ctx);
        if let Some(conn) = &self.conn {
            conn.pump.pulse().heartbeat_taken();
        }
        self.feed(ctx, Input::Heartbeat { generation });
    }

    /// The next periodic health probe, on the shared grid at `health_interval` (see
    /// [`crate::heartbeat`]); runs whatever the link's phase, for the life of the actor.
    pub(super) fn schedule_probe(&mut self, ctx: &mut Context<Self>, first: bool) {
        let when = if first {
            crate::heartbeat::first_probe_in
        } else {
            crate::heartbeat::next_ping_in
        };
        let delay = self.on_grid(when, self.settings().health_interval);
        ctx.run_later(delay, |act, ctx| {
            let probe = act.probe(ctx);
            ctx.spawn(probe.map(|_, _, _| ()));
            act.schedule_probe(ctx, false);
        });
    }

    // ---- failure handling ------------------------------------------------------------------

    /// The socket's side of a teardown: close it, cancel its timers, answer its pending calls
    /// (the machine forgets its own per-connection state when it decides the teardown).
    pub(super) fn teardown(&mut self, ctx: &mut Context<Self>, close: Option<CloseCode>) {
        if let Some(conn) = self.conn.take() {
            ctx.cancel_future(conn.stream);
            if let Some(code) = close
                && self.target.may_touch()
            {
                conn.pump
                    .write(WsMessage::Close(Some(CloseReason::from(code))));
            }
            // Dropping the handle ends the pump once what is queued is flushed.
        }
        // The heartbeat rounds forget the connection's pulse once it is gone.
        for handle in [self.handshake_timer.take(), self.sessions_refresh.take()]
            .into_iter()
            .flatten()
        {
            ctx.cancel_future(handle);
        }
        self.pending.fail_all();
    }

    /// While backing off, asks the gateway's unauthenticated `/readyz` about once a second
    /// (jittered) and reconnects as soon as it answers 200: a restarted gateway is back in
    /// seconds, not after the backoff or breaker cooldown, and a dead one costs one cheap
    /// HTTP request per second instead of WebSocket handshakes.
    pub(super) fn schedule_readiness_poll(
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
                    act.dial(ctx, Some(generation));
                } else {
                    act.schedule_readiness_poll(ctx, generation, remaining);
                }
            }));
        });
    }
}

/// One item of a connection's stream, tagged with the connection's generation.
enum Inbound {
    Frame(u64, Received),
    /// A heartbeat the rounds passed to the actor.
    Heartbeat(u64),
    Ended(u64),
}

impl StreamHandler<Inbound> for GatewayActor {
    fn handle(&mut self, item: Inbound, ctx: &mut Self::Context) {
        let (generation, item) = match item {
            Inbound::Frame(generation, item) => (generation, item),
            Inbound::Heartbeat(generation) => {
                if generation == self.machine.generation() && self.conn.is_some() {
                    self.on_heartbeat(ctx, generation);
                }
                return;
            }
            Inbound::Ended(generation) => {
                // The stream ended without a close frame (TCP reset, process killed).
                if generation == self.machine.generation() && self.conn.is_some() {
                    let failure = classify_close(1006, "connection lost");
                    self.feed(ctx, Input::Failed(failure));
                }
                return;
            }
        };
        if generation != self.machine.generation() || self.conn.is_none() {
            return;
        }
        if !self.target.may_touch() {
            return self.fenced(ctx);
        }
        self.absorb_pulse(ctx);
        if generation != self.machine.generation() || self.conn.is_none() {
            return;
        }
        let input = match item {
            Received::Frame(frame) => Input::Frame(frame),
            // Passed on by the pump because a round-trip ping of ours is due to ride its pong.
            Received::Ping(payload) => {
                self.write(WsMessage::Pong(payload));
                Input::Heard(Heard {
                    pinged_at: Some(unix_now()),
                    ..Heard::default()
                })
            }
            Received::Pong(payload) => Input::Pong(payload.to_vec()),
            Received::Failed(failure) => Input::Failed(failure),
        };
        self.feed(ctx, input);
    }

    // Stream ends arrive as `Inbound::Ended`; the actor outlives every connection.
    fn finished(&mut self, _ctx: &mut Self::Context) {}
}
