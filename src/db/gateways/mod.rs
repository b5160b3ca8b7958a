//! The gateways table, behind the actors crate's `GatewayStore`. Tokens are encrypted here,
//! on the way in, bound to their gateway and its address (`tokens.rs`), and decrypted on load;
//! only ciphertext reaches the database.

mod address;
mod details;
mod record;
mod settings;
mod tokens;

use details::patch_details;
use settings::labels_json;
use tokens::{Address, Token};

use diesel::prelude::*;
use secrecy::SecretString;
use serde_json::json;

use super::schema::{gateway_health_samples, gateways};
use super::{DbConn, Store, audit, is_unique_violation, unix_now};
use gateway_supervisor_actors::labels::LabelPatch;
use gateway_supervisor_actors::messages::HealthSample;
use gateway_supervisor_actors::model::{
    Caller, GatewayId, GatewayPatch, GatewayRecord, GatewayStatus, Maintenance, NewGateway,
};
use gateway_supervisor_actors::store::{GatewaySecrets, GatewayStore, LinkRecord, StoreError};

#[derive(Queryable, Selectable)]
#[diesel(table_name = gateways)]
pub(crate) struct GatewayRow {
    id: GatewayId,
    name: String,
    host: String,
    port: i32,
    tls: bool,
    allow_insecure_tls: bool,
    token_enc: Option<Vec<u8>>,
    device_token_enc: Option<Vec<u8>>,
    is_primary: bool,
    status: String,
    last_seen: Option<i64>,
    latency: Option<i64>,
    sessions_count: i64,
    agents_count: i64,
    workspace_root: Option<String>,
    disable_device_pairing: bool,
    created_at: i64,
    updated_at: i64,
    gateway_agent_id: Option<String>,
    suspension_id: Option<String>,
    cordoned: bool,
    approvals: Option<bool>,
    labels: String,
    maintenance_reason: Option<String>,
    maintenance_by: Option<String>,
    maintenance_since: Option<i64>,
    maintenance_until: Option<i64>,
}

#[derive(Insertable)]
#[diesel(table_name = gateways)]
struct NewGatewayRow<'a> {
    name: &'a str,
    host: &'a str,
    port: i32,
    tls: bool,
    allow_insecure_tls: bool,
    token_enc: Option<Vec<u8>>,
    is_primary: bool,
    status: &'a str,
    workspace_root: Option<&'a str>,
    disable_device_pairing: bool,
    gateway_agent_id: Option<&'a str>,
    approvals: Option<bool>,
    labels: String,
    created_at: i64,
    updated_at: i64,
}

#[derive(AsChangeset)]
#[diesel(table_name = gateways)]
struct GatewayChanges {
    name: Option<String>,
    host: Option<String>,
    port: Option<i32>,
    tls: Option<bool>,
    allow_insecure_tls: Option<bool>,
    token_enc: Option<Option<Vec<u8>>>,
    device_token_enc: Option<Option<Vec<u8>>>,
    is_primary: Option<bool>,
    status: Option<String>,
    last_seen: Option<Option<i64>>,
    latency: Option<Option<i64>>,
    sessions_count: Option<i64>,
    agents_count: Option<i64>,
    workspace_root: Option<Option<String>>,
    disable_device_pairing: Option<bool>,
    gateway_agent_id: Option<Option<String>>,
    approvals: Option<Option<bool>>,
    labels: Option<String>,
    updated_at: i64,
}

impl Store {
    /// One update of gateway `id` (`set`, which returns the rows it changed) and its audit row,
    /// in one transaction; the gateway as stored afterwards.
    fn audited_update(
        &self,
        id: GatewayId,
        by: &Caller,
        action: &str,
        details: &serde_json::Value,
        set: impl FnOnce(&mut DbConn) -> QueryResult<usize>,
    ) -> Result<GatewayRecord, StoreError> {
        let mut conn = self.conn_or_err()?;
        let row = crate::db::write_tx::<_, diesel::result::Error, _>(&mut conn, |c| {
            if set(c)? == 0 {
                return Err(diesel::result::Error::NotFound);
            }
            audit::record(
                c,
                by,
                action,
                "gateway",
                Some(id.to_string()),
                Some(details),
            )?;
            select_row(c, id)
        })
        .map_err(|e| match e {
            diesel::result::Error::NotFound => StoreError::NotFound(id),
            e => StoreError::backend(e),
        })?;
        self.to_record(row)
    }

