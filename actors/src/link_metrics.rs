//! The links' counters and the ping histogram, recorded by the gateway actors. Gauges (up,
//! status, breaker) are computed from the registry at scrape time.
//!
//! Every per-gateway series is labelled by the gateway's id (`gateway_id`), never its name:
//! a rename keeps the history, and the name is one label of `gateway_info`. A gateway that is
//! deleted takes its series with it ([`LinkMetrics::forget`]); an actor still finishing a call
//! after that records nothing, because only gateways the registry [`track`](LinkMetrics::track)s
//! are recorded. How much is kept per gateway is [`GatewayDetail`]: at 10,000 gateways the
//! full set is about 300,000 series, which an operator may not want to pay for.

mod gateway_counters;
mod latency;

use std::sync::Arc;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use serde::{Deserialize, Serialize};

use crate::model::GatewayId;
use gateway_counters::{Family, GatewayCounters};
use latency::{GatewayLatency, Latency};

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
    /// The fleet's ping histogram (`basic`, `none`).
    latency: HistogramVec,
    /// Each gateway's (`full`): text at each scrape ([`LinkMetrics::write`]).
    gateway_latency: GatewayLatency,
    counters: Counters,
    pub primary_changes: prometheus::IntCounter,
}

/// The links' counters: per gateway with full detail, fleet-wide otherwise.
enum Counters {
    /// Also the gateways whose series may be written: a [`forget`](LinkMetrics::forget) is
    /// never undone by a late write.
    PerGateway(GatewayCounters),
    /// One vector a family, in [`Family::ALL`]'s order.
    Fleet([IntCounterVec; 4]),
}

impl Counters {
    fn fleet() -> Result<Counters, prometheus::Error> {
        let vec = |family: Family| {
            let (name, help, rest) = family.describe();
            IntCounterVec::new(Opts::new(name, help), rest)
        };
        let [a, b, c, d] = Family::ALL;
        Ok(Counters::Fleet([vec(a)?, vec(b)?, vec(c)?, vec(d)?]))
    }

    fn inc(&self, id: GatewayId, family: Family, rest: &[&'static str]) {
        match self {
            Counters::PerGateway(table) => table.inc(id, family, rest),
            Counters::Fleet(vecs) => vecs[family.index()].with_label_values(rest).inc(),
        }
    }
}

impl LinkMetrics {
    pub fn new(detail: GatewayDetail) -> Result<Self, prometheus::Error> {
        Ok(LinkMetrics {
            detail,
            latency: HistogramVec::new(
                HistogramOpts::new(latency::NAME, latency::HELP).buckets(latency::BUCKETS.to_vec()),
                &[],
            )?,
            gateway_latency: GatewayLatency::default(),
            counters: match detail {
                GatewayDetail::Full => Counters::PerGateway(GatewayCounters::new()?),
                GatewayDetail::Basic | GatewayDetail::None => Counters::fleet()?,
            },
            primary_changes: prometheus::IntCounter::new(
                "primary_changes_total",
                "Changes of the acting primary (failover and failback).",
            )?,
        })
    }

    pub fn detail(&self) -> GatewayDetail {
        self.detail
    }

    /// The series kept in prometheus' own types; each gateway's ping histogram is
    /// [`write`](Self::write)n as text instead.
    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        if self.detail != GatewayDetail::Full {
            registry.register(Box::new(self.latency.clone()))?;
        }
        match &self.counters {
            Counters::PerGateway(table) => registry.register(Box::new(table.clone()))?,
            Counters::Fleet(vecs) => {
                for vec in vecs {
                    registry.register(Box::new(vec.clone()))?;
                }
            }
        }
        registry.register(Box::new(self.primary_changes.clone()))
    }

    /// A link for this gateway is starting: its series may be written.
    pub fn track(&self, id: GatewayId) {
        if let Counters::PerGateway(table) = &self.counters {
            table.track(id);
        }
    }

