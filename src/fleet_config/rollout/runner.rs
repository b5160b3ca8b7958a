//! Carrying rollouts out: every instance, every round (and at once when one starts or is
//! steered here), reads the running rollouts, lets [`rule::plan`] admit, stop and revert, and
//! takes the steps [`rule::next`] decides for the gateways it links — then records the whole
//! over the version it read, as every fleet operation is (docs/design.md, *Fleet
//! operations*). Each write is a compare-and-set on the gateway (`baseHash`), so a round
//! whose record is lost only repeats a write the gateway then answers `noop`.

use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::{Map, Value, json};

use super::rule::{self, Next, Refusal};
use super::values::{self, Saved};
use crate::db::operations::Operation;
use crate::fleet::FleetError;
use crate::fleet::budget::DisruptionKind;
use crate::fleet::operation::model::{GatewayProgress, OperationKind, RolloutParams, Step};
use crate::fleet_config::drift::{self, Live};
use crate::fleet_config::patch;
use crate::fleet_config::{ConfigError, FleetConfig};
use gateway_supervisor_actors::bounded;
use gateway_supervisor_actors::events::EventKind;
use gateway_supervisor_actors::messages::CallError;
use gateway_supervisor_actors::model::{Caller, GatewayId};
use gateway_supervisor_actors::unix_now_ms;

/// How many decisions one rollout may take in one round.
const STEPS_PER_ROUND: usize = 8;
/// Gateways stepped at once (`config.get` took 785 ms and a hot `config.patch` 1 s on a real
/// 2026.9.6: one at a time, a wave of 50 would take a minute and a half a round).
const AT_ONCE: usize = 16;
/// How often the runner looks at the running rollouts without being woken.
const ROUND: std::time::Duration = std::time::Duration::from_secs(1);

/// A rollout's patch as the gateways get it.
struct Patch {
    full: Map<String, Value>,
    replace_paths: Vec<String>,
}

/// What a call's failure means for a write: refused by the gateway, lost on the way (it may
/// have been applied), or not sent at all (`Err`).
fn refusal(e: &FleetError) -> Result<Refusal, String> {
    match e {
        FleetError::Call {
            source: CallError::Gateway(shape),
            ..
        } => Ok(Refusal::of(shape)),
        FleetError::Call { .. } => Ok(Refusal::Lost(bounded::text(&e.to_string(), 200))),
        other => Err(bounded::text(&other.to_string(), 200)),
    }
}

