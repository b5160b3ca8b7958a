//! Declared cron jobs (docs/design.md, *Cron*): the job an operator wants on every gateway a
//! selector picks, written as an operation on the one fleet engine (canaries first, paced
//! under each gateway's write limit, cancellable; `playbook.rs`), and kept so between
//! rollouts by the keeper ([`Cron::keep_declarations`]): a gateway that comes to match gets
//! the job, one that stops matching loses it, a gateway that was down over a change gets it
//! when it links again, and a single-firing job moves off a gateway that went down — each by
//! a small operation of the same kind, decided by [`rule::keep`]. The keeper carries on a
//! declaration only once its own rollout succeeded: a declaration a gateway refused is written
//! nowhere else until it is put again.

mod keeper;
mod playbook;
pub mod rule;

pub use playbook::playbook;

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::declaration::{Candidate, Declaration, Refused};
use super::{Cron, CronError};
use crate::db::cron_declarations::{DeclarationRow, DeclarationWrite, DeclaredRow};
use crate::db::operations::Operation;
use crate::domain::CronMove;
use crate::domain::operation::{KindParams, OperationParams};
use crate::fleet::FleetError;
use crate::fleet::operation::OperationOrder;
use gateway_supervisor_actors::model::{Caller, GatewayId};
use gateway_supervisor_actors::unix_now_ms;
use rule::Held;

/// Declarations kept at most (each is a label of `cron_last_success_age_seconds`).
pub const MAX_DECLARATIONS: usize = 100;
/// How long a gateway has to be written, from its start (seconds).
const DEADLINE_S: u64 = 120;
/// A declared job not in its gateway's list this long after it was written is gone (the
/// list is read again within a second or two of the gateway's `cron` event).
const MISSING_AFTER_MS: i64 = 30_000;
/// Gateways the keeper writes at once.
const KEEPER_PARALLEL: u32 = 8;

/// Why a declaration was not put or deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeclareError {
    #[error(transparent)]
    Invalid(#[from] Refused),
    #[error("no cron declaration named `{0}`")]
    NotFound(String),
    #[error("{MAX_DECLARATIONS} cron declarations are kept at most: delete one first")]
    Full,
    #[error(transparent)]
    Cron(#[from] CronError),
}

impl From<FleetError> for DeclareError {
    fn from(e: FleetError) -> Self {
        DeclareError::Cron(CronError::Fleet(e))
    }
}

/// How a declaration's rollout goes.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// The first `canary` gateways go first; a failed one stops the rest.
    pub canary: u32,
    pub max_parallel: u32,
}

/// One gateway of a declaration, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeclaredGateway {
    #[schema(value_type = i64)]
    pub gateway_id: GatewayId,
    /// The declaration's revision last written there.
    pub revision: i64,
    pub job_id: Option<String>,
    pub enabled: bool,
    /// Where its job differs from the declaration, by value (`job.schedule.expr`, …);
    /// `job` when the job is gone from the gateway.
    pub drift: Vec<String>,
    /// Why the gateway refused the last write.
    pub error: Option<String>,
    pub checked_at_ms: i64,
}

/// A declaration as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeclarationView {
    pub name: String,
    pub selector: String,
    /// The job as `cron.add` takes it.
    #[schema(value_type = Object)]
    pub job: Value,
    /// Fired by one matching gateway, moved this way; absent: by every one.
    pub single: Option<CronMove>,
    /// The gateway a single-firing job is enabled on.
    #[schema(value_type = Option<i64>)]
    pub owner_gateway_id: Option<GatewayId>,
    pub revision: i64,
    /// The rollout of this revision (`GET /api/operations/{id}`).
    pub operation_id: Option<String>,
    pub updated_by: String,
    pub updated_at_ms: i64,
    /// Each gateway it was written to.
    pub gateways: Vec<DeclaredGateway>,
    /// Gateways whose job differs from it.
    pub drifted: usize,
}

impl DeclarationView {
    fn of(row: DeclarationRow, gateways: Vec<DeclaredGateway>) -> Self {
        DeclarationView {
            drifted: gateways
                .iter()
                .filter(|g| !g.drift.is_empty() || g.error.is_some())
                .count(),
            job: serde_json::from_str(&row.job).unwrap_or(Value::Null),
            name: row.name,
            selector: row.selector,
            single: row.single,
            owner_gateway_id: row.owner_gateway_id,
            revision: row.revision,
            operation_id: row.operation_id,
            updated_by: row.updated_by,
            updated_at_ms: row.updated_at_ms,
            gateways,
        }
    }
}

impl From<DeclaredRow> for DeclaredGateway {
    fn from(r: DeclaredRow) -> Self {
        DeclaredGateway {
            drift: r.drift_paths(),
            gateway_id: r.gateway_id,
            revision: r.revision,
            job_id: r.job_id,
            enabled: r.enabled,
            error: r.error,
            checked_at_ms: r.checked_at_ms,
        }
    }
}

fn held(row: &DeclarationRow) -> Held {
    Held {
        revision: row.revision,
        deleted: row.deleted,
        single: row.single,
        owner: row.owner_gateway_id,
    }
}

