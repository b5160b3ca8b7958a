//! Following the gateways table's change feed: one read at a time, handed to the registry,
//! and the feed's position moved on only once the registry took it in.

use std::time::Duration;

use actix::Addr;
use tracing::warn;

use super::Member;
use crate::cluster::hops::ask;
use crate::db::{DbError, Store};
use gateway_supervisor_actors::RegistryActor;
use gateway_supervisor_actors::registry::{ApplyStoreChanges, WritesSoFar};

/// How long one read of the change feed may take.
pub(super) const FEED_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) type FeedRead = (
    u64,
    tokio::task::JoinHandle<Result<crate::db::cluster::GatewayChanges, DbError>>,
);

/// Reads what changed in the gateways table; returns whether a gateway appeared.
pub(super) async fn follow_feed(
    m: &mut Member,
    store: &Store,
    registry: &Addr<RegistryActor>,
) -> bool {
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
            let (s, from, leases_from) = (store.clone(), m.feed_from, m.leases_from);
            let read = tokio::task::spawn_blocking(move || s.gateway_changes(from, leases_from));
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
    let applied =
        if changes.changed.is_empty() && changes.deleted.is_empty() && changes.owners.is_empty() {
            true
        } else {
            // Not answered in time: read again next time (applying twice changes nothing).
            ask(
                registry,
                ApplyStoreChanges {
                    changed: changes.changed,
                    deleted: changes.deleted,
                    owners: changes.owners,
                    after_writes,
                },
                m.renew_interval / 2,
            )
            .await
            .unwrap_or(false)
        };
    if applied {
        m.feed_from = changes.next;
        m.leases_from = changes.next;
    }
    appeared
}
