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

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use actix::Addr;
use tokio::sync::watch;
use tracing::{info, warn};

use super::brake::{Adopt, Brake, Database};
use super::failover;
use super::hops::{ask, blocking};
use super::placement::{self, Seat};
use super::{Cluster, ClusterConfig, Peer, Standing};
use crate::db::cluster::ServerIdentity;
use crate::db::cluster::{Heartbeat, Member as Announced, Round};
use crate::db::{DbError, Store};
use gateway_supervisor_actors::RegistryActor;
use gateway_supervisor_actors::model::GatewayId;
use gateway_supervisor_actors::registry::{
    ActingPrimary, ApplyStoreChanges, SetLeases, StillOpen, WritesSoFar,
};

/// How long one read of the change feed may take.
const FEED_TIMEOUT: Duration = Duration::from_secs(2);
/// The shortest time between two reads of the feed on wake-ups.
const WOKEN_GAP: Duration = Duration::from_millis(100);

/// What the second half of a round got from the database.
struct Taken {
    taken: HashMap<GatewayId, u64>,
    /// What the database says this instance holds, when the round compared.
    recorded: Option<HashMap<GatewayId, u64>>,
    /// The coordinator's lease epoch, when this instance holds it.
    coordinator: Option<u64>,
    /// The acting primary the coordinator recorded (read when this instance is not it).
    acting: Option<GatewayId>,
}

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
    /// Where the change feed goes on from.
    feed_from: i64,
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

type FeedRead = (
    u64,
    tokio::task::JoinHandle<Result<crate::db::cluster::GatewayChanges, DbError>>,
);

/// Rounds between two comparisons of what an instance holds with what the database says
/// (a minute at the default 3 s; one indexed read of this instance's leases).
const COMPARE_EVERY: u64 = 20;

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

/// Reads what changed in the gateways table; returns whether a gateway appeared.
async fn follow_feed(m: &mut Member, store: &Store, registry: &Addr<RegistryActor>) -> bool {
    // Counted before the read: the registry refuses rows that a later write of its own may
    // have overtaken, and they are read again next time.
    // A read already under way is only looked at: the round does not wait for it again.
    let mut wait = Duration::from_millis(20);
    let (after_writes, mut read) = match m.feed.take() {
        Some(under_way) => under_way,
        None => {
            wait = FEED_TIMEOUT;
            let Some(after_writes) = ask(registry, WritesSoFar, m.renew_interval / 2).await else {
                return false;
            };
            let (s, from) = (store.clone(), m.feed_from);
            let read = tokio::task::spawn_blocking(move || s.gateway_changes(from));
            (after_writes, read)
        }
    };
    // A read that takes longer (the first one of a 100,000-gateway fleet on a busy machine)
    // goes on while the round runs, and is picked up at the next loop. It used to be given up
    // and started again: reads of the whole feed piled up, none finished, and an instance
    // that had just started never learned of a gateway to take.
    let changes = match tokio::time::timeout(wait, &mut read).await {
        Err(_) => {
            m.feed = Some((after_writes, read));
            return false;
        }
        Ok(Ok(Ok(c))) => c,
        Ok(Ok(Err(e))) => {
            warn!(%e, "could not read the gateway changes");
            return false;
        }
        Ok(Err(e)) => {
            warn!(%e, "the read of the gateway changes did not finish");
            return false;
        }
    };
    let mut appeared = false;
    for r in &changes.changed {
        appeared |= m.gateways.insert(r.id);
    }
    for id in &changes.deleted {
        m.gateways.remove(id);
    }
    let applied = if changes.changed.is_empty() && changes.deleted.is_empty() {
        true
    } else {
        // Not answered in time: read again next time (applying twice changes nothing).
        ask(
            registry,
            ApplyStoreChanges {
                changed: changes.changed,
                deleted: changes.deleted,
                after_writes,
            },
            m.renew_interval / 2,
        )
        .await
        .unwrap_or(false)
    };
    if applied {
        m.feed_from = changes.next;
    }
    appeared
}

