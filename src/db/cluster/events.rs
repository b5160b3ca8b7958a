//! The cluster's event log on PostgreSQL (`cluster_events`): each instance's events stored in
//! id order under one lock, read back by every instance (`cluster::events`).

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text};
use gateway_supervisor_actors::model::GatewayId;

use crate::db::{DbError, Store};

/// An event as the cluster stores it.
#[derive(Debug, Clone, QueryableByName)]
pub struct EventRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub ts: i64,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub gateway_id: Option<GatewayId>,
    #[diesel(sql_type = Text)]
    pub payload: String,
}

/// An event to store: (ts, kind, gateway, payload as JSON text).
pub type NewEvent = (i64, &'static str, Option<GatewayId>, String);

#[derive(QueryableByName)]
struct MaxId {
    #[diesel(sql_type = Nullable<BigInt>)]
    max: Option<i64>,
}

/// Serializes event inserts across the cluster so ids commit in order (any fixed number).
const EVENT_LOCK: i64 = 0x6773_6576_656e_7473; // "gsevents"

impl Store {
    /// Stores a batch of this instance's events: one transaction holding the cluster's event
    /// lock, so the ids it takes commit before any taken after them.
    pub fn insert_events(&self, origin: &str, batch: &[NewEvent]) -> Result<(), DbError> {
        if batch.is_empty() {
            return Ok(());
        }
        let ts: Vec<i64> = batch.iter().map(|e| e.0).collect();
        let kinds: Vec<&str> = batch.iter().map(|e| e.1).collect();
        let gateways: Vec<Option<GatewayId>> = batch.iter().map(|e| e.2).collect();
        let payloads: Vec<&str> = batch.iter().map(|e| e.3.as_str()).collect();
        self.with_pg(|c| {
            c.transaction(|c| {
                diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                    .bind::<BigInt, _>(EVENT_LOCK)
                    .execute(c)?;
                diesel::sql_query(
                    "INSERT INTO cluster_events (ts, kind, gateway_id, payload, origin) \
                     SELECT t, k, g, p, $5 FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[]) \
                     WITH ORDINALITY AS e(t, k, g, p, n) ORDER BY n",
                )
                .bind::<Array<BigInt>, _>(&ts)
                .bind::<Array<Text>, _>(&kinds)
                .bind::<Array<Nullable<BigInt>>, _>(&gateways)
                .bind::<Array<Text>, _>(&payloads)
                .bind::<Text, _>(origin)
                .execute(c)
            })
        })?;
        Ok(())
    }

    /// Events after `last`, oldest first, at most `limit`.
    pub fn events_after(&self, last: i64, limit: i64) -> Result<Vec<EventRow>, DbError> {
        self.with_pg(|c| {
            diesel::sql_query(
                "SELECT id, ts, kind, gateway_id, payload FROM cluster_events \
                 WHERE id > $1 ORDER BY id LIMIT $2",
            )
            .bind::<BigInt, _>(last)
            .bind::<BigInt, _>(limit)
            .load(c)
        })
    }

    /// The newest event's id (0: none yet).
    pub fn last_event_id(&self) -> Result<i64, DbError> {
        self.with_pg(|c| {
            Ok(
                diesel::sql_query("SELECT max(id) AS max FROM cluster_events")
                    .get_result::<MaxId>(c)?
                    .max
                    .unwrap_or(0),
            )
        })
    }

    /// Forgets all but the newest `keep` events.
    pub fn prune_events(&self, keep: i64) -> Result<usize, DbError> {
        self.with_pg(|c| {
            diesel::sql_query(
                "DELETE FROM cluster_events WHERE id <= (SELECT max(id) FROM cluster_events) - $1",
            )
            .bind::<BigInt, _>(keep)
            .execute(c)
        })
    }
}