    fn conn_or_err(&self) -> Result<super::PooledConn, StoreError> {
        self.conn().map_err(StoreError::backend)
    }
}

// RETURNING of a whole row does not pass through diesel's MultiBackend; writes return the id
// and the row is read back inside the same transaction.
fn select_row(conn: &mut DbConn, id: GatewayId) -> QueryResult<GatewayRow> {
    gateways::table
        .find(id)
        .select(GatewayRow::as_select())
        .first(conn)
}

/// Unsets the current primary (other than `keep`): the first write of a primary switch, in the
/// caller's transaction. On PostgreSQL the writers of a primary queue first on one
/// transaction-scoped advisory lock, so that each demotes the primary the one before it wrote:
/// two instances of a cluster registering the first gateway of an empty fleet at once each ask
/// for a primary, and without the queue the second's demotion saw no primary (the first's was
/// not committed) and its insert broke the one-primary index (a 409 naming no real clash). On
/// SQLite the write lock already queues them.
fn demote_primary(conn: &mut DbConn, keep: Option<GatewayId>, now: i64) -> QueryResult<usize> {
    if let DbConn::Postgres(pg) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('gateway primary', 0))")
            .execute(pg)?;
    }
    let query = gateways::table.filter(gateways::is_primary.eq(true));
    match keep {
        Some(id) => diesel::update(query.filter(gateways::id.ne(id)))
            .set((gateways::is_primary.eq(false), gateways::updated_at.eq(now)))
            .execute(conn),
        None => diesel::update(query)
            .set((gateways::is_primary.eq(false), gateways::updated_at.eq(now)))
            .execute(conn),
    }
}

/// Runs a transaction again when PostgreSQL aborted it as a deadlock victim (SQLSTATE 40P01):
/// a primary switch locks two gateway rows in its own order beside the link writers' batches
/// (which lock theirs in id order), and the victim is safe to retry whole. At most three
/// attempts.
fn retry_deadlocks<T>(
    mut run: impl FnMut() -> Result<T, diesel::result::Error>,
) -> Result<T, diesel::result::Error> {
    let mut attempt = 1;
    loop {
        match run() {
            Err(diesel::result::Error::DatabaseError(_, info))
                if attempt < 3 && info.message().contains("deadlock detected") =>
            {
                attempt += 1;
            }
            other => return other,
        }
    }
}

impl Store {
    /// The rows of these gateways (those still stored), a few hundred ids a statement: far
    /// below either backend's limit on bound values.
    fn rows_of(&self, ids: &[GatewayId]) -> Result<Vec<GatewayRow>, StoreError> {
        const CHUNK: usize = 500;
        let mut conn = self.conn_or_err()?;
        let mut rows = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            rows.extend(
                gateways::table
                    .filter(gateways::id.eq_any(chunk))
                    .select(GatewayRow::as_select())
                    .load(&mut *conn)
                    .map_err(StoreError::backend)?,
            );
        }
        Ok(rows)
    }
}

impl GatewayStore for Store {
    fn load_gateways(&self, sealed: bool) -> Result<Vec<GatewayRecord>, StoreError> {
        let mut conn = self.conn_or_err()?;
        let rows = gateways::table
            .order(gateways::id)
            .select(GatewayRow::as_select())
            .load(&mut *conn)
            .map_err(StoreError::backend)?;
        if sealed {
            return rows.into_iter().map(|r| self.to_sealed_record(r)).collect();
        }
        rows.into_iter().map(|r| self.to_record(r)).collect()
    }

    fn gateway_secrets(&self, ids: &[GatewayId]) -> Result<Vec<GatewaySecrets>, StoreError> {
        Ok(self
            .rows_of(ids)?
            .into_iter()
            .map(|row| {
                let (token, device_token) = self.open_tokens(&row);
                GatewaySecrets {
                    id: row.id,
                    token,
                    device_token,
                }
            })
            .collect())
    }

    fn gateway_records(&self, ids: &[GatewayId]) -> Result<Vec<GatewayRecord>, StoreError> {
        self.rows_of(ids)?
            .into_iter()
            .map(|row| self.to_record(row))
            .collect()
    }

