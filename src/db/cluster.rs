//! The cluster's tables on PostgreSQL: instances and their heartbeats, gateway leases, and the
//! change feed of gateway rows. Every time is the database's (`now()`), never an instance's
//! clock. See docs/design.md, *Cluster*.
//!
//! Leases are epoch-based (migration `000030_epoch_leases`): an instance renews one row a round
//! — its liveness, under an epoch that grows whenever that row lapsed — and a gateway's lease
//! row is written only when its owner changes; it holds while the owner's row is alive under
//! the epoch it was taken with (`cluster_lease_holds`, one SQL function every statement here
//! uses). 100,000 gateways over 10 instances renewing every 3 s: 3.3 row writes a second, not
//! 33,000. A previous version's timed lease (`owner_epoch` NULL) still holds until its
//! `expires_at`, and an epoch lease reads `expires_at = 'infinity'` to it: both versions side by
//! side never take each other's gateways.

use std::collections::HashMap;
use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};

use super::{DbConn, DbError, Store};
use gateway_supervisor_actors::model::GatewayId;

mod events;
mod feed;
mod reads;
mod server;

pub use events::{EventRow, NewEvent};
pub use feed::GatewayChanges;
pub use reads::{StoredGateway, Which};
pub use server::ServerIdentity;

/// A lease as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct LeaseRow {
    #[diesel(sql_type = BigInt)]
    pub gateway_id: GatewayId,
    #[diesel(sql_type = Text)]
    pub owner: String,
    #[diesel(sql_type = BigInt)]
    pub epoch: i64,
    /// Milliseconds until it expires (negative: expired), by the database's clock.
    #[diesel(sql_type = BigInt)]
    pub expires_in_ms: i64,
}

/// An instance as the database holds it.
#[derive(Debug, Clone, QueryableByName)]
pub struct InstanceRow {
    #[diesel(sql_type = Text)]
    pub instance_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub advertise_url: Option<String>,
    /// Milliseconds since its last heartbeat.
    #[diesel(sql_type = BigInt)]
    pub heartbeat_age_ms: i64,
    #[diesel(sql_type = Bool)]
    pub stopping: bool,
    /// How many gateways it can link (`None`: a previous version, unbounded).
    #[diesel(sql_type = Nullable<BigInt>)]
    pub capacity: Option<i64>,
    /// Its epoch (0: a previous version, whose leases are timed).
    #[diesel(sql_type = BigInt)]
    pub epoch: i64,
}

/// What a heartbeat tells an instance: its epoch, and the live instances.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    /// This instance's epoch now: the one it sent while its row stayed alive, a newer one
    /// when its row had lapsed (every lease taken under the old one ended then).
    pub epoch: u64,
    /// The live instances (alive, not stopping), sorted by id.
    pub live: Vec<InstanceRow>,
    /// The server that answered.
    pub server: ServerIdentity,
}

/// Who links a gateway: the holder of its unexpired lease, and where it listens.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Holder {
    #[diesel(sql_type = Text)]
    pub owner: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub advertise_url: Option<String>,
    /// Milliseconds until the lease expires.
    #[diesel(sql_type = BigInt)]
    pub expires_in_ms: i64,
}

/// The cluster as the database holds it, with one page of its leases.
#[derive(Debug, Clone)]
pub struct ClusterState {
    pub instances: Vec<InstanceRow>,
    /// How many leases of existing gateways hold now, by owner.
    pub held: HashMap<String, usize>,
    /// Leases of existing gateways, by id: the page asked for (see [`LeasePage`]), and one
    /// more when there are more.
    pub leases: Vec<LeaseRow>,
    /// Gateways registered.
    pub gateways: i64,
    /// The instance holding the coordinator's lease.
    pub coordinator: Option<String>,
}

