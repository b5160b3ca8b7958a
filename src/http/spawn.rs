//! `POST /api/spawn` and `GET /api/spawn/{id}`: the request is validated into a
//! [`SpawnOrder`] and started by the fleet ([`crate::fleet::spawn`]: gateway choice, the
//! record, the call and the tracking live there).

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::json::JsonBody;
use super::principal::Authenticated;
use super::visible::Visible;
use super::{AppState, blocking};
use crate::db::spawns::SpawnRow;
use crate::domain::{SpawnId, SpawnStatus};
use crate::fleet::spawn::{SpawnForm, SpawnOrder};
use gateway_supervisor_actors::model::{Caller, GatewayId};

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpawnRequest {
    /// Agent form: the agent to run (its id on the gateway).
    pub agent: Option<String>,
    /// Agent form: the message/task.
    pub task: Option<String>,
    pub label: Option<String>,
    pub model: Option<String>,
    pub gateway_id: Option<GatewayId>,
    /// Only a gateway whose labels this selector picks (`region=eu,tier!=canary`); with
    /// `gateway_id`, that gateway must be one of them.
    pub selector: Option<String>,
    /// Gateways whose labels this selector picks are preferred (the acting primary and the
    /// least loaded are looked for among them first).
    pub prefer_selector: Option<String>,
    /// 10–3600, default 300.
    pub timeout_seconds: Option<u64>,
    /// Process form (seed protocol): the command to run on a gateway that offers `spawn`.
    pub command: Option<String>,
    pub args: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    pub env: Option<Map<String, Value>>,
    pub cwd: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SpawnAccepted {
    #[schema(value_type = String)]
    pub spawn_id: SpawnId,
    pub gateway_id: Option<GatewayId>,
    /// `agent` (OpenClaw) or `spawn` (seed process form).
    pub method: String,
    pub run_id: Option<String>,
    pub session_key: Option<String>,
    pub status: SpawnStatus,
}

#[derive(Serialize, ToSchema)]
pub struct SpawnJson {
    #[schema(value_type = String)]
    pub spawn_id: SpawnId,
    pub gateway_id: Option<GatewayId>,
    pub agent: Option<String>,
    pub method: String,
    pub run_id: Option<String>,
    pub session_key: Option<String>,
    pub status: SpawnStatus,
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

impl From<SpawnRow> for SpawnJson {
    fn from(r: SpawnRow) -> Self {
        SpawnJson {
            spawn_id: r.id,
            gateway_id: r.gateway_id,
            agent: r.agent,
            method: r.method,
            run_id: r.run_id,
            session_key: r.session_key,
            status: r.status,
            result: r.result.and_then(|t| serde_json::from_str(&t).ok()),
            error: r.error,
            created_at: r.created_at,
            updated_at: r.updated_at,
            finished_at: r.finished_at,
        }
    }
}

fn accepted(r: &SpawnRow) -> SpawnAccepted {
    SpawnAccepted {
        spawn_id: r.id.clone(),
        gateway_id: r.gateway_id,
        method: r.method.clone(),
        run_id: r.run_id.clone(),
        session_key: r.session_key.clone(),
        status: r.status,
    }
}

/// The request as a spawn order: the agent form or the process form, checked; the request is
/// kept for the record without its environment values.
fn validate(
    req: &SpawnRequest,
    idempotency_key: Option<String>,
    by: Caller,
) -> Result<SpawnOrder, ApiError> {
    let form = form(req)?;
    let mut recorded = serde_json::to_value(req).unwrap_or(Value::Null);
    if let Some(env) = recorded.get_mut("env").and_then(Value::as_object_mut) {
        for v in env.values_mut() {
            *v = json!("(set)");
        }
    }
    Ok(SpawnOrder {
        form,
        agent: req.agent.clone(),
        gateway_id: req.gateway_id,
        selector: req
            .selector
            .as_deref()
            .map(|s| super::labels::selector("selector", s))
            .transpose()?,
        prefer: req
            .prefer_selector
            .as_deref()
            .map(|s| super::labels::selector("prefer_selector", s))
            .transpose()?,
        recorded: recorded.to_string(),
        idempotency_key: idempotency_key
            .map(|k| crate::fleet::spawn::scoped_idempotency_key(&by, &k)),
        by,
        within: None,
    })
}

fn form(req: &SpawnRequest) -> Result<SpawnForm, ApiError> {
    if let Some(command) = &req.command {
        if req.task.is_some() {
            return Err(ApiError::Unprocessable(
                "give either `task` (agent form) or `command` (process form), not both".into(),
            ));
        }
        if command.trim().is_empty() {
            return Err(ApiError::field("command", "command must not be empty"));
        }
        let mut params = json!({"command": command, "args": req.args.clone().unwrap_or_default()});
        if let Some(env) = &req.env {
            if let Some((k, _)) = env.iter().find(|(_, v)| !v.is_string()) {
                return Err(ApiError::field(
                    "env",
                    format!("env values must be strings (`{k}` is not)"),
                ));
            }
            params["env"] = Value::Object(env.clone());
        }
        if let Some(cwd) = &req.cwd {
            params["cwd"] = json!(cwd);
        }
        return Ok(SpawnForm::Process { params });
    }
    let task = req
        .task
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| {
            ApiError::field(
                "task",
                "task is required (or give `command` for the process form)",
            )
        })?;
    let agent = req
        .agent
        .as_deref()
        .filter(|a| !a.trim().is_empty())
        .ok_or_else(|| ApiError::field("agent", "agent is required"))?;
    let timeout_secs = req
        .timeout_seconds
        .unwrap_or(crate::fleet::spawn::DEFAULT_RUN_TIMEOUT.as_secs());
    if !(10..=3600).contains(&timeout_secs) {
        return Err(ApiError::field(
            "timeout_seconds",
            "timeout_seconds must be between 10 and 3600",
        ));
    }
    let mut params = json!({"message": task, "agentId": agent, "timeout": timeout_secs});
    if let Some(l) = &req.label {
        params["label"] = json!(l);
    }
    if let Some(m) = &req.model {
        params["model"] = json!(m);
    }
    Ok(SpawnForm::Agent {
        params,
        timeout: Duration::from_secs(timeout_secs),
    })
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    match req.headers().get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let key = v
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|k| !k.is_empty() && k.len() <= 200);
            key.map(|k| Some(k.to_owned())).ok_or_else(|| {
                ApiError::field(
                    "Idempotency-Key",
                    "Idempotency-Key must be 1–200 visible characters",
                )
            })
        }
    }
}

