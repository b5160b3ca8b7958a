//! Spend budgets and their ledger, as stored (docs/design.md, *Spend*). Admission is one
//! transaction: it serializes on the budgets it checks (a transaction-scoped advisory lock per
//! budget on PostgreSQL, in a fixed order; SQLite's write lock), reads each one's tally in its
//! window, asks `domain::spend::rule::admit`, and writes the reservation — so two instances admitting
//! against the same budget see each other's reservations, and a budget is never passed by more
//! than what the runs' settled costs differ from their estimates.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::schema::{spend_budgets, spend_entries};
use super::{DbConn, DbError, Store, audit};
use crate::domain::LedgerState;
use crate::domain::spend::rule::{self, Breach, Limits, Micros, Tally};
use crate::domain::spend::window::{self, Window};
use gateway_supervisor_actors::model::{Caller, GatewayId};

/// A budget as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = spend_budgets)]
#[diesel(treat_none_as_null = true)]
pub struct SpendBudgetRecord {
    /// `key:<id>` or `tenant:<name>`.
    pub subject: String,
    pub time_window: String,
    pub time_zone: String,
    /// `YYYY-MM-DD`: the day it was set, in its time zone.
    pub anchor_day: String,
    pub max_spend_micros: Option<i64>,
    pub soft_spend_micros: Option<i64>,
    pub max_runs: Option<i64>,
    pub max_parallel_runs: Option<i64>,
    pub estimate_micros: i64,
    /// `{agent: micros}`.
    pub agent_estimates: String,
    pub fail_closed: bool,
    pub updated_at: i64,
    pub updated_by: String,
}

impl SpendBudgetRecord {
    fn limits(&self) -> Limits {
        Limits {
            max_spend: self.max_spend_micros,
            max_runs: self.max_runs,
            max_parallel: self.max_parallel_runs,
        }
    }

    /// The estimate of a run of `agent` (its override, else the budget's).
    pub fn estimate_for(&self, agent: Option<&str>) -> Micros {
        agent
            .and_then(|a| {
                serde_json::from_str::<std::collections::BTreeMap<String, i64>>(
                    &self.agent_estimates,
                )
                .ok()?
                .get(a)
                .copied()
            })
            .unwrap_or(self.estimate_micros)
    }

    /// The window holding `now`: start and reset (Unix seconds). A stored zone or anchor that
    /// does not read back is damage: the error names it.
    pub fn window_at(&self, now: i64) -> Result<(i64, i64), DbError> {
        let damaged = |what: &'static str| DbError::Damaged(what);
        let w =
            Window::parse(&self.time_window).ok_or_else(|| damaged("a spend budget's window"))?;
        let tz =
            window::zone(&self.time_zone).map_err(|_| damaged("a spend budget's time zone"))?;
        let anchor: jiff::civil::Date = self
            .anchor_day
            .parse()
            .map_err(|_| damaged("a spend budget's anchor day"))?;
        w.bounds(now, &tz, anchor)
            .map_err(|_| damaged("a spend budget's window bounds"))
    }
}

/// A spawn's ledger row, as the cost report reads it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = spend_entries)]
pub struct SpendEntry {
    pub key_id: Option<i64>,
    pub tenant: String,
    pub agent: Option<String>,
    pub gateway_id: i64,
    #[diesel(deserialize_as = String)]
    pub state: LedgerState,
    pub estimate_micros: i64,
    pub cost_micros: Option<i64>,
    pub estimated: bool,
    pub created_at: i64,
}

/// A budget, its ledger in the window holding now, and that window (start, reset).
pub type BudgetNow = (SpendBudgetRecord, Tally, (i64, i64));

/// Whose spend a budget counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Key(i64),
    Tenant(String),
}

impl Subject {
    /// A subject as stored (`key:<id>`, `tenant:<name>`); `None` for text that is neither.
    pub fn read(stored: &str) -> Option<Subject> {
        match stored.split_once(':')? {
            ("key", id) => id.parse().ok().map(Subject::Key),
            ("tenant", t) => Some(Subject::Tenant(t.to_owned())),
            _ => None,
        }
    }