impl ClusterState {
    /// Gateways nobody links right now: registered, without a lease that holds.
    pub fn unowned(&self) -> usize {
        let owned: usize = self.held.values().sum();
        usize::try_from(self.gateways)
            .unwrap_or(0)
            .saturating_sub(owned)
    }
}

/// Which leases [`Store::cluster_state`] lists: up to `limit` after the gateway `after`. A
/// fleet of 100,000 is 100,000 leases, ~9 MB of JSON read and written whole on every call
/// before they were paged.
#[derive(Debug, Clone, Copy)]
pub struct LeasePage {
    pub after: Option<GatewayId>,
    pub limit: i64,
}

#[derive(QueryableByName)]
struct HeldBy {
    #[diesel(sql_type = Text)]
    owner: String,
    #[diesel(sql_type = BigInt)]
    held: i64,
}

#[derive(QueryableByName)]
struct Holding {
    #[diesel(sql_type = Text)]
    holder: String,
}

#[derive(QueryableByName)]
struct Epoch {
    #[diesel(sql_type = BigInt)]
    epoch: i64,
}

#[derive(QueryableByName)]
struct Acting {
    #[diesel(sql_type = Nullable<BigInt>)]
    gateway_id: Option<GatewayId>,
}

#[derive(QueryableByName)]
struct Held {
    #[diesel(sql_type = BigInt)]
    gateway_id: GatewayId,
    #[diesel(sql_type = BigInt)]
    epoch: i64,
}

pub(super) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Leases by gateway, with their fencing epochs.
fn by_gateway(held: Vec<Held>) -> HashMap<GatewayId, u64> {
    held.into_iter()
        .map(|h| (h.gateway_id, u64::try_from(h.epoch).unwrap_or(0)))
        .collect()
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// An instance row as every read here shows it.
const INSTANCE_COLUMNS: &str = "instance_id, advertise_url, \
    (extract(epoch FROM now() - heartbeat_at) * 1000)::bigint AS heartbeat_age_ms, stopping, capacity, epoch";

/// The round a statement belongs to: it acts only while that round's heartbeat (`beat`) is
/// the instance's latest, under `epoch` — a statement that queued for a connection past its
/// caller's patience and reaches the server after a later round does nothing.
#[derive(Debug, Clone, Copy)]
pub struct Round<'a> {
    pub instance: &'a str,
    pub epoch: u64,
    pub beat: i64,
    /// The WAL timeline its heartbeat found (1 until the database first failed over).
    pub timeline: u32,
}

impl Round<'_> {
    /// The least fencing epoch a lease taken in this round gets: above every one issued on an
    /// earlier timeline, which a promoted asynchronous replica may not have seen (a lease's
    /// epoch grows by one a take, so a timeline's never reach the next's 2^32 floor). On
    /// timeline 1, 1: a cluster that never failed over counts 1, 2, 3 …
    fn epoch_floor(&self) -> i64 {
        (i64::from(self.timeline.max(1)) - 1)
            .saturating_mul(1 << 32)
            .saturating_add(1)
    }
}

/// This instance as its heartbeat announces it.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    pub instance: &'a str,
    pub advertise_url: Option<&'a str>,
    /// The host it runs on (its managed gateways are its to link).
    pub host_id: &'a str,
    /// How many gateways it can link (`None`: unbounded).
    pub capacity: Option<u64>,
}

impl Store {
    /// Runs `f` on a PostgreSQL connection; a cluster on SQLite is refused before this runs.
    fn with_pg<T>(
        &self,
        f: impl FnOnce(&mut PgConnection) -> QueryResult<T>,
    ) -> Result<T, DbError> {
        let mut conn = self.conn()?;
        match &mut *conn {
            DbConn::Postgres(c) => f(c).map_err(DbError::from),
            DbConn::Sqlite(_) => Err(DbError::Conflict(
                "a cluster needs PostgreSQL; SQLite serves one daemon".into(),
            )),
        }
    }

