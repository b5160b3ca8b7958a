//! Declared cron jobs (docs/design.md, *Cron*): each declaration as an operator last put it,
//! with its revision and the rollout that wrote it, and what each gateway was last written
//! and read back as. A declaration and its rollout are recorded in one transaction (a PUT
//! that cannot start its rollout stores nothing); the single gateway of a single-firing job
//! moves by compare-and-set, so two instances never pick two owners.

use diesel::prelude::*;

use super::operations::NewOperationError;
use super::schema::{cron_declarations, cron_declared};
use super::{DbError, Store, write_tx};
use crate::db::operations::Operation;
use crate::domain::operation::{GatewayProgress, OperationKind, OperationParams};
use crate::domain::{CronMove, OperationId};
use gateway_supervisor_actors::model::{Caller, GatewayId};

/// A declaration as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = cron_declarations)]
pub struct DeclarationRow {
    pub name: String,
    pub selector: String,
    /// JSON: the job as `cron.add` takes it, without `declarationKey` and `enabled`.
    pub job: String,
    #[diesel(deserialize_as = OptionalMove)]
    pub single: Option<CronMove>,
    pub owner_gateway_id: Option<GatewayId>,
    pub revision: i64,
    pub deleted: bool,
    pub operation_id: Option<String>,
    pub updated_by: String,
    pub updated_at_ms: i64,
}

/// A stored `single` read as its word (an unknown one as every gateway's: never two owners
/// from a word this daemon cannot read).
pub struct OptionalMove(Option<CronMove>);

impl From<OptionalMove> for Option<CronMove> {
    fn from(m: OptionalMove) -> Self {
        m.0
    }
}

impl<DB> Queryable<diesel::sql_types::Nullable<diesel::sql_types::Text>, DB> for OptionalMove
where
    DB: diesel::backend::Backend,
    Option<String>:
        diesel::deserialize::FromSql<diesel::sql_types::Nullable<diesel::sql_types::Text>, DB>,
{
    type Row = Option<String>;
    fn build(row: Option<String>) -> diesel::deserialize::Result<Self> {
        Ok(OptionalMove(row.and_then(|w| w.parse().ok())))
    }
}

/// What a PUT or a DELETE records.
#[derive(Debug, Clone)]
pub struct DeclarationWrite {
    pub name: String,
    pub selector: String,
    pub job: String,
    pub single: Option<CronMove>,
    /// A DELETE: the declaration becomes a tombstone.
    pub deleted: bool,
    /// A single-firing job's gateway.
    pub owner: Option<GatewayId>,
    pub at_ms: i64,
}

/// One gateway of a declaration, as last written and read back.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = cron_declared)]
pub struct DeclaredRow {
    pub name: String,
    pub gateway_id: GatewayId,
    pub revision: i64,
    pub job_id: Option<String>,
    pub enabled: bool,
    pub config_revision: Option<String>,
    /// JSON array of paths.
    pub drift: String,
    pub error: Option<String>,
    pub checked_at_ms: i64,
}

impl DeclaredRow {
    /// The paths where the gateway's job differs from the declaration.
    pub fn drift_paths(&self) -> Vec<String> {
        serde_json::from_str(&self.drift).unwrap_or_default()
    }
}

impl Store {
    /// Records `write` (its revision the stored one's plus one, or 1) with the operation that
    /// carries it out, in one transaction.
    pub fn write_cron_declaration(
        &self,
        id: &OperationId,
        kind: OperationKind,
        (params, progress): (&OperationParams, &[GatewayProgress]),
        by: &Caller,
        write: &DeclarationWrite,
    ) -> Result<Operation, NewOperationError> {
        self.insert_operation_with(id, kind, (params, progress), by, |c| {
            let was = cron_declarations::table
                .find(&write.name)
                .select(cron_declarations::revision)
                .first::<i64>(c)
                .optional()?;
            let values = (
                cron_declarations::selector.eq(&write.selector),
                cron_declarations::job.eq(&write.job),
                cron_declarations::single.eq(write.single.map(|m| m.as_str())),
                cron_declarations::revision.eq(was.map_or(1, |r| r + 1)),
                cron_declarations::owner_gateway_id.eq(write.owner),
                cron_declarations::deleted.eq(write.deleted),
                cron_declarations::operation_id.eq(id.as_str()),
                cron_declarations::updated_by.eq(&by.label),
                cron_declarations::updated_at_ms.eq(write.at_ms),
            );
            if was.is_some() {
                diesel::update(cron_declarations::table.find(&write.name))
                    .set(values)
                    .execute(c)?;
            } else {
                diesel::insert_into(cron_declarations::table)
                    .values((cron_declarations::name.eq(&write.name), values))
                    .execute(c)?;
            }
            Ok(())
        })
    }

    /// Every declaration (tombstones too with `deleted`), by name.
    pub fn cron_declarations(&self, deleted: bool) -> Result<Vec<DeclarationRow>, DbError> {
        let mut conn = self.conn()?;
        let mut q = cron_declarations::table
            .select(DeclarationRow::as_select())
            .order(cron_declarations::name)
            .into_boxed();
        if !deleted {
            q = q.filter(cron_declarations::deleted.eq(false));
        }
        Ok(q.load(&mut conn)?)
    }

    /// Declaration `name` (a tombstone too).
    pub fn cron_declaration(&self, name: &str) -> Result<Option<DeclarationRow>, DbError> {
        let mut conn = self.conn()?;
        Ok(cron_declarations::table
            .find(name)
            .select(DeclarationRow::as_select())
            .first(&mut conn)
            .optional()?)
    }