async fn round(m: &mut Member, cluster: &Cluster, store: &Store, registry: &Addr<RegistryActor>) {
    let started = Instant::now();
    let round_ms = m
        .last_round
        .map_or(m.renew_interval, |t| started.duration_since(t))
        .as_millis() as i64;
    m.last_round = Some(started);
    m.beat = (m.beat + 1).max(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
    );
    let Some((beat, pinned)) = heartbeat(m, store).await else {
        cluster.metrics.renew_failures.inc();
        m.database_failed = true;
        let adoption = m.brake.judge(now_ms(), None, &Database::Steady, 0, 0);
        cluster.set_standing(Standing {
            adoption,
            ..(*cluster.standing()).clone()
        });
        return;
    };
    if beat.epoch != m.epoch && m.epoch != 0 {
        warn!(
            from = m.epoch,
            to = beat.epoch,
            "this instance's lease lapsed: every gateway it held is given up"
        );
    }
    // A new epoch: every lease of the old one ended (the guard stopped their links already).
    let mut held = if beat.epoch == m.epoch {
        m.held.clone()
    } else {
        HashMap::new()
    };
    m.epoch = beat.epoch;
    let placed = place(m, &beat, &pinned);
    let ids: Vec<String> = beat.live.iter().map(|i| i.instance_id.clone()).collect();
    let ttl_ms = m.ttl.as_millis() as i64;
    let before = m.server.replace(beat.server.clone());
    let database = failover::news(before.as_ref(), &beat.server, m.database_failed);
    if let (Database::FailedOver(what), Some(before)) = (&database, &before) {
        let hold_ms = m.brake.failover_hold_ms(ttl_ms);
        failover::report(store, cluster, &m.me, (before, &beat.server), what, hold_ms);
        m.compare = true;
    }
    let adopt = m
        .brake
        .judge(now_ms(), Some(&ids), &database, ttl_ms, round_ms);
    m.database_failed = false;
    held.retain(|id, _| placed.wanted.contains(id));
    // Paced either way; held, only gateways never leased or last held by this instance, or
    // after a failover none.
    let to_take: Vec<GatewayId> = placed
        .wanted
        .iter()
        .filter(|g| !held.contains_key(g))
        .take(adopt.how_many(round_ms))
        .copied()
        .collect();
    let own_only = matches!(adopt, Adopt::Held { .. });
    cluster.set_standing(standing(m, placed.unplaced_count, placed.unplaced, adopt));
    // Only leases whose links are gone: a link still closing keeps its lease one more round
    // (its guard stops it touching the gateway in any case).
    let still_open = ask(
        registry,
        StillOpen(m.to_release.clone()),
        m.renew_interval / 2,
    )
    .await
    .unwrap_or_else(|| m.to_release.clone());
    // Never one placed here again: this round takes it (or holds it) — released in the same
    // round, it would be linked here with its lease free for anyone.
    let release: Vec<GatewayId> = m
        .to_release
        .iter()
        .filter(|id| !still_open.contains(id) && !placed.wanted.contains(id))
        .copied()
        .collect();
    // What this instance elected, recorded if it is (still) the coordinator (`None`: the
    // registry did not say in time; the record stands).
    let elected = ask(registry, ActingPrimary, m.renew_interval / 2).await;
    let (s, me, epoch, seq) = (store.clone(), m.me.clone(), m.epoch, m.beat);
    let timeline = m.server.as_ref().map_or(1, |s| s.timeline);
    m.rounds += 1;
    let compare = std::mem::take(&mut m.compare) || m.rounds.is_multiple_of(COMPARE_EVERY);
    let result = blocking(m.renew_interval, move || {
        let round = Round {
            instance: &me,
            epoch,
            beat: seq,
            timeline,
        };
        let taken = s.cluster_take(round, &to_take, own_only)?;
        if !release.is_empty() {
            s.cluster_release(round, &release)?;
        }
        let coordinator = s.cluster_coordinate(round)?;
        let acting = match coordinator {
            Some(epoch) => match elected {
                Some(choice) => {
                    // Fenced by the coordinator's lease in the same statement.
                    s.set_acting_primary(&me, epoch, choice)?;
                    choice
                }
                None => s.acting_primary()?,
            },
            None => s.acting_primary()?,
        };
        let recorded = if compare {
            Some(s.cluster_held(round)?)
        } else {
            None
        };
        Ok(Taken {
            taken,
            recorded,
            coordinator,
            acting,
        })
    })
    .await;
    let result = match result {
        Ok(r) => r,
        Err(e) => {
            cluster.metrics.renew_failures.inc();
            m.database_failed = true;
            // What it did may have been done: the next round compares.
            m.compare = true;
            // The heartbeat went through: what is held stays held until its guard ends.
            warn!(%e, "taking or releasing leases failed");
            Taken {
                taken: HashMap::new(),
                recorded: None,
                coordinator: None,
                acting: None,
            }
        }
    };
    m.announced = true;
    held.extend(result.taken.iter().map(|(id, epoch)| (*id, *epoch)));
    let strays = match &result.recorded {
        Some(recorded) => compare_held(&mut held, recorded, &placed.wanted),
        None => Vec::new(),
    };
    // Dropped this round, and those still closing last round (unless held again); and leases
    // held without being known, not placed here.
    m.to_release = m
        .held
        .keys()
        .filter(|id| !held.contains_key(id))
        .chain(still_open.iter().filter(|id| !held.contains_key(id)))
        .chain(strays.iter())
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut adopted: Vec<(GatewayId, u64)> = result
        .taken
        .iter()
        .filter(|(id, epoch)| m.held.get(id) != Some(epoch))
        .map(|(id, epoch)| (*id, *epoch))
        .collect();
    adopted.sort_unstable();
    cluster.metrics.adoptions.inc_by(adopted.len() as u64);
    let became_coordinator = result.coordinator.filter(|_| !m.coordinator);
    audit_round(store, &m.me, &adopted, became_coordinator);
    cluster.metrics.instances.set(beat.live.len() as i64);
    cluster.set_peers(
        beat.live
            .iter()
            .filter(|i| i.instance_id != m.me)
            .map(|i| Peer {
                instance: i.instance_id.clone(),
                url: i.advertise_url.clone(),
            })
            .collect(),
    );
    cluster.metrics.gateways_owned.set(held.len() as i64);
    m.held = held.clone();
    let valid_until = started + m.ttl.saturating_sub(m.margin());
    registry.do_send(SetLeases {
        held,
        valid_until,
        coordinator: result.coordinator.is_some(),
        acting: result.acting,
    });
    if result.coordinator.is_some() != m.coordinator {
        m.coordinator = result.coordinator.is_some();
        info!(coordinator = m.coordinator, "coordinator lease");
    }
    cluster.view.extend(valid_until);
}

