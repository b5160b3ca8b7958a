//! The cluster loop of one instance. Whenever the database says a gateway row changed
//! (`wake`), and every `cluster.poll_interval` in case a notification was lost, it reads the gateways table's
//! change feed and hands it to the registry; every `renew_interval` (or at once when a gateway appeared) it
//! runs a round: the heartbeat (one row: this instance's liveness and epoch), placement over the
//! live instances and their capacities, the adoption brake, then — only when something changes
//! — the leases it takes and those it releases. A lease taken under the instance's epoch holds
//! while its heartbeat does, so a steady round writes one row whatever the fleet. The registry
//! runs the links of the leases held, each carrying a guard that ends `ttl − margin` after the
//! round started — before the instance's row can lapse in the database — so an instance whose
//! rounds fail or that was paused stops touching its gateways before anyone else may take them.

mod feed;
mod plan;
mod round;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use actix::Addr;
use tokio::sync::watch;
use tracing::{info, warn};

use super::brake::Brake;
use super::hops::blocking;
use super::{Cluster, ClusterConfig};
use crate::db::Store;
use crate::db::cluster::ServerIdentity;
use feed::{FEED_TIMEOUT, FeedRead, follow_feed};
use gateway_supervisor_actors::RegistryActor;
use gateway_supervisor_actors::model::GatewayId;
use round::round;

/// The shortest time between two reads of the feed on wake-ups.
const WOKEN_GAP: Duration = Duration::from_millis(100);

/// The runner's memory between rounds.
struct Member {
    me: String,
    /// The host this instance runs on: the managed gateways of this host are its to link.
    host_id: String,
    advertise_url: Option<String>,
    ttl: Duration,
    renew_interval: Duration,
    /// Every gateway the change feed has shown and not deleted.
    gateways: BTreeSet<GatewayId>,
    /// Where the change feed goes on from: the gateway rows (the registry loaded those before
    /// it), and the lease rows (0: every lease, on the first read).
    feed_from: i64,
    leases_from: i64,
    /// The leases of the last successful round.
    held: HashMap<GatewayId, u64>,
    /// Leases dropped from the last round (their links were stopped then): released now.
    to_release: Vec<GatewayId>,
    last_round: Option<Instant>,
    /// Whether a round has gone through: the first only announces the instance (see
    /// [`round`]).
    announced: bool,
    /// Whether this instance held the coordinator's lease at the last round.
    coordinator: bool,
    /// This instance's epoch (0: no heartbeat yet): every lease in `held` was taken under it.
    epoch: u64,
    /// The sequence number of its last heartbeat: the wall clock's microseconds, strictly
    /// growing (a restarted process under the same id goes on above its predecessor).
    beat: i64,
    /// How many gateways it can link (`None`: unbounded).
    capacity: Option<u64>,
    brake: Brake,
    /// Whether the last round could not reach the database.
    database_failed: bool,
    /// The database server the last heartbeat went to (a new one: it failed over).
    server: Option<ServerIdentity>,
    /// Rounds run, and whether the next compares its memory with the database (after a
    /// failed round, and every [`COMPARE_EVERY`]).
    rounds: u64,
    compare: bool,
    /// The change feed's read under way, with the registry's writes counter asked before it:
    /// one at a time, waited for up to FEED_TIMEOUT per loop and then left running.
    feed: Option<FeedRead>,
}

/// Rounds between two comparisons of what an instance holds with what the database says
/// (a minute at the default 3 s; one indexed read of this instance's leases).
pub(super) const COMPARE_EVERY: u64 = 20;

impl Member {
    /// How long before the lease's end in the database the links stop: time for the stop
    /// itself and for clocks that run slightly apart.
    fn margin(&self) -> Duration {
        (self.ttl / 5).max(Duration::from_millis(500))
    }

    fn round_due(&self, now: Instant) -> bool {
        self.last_round
            .is_none_or(|t| now.duration_since(t) >= self.renew_interval)
    }
}

/// Runs until `stop` turns true; then leaves the cluster (every lease released at once).
pub async fn run(
    cluster: Cluster,
    cfg: ClusterConfig,
    store: Store,
    registry: Addr<RegistryActor>,
    mut stop: watch::Receiver<bool>,
) {
    let mut m = Member {
        me: cluster.instance_id.to_string(),
        host_id: cfg.host_id(),
        advertise_url: cfg.advertise_url.clone(),
        ttl: cfg.lease_ttl,
        renew_interval: cfg.renew_interval,
        gateways: BTreeSet::new(),
        feed_from: 0,
        leases_from: 0,
        held: HashMap::new(),
        to_release: Vec::new(),
        last_round: None,
        announced: false,
        coordinator: false,
        epoch: 0,
        beat: 0,
        capacity: cluster.capacity,
        brake: Brake::new(cfg.clock_skew.as_millis() as i64),
        database_failed: false,
        server: None,
        rounds: 0,
        compare: false,
        feed: None,
    };
    info!(instance = %m.me, ttl = ?m.ttl, renew = ?m.renew_interval, "joining the cluster");
    // The registry loaded every gateway after the feed's start: the feed goes on from there,
    // with the ids (placement's input) read on their own. Without them, the whole feed.
    let ids = {
        let s = store.clone();
        blocking(FEED_TIMEOUT, move || s.gateway_ids()).await
    };
    match ids {
        Ok(ids) => {
            m.gateways = ids.into_iter().collect();
            m.feed_from = cluster.feed_start;
        }
        Err(e) => warn!(%e, "could not read the gateways' ids; reading the whole change feed"),
    }
    // Without a wake-up (a notification lost), changes are read at this pace.
    let mut ticker = tokio::time::interval(cfg.poll_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut feed_read: Option<Instant> = None;
    loop {
        let next_round = m
            .last_round
            .map_or_else(Instant::now, |t| t + m.renew_interval);
        let woken = tokio::select! {
            _ = ticker.tick() => false,
            _ = tokio::time::sleep_until(next_round.into()) => false,
            _ = cluster.wake.gateways.notified() => true,
            _ = stop.changed() => break,
        };
        if *stop.borrow() {
            break;
        }
        // A burst of notifications reads the feed at most every WOKEN_GAP.
        if woken && let Some(at) = feed_read {
            tokio::time::sleep_until((at + WOKEN_GAP).into()).await;
        }
        feed_read = Some(Instant::now());
        let appeared = follow_feed(&mut m, &store, &registry).await;
        if appeared || m.round_due(Instant::now()) {
            round(&mut m, &cluster, &store, &registry).await;
        }
    }
    cluster.view.extend(Instant::now());
}

/// A clean stop, after the links are closed: every lease released and the instance marked
/// stopping, so peers adopt at their next round instead of after the TTL.
pub async fn leave(cluster: &Cluster, store: &Store, timeout: Duration) {
    let (store, me) = (store.clone(), cluster.instance_id.to_string());
    let left = blocking(timeout, move || store.cluster_leave(&me)).await;
    match left {
        Ok(n) => info!(released = n, "left the cluster"),
        Err(e) => warn!(%e, "could not release the leases; peers adopt after the TTL"),
    }
}

fn now_ms() -> i64 {
    gateway_supervisor_actors::unix_now_ms()
}
