//! The audit log: who changed what, when. Rows are written inside the transaction of the change
//! they describe, so a change without its audit row cannot exist. Details never hold secrets.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::audit_log;
use super::{DbConn, DbError, Store, unix_now};
use gateway_supervisor_actors::model::Caller;

#[derive(Insertable)]
#[diesel(table_name = audit_log)]
struct NewAuditRow<'a> {
    ts: i64,
    actor: &'a str,
    api_key_id: Option<i64>,
    action: &'a str,
    target_type: &'a str,
    target_id: Option<String>,
    details: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub id: i64,
    pub ts: i64,
    pub actor: String,
    pub api_key_id: Option<i64>,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    /// JSON text describing the change (never a secret).
    pub details: Option<String>,
}

/// A tenant's part of the audit log: what its keys did, and what was done to its gateways.
#[derive(Debug, Clone, Default)]
pub struct AuditScope {
    pub key_ids: Vec<i64>,
    /// As the log names them (text).
    pub gateway_ids: Vec<String>,
}

pub fn record(
    conn: &mut DbConn,
    by: &Caller,
    action: &str,
    target_type: &str,
    target_id: Option<String>,
    details: Option<&serde_json::Value>,
) -> Result<(), diesel::result::Error> {
    diesel::insert_into(audit_log::table)
        .values(NewAuditRow {
            ts: unix_now(),
            actor: &by.label,
            api_key_id: by.api_key_id,
            action,
            target_type,
            target_id,
            details: details.map(|d| d.to_string()),
        })
        .execute(conn)
        .map(|_| ())
}

impl Store {
    /// An audit row for an action that changes nothing in the database (a spawn, a session
    /// kill, a suspend): who did what to which target.
    pub fn audit(
        &self,
        by: &Caller,
        action: &str,
        target_type: &str,
        target_id: String,
        details: &serde_json::Value,
    ) -> Result<(), DbError> {
        let mut conn = self.conn()?;
        Ok(record(
            &mut conn,
            by,
            action,
            target_type,
            Some(target_id),
            Some(details),
        )?)
    }

    /// One page of an export, oldest first: rows after id `after` made in `[since, until)`
    /// (Unix seconds), of `only` if given, at most `limit`.
    pub fn audit_page(
        &self,
        after: i64,
        since: i64,
        until: i64,
        only: Option<&AuditScope>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, DbError> {
        let mut conn = self.conn()?;
        let mut q = audit_log::table
            .filter(audit_log::id.gt(after))
            .filter(audit_log::ts.ge(since))
            .filter(audit_log::ts.lt(until))
            .into_boxed();
        if let Some(only) = only {
            q = q.filter(
                audit_log::api_key_id
                    .eq_any(only.key_ids.clone())
                    .or(audit_log::target_type
                        .eq("gateway")
                        .and(audit_log::target_id.eq_any(only.gateway_ids.clone()))),
            );
        }
        Ok(q.order(audit_log::id.asc())
            .limit(limit)
            .select(AuditRow::as_select())
            .load(&mut conn)?)
    }

    /// Newest first.
    pub fn audit_entries(&self, limit: i64) -> Result<Vec<AuditRow>, DbError> {
        let mut conn = self.conn()?;
        Ok(audit_log::table
            .order(audit_log::id.desc())
            .limit(limit)
            .select(AuditRow::as_select())
            .load(&mut conn)?)
    }
}
