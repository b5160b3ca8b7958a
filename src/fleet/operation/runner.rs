//! Carrying operations out: every instance, every round (and at once when one starts here),
//! reads the running operations, lets [`plan`] admit and skip, and takes the gateway steps
//! [`next`] decides for the gateways it links — then records the whole over the version it
//! read. Every effect is safe to repeat, so a write that loses the race (another instance
//! recorded first) or a daemon killed between an effect and its record only repeats it: a
//! cordon is a setting, a drain asks again under the same request id (which the gateway
//! deduplicates), and a restart goes only to the process noted at the start (the link's
//! fence: once that process is gone, nothing is sent). A restarted daemon finds its
//! operations still `running` and goes on (docs/design.md, *Fleet operations*).

use super::Operations;
use serde_json::{Value, json};

use super::model::OperationKind;
use super::model::{GatewayProgress, OperationState, Step};
use super::rule::{Facts, Next, next, plan};
use super::upgrade::{Before, before, proven};
use crate::db::operations::Operation;
use crate::fleet::FleetError;
use crate::fleet::budget::DisruptionKind;
use crate::fleet::processes::{SwapOrder, SwapReport};
use crate::secrets::random_hex;
use gateway_supervisor_actors::events::EventKind;
use gateway_supervisor_actors::messages::CallError;
use gateway_supervisor_actors::model::{Caller, GatewayId};
use gateway_supervisor_actors::unix_now_ms;

