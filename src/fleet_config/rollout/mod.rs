//! Config rollouts (docs/design.md, *Config rollouts*): a patch — a profile's, or one given
//! with a selector — written to the gateways a selector picks, a few at a time, canaries
//! first, as a fleet operation (Nomad's `update` stanza is the model). Per gateway:
//! `config.get`, the values the patch replaces saved (encrypted), `config.patch` over the hash
//! read (again on a lost race), through the restart the gateway says it needs, healthy for
//! `min_healthy_time`, the written paths read back. The first unhealthy gateway stops it; with
//! `auto_revert` every changed gateway gets its saved values back by the same path. `rule`
//! decides, the playbook carries out (its writes paced under the gateway's limit by the
//! engine's `Hands`).

pub mod answers;
mod playbook;
pub mod reload_plan;
pub mod rule;
pub use playbook::playbook;
pub mod values;

use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::drift::{Live, SHOWN_BYTES};
use super::patch;
use super::profile::{self, Invalid};
use super::waves;
use super::{ConfigError, FleetConfig};
use crate::db::config_rollouts::{RolloutRecord, Steer};
use crate::db::operations::Operation;
use crate::domain::OperationId;
use crate::fleet::operation::OperationOrder;
use crate::fleet::operation::model::{KindParams, OperationParams, RolloutParams};
use gateway_supervisor_actors::labels::Selector;
use gateway_supervisor_actors::model::{Caller, GatewayId};

/// How often a gateway's write is tried when another write comes between its read and its
/// write.
pub const MAX_ATTEMPTS: u32 = 5;
/// Gateways read at once for a dry run.
const READ_AT_ONCE: usize = 16;

/// What a rollout writes.
#[derive(Debug, Clone)]
pub enum Source {
    /// A profile's patch, to the gateways its selector picks (or `selector`, narrower).
    Profile {
        name: String,
        selector: Option<String>,
    },
    /// A patch to the gateways `selector` picks.
    Patch {
        selector: String,
        patch: Value,
        replace_paths: Vec<String>,
    },
}

/// A rollout as asked for, its numbers checked by the caller.
#[derive(Debug, Clone)]
pub struct RolloutSpec {
    pub source: Source,
    pub canary: u32,
    pub max_parallel: u32,
    pub min_healthy_time_s: u64,
    pub healthy_deadline_s: u64,
    pub auto_revert: bool,
    pub auto_promote: bool,
    pub note: Option<String>,
}

/// One gateway of a dry run: what the patch would change there.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlannedGateway {
    pub gateway_id: GatewayId,
    pub name: String,
    pub canary: bool,
    /// The paths whose live value differs from the patch's (secrets without values).
    pub changes: Vec<super::drift::PathDrift>,
    /// Secret paths the patch sets, whose live values cannot be read back.
    pub unverified: Vec<String>,
    /// Why its live config was not read (then `changes` is empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A wave of a rollout.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WaveJson {
    pub canary: bool,
    pub gateways: Vec<GatewayId>,
}

/// What a dry run answers: the diff per gateway and the waves; nothing is touched.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DryRun {
    pub gateways: Vec<PlannedGateway>,
    pub waves: Vec<WaveJson>,
}

/// A rollout as shown: its patch (secrets as the redaction marker) and where it comes from.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RolloutPatch {
    pub profile: Option<String>,
    pub selector: String,
    #[schema(value_type = Object)]
    pub patch: Value,
    pub replace_paths: Vec<String>,
    pub note: Option<String>,
}

/// The waves of gateways `ids` (in order) for these parameters.
pub fn waves_of(ids: &[GatewayId], params: &OperationParams) -> Vec<WaveJson> {
    let canary = usize::try_from(params.canary).unwrap_or(usize::MAX);
    let parallel = usize::try_from(params.max_unavailable).unwrap_or(usize::MAX);
    waves::plan(ids, canary.min(ids.len()), parallel.max(1))
        .unwrap_or_default()
        .into_iter()
        .map(|w| WaveJson {
            canary: w.canary,
            gateways: w.gateways,
        })
        .collect()
}

/// What a rollout resolves to: the patch in full (secrets in clear, only in memory), as shown,
/// and its record.
struct Resolved {
    selector: Selector,
    full: Map<String, Value>,
    record: RolloutRecord,
}

