//! The probe's verdict: what HTTP `/health` and the `health` RPC found, weighed with what
//! the link knows (connected, the gateway's own verdict), fed to the breaker. The socket and
//! the `health` RPC are the truth: while they answer, a failing HTTP `/health` (2026.3.31
//! answers every path with 500) degrades the gateway and is shown as `probe_error`, but is
//! not a failure the breaker counts (docs/design.md, *Health semantics*).

use super::{Action, HttpHealth, LinkMachine, Note, Now, ProbeVerdict, RpcHealth};

impl LinkMachine {
    /// A probe's outcome: HTTP `/health` and, when connected, the `health` RPC. The verdict
    /// goes out as [`Action::Probed`], after what it changed is reported.
    pub(super) fn probed(&mut self, http: HttpHealth, rpc: RpcHealth, now: Now) -> Vec<Action> {
        let connected = self.connected();
        let mut error = None;
        let mut timed_out = false;
        let mut latency = None;
        let rpc_answered = matches!(rpc, RpcHealth::Answered(_));
        self.health.probe_error = None;
        match http {
            HttpHealth::Answered(rtt) => latency = Some(rtt.as_millis() as u64),
            HttpHealth::NoEndpoint => {}
            // A secondary signal while the socket and the RPC answer.
            HttpHealth::Failed { message, .. } if connected && rpc_answered => {
                self.health.probe_error = Some(message.into_boxed_str());
            }
            HttpHealth::Failed {
                timed_out: t,
                message,
            } => {
                timed_out |= t;
                error = Some(message);
            }
        }
        match rpc {
            RpcHealth::Answered(health) => self.health.apply(&health),
            RpcHealth::TimedOut => {
                timed_out = true;
                error.get_or_insert_with(|| "health RPC timed out".into());
            }
            RpcHealth::Failed(e) => {
                error.get_or_insert_with(|| format!("health RPC failed: {e}"));
            }
            RpcHealth::NotAsked if !connected => {
                error.get_or_insert_with(|| {
                    self.last_error
                        .as_ref()
                        .map(|f| format!("not connected: {}", f.message))
                        .unwrap_or_else(|| "not connected".into())
                });
            }
            RpcHealth::NotAsked => {}
        }
        let healthy = error.is_none() && connected && self.health.reports_ok();
        self.health.checked = true;
        self.health.last_probe_timed_out = timed_out;
        let mut breaker_opened = false;
        let outcome = if healthy {
            self.retry.breaker.record_success();
            self.health.last_seen = Some(now.unix());
            "healthy"
        } else {
            breaker_opened =
                self.retry.breaker.record_failure(now.at) == crate::breaker::Opening::Opened;
            if timed_out { "timeout" } else { "unhealthy" }
        };
        let verdict = ProbeVerdict {
            healthy,
            outcome,
            status: self.status(),
            latency_ms: latency.or(self.health.latency_ms),
            error: error.or_else(|| self.health.probe_error.as_deref().map(str::to_owned)),
            connected,
            uptime_ms: self.server.uptime_ms(now.at),
        };
        let mut actions = Vec::new();
        if breaker_opened {
            actions.push(Action::Log(Note::BreakerOpenedByProbes));
        }
        actions.push(Action::Report);
        actions.push(Action::Probed(verdict));
        actions
    }
}
