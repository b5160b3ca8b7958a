//! `/api/config/rollouts`: desired configuration written to the fleet a few gateways at a
//! time, canaries first, stopped and put back at the first unhealthy gateway (docs/design.md,
//! *Config rollouts*). A rollout is a fleet operation: accepted (202, with a `Location`),
//! carried out in the background, read back here or at `/api/operations/{id}`, followed as
//! `operation.progress` events. Admins start and steer them (a rollout changes what runs on
//! many gateways); viewers read them, secrets shown as OpenClaw shows them.

use actix_web::http::header::LOCATION;
use actix_web::{HttpResponse, web};
use gateway_supervisor_actors::model::GatewayId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::json::JsonBody;
use super::operations::{OperationEnvelope, OperationJson, accepted, operation_id};
use super::principal::Authenticated;
use crate::db::config_rollouts::Steer;
use crate::db::operations::Operation;
use crate::fleet_config::rollout::{DryRun, RolloutPatch, RolloutSpec, Source, WaveJson, waves_of};

const MAX_PARALLEL: u32 = 1_000;
const MIN_HEALTHY_MAX: u64 = 3_600;
const DEADLINE_MAX: u64 = 86_400;

/// A length of time: whole seconds (`30`), or with a unit (`"30s"`, `"5m"`, `"1h"`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Duration {
    Seconds(u64),
    Text(String),
}

