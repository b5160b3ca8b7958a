//! Prometheus metrics of the daemon itself (HTTP, gateways by status, rate limiting), the
//! per-gateway gauges computed from the registry at each scrape, and the registration of the
//! links' and the fleet's counters. Per-gateway series are labelled `gateway_id` (a rename
//! keeps its history; the name is a label of `gateway_info`), and how many there are is
//! `metrics.gateway_detail` ([`GatewayDetail`]).

use std::collections::BTreeMap;

use prometheus::{Encoder, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

pub mod http;

use gateway_supervisor_actors::link_metrics::{GatewayDetail, LinkMetrics};
use gateway_supervisor_actors::model::{BreakerState, GatewayStatus, GatewayView, LinkPhase};

pub struct Metrics {
    registry: Registry,
    /// `process_*` (RSS, CPU, open and max fds, start time), unprefixed as everyone names them.
    process: Registry,
    /// `http_requests_total` and `http_request_duration_seconds`, per worker
    /// ([`http::HttpSeries`]).
    pub http: http::HttpSeries,
    pub gateways: IntGaugeVec,
    pub rate_limited: IntCounterVec,
    pub build_info: IntGaugeVec,
    pub up_since: IntGauge,
    pub links: std::sync::Arc<LinkMetrics>,
    pub fleet: crate::fleet::FleetCounters,
    /// `alerts_total{kind, outcome}`.
    pub alerts: IntCounterVec,
    /// `sessions_stalled`, `watchdog_steps_total{step, outcome}`.
    pub watchdog: crate::fleet::watchdog::WatchdogMetrics,
    /// `usage_tokens_total{gateway_id, kind}`, `usage_cost_usd_total{gateway_id}`.
    pub usage: crate::fleet::usage::UsageMetrics,
    /// `approvals_pending{kind}`, `approvals_resolved_total{kind, decision, by}`,
    /// `approvals_oldest_pending_age_seconds`.
    pub approvals: crate::approvals::metrics::ApprovalMetrics,
    /// `audit_sink_rows_total{outcome}`, `audit_sink_pending_rows`, `audit_pruned_rows_total`.
    pub audit: crate::audit::AuditMetrics,
    /// `gateways_config_drifted`, `gateways_config{state}`.
    pub drift: crate::fleet_config::metrics::DriftMetrics,
    /// `cron_jobs`, `cron_missed_fires_total`, … (the fleet's cron).
    pub cron: crate::cron::metrics::CronMetrics,
    gateway_up: IntGaugeVec,
    gateway_status: IntGaugeVec,
    gateway_breaker: IntGaugeVec,
    gateway_failures: IntGaugeVec,
    gateways_connected: IntGauge,
    gateways_suspended: IntGauge,
    gateways_cordoned: IntGauge,
    gateways_in_maintenance: IntGauge,
    /// Gateways no instance has room for: set here from the views when the daemon is alone
    /// (each unplaced one says so), by the cluster's runner in a cluster.
    pub gateways_unplaced: IntGauge,
    /// One instance of a cluster: the runner sets `gateways_unplaced`.
    clustered: std::sync::atomic::AtomicBool,
    /// Held through a scrape ([`Metrics::render`]).
    scrape: std::sync::Mutex<()>,
    acting_primary: IntGaugeVec,
    gateway_info: IntGaugeVec,
    event_subscribers: IntGauge,
    event_subscribers_dropped: prometheus::IntCounter,
    events_lost: prometheus::IntCounter,
}

impl Metrics {
    pub fn new(detail: GatewayDetail) -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("gateway_supervisor".into()), None)?;
        let http = http::HttpSeries::new()?;
        let gateways = IntGaugeVec::new(
            Opts::new("gateways", "Registered gateways by status."),
            &["status"],
        )?;
        let rate_limited = IntCounterVec::new(
            Opts::new("rate_limited_total", "Requests refused by a rate limit."),
            &["limit"],
        )?;
        let build_info = IntGaugeVec::new(
            Opts::new("build_info", "Version of the running daemon."),
            &["version"],
        )?;
        let up_since = IntGauge::new("start_time_seconds", "Unix time the daemon started.")?;
        let gateway_up = IntGaugeVec::new(
            Opts::new("gateway_up", "1 when the gateway's socket is connected."),
            &["gateway_id"],
        )?;
        let gateway_status = IntGaugeVec::new(
            Opts::new(
                "gateway_status",
                "1 for the gateway's current status (a state set).",
            ),
            &["gateway_id", "status"],
        )?;
        let gateway_breaker = IntGaugeVec::new(
            Opts::new(
                "gateway_breaker_state",
                "1 for the gateway's circuit-breaker state (a state set).",
            ),
            &["gateway_id", "state"],
        )?;
        let gateway_failures = IntGaugeVec::new(
            Opts::new(
                "gateway_consecutive_failures",
                "Consecutive failures counted by the breaker.",
            ),
            &["gateway_id"],
        )?;
        let gateways_connected =
            IntGauge::new("gateways_connected", "Gateways whose socket is connected.")?;
        let links = std::sync::Arc::new(LinkMetrics::new(detail)?);
        links.register(&registry)?;
        let fleet = crate::fleet::FleetCounters::new()?;
        fleet.register(&registry)?;
        let alerts = crate::alerts::counter()?;
        registry.register(Box::new(alerts.clone()))?;
        let watchdog = crate::fleet::watchdog::WatchdogMetrics::new()?;
        watchdog.register(&registry)?;
        let usage = crate::fleet::usage::UsageMetrics::new()?;
        usage.register(&registry)?;
        let approvals = crate::approvals::metrics::ApprovalMetrics::new()?;
        approvals.register(&registry)?;
        let audit = crate::audit::AuditMetrics::new()?;
        audit.register(&registry)?;
        let drift = crate::fleet_config::metrics::DriftMetrics::new()?;
        drift.register(&registry)?;
        let cron = crate::cron::metrics::CronMetrics::new()?;
        cron.register(&registry)?;
        for m in [
            &gateway_up,
            &gateway_status,
            &gateway_breaker,
            &gateway_failures,
        ] {
            registry.register(Box::new(m.clone()))?;
        }
        registry.register(Box::new(gateways_connected.clone()))?;
        let gateways_suspended = IntGauge::new(
            "gateways_suspended",
            "Gateways suspended through this daemon (they take no spawns and do not act as primary).",
        )?;
        registry.register(Box::new(gateways_suspended.clone()))?;
        let gateways_cordoned = IntGauge::new(
            "gateways_cordoned",
            "Gateways cordoned by an operator (their work goes on; they take no new spawns and do not act as primary).",
        )?;
        registry.register(Box::new(gateways_cordoned.clone()))?;
        let gateways_in_maintenance = IntGauge::new(
            "gateways_in_maintenance",
            "Gateways in a maintenance window (held back like a cordon; their alerts are not sent).",
        )?;
        registry.register(Box::new(gateways_in_maintenance.clone()))?;
        let gateways_unplaced = IntGauge::new(
            "gateways_unplaced",
            "Gateways no instance has room for (each at its capacity: the open-file limit or cluster.max_gateways): linked by none.",
        )?;
        registry.register(Box::new(gateways_unplaced.clone()))?;
        let acting_primary = IntGaugeVec::new(
            Opts::new(
                "acting_primary",
                "1 for the gateway acting as primary (the designated one, or its stand-in); no series when none is.",
            ),
            &["gateway_id"],
        )?;
        registry.register(Box::new(acting_primary.clone()))?;
        let gateway_info = IntGaugeVec::new(
            Opts::new(
                "gateway_info",
                "1 per gateway with its name, its labels (`region=eu,tier=canary`: match with `labels=~\".*region=eu.*\"`), and the release, build and protocol its last hello reported.",
            ),
            &[
                "gateway_id",
                "name",
                "labels",
                "version",
                "build",
                "protocol",
            ],
        )?;
        registry.register(Box::new(gateway_info.clone()))?;
        let event_subscribers = IntGauge::new(
            "event_subscribers",
            "Open event streams and sockets (/api/events, /api/ws).",
        )?;
        registry.register(Box::new(event_subscribers.clone()))?;
        // The bus counts; this counter catches up with it at each scrape.
        let event_subscribers_dropped = prometheus::IntCounter::new(
            "event_subscribers_dropped_total",
            "Event subscribers dropped for falling too far behind.",
        )?;
        registry.register(Box::new(event_subscribers_dropped.clone()))?;
        let events_lost = prometheus::IntCounter::new(
            "events_lost_total",
            "Events a cluster instance could not queue for the database (its outbox was full).",
        )?;
        registry.register(Box::new(events_lost.clone()))?;
        let process = Registry::new();
        process.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        registry.register(Box::new(http.clone()))?;
        registry.register(Box::new(gateways.clone()))?;
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(build_info.clone()))?;
        registry.register(Box::new(up_since.clone()))?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        up_since.set(crate::db::unix_now());
        Ok(Metrics {
            registry,
            process,
            http,
            gateways,
            rate_limited,
            build_info,
            up_since,
            links,
            fleet,
            alerts,
            watchdog,
            usage,
            approvals,
            audit,
            drift,
            cron,
            gateway_up,
            gateway_status,
            gateway_breaker,
            gateway_failures,
            gateways_connected,
            gateways_suspended,
            gateways_cordoned,
            gateways_in_maintenance,
            gateways_unplaced,
            clustered: std::sync::atomic::AtomicBool::new(false),
            scrape: std::sync::Mutex::new(()),
            acting_primary,
            gateway_info,
            event_subscribers,
            event_subscribers_dropped,
            events_lost,
        })
    }

    /// The gauges computed at each scrape, one or more per gateway: filled from the views for
    /// one scrape and emptied once it is gathered.
    fn per_scrape(&self) -> [&IntGaugeVec; 6] {
        [
            &self.gateway_up,
            &self.gateway_status,
            &self.gateway_breaker,
            &self.gateway_failures,
            &self.acting_primary,
            &self.gateway_info,
        ]
    }

    /// Per-gateway gauges from the registry's snapshot (so deleted gateways disappear).
    fn set_gateways(&self, views: &[std::sync::Arc<GatewayView>]) {
        let detail = self.links.detail();
        let (mut connected, mut suspended, mut cordoned, mut in_maintenance) = (0, 0, 0, 0);
        let mut unplaced = 0;
        // Every status is exported, zero included, so a status that empties reads 0.
        let mut counts: BTreeMap<GatewayStatus, i64> =
            GatewayStatus::ALL.into_iter().map(|s| (s, 0)).collect();
        for v in views {
            *counts.entry(v.record.status).or_default() += 1;
            let id = v.record.id.to_string();
            let id = id.as_str();
            let up = v.connection.state == Some(LinkPhase::Connected);
            connected += i64::from(up);
            suspended += i64::from(v.record.suspension_id.is_some());
            cordoned += i64::from(v.record.cordoned);
            in_maintenance += i64::from(v.record.maintenance.is_some());
            unplaced += i64::from(v.unplaced());
            if v.acting_primary {
                self.acting_primary.with_label_values(&[id]).set(1);
            }
            if detail == GatewayDetail::None {
                continue;
            }
            self.gateway_up.with_label_values(&[id]).set(i64::from(up));
            // The version and build are the gateway's own strings: already escaped and bounded
            // by the link; the name was validated when it was registered. Not the bootId: a
            // new series at every restart. The labels were checked when they were set (their
            // alphabet has no quote, backslash or newline).
            let protocol = v.connection.protocol.map(|p| p.to_string());
            let labels = v.record.labels.to_string();
            self.gateway_info
                .with_label_values(&[
                    id,
                    v.record.name.as_str(),
                    labels.as_str(),
                    v.connection.server_version.as_deref().unwrap_or(""),
                    v.connection.build_id.as_deref().unwrap_or(""),
                    protocol.as_deref().unwrap_or(""),
                ])
                .set(1);
            if detail == GatewayDetail::Basic {
                self.gateway_status
                    .with_label_values(&[id, v.record.status.as_str()])
                    .set(1);
                continue;
            }
            for status in GatewayStatus::ALL {
                self.gateway_status
                    .with_label_values(&[id, status.as_str()])
                    .set(i64::from(status == v.record.status));
            }
            for (state, label) in [
                (BreakerState::Closed, "closed"),
                (BreakerState::Open, "open"),
                (BreakerState::HalfOpen, "half_open"),
            ] {
                self.gateway_breaker
                    .with_label_values(&[id, label])
                    .set(i64::from(v.breaker.state == state));
            }
            self.gateway_failures
                .with_label_values(&[id])
                .set(i64::from(v.breaker.consecutive_failures));
        }
        self.gateways_connected.set(connected);
        self.gateways_suspended.set(suspended);
        self.gateways_cordoned.set(cordoned);
        self.gateways_in_maintenance.set(in_maintenance);
        if !self.clustered.load(std::sync::atomic::Ordering::Relaxed) {
            self.gateways_unplaced.set(unplaced);
        }
        for (status, n) in counts {
            self.gateways.with_label_values(&[status.as_str()]).set(n);
        }
    }

    /// The `cluster_*` metrics, when the daemon is one instance of a cluster.
    pub fn register_cluster(
        &self,
        cluster: &crate::cluster::ClusterMetrics,
    ) -> Result<(), prometheus::Error> {
        self.clustered
            .store(true, std::sync::atomic::Ordering::Relaxed);
        cluster.register(&self.registry)
    }

    /// The event bus as of this scrape.
    pub fn set_events(&self, events: &gateway_supervisor_actors::events::EventBus) {
        self.event_subscribers.set(events.subscribers() as i64);
        let behind = events
            .dropped()
            .saturating_sub(self.event_subscribers_dropped.get());
        self.event_subscribers_dropped.inc_by(behind);
        let lost = events
            .outbox_dropped()
            .saturating_sub(self.events_lost.get());
        self.events_lost.inc_by(lost);
    }

    /// One scrape: the per-gateway gauges from `views` (the registry's snapshot), and every
    /// series as text. One scrape at a time: another's reset cannot empty this one's gauges.
    ///
    /// The per-gateway gauges live only for the scrape. Left filled until the next, they kept
    /// 11 series a gateway at full detail — each a prometheus value with its own copy of the
    /// family's description and label pairs, ~4.5 KB a gateway (heaptrack, 10,000 gateways)
    /// held between scrapes by every daemon Prometheus scrapes.
    pub fn render(
        &self,
        views: &[std::sync::Arc<GatewayView>],
    ) -> Result<String, prometheus::Error> {
        let _one = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        self.set_gateways(views);
        let mut families = self.registry.gather();
        for g in self.per_scrape() {
            g.reset();
        }
        families.extend(self.process.gather());
        let mut out = Vec::new();
        TextEncoder::new().encode(&families, &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use gateway_supervisor_actors::model::{
        BreakerInfo, ConnectionInfo, GatewayId, GatewayRecord, LiveReadings,
    };
    use prometheus::core::Collector;

    use super::*;

    fn view(id: i64) -> Arc<GatewayView> {
        Arc::new(GatewayView {
            record: GatewayRecord::new(GatewayId(id), format!("gw{id}"), "127.0.0.1".into(), 1),
            acting_primary: id == 1,
            connection: ConnectionInfo::default(),
            breaker: BreakerInfo::default(),
            live: LiveReadings::default(),
            vouched: Default::default(),
        })
    }

    #[test]
    fn a_scrape_shows_every_gateway_and_keeps_none_of_its_series_after() {
        let metrics = Metrics::new(GatewayDetail::Full).unwrap();
        let views: Vec<_> = (1..=3).map(view).collect();
        let text = metrics.render(&views).unwrap();
        for id in 1..=3 {
            assert!(
                text.contains(&format!(
                    "gateway_supervisor_gateway_up{{gateway_id=\"{id}\"}} 0"
                )),
                "{text}"
            );
            assert!(
                text.contains(&format!("gateway_id=\"{id}\",labels=\"\",name=\"gw{id}\"")),
                "{text}"
            );
        }
        assert!(text.contains("gateway_supervisor_acting_primary{gateway_id=\"1\"} 1"));
        let kept: usize = metrics
            .per_scrape()
            .iter()
            .flat_map(|g| g.collect())
            .map(|f| f.get_metric().len())
            .sum();
        assert_eq!(kept, 0, "series kept between scrapes");
        // The next scrape sees the fleet as it is then: a deleted gateway is gone.
        let text = metrics.render(&views[..2]).unwrap();
        assert!(!text.contains("gateway_id=\"3\""), "{text}");
        assert!(text.contains("gateway_supervisor_gateway_up{gateway_id=\"2\"} 0"));
    }
}