    pub fn stored(&self) -> String {
        match self {
            Subject::Key(id) => format!("key:{id}"),
            Subject::Tenant(t) => format!("tenant:{t}"),
        }
    }
}

/// One spawn asking to be admitted.
#[derive(Debug, Clone)]
pub struct SpendAsk {
    pub spawn_id: String,
    pub key_id: Option<i64>,
    pub tenant: String,
    pub agent: Option<String>,
    pub gateway_id: GatewayId,
    pub now: i64,
}

/// A budget that refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendRefusal {
    pub subject: String,
    pub breach: Breach,
    /// When its window resets (Unix seconds).
    pub reset_at: i64,
    pub tally: Tally,
    pub estimate: Micros,
    pub max_spend_micros: Option<i64>,
}

/// What admission did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Reserved (`estimate` held: the largest of the budgets' estimates, 0 with none); the
    /// budgets whose soft limit this reservation crossed.
    Admitted {
        estimate: Micros,
        soft_crossed: Vec<String>,
    },
    Refused(SpendRefusal),
}

/// The budgets of `subjects` that exist, locked for this transaction, in subject order.
fn locked(conn: &mut DbConn, subjects: &[String]) -> QueryResult<Vec<SpendBudgetRecord>> {
    let mut sorted = subjects.to_vec();
    sorted.sort();
    match conn {
        DbConn::Postgres(c) => {
            for s in &sorted {
                diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7541))")
                    .bind::<Text, _>(s)
                    .execute(c)?;
            }
        }
        DbConn::Sqlite(_) => super::lock_for_write(conn)?,
    }
    spend_budgets::table
        .filter(spend_budgets::subject.eq_any(&sorted))
        .order(spend_budgets::subject.asc())
        .select(SpendBudgetRecord::as_select())
        .load(conn)
}

#[derive(QueryableByName)]
struct TallyRow {
    #[diesel(sql_type = BigInt)]
    spent: i64,
    #[diesel(sql_type = BigInt)]
    reserved: i64,
    #[diesel(sql_type = BigInt)]
    runs: i64,
    #[diesel(sql_type = BigInt)]
    running: i64,
}

/// The ledger of `subject` in `[start, end)`; `running` counts every run not settled, whenever
/// it started.
fn tally(conn: &mut DbConn, subject: &str, start: i64, end: i64) -> QueryResult<Tally> {
    // A key's rows by its id (a number on PostgreSQL), a tenant's by its name.
    let (column, value, cast) = match Subject::read(subject) {
        Some(Subject::Key(id)) => ("key_id", id.to_string(), "::bigint"),
        Some(Subject::Tenant(t)) => ("tenant", t, ""),
        None => return Err(diesel::result::Error::NotFound),
    };
    let (reserved, settled, released) = (
        LedgerState::Reserved.as_str(),
        LedgerState::Settled.as_str(),
        LedgerState::Released.as_str(),
    );
    let text = |p: [&str; 3]| {
        format!(
            "SELECT \
             CAST(COALESCE(SUM(CASE WHEN state = '{settled}' AND created_at >= {s} AND created_at < {e} \
                  THEN COALESCE(cost_micros, estimate_micros) ELSE 0 END), 0) AS BIGINT) AS spent, \
             CAST(COALESCE(SUM(CASE WHEN state = '{reserved}' AND created_at >= {s} AND created_at < {e} \
                  THEN estimate_micros ELSE 0 END), 0) AS BIGINT) AS reserved, \
             CAST(COUNT(CASE WHEN state <> '{released}' AND created_at >= {s} AND created_at < {e} \
                  THEN 1 END) AS BIGINT) AS runs, \
             CAST(COUNT(CASE WHEN state = '{reserved}' THEN 1 END) AS BIGINT) AS running \
             FROM spend_entries WHERE {column} = {v}",
            s = p[1],
            e = p[2],
            v = p[0]
        )
    };
    let row: TallyRow = match conn {
        DbConn::Postgres(c) => {
            let first = format!("$1{cast}");
            diesel::sql_query(text([&first, "$2", "$3"]))
                .bind::<Text, _>(&value)
                .bind::<BigInt, _>(start)
                .bind::<BigInt, _>(end)
                .get_result(c)?
        }
        DbConn::Sqlite(c) => diesel::sql_query(text(["?1", "?2", "?3"]))
            .bind::<Text, _>(&value)
            .bind::<BigInt, _>(start)
            .bind::<BigInt, _>(end)
            .get_result(c)?,
    };
    Ok(Tally {
        spent_micros: row.spent,
        reserved_micros: row.reserved,
        runs: row.runs,
        running: row.running,
    })
}

