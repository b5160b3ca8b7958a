//! Prometheus metrics of the daemon itself (HTTP, gateways by status, rate limiting), the
//! per-gateway gauges computed from the registry at each scrape, and the registration of the
//! links' and the fleet's counters. Per-gateway series are labelled `gateway_id` (a rename
//! keeps its history; the name is a label of `gateway_info`), and how many there are is
//! `metrics.gateway_detail` ([`GatewayDetail`]).

use std::collections::BTreeMap;

use prometheus::{Encoder, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

pub mod http;
mod per_gateway;

use gateway_supervisor_actors::link_metrics::{GatewayDetail, LinkMetrics};
use gateway_supervisor_actors::model::{GatewayStatus, GatewayView, LinkPhase};
use gateway_supervisor_actors::registry::peer_table::PeersHeld;

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
            gateways_connected,
            gateways_suspended,
            gateways_cordoned,
            gateways_in_maintenance,
            gateways_unplaced,
            clustered: std::sync::atomic::AtomicBool::new(false),
            scrape: std::sync::Mutex::new(()),
            event_subscribers,
            event_subscribers_dropped,
            events_lost,
        })
    }

    /// The fleet's gauges from the registry's snapshot (the per-gateway ones are written at
    /// the scrape: [`per_gateway`]).
    /// The fleet's gauges from the gateways with a view here and, in a cluster, the peers
    /// (`peers`: what this instance keeps of the gateways others link; none is connected here).
    fn set_fleet(&self, views: &[std::sync::Arc<GatewayView>], peers: &PeersHeld) {
        let (mut connected, mut suspended, mut cordoned, mut in_maintenance) = (0, 0, 0, 0);
        let mut unplaced = 0;
        // Every status is exported, zero included, so a status that empties reads 0.
        let mut counts: BTreeMap<GatewayStatus, i64> =
            GatewayStatus::ALL.into_iter().map(|s| (s, 0)).collect();
        for v in views {
            *counts.entry(v.record.status).or_default() += 1;
            let up = v.connection.state == Some(LinkPhase::Connected);
            connected += i64::from(up);
            suspended += i64::from(v.record.suspension_id.is_some());
            cordoned += i64::from(v.record.cordoned);
            in_maintenance += i64::from(v.record.maintenance.is_some());
            unplaced += i64::from(v.unplaced());
        }
        for p in peers.iter() {
            *counts.entry(p.status).or_default() += 1;
            suspended += i64::from(p.suspended);
            cordoned += i64::from(p.cordoned);
            in_maintenance += i64::from(p.in_maintenance);
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

    /// One scrape: every registered series as text, then the per-gateway gauges written from
    /// `views` (the registry's snapshot, so a deleted gateway is gone from the next scrape).
    /// One scrape at a time: the fleet's gauges are set for the scrape that gathers them.
    ///
    /// The per-gateway gauges are text only ([`per_gateway`]): as prometheus gauges, filled
    /// and gathered at each scrape, they took ~5 KB a gateway at full detail for the instant of
    /// the scrape (heaptrack), and left filled, ~4.5 KB a gateway held between scrapes.
    pub fn render(
        &self,
        views: &[std::sync::Arc<GatewayView>],
        peers: &PeersHeld,
    ) -> Result<String, prometheus::Error> {
        let _one = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        self.set_fleet(views, peers);
        let mut families = self.registry.gather();
        families.extend(self.process.gather());
        let mut out = Vec::new();
        TextEncoder::new().encode(&families, &mut out)?;
        drop(families);
        let mut text = String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))?;
        per_gateway::write(&mut text, views, peers, self.links.detail());
        self.links.write(&mut text, "gateway_supervisor_");
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use gateway_supervisor_actors::model::{
        BreakerInfo, ConnectionInfo, GatewayId, GatewayRecord, LiveReadings,
    };

    use super::*;

    fn view(id: i64) -> Arc<GatewayView> {
        Arc::new(GatewayView {
            record: GatewayRecord::new(GatewayId(id), format!("gw{id}"), "127.0.0.1".into(), 1),
            acting_primary: id == 1,
            connection: ConnectionInfo::none(),
            breaker: BreakerInfo::default(),
            live: LiveReadings::default(),
            vouched: Default::default(),
        })
    }

    #[test]
    fn a_scrape_shows_every_gateway_as_the_next_scrape_finds_the_fleet() {
        let metrics = Metrics::new(GatewayDetail::Full).unwrap();
        let views: Vec<_> = (1..=3).map(view).collect();
        let text = metrics.render(&views, &PeersHeld::default()).unwrap();
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
        // The next scrape sees the fleet as it is then: a deleted gateway is gone.
        let text = metrics.render(&views[..2], &PeersHeld::default()).unwrap();
        assert!(!text.contains("gateway_id=\"3\""), "{text}");
        assert!(text.contains("gateway_supervisor_gateway_up{gateway_id=\"2\"} 0"));
    }

    /// In a cluster a gateway's series come from the instance linking it: a peer's scrape
    /// leaves them out, and counts it in the fleet's totals; once that instance lapsed, every
    /// instance exports it again until another links it.
    #[test]
    fn a_gateway_linked_by_another_live_instance_is_counted_but_its_series_are_left_to_it() {
        use gateway_supervisor_actors::model::{OwnerBeat, Vouched};
        let metrics = Metrics::new(GatewayDetail::Full).unwrap();
        let owner = Arc::new(OwnerBeat::default());
        let mut elsewhere = (*view(2)).clone();
        elsewhere.vouched = Vouched::by(&owner);
        let views = vec![view(1), Arc::new(elsewhere)];
        let text = metrics.render(&views, &PeersHeld::default()).unwrap();
        assert!(text.contains("gateway_supervisor_gateway_up{gateway_id=\"1\"} 0"));
        assert!(!text.contains("gateway_id=\"2\""), "{text}");
        assert!(
            text.contains("gateway_supervisor_gateways{status=\"unknown\"} 2"),
            "{text}"
        );
        owner.set_lapsed(true);
        let text = metrics.render(&views, &PeersHeld::default()).unwrap();
        assert!(text.contains("gateway_supervisor_gateway_up{gateway_id=\"2\"} 0"));
        assert!(text.contains("gateway_id=\"2\",labels=\"\",name=\"gw2\""));
    }
}
