//! The gateways as an instance of a cluster reads those it does not link: from their rows, a
//! page at a time, each with who holds its lease (docs/design.md, *Cluster*, "Reading the
//! fleet"). Their tokens stay sealed — not even decrypted; a reader learns only whether a
//! shared token is stored.
//!
//! Cost: a page is one range scan of the primary key (`id > after ORDER BY id LIMIT n`) and one
//! primary-key lookup of its leases, so 100,000 gateways are 50 pages of 2,000 whatever page a
//! reader starts at (an offset would rescan every page before it).

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text};
use gateway_supervisor_actors::model::{GatewayId, GatewayRecord};

use crate::db::gateways::GatewayRow;
use crate::db::schema::gateways;
use crate::db::{DbError, Store};

/// A gateway as stored, with the instance and epoch whose lease holds it (`None`: released, or
/// a previous version's timed lease, as the change feed reads them).
#[derive(Debug)]
pub struct StoredGateway {
    pub record: GatewayRecord,
    pub owner: Option<(String, u64)>,
}

/// Which gateway to read (owned: a read crosses into a blocking task).
#[derive(Debug, Clone)]
pub enum Which {
    Id(GatewayId),
    Name(String),
}

#[derive(QueryableByName)]
struct Owner {
    #[diesel(sql_type = BigInt)]
    gateway_id: GatewayId,
    #[diesel(sql_type = Text)]
    owner: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    owner_epoch: Option<i64>,
}

impl Store {
    /// Up to `limit` gateways with ids above `after` (0: from the first), by id, sealed.
    pub fn stored_gateways(
        &self,
        after: GatewayId,
        limit: i64,
    ) -> Result<Vec<StoredGateway>, DbError> {
        let (rows, owners) = self.with_pg(|c| {
            let rows: Vec<GatewayRow> = gateways::table
                .filter(gateways::id.gt(after))
                .order(gateways::id)
                .limit(limit)
                .select(GatewayRow::as_select())
                .load(c)?;
            let owners = owners_of(c, &rows)?;
            Ok((rows, owners))
        })?;
        self.stored(rows, owners)
    }

    /// The gateways in maintenance with a window that ended by Unix second `now`, by id, sealed:
    /// a handful, found by the partial index on `maintenance_until` (migration 000034), where
    /// reading the fleet for them every 5 s was 100,000 rows a round at 100,000 gateways.
    pub fn stored_maintenance_over(&self, now: i64) -> Result<Vec<StoredGateway>, DbError> {
        let (rows, owners) = self.with_pg(|c| {
            let rows: Vec<GatewayRow> = gateways::table
                .filter(gateways::maintenance_until.le(now))
                .order(gateways::id)
                .select(GatewayRow::as_select())
                .load(c)?;
            let owners = owners_of(c, &rows)?;
            Ok((rows, owners))
        })?;
        self.stored(rows, owners)
    }

    /// One gateway, by id or by name, sealed.
    pub fn stored_gateway(&self, which: &Which) -> Result<Option<StoredGateway>, DbError> {
        let (rows, owners) = self.with_pg(|c| {
            let query = gateways::table.select(GatewayRow::as_select()).into_boxed();
            let query = match which {
                Which::Id(id) => query.filter(gateways::id.eq(*id)),
                Which::Name(name) => query.filter(gateways::name.eq(name)),
            };
            let rows: Vec<GatewayRow> = query.load(c)?;
            let owners = owners_of(c, &rows)?;
            Ok((rows, owners))
        })?;
        Ok(self.stored(rows, owners)?.pop())
    }

    fn stored(
        &self,
        rows: Vec<GatewayRow>,
        owners: Vec<Owner>,
    ) -> Result<Vec<StoredGateway>, DbError> {
        let mut owners: std::collections::HashMap<GatewayId, (String, u64)> = owners
            .into_iter()
            .filter_map(|o| {
                let epoch = u64::try_from(o.owner_epoch?).ok()?;
                Some((o.gateway_id, (o.owner, epoch)))
            })
            .collect();
        rows.into_iter()
            .map(|row| {
                let record = self
                    .to_sealed_record(row)
                    .map_err(|e| DbError::Conflict(e.to_string()))?;
                let owner = owners.remove(&record.id);
                Ok(StoredGateway { record, owner })
            })
            .collect()
    }
}

/// The lease rows of `rows`' gateways.
fn owners_of(c: &mut diesel::PgConnection, rows: &[GatewayRow]) -> QueryResult<Vec<Owner>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id().get()).collect();
    diesel::sql_query(
        "SELECT gateway_id, owner, owner_epoch FROM gateway_leases WHERE gateway_id = ANY($1)",
    )
    .bind::<Array<BigInt>, _>(ids)
    .load(c)
}
