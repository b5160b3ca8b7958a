//! The built-in playbooks: drain, rolling restart, update hold and upgrade (a managed
//! gateway's swap among its steps). Each kind's file holds its pure rule (what to do next for
//! one gateway) and the carrying out of the decisions that are its own; the steps kinds share
//! — admission under a disruption budget, the drain, its abort and force, the cancel, the
//! failure, the check that a restarted gateway is back — are carried out once, here. The
//! config rollout's playbook lives with what it writes (`fleet_config/rollout/playbook.rs`)
//! and is added at start (docs/design.md, *Fleet operations*).

mod drain;
mod rolling_restart;
mod update_hold;
mod upgrade;

use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use std::marker::PhantomData;
use std::sync::Arc;

use super::drain::AfterDrain;
use super::engine::{Playbook, Round, Stepped, acting};
use super::hands::Hands;
use super::model::{GatewayProgress, OperationKind, OperationParams, OperationState, Step};
use super::rule::{self, Facts, Next, Rule};
use crate::db::operations::Operation;
use crate::fleet::FleetError;
use crate::fleet::budget::DisruptionKind;
use crate::secrets::random_hex;
use gateway_supervisor_actors::bounded;
use gateway_supervisor_actors::model::Caller;
use gateway_supervisor_actors::unix_now_ms;

/// How long an operation's disruption of a gateway holds a budget's unit at most (it is
/// released when the gateway's step is over; this bounds one whose end was never recorded).
const OPERATION_HOLD: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// A built-in kind: its rule, the budget kind its admission spends, and the carrying out of
/// its own decisions (the shared ones go to [`Steps::shared`]).
trait Kind: Send + Sync + 'static {
    const KIND: OperationKind;
    const DISRUPTION: DisruptionKind;
    /// What its drain (if it drains) leads to.
    const AFTER_DRAIN: AfterDrain = AfterDrain::Stop;
    /// The kind's rule: what [`rule::opening`] leaves to the kind's own steps.
    const RULE: Rule = decided::<Self>;
    /// What to do next for gateway `p` in flight, of this instance or another, that was not
    /// deleted (the shared opening is decided before).
    fn decide(p: &GatewayProgress, f: &Facts, params: &OperationParams, now_ms: i64) -> Next;
    fn carry<'a>(s: Steps<'a>, p: GatewayProgress, f: Facts, next: Next) -> Stepped<'a>;
}

/// Kind `K`'s rule: the shared opening, then its own steps.
fn decided<K: Kind + ?Sized>(
    p: &GatewayProgress,
    f: &Facts,
    params: &OperationParams,
    cancelling: bool,
    now_ms: i64,
) -> Next {
    rule::opening(p, f, cancelling).unwrap_or_else(|| K::decide(p, f, params, now_ms))
}

/// The playbook of built-in kind `K`.
struct Builtin<K>(PhantomData<K>);

/// Every built-in playbook.
pub fn builtin() -> Vec<Arc<dyn Playbook>> {
    vec![
        Arc::new(Builtin::<drain::Drain>(PhantomData)),
        Arc::new(Builtin::<rolling_restart::RollingRestart>(PhantomData)),
        Arc::new(Builtin::<update_hold::UpdateHold>(PhantomData)),
        Arc::new(Builtin::<upgrade::Upgrade>(PhantomData)),
    ]
}

/// What to do next for gateway progress `p` of an operation of `kind`: the kind's own rule, so
/// one test builder serves every kind.
#[cfg(test)]
pub fn next(
    kind: OperationKind,
    p: &GatewayProgress,
    f: &Facts,
    params: &OperationParams,
    cancelling: bool,
    now_ms: i64,
) -> Next {
    rule_of(kind)(p, f, params, cancelling, now_ms)
}