impl Cron {
    /// Puts declaration `name` (`body`: `{selector, job, single?, move?}`) and starts its
    /// rollout over every gateway it picks and every gateway that carries it.
    pub async fn declare(
        &self,
        name: &str,
        body: &Value,
        pace: Pace,
        by: &Caller,
    ) -> Result<Operation, DeclareError> {
        let d = Declaration::read(name, body)?;
        let known = self.stored(|s| s.cron_declarations(true)).await?;
        let live = known.iter().filter(|k| !k.deleted).count();
        let was = known.iter().find(|k| k.name == d.name);
        if live >= MAX_DECLARATIONS && was.is_none_or(|w| w.deleted) {
            return Err(DeclareError::Full);
        }
        let states = self.hands.gateway_states();
        // A single-firing job's gateway from the start: where it fires now while that one is
        // up and still picked, else the group's acting primary, else the lowest id up.
        let owner = d.single.and_then(|_| {
            let matched: Vec<Candidate> = states
                .iter()
                .filter(|g| d.selector.matches(&g.labels))
                .map(|g| Candidate {
                    id: g.id,
                    up: g.up,
                    acting_primary: g.acting_primary,
                })
                .collect();
            let now = was
                .and_then(|w| w.owner_gateway_id)
                .filter(|o| matched.iter().any(|c| c.id == *o));
            super::declaration::owner(now, &matched)
        });
        let write = DeclarationWrite {
            name: d.name.clone(),
            selector: d.selector.to_string(),
            job: Value::Object(d.job.clone()).to_string(),
            single: d.single,
            deleted: false,
            owner,
            at_ms: unix_now_ms(),
        };
        let mut gateways: BTreeSet<GatewayId> = states
            .iter()
            .filter(|g| d.selector.matches(&g.labels))
            .map(|g| g.id)
            .collect();
        gateways.extend(self.carrying(&d.name).await?);
        self.roll_out(write, gateways.into_iter().collect(), pace, by)
            .await
    }

    /// Deletes declaration `name`: its job is removed from every gateway that carries it (a
    /// gateway down now has it removed when it links again).
    pub async fn undeclare(
        &self,
        name: &str,
        pace: Pace,
        by: &Caller,
    ) -> Result<Operation, DeclareError> {
        let owned = name.to_owned();
        let row = self
            .stored(move |s| s.cron_declaration(&owned))
            .await?
            .filter(|r| !r.deleted)
            .ok_or_else(|| DeclareError::NotFound(name.to_owned()))?;
        let write = DeclarationWrite {
            name: row.name.clone(),
            selector: row.selector.clone(),
            job: row.job.clone(),
            single: row.single,
            deleted: true,
            owner: row.owner_gateway_id,
            at_ms: unix_now_ms(),
        };
        let gateways = self.carrying(&row.name).await?;
        self.roll_out(write, gateways.into_iter().collect(), pace, by)
            .await
    }

    /// Every declaration, with its gateways.
    pub async fn declarations(&self) -> Result<Vec<DeclarationView>, CronError> {
        let (rows, declared) = self
            .stored(|s| Ok((s.cron_declarations(false)?, s.cron_declared(None)?)))
            .await?;
        let mut by_name: HashMap<String, Vec<DeclaredGateway>> = HashMap::new();
        for r in declared {
            by_name.entry(r.name.clone()).or_default().push(r.into());
        }
        Ok(rows
            .into_iter()
            .map(|row| {
                let gateways = by_name.remove(&row.name).unwrap_or_default();
                DeclarationView::of(row, gateways)
            })
            .collect())
    }

    /// Declaration `name`, with its gateways.
    pub async fn declaration(&self, name: &str) -> Result<Option<DeclarationView>, CronError> {
        let owned = name.to_owned();
        let (row, declared) = self
            .stored(move |s| {
                Ok((
                    s.cron_declaration(&owned)?.filter(|r| !r.deleted),
                    s.cron_declared(Some(&owned))?,
                ))
            })
            .await?;
        Ok(row.map(|row| DeclarationView::of(row, declared.into_iter().map(Into::into).collect())))
    }

    /// The gateways whose inventory holds declaration `name`'s job, or that it was written to.
    async fn carrying(&self, name: &str) -> Result<BTreeSet<GatewayId>, CronError> {
        let key = format!("{}:{name}", super::job::FLEET_OWNER);
        let owned = name.to_owned();
        let (jobs, declared) = self
            .stored(move |s| Ok((s.cron_jobs_declared(&key)?, s.cron_declared(Some(&owned))?)))
            .await?;
        Ok(jobs
            .into_iter()
            .chain(declared.into_iter().map(|r| r.gateway_id))
            .collect())
    }

    /// Records `write` with the operation that writes it to `gateways`.
    async fn roll_out(
        &self,
        write: DeclarationWrite,
        gateways: Vec<GatewayId>,
        pace: Pace,
        by: &Caller,
    ) -> Result<Operation, DeclareError> {
        let order = OperationOrder {
            kind: playbook::KIND,
            gateways,
            params: OperationParams {
                max_unavailable: pace.max_parallel,
                wait_ready_s: DEADLINE_S,
                abort_on_failure: true,
                canary: pace.canary,
                of: KindParams::Cron {
                    declaration: write.name.clone(),
                },
            },
        };
        let op = self
            .operations
            .start_with(order, by, move |s, id, order, progress, by| {
                s.write_cron_declaration(id, order.kind, (&order.params, progress), by, &write)
            })
            .await?;
        Ok(op)
    }
}
