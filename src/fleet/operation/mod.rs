//! Fleet operations: work over several steps and minutes that must be carried out once and
//! never left silently half-done — a drain (cordon, suspend with `drain`, watch the blockers
//! until idle), a rolling restart (for each gateway in turn: drain, restart the verified
//! process, wait until it is back and healthy, uncordon; stop at the first that fails), an
//! update hold, and a canary-first upgrade (`update.run`, followed through the gateway's own
//! run record; the rest only after the canaries are done and baked). Each is
//! stored with its progress, so it survives a daemon restart and any instance of a cluster
//! can show it (docs/design.md, *Fleet operations*). `model` is the data, `rule` and
//! `upgrade` decide, `runner` carries out.

mod abort;
mod drain;
pub mod engine;
mod hands;
mod kinds;
pub mod pace;
pub mod progress;
pub mod rule;
mod swap;
#[cfg(test)]
pub(crate) mod test_builder;
pub mod upgrade;

/// The operation's data is stored as it is shown; it lives with its storage.
pub use crate::domain::operation as model;
pub use engine::{Playbook, Round, Stepped};
pub use hands::{GatewayState, Hands};

use serde_json::json;

use super::FleetError;
use crate::db::operations::{NewOperationError, Operation};
use crate::domain::OperationId;
use crate::secrets::random_hex;
use gateway_supervisor_actors::model::{Caller, GatewayId};
use model::{GatewayProgress, OperationKind, OperationParams};
use std::sync::Arc;

use super::budget::Budgets;
use super::context::FleetContext;
use super::gateway_ops::GatewayOps;
use super::processes::Processes;
use engine::Playbooks;

/// Longest detail kept for a gateway (it may quote the gateway).
const DETAIL_MAX: usize = 300;