/// The rule of built-in kind `kind` (one that has none here waits).
#[cfg(test)]
fn rule_of(kind: OperationKind) -> Rule {
    fn none(
        _: &GatewayProgress,
        _: &Facts,
        _: &super::model::OperationParams,
        _: bool,
        _: i64,
    ) -> Next {
        Next::Wait
    }
    [
        (drain::Drain::KIND, drain::Drain::RULE),
        (
            rolling_restart::RollingRestart::KIND,
            rolling_restart::RollingRestart::RULE,
        ),
        (update_hold::UpdateHold::KIND, update_hold::UpdateHold::RULE),
        (upgrade::Upgrade::KIND, upgrade::Upgrade::RULE),
    ]
    .into_iter()
    .find(|(k, _)| *k == kind)
    .map_or(none as Rule, |(_, r)| r)
}

impl<K: Kind> Playbook for Builtin<K> {
    fn kind(&self) -> OperationKind {
        K::KIND
    }

    /// Skips what an earlier failure leaves untouched, admits in order within
    /// `max_unavailable` (canaries first), and ends it once every gateway is over.
    fn plan(&self, op: &mut Operation, now_ms: i64) {
        super::engine::plan_in_order(op, now_ms);
    }

    fn round<'a>(
        &'a self,
        op: &Operation,
        hands: &'a Hands,
    ) -> BoxFuture<'a, Result<Box<dyn Round + 'a>, FleetError>> {
        let round: Box<dyn Round + 'a> = Box::new(Kit {
            hands,
            by: acting(op),
            rule: K::RULE,
            carry: K::carry,
            disruption: K::DISRUPTION,
            after_drain: K::AFTER_DRAIN,
        });
        Box::pin(std::future::ready(Ok(round)))
    }
}

/// How a kind carries out its own decisions.
type Carry = for<'b> fn(Steps<'b>, GatewayProgress, Facts, Next) -> Stepped<'b>;

/// One advance of a built-in kind's operation: its kind's rule and steps, who it acts as.
struct Kit<'a> {
    hands: &'a Hands,
    by: Caller,
    rule: Rule,
    carry: Carry,
    disruption: DisruptionKind,
    after_drain: AfterDrain,
}

impl Round for Kit<'_> {
    fn step<'b>(&'b self, op: &'b Operation, p: GatewayProgress, f: Facts) -> Stepped<'b> {
        let cancelling = op.state == OperationState::Cancelling;
        let next = (self.rule)(&p, &f, &op.params, cancelling, unix_now_ms());
        let steps = Steps {
            op,
            hands: self.hands,
            by: &self.by,
            disruption: self.disruption,
            after_drain: self.after_drain,
        };
        (self.carry)(steps, p, f, next)
    }
}

/// One step of a built-in kind's operation: the operation as it is now, and what the step
/// acts with.
#[derive(Clone, Copy)]
struct Steps<'a> {
    op: &'a Operation,
    hands: &'a Hands,
    by: &'a Caller,
    disruption: DisruptionKind,
    after_drain: AfterDrain,
}

