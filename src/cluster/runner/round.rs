//! A round, carried out: the heartbeat, then what [`super::plan`] decides — the leases to take
//! and to release, the coordinator's lease and the acting primary — in one blocking call
//! bounded by the round, then the registry told what it holds and until when.

use std::collections::HashMap;
use std::time::Instant;

use actix::Addr;
use tracing::{info, warn};

use super::{COMPARE_EVERY, Member, now_ms, plan};
use crate::cluster::brake::{Adopt, Database};
use crate::cluster::failover;
use crate::cluster::hops::{ask, blocking};
use crate::cluster::{Cluster, Peer, Standing};
use crate::db::cluster::{Heartbeat, InstanceRow, Member as Announced, Round};
use crate::db::{DbError, Store};
use gateway_supervisor_actors::RegistryActor;
use gateway_supervisor_actors::model::GatewayId;
use gateway_supervisor_actors::registry::{ActingPrimary, InstanceBeat, SetLeases, StillOpen};

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

pub(super) async fn round(
    m: &mut Member,
    cluster: &Cluster,
    store: &Store,
    registry: &Addr<RegistryActor>,
) {
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
    let same_epoch = beat.epoch == m.epoch;
    let mut held = if same_epoch {
        m.held.clone()
    } else {
        HashMap::new()
    };
    m.epoch = beat.epoch;
    let placed = plan::place(m, &beat, &pinned);
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
    // The links of the leases dropped earlier that are still closing.
    let still_open = ask(
        registry,
        StillOpen(m.to_release.clone()),
        m.renew_interval / 2,
    )
    .await
    .unwrap_or_else(|| m.to_release.clone());
    let release = plan::release_now(&m.to_release, &still_open, &placed.wanted);
    // Under a new epoch nothing of the old one is held.
    let given_up: &[GatewayId] = if same_epoch { &m.to_release } else { &[] };
    let room = plan::room(
        m.capacity,
        plan::holding(&held, given_up, &release, &placed.wanted),
        m.compare,
    );
    held.retain(|id, _| placed.wanted.contains(id));
    // Paced either way; held, only gateways never leased or last held by this instance, or
    // after a failover none.
    let to_take = plan::to_take(&held, &placed.wanted, adopt.how_many(round_ms), room);
    let own_only = matches!(adopt, Adopt::Held { .. });
    cluster.set_standing(standing(m, placed.unplaced_count, placed.unplaced, adopt));
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
        // Released before taking: the room the take fills is the released leases' (taken
        // first, an instance at capacity held both for the time between the two statements:
        // 11,665 leases at a capacity of 10,000, read once in `gs-bench capacity`).
        if !release.is_empty() {
            s.cluster_release(round, &release)?;
        }
        let taken = s.cluster_take(round, &to_take, own_only)?;
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
    let plan::Settled {
        held,
        to_release,
        adopted,
    } = plan::settle(
        &m.held,
        held,
        &result.taken,
        result.recorded.as_ref(),
        &placed.wanted,
        &still_open,
    );
    m.to_release = to_release;
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
        beats: beats(&beat.live),
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

/// Every live instance's epoch and last heartbeat, for the last-seen of the gateways each links
/// (its age read by the database's clock, placed on this one's).
fn beats(live: &[InstanceRow]) -> Vec<InstanceBeat> {
    let now_ms = now_ms();
    live.iter()
        .map(|i| InstanceBeat {
            instance: i.instance_id.clone(),
            epoch: u64::try_from(i.epoch).unwrap_or(0),
            at: (now_ms - i.heartbeat_age_ms.max(0)) / 1000,
        })
        .collect()
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
