//! Fleet operations as stored: the kind, the state, the parameters and each gateway's progress
//! (JSON), and a version bumped by every write. A step is recorded only over the version it was
//! decided on ([`Store::advance_operation`]), so two instances never
//! both record a step; the loser reads the row again.

use diesel::prelude::*;

use super::schema::operations;
use super::{DbError, Store, unix_now};

use crate::domain::OperationId;
use crate::domain::operation::{GatewayProgress, OperationKind, OperationParams, OperationState};
use gateway_supervisor_actors::model::{Caller, GatewayId};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = operations)]
struct Row {
    id: String,
    kind: String,
    state: String,
    params: String,
    progress: String,
    created_by: String,
    api_key_id: Option<i64>,
    created_at: i64,
    updated_at: i64,
    finished_at: Option<i64>,
    version: i64,
    detail: Option<String>,
}

/// An operation as read back.
#[derive(Debug, Clone)]
pub struct Operation {
    pub id: OperationId,
    pub kind: OperationKind,
    pub state: OperationState,
    pub params: OperationParams,
    pub progress: Vec<GatewayProgress>,
    pub created_by: String,
    pub api_key_id: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    pub version: i64,
    /// Why it stopped where it did, when that needs saying (bounded).
    pub detail: Option<String>,
}

impl TryFrom<Row> for Operation {
    type Error = DbError;
    fn try_from(r: Row) -> Result<Self, DbError> {
        let damaged = |_| DbError::Damaged("an operation row");
        let kind: OperationKind = r
            .kind
            .parse()
            .map_err(|_| DbError::Damaged("an operation's kind"))?;
        Ok(Operation {
            kind,
            state: r
                .state
                .parse()
                .map_err(|_| DbError::Damaged("an operation's state"))?,
            // Stored flat, every kind's fields side by side (as every daemon stored them).
            params: OperationParams::from_record(
                kind,
                serde_json::from_str(&r.params).map_err(damaged)?,
            ),
            progress: serde_json::from_str(&r.progress).map_err(damaged)?,
            id: r.id.into(),
            created_by: r.created_by,
            api_key_id: r.api_key_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
            finished_at: r.finished_at,
            version: r.version,
            detail: r.detail,
        })
    }
}

