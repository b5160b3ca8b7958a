//! Spawns: every one recorded before the gateway is asked, updated as it runs. The status
//! column holds one of [`SpawnStatus`]'s names; anything else read back is damage, not a status.

use diesel::prelude::*;
use gateway_supervisor_actors::model::GatewayId;
use serde::Serialize;

use super::schema::spawns;
use super::{DbError, Store, is_unique_violation, unix_now};
use crate::domain::{SpawnId, SpawnStatus};

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = spawns)]
pub struct SpawnRow {
    #[diesel(deserialize_as = String)]
    pub id: SpawnId,
    pub gateway_id: Option<GatewayId>,
    pub agent: Option<String>,
    pub method: String,
    /// The request as given, without environment values.
    pub request: String,
    #[serde(skip)]
    pub idempotency_key: Option<String>,
    pub run_id: Option<String>,
    pub session_key: Option<String>,
    #[diesel(deserialize_as = String)]
    pub status: SpawnStatus,
    pub result: Option<String>,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

pub struct NewSpawn<'a> {
    pub id: &'a SpawnId,
    pub gateway_id: GatewayId,
    pub agent: Option<&'a str>,
    pub method: &'a str,
    pub request: &'a str,
    pub idempotency_key: Option<&'a str>,
}

/// What a finished (or progressing) spawn learned.
#[derive(Default)]
pub struct SpawnUpdate {
    pub run_id: Option<String>,
    pub session_key: Option<String>,
    pub status: Option<SpawnStatus>,
    pub result: Option<String>,
    pub error: Option<String>,
    pub finished: bool,
}

/// What recording a spawn did.
#[derive(Debug)]
pub enum SpawnInsert {
    /// A new spawn, recorded as `pending`.
    Created(SpawnRow),
    /// The idempotency key was used before: the first spawn, and nothing new recorded.
    Existing(SpawnRow),
}

