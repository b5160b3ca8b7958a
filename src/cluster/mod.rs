//! Several daemons on one PostgreSQL: each is an instance with a heartbeat, each gateway is
//! linked by exactly one instance holding its lease, and the leases are renewed in one
//! statement per round (docs/design.md, *Cluster*). SQLite keeps one daemon per database
//! (its state directory is locked), and none of this runs.
//!
//! - `placement`: who should link which gateway (pure).
//! - `brake` and `failover`: when adoption holds, and what a database failover is (pure).
//! - `runner`: the loop that heartbeats, renews and takes leases, follows the gateways table,
//!   and tells the registry which links to run.
//! - `wake`: LISTEN/NOTIFY wake-ups for the runner and the event pump (the tables stay the
//!   source of truth, polled as a fallback).

pub mod brake;
pub mod capacity;
pub mod events;
pub mod failover;
pub mod forward;
mod hops;
pub mod placement;
pub mod runner;
pub mod status;
pub mod wake;

use std::sync::Arc;
use std::time::Instant;

use gateway_supervisor_actors::link::LeaseGuard;
use gateway_supervisor_actors::model::GatewayId;

use prometheus::{IntCounter, IntGauge, Registry};

pub use crate::config::ClusterConfig;

/// What the rest of the daemon sees of the cluster.
#[derive(Clone)]
pub struct Cluster {
    pub instance_id: Arc<str>,
    /// `cluster.lease_ttl`: an instance without a heartbeat this long is not live.
    pub ttl: std::time::Duration,
    /// Signs and checks hops between instances (derived from the master key).
    pub forward_key: forward::ForwardKey,
    /// How long a forwarded request may take (the longest gateway operation, and some).
    pub forward_timeout: std::time::Duration,
    /// Until when the last successful renewal round holds: while it does, this instance has a
    /// view of the cluster (`/readyz` is false without one).
    pub(crate) view: LeaseGuard,
    /// Set by the database's notifications (`wake::listen`).
    pub wake: wake::Wakeups,
    /// How many gateways this instance can link (`capacity::of`; `None`: unbounded).
    pub capacity: Option<u64>,
    /// Where the runner reads the change feed from at start: the position
    /// ([`crate::db::Store::feed_position`]) read before the registry loaded the gateways.
    pub(crate) feed_start: i64,
    /// The other live instances, as of the last renewal round.
    peers: Arc<std::sync::RwLock<Arc<Vec<Peer>>>>,
    /// What the last round decided.
    standing: Arc<std::sync::RwLock<Arc<Standing>>>,
    pub metrics: ClusterMetrics,
}

/// The unplaced gateways named in `GET /api/cluster` (all are counted).
pub const UNPLACED_LISTED: usize = 100;

/// What this instance's last round decided, as `GET /api/cluster` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// Its epoch (0: no heartbeat yet).
    pub epoch: u64,
    pub capacity: Option<u64>,
    /// Gateways no live instance has room for.
    pub unplaced_count: usize,
    /// The first [`UNPLACED_LISTED`] of them, by id.
    pub unplaced: Vec<GatewayId>,
    /// What it may adopt (the brake).
    pub adoption: brake::Adopt,
}

impl Default for Standing {
    fn default() -> Self {
        Standing {
            epoch: 0,
            capacity: None,
            unplaced_count: 0,
            unplaced: Vec::new(),
            adoption: brake::Adopt::Up(0),
        }
    }
}

/// Another live instance and where it listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub instance: String,
    pub url: Option<String>,
}

impl Cluster {
    pub fn new(
        instance_id: String,
        ttl: std::time::Duration,
        forward_key: forward::ForwardKey,
        forward_timeout: std::time::Duration,
        capacity: Option<u64>,
        metrics: ClusterMetrics,
        feed_start: i64,
    ) -> Self {
        Cluster {
            instance_id: instance_id.into(),
            ttl,
            forward_key,
            forward_timeout,
            view: LeaseGuard::until(Instant::now()),
            wake: wake::Wakeups::default(),
            capacity,
            feed_start,
            peers: Arc::default(),
            standing: Arc::default(),
            metrics,
        }
    }

    /// What the last round decided.
    pub fn standing(&self) -> Arc<Standing> {
        self.standing.read().map(|s| s.clone()).unwrap_or_default()
    }

    fn set_standing(&self, standing: Standing) {
        self.metrics
            .unplaced
            .set(i64::try_from(standing.unplaced_count).unwrap_or(i64::MAX));
        self.metrics.adoption_held.set(i64::from(matches!(
            standing.adoption,
            brake::Adopt::Held { .. }
        )));
        if let Ok(mut s) = self.standing.write() {
            *s = Arc::new(standing);
        }
    }

    /// The other live instances (for reads that gather every instance's part).
    pub fn peers(&self) -> Arc<Vec<Peer>> {
        self.peers.read().map(|p| p.clone()).unwrap_or_default()
    }

    fn set_peers(&self, peers: Vec<Peer>) {
        if let Ok(mut p) = self.peers.write()
            && **p != peers
        {
            *p = Arc::new(peers);
        }
    }

    pub fn in_view(&self) -> bool {
        self.view.valid_at(Instant::now())
    }
}

/// Where peers reach a daemon listening on `addr` when `cluster.advertise_url` is unset: the
/// address itself, or the host name for a wildcard address.
pub fn default_advertise_url(addr: &std::net::SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".into());
        format!("http://{host}:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

/// `cluster_*` metrics.
#[derive(Clone)]
pub struct ClusterMetrics {
    pub instances: IntGauge,
    pub gateways_owned: IntGauge,
    pub renew_failures: IntCounter,
    pub adoptions: IntCounter,
    pub unplaced: IntGauge,
    pub adoption_held: IntGauge,
    pub database_failovers: IntCounter,
}

impl ClusterMetrics {
    /// `unplaced`: the daemon's own gauge (registered with the daemon's metrics, alone or not).
    pub fn new(unplaced: IntGauge) -> Result<Self, prometheus::Error> {
        Ok(ClusterMetrics {
            instances: IntGauge::new(
                "cluster_instances",
                "Live instances in the cluster (a heartbeat within the lease TTL).",
            )?,
            gateways_owned: IntGauge::new(
                "gateways_owned",
                "Gateways whose lease this instance holds (it links them).",
            )?,
            renew_failures: IntCounter::new(
                "lease_renew_failures_total",
                "Renewal rounds that failed (database unreachable or too slow).",
            )?,
            adoptions: IntCounter::new(
                "adoptions_total",
                "Gateway leases this instance took (first placement, or from an instance that left or died).",
            )?,
            unplaced,
            adoption_held: IntGauge::new(
                "adoption_held",
                "1 while the adoption brake holds (most instances vanished at once, or the database just came back or failed over): only gateways never leased or last held here are taken, none after a failover.",
            )?,
            database_failovers: IntCounter::new(
                "database_failovers_total",
                "Database failovers this instance saw (another PostgreSQL server answered its heartbeat: a new timeline or system identifier).",
            )?,
        })
    }

    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.instances.clone()))?;
        registry.register(Box::new(self.gateways_owned.clone()))?;
        registry.register(Box::new(self.renew_failures.clone()))?;
        registry.register(Box::new(self.adoption_held.clone()))?;
        registry.register(Box::new(self.database_failovers.clone()))?;
        registry.register(Box::new(self.adoptions.clone()))
    }
}