impl FleetConfig {
    async fn resolve(&self, spec: &RolloutSpec) -> Result<Resolved, ConfigError> {
        let bad_selector = |e: gateway_supervisor_actors::labels::SelectorError| Invalid {
            field: "selector",
            message: e.to_string(),
        };
        match &spec.source {
            Source::Profile { name, selector } => {
                let p = self.profile(name).await?;
                let narrower = selector
                    .as_deref()
                    .map(Selector::parse)
                    .transpose()
                    .map_err(bad_selector)?;
                // A narrower selector picks among the profile's gateways: both must match.
                let text = match &narrower {
                    Some(n) if !n.to_string().is_empty() => {
                        format!("{},{}", p.selector, n).trim_matches(',').to_owned()
                    }
                    _ => p.selector.to_string(),
                };
                let selector = Selector::parse(&text).map_err(bad_selector)?;
                Ok(Resolved {
                    full: p.full_patch(),
                    record: RolloutRecord {
                        profile: Some(p.name.clone()),
                        selector: selector.to_string(),
                        patch: Value::Object(p.patch.clone()).to_string(),
                        secrets: (!p.secrets.is_empty())
                            .then(|| Value::Object(p.secrets.clone()).to_string()),
                        replace_paths: json!(p.replace_paths).to_string(),
                        note: spec.note.clone().or(p.note.clone()),
                    },
                    selector,
                })
            }
            Source::Patch {
                selector,
                patch: given,
                replace_paths,
            } => {
                let selector = Selector::parse(selector).map_err(bad_selector)?;
                profile::check_replace_paths(replace_paths)?;
                let profile::Split { shown, secrets } = profile::split(given, None)?;
                let mut full = shown.clone();
                patch::merge(&mut full, &secrets);
                Ok(Resolved {
                    full,
                    record: RolloutRecord {
                        profile: None,
                        selector: selector.to_string(),
                        patch: Value::Object(shown).to_string(),
                        secrets: (!secrets.is_empty()).then(|| Value::Object(secrets).to_string()),
                        replace_paths: json!(replace_paths).to_string(),
                        note: spec.note.clone(),
                    },
                    selector,
                })
            }
        }
    }

    /// Starts a rollout (an operation, 202), or answers its dry run.
    pub async fn start_rollout(
        &self,
        spec: RolloutSpec,
        dry_run: bool,
        by: &Caller,
    ) -> Result<Result<Operation, DryRun>, ConfigError> {
        profile::check_note(spec.note.as_deref())?;
        let resolved = self.resolve(&spec).await?;
        let gateways = self.hands.gateway_labels(None);
        let picked: Vec<(GatewayId, String)> = gateways
            .into_iter()
            .filter(|(_, _, labels)| resolved.selector.matches(labels))
            .map(|(id, name, _)| (id, name))
            .collect();
        if picked.is_empty() {
            return Err(Invalid {
                field: "selector",
                message: format!("the selector `{}` picks no gateway", resolved.selector),
            }
            .into());
        }
        if usize::try_from(spec.canary).unwrap_or(usize::MAX) > picked.len() {
            return Err(Invalid {
                field: "canary",
                message: format!(
                    "canary ({}) is more than the {} gateway(s) the selector picks",
                    spec.canary,
                    picked.len()
                ),
            }
            .into());
        }
        let params = OperationParams {
            max_unavailable: spec.max_parallel,
            wait_ready_s: spec.healthy_deadline_s,
            abort_on_failure: true,
            canary: spec.canary,
            of: KindParams::Rollout(RolloutParams {
                min_healthy_time_s: spec.min_healthy_time_s,
                healthy_deadline_s: spec.healthy_deadline_s,
                auto_revert: spec.auto_revert,
                auto_promote: spec.auto_promote,
                promoted: false,
                max_attempts: MAX_ATTEMPTS,
            }),
        };
        let ids: Vec<GatewayId> = picked.iter().map(|(id, _)| *id).collect();
        if dry_run {
            return Ok(Err(self.dry_run(&picked, &resolved.full, &params).await));
        }
        let order = OperationOrder {
            kind: playbook::KIND,
            gateways: ids,
            params,
        };
        let record = resolved.record;
        let op = self
            .operations
            .start_with(order, by, move |s, id, order, progress, by| {
                s.insert_config_rollout(id, order.kind, &order.params, progress, by, &record)
            })
            .await?;
        tracing::info!(operation = %op.id, gateways = op.progress.len(), "config rollout started");
        Ok(Ok(op))
    }

