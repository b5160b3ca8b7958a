//! The change feed of gateway rows (docs/design.md, *Cluster*): every write to a gateway row
//! stamps it with its transaction's id (`written_xid`) and a deletion leaves a tombstone; a
//! reader asks for what transactions at or after the oldest one still running at its last
//! read wrote, so a late commit is read next time, never skipped.

use std::collections::HashSet;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};
use gateway_supervisor_actors::model::{GatewayId, GatewayRecord};
use gateway_supervisor_actors::registry::LeaseOwner;

use crate::db::gateways::GatewayRow;
use crate::db::{DbError, Store};

#[derive(QueryableByName)]
struct Xmin {
    #[diesel(sql_type = BigInt)]
    xmin: i64,
}

#[derive(QueryableByName)]
struct LeaseChange {
    #[diesel(sql_type = BigInt)]
    gateway_id: GatewayId,
    #[diesel(sql_type = diesel::sql_types::Text)]
    owner: String,
    /// `None`: released, or a previous version's timed lease (its owner rewrites the rows
    /// itself as it always did).
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    owner_epoch: Option<i64>,
}

#[derive(QueryableByName)]
struct Tombstone {
    #[diesel(sql_type = BigInt)]
    gateway_id: GatewayId,
}

/// What changed in the gateways table since a reader's last look.
#[derive(Debug, Default)]
pub struct GatewayChanges {
    pub changed: Vec<GatewayRecord>,
    pub deleted: Vec<GatewayId>,
    /// Leases that changed hands: whose heartbeat stands for each gateway's last-seen.
    pub owners: Vec<LeaseOwner>,
    /// Where to look from next time.
    pub next: i64,
}

/// The oldest transaction still running: every one older has finished, and what it wrote is
/// visible to a read that starts now.
fn snapshot_xmin(c: &mut PgConnection) -> QueryResult<i64> {
    Ok(
        diesel::sql_query("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin")
            .get_result::<Xmin>(c)?
            .xmin,
    )
}

impl Store {
    /// Where the change feed starts for a reader about to load every gateway: every
    /// transaction older than this has finished, so the load sees it, and a read of the feed
    /// from here ([`Store::gateway_changes`]) sees every later one. Read before the load.
    pub fn feed_position(&self) -> Result<i64, DbError> {
        self.with_pg(snapshot_xmin)
    }

    /// Every registered gateway's id (an index-only read: 100,000 ids, not 100,000 rows).
    pub fn gateway_ids(&self) -> Result<Vec<GatewayId>, DbError> {
        self.with_pg(|c| {
            crate::db::schema::gateways::table
                .select(crate::db::schema::gateways::id)
                .load(c)
        })
    }

    /// Gateway rows written, and gateways deleted, by transactions at or after `since` (a
    /// value of [`GatewayChanges::next`], or [`Store::feed_position`]; 0: everything); lease
    /// rows written at or after `leases_since` (0 on an instance's first read: every lease).
    pub fn gateway_changes(
        &self,
        since: i64,
        leases_since: i64,
    ) -> Result<GatewayChanges, DbError> {
        let (rows, tombstones, leases, next) = self.with_pg(|c| {
            // Every transaction older than this has finished: its rows are visible below.
            let next = snapshot_xmin(c)?;
            let rows: Vec<GatewayRow> = crate::db::schema::gateways::table
                .filter(diesel::dsl::sql::<Bool>("written_xid >= ").bind::<BigInt, _>(since))
                .select(GatewayRow::as_select())
                .load(c)?;
            let tombstones: Vec<Tombstone> = diesel::sql_query(
                "SELECT gateway_id FROM gateway_tombstones WHERE written_xid >= $1",
            )
            .bind::<BigInt, _>(since)
            .load(c)?;
            let leases: Vec<LeaseChange> = diesel::sql_query(
                "SELECT gateway_id, owner, owner_epoch FROM gateway_leases WHERE written_xid >= $1",
            )
            .bind::<BigInt, _>(leases_since)
            .load(c)?;
            Ok((rows, tombstones, leases, next))
        })?;
        let changed = rows
            .into_iter()
            .map(|r| {
                self.to_record(r)
                    .map_err(|e| DbError::Conflict(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let live: HashSet<GatewayId> = changed.iter().map(|r| r.id).collect();
        Ok(GatewayChanges {
            // A deleted gateway whose id came back cannot happen (ids are never reused), but a
            // row present now wins over an old tombstone.
            deleted: tombstones
                .into_iter()
                .map(|t| t.gateway_id)
                .filter(|id| !live.contains(id))
                .collect(),
            changed,
            owners: leases
                .into_iter()
                .map(|l| LeaseOwner {
                    gateway: l.gateway_id,
                    owner: l
                        .owner_epoch
                        .and_then(|e| u64::try_from(e).ok())
                        .map(|e| (l.owner, e)),
                })
                .collect(),
            next,
        })
    }
}
