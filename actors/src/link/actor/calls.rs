//! The link's requests: calls and their answers, the session and agent counts, the gateway's
//! events, and the health probe.

use super::*;

impl GatewayActor {
    /// `sessions.list` and `agents.list`, when the gateway has them.
    pub(super) fn refresh_counts(&mut self, ctx: &mut Context<Self>) {
        self.refresh_sessions(ctx);
        if self.supports("agents.list") {
            let timeout = self.settings().rpc_timeout;
            let rx = self.call(ctx, "agents.list", Some(serde_json::json!({})), timeout);
            ctx.spawn(rx.into_actor(self).map(|res, act, ctx| {
                if let Ok(payload) = res {
                    act.feed(ctx, Input::AgentsListed(payload));
                }
            }));
        }
    }

    /// The session cache: one `sessions.list`, handed to the registry.
    pub(super) fn refresh_sessions(&mut self, ctx: &mut Context<Self>) {
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
        ctx.spawn(rx.into_actor(self).map(|res, act, ctx| match res {
            Ok(payload) => act.feed(ctx, Input::SessionsListed(payload)),
            // The next connection lists its sessions anyway.
            Err(CallError::NotConnected) => {}
            Err(e) => {
                debug!(gateway = %act.target.name, error = %e, "sessions.list failed");
                act.feed(ctx, Input::SessionsListFailed);
            }
        }));
    }

    pub(super) fn publish_sessions(&mut self, payload: &Value) {
        if let Some(list) = crate::protocol::sessions::parse_list(payload, self.target.id) {
            self.up.sessions(SessionsSnapshot {
                id: self.target.id,
                epoch: self.epoch,
                sessions: Arc::new(list),
            });
        }
    }

    pub(super) fn fire_and_forget(
        &mut self,
        ctx: &mut Context<Self>,
        method: &'static str,
        params: Option<Value>,
    ) {
        let timeout = self.settings().rpc_timeout;
        let rx = self.call(ctx, method, params, timeout);
        ctx.spawn(rx.into_actor(self).map(|_, _, _| ()));
    }

    // ---- calls ------------------------------------------------------------------------------

    /// Sends a request of the link's own (no trace); the returned future resolves with the
    /// response or an error.
    pub(super) fn call(
        &mut self,
        ctx: &mut Context<Self>,
        method: &'static str,
        params: Option<Value>,
        timeout: Duration,
    ) -> impl Future<Output = Result<Value, CallError>> + 'static {
        self.call_traced(ctx, method, params, timeout, None)
    }

    /// Sends a request made for an API request whose trace is `traceparent` (passed on when
    /// the gateway's release takes it).
    pub(super) fn call_traced(
        &mut self,
        ctx: &mut Context<Self>,
        method: &'static str,
        params: Option<Value>,
        timeout: Duration,
        traceparent: Option<String>,
    ) -> impl Future<Output = Result<Value, CallError>> + 'static {
        let metrics = self.ctx.metrics.clone();
        let gateway = self.target.id;
        let outcome = move |res: &Answer| metrics.rpc_call(gateway, method, pending::outcome(res));
        if !self.machine.connected() {
            let res = Err(CallError::NotConnected);
            outcome(&res);
            return futures_util::future::Either::Left(std::future::ready(res));
        }
        let (id, rx) = self.pending.open();
        let traceparent = traceparent
            .filter(|_| crate::trace::accepts_traceparent(self.machine.server_version()));
        let frame = Frame::request(id.clone(), method, params).with_traceparent(traceparent);
        if !self.send_frame(&frame) {
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

    /// The machine's [`Action::Resolve`]: the caller waiting under `id` gets its answer, and
    /// the machine hears that a request was answered (an answer under an id never asked for
    /// counts for nothing).
    pub(super) fn resolve(
        &mut self,
        ctx: &mut Context<Self>,
        id: String,
        ok: bool,
        payload: Option<Value>,
        error: Option<ErrorShape>,
    ) {
        if self.pending.answer(&id, ok, payload, error) {
            self.feed(ctx, Input::Answered);
        } else {
            debug!(gateway = %self.target.name, %id, "response to an unknown or expired request");
        }
    }

    pub(super) fn schedule_sessions_refresh(&mut self, ctx: &mut Context<Self>) {
        self.schedule_sessions_refresh_after(ctx, SESSIONS_REFRESH_DEBOUNCE);
    }

    /// One `sessions.list` after `delay`, unless one is scheduled already (bursts coalesce).
    pub(super) fn schedule_sessions_refresh_after(
        &mut self,
        ctx: &mut Context<Self>,
        delay: Duration,
    ) {
        if self.sessions_refresh.is_some() {
            return;
        }
        self.sessions_refresh = Some(ctx.run_later(delay, |act, ctx| {
            act.sessions_refresh = None;
            act.refresh_sessions(ctx);
        }));
    }

    // ---- probing ---------------------------------------------------------------------------

    pub(super) fn probe(
        &mut self,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, ProbeResult> {
        let s = self.settings();
        let timeout = s.probe_timeout;
        let client = client(self.target.allow_insecure_tls, s.connect_timeout, timeout);
        let url = self.target.health_url();
        if !self.target.may_touch() {
            // Not this instance's gateway any more: nothing measured, nothing claimed.
            self.fenced(ctx);
            return Box::pin(actix::fut::ready(ProbeResult::fenced()));
        }
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
                .map(|(http, rpc), act, ctx| act.on_probe(ctx, http, rpc)),
        )
    }

    pub(super) fn on_probe(
        &mut self,
        ctx: &mut Context<Self>,
        http: HttpHealth,
        rpc: Option<Answer>,
    ) -> ProbeResult {
        let rpc = match rpc {
            None => RpcHealth::NotAsked,
            Some(Ok(health)) => RpcHealth::Answered(health),
            Some(Err(CallError::Timeout(_))) => RpcHealth::TimedOut,
            Some(Err(e)) => RpcHealth::Failed(e.to_string()),
        };
        let actions = self.machine.handle(
            Input::Probed { http, rpc },
            Now::system(),
            self.jitter.sample(),
        );
        let verdict = actions.iter().find_map(|a| match a {
            Action::Probed(verdict) => Some(verdict.clone()),
            _ => None,
        });
        self.carry_out(ctx, actions);
        self.tell_pump();
        let Some(verdict) = verdict else {
            return ProbeResult::fenced();
        };
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

    /// The machine's [`Action::Probed`]: counted, and a health sample for the registry.
    pub(super) fn probed(&mut self, verdict: &ProbeVerdict) {
        self.ctx.metrics.probe(self.target.id, verdict.outcome);
        self.up.health(HealthSample {
            gateway_id: self.target.id,
            ts: unix_now(),
            status: verdict.status,
            latency: verdict.latency_ms.map(|l| l as i64),
            error: verdict.error.clone(),
        });
    }
}