    /// Writes this instance's heartbeat (the database's clock) under `epoch` (0: none yet), as
    /// its beat `beat` (strictly growing), with what it can hold; returns its epoch now and the
    /// live instances. One row write. A beat not above the stored one (a call that queued
    /// while a later one went through) writes nothing and is refused.
    pub fn cluster_heartbeat(
        &self,
        me: &Member<'_>,
        epoch: u64,
        beat: i64,
        ttl: Duration,
    ) -> Result<Heartbeat, DbError> {
        let beat = self.with_pg(|c| {
            let epoch: Option<Epoch> = diesel::sql_query(
                "INSERT INTO cluster_instances AS i (instance_id, advertise_url, host_id, epoch, \
                   expires_at, capacity, beat) \
                 VALUES ($1, $2, $3, 1, now() + $5 * interval '1 millisecond', $6, $7) \
                 ON CONFLICT (instance_id) DO UPDATE SET \
                   epoch = CASE WHEN i.epoch = $4 AND i.expires_at > now() AND NOT i.stopping \
                           THEN i.epoch ELSE i.epoch + 1 END, \
                   heartbeat_at = now(), expires_at = EXCLUDED.expires_at, \
                   advertise_url = EXCLUDED.advertise_url, host_id = EXCLUDED.host_id, \
                   capacity = EXCLUDED.capacity, stopping = FALSE, beat = EXCLUDED.beat \
                 WHERE i.beat < EXCLUDED.beat \
                 RETURNING epoch",
            )
            .bind::<Text, _>(me.instance)
            .bind::<Nullable<Text>, _>(me.advertise_url)
            .bind::<Text, _>(me.host_id)
            .bind::<BigInt, _>(signed(epoch))
            .bind::<BigInt, _>(millis(ttl))
            .bind::<Nullable<BigInt>, _>(me.capacity.map(signed))
            .bind::<BigInt, _>(beat)
            .get_result(c)
            .optional()?;
            let Some(epoch) = epoch else {
                return Ok(None);
            };
            let live: Vec<InstanceRow> = diesel::sql_query(format!(
                "SELECT {INSTANCE_COLUMNS} FROM cluster_instances \
                 WHERE COALESCE(expires_at, heartbeat_at + $1 * interval '1 millisecond') > now() \
                 AND NOT stopping ORDER BY instance_id"
            ))
            .bind::<BigInt, _>(millis(ttl))
            .load(c)?;
            Ok(Some(Heartbeat {
                epoch: u64::try_from(epoch.epoch).unwrap_or(0),
                live,
                server: server::read(c)?,
            }))
        })?;
        beat.ok_or_else(|| {
            DbError::Conflict(
                "a later heartbeat of this instance is in the database (its clock went back, \
                 or another process runs under the same instance id)"
                    .into(),
            )
        })
    }