impl Duration {
    fn seconds(&self, field: &str) -> Result<u64, ApiError> {
        match self {
            Duration::Seconds(s) => Ok(*s),
            Duration::Text(t) => humantime::parse_duration(t.trim())
                .map(|d| d.as_secs())
                .map_err(|e| {
                    ApiError::field(
                        field,
                        format!(
                            "{field} is seconds (30) or a duration (\"30s\", \"5m\"): {}",
                            gateway_supervisor_actors::bounded::text(&e.to_string(), 80)
                        ),
                    )
                }),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutRequest {
    /// Roll out this config profile's patch to the gateways its selector picks (`selector`,
    /// if given, narrows them). Or give `selector` and `patch`.
    pub profile: Option<String>,
    /// The gateways: a label selector (`region=eu`; `""` picks every gateway).
    pub selector: Option<String>,
    /// With `selector`, no `profile`: a JSON merge patch over each gateway's config, as a
    /// profile's (secret values stored encrypted, never returned).
    #[schema(value_type = Option<Object>)]
    pub patch: Option<Value>,
    /// Array paths the patch replaces whole (`config.patch`'s `replacePaths`).
    #[serde(default)]
    pub replace_paths: Vec<String>,
    /// How many gateways go first, as canaries (the first in id order): 0 up to the number
    /// picked, default 1.
    pub canary: Option<u32>,
    /// How many gateways are written and watched at once: 1–1000, default 1.
    pub max_parallel: Option<u32>,
    /// How long a changed gateway must stay healthy (connected, breaker closed, the same
    /// process) before it is read back and done: 0–3600 s, default 30 s.
    pub min_healthy_time: Option<Duration>,
    /// How long a gateway has, from its start, to be done (through a restart its change
    /// needs); past it, it is unhealthy: 1–86400 s, more than `min_healthy_time`, default 5 m.
    pub healthy_deadline: Option<Duration>,
    /// At the first unhealthy gateway, put every changed gateway back (default true).
    pub auto_revert: Option<bool>,
    /// Go on past the canaries without `POST …/promote` (default true).
    pub auto_promote: Option<bool>,
    /// Answer the diff per gateway and the waves, and touch nothing (default false).
    pub dry_run: Option<bool>,
    /// Why (at most 500 characters; sent to the gateways as the write's note).
    pub note: Option<String>,
}

/// A rollout as shown: its operation, its patch and its waves.
#[derive(Serialize, ToSchema)]
pub struct RolloutJson {
    pub operation: OperationJson,
    pub rollout: RolloutPatch,
    pub waves: Vec<WaveJson>,
}

#[derive(Serialize, ToSchema)]
pub struct RolloutList {
    /// Newest first.
    pub rollouts: Vec<OperationJson>,
}

impl RolloutRequest {
    fn spec(self) -> Result<(RolloutSpec, bool), ApiError> {
        let source = match (self.profile, self.selector, self.patch) {
            (Some(name), selector, None) => Source::Profile { name, selector },
            (None, Some(selector), Some(patch)) => Source::Patch {
                selector,
                patch,
                replace_paths: self.replace_paths,
            },
            (Some(_), _, Some(_)) => {
                return Err(ApiError::field(
                    "patch",
                    "give a profile, or a selector and a patch, not both",
                ));
            }
            (None, _, _) => {
                return Err(ApiError::field(
                    "profile",
                    "give a profile, or a selector and a patch",
                ));
            }
        };
        let canary = self.canary.unwrap_or(1);
        let max_parallel = self.max_parallel.unwrap_or(1);
        if !(1..=MAX_PARALLEL).contains(&max_parallel) {
            return Err(ApiError::field(
                "max_parallel",
                format!("max_parallel must be between 1 and {MAX_PARALLEL}"),
            ));
        }
        let min_healthy = match &self.min_healthy_time {
            Some(d) => d.seconds("min_healthy_time")?,
            None => 30,
        };
        if min_healthy > MIN_HEALTHY_MAX {
            return Err(ApiError::field(
                "min_healthy_time",
                format!("min_healthy_time is at most {MIN_HEALTHY_MAX} s"),
            ));
        }
        let deadline = match &self.healthy_deadline {
            Some(d) => d.seconds("healthy_deadline")?,
            None => 300,
        };
        if !(1..=DEADLINE_MAX).contains(&deadline) || deadline <= min_healthy {
            return Err(ApiError::field(
                "healthy_deadline",
                format!(
                    "healthy_deadline is 1–{DEADLINE_MAX} s and more than min_healthy_time ({min_healthy} s)"
                ),
            ));
        }
        Ok((
            RolloutSpec {
                source,
                canary,
                max_parallel,
                min_healthy_time_s: min_healthy,
                healthy_deadline_s: deadline,
                auto_revert: self.auto_revert.unwrap_or(true),
                auto_promote: self.auto_promote.unwrap_or(true),
                note: self.note,
            },
            self.dry_run.unwrap_or(false),
        ))
    }
}

fn shown(op: Operation, rollout: RolloutPatch) -> RolloutJson {
    let ids: Vec<GatewayId> = op.progress.iter().map(|p| p.gateway_id).collect();
    let waves = waves_of(&ids, &op.params);
    RolloutJson {
        operation: op.into(),
        rollout,
        waves,
    }
}

#[utoipa::path(post, path = "/api/config/rollouts", tag = "config",
    description = "Starts a config rollout — a profile's patch, or a `selector` and `patch` — as an operation: the canaries first, then `max_parallel` gateways at a time. Per gateway: `config.get`, its values before saved (encrypted), `config.patch` over the hash it read (read and tried again when another write came first, at most 5 times), through the restart the gateway says the change needs (a new process), healthy for `min_healthy_time`, the written paths read back. Writes are paced under the gateway's own limit (30 a minute). The first gateway that fails stops it: those not started are left untouched and, with `auto_revert`, every changed gateway gets its earlier values back the same way (the operation ends `reverted`, `detail` saying why). Each write is audited with the key and the operation. With `dry_run`, answers each gateway's diff and the waves (200) and touches nothing.",
    request_body = RolloutRequest,
    responses((status = 202, body = RolloutJson), (status = 200, body = DryRun, description = "the dry run"),
        (status = 400, body = ErrorBody, description = "`invalid_field`: the source, selector (or it picks no gateway), patch, canary, max_parallel, times or note"),
        (status = 404, body = ErrorBody, description = "`config_profile_not_found`"),
        (status = 409, body = ErrorBody, description = "`gateway_busy`: a gateway is already in a running operation")))]
pub async fn start_rollout(
    state: web::Data<AppState>,
    who: Authenticated,
    body: JsonBody<RolloutRequest>,
) -> Result<HttpResponse, ApiError> {
    let (spec, dry_run) = body.0.spec()?;
    match state
        .fleet_config
        .start_rollout(spec, dry_run, &who.0.caller())
        .await?
    {
        Err(plan) => Ok(HttpResponse::Ok().json(plan)),
        Ok(op) => {
            let (op, rollout) = state.fleet_config.rollout(&op.id).await?;
            Ok(HttpResponse::Accepted()
                .insert_header((LOCATION, format!("/api/config/rollouts/{}", op.id)))
                .json(shown(op, rollout)))
        }
    }
}

#[utoipa::path(get, path = "/api/config/rollouts", tag = "config",
    description = "The newest config rollouts first (at most 100).",
    responses((status = 200, body = RolloutList)))]