#[utoipa::path(post, path = "/api/spawn", tag = "spawn",
    description = "Starts an agent run (`{agent, task, …}`, OpenClaw `agent` method, tracked with `agent.wait`) or a process (`{command, args, env, cwd}`, on gateways offering the seed's `spawn`). Gateway: explicit `gateway_id` → the agent's `gateway_config.preferred_gateway` if healthy → the acting primary → the healthy gateway with the fewest active sessions. A repeated `Idempotency-Key` returns the first spawn and starts nothing. A key scoped to a tenant spawns on its tenant's gateways only. Every run is admitted against its key's and its gateway's tenant's spend budgets (`/api/spend/budgets`) by reserving an estimate, and settled when it ends at what its gateway says it cost.",
    request_body = SpawnRequest,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200,
        pattern = r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$",
        description = "1–200 visible characters; a retry with the same key (and the same API key) gets the first spawn and starts nothing; the same key with a different request is 422")),
    responses((status = 202, body = SpawnAccepted), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "`unprocessable`: both `task` and `command`; `idempotency_key_reused`: the `Idempotency-Key` was used for a different request"), (status = 429, body = ErrorBody, description = "`budget_exceeded`: a spend budget of the key or the tenant (`details.budget`, `details.limit`), until `Retry-After`; or an agent's daily `usage.budgets`"), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody, description = "no healthy gateway (the reason is given); `storage_unavailable`: the spend ledger cannot be read (budgets fail closed)")))]
pub async fn create(
    state: web::Data<AppState>,
    who: Authenticated,
    visible: Visible,
    req: HttpRequest,
    body: JsonBody<SpawnRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut order = validate(&body.0, idempotency_key(&req)?, who.0.caller())?;
    // A hop comes with the gateway the forwarding instance chose (the request is recorded as
    // the client sent it).
    order.gateway_id = order.gateway_id.or_else(|| super::relay::hop_gateway(&req));
    visible.agent(order.agent.as_deref())?;
    if let Some(id) = order.gateway_id {
        visible.one(id)?;
    }
    order.within = visible.within();
    let result = state.fleet.spawns.spawn(order).await;
    let body = serde_json::to_vec(&body.0).ok();
    let spawn = match super::relay::or_owner(&state, &req, body, result).await? {
        super::relay::Here::Done(spawn) => spawn,
        super::relay::Here::Relayed(res) => return Ok(res),
    };
    Ok(HttpResponse::Accepted().json(accepted(&spawn)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SpawnQuery {
    /// Only spawns in this status.
    pub status: Option<SpawnStatus>,
    #[param(minimum = 1)]
    #[serde(default, deserialize_with = "super::query::id")]
    pub gateway_id: Option<GatewayId>,
    /// 1–1000, default 50.
    #[param(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "super::query::integer")]
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct SpawnList {
    /// Newest first.
    pub spawns: Vec<SpawnJson>,
    /// Spawns that matched the filter, listed or not.
    pub total: i64,
    /// More matched than `limit` allowed.
    pub truncated: bool,
}

#[utoipa::path(get, path = "/api/spawn", tag = "spawn",
    description = "Spawns newest first, optionally only those in one status or on one gateway.",
    params(SpawnQuery),
    responses((status = 200, body = SpawnList), (status = 400, body = ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    visible: Visible,
    query: web::Query<SpawnQuery>,
) -> Result<HttpResponse, ApiError> {
    let SpawnQuery {
        status,
        gateway_id,
        limit,
    } = query.into_inner();
    let limit = super::query::limit(limit, 50)?;
    if let Some(id) = gateway_id {
        visible.one(id)?;
    }
    let within: Option<Vec<GatewayId>> = visible.ids().map(|ids| ids.into_iter().collect());
    let store = state.store.clone();
    let (rows, total) =
        blocking(move || store.list_spawns(status, gateway_id, within.as_deref(), limit)).await?;
    Ok(HttpResponse::Ok().json(SpawnList {
        truncated: total > rows.len() as i64,
        total,
        spawns: rows.into_iter().map(SpawnJson::from).collect(),
    }))
}

#[utoipa::path(get, path = "/api/spawn/{id}", tag = "spawn",
    params(("id" = String, Path, description = "spawn_id")),
    responses((status = 200, body = SpawnJson), (status = 404, body = ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    visible: Visible,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let store = state.store.clone();
    let lookup = SpawnId::from(id.as_str());
    let row = blocking(move || store.spawn(&lookup))
        .await?
        .filter(|row| visible.sees_all() || row.gateway_id.is_some_and(|g| visible.gateway(g)))
        .ok_or(ApiError::SpawnNotFound(id))?;
    Ok(HttpResponse::Ok().json(SpawnJson::from(row)))
}