    /// Takes the leases of `wanted` that hold for nobody else (never taken, released, lapsed
    /// with their owner's row, or a previous version's that expired), under this instance's
    /// `epoch` — only while its own row is alive under it. `own_only` (the adoption brake):
    /// only those never taken or last held by this instance. A lease taken from another gets
    /// the gateway's next fencing epoch, and at least the round's [`Round::epoch_floor`].
    /// Returns each lease taken (or found already this instance's under `epoch`, unwritten),
    /// by gateway, with its fencing epoch. Writes one row per lease taken, none for one
    /// already held nor for a round that takes nothing.
    pub fn cluster_take(
        &self,
        round: Round<'_>,
        wanted: &[GatewayId],
        own_only: bool,
    ) -> Result<HashMap<GatewayId, u64>, DbError> {
        let Round {
            instance,
            epoch,
            beat,
            ..
        } = round;
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        let held: Vec<Held> = self.with_pg(|c| {
            diesel::sql_query(
                "WITH taken AS (\
                   INSERT INTO gateway_leases AS l (gateway_id, owner, epoch, expires_at, owner_epoch) \
                   SELECT g, $1, $6, 'infinity', $3 FROM unnest($2::bigint[]) AS g \
                   WHERE cluster_round_current($1, $3, $5) \
                   ON CONFLICT (gateway_id) DO UPDATE SET epoch = GREATEST(l.epoch + 1, $6), \
                     owner = EXCLUDED.owner, owner_epoch = EXCLUDED.owner_epoch, expires_at = 'infinity' \
                   WHERE NOT cluster_lease_holds(l.owner, l.owner_epoch, l.expires_at) \
                     AND (NOT $4 OR l.owner = EXCLUDED.owner) \
                   RETURNING gateway_id, epoch) \
                 SELECT gateway_id, epoch FROM taken UNION ALL \
                 SELECT gateway_id, epoch FROM gateway_leases \
                 WHERE gateway_id = ANY($2::bigint[]) AND owner = $1 AND owner_epoch = $3 \
                   AND expires_at = 'infinity' AND cluster_lease_holds($1, $3, 'infinity')",
            )
            .bind::<Text, _>(instance)
            .bind::<Array<BigInt>, _>(wanted)
            .bind::<BigInt, _>(signed(epoch))
            .bind::<Bool, _>(own_only)
            .bind::<BigInt, _>(beat)
            .bind::<BigInt, _>(round.epoch_floor())
            .load(c)
        })?;
        Ok(by_gateway(held))
    }

    /// The leases the database says this instance holds under its epoch, by gateway, with
    /// their fencing epochs: what a round compares its memory with now and then (a take whose
    /// answer was lost to the round's timeout is held without being known).
    pub fn cluster_held(&self, round: Round<'_>) -> Result<HashMap<GatewayId, u64>, DbError> {
        let held: Vec<Held> = self.with_pg(|c| {
            diesel::sql_query(
                "SELECT gateway_id, epoch FROM gateway_leases \
                 WHERE owner = $1 AND owner_epoch = $2 AND expires_at = 'infinity'",
            )
            .bind::<Text, _>(round.instance)
            .bind::<BigInt, _>(signed(round.epoch))
            .load(c)
        })?;
        Ok(by_gateway(held))
    }

    /// Takes the coordinator's lease, like a gateway's, under this instance's `epoch`, when it
    /// holds for nobody else; returns its epoch when this instance holds it. Held, it costs no
    /// write: it lasts as long as the instance's row.
    pub fn cluster_coordinate(&self, round: Round<'_>) -> Result<Option<u64>, DbError> {
        let Round {
            instance,
            epoch,
            beat,
            ..
        } = round;
        let held: Option<Epoch> = self.with_pg(|c| {
            diesel::sql_query(
                "WITH taken AS (\
                   INSERT INTO cluster_roles AS r (name, holder, epoch, expires_at, holder_epoch) \
                   SELECT 'coordinator', $1, 1, 'infinity', $2 \
                   WHERE cluster_round_current($1, $2, $3) \
                   ON CONFLICT (name) DO UPDATE SET epoch = r.epoch + 1, holder = EXCLUDED.holder, \
                     holder_epoch = EXCLUDED.holder_epoch, expires_at = 'infinity' \
                   WHERE NOT cluster_lease_holds(r.holder, r.holder_epoch, r.expires_at) \
                   RETURNING epoch) \
                 SELECT epoch FROM taken UNION ALL \
                 SELECT epoch FROM cluster_roles WHERE name = 'coordinator' AND holder = $1 \
                   AND holder_epoch = $2 AND cluster_lease_holds($1, $2, 'infinity') \
                 LIMIT 1",
            )
            .bind::<Text, _>(instance)
            .bind::<BigInt, _>(signed(epoch))
            .bind::<BigInt, _>(beat)
            .get_result(c)
            .optional()
        })?;
        Ok(held.map(|h| u64::try_from(h.epoch).unwrap_or(0)))
    }