/// How many decisions one operation may take in one round (each step that needs no waiting
/// leads straight to the next; this bounds a round whatever the rules say).
const STEPS_PER_ROUND: usize = 16;
/// How long an operation's disruption of a gateway holds a budget's unit at most (it is
/// released when the gateway's step is over; this bounds one whose end was never recorded).
const OPERATION_HOLD: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

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
        // A config rollout is the `fleet_config` module's to carry out.
        for op in running
            .into_iter()
            .filter(|op| op.kind != OperationKind::ConfigRollout)
        {
            let id = op.id.clone();
            if let Err(e) = self.advance(op).await {
                tracing::warn!(operation = %id, %e, "an operation could not be advanced this round");
            }
        }
    }

    /// Takes every step of `op` that can be taken now and records them.
    async fn advance(&self, mut op: Operation) -> Result<(), FleetError> {
        let by = Caller {
            api_key_id: op.api_key_id,
            label: format!("{} (operation {})", op.created_by, op.id),
        };
        for _ in 0..STEPS_PER_ROUND {
            let before = op.progress.clone();
            let cancelling = op.state == OperationState::Cancelling;
            let (_, verdict) = plan(&mut op.progress, &op.params, cancelling, unix_now_ms());
            if let Some(state) = verdict {
                op.state = state;
            } else {
                for i in 0..op.progress.len() {
                    if op.progress[i].step.in_flight() {
                        self.step(&op, i, &by).await.map(|p| op.progress[i] = p)?;
                    }
                }
            }
            if op.progress == before && op.state.is_live() && verdict.is_none() {
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
            self.announce(&op, &before);
            // A gateway the operation is over with no longer spends a budget's unit.
            for (now, was) in op.progress.iter().zip(&before) {
                if now.step.is_over() && !was.step.is_over() {
                    self.budgets
                        .release_disruption(now.gateway_id, Some(op.id.as_str()))
                        .await;
                }
            }
            if !op.state.is_live() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Gateway `i`'s progress after its next step (unchanged when there is nothing to do).
    async fn step(
        &self,
        op: &Operation,
        i: usize,
        by: &Caller,
    ) -> Result<GatewayProgress, FleetError> {
        let mut p = op.progress[i].clone();
        let id = p.gateway_id;
        let facts = self.facts(id).await?;
        let now = unix_now_ms();
        let cancelling = op.state == OperationState::Cancelling;
        match next(op.kind, &p, &facts, &op.params, cancelling, now) {
            Next::Wait => {}
            Next::Advance(step) => p.step = step,
            Next::AdmitUpdate { boot_id } => {
                if !self.within_budget(op, &mut p, by).await? {
                    return Ok(p);
                }
                self.gateway_ops.cordon(id, true, by).await?;
                p.admitted_for_update(boot_id, facts.version.clone(), now);
            }
            Next::AdmitSwap { boot_id } => {
                if !self.within_budget(op, &mut p, by).await? {
                    return Ok(p);
                }
                self.gateway_ops.cordon(id, true, by).await?;
                let target = op
                    .params
                    .release
                    .as_ref()
                    .map_or("", |r| r.version.as_str());
                p.admitted_for_swap(boot_id, facts.version.clone(), target, now);
            }
            Next::Swap => {
                let report = match (self.processes(), op.params.release.as_ref()) {
                    (Some(processes), Some(release)) => processes.swap(
                        id,
                        &SwapOrder {
                            operation: op.id.to_string(),
                            version: release.version.clone(),
                            source: release.source.clone(),
                            min_healthy: std::time::Duration::from_secs(release.min_healthy_s),
                            healthy_deadline: std::time::Duration::from_secs(
                                op.params.wait_ready_s,
                            ),
                        },
                    ),
                    _ => SwapReport::Refused("this daemon runs no managed gateways".into()),
                };
                let untouched = matches!(report, SwapReport::Refused(_));
                p.after_swap(report, unix_now_ms());
                // Put back as it was and running, left as it was, or nothing to swap: back in
                // service as before the upgrade.
                if p.rolled_back || untouched || p.step == Step::Done {
                    self.gateway_ops.cordon(id, false, by).await?;
                }
            }
            Next::Admit { boot_id } => {
                if !self.within_budget(op, &mut p, by).await? {
                    return Ok(p);
                }
                self.gateway_ops.cordon(id, true, by).await?;
                let request_id = random_hex::<16>().map_err(FleetError::Random)?;
                p.admitted(boot_id, request_id, now);
            }
            Next::RequestUpdate { boot_id } => {
                self.request_update(op, &mut p, &boot_id, by).await;
            }
            Next::FollowRun { run_id, another } => {
                let read = self
                    .ctx
                    .call(id, "update.runs.get", json!({"runId": run_id}))
                    .await;
                p.after_run_record(
                    read.as_ref().map_err(ToString::to_string),
                    another,
                    unix_now_ms(),
                );
                // Already current: nothing changed, back in service.
                if p.step == Step::Done {
                    self.gateway_ops.cordon(id, false, by).await?;
                }
            }
            Next::Prepare { request_id } => {
                let asked = self
                    .ctx
                    .call(
                        id,
                        "gateway.suspend.prepare",
                        json!({"requestId": request_id, "drain": true}),
                    )
                    .await;
                match &asked {
                    Ok(answer) => p.after_prepare(op.kind, Ok(answer), unix_now_ms()),
                    // Another suspension holds it: 2026.9.6 says so as a refusal.
                    Err(e) if e.suspension_conflict().is_some() => {
                        p.after_prepare(op.kind, Ok(&json!({"status": "conflict"})), unix_now_ms());
                    }
                    Err(e) => p.after_prepare(op.kind, Err(e.to_string()), unix_now_ms()),
                }
                if matches!(p.step, Step::Draining { .. }) {
                    p.blocked_by(self.known_runs(id).await);
                }
                // A drain alone leaves the gateway suspended: on record, so it can be resumed.
                if p.step == Step::Done
                    && let Ok(answer) = &asked
                    && let Some(sid) = answer.get("suspensionId").and_then(Value::as_str)
                {
                    let sid = gateway_supervisor_actors::bounded::text(sid, 128);
                    self.gateway_ops
                        .record_suspension(id, Some(sid), by)
                        .await?;
                }
            }
            Next::AbortRuns { release } => match self.abort_runs(id, release.as_deref()).await {
                Ok(done) => {
                    let request_id = random_hex::<16>().map_err(FleetError::Random)?;
                    p.runs_aborted(request_id, &done.aborted, &done.refused, unix_now_ms());
                    self.ctx.audited(
                        by,
                        "gateway.abort_runs",
                        ("gateway", id.to_string()),
                        json!({"operation_id": op.id, "aborted": done.aborted, "refused": done.refused}),
                    )
                    .await;
                }
                Err(why) => p.abort_failed(&why),
            },
            Next::Force { suspension_id } => {
                p.forced(suspension_id, op.params.drain_timeout_s, now);
            }
            Next::Restart {
                boot_id,
                release,
                forced,
            } => {
                if let Some(sid) = release {
                    let resumed = self
                        .ctx
                        .call(id, "gateway.suspend.resume", json!({"suspensionId": sid}))
                        .await;
                    match resumed {
                        // `resumed: false`: nothing held any more (it lapsed, or an earlier
                        // round whose record was lost released it); either way, free.
                        Ok(a) if a.get("ok").and_then(Value::as_bool) != Some(false) => {}
                        Ok(a) => {
                            let said = a.get("reason").and_then(Value::as_str).unwrap_or("no");
                            p.release_failed(&format!(
                                "the gateway refused ({})",
                                gateway_supervisor_actors::bounded::text(said, 80)
                            ));
                            return Ok(p);
                        }
                        Err(e) => {
                            p.release_failed(&e.to_string());
                            return Ok(p);
                        }
                    }
                }
                let reason = format!("rolling restart {} by {}", op.id, op.created_by);
                let mut params = json!({"reason": reason});
                if forced {
                    params["skipDeferral"] = json!(true);
                }
                let asked = self
                    .ctx
                    .call_fenced(id, "gateway.restart.request", params, Some(&boot_id))
                    .await;
                match asked {
                    Ok(answer) => p.after_restart(Ok(&answer), unix_now_ms()),
                    Err(FleetError::Call {
                        source: CallError::AnotherProcess { .. },
                        ..
                    }) => p.after_restart(Err(None), unix_now_ms()),
                    Err(e) => p.after_restart(Err(Some(e.to_string())), unix_now_ms()),
                }
                if matches!(p.step, Step::Returning { .. }) {
                    self.ctx
                        .audited(
                            by,
                            "gateway.restart",
                            ("gateway", id.to_string()),
                            json!({"operation": op.id, "boot_id": boot_id, "forced": forced}),
                        )
                        .await;
                }
            }
            Next::Hold => {
                let held = self.ctx.call(id, "update.hold", json!({})).await;
                p.after_hold(held.as_ref().map_err(ToString::to_string), unix_now_ms());
                if p.step == Step::Done {
                    self.ctx
                        .audited(
                            by,
                            "gateway.update_hold",
                            ("gateway", id.to_string()),
                            json!({"operation_id": op.id, "detail": p.detail}),
                        )
                        .await;
                }
            }
            Next::Skip { reason } => p.skip(&reason, unix_now_ms()),
            Next::Abandon { release } => {
                if let Some(sid) = &release {
                    let resumed = self
                        .ctx
                        .call(id, "gateway.suspend.resume", json!({"suspensionId": sid}))
                        .await;
                    if let Err(e) = resumed {
                        tracing::warn!(gateway = id.get(), %e, "could not resume a cancelled drain's suspension");
                    }
                }
                self.gateway_ops.cordon(id, false, by).await?;
                p.skip(
                    "cancelled: its drain was released and it is back in service",
                    unix_now_ms(),
                );
            }
            Next::CheckBack => match self.check_back(id).await {
                Ok(()) => {
                    // A baking canary is in service already.
                    let returning = !matches!(p.step, Step::Baking { .. });
                    let proven = proven(&op.progress);
                    p.checked_back(
                        op.kind,
                        facts.boot_id,
                        facts.version,
                        proven,
                        &op.params,
                        unix_now_ms(),
                    );
                    // Back in service (a canary takes work while it bakes) unless it came back
                    // wrong (on another release than the canaries').
                    if returning && p.step != Step::Failed {
                        self.gateway_ops.cordon(id, false, by).await?;
                    }
                    if returning && op.kind == OperationKind::Upgrade {
                        self.ctx.audited(
                            by,
                            "gateway.upgrade",
                            ("gateway", id.to_string()),
                            json!({"operation_id": op.id, "from": p.version_before, "to": p.version_after,
                                   "boot_id": p.boot_id_after, "detail": p.detail}),
                        )
                        .await;
                    }
                }
                Err(missing) => p.not_back(&missing),
            },
            // A canary that fell over in its bake goes back out of service.
            Next::Fail { reason, .. } if matches!(p.step, Step::Baking { .. }) => {
                self.gateway_ops.cordon(id, true, by).await?;
                p.fail(&reason, unix_now_ms());
            }
            Next::Fail { reason, release } => {
                if let Some(sid) = release {
                    // The gateway would release it itself when it lapses; sooner is better.
                    let resumed = self
                        .ctx
                        .call(id, "gateway.suspend.resume", json!({"suspensionId": sid}))
                        .await;
                    if let Err(e) = resumed {
                        tracing::warn!(gateway = id.get(), %e, "could not resume a failed drain's suspension");
                    }
                }
                p.fail(&reason, unix_now_ms());
            }
        }
        Ok(p)
    }

    /// Whether gateway `p` may be taken out of service now by the disruption budgets; when it
    /// may not, it waits (admitted, not begun), saying which budget holds it.
    async fn within_budget(
        &self,
        op: &Operation,
        p: &mut GatewayProgress,
        by: &Caller,
    ) -> Result<bool, FleetError> {
        let kind = match op.kind {
            OperationKind::Drain => DisruptionKind::Drain,
            OperationKind::Upgrade => DisruptionKind::Upgrade,
            _ => DisruptionKind::Restart,
        };
        match self
            .budgets
            .admit_disruption(p.gateway_id, kind, Some(op.id.as_str()), by, OPERATION_HOLD)
            .await
        {
            Ok(()) => Ok(true),
            Err(FleetError::Disruption { message, .. }) => {
                p.detail = Some(gateway_supervisor_actors::bounded::text(
                    &format!("waiting: {message}"),
                    300,
                ));
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Asks the noted process to update itself — unless its `update.status` shows a run
    /// active already (followed instead: the gateway refuses a second, and a round whose record
    /// was lost may have started it) or another release than the canaries proved.
    async fn request_update(
        &self,
        op: &Operation,
        p: &mut GatewayProgress,
        boot_id: &str,
        by: &Caller,
    ) {
        let id = p.gateway_id;
        let status = self
            .ctx
            .call_fenced(id, "update.status", json!({}), Some(boot_id))
            .await;
        let status = match status {
            Ok(status) => status,
            Err(e) => {
                return p.after_update_run(Err(format!("update.status: {e}")), unix_now_ms());
            }
        };
        match before(&status, proven(&op.progress)) {
            Before::Follow { run_id } => return p.follow(run_id),
            Before::Refuse { reason } => return p.fail(&reason, unix_now_ms()),
            Before::Ask => {}
        }
        let note = format!("upgrade {} by {}", op.id, op.created_by);
        let asked = self
            .ctx
            .call_fenced(id, "update.run", json!({"note": note}), Some(boot_id))
            .await;
        p.after_update_run(asked.as_ref().map_err(ToString::to_string), unix_now_ms());
        if let Ok(answer) = &asked {
            self.ctx.audited(
                by,
                "gateway.update_run",
                ("gateway", id.to_string()),
                json!({"operation_id": op.id, "boot_id": boot_id,
                       "run_id": answer.get("runId").and_then(Value::as_str).map(|r| gateway_supervisor_actors::bounded::text(r, 80)),
                       "detail": p.detail}),
            )
            .await;
        }
    }

    /// What this instance sees of gateway `id` now.
    pub async fn facts(&self, id: GatewayId) -> Result<Facts, FleetError> {
        Ok(match self.ctx.target(id) {
            None => Facts::default(),
            Some(t) => Facts {
                exists: true,
                elsewhere: t.elsewhere,
                connected: t.link.is_some() && t.candidate.healthy,
                offers_hold: t.offers("update.hold"),
                offers_update: ["update.status", "update.run", "update.runs.get"]
                    .iter()
                    .all(|m| t.offers(m)),
                offers_config: t.offers("config.get") && t.offers("config.patch"),
                managed: self.processes().is_some_and(|p| p.runs(id)),
                boot_id: t.boot_id.clone(),
                version: t.version.clone(),
            },
        })
    }

    /// Whether a restarted gateway is back: its `health` RPC answers and its `/readyz` 2xx.
    /// `Err`: what is missing, in words.
    async fn check_back(&self, id: GatewayId) -> Result<(), String> {
        self.ctx
            .call(id, "health", json!({}))
            .await
            .map_err(|e| format!("the `health` call failed: {e}"))?;
        let link = self
            .ctx
            .target(id)
            .and_then(|t| t.link.clone())
            .ok_or("not connected")?;
        if link.ready().await {
            Ok(())
        } else {
            Err("`/readyz` did not answer 2xx".into())
        }
    }

    /// An event for each gateway whose step moved, and one for the operation's end.
    fn announce(&self, op: &Operation, before: &[GatewayProgress]) {
        for (now, was) in op.progress.iter().zip(before) {
            if now.step.name() != was.step.name() || now.detail != was.detail {
                self.ctx.events.publish(
                    EventKind::OperationProgress,
                    Some(now.gateway_id),
                    json!({"operation_id": op.id, "kind": op.kind, "state": op.state, "gateway": now}),
                );
            }
        }
        if !op.state.is_live() {
            self.ctx.counters.operation_finished(op.kind, op.state);
            self.ctx.events.publish(
                EventKind::OperationProgress,
                None,
                json!({"operation_id": op.id, "kind": op.kind, "state": op.state, "gateways": op.progress}),
            );
        }
    }
}
