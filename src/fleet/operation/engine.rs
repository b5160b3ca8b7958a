//! The one engine every long-running fleet job runs on: drains, rolling restarts, update
//! holds, upgrades (observer and managed) and config rollouts alike. Every instance, every
//! round (and at once when one starts or is steered here), reads the running operations once,
//! and for each: its kind's [`Playbook`] plans the whole (admits canaries first and then the
//! rest within `max_unavailable`, stops, ends), the in-flight gateways this instance links are
//! stepped side by side ([`AT_ONCE`]), and the whole is recorded over the version read — one
//! compare-and-set, one typed [`ProgressEvent`] per gateway that moved and one per change of
//! the operation's state, a budget's unit released for each gateway the operation is over
//! with. Every step is safe to repeat: a record that loses the race (another instance
//! recorded first) or a daemon killed between a step and its record only repeats it
//! (docs/design.md, *Fleet operations*).
//!
//! A playbook says what a kind does; this file is the only place that says how a round goes.

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Arc;

use super::Operations;
use super::hands::Hands;
use super::model::ProgressEvent;
use super::model::{GatewayProgress, OperationKind, OperationState, Step};
use super::rule::Facts;
use crate::db::operations::Operation;
use crate::fleet::FleetError;
use gateway_supervisor_actors::model::{Caller, GatewayId};
use gateway_supervisor_actors::unix_now_ms;

/// How many decisions one operation may take in one round (each step that needs no waiting
/// leads straight to the next; this bounds a round whatever the playbooks say).
const STEPS_PER_ROUND: usize = 16;
/// Gateways stepped at once (`config.get` took 785 ms and a hot `config.patch` 1 s on a real
/// 2026.9.6; a drain's `gateway.suspend.prepare` waits on the gateway too: one at a time, a
/// wave of 50 would take a minute a round).
pub const AT_ONCE: usize = 16;

/// One gateway's step, as a playbook carries it out.
pub type Stepped<'a> = BoxFuture<'a, Result<GatewayProgress, FleetError>>;

/// What a kind of operation does. `plan` is pure; `round` loads once per advance what the
/// steps need beyond the record (it owns what it takes from `op`: the operation changes as the
/// advance goes); its [`Round::step`] decides with the kind's pure rule, on the operation as it
/// is at that step, and carries the decision out with [`Hands`].
pub trait Playbook: Send + Sync {
    /// The kind it carries out.
    fn kind(&self) -> OperationKind;

    /// The operation as a whole at `now_ms`: admits, stops and ends (its `state`, its
    /// `detail` and its gateways' steps). Pure.
    fn plan(&self, op: &mut Operation, now_ms: i64);

    /// What this advance of `op` steps its gateways with.
    fn round<'a>(
        &'a self,
        op: &Operation,
        hands: &'a Hands,
    ) -> BoxFuture<'a, Result<Box<dyn Round + 'a>, FleetError>>;

    /// Gateway `id` is over (as `step`) and recorded: what follows (a rollout judges its drift
    /// again). Nothing by default.
    fn over<'a>(&'a self, _id: GatewayId, _step: &'a Step) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// One advance of one operation.
pub trait Round: Send + Sync {
    /// Gateway `p`'s progress after its next step in `op`, as `facts` show it (unchanged when
    /// there is nothing to do).
    fn step<'a>(&'a self, op: &'a Operation, p: GatewayProgress, facts: Facts) -> Stepped<'a>;
}

/// The playbooks, by the kind each carries out.
#[derive(Clone, Default)]
pub struct Playbooks(Arc<std::sync::RwLock<HashMap<OperationKind, Arc<dyn Playbook>>>>);

impl Playbooks {
    /// Adds a playbook (at start; a second for the same kind replaces the first).
    pub fn add(&self, playbook: Arc<dyn Playbook>) {
        if let Ok(mut all) = self.0.write() {
            all.insert(playbook.kind(), playbook);
        }
    }

    fn of(&self, kind: OperationKind) -> Option<Arc<dyn Playbook>> {
        self.0.read().ok()?.get(&kind).cloned()
    }
}