    /// Records the acting primary the coordinator chose — only while `instance` still holds
    /// the coordinator's lease under `epoch` (checked in the same statement), and only when it
    /// changed (a round that chose the same writes nothing). Returns whether it was written.
    pub fn set_acting_primary(
        &self,
        instance: &str,
        epoch: u64,
        gateway: Option<GatewayId>,
    ) -> Result<bool, DbError> {
        let epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
        let written = self.with_pg(|c| {
            diesel::sql_query(
                "INSERT INTO cluster_acting_primary (singleton, gateway_id, coordinator_epoch) \
                 SELECT TRUE, $1, $3 WHERE EXISTS (SELECT 1 FROM cluster_roles \
                   WHERE name = 'coordinator' AND holder = $2 AND epoch = $3 \
                   AND cluster_lease_holds(holder, holder_epoch, expires_at)) \
                 ON CONFLICT (singleton) DO UPDATE SET gateway_id = EXCLUDED.gateway_id, \
                   coordinator_epoch = EXCLUDED.coordinator_epoch \
                 WHERE cluster_acting_primary.coordinator_epoch < EXCLUDED.coordinator_epoch \
                   OR (cluster_acting_primary.coordinator_epoch = EXCLUDED.coordinator_epoch \
                       AND cluster_acting_primary.gateway_id IS DISTINCT FROM EXCLUDED.gateway_id)",
            )
            .bind::<Nullable<BigInt>, _>(gateway)
            .bind::<Text, _>(instance)
            .bind::<BigInt, _>(epoch)
            .execute(c)
        })?;
        Ok(written == 1)
    }

    /// The acting primary the coordinator last recorded (`None`: none recorded yet, or none).
    pub fn acting_primary(&self) -> Result<Option<GatewayId>, DbError> {
        self.with_pg(|c| {
            Ok(
                diesel::sql_query("SELECT gateway_id FROM cluster_acting_primary")
                    .get_result::<Acting>(c)
                    .optional()?
                    .and_then(|a| a.gateway_id),
            )
        })
    }

    /// Gives leases up at once (their links are already stopped), so peers take them at
    /// their next round instead of waiting for expiry.
    pub fn cluster_release(&self, round: Round<'_>, ids: &[GatewayId]) -> Result<usize, DbError> {
        self.with_pg(|c| {
            diesel::sql_query(
                "UPDATE gateway_leases SET expires_at = now(), owner_epoch = NULL \
                 WHERE owner = $1 AND gateway_id = ANY($2::bigint[]) AND expires_at > now() \
                 AND cluster_round_current($1, $4, $3)",
            )
            .bind::<Text, _>(round.instance)
            .bind::<Array<BigInt>, _>(ids)
            .bind::<BigInt, _>(round.beat)
            .bind::<BigInt, _>(signed(round.epoch))
            .execute(c)
        })
    }

    /// A clean stop: every lease released and the instance marked stopping.
    pub fn cluster_leave(&self, instance: &str) -> Result<usize, DbError> {
        self.with_pg(|c| {
            c.transaction(|c| {
                diesel::sql_query(
                    "UPDATE cluster_instances SET stopping = TRUE WHERE instance_id = $1",
                )
                .bind::<Text, _>(instance)
                .execute(c)?;
                diesel::sql_query(
                    "UPDATE cluster_roles SET expires_at = now(), holder_epoch = NULL \
                     WHERE holder = $1 AND expires_at > now()",
                )
                .bind::<Text, _>(instance)
                .execute(c)?;
                diesel::sql_query(
                    "UPDATE gateway_leases SET expires_at = now(), owner_epoch = NULL \
                     WHERE owner = $1 AND expires_at > now()",
                )
                .bind::<Text, _>(instance)
                .execute(c)
            })
        })
    }

