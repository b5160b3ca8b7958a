//! Per-gateway counters and the latency histogram, recorded by the gateway actors (label =
//! gateway name). Gauges (up, status, breaker) are computed from the registry at scrape time.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

pub struct LinkMetrics {
    pub latency: HistogramVec,
    pub reconnects: IntCounterVec,
    pub handshake_failures: IntCounterVec,
    pub rpc_calls: IntCounterVec,
    pub probes: IntCounterVec,
    pub primary_changes: prometheus::IntCounter,
}

impl LinkMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        Ok(LinkMetrics {
            latency: HistogramVec::new(
                HistogramOpts::new(
                    "gateway_latency_seconds",
                    "WebSocket ping round trip to each gateway.",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
                &["gateway"],
            )?,
            reconnects: IntCounterVec::new(
                Opts::new(
                    "gateway_reconnects_total",
                    "Connection attempts after the first, per gateway.",
                ),
                &["gateway"],
            )?,
            handshake_failures: IntCounterVec::new(
                Opts::new(
                    "gateway_handshake_failures_total",
                    "Failed connects and handshakes by error code.",
                ),
                &["gateway", "code"],
            )?,
            rpc_calls: IntCounterVec::new(
                Opts::new(
                    "gateway_rpc_calls_total",
                    "RPC calls to gateways by method and outcome.",
                ),
                &["gateway", "method", "outcome"],
            )?,
            probes: IntCounterVec::new(
                Opts::new(
                    "gateway_probes_total",
                    "Health probes by outcome (healthy, unhealthy, timeout).",
                ),
                &["gateway", "outcome"],
            )?,
            primary_changes: prometheus::IntCounter::new(
                "primary_changes_total",
                "Changes of the acting primary (failover and failback).",
            )?,
        })
    }

    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.latency.clone()))?;
        registry.register(Box::new(self.reconnects.clone()))?;
        registry.register(Box::new(self.handshake_failures.clone()))?;
        registry.register(Box::new(self.rpc_calls.clone()))?;
        registry.register(Box::new(self.probes.clone()))?;
        registry.register(Box::new(self.primary_changes.clone()))
    }
}
