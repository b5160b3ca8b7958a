//! Managed gateways as stored (docs/design.md, *Managed gateways*): what each was asked for and
//! what its host's daemon last saw. The states are the `managed` module's; stored as its words.

use diesel::prelude::*;

use super::schema::managed_gateways;
use super::{DbError, Store};
use gateway_supervisor_actors::model::GatewayId;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = managed_gateways)]
pub struct ManagedRecord {
    pub gateway_id: GatewayId,
    pub host_id: String,
    pub version: String,
    /// `npm` (the registry) or a tarball's path.
    pub source: String,
    /// The JSON merge patch over the safe default.
    pub config: String,
    pub port: i32,
    pub desired: String,
    pub state: String,
    pub pid: Option<i64>,
    pub restarts: i32,
    pub crashes: i32,
    pub last_exit: Option<String>,
    pub detail: Option<String>,
    pub started_at_ms: Option<i64>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// What a host's daemon saw of its gateway's process.
#[derive(Debug, Clone, PartialEq, Eq, AsChangeset)]
#[diesel(table_name = managed_gateways)]
#[diesel(treat_none_as_null = true)]
pub struct ManagedStatus {
    pub state: String,
    pub pid: Option<i64>,
    pub restarts: i32,
    pub crashes: i32,
    pub last_exit: Option<String>,
    pub detail: Option<String>,
    pub started_at_ms: Option<i64>,
    pub updated_at_ms: i64,
}

impl Store {
    /// Records a new managed gateway; `false` when its host already has one on that port.
    pub fn insert_managed(&self, record: &ManagedRecord) -> Result<bool, DbError> {
        let mut conn = self.conn()?;
        match diesel::insert_into(managed_gateways::table)
            .values(record)
            .execute(&mut conn)
        {
            Ok(_) => Ok(true),
            Err(e) if super::is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub fn managed(&self, gateway_id: GatewayId) -> Result<Option<ManagedRecord>, DbError> {
        let mut conn = self.conn()?;
        Ok(managed_gateways::table
            .find(gateway_id)
            .select(ManagedRecord::as_select())
            .first(&mut conn)
            .optional()?)
    }

    /// Every managed gateway (of `host_id` when given), by id.
    pub fn managed_list(&self, host_id: Option<&str>) -> Result<Vec<ManagedRecord>, DbError> {
        let mut conn = self.conn()?;
        let mut query = managed_gateways::table
            .select(ManagedRecord::as_select())
            .order(managed_gateways::gateway_id.asc())
            .into_boxed();
        if let Some(host) = host_id {
            query = query.filter(managed_gateways::host_id.eq(host.to_owned()));
        }
        Ok(query.load(&mut conn)?)
    }

    /// Every managed gateway with its host.
    pub fn managed_hosts(&self) -> Result<Vec<(GatewayId, String)>, DbError> {
        let mut conn = self.conn()?;
        Ok(managed_gateways::table
            .select((managed_gateways::gateway_id, managed_gateways::host_id))
            .load(&mut conn)?)
    }

    /// The ports managed gateways of `host_id` hold.
    pub fn managed_ports(&self, host_id: &str) -> Result<Vec<i32>, DbError> {
        let mut conn = self.conn()?;
        Ok(managed_gateways::table
            .filter(managed_gateways::host_id.eq(host_id))
            .select(managed_gateways::port)
            .load(&mut conn)?)
    }

    pub fn set_managed_status(
        &self,
        gateway_id: GatewayId,
        status: &ManagedStatus,
    ) -> Result<(), DbError> {
        let mut conn = self.conn()?;
        diesel::update(managed_gateways::table.find(gateway_id))
            .set(status)
            .execute(&mut conn)?;
        Ok(())
    }

    pub fn set_managed_desired(
        &self,
        gateway_id: GatewayId,
        desired: &str,
    ) -> Result<bool, DbError> {
        let mut conn = self.conn()?;
        let now = gateway_supervisor_actors::unix_now_ms();
        Ok(diesel::update(managed_gateways::table.find(gateway_id))
            .set((
                managed_gateways::desired.eq(desired),
                managed_gateways::updated_at_ms.eq(now),
            ))
            .execute(&mut conn)?
            == 1)
    }

    /// The release the gateway runs (a swap records its target before starting it, and the
    /// previous one again when it puts it back).
    pub fn set_managed_release(
        &self,
        gateway_id: GatewayId,
        version: &str,
        source: &str,
    ) -> Result<(), DbError> {
        let mut conn = self.conn()?;
        let now = gateway_supervisor_actors::unix_now_ms();
        diesel::update(managed_gateways::table.find(gateway_id))
            .set((
                managed_gateways::version.eq(version),
                managed_gateways::source.eq(source),
                managed_gateways::updated_at_ms.eq(now),
            ))
            .execute(&mut conn)?;
        Ok(())
    }

    pub fn delete_managed(&self, gateway_id: GatewayId) -> Result<bool, DbError> {
        let mut conn = self.conn()?;
        Ok(diesel::delete(managed_gateways::table.find(gateway_id)).execute(&mut conn)? == 1)
    }
}

impl Store {
    /// The names of the managed gateways' gateways, by id.
    pub fn gateway_names(&self) -> Result<std::collections::HashMap<GatewayId, String>, DbError> {
        use super::schema::gateways;
        let mut conn = self.conn()?;
        let rows: Vec<(GatewayId, String)> = gateways::table
            .inner_join(managed_gateways::table.on(managed_gateways::gateway_id.eq(gateways::id)))
            .select((gateways::id, gateways::name))
            .load(&mut conn)?;
        Ok(rows.into_iter().collect())
    }
}