/// Brings `held` in line with what the database `recorded` this instance holds: a lease it
/// holds without knowing (a take whose answer was lost) is linked when placed here, else
/// returned to be released; one it thinks it holds and does not is dropped (its link stops).
fn compare_held(
    held: &mut HashMap<GatewayId, u64>,
    recorded: &HashMap<GatewayId, u64>,
    wanted: &BTreeSet<GatewayId>,
) -> Vec<GatewayId> {
    let mut strays = Vec::new();
    for (id, epoch) in recorded {
        if !held.contains_key(id) {
            if wanted.contains(id) {
                held.insert(*id, *epoch);
            } else {
                strays.push(*id);
            }
        }
    }
    let before = held.len();
    held.retain(|id, epoch| recorded.get(id) == Some(epoch));
    if held.len() < before || !strays.is_empty() {
        warn!(
            lost = before - held.len(),
            strays = strays.len(),
            "the leases held differed from the database's: brought in line"
        );
    }
    strays
}

/// The first half of a round: the heartbeat, and the managed gateways' hosts.
async fn heartbeat(m: &Member, store: &Store) -> Option<(Heartbeat, HashMap<GatewayId, String>)> {
    let (s, me, url, host) = (
        store.clone(),
        m.me.clone(),
        m.advertise_url.clone(),
        m.host_id.clone(),
    );
    let (epoch, seq, ttl, capacity) = (m.epoch, m.beat, m.ttl, m.capacity);
    let beat = blocking(m.renew_interval, move || {
        let announced = Announced {
            instance: &me,
            advertise_url: url.as_deref(),
            host_id: &host,
            capacity,
        };
        let beat = s.cluster_heartbeat(&announced, epoch, seq, ttl)?;
        let pinned: HashMap<GatewayId, String> = s.managed_hosts()?.into_iter().collect();
        Ok((beat, pinned))
    })
    .await;
    match beat {
        Ok(b) => Some(b),
        Err(e) => {
            // The guard keeps the links until the margin before expiry; nothing else to do.
            warn!(%e, "heartbeat failed");
            None
        }
    }
}

/// Where this round puts the fleet.
struct Placed {
    /// The gateways this instance should link.
    wanted: BTreeSet<GatewayId>,
    unplaced_count: usize,
    /// The first of the gateways no instance has room for.
    unplaced: Vec<GatewayId>,
}