impl Store {
    /// Admits a spawn against the budgets of its key and tenant and writes its ledger row
    /// (reserved), or says which budget refuses; in one serialized transaction.
    pub fn reserve_spend(&self, ask: &SpendAsk) -> Result<Admission, DbError> {
        let mut subjects = vec![Subject::Tenant(ask.tenant.clone()).stored()];
        if let Some(k) = ask.key_id {
            subjects.push(Subject::Key(k).stored());
        }
        let mut conn = self.conn()?;
        crate::db::write_tx::<_, DbError, _>(&mut conn, |c| {
            let budgets = locked(c, &subjects)?;
            let estimate = budgets
                .iter()
                .map(|b| b.estimate_for(ask.agent.as_deref()))
                .max()
                .unwrap_or(0);
            let mut soft_crossed = Vec::new();
            for b in &budgets {
                let (start, end) = b.window_at(ask.now)?;
                let t = tally(c, &b.subject, start, end)?;
                if let Err(breach) = rule::admit(b.limits(), t, estimate) {
                    return Ok(Admission::Refused(SpendRefusal {
                        subject: b.subject.clone(),
                        breach,
                        reset_at: end,
                        tally: t,
                        estimate,
                        max_spend_micros: b.max_spend_micros,
                    }));
                }
                if rule::crossed_soft(b.soft_spend_micros, t, estimate) {
                    soft_crossed.push(b.subject.clone());
                }
            }
            diesel::insert_into(spend_entries::table)
                .values((
                    spend_entries::spawn_id.eq(&ask.spawn_id),
                    spend_entries::key_id.eq(ask.key_id),
                    spend_entries::tenant.eq(&ask.tenant),
                    spend_entries::agent.eq(ask.agent.as_deref()),
                    spend_entries::gateway_id.eq(ask.gateway_id.get()),
                    spend_entries::state.eq(LedgerState::Reserved.as_str()),
                    spend_entries::estimate_micros.eq(estimate),
                    spend_entries::estimated.eq(true),
                    spend_entries::created_at.eq(ask.now),
                ))
                .execute(c)?;
            Ok(Admission::Admitted {
                estimate,
                soft_crossed,
            })
        })
    }

    /// Settles a spawn's reservation: `cost` is the gateway's own number (`None`: it gave
    /// none, the estimate stands, `estimated`). A spawn settled or released already is left.
    pub fn settle_spend(
        &self,
        spawn_id: &str,
        cost: Option<Micros>,
        now: i64,
    ) -> Result<(), DbError> {
        self.end_reservation(spawn_id, LedgerState::Settled, cost, now)
    }

    /// Gives a reservation back: the run never started.
    pub fn release_spend(&self, spawn_id: &str, now: i64) -> Result<(), DbError> {
        self.end_reservation(spawn_id, LedgerState::Released, None, now)
    }

    /// Moves a spawn's row from `reserved` to `state` (once: a row already ended is left).
    fn end_reservation(
        &self,
        spawn_id: &str,
        state: LedgerState,
        cost: Option<Micros>,
        now: i64,
    ) -> Result<(), DbError> {
        let mut conn = self.conn()?;
        diesel::update(
            spend_entries::table
                .filter(spend_entries::spawn_id.eq(spawn_id))
                .filter(spend_entries::state.eq(LedgerState::Reserved.as_str())),
        )
        .set((
            spend_entries::state.eq(state.as_str()),
            spend_entries::cost_micros.eq(cost),
            spend_entries::estimated.eq(cost.is_none()),
            spend_entries::settled_at.eq(now),
        ))
        .execute(&mut conn)?;
        Ok(())
    }