/// Why a new operation was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum NewOperationError {
    /// A running operation already holds one of its gateways.
    #[error("gateway {gateway_id} is already in running operation {operation_id}")]
    Busy {
        gateway_id: GatewayId,
        operation_id: OperationId,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for NewOperationError {
    fn from(e: diesel::result::Error) -> Self {
        NewOperationError::Db(e.into())
    }
}

fn json_text<T: serde::Serialize>(value: &T) -> Result<String, DbError> {
    serde_json::to_string(value)
        .map_err(|_| DbError::Damaged("an operation that cannot be written"))
}

/// Records a new running operation (with its audit row) in transaction `conn`, unless a running
/// one already holds one of its gateways.
fn insert(
    conn: &mut super::DbConn,
    id: &OperationId,
    kind: OperationKind,
    params: &OperationParams,
    progress: &[GatewayProgress],
    by: &Caller,
) -> Result<Row, NewOperationError> {
    let params_text = json_text(&params.record())?;
    let progress_text = json_text(&progress)?;
    super::lock_for_write(conn).map_err(DbError::from)?;
    let running: Vec<Row> = operations::table
        .filter(operations::state.eq_any(OperationState::LIVE))
        .select(Row::as_select())
        .load(conn)
        .map_err(DbError::from)?;
    for other in running {
        let other_params = other
            .kind
            .parse::<OperationKind>()
            .ok()
            .zip(serde_json::from_str(&other.params).ok())
            .map(|(k, r)| OperationParams::from_record(k, r));
        if other_params.is_some_and(|o| params.may_share_gateways_with(&o)) {
            continue;
        }
        let held: Vec<GatewayProgress> = serde_json::from_str(&other.progress)
            .map_err(|_| DbError::Damaged("an operation row"))?;
        if let Some(g) = held
            .iter()
            .find(|h| !h.step.is_over() && progress.iter().any(|p| p.gateway_id == h.gateway_id))
        {
            return Err(NewOperationError::Busy {
                gateway_id: g.gateway_id,
                operation_id: other.id.into(),
            });
        }
    }
    let now = unix_now();
    // Strictly after the newest (under the write lock): the list's order is the order
    // operations were started in, even two in one millisecond, on any instance.
    let newest: Option<i64> = operations::table
        .select(diesel::dsl::max(operations::created_ms))
        .first(conn)
        .map_err(DbError::from)?;
    let created_ms =
        gateway_supervisor_actors::unix_now_ms().max(newest.map_or(0, |n| n.saturating_add(1)));
    diesel::insert_into(operations::table)
        .values((
            operations::id.eq(id.as_str()),
            operations::kind.eq(kind.as_str()),
            operations::state.eq(OperationState::Running.as_str()),
            operations::params.eq(&params_text),
            operations::progress.eq(&progress_text),
            operations::created_by.eq(&by.label),
            operations::api_key_id.eq(by.api_key_id),
            operations::created_at.eq(now),
            operations::created_ms.eq(created_ms),
            operations::updated_at.eq(now),
            operations::version.eq(1i64),
        ))
        .execute(conn)
        .map_err(DbError::from)?;
    let row = operations::table
        .find(id.as_str())
        .select(Row::as_select())
        .first(conn)
        .map_err(DbError::from)?;
    let ids: Vec<GatewayId> = progress.iter().map(|p| p.gateway_id).collect();
    super::audit::record(
        conn,
        by,
        &format!("operation.{}", kind.as_str()),
        "operation",
        Some(id.to_string()),
        Some(&serde_json::json!({"gateways": ids, "params": params.record()})),
    )
    .map_err(DbError::from)?;
    Ok(row)
}

impl Store {
    /// Records a new running operation (with its audit row), unless a running one already
    /// holds one of its gateways.
    pub fn insert_operation(
        &self,
        id: &OperationId,
        kind: OperationKind,
        params: &OperationParams,
        progress: &[GatewayProgress],
        by: &Caller,
    ) -> Result<Operation, NewOperationError> {
        let mut conn = self.conn()?;
        let row = crate::db::write_tx::<Row, NewOperationError, _>(&mut conn, |conn| {
            insert(conn, id, kind, params, progress, by)
        })?;
        Ok(row.try_into()?)
    }

    /// Records a new operation together with what `with` writes (its own rows) in one
    /// transaction: a config rollout's patch (`config_rollouts.rs`).
    pub fn insert_operation_with(
        &self,
        id: &OperationId,
        kind: OperationKind,
        (params, progress): (&OperationParams, &[GatewayProgress]),
        by: &Caller,
        with: impl FnOnce(&mut super::DbConn) -> Result<(), DbError>,
    ) -> Result<Operation, NewOperationError> {
        let mut conn = self.conn()?;
        let op = crate::db::write_tx::<Row, NewOperationError, _>(&mut conn, |conn| {
            let op = insert(conn, id, kind, params, progress, by)?;
            with(conn)?;
            Ok(op)
        })?;
        Ok(op.try_into()?)
    }

    /// An operator's cancel: a running operation becomes `cancelling` (the runner carries it
    /// out), audited. Returns the operation as it is after (unchanged when it was not running),
    /// `None` when there is none.
    pub fn cancel_operation(
        &self,
        id: &OperationId,
        by: &Caller,
    ) -> Result<Option<Operation>, DbError> {
        let mut conn = self.conn()?;
        crate::db::write_tx::<Option<Operation>, DbError, _>(&mut conn, |conn| {
            let cancelled = diesel::update(
                operations::table
                    .filter(operations::id.eq(id.as_str()))
                    .filter(operations::state.eq_any(OperationState::CANCELLABLE)),
            )
            .set((
                operations::state.eq(OperationState::Cancelling.as_str()),
                operations::updated_at.eq(unix_now()),
                operations::version.eq(operations::version + 1),
            ))
            .execute(conn)?;
            if cancelled == 1 {
                super::audit::record(
                    conn,
                    by,
                    "operation.cancel",
                    "operation",
                    Some(id.to_string()),
                    None,
                )?;
            }
            operations::table
                .find(id.as_str())
                .select(Row::as_select())
                .first(conn)
                .optional()?
                .map(Operation::try_from)
                .transpose()
        })
    }

    pub fn operation(&self, id: &OperationId) -> Result<Option<Operation>, DbError> {
        let mut conn = self.conn()?;
        operations::table
            .find(id.as_str())
            .select(Row::as_select())
            .first(&mut conn)
            .optional()?
            .map(Operation::try_from)
            .transpose()
    }

    /// The newest operations first (in the order they were started), at most `limit`.
    pub fn operations(&self, limit: i64) -> Result<Vec<Operation>, DbError> {
        let mut conn = self.conn()?;
        operations::table
            .order(operations::created_ms.desc())
            .limit(limit)
            .select(Row::as_select())
            .load(&mut conn)?
            .into_iter()
            .map(Operation::try_from)
            .collect()
    }

    /// Every operation still carried out (running or cancelling), oldest first.
    pub fn running_operations(&self) -> Result<Vec<Operation>, DbError> {
        let mut conn = self.conn()?;
        operations::table
            .filter(operations::state.eq_any(OperationState::LIVE))
            .order(operations::created_ms.asc())
            .select(Row::as_select())
            .load(&mut conn)?
            .into_iter()
            .map(Operation::try_from)
            .collect()
    }

    /// The live operations that hold gateway `id` (its step there is not over), oldest first:
    /// what refuses an action on it, or names the drain that suspends it.
    pub fn operations_holding(&self, id: GatewayId) -> Result<Vec<Operation>, DbError> {
        Ok(self
            .running_operations()?
            .into_iter()
            .filter(|op| {
                op.progress
                    .iter()
                    .any(|p| p.gateway_id == id && !p.step.is_over())
            })
            .collect())
    }

    /// Records `op`'s progress and state over `op.version` (bumping it); `false` when someone
    /// wrote it since (nothing written: read it again). An audit row goes with a final state.
    pub fn advance_operation(&self, op: &Operation) -> Result<bool, DbError> {
        let mut conn = self.conn()?;
        let progress = json_text(&op.progress)?;
        let now = unix_now();
        let over = !op.state.is_live();
        crate::db::write_tx::<bool, DbError, _>(&mut conn, |conn| {
            let written = diesel::update(
                operations::table
                    .filter(operations::id.eq(op.id.as_str()))
                    .filter(operations::version.eq(op.version))
                    .filter(operations::state.eq_any(OperationState::LIVE)),
            )
            .set((
                operations::state.eq(op.state.as_str()),
                operations::progress.eq(&progress),
                operations::updated_at.eq(now),
                operations::finished_at.eq(over.then_some(now)),
                operations::version.eq(op.version + 1),
                operations::detail.eq(&op.detail),
            ))
            .execute(conn)?;
            if written == 1 && over {
                super::audit::record(
                    conn,
                    &Caller::system("operations"),
                    &format!("operation.{}", op.state.as_str()),
                    "operation",
                    Some(op.id.to_string()),
                    Some(&serde_json::json!({"kind": op.kind.as_str(), "gateways": op.progress})),
                )?;
            }
            Ok(written == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_support::sqlite_store;

    #[test]
    fn operations_started_in_the_same_second_are_listed_newest_first() {
        let (store, _dir) = sqlite_store();
        let params = crate::fleet::operation::test_builder::params();
        let by = Caller {
            api_key_id: None,
            label: "test".into(),
            tenant: None,
        };
        // Ids in descending order: listed by id, the newest would come last.
        let started: Vec<OperationId> = (0..12)
            .map(|i| OperationId::from(format!("op_{:02}", 20 - i)))
            .collect();
        for (gateway, id) in started.iter().enumerate() {
            let progress = [GatewayProgress::pending(GatewayId(gateway as i64 + 1))];
            store
                .insert_operation(id, OperationKind::Drain, &params, &progress, &by)
                .unwrap();
        }
        let listed: Vec<OperationId> = store
            .operations(100)
            .unwrap()
            .into_iter()
            .map(|op| op.id)
            .collect();
        let newest_first: Vec<OperationId> = started.iter().rev().cloned().collect();
        assert_eq!(listed, newest_first);
        let running: Vec<OperationId> = store
            .running_operations()
            .unwrap()
            .into_iter()
            .map(|op| op.id)
            .collect();
        assert_eq!(running, started, "carried out oldest first");
    }
}