/// Seconds as milliseconds, saturating (a deadline far off is as good as never).
fn secs(s: u64) -> i64 {
    i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// A validated request for an operation.
#[derive(Debug, Clone)]
pub struct OperationOrder {
    pub kind: OperationKind,
    /// In the order they are to be taken; no duplicates.
    pub gateways: Vec<GatewayId>,
    pub params: OperationParams,
}

/// What asking to abort an operation's blocking runs did.
#[derive(Debug)]
pub enum AbortAsked {
    /// Marked on the gateways that are draining: the runner aborts their runs.
    Asked(Operation),
    /// The operation is not running.
    Over(Operation),
    /// None of its gateways is draining now.
    NothingDraining(Operation),
}

/// Fleet operations of every kind, stored with their progress and advanced by the one engine
/// (`engine.rs`) through each kind's playbook; owns the engine's wake-up.
#[derive(Clone)]
pub struct Operations {
    ctx: Arc<FleetContext>,
    hands: Hands,
    playbooks: Playbooks,
    /// Wakes the engine (an operation started or steered here).
    wake: Arc<tokio::sync::Notify>,
}

impl Operations {
    pub fn new(ctx: Arc<FleetContext>, gateway_ops: GatewayOps, budgets: Budgets) -> Self {
        let playbooks = Playbooks::default();
        for playbook in kinds::builtin() {
            playbooks.add(playbook);
        }
        Operations {
            hands: Hands::new(ctx.clone(), gateway_ops, budgets),
            ctx,
            playbooks,
            wake: Arc::default(),
        }
    }

    /// Hands over the gateway processes this daemon runs (at start, once).
    pub fn run_processes_with(&self, processes: Arc<dyn Processes>) {
        self.hands.run_processes_with(processes);
    }

    /// Adds the playbook of a kind carried out elsewhere in the daemon (a config rollout's).
    pub fn add_playbook(&self, playbook: Arc<dyn Playbook>) {
        self.playbooks.add(playbook);
    }

    /// The fleet powers a playbook acts with.
    pub fn hands(&self) -> Hands {
        self.hands.clone()
    }

    /// Wakes the engine: an operation was steered (paused, resumed, promoted, cancelled).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Records a new operation and wakes the engine; it goes on in the background.
    pub async fn start_operation(
        &self,
        order: OperationOrder,
        by: &Caller,
    ) -> Result<Operation, FleetError> {
        self.start_with(order, by, |store, id, order, progress, by| {
            store.insert_operation(id, order.kind, &order.params, progress, by)
        })
        .await
    }

    /// Records a new operation through `insert` (a kind that keeps more beside it stores it in
    /// the same transaction), announces it and wakes the engine. The id is minted, every
    /// gateway checked to exist and the canaries marked here, once for every kind.
    pub async fn start_with<F>(
        &self,
        order: OperationOrder,
        by: &Caller,
        insert: F,
    ) -> Result<Operation, FleetError>
    where
        F: FnOnce(
                &crate::db::Store,
                &OperationId,
                &OperationOrder,
                &[GatewayProgress],
                &Caller,
            ) -> Result<Operation, NewOperationError>
            + Send
            + 'static,
    {
        if let Some(missing) = self.ctx.targets().first_unknown(&order.gateways) {
            return Err(FleetError::NotFound(missing));
        }
        let id = OperationId::from(format!(
            "op_{}",
            random_hex::<12>().map_err(FleetError::Random)?
        ));
        let canaries = usize::try_from(order.params.canary).unwrap_or(usize::MAX);
        let progress: Vec<GatewayProgress> = order
            .gateways
            .iter()
            .enumerate()
            .map(|(i, g)| GatewayProgress {
                canary: i < canaries,
                ..GatewayProgress::pending(*g)
            })
            .collect();
        let by = by.clone();
        let inserted = self
            .ctx
            .stored(move |store| Ok(insert(store, &id, &order, &progress, &by)))
            .await?;
        let op = match inserted {
            Ok(op) => op,
            Err(NewOperationError::Busy {
                gateway_id,
                operation_id,
            }) => return Err(FleetError::held(gateway_id, operation_id.as_str())),
            Err(NewOperationError::Db(e)) => return Err(FleetError::Storage(e)),
        };
        model::ProgressEvent::state(&op).publish(&self.ctx.events);
        self.wake.notify_one();
        Ok(op)
    }

    /// Every gateway's id, name and labels (or only gateway `one`'s), in id order.
    pub async fn gateway_labels(
        &self,
        one: Option<GatewayId>,
    ) -> Result<Vec<(GatewayId, String, gateway_supervisor_actors::labels::Labels)>, FleetError>
    {
        Ok(self.hands.gateway_labels(one))
    }

    pub async fn gateway_ids(
        &self,
        picked_by: &gateway_supervisor_actors::labels::Selector,
    ) -> Result<Vec<GatewayId>, FleetError> {
        Ok(self.ctx.targets().ids_labelled(|l| picked_by.matches(l)))
    }

    /// An operator's cancel (see [`model::OperationState::Cancelling`]); the runner is woken
    /// to carry it out. The operation as it is after, `None` when there is none.
    pub async fn cancel_operation(
        &self,
        id: OperationId,
        by: &Caller,
    ) -> Result<Option<Operation>, FleetError> {
        let by = by.clone();
        let op = self
            .ctx
            .stored(move |store| store.cancel_operation(&id, &by))
            .await?;
        self.wake.notify_one();
        Ok(op)
    }

    /// An operator's "abort the runs holding the drain now": marked on every gateway of
    /// operation `id` that is draining (written over the version read, again if another
    /// write came first); the runner, woken, carries it out ([`rule::next`]'s `AbortRuns`).
    /// `None` when there is no such operation.
    pub async fn abort_operation_runs(
        &self,
        id: OperationId,
        by: &Caller,
    ) -> Result<Option<AbortAsked>, FleetError> {
        for _ in 0..8 {
            let read = id.clone();
            let Some(mut op) = self.ctx.stored(move |store| store.operation(&read)).await? else {
                return Ok(None);
            };
            if op.state != model::OperationState::Running {
                return Ok(Some(AbortAsked::Over(op)));
            }
            let now = gateway_supervisor_actors::unix_now_ms();
            let mut marked = Vec::new();
            for p in op
                .progress
                .iter_mut()
                .filter(|p| matches!(p.step, model::Step::Draining { .. }))
            {
                p.abort_runs_asked_at = Some(now);
                marked.push(p.gateway_id);
            }
            if marked.is_empty() {
                return Ok(Some(AbortAsked::NothingDraining(op)));
            }
            let written = {
                let snapshot = op.clone();
                self.ctx
                    .stored(move |store| store.advance_operation(&snapshot))
                    .await?
            };
            if written {
                op.version += 1;
                self.ctx
                    .audited(
                        by,
                        "operation.abort_runs",
                        ("operation", op.id.to_string()),
                        json!({"gateways": marked}),
                    )
                    .await;
                self.wake.notify_one();
                return Ok(Some(AbortAsked::Asked(op)));
            }
        }
        Err(FleetError::Busy {
            message: format!(
                "operation {id} changed under every attempt to mark its runs for abort; try again"
            ),
            details: json!({"operation_id": id}),
        })
    }

    /// Refuses `action` on gateway `id` while a running operation holds it (its step there
    /// is not over): the operation's own steps would undo it, or be undone — an uncordon in
    /// the middle of a drain, a delete that left the drain's suspension on the gateway with
    /// no one to release it (every spawn to it failed while the daemon showed it fine).
    pub async fn refuse_while_held(&self, id: GatewayId, action: &str) -> Result<(), FleetError> {
        let holding = self
            .ctx
            .stored(move |store| store.operations_holding(id))
            .await?;
        let Some(op) = holding.first() else {
            return Ok(());
        };
        Err(FleetError::Busy {
            message: format!(
                "gateway {id} is in running operation {} ({}): {action} is refused until it \
                 ends; cancel it with POST /api/operations/{}/cancel",
                op.id,
                op.kind.as_str(),
                op.id
            ),
            details: json!({"gateway_id": id, "operation_id": op.id, "kind": op.kind}),
        })
    }

    /// Whether gateway `id` may be deleted: not while an operation holds it, and not while a
    /// suspension this daemon made is held on it (nobody could release it after: the gateway
    /// would refuse every spawn for good while no record of it remained here).
    pub async fn may_delete(&self, id: GatewayId) -> Result<(), FleetError> {
        self.refuse_while_held(id, "delete").await?;
        let view = self.ctx.gateways().get(id).await?;
        if let Some(view) = view
            && view.record.suspension_id.is_some()
        {
            return Err(FleetError::Busy {
                message: format!(
                    "gateway {id} is suspended through this daemon: resume it first \
                     (POST /api/gateways/{id}/resume), then delete it; deleted, nobody could \
                     release its suspension"
                ),
                details: json!({"gateway_id": id, "suspended": true}),
            });
        }
        Ok(())
    }

    pub async fn operation(&self, id: OperationId) -> Result<Option<Operation>, FleetError> {
        self.ctx.stored(move |store| store.operation(&id)).await
    }

    pub async fn operations(&self, limit: i64) -> Result<Vec<Operation>, FleetError> {
        self.ctx.stored(move |store| store.operations(limit)).await
    }

    /// Runs operations: a round every `every`, and at once when one starts here.
    pub async fn operations_loop(self, every: std::time::Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.wake.notified() => {}
            }
            self.run_operations().await;
        }
    }
}