    /// The ledger rows of spawns made in `[from, to)` (Unix seconds), on the gateways `within`
    /// names (`None`: all), at most `limit`, oldest first.
    pub fn spend_entries(
        &self,
        from: i64,
        to: i64,
        within: Option<&[GatewayId]>,
        limit: i64,
    ) -> Result<Vec<SpendEntry>, DbError> {
        let mut conn = self.conn()?;
        let mut q = spend_entries::table
            .filter(spend_entries::created_at.ge(from))
            .filter(spend_entries::created_at.lt(to))
            .filter(spend_entries::state.ne(LedgerState::Released.as_str()))
            .into_boxed();
        if let Some(ids) = within {
            q = q.filter(
                spend_entries::gateway_id.eq_any(ids.iter().map(|g| g.get()).collect::<Vec<_>>()),
            );
        }
        Ok(q.order(spend_entries::id.asc())
            .limit(limit)
            .select(SpendEntry::as_select())
            .load(&mut conn)?)
    }

    /// Every budget with its ledger in the window holding `now` (and that window).
    pub fn spend_budgets(&self, now: i64) -> Result<Vec<BudgetNow>, DbError> {
        let mut conn = self.conn()?;
        let budgets = spend_budgets::table
            .order(spend_budgets::subject.asc())
            .select(SpendBudgetRecord::as_select())
            .load(&mut conn)?;
        budgets
            .into_iter()
            .map(|b| {
                let w = b.window_at(now)?;
                let t = tally(&mut conn, &b.subject, w.0, w.1)?;
                Ok((b, t, w))
            })
            .collect()
    }

    /// Sets a budget (whole), audited.
    pub fn put_spend_budget(&self, b: &SpendBudgetRecord, by: &Caller) -> Result<(), DbError> {
        let mut conn = self.conn()?;
        crate::db::write_tx::<_, DbError, _>(&mut conn, |c| {
            let updated = diesel::update(spend_budgets::table.find(&b.subject))
                .set(b)
                .execute(c)?;
            if updated == 0 {
                diesel::insert_into(spend_budgets::table)
                    .values(b)
                    .execute(c)?;
            }
            let details = serde_json::json!({
                "window": b.time_window, "time_zone": b.time_zone,
                "max_spend_micros": b.max_spend_micros, "soft_spend_micros": b.soft_spend_micros,
                "max_runs": b.max_runs, "max_parallel_runs": b.max_parallel_runs,
                "estimate_micros": b.estimate_micros, "fail_closed": b.fail_closed,
            });
            audit::record(
                c,
                by,
                "spend_budget.put",
                "spend_budget",
                Some(b.subject.clone()),
                Some(&details),
            )?;
            Ok(())
        })
    }

    /// Removes a budget, audited; whether there was one.
    pub fn delete_spend_budget(&self, subject: &str, by: &Caller) -> Result<bool, DbError> {
        let mut conn = self.conn()?;
        crate::db::write_tx::<_, DbError, _>(&mut conn, |c| {
            let n = diesel::delete(spend_budgets::table.find(subject)).execute(c)?;
            if n > 0 {
                audit::record(
                    c,
                    by,
                    "spend_budget.delete",
                    "spend_budget",
                    Some(subject.to_owned()),
                    None,
                )?;
            }
            Ok(n > 0)
        })
    }

    /// The budget of `subject`, if set.
    pub fn spend_budget(&self, subject: &str) -> Result<Option<SpendBudgetRecord>, DbError> {
        let mut conn = self.conn()?;
        Ok(spend_budgets::table
            .find(subject)
            .select(SpendBudgetRecord::as_select())
            .first(&mut conn)
            .optional()?)
    }
}