    fn insert_gateway(&self, new: &NewGateway, by: &Caller) -> Result<GatewayRecord, StoreError> {
        let cipher = self.cipher.clone();
        let mut conn = self.conn_or_err()?;
        let now = unix_now();
        // Refused inside the transaction (rolled back): why.
        let mut refused = None;
        let row = crate::db::write_tx::<_, diesel::result::Error, _>(&mut conn, |c| {
            if let Some(taken) = address::claim(c, &new.host, new.port, None)? {
                refused = Some(taken);
                return Err(diesel::result::Error::RollbackTransaction);
            }
            if new.is_primary {
                demote_primary(c, None, now)?;
            }
            let row = diesel::insert_into(gateways::table)
                .values(NewGatewayRow {
                    name: &new.name,
                    host: &new.host,
                    port: i32::from(new.port),
                    tls: new.tls,
                    allow_insecure_tls: new.allow_insecure_tls,
                    token_enc: None,
                    is_primary: new.is_primary,
                    status: GatewayStatus::Unknown.as_str(),
                    workspace_root: new.workspace_root.as_deref(),
                    disable_device_pairing: new.disable_device_pairing,
                    gateway_agent_id: new.gateway_agent_id.as_deref(),
                    approvals: new.approvals,
                    labels: labels_json(&new.labels),
                    created_at: now,
                    updated_at: now,
                })
                .returning(gateways::id)
                .get_result::<GatewayId>(c)?;
            let mut row = select_row(c, row)?;
            // Sealed to the gateway once it has its id, in the same transaction.
            if let Some(token) = &new.token {
                let blob = tokens::seal(&cipher, Token::Gateway, &Address::of(&row), token)
                    .map_err(|e| diesel::result::Error::QueryBuilderError(Box::new(e)))?;
                diesel::update(gateways::table.find(row.id))
                    .set(gateways::token_enc.eq(&blob))
                    .execute(c)?;
                row.token_enc = Some(blob);
            }
            let details = json!({
                "name": new.name, "host": new.host, "port": new.port, "tls": new.tls,
                "is_primary": new.is_primary, "token_set": new.token.is_some(),
                "labels": new.labels,
            });
            audit::record(
                c,
                by,
                "gateway.create",
                "gateway",
                Some(row.id.to_string()),
                Some(&details),
            )?;
            Ok(row)
        })
        .map_err(|e| {
            if let Some(taken) = refused.take() {
                taken
            } else if is_unique_violation(&e) {
                StoreError::DuplicateName(new.name.clone())
            } else {
                StoreError::backend(e)
            }
        })?;
        self.to_record(row)
    }