impl Steps<'_> {
    /// Carries out a decision every kind shares.
    async fn shared(
        &self,
        mut p: GatewayProgress,
        f: Facts,
        next: Next,
    ) -> Result<GatewayProgress, FleetError> {
        let (id, op, by) = (p.gateway_id, self.op, self.by);
        let now = unix_now_ms();
        match next {
            Next::Wait => {}
            Next::Advance(step) => p.step = step,
            Next::Admit { boot_id } => {
                if self.admit(&mut p).await? {
                    let request_id = random_hex::<16>().map_err(FleetError::Random)?;
                    p.admitted(boot_id, request_id, now);
                }
            }
            Next::Prepare { request_id } => self.prepare(&mut p, request_id).await?,
            Next::AbortRuns { release } => {
                match self.hands.abort_runs(id, release.as_deref()).await {
                    Ok(done) => {
                        let request_id = random_hex::<16>().map_err(FleetError::Random)?;
                        p.runs_aborted(request_id, &done.aborted, &done.refused, unix_now_ms());
                        let details = json!({"operation_id": op.id, "aborted": done.aborted, "refused": done.refused});
                        self.hands
                            .audited(by, "gateway.abort_runs", id, details)
                            .await;
                    }
                    Err(why) => p.abort_failed(&why),
                }
            }
            Next::Force { suspension_id } => {
                p.forced(suspension_id, op.params.drain().drain_timeout_s, now);
            }
            Next::Skip { reason } => p.skip(&reason, now),
            Next::Abandon { release } => {
                if let Some(sid) = &release
                    && let Err(e) = self.hands.release(id, sid).await
                {
                    tracing::warn!(gateway = id.get(), %e, "could not resume a cancelled drain's suspension");
                }
                self.hands.cordon(id, false, by).await?;
                p.skip(
                    "cancelled: its drain was released and it is back in service",
                    unix_now_ms(),
                );
            }
            Next::CheckBack => drop(self.check_back(&mut p, f).await?),
            // A canary that fell over in its bake goes back out of service.
            Next::Fail { reason, .. } if matches!(p.step, Step::Baking { .. }) => {
                self.hands.cordon(id, true, by).await?;
                p.fail(&reason, now);
            }
            Next::Fail { reason, release } => {
                // The gateway would release it itself when it lapses; sooner is better.
                if let Some(sid) = release
                    && let Err(e) = self.hands.release(id, &sid).await
                {
                    tracing::warn!(gateway = id.get(), %e, "could not resume a failed drain's suspension");
                }
                p.fail(&reason, now);
            }
            own => {
                tracing::error!(step = ?own, "a kind's own decision reached the shared steps");
            }
        }
        Ok(p)
    }

    /// Whether the disruption budgets let gateway `p` out of service now; if they do, it is
    /// cordoned. When they do not, it waits (admitted, not begun), saying which holds it.
    async fn admit(&self, p: &mut GatewayProgress) -> Result<bool, FleetError> {
        let (op, by) = (self.op, self.by);
        if !self
            .hands
            .within_budget(op, p, self.disruption, OPERATION_HOLD, by)
            .await?
        {
            return Ok(false);
        }
        self.hands.cordon(p.gateway_id, true, by).await?;
        Ok(true)
    }

    /// Asks the gateway (again) to suspend with `drain`; a drain alone that is done leaves the
    /// gateway suspended, on record so it can be resumed.
    async fn prepare(&self, p: &mut GatewayProgress, request_id: String) -> Result<(), FleetError> {
        let id = p.gateway_id;
        let asked = self
            .hands
            .call(
                id,
                "gateway.suspend.prepare",
                json!({"requestId": request_id, "drain": true}),
            )
            .await;
        match &asked {
            Ok(answer) => p.after_prepare(self.after_drain, Ok(answer), unix_now_ms()),
            // Another suspension holds it: 2026.9.6 says so as a refusal.
            Err(e) if e.suspension_conflict().is_some() => {
                p.after_prepare(
                    self.after_drain,
                    Ok(&json!({"status": "conflict"})),
                    unix_now_ms(),
                );
            }
            Err(e) => p.after_prepare(self.after_drain, Err(e.to_string()), unix_now_ms()),
        }
        if matches!(p.step, Step::Draining { .. }) {
            p.blocked_by(self.hands.known_runs(id).await);
        }
        if p.step == Step::Done
            && let Ok(answer) = &asked
            && let Some(sid) = answer.get("suspensionId").and_then(Value::as_str)
        {
            let sid = bounded::text(sid, 128);
            self.hands.record_suspension(id, sid, self.by).await?;
        }
        Ok(())
    }

    /// Whether a restarted (or baked) gateway is back; back, it is in service again (a baking
    /// canary is already) unless it came back wrong. `true` when it was back.
    async fn check_back(&self, p: &mut GatewayProgress, f: Facts) -> Result<bool, FleetError> {
        let id = p.gateway_id;
        match self.hands.check_back(id).await {
            Ok(()) => {
                let returning = !matches!(p.step, Step::Baking { .. });
                let proven = super::upgrade::proven(&self.op.progress);
                p.checked_back(
                    self.op.kind,
                    f.boot_id,
                    f.version,
                    proven,
                    &self.op.params,
                    unix_now_ms(),
                );
                if returning && p.step != Step::Failed {
                    self.hands.cordon(id, false, self.by).await?;
                }
            }
            Err(missing) => {
                p.not_back(&missing);
                return Ok(false);
            }
        }
        Ok(true)
    }
}