    /// Moves single-firing declaration `name` from gateway `from` to `to`, only if it is still
    /// on `from` at `revision`. `false`: someone else moved it first (or it changed).
    pub fn move_cron_declaration(
        &self,
        name: &str,
        revision: i64,
        from: Option<GatewayId>,
        to: GatewayId,
    ) -> Result<bool, DbError> {
        let mut conn = self.conn()?;
        write_tx::<_, DbError, _>(&mut conn, |c| {
            let now = cron_declarations::table
                .find(name)
                .select((
                    cron_declarations::revision,
                    cron_declarations::owner_gateway_id,
                ))
                .first::<(i64, Option<GatewayId>)>(c)
                .optional()?;
            if now != Some((revision, from)) {
                return Ok(false);
            }
            diesel::update(cron_declarations::table.find(name))
                .set(cron_declarations::owner_gateway_id.eq(Some(to)))
                .execute(c)?;
            Ok(true)
        })
    }

    /// Drops tombstone `name` (nothing carries its job any more).
    pub fn drop_cron_declaration(&self, name: &str) -> Result<(), DbError> {
        let mut conn = self.conn()?;
        write_tx::<_, DbError, _>(&mut conn, |c| {
            diesel::delete(
                cron_declarations::table
                    .find(name)
                    .filter(cron_declarations::deleted.eq(true)),
            )
            .execute(c)?;
            diesel::delete(cron_declared::table.filter(cron_declared::name.eq(name))).execute(c)?;
            Ok(())
        })
    }

    /// What every gateway of declaration `name` (or of every one) was last written as.
    pub fn cron_declared(&self, name: Option<&str>) -> Result<Vec<DeclaredRow>, DbError> {
        let mut conn = self.conn()?;
        let mut q = cron_declared::table
            .select(DeclaredRow::as_select())
            .order((cron_declared::name, cron_declared::gateway_id))
            .into_boxed();
        if let Some(name) = name {
            q = q.filter(cron_declared::name.eq(name));
        }
        Ok(q.load(&mut conn)?)
    }

    /// Records what gateway `row.gateway_id` was written and read back as. `false`: the
    /// gateway is gone.
    pub fn record_cron_declared(&self, row: &DeclaredRow) -> Result<bool, DbError> {
        let mut conn = self.conn()?;
        write_tx::<_, DbError, _>(&mut conn, |c| {
            let exists = diesel::select(diesel::dsl::exists(
                super::schema::gateways::table.find(row.gateway_id),
            ))
            .get_result::<bool>(c)?;
            if !exists {
                return Ok(false);
            }
            let key = (row.name.as_str(), row.gateway_id);
            if diesel::update(cron_declared::table.find(key))
                .set(row)
                .execute(c)?
                == 0
            {
                diesel::insert_into(cron_declared::table)
                    .values(row)
                    .execute(c)?;
            }
            Ok(true)
        })
    }

    /// Forgets gateway `id` of declaration `name` (its job was removed there).
    pub fn forget_cron_declared(&self, name: &str, id: GatewayId) -> Result<(), DbError> {
        let mut conn = self.conn()?;
        write_tx::<_, DbError, _>(&mut conn, |c| {
            diesel::delete(cron_declared::table.find((name, id))).execute(c)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::operation::KindParams;

    fn params(name: &str) -> OperationParams {
        OperationParams {
            max_unavailable: 4,
            wait_ready_s: 60,
            abort_on_failure: true,
            canary: 1,
            of: KindParams::Cron {
                declaration: name.into(),
            },
        }
    }

    fn write(store: &Store, op: &str, deleted: bool) -> Operation {
        let w = DeclarationWrite {
            name: "nightly".into(),
            selector: "team=a".into(),
            job: "{}".into(),
            single: Some(CronMove::Gap),
            deleted,
            owner: deleted.then_some(GatewayId(3)),
            at_ms: 5,
        };
        store
            .write_cron_declaration(
                &OperationId::from(op.to_owned()),
                OperationKind::CronDeclaration,
                (&params("nightly"), &[]),
                &Caller::system("test"),
                &w,
            )
            .unwrap()
    }

    #[test]
    fn a_declaration_counts_its_revisions_and_its_owner_moves_only_from_where_it_is() {
        let (store, _dir) = crate::db::test_support::sqlite_store();
        let op = write(&store, "op_1", false);
        assert_eq!(op.params.declaration(), Some("nightly"));
        let d = store.cron_declaration("nightly").unwrap().unwrap();
        assert_eq!(
            (d.revision, d.single, d.deleted),
            (1, Some(CronMove::Gap), false)
        );
        assert_eq!(d.operation_id.as_deref(), Some("op_1"));
        assert!(
            store
                .move_cron_declaration("nightly", 1, None, GatewayId(3))
                .unwrap()
        );
        assert!(
            !store
                .move_cron_declaration("nightly", 1, None, GatewayId(4))
                .unwrap(),
            "another instance moved it first"
        );
        write(&store, "op_2", true);
        let d = store.cron_declaration("nightly").unwrap().unwrap();
        assert_eq!(
            (d.revision, d.deleted, d.owner_gateway_id),
            (2, true, Some(GatewayId(3)))
        );
        assert!(store.cron_declarations(false).unwrap().is_empty());
        assert_eq!(store.cron_declarations(true).unwrap().len(), 1);
        store.drop_cron_declaration("nightly").unwrap();
        assert!(store.cron_declaration("nightly").unwrap().is_none());
    }
}