    fn update_gateway(
        &self,
        id: GatewayId,
        patch: &GatewayPatch,
        by: &Caller,
    ) -> Result<GatewayRecord, StoreError> {
        let cipher = self.cipher.clone();
        // A device token belongs to one gateway; pointing the record elsewhere drops it.
        let moved = patch.host.is_some() || patch.port.is_some() || patch.tls.is_some();
        let now = unix_now();
        let changes = GatewayChanges {
            name: patch.name.clone(),
            host: patch.host.clone(),
            port: patch.port.map(i32::from),
            tls: patch.tls,
            allow_insecure_tls: patch.allow_insecure_tls,
            // Sealed below, to the address the row has after the change.
            token_enc: None,
            device_token_enc: moved.then_some(None),
            is_primary: patch.is_primary,
            status: patch.status.map(|s| s.as_str().to_owned()),
            last_seen: patch.last_seen,
            latency: patch.latency,
            sessions_count: patch.sessions_count,
            agents_count: patch.agents_count,
            workspace_root: patch.workspace_root.clone(),
            disable_device_pairing: patch.disable_device_pairing,
            gateway_agent_id: patch.gateway_agent_id.clone(),
            approvals: patch.approvals,
            labels: patch.labels.as_ref().map(labels_json),
            updated_at: now,
        };
        let mut conn = self.conn_or_err()?;
        let mut refused = None;
        let row = retry_deadlocks(|| {
            crate::db::write_tx::<_, diesel::result::Error, _>(&mut conn, |c| {
                // Reads, then writes: take the write lock first (see `lock_for_write`).
                super::lock_for_write(c)?;
                let before = select_row(c, id)?;
                if patch.host.is_some() || patch.port.is_some() {
                    let host = patch.host.as_deref().unwrap_or(&before.host);
                    let port = patch
                        .port
                        .unwrap_or(u16::try_from(before.port).unwrap_or_default());
                    if let Some(taken) = address::claim(c, host, port, Some(id))? {
                        refused = Some(taken);
                        return Err(diesel::result::Error::RollbackTransaction);
                    }
                }
                if patch.is_primary == Some(true) {
                    demote_primary(c, Some(id), now)?;
                }
                diesel::update(gateways::table.find(id))
                    .set(&changes)
                    .execute(c)?;
                let mut row = select_row(c, id)?;
                let after = Address::of(&row);
                // A new token is sealed to the new address; a kept one follows an address
                // changed here (the operator's move); a cleared one is gone.
                let token_enc = match &patch.token {
                    Some(Some(token)) => Some(
                        tokens::seal(&cipher, Token::Gateway, &after, token)
                            .map_err(|e| diesel::result::Error::QueryBuilderError(Box::new(e)))?,
                    ),
                    Some(None) => None,
                    None if Address::of(&before) == after => before.token_enc.clone(),
                    None => before.token_enc.as_deref().and_then(|b| {
                        tokens::reseal(&cipher, Token::Gateway, &Address::of(&before), &after, b)
                    }),
                };
                if token_enc != row.token_enc {
                    diesel::update(gateways::table.find(id))
                        .set(gateways::token_enc.eq(&token_enc))
                        .execute(c)?;
                    row.token_enc = token_enc;
                }
                audit::record(
                    c,
                    by,
                    "gateway.update",
                    "gateway",
                    Some(id.to_string()),
                    Some(&patch_details(patch)),
                )?;
                Ok(row)
            })
        })
        .map_err(|e| match (refused.take(), e) {
            (Some(taken), _) => taken,
            (None, diesel::result::Error::NotFound) => StoreError::NotFound(id),
            (None, e) if is_unique_violation(&e) => {
                StoreError::DuplicateName(patch.name.clone().unwrap_or_default())
            }
            (None, e) => StoreError::backend(e),
        })?;
        self.to_record(row)
    }

    fn delete_gateway(&self, id: GatewayId, by: &Caller) -> Result<(), StoreError> {
        let mut conn = self.conn_or_err()?;
        crate::db::write_tx::<_, diesel::result::Error, _>(&mut conn, |c| {
            // The primary is never deleted while other gateways remain, whatever the caller
            // checked before (they would be left without one); the last gateway may go (the
            // registry refuses that but for a lost managed gateway, `primary::check_delete`).
            // The write first: it takes the write lock (SQLite), where a read first would have
            // to upgrade its lock and fail as "database is locked" beside another writer.
            let mut deleted = diesel::delete(
                gateways::table
                    .find(id)
                    .filter(gateways::is_primary.eq(false)),
            )
            .execute(c)?;
            if deleted == 0 {
                let others: i64 = gateways::table
                    .filter(gateways::id.ne(id))
                    .count()
                    .get_result(c)?;
                if others == 0 {
                    deleted = diesel::delete(gateways::table.find(id)).execute(c)?;
                }
            }
            if deleted == 0 {
                return Err(diesel::result::Error::NotFound);
            }
            audit::record(
                c,
                by,
                "gateway.delete",
                "gateway",
                Some(id.to_string()),
                None,
            )
        })
        .map_err(|e| match e {
            diesel::result::Error::NotFound => StoreError::NotFound(id),
            e => StoreError::backend(e),
        })
    }

    fn set_suspension(
        &self,
        id: GatewayId,
        suspension_id: Option<&str>,
        by: &Caller,
    ) -> Result<GatewayRecord, StoreError> {
        let (action, details) = match suspension_id {
            Some(sid) => ("gateway.suspend", serde_json::json!({"suspension_id": sid})),
            None => ("gateway.resume", serde_json::json!({})),
        };
        self.audited_update(id, by, action, &details, |c| {
            diesel::update(gateways::table.find(id))
                .set((
                    gateways::suspension_id.eq(suspension_id),
                    gateways::updated_at.eq(unix_now()),
                ))
                .execute(c)
        })
    }