pub async fn list_rollouts(
    state: web::Data<AppState>,
    visible: super::visible::Visible,
) -> Result<HttpResponse, ApiError> {
    let mut ops = state.fleet_config.rollouts(100).await?;
    ops.retain(|op| visible.all(op.progress.iter().map(|p| p.gateway_id)));
    Ok(HttpResponse::Ok().json(RolloutList {
        rollouts: ops.into_iter().map(OperationJson::from).collect(),
    }))
}

#[utoipa::path(get, path = "/api/config/rollouts/{id}", tag = "config", params(("id" = String, Path)),
    description = "A config rollout: its operation (each gateway's step), its patch (secrets as `__OPENCLAW_REDACTED__`) and its waves.",
    responses((status = 200, body = RolloutJson), (status = 404, body = ErrorBody)))]
pub async fn get_rollout(
    state: web::Data<AppState>,
    visible: super::visible::Visible,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (id, shown_id) = operation_id(id.into_inner())?;
    let (op, rollout) = state.fleet_config.rollout(&id).await?;
    if !visible.all(op.progress.iter().map(|p| p.gateway_id)) {
        return Err(ApiError::OperationNotFound(shown_id));
    }
    Ok(HttpResponse::Ok().json(shown(op, rollout)))
}

async fn steer(
    state: &AppState,
    who: &Authenticated,
    id: String,
    how: Steer,
) -> Result<HttpResponse, ApiError> {
    let (id, _) = operation_id(id)?;
    let op = state
        .fleet_config
        .steer_rollout(&id, how, &who.0.caller())
        .await?;
    Ok(accepted(op))
}

#[utoipa::path(post, path = "/api/config/rollouts/{id}/pause", tag = "config", params(("id" = String, Path)),
    description = "Pauses a rollout: no gateway is started until it is resumed; those started go on to their end.",
    responses((status = 202, body = OperationEnvelope), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`operation_over`: not running or awaiting promotion")))]
pub async fn pause_rollout(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    steer(&state, &who, id.into_inner(), Steer::Pause).await
}

#[utoipa::path(post, path = "/api/config/rollouts/{id}/resume", tag = "config", params(("id" = String, Path)),
    description = "Resumes a paused rollout.",
    responses((status = 202, body = OperationEnvelope), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`operation_over`: not paused")))]
pub async fn resume_rollout(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    steer(&state, &who, id.into_inner(), Steer::Resume).await
}

#[utoipa::path(post, path = "/api/config/rollouts/{id}/promote", tag = "config", params(("id" = String, Path)),
    description = "Lets a rollout go on past its canaries (`auto_promote: false`): the rest follow, `max_parallel` at a time.",
    responses((status = 202, body = OperationEnvelope), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`operation_over`: not awaiting promotion (or paused)")))]
pub async fn promote_rollout(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    steer(&state, &who, id.into_inner(), Steer::Promote).await
}
