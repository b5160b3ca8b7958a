//! The audit log: who changed what, when. Rows are written inside the transaction of the change
//! they describe, so a change without its audit row cannot exist. Details never hold secrets.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::{audit_log, audit_sink_cursor, gateways};
use super::{DbConn, DbError, Store, unix_now};
use gateway_supervisor_actors::labels::Labels;
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
    tenant: Option<String>,
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
    /// The tenant the row belongs to (its retention's): the gateway's it is about, else the
    /// scoped caller's; none for the platform's own actions and rows written before tenancy.
    pub tenant: Option<String>,
}

/// Whose rows a retention sweep deletes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pruned {
    /// Rows of this tenant.
    Tenant(String),
    /// Rows of no tenant, and of every tenant but these (the default retention's).
    AllBut(Vec<String>),
}

/// A tenant's part of the audit log: what its keys did, and what was done to its gateways.
#[derive(Debug, Clone, Default)]
pub struct AuditScope {
    /// The rows that name this tenant as theirs.
    pub tenant: Option<String>,
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
    let tenant = row_tenant(conn, by, target_type, target_id.as_deref())?;
    diesel::insert_into(audit_log::table)
        .values(NewAuditRow {
            tenant,
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

/// The tenant of a row about `target`: a gateway's own (read in the same transaction, so a
/// relabelling is on one side of it or the other), else the caller's scope's.
fn row_tenant(
    conn: &mut DbConn,
    by: &Caller,
    target_type: &str,
    target_id: Option<&str>,
) -> Result<Option<String>, diesel::result::Error> {
    if target_type == "gateway"
        && let Some(id) = target_id.and_then(|t| t.parse::<i64>().ok())
    {
        let labels: Option<String> = gateways::table
            .find(id)
            .select(gateways::labels)
            .first(conn)
            .optional()?;
        if let Some(labels) = labels {
            let labels: Labels = serde_json::from_str(&labels).unwrap_or_default();
            return Ok(Some(crate::tenancy::tenant_of(&labels).to_owned()));
        }
    }
    Ok(by.tenant.clone())
}

/// `q` kept to a tenant's part of the log.
fn of_scope<'a>(
    q: audit_log::BoxedQuery<'a, super::MultiBackend>,
    only: &AuditScope,
) -> audit_log::BoxedQuery<'a, super::MultiBackend> {
    let theirs = audit_log::api_key_id
        .eq_any(only.key_ids.clone())
        .or(audit_log::target_type
            .eq("gateway")
            .and(audit_log::target_id.eq_any(only.gateway_ids.clone())));
    match &only.tenant {
        Some(t) => q.filter(theirs.or(audit_log::tenant.eq(t.clone()))),
        None => q.filter(theirs),
    }
}

/// The audit sink's row in `audit_sink_cursor`.
const SINK: &str = "https";

impl Store {
    /// The last audit id the sink delivered (0: none yet; the sink's first round sets where it
    /// starts, [`Store::audit_sink_start`]).
    pub fn audit_sink_cursor(&self) -> Result<Option<i64>, DbError> {
        let mut conn = self.conn()?;
        Ok(audit_sink_cursor::table
            .find(SINK)
            .select(audit_sink_cursor::last_id)
            .first(&mut conn)
            .optional()?)
    }

    /// Starts the sink at audit id `from` (the rows after it are delivered) unless it has a
    /// cursor already.
    pub fn audit_sink_start(&self, from: i64) -> Result<(), DbError> {
        let mut conn = self.conn()?;
        let row = (
            audit_sink_cursor::name.eq(SINK),
            audit_sink_cursor::last_id.eq(from),
            audit_sink_cursor::updated_at.eq(unix_now()),
        );
        // A second instance starting it at once: the first one's start stands.
        match diesel::insert_into(audit_sink_cursor::table)
            .values(row)
            .execute(&mut conn)
        {
            Ok(_)
            | Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Moves the sink's cursor from `from` to `to`: false when another instance moved it
    /// meanwhile (a compare-and-set; the batch it sent is then a duplicate the receiver drops
    /// by id).
    pub fn audit_sink_advance(&self, from: i64, to: i64) -> Result<bool, DbError> {
        let mut conn = self.conn()?;
        let n = diesel::update(
            audit_sink_cursor::table
                .filter(audit_sink_cursor::name.eq(SINK))
                .filter(audit_sink_cursor::last_id.eq(from)),
        )
        .set((
            audit_sink_cursor::last_id.eq(to),
            audit_sink_cursor::updated_at.eq(unix_now()),
        ))
        .execute(&mut conn)?;
        Ok(n == 1)
    }

    /// The newest audit id (0: none).
    pub fn audit_last_id(&self) -> Result<i64, DbError> {
        let mut conn = self.conn()?;
        Ok(audit_log::table
            .select(diesel::dsl::max(audit_log::id))
            .first::<Option<i64>>(&mut conn)?
            .unwrap_or(0))
    }

    /// Deletes up to `batch` rows made before `before` (Unix seconds) of `which` tenants, none
    /// after id `keep_after` (rows the sink has not delivered yet); how many went.
    pub fn audit_prune(
        &self,
        which: &Pruned,
        before: i64,
        keep_after: Option<i64>,
        batch: i64,
    ) -> Result<usize, DbError> {
        let mut conn = self.conn()?;
        let mut q = audit_log::table
            .filter(audit_log::ts.lt(before))
            .select(audit_log::id)
            .order(audit_log::id.asc())
            .limit(batch)
            .into_boxed();
        if let Some(cursor) = keep_after {
            q = q.filter(audit_log::id.le(cursor));
        }
        q = match which {
            Pruned::Tenant(t) => q.filter(audit_log::tenant.eq(t.clone())),
            Pruned::AllBut(named) => q.filter(
                audit_log::tenant
                    .is_null()
                    .or(audit_log::tenant.ne_all(named.clone())),
            ),
        };
        let ids: Vec<i64> = q.load(&mut conn)?;
        if ids.is_empty() {
            return Ok(0);
        }
        Ok(
            diesel::delete(audit_log::table.filter(audit_log::id.eq_any(ids)))
                .execute(&mut conn)?,
        )
    }

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
            q = of_scope(q, only);
        }
        Ok(q.order(audit_log::id.asc())
            .limit(limit)
            .select(AuditRow::as_select())
            .load(&mut conn)?)
    }

    /// Newest first (of `only` if given).
    pub fn audit_entries(
        &self,
        limit: i64,
        only: Option<&AuditScope>,
    ) -> Result<Vec<AuditRow>, DbError> {
        let mut conn = self.conn()?;
        let mut q = audit_log::table.into_boxed();
        if let Some(only) = only {
            q = of_scope(q, only);
        }
        Ok(q.order(audit_log::id.desc())
            .limit(limit)
            .select(AuditRow::as_select())
            .load(&mut conn)?)
    }
}
