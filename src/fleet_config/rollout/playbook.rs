//! A config rollout's playbook on the one fleet engine (`fleet/operation/engine.rs`): the
//! engine plans, records and announces; this says what a rollout does — [`rule::plan`] admits,
//! stops and reverts, and each gateway's step is decided by [`rule::next`] and carried out
//! here: `config.get`, the values the patch replaces saved, `config.patch` over the hash read
//! (a compare-and-set on the gateway, so a round whose record is lost only repeats a write the
//! gateway then answers `noop`), the read back, the revert (docs/design.md, *Config
//! rollouts*).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::answers::{self, Refusal};
use super::rule::{self, Next};
use super::values::{self, Saved};
use crate::db::operations::Operation;
use crate::fleet::FleetError;
use crate::fleet::budget::DisruptionKind;
use crate::fleet::operation::engine::acting;
use crate::fleet::operation::model::{GatewayProgress, OperationKind, RolloutParams, Step};
use crate::fleet::operation::rule::Facts;
use crate::fleet::operation::{Hands, Playbook, Round, Stepped};
use crate::fleet_config::drift::{self, Live};
use crate::fleet_config::patch;
use crate::fleet_config::{ConfigError, FleetConfig};
use gateway_supervisor_actors::bounded;
use gateway_supervisor_actors::messages::CallError;
use gateway_supervisor_actors::model::{Caller, GatewayId};
use gateway_supervisor_actors::unix_now_ms;

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

/// A rollout's storage failure as the engine's.
fn shared(e: ConfigError) -> FleetError {
    match e {
        ConfigError::Fleet(e) => e,
        ConfigError::Storage(e) => FleetError::Storage(e),
        other => FleetError::Busy {
            message: other.to_string(),
            details: Value::Null,
        },
    }
}

/// The kind this playbook carries out (the one place outside `domain/` that names it).
pub const KIND: OperationKind = OperationKind::ConfigRollout;

/// The config rollout's playbook.
pub fn playbook(config: Arc<FleetConfig>) -> Arc<dyn Playbook> {
    Arc::new(Rollouts(config))
}

struct Rollouts(Arc<FleetConfig>);

impl Playbook for Rollouts {
    fn kind(&self) -> OperationKind {
        KIND
    }

    fn plan(&self, op: &mut Operation, now_ms: i64) {
        let Some(rp) = op.params.rollout().cloned() else {
            return;
        };
        let (state, detail) = rule::plan(&mut op.progress, &op.params, &rp, op.state, now_ms);
        op.state = state;
        if detail.is_some() {
            op.detail = detail;
        }
    }

    fn round<'a>(
        &'a self,
        op: &Operation,
        hands: &'a Hands,
    ) -> BoxFuture<'a, Result<Box<dyn Round + 'a>, FleetError>> {
        let (key, rp, by) = (op.id.clone(), op.params.rollout().cloned(), acting(op));
        Box::pin(async move {
            let config = &*self.0;
            let record = config
                .stored(move |s| s.config_rollout(&key))
                .await
                .map_err(shared)?;
            let object = |text: &str| -> Map<String, Value> {
                serde_json::from_str::<Value>(text)
                    .ok()
                    .and_then(|v| v.as_object().cloned())
                    .unwrap_or_default()
            };
            let target = record.map(|record| {
                let mut full = object(&record.patch);
                patch::merge(
                    &mut full,
                    &object(record.secrets.as_deref().unwrap_or("{}")),
                );
                Patch {
                    full,
                    replace_paths: serde_json::from_str(&record.replace_paths).unwrap_or_default(),
                }
            });
            let round: Box<dyn Round + 'a> = Box::new(RolloutRound {
                config,
                hands,
                rp,
                target,
                by,
            });
            Ok(round)
        })
    }

    /// A gateway the rollout is over with is judged again: its drift is what it runs now.
    fn over<'a>(&'a self, id: GatewayId, step: &'a Step) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if *step != Step::Skipped {
                self.0.judge_one(id).await;
            }
        })
    }
}

/// One advance of a rollout: its patch loaded once.
struct RolloutRound<'a> {
    config: &'a FleetConfig,
    hands: &'a Hands,
    rp: Option<RolloutParams>,
    /// `None`: its record is gone (nothing is written).
    target: Option<Patch>,
    by: Caller,
}