    /// The holder of gateway `id`'s unexpired lease, if any.
    pub fn lease_holder(&self, id: GatewayId) -> Result<Option<Holder>, DbError> {
        self.with_pg(|c| {
            diesel::sql_query(
                "SELECT l.owner, i.advertise_url, \
                 (extract(epoch FROM cluster_lease_until(l.owner, l.owner_epoch, l.expires_at) \
                   - now()) * 1000)::bigint AS expires_in_ms \
                 FROM gateway_leases l LEFT JOIN cluster_instances i ON i.instance_id = l.owner \
                 WHERE l.gateway_id = $1 AND cluster_lease_holds(l.owner, l.owner_epoch, l.expires_at)",
            )
            .bind::<BigInt, _>(id)
            .get_result(c)
            .optional()
        })
    }

    /// Every instance with how many leases it holds, one page of the leases of existing
    /// gateways (`limit + 1` of them, to tell whether more follow), how many gateways there
    /// are, and who coordinates.
    pub fn cluster_state(&self, page: LeasePage) -> Result<ClusterState, DbError> {
        self.with_pg(|c| {
            let instances = diesel::sql_query(format!(
                "SELECT {INSTANCE_COLUMNS} FROM cluster_instances ORDER BY instance_id"
            ))
            .load(c)?;
            // An epoch lease lasts as long as its owner's row (shown a day past when the row
            // is gone or under another epoch — `-infinity`, which PostgreSQL refuses to
            // subtract from; a previous version's, a day ahead at most).
            let leases = diesel::sql_query(
                "SELECT l.gateway_id, l.owner, l.epoch, \
                 CASE WHEN isfinite(u.until) THEN GREATEST(-86400000, LEAST(86400000, \
                   (extract(epoch FROM u.until - now()) * 1000)))::bigint \
                   WHEN u.until > now() THEN 86400000 ELSE -86400000 END AS expires_in_ms \
                 FROM gateway_leases l JOIN gateways g ON g.id = l.gateway_id \
                 CROSS JOIN LATERAL (SELECT cluster_lease_until(l.owner, l.owner_epoch, l.expires_at) \
                   AS until) u \
                 WHERE l.gateway_id > $1 ORDER BY l.gateway_id LIMIT $2",
            )
            .bind::<BigInt, _>(page.after.map_or(i64::MIN, |id| id.0))
            .bind::<BigInt, _>(page.limit.saturating_add(1))
            .load(c)?;
            let held: Vec<HeldBy> = diesel::sql_query(
                "SELECT l.owner, count(*)::bigint AS held \
                 FROM gateway_leases l JOIN gateways g ON g.id = l.gateway_id \
                 WHERE cluster_lease_holds(l.owner, l.owner_epoch, l.expires_at) \
                 GROUP BY l.owner",
            )
            .load(c)?;
            let gateways: i64 = crate::db::schema::gateways::table.count().get_result(c)?;
            let coordinator = diesel::sql_query(
                "SELECT holder FROM cluster_roles WHERE name = 'coordinator' \
                 AND cluster_lease_holds(holder, holder_epoch, expires_at)",
            )
            .get_result::<Holding>(c)
            .optional()?
            .map(|h| h.holder);
            Ok(ClusterState {
                instances,
                held: held
                    .into_iter()
                    .map(|h| (h.owner, usize::try_from(h.held).unwrap_or(0)))
                    .collect(),
                leases,
                gateways,
                coordinator,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Round;

    fn floor(timeline: u32) -> i64 {
        Round {
            instance: "a",
            epoch: 1,
            beat: 1,
            timeline,
        }
        .epoch_floor()
    }

    #[test]
    fn each_timeline_s_fencing_epochs_start_above_every_earlier_one_s() {
        assert_eq!(
            floor(1),
            1,
            "a cluster that never failed over counts from 1"
        );
        assert_eq!(floor(2), (1 << 32) + 1);
        assert_eq!(floor(3), (2 << 32) + 1);
        assert!(floor(1000) > floor(999) + (1 << 31));
    }
}
