//! The link's socket: dialling, the handshake's frames, failures and teardown, the
//! keepalive, and reading the stream. Decisions are the machine's; this carries them out.

use super::*;
use crate::link::pump::{self, PumpContext, Up};
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

    pub(super) fn connect(&mut self, ctx: &mut Context<Self>) {
        if !self.target.may_touch() {
            return self.fenced(ctx);
        }
        let (generation, reconnect) = self.machine.begin_connect();
        if reconnect {
            self.ctx.metrics.reconnect(self.target.id);
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
        let actions = self.machine.socket_opened(Instant::now());
        self.perform(ctx, actions);
    }

    /// What the pump heard since the machine last looked: it decides on the latest.
    pub(super) fn absorb_pulse(&mut self, ctx: &mut Context<Self>) {
        let Some(conn) = &self.conn else { return };
        let pulse = conn.pump.pulse();
        let (heard, pinged) = (pulse.take_heard(), pulse.take_pinged());
        let (quiet, pinged_since) = pulse.take_quiet();
        if let Some(at) = heard {
            self.machine.frame_seen(at);
        }
        let mut actions = Vec::new();
        if let Some(unix) = pinged {
            actions = self.machine.gateway_pinged(unix);
            self.publish_live();
        }
        // After the ping: one the quiet heartbeats already counted does not vouch again.
        self.machine.heartbeats_passed(quiet, pinged_since);
        if pinged.is_some() || quiet > 0 {
            self.perform(ctx, actions);
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

    pub(super) fn on_challenge(&mut self, ctx: &mut Context<Self>, payload: Option<Value>) {
        let plan = match self.machine.challenge(payload) {
            Ok(plan) => plan,
            Err(failure) => return self.fail(ctx, failure),
        };
        let creds = Credentials {
            token: self.target.token.as_ref(),
            device_token: self.machine.device_token(),
        };
        let text = match plan.request(
            &self.ctx.identity,
            &creds,
            &self.ctx.settings.client_version,
        ) {
            Ok(text) => text,
            Err(failure) => return self.fail(ctx, failure),
        };
        if !self.write(WsMessage::Text(text.into())) {
            self.fail(
                ctx,
                LinkFailure::network("socket closed during the handshake"),
            );
        }
    }

    pub(super) fn on_hello(&mut self, ctx: &mut Context<Self>, payload: Option<Value>) {
        let actions = self
            .machine
            .hello(payload, Instant::now(), unix_now(), self.jitter.sample());
        self.perform(ctx, actions);
    }

    /// How long until this gateway's slot, by `when`, on the shared grid at `interval`.
    fn on_grid(
        &self,
        when: fn(Duration, Duration, i64) -> Duration,
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
        if !self.machine.is_current(generation, LinkPhase::Connected) {
            return;
        }
        if let Some(conn) = &self.conn {
            conn.pump.pulse().heartbeat_taken();
        }
        let actions = self.machine.heartbeat(Instant::now(), self.jitter.sample());
        self.perform(ctx, actions);
        if self.machine.is_current(generation, LinkPhase::Connected) {
            self.schedule_heartbeat(false);
        }
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

    pub(super) fn on_pong(&mut self, payload: &[u8]) {
        let Some(rtt) = self.machine.pong(payload, Instant::now(), unix_now()) else {
            return;
        };
        if let Some(series) = &self.latency_series {
            series.observe(rtt.as_secs_f64());
        }
        self.report();
        self.tell_pump(); // no ping of ours waits now: heartbeats may pass quietly again
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

    /// Every failure ends here; the machine decides what next.
    pub(super) fn fail(&mut self, ctx: &mut Context<Self>, failure: LinkFailure) {
        let actions = self
            .machine
            .fail(failure, Instant::now(), self.jitter.sample());
        self.perform(ctx, actions);
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
                    act.connect(ctx);
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
                    self.fail(ctx, classify_close(1006, "connection lost"));
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
        match item {
            Received::Frame(frame) => self.on_frame(ctx, frame),
            Received::Ping(payload) => {
                self.write(WsMessage::Pong(payload));
                let actions = self.machine.gateway_pinged(unix_now());
                self.publish_live();
                self.perform(ctx, actions);
            }
            Received::Pong(payload) => self.on_pong(&payload),
            Received::Failed(failure) => self.fail(ctx, failure),
        }
    }

    // Stream ends arrive as `Inbound::Ended`; the actor outlives every connection.
    fn finished(&mut self, _ctx: &mut Self::Context) {}
}

impl GatewayActor {
    pub(super) fn on_frame(&mut self, ctx: &mut Context<Self>, frame: Frame) {
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
