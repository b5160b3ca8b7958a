//! Disruption budgets and the ledger of admitted disruptions, as stored (docs/design.md,
//! *Disruption budgets*). The check itself is the `fleet::budget` rule's: the store runs it
//! inside the one transaction that reads the budgets, the gateways and the ledger and writes
//! the new disruption — serialized (SQLite's write lock; a transaction-scoped advisory lock on
//! PostgreSQL), so two instances cannot both spend a budget's last unit.

use diesel::prelude::*;

use super::schema::{disruption_budgets, disruptions, gateways};
use super::{DbConn, DbError, Store, audit};
use gateway_supervisor_actors::model::{Caller, GatewayId};

/// The advisory lock that serializes disruption checks on PostgreSQL.
const BUDGET_LOCK: i64 = 0x6273_6467_7476; // "bsdgtv"

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = disruption_budgets)]
#[diesel(treat_none_as_null = true)]
pub struct BudgetRecord {
    pub name: String,
    pub selector: String,
    pub max_unavailable: Option<i32>,
    pub min_available: Option<i32>,
    pub note: Option<String>,
    pub updated_at_ms: i64,
    pub updated_by: String,
}

/// An admitted disruption not yet over.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = disruptions)]
pub struct DisruptionRecord {
    pub gateway_id: GatewayId,
    pub kind: String,
    pub operation_id: Option<String>,
    pub admitted_by: String,
    pub since_ms: i64,
    pub expires_ms: i64,
}

/// A gateway as the check reads it: its labels (JSON) and whether it is in service by what is
/// stored (its status, suspension and maintenance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayState {
    pub id: GatewayId,
    pub labels: String,
    pub status: String,
    pub suspended: bool,
    pub in_maintenance: bool,
}

/// What the check sees, read in its transaction.
#[derive(Debug, Clone)]
pub struct BudgetView {
    pub budgets: Vec<BudgetRecord>,
    pub gateways: Vec<GatewayState>,
    pub disruptions: Vec<DisruptionRecord>,
}

fn serialize(conn: &mut DbConn) -> QueryResult<()> {
    match conn {
        DbConn::Postgres(c) => {
            diesel::sql_query(format!("SELECT pg_advisory_xact_lock({BUDGET_LOCK})"))
                .execute(c)
                .map(|_| ())
        }
        DbConn::Sqlite(_) => super::lock_for_write(conn),
    }
}

/// A gateway's id, labels, status, suspension and maintenance reason.
type StateRow = (GatewayId, String, String, Option<String>, Option<String>);

fn view(conn: &mut DbConn, now_ms: i64) -> QueryResult<BudgetView> {
    diesel::delete(disruptions::table.filter(disruptions::expires_ms.le(now_ms))).execute(conn)?;
    let budgets = disruption_budgets::table
        .order(disruption_budgets::name.asc())
        .select(BudgetRecord::as_select())
        .load(conn)?;
    let rows: Vec<StateRow> = gateways::table
        .select((
            gateways::id,
            gateways::labels,
            gateways::status,
            gateways::suspension_id,
            gateways::maintenance_reason,
        ))
        .load(conn)?;
    let gateways = rows
        .into_iter()
        .map(
            |(id, labels, status, suspension, maintenance)| GatewayState {
                id,
                labels,
                status,
                suspended: suspension.is_some(),
                in_maintenance: maintenance.is_some(),
            },
        )
        .collect();
    let disruptions = disruptions::table
        .select(DisruptionRecord::as_select())
        .load(conn)?;
    Ok(BudgetView {
        budgets,
        gateways,
        disruptions,
    })
}

/// Why a disruption was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum AdmitError<R> {
    /// The check refused it.
    #[error("refused")]
    Refused(R),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl<R> From<diesel::result::Error> for AdmitError<R> {
    fn from(e: diesel::result::Error) -> Self {
        AdmitError::Db(e.into())
    }
}

