//! What the link observed of the gateway's health, beside the socket's phase and the
//! breaker: its own verdict and counts (`health` payloads, list answers), the last probe, the
//! round trip, the last sign of life, and the watchdog's word. [`Health::facts`] hands it to
//! the one status rule (`crate::status::derive`). docs/design.md, *Health semantics*.

use serde_json::Value;

use crate::protocol::counts;
use crate::status::HealthFacts;

#[derive(Debug, Default)]
pub(super) struct Health {
    /// Anything was ever observed (a connect, a probe, a failure).
    pub(super) checked: bool,
    /// A handshake ever succeeded on this link (since the daemon started it).
    pub(super) connected_once: bool,
    pub(super) last_probe_timed_out: bool,
    reports_unhealthy: bool,
    /// What the last probe found wrong beside the socket and the RPC (HTTP `/health`).
    pub(super) probe_error: Option<Box<str>>,
    pub(super) latency_ms: Option<u64>,
    /// Unix seconds.
    pub(super) last_seen: Option<i64>,
    pub(super) sessions_count: Option<i64>,
    pub(super) agents_count: Option<i64>,
    /// The watchdog found a stalled session here it could not recover.
    pub(super) sessions_unrecovered: bool,
}

impl Health {
    /// A `health` payload (an event, a hello snapshot, a probe's RPC answer): the counts it
    /// carries, and the gateway's own verdict.
    pub(super) fn apply(&mut self, health: &Value) {
        let (sessions, agents) = counts::from_health(health);
        self.sessions_count = sessions.or(self.sessions_count);
        self.agents_count = agents.or(self.agents_count);
        self.reports_unhealthy = counts::health_not_ok(health);
    }

    /// A handshake went through at `unix` (seconds).
    pub(super) fn connected(&mut self, unix: i64) {
        self.checked = true;
        self.connected_once = true;
        self.last_probe_timed_out = false;
        self.last_seen = Some(unix);
    }

    /// The gateway's own verdict is that it is healthy (or it gave none).
    pub(super) fn reports_ok(&self) -> bool {
        !self.reports_unhealthy
    }

    /// The facts the status rule weighs, with the link's own: `connected`, `halted`, and the
    /// breaker's (`tripped`, failures counted while not connected).
    pub(super) fn facts(
        &self,
        connected: bool,
        halted: bool,
        breaker: &crate::breaker::Breaker,
        degraded_latency_ms: u64,
    ) -> HealthFacts {
        HealthFacts {
            checked: self.checked,
            connected,
            never_connected: !self.connected_once,
            halted,
            breaker_tripped: breaker.is_tripped(),
            last_probe_timed_out: self.last_probe_timed_out,
            // A link up now is judged by what it shows now; the failures before its
            // handshake stay counted by the breaker until the link lasts.
            consecutive_failures: if connected {
                0
            } else {
                breaker.consecutive_failures()
            },
            latency_ms: self.latency_ms,
            degraded_latency_ms,
            reports_unhealthy: self.reports_unhealthy,
            secondary_failing: self.probe_error.is_some(),
            sessions_unrecovered: self.sessions_unrecovered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::Breaker;
    use crate::model::GatewayStatus;
    use crate::protocol::captures::{at, capture};
    use crate::status::derive;
    use std::time::Duration;

    fn status(h: &Health, connected: bool) -> GatewayStatus {
        let breaker = Breaker::new(3, Duration::from_secs(60));
        derive(&h.facts(connected, false, &breaker, 500))
    }

    #[test]
    fn the_real_hello_s_health_snapshot_gives_the_counts_and_a_healthy_verdict() {
        let hello = at(&capture("ok_v3.json"), &["connectResponse", "payload"]);
        let mut h = Health::default();
        h.apply(&hello["snapshot"]["health"]);
        h.connected(1);
        assert!(h.reports_ok());
        assert!(h.agents_count.is_some());
        assert_eq!(status(&h, true), GatewayStatus::Online);
    }

    #[test]
    fn a_health_payload_without_counts_keeps_the_last_ones() {
        let mut h = Health::default();
        h.apply(&serde_json::json!({"ok": true, "sessions": {"count": 4}}));
        h.apply(&serde_json::json!({"ok": true}));
        assert_eq!(h.sessions_count, Some(4));
    }

    #[test]
    fn the_gateway_s_own_not_ok_degrades_a_connected_link() {
        let mut h = Health::default();
        h.connected(1);
        h.apply(&serde_json::json!({"ok": false}));
        assert!(!h.reports_ok());
        assert_eq!(status(&h, true), GatewayStatus::Degraded);
        h.apply(&serde_json::json!({"ok": true}));
        assert_eq!(status(&h, true), GatewayStatus::Online);
    }

    #[test]
    fn an_unchecked_link_is_unknown_and_a_link_never_connected_is_not_healthy() {
        let h = Health::default();
        assert_eq!(status(&h, false), GatewayStatus::Unknown);
        let h = Health {
            checked: true,
            ..Health::default()
        };
        assert_ne!(status(&h, false), GatewayStatus::Online);
    }
}
