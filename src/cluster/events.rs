//! Events across the cluster: every instance's streams (`/api/events`, `/api/ws`) carry every
//! instance's events, in one order, under ids that survive restarts. An instance's bus queues
//! what it publishes (`EventBus::through_outbox`); this pump stores the queue in batches
//! (`cluster_events`, ids committed in order under the cluster's event lock) and reads the
//! table back — its own events and everyone else's — into the bus (`EventBus::deliver`), where
//! the streams and `Last-Event-ID` work as they do alone. The table is the source of truth:
//! it is read when the database says events were stored (`wake`), and every
//! `cluster.poll_interval` in case a notification was lost.

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tracing::warn;

use super::Cluster;
use crate::db::Store;
use crate::db::cluster::NewEvent;
use gateway_supervisor_actors::events::{Event, EventBus, EventKind, REPLAY};

/// Events stored per statement, and read per query.
const BATCH: usize = 512;
/// Events kept in the table (a client further behind gets a reset).
const KEEP: i64 = 100_000;
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// How long one storage call may take.
const DB_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs until `stop`; then stores what is still queued.
pub async fn pump(
    cluster: Cluster,
    poll: Duration,
    store: Store,
    bus: EventBus,
    mut outbox: mpsc::Receiver<Event>,
    mut stop: watch::Receiver<bool>,
) {
    let me = cluster.instance_id.to_string();
    // Start with the newest events, so a client resuming here finds them.
    let mut last = {
        let s = store.clone();
        blocking(move || s.last_event_id())
            .await
            .map_or(0, |max| (max - REPLAY as i64).max(0))
    };
    let mut ticker = tokio::time::interval(poll);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pruned = Instant::now();
    loop {
        let mut batch = Vec::new();
        tokio::select! {
            _ = ticker.tick() => {}
            _ = cluster.wake.events.notified() => {}
            Some(first) = outbox.recv() => batch.push(first),
            _ = stop.changed() => break,
        }
        while batch.len() < BATCH {
            match outbox.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        store_batch(&store, &me, batch).await;
        last = read_back(&store, &bus, last).await;
        if pruned.elapsed() >= PRUNE_EVERY {
            pruned = Instant::now();
            let s = store.clone();
            if let Err(e) = blocking(move || s.prune_events(KEEP)).await {
                warn!(%e, "could not prune the cluster's events");
            }
        }
    }
    let mut rest = Vec::new();
    while let Ok(e) = outbox.try_recv() {
        rest.push(e);
    }
    store_batch(&store, &me, rest).await;
}

async fn store_batch(store: &Store, me: &str, batch: Vec<Event>) {
    if batch.is_empty() {
        return;
    }
    let rows: Vec<NewEvent> = batch
        .into_iter()
        .map(|e| (e.ts, e.kind.as_str(), e.gateway_id, e.payload.to_string()))
        .collect();
    let (s, me, n) = (store.clone(), me.to_owned(), rows.len());
    if let Err(e) = blocking(move || s.insert_events(&me, &rows)).await {
        warn!(%e, events = n, "could not store events; they are lost");
    }
}

/// Delivers the events after `last` to the bus; returns the new last id.
async fn read_back(store: &Store, bus: &EventBus, mut last: i64) -> i64 {
    loop {
        let s = store.clone();
        let rows = match blocking(move || s.events_after(last, BATCH as i64)).await {
            Ok(rows) => rows,
            Err(e) => {
                warn!(%e, "could not read the cluster's events");
                return last;
            }
        };
        let full = rows.len() == BATCH;
        for row in rows {
            last = row.id;
            let Some(kind) = EventKind::ALL.into_iter().find(|k| k.as_str() == row.kind) else {
                continue;
            };
            bus.deliver(Event {
                id: u64::try_from(row.id).unwrap_or(0),
                kind,
                gateway_id: row.gateway_id,
                ts: row.ts,
                payload: serde_json::from_str(&row.payload).unwrap_or_default(),
            });
        }
        if !full {
            return last;
        }
    }
}

async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, crate::db::DbError> + Send + 'static,
) -> Result<T, String> {
    super::hops::blocking(DB_TIMEOUT, call).await
}