impl Store {
    pub fn budgets(&self) -> Result<Vec<BudgetRecord>, DbError> {
        let mut conn = self.conn()?;
        Ok(disruption_budgets::table
            .order(disruption_budgets::name.asc())
            .select(BudgetRecord::as_select())
            .load(&mut conn)?)
    }

    /// Everything a budget's state is judged from, now.
    pub fn budget_view(&self) -> Result<BudgetView, DbError> {
        let mut conn = self.conn()?;
        let now = gateway_supervisor_actors::unix_now_ms();
        Ok(crate::db::write_tx::<_, diesel::result::Error, _>(
            &mut conn,
            |c| view(c, now),
        )?)
    }

    /// Creates or replaces a budget, audited; whether it was created.
    pub fn put_budget(&self, b: &BudgetRecord, by: &Caller) -> Result<bool, DbError> {
        let mut conn = self.conn()?;
        Ok(crate::db::write_tx::<_, diesel::result::Error, _>(
            &mut conn,
            |c| {
                let updated = diesel::update(disruption_budgets::table.find(&b.name))
                    .set(b)
                    .execute(c)?;
                if updated == 0 {
                    diesel::insert_into(disruption_budgets::table)
                        .values(b)
                        .execute(c)?;
                }
                audit::record(
                    c,
                    by,
                    "budget.put",
                    "budget",
                    Some(b.name.clone()),
                    Some(
                        &serde_json::json!({"selector": b.selector, "max_unavailable": b.max_unavailable,
                                         "min_available": b.min_available}),
                    ),
                )?;
                Ok(updated == 0)
            },
        )?)
    }

    /// Deletes a budget, audited; whether there was one.
    pub fn delete_budget(&self, name: &str, by: &Caller) -> Result<bool, DbError> {
        let mut conn = self.conn()?;
        Ok(crate::db::write_tx::<_, diesel::result::Error, _>(
            &mut conn,
            |c| {
                let n = diesel::delete(disruption_budgets::table.find(name)).execute(c)?;
                if n == 1 {
                    audit::record(
                        c,
                        by,
                        "budget.delete",
                        "budget",
                        Some(name.to_owned()),
                        None,
                    )?;
                }
                Ok(n == 1)
            },
        )?)
    }

    /// Records disruption `d` if `check` admits it against what is stored now, in one
    /// serialized transaction. A gateway already in the ledger is admitted again (its entry
    /// renewed) without a check: it is out already.
    pub fn admit_disruption<R>(
        &self,
        d: &DisruptionRecord,
        check: impl FnOnce(&BudgetView) -> Result<(), R>,
    ) -> Result<(), AdmitError<R>> {
        let mut conn = self.conn()?;
        let mut check = Some(check);
        crate::db::write_tx::<_, AdmitError<R>, _>(&mut conn, |c| {
            serialize(c).map_err(DbError::from)?;
            let v = view(c, d.since_ms).map_err(DbError::from)?;
            let held = v.disruptions.iter().any(|x| x.gateway_id == d.gateway_id);
            if !held && let Some(check) = check.take() {
                check(&v).map_err(AdmitError::Refused)?;
            }
            diesel::delete(disruptions::table.find(d.gateway_id))
                .execute(c)
                .map_err(DbError::from)?;
            diesel::insert_into(disruptions::table)
                .values(d)
                .execute(c)
                .map_err(DbError::from)?;
            Ok(())
        })
    }

    /// Ends gateway `id`'s disruption (only `operation_id`'s, when given).
    pub fn release_disruption(
        &self,
        id: GatewayId,
        operation_id: Option<&str>,
    ) -> Result<bool, DbError> {
        let mut conn = self.conn()?;
        let n = match operation_id {
            Some(op) => diesel::delete(
                disruptions::table
                    .filter(disruptions::gateway_id.eq(id))
                    .filter(disruptions::operation_id.eq(op)),
            )
            .execute(&mut conn)?,
            None => diesel::delete(disruptions::table.find(id)).execute(&mut conn)?,
        };
        Ok(n == 1)
    }
}