    fn set_cordon(
        &self,
        id: GatewayId,
        cordoned: bool,
        by: &Caller,
    ) -> Result<GatewayRecord, StoreError> {
        let action = if cordoned {
            "gateway.cordon"
        } else {
            "gateway.uncordon"
        };
        self.audited_update(id, by, action, &serde_json::json!({}), |c| {
            diesel::update(gateways::table.find(id))
                .set((
                    gateways::cordoned.eq(cordoned),
                    gateways::updated_at.eq(unix_now()),
                ))
                .execute(c)
        })
    }

    fn set_maintenance(
        &self,
        id: GatewayId,
        maintenance: Option<&Maintenance>,
        expired_by: Option<i64>,
        by: &Caller,
    ) -> Result<Option<GatewayRecord>, StoreError> {
        self.write_maintenance(id, maintenance, expired_by, by)
    }

    fn patch_labels(
        &self,
        id: GatewayId,
        patch: &LabelPatch,
        by: &Caller,
    ) -> Result<GatewayRecord, StoreError> {
        self.merge_labels(id, patch, by)
    }

    fn save_link_records(&self, batch: &[(GatewayId, LinkRecord)]) -> Result<(), StoreError> {
        // Rows are locked in id order, whatever order the reports came in: while a gateway
        // changes hands two instances write it at once (the old owner's last report, the new
        // owner's first), and batches locking in their own orders deadlocked at 100,000
        // gateways, losing a batch each time (docs/performance.md, *Performance*).
        let mut in_order: Vec<&(GatewayId, LinkRecord)> = batch.iter().collect();
        in_order.sort_unstable_by_key(|(id, _)| *id);
        let mut conn = self.conn_or_err()?;
        retry_deadlocks(|| {
            crate::db::write_tx::<_, diesel::result::Error, _>(&mut conn, |c| {
                for (id, rec) in &in_order {
                    diesel::update(gateways::table.find(*id))
                        .set((
                            gateways::status.eq(rec.status.as_str()),
                            gateways::last_seen.eq(rec.last_seen),
                            gateways::latency.eq(rec.latency),
                            gateways::sessions_count.eq(rec.sessions_count),
                            gateways::agents_count.eq(rec.agents_count),
                        ))
                        .execute(c)?;
                }
                Ok(())
            })
        })
        .map_err(StoreError::backend)
    }

    fn save_device_token(
        &self,
        id: GatewayId,
        token: Option<&SecretString>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn_or_err()?;
        let row = select_row(&mut conn, id).map_err(StoreError::backend)?;
        let blob = token
            .map(|t| {
                tokens::seal(&self.cipher, Token::Device, &Address::of(&row), t)
                    .map_err(StoreError::backend)
            })
            .transpose()?;
        diesel::update(gateways::table.find(id))
            .set(gateways::device_token_enc.eq(blob))
            .execute(&mut *conn)
            .map_err(StoreError::backend)?;
        Ok(())
    }

    fn add_health_samples(&self, batch: &[HealthSample]) -> Result<(), StoreError> {
        let mut conn = self.conn_or_err()?;
        crate::db::write_tx::<_, diesel::result::Error, _>(&mut conn, |c| {
            for s in batch {
                diesel::insert_into(gateway_health_samples::table)
                    .values((
                        gateway_health_samples::gateway_id.eq(s.gateway_id),
                        gateway_health_samples::ts.eq(s.ts),
                        gateway_health_samples::status.eq(s.status.as_str()),
                        gateway_health_samples::latency.eq(s.latency),
                        gateway_health_samples::error.eq(s.error.as_deref()),
                    ))
                    .execute(c)?;
            }
            Ok(())
        })
        .map_err(StoreError::backend)
    }

    fn prune_health_samples(&self, before: i64) -> Result<usize, StoreError> {
        let mut conn = self.conn_or_err()?;
        diesel::delete(gateway_health_samples::table.filter(gateway_health_samples::ts.lt(before)))
            .execute(&mut *conn)
            .map_err(StoreError::backend)
    }

    fn record_audit(
        &self,
        by: &Caller,
        action: &str,
        target_id: Option<GatewayId>,
        details: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn_or_err()?;
        audit::record(
            &mut conn,
            by,
            action,
            "gateway",
            target_id.map(|id| id.to_string()),
            Some(details),
        )
        .map_err(StoreError::backend)
    }
}

#[cfg(test)]
mod tests;