impl Store {
    /// Records a new spawn, or finds the one that already has this idempotency key (the
    /// caller looked it up first: [`Store::spawn_by_idempotency_key`]; here only a concurrent
    /// request with the same key is met, by the unique index).
    pub fn insert_spawn(&self, new: &NewSpawn<'_>) -> Result<SpawnInsert, DbError> {
        let mut conn = self.conn()?;
        let now = unix_now();
        let inserted = diesel::insert_into(spawns::table)
            .values((
                spawns::id.eq(new.id.as_str()),
                spawns::gateway_id.eq(new.gateway_id),
                spawns::agent.eq(new.agent),
                spawns::method.eq(new.method),
                spawns::request.eq(new.request),
                spawns::idempotency_key.eq(new.idempotency_key),
                spawns::status.eq(SpawnStatus::Pending.as_str()),
                spawns::created_at.eq(now),
                spawns::updated_at.eq(now),
            ))
            .execute(&mut conn);
        match inserted {
            Ok(_) => Ok(SpawnInsert::Created(
                self.spawn(new.id)?.ok_or(DbError::NotFound)?,
            )),
            // A concurrent request with the same key won the race.
            Err(e) if is_unique_violation(&e) => {
                drop(conn);
                let key = new.idempotency_key.unwrap_or_default();
                self.spawn_by_idempotency_key(key)?
                    .map(SpawnInsert::Existing)
                    .ok_or(DbError::NotFound)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The spawn recorded under this (scoped) idempotency key, if any.
    pub fn spawn_by_idempotency_key(&self, key: &str) -> Result<Option<SpawnRow>, DbError> {
        let mut conn = self.conn()?;
        Ok(spawns::table
            .filter(spawns::idempotency_key.eq(key))
            .select(SpawnRow::as_select())
            .first(&mut conn)
            .optional()?)
    }

    pub fn spawn(&self, id: &SpawnId) -> Result<Option<SpawnRow>, DbError> {
        let mut conn = self.conn()?;
        Ok(spawns::table
            .find(id.as_str())
            .select(SpawnRow::as_select())
            .first(&mut conn)
            .optional()?)
    }

    /// Spawns newest first, filtered by status and gateway, at most `limit`; and how many
    /// matched in all.
    /// Spawns, newest first, with how many matched: of `status`, on `gateway_id`, and on one of
    /// `within` (a scoped key's gateways; `None`: any).
    pub fn list_spawns(
        &self,
        status: Option<SpawnStatus>,
        gateway_id: Option<GatewayId>,
        within: Option<&[GatewayId]>,
        limit: i64,
    ) -> Result<(Vec<SpawnRow>, i64), DbError> {
        let mut conn = self.conn()?;
        let filtered = || {
            let mut q = spawns::table.into_boxed();
            if let Some(s) = status {
                q = q.filter(spawns::status.eq(s.as_str()));
            }
            if let Some(g) = gateway_id {
                q = q.filter(spawns::gateway_id.eq(g));
            }
            if let Some(ids) = within {
                q = q.filter(spawns::gateway_id.eq_any(ids.to_vec()));
            }
            q
        };
        let rows = filtered()
            .order((spawns::created_at.desc(), spawns::id.desc()))
            .limit(limit)
            .select(SpawnRow::as_select())
            .load(&mut conn)?;
        let total = filtered().count().get_result(&mut conn)?;
        Ok((rows, total))
    }

    /// The oldest `running` spawns first (those longest without an end).
    pub fn running_spawns(&self, limit: i64) -> Result<Vec<SpawnRow>, DbError> {
        let mut conn = self.conn()?;
        Ok(spawns::table
            .filter(spawns::status.eq(SpawnStatus::Running.as_str()))
            .order((spawns::created_at.asc(), spawns::id.asc()))
            .limit(limit)
            .select(SpawnRow::as_select())
            .load(&mut conn)?)
    }

    /// The `running` spawns on gateway `gateway_id`, oldest first, at most `limit`.
    pub fn running_spawns_on(
        &self,
        gateway_id: GatewayId,
        limit: i64,
    ) -> Result<Vec<SpawnRow>, DbError> {
        let mut conn = self.conn()?;
        Ok(spawns::table
            .filter(spawns::status.eq(SpawnStatus::Running.as_str()))
            .filter(spawns::gateway_id.eq(gateway_id))
            .order((spawns::created_at.asc(), spawns::id.asc()))
            .limit(limit)
            .select(SpawnRow::as_select())
            .load(&mut conn)?)
    }

    /// Records a spawn's end only while it is still `running` (whoever records an end first
    /// wins); whether it did.
    pub fn end_if_running(
        &self,
        id: &SpawnId,
        status: SpawnStatus,
        error: Option<&str>,
    ) -> Result<bool, DbError> {
        let mut conn = self.conn()?;
        let now = unix_now();
        let n = diesel::update(
            spawns::table
                .find(id.as_str())
                .filter(spawns::status.eq(SpawnStatus::Running.as_str())),
        )
        .set((
            spawns::status.eq(status.as_str()),
            spawns::error.eq(error),
            spawns::finished_at.eq(now),
            spawns::updated_at.eq(now),
        ))
        .execute(&mut conn)?;
        Ok(n == 1)
    }

    pub fn update_spawn(&self, id: &SpawnId, u: SpawnUpdate) -> Result<(), DbError> {
        let mut conn = self.conn()?;
        let now = unix_now();
        diesel::update(spawns::table.find(id.as_str()))
            .set((
                u.run_id.map(|v| spawns::run_id.eq(v)),
                u.session_key.map(|v| spawns::session_key.eq(v)),
                u.status.map(|v| spawns::status.eq(v.as_str())),
                u.result.map(|v| spawns::result.eq(v)),
                u.error.map(|v| spawns::error.eq(v)),
                u.finished.then_some(spawns::finished_at.eq(now)),
                spawns::updated_at.eq(now),
            ))
            .execute(&mut conn)?;
        Ok(())
    }
}