impl Round for RolloutRound<'_> {
    fn step<'b>(&'b self, op: &'b Operation, p: GatewayProgress, facts: Facts) -> Stepped<'b> {
        Box::pin(async move {
            match (&self.rp, &self.target) {
                (Some(rp), Some(target)) => {
                    self.step(op, p, &facts, rp, target).await.map_err(shared)
                }
                _ => Ok(p),
            }
        })
    }
}

impl RolloutRound<'_> {
    /// Gateway `p`'s progress after its next step in `op` (unchanged when there is nothing to
    /// do).
    async fn step(
        &self,
        op: &Operation,
        mut p: GatewayProgress,
        facts: &Facts,
        rp: &RolloutParams,
        target: &Patch,
    ) -> Result<GatewayProgress, ConfigError> {
        let now = unix_now_ms();
        match rule::next(&p, facts, rp, op.state, now) {
            Next::Write => self.write(op, &mut p, rp, target).await?,
            Next::Revert => self.revert(op, &mut p, rp, target).await?,
            Next::Check => {
                let read = self
                    .read(p.gateway_id)
                    .await
                    .and_then(|(live, _)| values::read_back(&target.full, &live));
                answers::after_check(&mut p, read, rp, unix_now_ms());
            }
            begin @ Next::Begin { .. } => {
                let hold = std::time::Duration::from_secs(rp.healthy_deadline_s.saturating_add(60));
                let kind = DisruptionKind::ConfigRestart;
                if rule::will_restart(&target.full)
                    && !self
                        .hands
                        .within_budget(op, &mut p, kind, hold, &self.by)
                        .await?
                {
                    return Ok(p);
                }
                rule::apply(&mut p, &begin, now);
            }
            other => rule::apply(&mut p, &other, now),
        }
        Ok(p)
    }

    /// `config.get` of gateway `id`: its live config and the answer whole.
    async fn read(&self, id: GatewayId) -> Result<(Live, Value), String> {
        let answer = self
            .hands
            .call(id, "config.get", json!({}))
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
        self.hands.write_turn(id)
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
            crate::fleet::operation::pace::LIMIT,
            (wait_ms + 999) / 1000
        ));
    }

    /// `config.get`, then a write's turn under the gateway's limit: what it read, or `None`
    /// with gateway `p` saying why it could not read, or held back (paced). The turn is taken
    /// only once there is something to write over: a read that fails spends none, and keeps
    /// saying why it failed.
    async fn paced_read(&self, p: &mut GatewayProgress) -> Option<(Live, Value)> {
        let read = match self.read(p.gateway_id).await {
            Ok(read) => read,
            Err(why) => {
                p.detail = Some(why);
                return None;
            }
        };
        if let Err(wait) = self.paced(p.gateway_id) {
            Self::hold_back(p, wait);
            return None;
        }
        Some(read)
    }

    /// `config.get`, the values the patch replaces saved, `config.patch` over the hash read.
    async fn write(
        &self,
        op: &Operation,
        p: &mut GatewayProgress,
        rp: &RolloutParams,
        target: &Patch,
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
            self.config
                .stored(move |s| s.save_rollout_previous(&op_id, id, &text))
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
        answers::after_write(p, answer.as_ref().map_err(Clone::clone), rp, unix_now_ms());
        if let Ok(a) = &answer
            && a.get("noop").and_then(Value::as_bool) != Some(true)
        {
            let paths = patch::leaf_paths(&target.full);
            self.hands
                .audited(
                    &self.by,
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
    ) -> Result<(), ConfigError> {
        let id = p.gateway_id;
        let op_id = op.id.clone();
        let saved = self
            .config
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
            answers::after_revert(
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
        answers::after_revert(p, outcome, &saved.kept, rp, unix_now_ms());
        if p.step == Step::Reverted {
            let paths = patch::leaf_paths(&saved.patch);
            self.hands
                .audited(
                    &self.by,
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
        match self.hands.call(id, "config.patch", params).await {
            Ok(answer) => Ok(Ok(answer)),
            Err(e) => refusal(&e).map(Err),
        }
    }
}
