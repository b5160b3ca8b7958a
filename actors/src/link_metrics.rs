//! The links' counters and the ping histogram, recorded by the gateway actors. Gauges (up,
//! status, breaker) are computed from the registry at scrape time.
//!
//! Every per-gateway series is labelled by the gateway's id (`gateway_id`), never its name:
//! a rename keeps the history, and the name is one label of `gateway_info`. A gateway that is
//! deleted takes its series with it ([`LinkMetrics::forget`]); an actor still finishing a call
//! after that records nothing, because only gateways the registry [`track`](LinkMetrics::track)s
//! are recorded. How much is kept per gateway is [`GatewayDetail`]: at 10,000 gateways the
//! full set is about 300,000 series, which an operator may not want to pay for.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use prometheus::core::{Collector, MetricVec, MetricVecBuilder};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use serde::{Deserialize, Serialize};

use crate::model::GatewayId;

/// How much each gateway costs in series (`metrics.gateway_detail`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum GatewayDetail {
    /// Every per-gateway series: state gauges, counters and the ping histogram.
    #[default]
    Full,
    /// Per gateway only `gateway_up`, `gateway_status` (the current status) and
    /// `gateway_info`; counters and the ping histogram are fleet-wide (no `gateway_id`).
    Basic,
    /// No per-gateway series at all: fleet totals, fleet-wide counters and histogram, and the
    /// acting primary's one series.
    None,
}

/// Read from configuration with a message that names the choices (not serde's enum wording).
impl TryFrom<String> for GatewayDetail {
    type Error = String;
    fn try_from(word: String) -> Result<Self, String> {
        GatewayDetail::ALL
            .into_iter()
            .find(|d| d.as_str() == word)
            .ok_or_else(|| {
                format!(
                    "`{}` is not a gateway detail; one of: full, basic, none",
                    crate::bounded::text(&word, 32)
                )
            })
    }
}

impl GatewayDetail {
    pub const ALL: [GatewayDetail; 3] = [
        GatewayDetail::Full,
        GatewayDetail::Basic,
        GatewayDetail::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GatewayDetail::Full => "full",
            GatewayDetail::Basic => "basic",
            GatewayDetail::None => "none",
        }
    }
}

pub struct LinkMetrics {
    detail: GatewayDetail,
    latency: HistogramVec,
    reconnects: IntCounterVec,
    handshake_failures: IntCounterVec,
    rpc_calls: IntCounterVec,
    probes: IntCounterVec,
    pub primary_changes: prometheus::IntCounter,
    /// Gateways whose series may be written (with [`GatewayDetail::Full`]); held for reading
    /// while a series is written, so a [`forget`](Self::forget) is never undone by a late
    /// write.
    tracked: RwLock<HashSet<GatewayId>>,
}

impl LinkMetrics {
    pub fn new(detail: GatewayDetail) -> Result<Self, prometheus::Error> {
        // With full detail, each series carries the gateway's id first.
        let labels = |rest: &[&'static str]| -> Vec<&'static str> {
            let mut all = Vec::with_capacity(rest.len() + 1);
            if detail == GatewayDetail::Full {
                all.push("gateway_id");
            }
            all.extend_from_slice(rest);
            all
        };
        Ok(LinkMetrics {
            detail,
            latency: HistogramVec::new(
                HistogramOpts::new(
                    "gateway_latency_seconds",
                    "WebSocket ping round trip to the gateways.",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
                &labels(&[]),
            )?,
            reconnects: IntCounterVec::new(
                Opts::new(
                    "gateway_reconnects_total",
                    "Connection attempts after the first.",
                ),
                &labels(&[]),
            )?,
            handshake_failures: IntCounterVec::new(
                Opts::new(
                    "gateway_handshake_failures_total",
                    "Failed connects and handshakes by error code.",
                ),
                &labels(&["code"]),
            )?,
            rpc_calls: IntCounterVec::new(
                Opts::new(
                    "gateway_rpc_calls_total",
                    "RPC calls to gateways by method and outcome.",
                ),
                &labels(&["method", "outcome"]),
            )?,
            probes: IntCounterVec::new(
                Opts::new(
                    "gateway_probes_total",
                    "Health probes by outcome (healthy, unhealthy, timeout).",
                ),
                &labels(&["outcome"]),
            )?,
            primary_changes: prometheus::IntCounter::new(
                "primary_changes_total",
                "Changes of the acting primary (failover and failback).",
            )?,
            tracked: RwLock::new(HashSet::new()),
        })
    }

    pub fn detail(&self) -> GatewayDetail {
        self.detail
    }

    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.latency.clone()))?;
        registry.register(Box::new(self.reconnects.clone()))?;
        registry.register(Box::new(self.handshake_failures.clone()))?;
        registry.register(Box::new(self.rpc_calls.clone()))?;
        registry.register(Box::new(self.probes.clone()))?;
        registry.register(Box::new(self.primary_changes.clone()))
    }

    /// A link for this gateway is starting: its series may be written.
    pub fn track(&self, id: GatewayId) {
        if self.detail == GatewayDetail::Full {
            self.tracked
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id);
        }
    }

    /// The gateway is gone: its series go, and nothing recorded for it later is kept.
    pub fn forget(&self, id: GatewayId) {
        if self.detail != GatewayDetail::Full {
            return;
        }
        let mut tracked = self.tracked.write().unwrap_or_else(|p| p.into_inner());
        tracked.remove(&id);
        let id = id.to_string();
        remove_gateway(&self.latency, &id);
        for vec in [
            &self.reconnects,
            &self.handshake_failures,
            &self.rpc_calls,
            &self.probes,
        ] {
            remove_gateway(vec, &id);
        }
    }

    /// The ping histogram a gateway's round trips go to (its own with full detail, the
    /// fleet's otherwise), for its link to keep: a pong then costs one observation, not a
    /// lookup by label values (an id formatted, hashed, a lock taken). `None` for a gateway
    /// not tracked. A handle kept past [`forget`](Self::forget) writes into a series that is
    /// no longer exported, so a late write is still dropped.
    pub fn latency_series(&self, id: GatewayId) -> Option<prometheus::Histogram> {
        let mut series = None;
        self.record(id, &[], |v| {
            series = Some(self.latency.with_label_values(v));
        });
        series
    }

    pub fn reconnect(&self, id: GatewayId) {
        self.record(id, &[], |v| self.reconnects.with_label_values(v).inc());
    }

    pub fn handshake_failure(&self, id: GatewayId, code: &'static str) {
        self.record(id, &[code], |v| {
            self.handshake_failures.with_label_values(v).inc()
        });
    }

    /// `method` is one of the daemon's own method names (a `'static` string, never a peer's).
    pub fn rpc_call(&self, id: GatewayId, method: &'static str, outcome: &'static str) {
        self.record(id, &[method, outcome], |v| {
            self.rpc_calls.with_label_values(v).inc()
        });
    }

    pub fn probe(&self, id: GatewayId, outcome: &'static str) {
        self.record(id, &[outcome], |v| self.probes.with_label_values(v).inc());
    }

    /// Writes one series with its label values: the gateway's id first with full detail (and
    /// only while the gateway is tracked), the rest as given.
    fn record(&self, id: GatewayId, rest: &[&str], write: impl FnOnce(&[&str])) {
        if self.detail != GatewayDetail::Full {
            return write(rest);
        }
        let tracked = self.tracked.read().unwrap_or_else(|p| p.into_inner());
        if !tracked.contains(&id) {
            return;
        }
        let id = id.to_string();
        let mut values = Vec::with_capacity(rest.len() + 1);
        values.push(id.as_str());
        values.extend_from_slice(rest);
        write(&values);
    }
}