/// Placement over the live instances' capacities. A managed gateway listens on its host's
/// loopback: only an instance on that host can link it, so it is never placed, and its host's
/// instances ask for it. A joining instance's first round only announces it (its heartbeat):
/// instances started together then see each other before any takes a lease, and the fleet is
/// placed once over all of them — not taken whole by the first and two thirds handed over.
fn place(m: &Member, beat: &Heartbeat, pinned: &HashMap<GatewayId, String>) -> Placed {
    let seats: Vec<Seat<'_>> = beat
        .live
        .iter()
        .map(|i| Seat {
            id: &i.instance_id,
            capacity: i
                .capacity
                .and_then(|c| usize::try_from(c).ok())
                .unwrap_or(usize::MAX),
        })
        .collect();
    let placeable: Vec<GatewayId> = m
        .gateways
        .iter()
        .copied()
        .filter(|g| !pinned.contains_key(g))
        .collect();
    let placement = placement::assign_within(&placeable, &seats);
    let me_index = beat.live.iter().position(|i| i.instance_id == m.me);
    let mut wanted: BTreeSet<GatewayId> = BTreeSet::new();
    if m.announced {
        wanted.extend(
            placement
                .placed
                .iter()
                .filter(|(_, i)| Some(*i) == me_index)
                .map(|(g, _)| *g),
        );
        wanted.extend(
            m.gateways
                .iter()
                .filter(|g| pinned.get(g).is_some_and(|h| *h == m.host_id)),
        );
    }
    Placed {
        wanted,
        unplaced_count: placement.unplaced.len(),
        unplaced: placement
            .unplaced
            .into_iter()
            .take(super::UNPLACED_LISTED)
            .collect(),
    }
}

fn standing(m: &Member, unplaced_count: usize, unplaced: Vec<GatewayId>, adopt: Adopt) -> Standing {
    Standing {
        epoch: m.epoch,
        capacity: m.capacity,
        unplaced_count,
        unplaced,
        adoption: adopt,
    }
}

fn now_ms() -> i64 {
    gateway_supervisor_actors::unix_now_ms()
}

/// The audit rows of a round: the leases it took (one row per round, not per gateway: a
/// hand-over of thousands is one line), and this instance becoming the coordinator. Written in
/// the background; a failure is logged (the round itself stands).
fn audit_round(store: &Store, me: &str, adopted: &[(GatewayId, u64)], coordinator: Option<u64>) {
    const LISTED: usize = 100;
    if adopted.is_empty() && coordinator.is_none() {
        return;
    }
    let by = gateway_supervisor_actors::model::Caller::system("cluster");
    let taken_over = adopted.iter().filter(|(_, epoch)| *epoch > 1).count();
    let adoption = (!adopted.is_empty()).then(|| {
        serde_json::json!({
            "count": adopted.len(),
            // Epoch 1: the gateway's first lease; above: taken after another instance's lease
            // ended (released, or expired).
            "taken_over": taken_over,
            "gateways": adopted.iter().take(LISTED).map(|(id, epoch)| serde_json::json!({"gateway_id": id, "epoch": epoch})).collect::<Vec<_>>(),
            "listed": adopted.len().min(LISTED),
        })
    });
    let (s, me) = (store.clone(), me.to_owned());
    tokio::task::spawn_blocking(move || {
        let write = || -> Result<(), DbError> {
            if let Some(details) = &adoption {
                s.audit(&by, "cluster.adopt", "instance", me.clone(), details)?;
            }
            if let Some(epoch) = coordinator {
                s.audit(
                    &by,
                    "cluster.coordinator",
                    "instance",
                    me.clone(),
                    &serde_json::json!({"epoch": epoch}),
                )?;
            }
            Ok(())
        };
        if let Err(e) = write() {
            warn!(%e, "could not write the audit rows of a renewal round");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: &[i64]) -> BTreeSet<GatewayId> {
        n.iter().map(|i| GatewayId(*i)).collect()
    }

    #[test]
    fn a_lease_held_unknowingly_is_linked_when_placed_here_and_released_when_not() {
        // Memory: 1 and 2. The database: 1, 2 under a newer fencing epoch, 3 and 4 (takes whose
        // answers were lost). Placed here: 1, 2, 3.
        let mut held: HashMap<GatewayId, u64> = [(GatewayId(1), 5), (GatewayId(2), 1)].into();
        let recorded: HashMap<GatewayId, u64> = [
            (GatewayId(1), 5),
            (GatewayId(2), 2),
            (GatewayId(3), 7),
            (GatewayId(4), 1),
        ]
        .into();
        let strays = compare_held(&mut held, &recorded, &ids(&[1, 2, 3]));
        assert_eq!(strays, [GatewayId(4)]);
        // 2's link ran under epoch 1, which is not the lease's: it stops (and 2 is taken
        // again by the next round, under the epoch the database has).
        let mut now: Vec<(i64, u64)> = held.iter().map(|(g, e)| (g.get(), *e)).collect();
        now.sort_unstable();
        assert_eq!(now, [(1, 5), (3, 7)]);
    }
}