    /// Each picked gateway's live values against the patch (read where it is linked here),
    /// and the waves.
    async fn dry_run(
        &self,
        picked: &[(GatewayId, String)],
        full: &Map<String, Value>,
        params: &OperationParams,
    ) -> DryRun {
        use futures_util::StreamExt;
        let canaries = usize::try_from(params.canary).unwrap_or(usize::MAX);
        let gateways: Vec<PlannedGateway> = futures_util::stream::iter(picked.iter().enumerate())
            .map(|(i, (id, name))| async move {
                let read = self
                    .hands
                    .call(*id, "config.get", json!({}))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|a| {
                        Live::from_answer(&a).ok_or_else(|| "config.get carried no config".into())
                    });
                let mut g = PlannedGateway {
                    gateway_id: *id,
                    name: name.clone(),
                    canary: i < canaries,
                    changes: Vec::new(),
                    unverified: Vec::new(),
                    reason: None,
                };
                match read {
                    Ok(live) => {
                        let judged = super::drift::judge(full, &live);
                        g.changes = judged.paths;
                        g.unverified = judged.unverified;
                    }
                    Err(why) => {
                        g.reason = Some(gateway_supervisor_actors::bounded::text(
                            &format!("not read: {why}"),
                            SHOWN_BYTES,
                        ));
                    }
                }
                g
            })
            .buffered(READ_AT_ONCE)
            .collect()
            .await;
        let ids: Vec<GatewayId> = picked.iter().map(|(id, _)| *id).collect();
        DryRun {
            gateways,
            waves: waves_of(&ids, params),
        }
    }

    /// Rollout `id` and its patch as shown.
    pub async fn rollout(
        &self,
        id: &OperationId,
    ) -> Result<(Operation, RolloutPatch), ConfigError> {
        let key = id.clone();
        let op = self
            .stored(move |s| s.operation(&key))
            .await?
            .filter(|op| op.kind == playbook::KIND)
            .ok_or_else(|| ConfigError::OperationNotFound(id.to_string()))?;
        let key = id.clone();
        let record = self
            .stored(move |s| s.config_rollout(&key))
            .await?
            .ok_or_else(|| ConfigError::OperationNotFound(id.to_string()))?;
        Ok((op, shown(&record)))
    }

    /// The newest rollouts first, at most `limit`.
    pub async fn rollouts(&self, limit: i64) -> Result<Vec<Operation>, ConfigError> {
        let ops = self
            .stored(move |s| s.operations(limit.saturating_mul(4)))
            .await?;
        Ok(ops
            .into_iter()
            .filter(|op| op.kind == playbook::KIND)
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect())
    }

    /// An operator's pause, resume or promote.
    pub async fn steer_rollout(
        &self,
        id: &OperationId,
        steer: Steer,
        by: &Caller,
    ) -> Result<Operation, ConfigError> {
        let (op, _) = self.rollout(id).await?;
        let mut params = op.params.clone();
        if steer == Steer::Promote
            && let KindParams::Rollout(rp) = &mut params.of
        {
            rp.promoted = true;
        }
        let (key, by) = (id.clone(), by.clone());
        let after = self
            .stored(move |s| s.steer_operation(&key, steer, &params, &by))
            .await?
            .ok_or_else(|| ConfigError::OperationNotFound(id.to_string()))?;
        if after.version == op.version {
            return Err(ConfigError::NotSteerable(format!(
                "rollout {id} is {}: there is nothing to {}",
                op.state.as_str(),
                steer.as_str()
            )));
        }
        self.operations.wake();
        Ok(after)
    }
}

/// A stored rollout's patch as shown (secrets stay the marker the record holds).
fn shown(r: &RolloutRecord) -> RolloutPatch {
    RolloutPatch {
        profile: r.profile.clone(),
        selector: r.selector.clone(),
        patch: serde_json::from_str(&r.patch).unwrap_or(Value::Null),
        replace_paths: serde_json::from_str(&r.replace_paths).unwrap_or_default(),
        note: r.note.clone(),
    }
}