    /// The gateway is gone: its series go, and nothing recorded for it later is kept.
    pub fn forget(&self, id: GatewayId) {
        if let Counters::PerGateway(table) = &self.counters {
            table.forget(id);
            self.gateway_latency.forget(id);
        }
    }

    /// Each gateway's ping histogram (`full` detail) as exposition text, `prefix` before its
    /// name: appended to a scrape's text.
    pub fn write(&self, out: &mut String, prefix: &str) {
        if self.detail == GatewayDetail::Full {
            self.gateway_latency.write(out, prefix);
        }
    }

    /// The ping histogram a gateway's round trips go to (its own with full detail, the
    /// fleet's otherwise), for its link to keep: a pong then costs one observation, not a
    /// lookup by label values (an id formatted, hashed, a lock taken). `None` for a gateway
    /// not tracked. A handle kept past [`forget`](Self::forget) writes into a series that is
    /// no longer exported, so a late write is still dropped.
    pub fn latency_series(&self, id: GatewayId) -> Option<LatencySeries> {
        match &self.counters {
            // Made while the table holds the gateway: a forget then removes it after.
            Counters::PerGateway(table) => table.while_tracked(id, || {
                LatencySeries::Gateway(self.gateway_latency.series(id))
            }),
            Counters::Fleet { .. } => Some(LatencySeries::Fleet(
                self.latency.with_label_values(&[] as &[&str]),
            )),
        }
    }

    pub fn reconnect(&self, id: GatewayId) {
        self.counters.inc(id, Family::Reconnects, &[]);
    }

    pub fn handshake_failure(&self, id: GatewayId, code: &'static str) {
        self.counters.inc(id, Family::HandshakeFailures, &[code]);
    }

    /// `method` is one of the daemon's own method names (a `'static` string, never a peer's).
    pub fn rpc_call(&self, id: GatewayId, method: &'static str, outcome: &'static str) {
        self.counters.inc(id, Family::RpcCalls, &[method, outcome]);
    }

    pub fn probe(&self, id: GatewayId, outcome: &'static str) {
        self.counters.inc(id, Family::Probes, &[outcome]);
    }
}

/// Where a link's ping round trips go: its gateway's histogram, or the fleet's.
#[derive(Debug, Clone)]
pub enum LatencySeries {
    Gateway(Arc<Latency>),
    Fleet(prometheus::Histogram),
}

impl LatencySeries {
    pub fn observe(&self, seconds: f64) {
        match self {
            LatencySeries::Gateway(l) => l.observe(seconds),
            LatencySeries::Fleet(h) => h.observe(seconds),
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
        let mut text = String::from_utf8(out).unwrap();
        m.write(&mut text, "");
        text
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
    fn full_detail_counts_each_gateway_s_series_apart_and_adds_up() {
        let m = LinkMetrics::new(GatewayDetail::Full).unwrap();
        m.track(GatewayId(3));
        m.track(GatewayId(12));
        for _ in 0..3 {
            m.rpc_call(GatewayId(3), "cron.list", "ok");
        }
        m.rpc_call(GatewayId(3), "cron.list", "error");
        m.rpc_call(GatewayId(12), "cron.list", "ok");
        m.reconnect(GatewayId(12));
        m.reconnect(GatewayId(12));
        let text = series(&m);
        for line in [
            r#"gateway_rpc_calls_total{gateway_id="3",method="cron.list",outcome="ok"} 3"#,
            r#"gateway_rpc_calls_total{gateway_id="3",method="cron.list",outcome="error"} 1"#,
            r#"gateway_rpc_calls_total{gateway_id="12",method="cron.list",outcome="ok"} 1"#,
            r#"gateway_reconnects_total{gateway_id="12"} 2"#,
            "# TYPE gateway_rpc_calls_total counter",
            "# HELP gateway_reconnects_total Connection attempts after the first.",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(
            !text.contains(r#"gateway_reconnects_total{gateway_id="3"}"#),
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