/// Removes every series of `vec` whose `gateway_id` is `id`, whatever its other labels.
fn remove_gateway<T: MetricVecBuilder>(vec: &MetricVec<T>, id: &str) {
    for family in vec.collect() {
        for metric in family.get_metric() {
            let labels = metric.get_label();
            if labels
                .iter()
                .any(|l| l.name() == "gateway_id" && l.value() == id)
            {
                let pairs: HashMap<&str, &str> =
                    labels.iter().map(|l| (l.name(), l.value())).collect();
                // Absent already is as good as removed.
                let _ = vec.remove(&pairs);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(m: &LinkMetrics) -> String {
        let r = Registry::new();
        m.register(&r).unwrap();
        let mut out = Vec::new();
        prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &r.gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    fn record_all(m: &LinkMetrics, id: GatewayId) {
        if let Some(series) = m.latency_series(id) {
            series.observe(0.002);
        }
        m.reconnect(id);
        m.handshake_failure(id, "auth_failed");
        m.rpc_call(id, "sessions.list", "ok");
        m.rpc_call(id, "health", "timeout");
        m.probe(id, "healthy");
    }

    #[test]
    fn full_detail_labels_by_id_and_a_forgotten_gateway_leaves_no_series() {
        let m = LinkMetrics::new(GatewayDetail::Full).unwrap();
        m.track(GatewayId(1));
        m.track(GatewayId(2));
        record_all(&m, GatewayId(1));
        record_all(&m, GatewayId(2));
        let text = series(&m);
        assert!(
            text.contains(
                r#"gateway_rpc_calls_total{gateway_id="1",method="health",outcome="timeout"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"gateway_latency_seconds_count{gateway_id="2"} 1"#));
        m.forget(GatewayId(1));
        let text = series(&m);
        assert!(!text.contains(r#"gateway_id="1""#), "{text}");
        assert!(
            text.contains(
                r#"gateway_handshake_failures_total{code="auth_failed",gateway_id="2"} 1"#
            ),
            "{text}"
        );
    }

    #[test]
    fn a_late_write_for_a_forgotten_gateway_is_dropped() {
        let m = LinkMetrics::new(GatewayDetail::Full).unwrap();
        m.track(GatewayId(7));
        m.forget(GatewayId(7));
        record_all(&m, GatewayId(7));
        assert!(!series(&m).contains(r#"gateway_id="7""#));
        // An untracked gateway (its link never started) writes nothing either.
        record_all(&m, GatewayId(8));
        assert!(!series(&m).contains("gateway_id"));
    }

    #[test]
    fn basic_detail_keeps_fleet_wide_counters_without_gateway_labels() {
        let m = LinkMetrics::new(GatewayDetail::Basic).unwrap();
        record_all(&m, GatewayId(1));
        record_all(&m, GatewayId(2));
        let text = series(&m);
        assert!(!text.contains("gateway_id"), "{text}");
        assert!(
            text.contains(r#"gateway_rpc_calls_total{method="sessions.list",outcome="ok"} 2"#),
            "{text}"
        );
        assert!(text.contains("gateway_latency_seconds_count 2"), "{text}");
    }
}