impl FleetConfig {
    /// Runs rollouts until the daemon stops.
    pub async fn rollouts_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(ROUND);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.rollouts_wake.notified() => {}
            }
            let running = match self.stored(|s| s.running_operations()).await {
                Ok(running) => running,
                Err(e) => {
                    tracing::warn!(%e, "could not read the running rollouts");
                    continue;
                }
            };
            for op in running
                .into_iter()
                .filter(|op| op.kind == OperationKind::ConfigRollout)
            {
                let id = op.id.clone();
                if let Err(e) = self.advance_rollout(op).await {
                    tracing::warn!(operation = %id, %e, "a rollout could not be advanced this round");
                }
            }
            if let Ok(mut pacer) = self.pacer.lock() {
                pacer.prune(unix_now_ms());
            }
        }
    }

    async fn advance_rollout(&self, mut op: Operation) -> Result<(), ConfigError> {
        let key = op.id.clone();
        let Some(record) = self.stored(move |s| s.config_rollout(&key)).await? else {
            return Ok(());
        };
        let Some(rp) = op.params.rollout.clone() else {
            return Ok(());
        };
        let object = |text: &str| -> Map<String, Value> {
            serde_json::from_str::<Value>(text)
                .ok()
                .and_then(|v| v.as_object().cloned())
                .unwrap_or_default()
        };
        let mut full = object(&record.patch);
        patch::merge(
            &mut full,
            &object(record.secrets.as_deref().unwrap_or("{}")),
        );
        let target = Patch {
            full,
            replace_paths: serde_json::from_str(&record.replace_paths).unwrap_or_default(),
        };
        let by = Caller {
            api_key_id: op.api_key_id,
            label: format!("{} (operation {})", op.created_by, op.id),
        };
        for _ in 0..STEPS_PER_ROUND {
            let (before, state_before, detail_before) =
                (op.progress.clone(), op.state, op.detail.clone());
            let (state, detail) =
                rule::plan(&mut op.progress, &op.params, &rp, op.state, unix_now_ms());
            op.state = state;
            if detail.is_some() {
                op.detail = detail;
            }
            if op.state.is_live() {
                let in_flight: Vec<usize> = (0..op.progress.len())
                    .filter(|i| op.progress[*i].step.in_flight())
                    .collect();
                let stepped: Vec<(usize, Result<GatewayProgress, ConfigError>)> =
                    futures_util::stream::iter(in_flight)
                        .map(|i| {
                            let (op, rp, target, by) = (&op, &rp, &target, &by);
                            async move { (i, self.rollout_step(op, i, rp, target, by).await) }
                        })
                        .buffer_unordered(AT_ONCE)
                        .collect()
                        .await;
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
                self.stored(move |s| s.advance_operation(&snapshot)).await?
            };
            if !written {
                return Ok(()); // recorded by someone else first: next round reads it again
            }
            op.version += 1;
            self.announce(&op, &before, state_before);
            // A gateway the rollout is over with spends no budget's unit any more, and is judged
            // again: its drift is what it runs now.
            for (now, was) in op.progress.iter().zip(&before) {
                if now.step.is_over() && !was.step.is_over() {
                    self.fleet
                        .budgets
                        .release_disruption(now.gateway_id, Some(op.id.as_str()))
                        .await;
                    if now.step != Step::Skipped {
                        self.judge_one(now.gateway_id).await;
                    }
                }
            }
            if !op.state.is_live() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Gateway `i`'s progress after its next step (unchanged when there is nothing to do).
    async fn rollout_step(
        &self,
        op: &Operation,
        i: usize,
        rp: &RolloutParams,
        target: &Patch,
        by: &Caller,
    ) -> Result<GatewayProgress, ConfigError> {
        let mut p = op.progress[i].clone();
        let facts = self.fleet.operations.facts(p.gateway_id).await?;
        let now = unix_now_ms();
        match rule::next(&p, &facts, rp, op.state, now) {
            Next::Write => self.write(op, &mut p, rp, target, by).await?,
            Next::Revert => self.revert(op, &mut p, rp, target, by).await?,
            Next::Check => {
                let read = self
                    .read(p.gateway_id)
                    .await
                    .and_then(|(live, _)| values::read_back(&target.full, &live));
                rule::after_check(&mut p, read, rp, unix_now_ms());
            }
            begin @ Next::Begin { .. } => {
                if rule::will_restart(&target.full)
                    && !self.within_budget(op, &mut p, rp, by).await?
                {
                    return Ok(p);
                }
                rule::apply(&mut p, &begin, now);
            }
            other => rule::apply(&mut p, &other, now),
        }
        Ok(p)
    }

    /// Whether the disruption budgets let gateway `p` restart for the write now; when they do
    /// not, it waits (started, not written), saying which budget holds it.
    async fn within_budget(
        &self,
        op: &Operation,
        p: &mut GatewayProgress,
        rp: &RolloutParams,
        by: &Caller,
    ) -> Result<bool, ConfigError> {
        let hold = std::time::Duration::from_secs(rp.healthy_deadline_s.saturating_add(60));
        match self
            .fleet
            .budgets
            .admit_disruption(
                p.gateway_id,
                DisruptionKind::ConfigRestart,
                Some(op.id.as_str()),
                by,
                hold,
            )
            .await
        {
            Ok(()) => Ok(true),
            Err(FleetError::Disruption { message, .. }) => {
                p.detail = Some(bounded::text(&format!("waiting: {message}"), 300));
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `config.get` of gateway `id`: its live config and the answer whole.
    async fn read(&self, id: GatewayId) -> Result<(Live, Value), String> {
        let answer = self
            .fleet
            .ctx
            .call_gateway(id, "config.get", json!({}))
            .await
            .map_err(|e| format!("config.get failed: {}", bounded::text(&e.to_string(), 200)))?;
        let live = Live::from_answer(&answer).ok_or("config.get carried no config")?;
        if live.hash.is_none() {
            return Err("config.get carried no hash to write over".into());
        }
        Ok((live, answer))
    }

    /// A write's turn under gateway `id`'s limit; `Err(ms)`: wait that long.
    fn paced(&self, id: GatewayId) -> Result<(), i64> {
        match self.pacer.lock() {
            Ok(mut pacer) => pacer.take(id, unix_now_ms()),
            Err(_) => Ok(()),
        }
    }

    /// Holds step `p` back `wait_ms` for the gateway's write limit.
    fn hold_back(p: &mut GatewayProgress, wait_ms: i64) {
        let at = unix_now_ms().saturating_add(wait_ms);
        match &mut p.step {
            Step::Writing { not_before_ms, .. } | Step::Reverting { not_before_ms, .. } => {
                *not_before_ms = at;
            }
            _ => return,
        }
        p.detail = Some(format!(
            "paced: at most {} writes a minute to a gateway; next in {}s",
            super::pace::LIMIT,
            (wait_ms + 999) / 1000
        ));
    }

    /// A write's turn under the gateway's limit, then `config.get`: what it read, or `None` with
    /// gateway `p` held back (paced) or saying why it could not read.
    async fn paced_read(&self, p: &mut GatewayProgress) -> Option<(Live, Value)> {
        if let Err(wait) = self.paced(p.gateway_id) {
            Self::hold_back(p, wait);
            return None;
        }
        match self.read(p.gateway_id).await {
            Ok(read) => Some(read),
            Err(why) => {
                p.detail = Some(why);
                None
            }
        }
    }

    /// `config.get`, the values the patch replaces saved, `config.patch` over the hash read.
    async fn write(
        &self,
        op: &Operation,
        p: &mut GatewayProgress,
        rp: &RolloutParams,
        target: &Patch,
        by: &Caller,
    ) -> Result<(), ConfigError> {
        let id = p.gateway_id;
        let Some((live, answer)) = self.paced_read(p).await else {
            return Ok(());
        };
        // Already as desired (an earlier write of this rollout may have landed): what was saved
        // before it stays saved.
        if !drift::judge(&target.full, &live).paths.is_empty() {
            let file = answer.get("parsed").cloned().unwrap_or(Value::Null);
            let saved = values::previous(&target.full, &file);
            let text = serde_json::to_string(&saved).unwrap_or_default();
            let op_id = op.id.clone();
            self.stored(move |s| s.save_rollout_previous(&op_id, id, &text))
                .await?;
        }
        let note = format!("config rollout {} by {}", op.id, op.created_by);
        let answer = match self
            .patch(id, &target.full, &live, &note, &target.replace_paths)
            .await
        {
            Ok(answer) => answer,
            Err(unsent) => {
                p.detail = Some(format!("not written: {unsent}"));
                return Ok(());
            }
        };
        rule::after_write(p, answer.as_ref().map_err(Clone::clone), rp, unix_now_ms());
        if let Ok(a) = &answer
            && a.get("noop").and_then(Value::as_bool) != Some(true)
        {
            let paths: Vec<String> = patch::leaves(&target.full)
                .iter()
                .map(|(path, _)| patch::dotted(path))
                .collect();
            self.audit(
                by,
                "config.rollout.write",
                id,
                json!({"operation_id": op.id, "paths": paths, "changed_paths": p.changed_paths,
                       "restart": rule::restarts(a)}),
            )
            .await;
        }
        Ok(())
    }

    /// Puts gateway `p` back: its saved values written over the hash read now.
    async fn revert(
        &self,
        op: &Operation,
        p: &mut GatewayProgress,
        rp: &RolloutParams,
        target: &Patch,
        by: &Caller,
    ) -> Result<(), ConfigError> {
        let id = p.gateway_id;
        let op_id = op.id.clone();
        let saved = self
            .stored(move |s| s.rollout_previous(&op_id, id))
            .await?
            .and_then(|t| serde_json::from_str::<Saved>(&t).ok());
        let Some(saved) = saved else {
            rule::finish(
                p,
                Step::Failed,
                "could not be put back: no earlier values were saved",
                unix_now_ms(),
            );
            return Ok(());
        };
        if saved.patch.is_empty() {
            rule::after_revert(
                p,
                Ok(&json!({"noop": true})),
                &saved.kept,
                rp,
                unix_now_ms(),
            );
            return Ok(());
        }
        let Some((live, _)) = self.paced_read(p).await else {
            return Ok(());
        };
        let mut replace: Vec<String> = saved.replace_paths.clone();
        replace.extend(target.replace_paths.iter().cloned());
        replace.sort();
        replace.dedup();
        let note = format!("revert of config rollout {}", op.id);
        let answer = match self.patch(id, &saved.patch, &live, &note, &replace).await {
            Ok(answer) => answer,
            Err(unsent) => {
                p.detail = Some(format!("not put back yet: {unsent}"));
                return Ok(());
            }
        };
        let outcome = answer.as_ref().map_err(Clone::clone);
        rule::after_revert(p, outcome, &saved.kept, rp, unix_now_ms());
        if p.step == Step::Reverted {
            let paths: Vec<String> = patch::leaves(&saved.patch)
                .iter()
                .map(|(path, _)| patch::dotted(path))
                .collect();
            self.audit(
                by,
                "config.rollout.revert",
                id,
                json!({"operation_id": op.id, "paths": paths, "not_put_back": saved.kept}),
            )
            .await;
        }
        Ok(())
    }

    /// `config.patch` of `raw` over the hash `live` was read with: the answer or the
    /// gateway's refusal; `Err`: not sent (why).
    async fn patch(
        &self,
        id: GatewayId,
        raw: &Map<String, Value>,
        live: &Live,
        note: &str,
        replace_paths: &[String],
    ) -> Result<Result<Value, Refusal>, String> {
        let mut params = json!({
            "raw": Value::Object(raw.clone()).to_string(),
            "baseHash": live.hash,
            "note": bounded::text(note, 200),
        });
        if !replace_paths.is_empty() {
            params["replacePaths"] = json!(replace_paths);
        }
        match self
            .fleet
            .ctx
            .call_gateway(id, "config.patch", params)
            .await
        {
            Ok(answer) => Ok(Ok(answer)),
            Err(e) => refusal(&e).map(Err),
        }
    }

    async fn audit(&self, by: &Caller, action: &'static str, id: GatewayId, details: Value) {
        let by = by.clone();
        let written = self
            .stored(move |s| s.audit(&by, action, "gateway", id.to_string(), &details))
            .await;
        if let Err(e) = written {
            tracing::warn!(%e, action, "could not audit a rollout's write");
        }
    }

    /// An event for each gateway whose step moved, and one for the rollout's state.
    fn announce(
        &self,
        op: &Operation,
        before: &[GatewayProgress],
        state_before: crate::fleet::operation::model::OperationState,
    ) {
        for (now, was) in op.progress.iter().zip(before) {
            if now.step.name() != was.step.name() || now.detail != was.detail {
                self.events.publish(
                    EventKind::OperationProgress,
                    Some(now.gateway_id),
                    json!({"operation_id": op.id, "kind": op.kind, "state": op.state, "gateway": now}),
                );
            }
        }
        if op.state != state_before {
            self.events.publish(
                EventKind::OperationProgress,
                None,
                json!({"operation_id": op.id, "kind": op.kind, "state": op.state, "detail": op.detail}),
            );
            if !op.state.is_live() {
                self.fleet.operations.finished(op.kind, op.state);
                tracing::info!(operation = %op.id, state = op.state.as_str(), "config rollout over");
            }
        }
    }
}