/// The plan of a kind with no plan of its own (every built-in kind, a cron declaration's
/// rollout): what an earlier failure leaves untouched is skipped, gateways are admitted in
/// order within `max_unavailable` (canaries first), and it ends once every gateway is over
/// ([`super::rule::plan`]).
pub fn plan_in_order(op: &mut Operation, now_ms: i64) {
    let cancelling = op.state == OperationState::Cancelling;
    let (_, verdict) = super::rule::plan(&mut op.progress, &op.params, cancelling, now_ms);
    if let Some(state) = verdict {
        op.state = state;
    }
}

/// Who an operation's steps act as: its creator, through it.
pub fn acting(op: &Operation) -> Caller {
    Caller {
        api_key_id: op.api_key_id,
        label: format!("{} (operation {})", op.created_by, op.id),
        tenant: None,
    }
}

impl Operations {
    /// One round over every running operation.
    pub async fn run_operations(&self) {
        let running = match self.ctx.stored(|store| store.running_operations()).await {
            Ok(running) => running,
            Err(e) => {
                tracing::warn!(%e, "could not read the running operations");
                return;
            }
        };
        for op in running {
            let Some(playbook) = self.playbooks.of(op.kind) else {
                tracing::warn!(operation = %op.id, kind = op.kind.as_str(), "no playbook carries out this kind here");
                continue;
            };
            let id = op.id.clone();
            if let Err(e) = self.advance(&*playbook, op).await {
                tracing::warn!(operation = %id, %e, "an operation could not be advanced this round");
            }
        }
    }

    /// Takes every step of `op` that can be taken now and records them.
    async fn advance(&self, playbook: &dyn Playbook, mut op: Operation) -> Result<(), FleetError> {
        // Once per advance: a rollout's patch is read from the store here, not at every step.
        let round = playbook.round(&op, &self.hands).await?;
        for _ in 0..STEPS_PER_ROUND {
            let (before, state_before, detail_before) =
                (op.progress.clone(), op.state, op.detail.clone());
            playbook.plan(&mut op, unix_now_ms());
            if op.state.is_live() {
                let stepped = {
                    let in_flight: Vec<usize> = (0..op.progress.len())
                        .filter(|i| op.progress[*i].step.in_flight())
                        .collect();
                    let (round, hands, now) = (&round, &self.hands, &op);
                    futures_util::stream::iter(in_flight)
                        .map(|i| async move {
                            let p = now.progress[i].clone();
                            let facts = hands.facts(p.gateway_id);
                            (i, round.step(now, p, facts).await)
                        })
                        .buffer_unordered(AT_ONCE)
                        .collect::<Vec<_>>()
                        .await
                };
                for (i, p) in stepped {
                    op.progress[i] = p?;
                }
            }
            let same = op.progress == before && op.state == state_before;
            if same && op.detail == detail_before {
                return Ok(());
            }
            let written = {
                let snapshot = op.clone();
                self.ctx
                    .stored(move |store| store.advance_operation(&snapshot))
                    .await?
            };
            if !written {
                return Ok(()); // recorded by someone else first: next round reads it again
            }
            op.version += 1;
            self.announce(&op, &before, state_before);
            for (now, was) in op.progress.iter().zip(&before) {
                if now.step.is_over() && !was.step.is_over() {
                    // Over with: it spends no budget's unit any more.
                    self.hands.release_disruption(&op, now.gateway_id).await;
                    playbook.over(now.gateway_id, &now.step).await;
                }
            }
            if !op.state.is_live() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// An event for each gateway whose step moved, and one for a change of the operation's
    /// state (with every gateway when it is over).
    fn announce(&self, op: &Operation, before: &[GatewayProgress], state_before: OperationState) {
        for (now, was) in op.progress.iter().zip(before) {
            if now.step.name() != was.step.name() || now.detail != was.detail {
                ProgressEvent::gateway(op, now).publish(&self.ctx.events);
            }
        }
        if op.state != state_before {
            ProgressEvent::state(op).publish(&self.ctx.events);
            if !op.state.is_live() {
                self.ctx.counters.operation_finished(op.kind, op.state);
                tracing::info!(operation = %op.id, kind = op.kind.as_str(), state = op.state.as_str(), "operation over");
            }
        }
    }
}
