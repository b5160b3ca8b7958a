//! `POST /api/spawn` and `GET /api/spawn/{id}`. The gateway is chosen by `selection::select`;
//! the spawn is recorded before the gateway is asked; a client `Idempotency-Key` never starts two
//! runs; a background tracker follows the run to `ok | error | aborted | timeout`.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::error::call_error;
use super::error::{ApiError, ErrorBody};
use super::json::JsonBody;
use super::{AppState, blocking};
use crate::db::spawns::{NewSpawn, SpawnInsert, SpawnRow, SpawnUpdate};
use crate::secrets::random_hex;
use gateway_supervisor_actors::messages::{GatewayLink, SpawnTargets};
use gateway_supervisor_actors::selection::{self, NoGateway};

const DEFAULT_TIMEOUT_SECS: u64 = 300;
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpawnRequest {
    /// Agent form: the agent to run (its id on the gateway).
    pub agent: Option<String>,
    /// Agent form: the message/task.
    pub task: Option<String>,
    pub label: Option<String>,
    pub model: Option<String>,
    pub gateway_id: Option<i64>,
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
    pub spawn_id: String,
    pub gateway_id: Option<i64>,
    /// `agent` (OpenClaw) or `spawn` (seed process form).
    pub method: String,
    pub run_id: Option<String>,
    pub session_key: Option<String>,
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct SpawnJson {
    pub spawn_id: String,
    pub gateway_id: Option<i64>,
    pub agent: Option<String>,
    pub method: String,
    pub run_id: Option<String>,
    pub session_key: Option<String>,
    /// pending | running | ok | error | aborted | timeout
    pub status: String,
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
        status: r.status.clone(),
    }
}

fn random_id() -> Result<String, ApiError> {
    let h = random_hex::<16>()?;
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

/// The agent form or the process form, validated.
enum Form {
    Agent { params: Value, timeout: Duration },
    Process { params: Value },
}

fn validate(req: &SpawnRequest) -> Result<Form, ApiError> {
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
        return Ok(Form::Process { params });
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
    let timeout_secs = req.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECS);
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
    Ok(Form::Agent {
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
    description = "Starts an agent run (`{agent, task, …}`, OpenClaw `agent` method, tracked with `agent.wait`) or a process (`{command, args, env, cwd}`, on gateways offering the seed's `spawn`). Gateway: explicit `gateway_id` → the agent's `gateway_config.preferred_gateway` if healthy → the acting primary → the healthy gateway with the fewest active sessions. A repeated `Idempotency-Key` returns the first spawn and starts nothing.",
    request_body = SpawnRequest,
    responses((status = 202, body = SpawnAccepted), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "`unprocessable`: both `task` and `command`"), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody, description = "no healthy gateway (the reason is given)")),
    security(("api_key" = ["operator"]), ("bearer" = ["operator"])))]
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<SpawnRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.0;
    let form = validate(&request)?;
    let client_key = idempotency_key(&req)?;
    let method = match form {
        Form::Agent { .. } => "agent",
        Form::Process { .. } => "spawn",
    };
    // The agent's preferred gateway (by id or by name).
    let preferred = match request.agent.clone() {
        Some(agent) => {
            let store = state.store.clone();
            blocking(move || store.agent_config(&agent))
                .await?
                .and_then(|c| c.pointer("/gateway_config/preferred_gateway").cloned())
        }
        None => None,
    };
    let targets = state.registry.send(SpawnTargets).await?;
    let preferred_id = preferred.and_then(|p| match p {
        Value::Number(n) => n.as_i64(),
        Value::String(name) => targets
            .iter()
            .find(|t| t.candidate.name == name)
            .map(|t| t.candidate.id),
        _ => None,
    });
    let candidates: Vec<selection::Candidate> = targets
        .iter()
        .map(|t| selection::Candidate {
            capable: t.methods.iter().any(|m| m == method),
            ..t.candidate.clone()
        })
        .collect();
    let (gateway_id, choice) =
        selection::select(&candidates, request.gateway_id, preferred_id, method).map_err(|e| {
            match e {
                NoGateway::Unknown(id) => ApiError::GatewayNotFound(id),
                NoGateway::Unavailable { reason, .. } => ApiError::GatewayUnavailable(reason),
                NoGateway::NoneHealthy { reason } => ApiError::NoHealthyGateway(reason),
            }
        })?;
    let target = targets
        .iter()
        .find(|t| t.candidate.id == gateway_id)
        .cloned();
    let link = target
        .as_ref()
        .and_then(|t| t.link.clone())
        .ok_or_else(|| ApiError::GatewayUnavailable("the gateway's link is restarting".into()))?;
    let gateway_name = target.map(|t| t.candidate.name).unwrap_or_default();

    // Recorded first (without environment values), so a crash never loses a started spawn.
    let spawn_id = random_id()?;
    let mut recorded = serde_json::to_value(&request).unwrap_or(Value::Null);
    if let Some(env) = recorded.get_mut("env").and_then(Value::as_object_mut) {
        for v in env.values_mut() {
            *v = json!("(set)");
        }
    }
    let store = state.store.clone();
    let (sid, agent, key, recorded_text) = (
        spawn_id.clone(),
        request.agent.clone(),
        client_key.clone(),
        recorded.to_string(),
    );
    let row = blocking(move || {
        store.insert_spawn(&NewSpawn {
            id: &sid,
            gateway_id,
            agent: agent.as_deref(),
            method,
            request: &recorded_text,
            idempotency_key: key.as_deref(),
        })
    })
    .await?;
    let row = match row {
        SpawnInsert::Created(row) => row,
        // The same Idempotency-Key again: the first spawn, nothing new started.
        SpawnInsert::Existing(existing) => {
            return Ok(HttpResponse::Accepted().json(accepted(&existing)));
        }
    };

    let (params, wait) = match form {
        Form::Agent {
            params, timeout, ..
        } => {
            let mut params = params;
            // The run's idempotency key is the spawn id: a retried call never runs twice.
            params["idempotencyKey"] = json!(row.id);
            (params, Some(timeout))
        }
        Form::Process { params } => (params, None),
    };
    let subscription = state.events.subscribe_after(None).1;
    let outcome = link.call(method, Some(params), CALL_TIMEOUT).await;
    let payload = match outcome {
        Ok(p) => p,
        Err(e) => {
            let store = state.store.clone();
            let (sid, msg) = (row.id.clone(), e.to_string());
            let _ = blocking(move || {
                store.update_spawn(
                    &sid,
                    SpawnUpdate {
                        status: Some("error".into()),
                        error: Some(msg),
                        finished: true,
                        ..SpawnUpdate::default()
                    },
                )
            })
            .await;
            return Err(call_error(e, &gateway_name));
        }
    };
    let run_id = payload
        .get("runId")
        .or_else(|| payload.get("spawnId"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let session_key = payload
        .get("sessionKey")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let store = state.store.clone();
    let (sid, r, s) = (row.id.clone(), run_id.clone(), session_key.clone());
    blocking(move || {
        store.update_spawn(
            &sid,
            SpawnUpdate {
                run_id: r,
                session_key: s,
                status: Some("running".into()),
                ..SpawnUpdate::default()
            },
        )
    })
    .await?;
    tracing::info!(spawn_id = %row.id, gateway = %gateway_name, selected_by = choice.as_str(), method, "spawn started");
    let tracked = Tracked {
        spawn_id: row.id.clone(),
        gateway_id,
        link,
        run_id: run_id.clone(),
        session_key: session_key.clone(),
        wait,
    };
    actix_web::rt::spawn(track(state.clone(), tracked, subscription));
    Ok(HttpResponse::Accepted().json(SpawnAccepted {
        spawn_id: row.id,
        gateway_id: Some(gateway_id),
        method: method.to_owned(),
        run_id,
        session_key,
        status: "running".into(),
    }))
}

/// What the tracker needs to follow one spawn.
struct Tracked {
    spawn_id: String,
    gateway_id: i64,
    link: GatewayLink,
    run_id: Option<String>,
    session_key: Option<String>,
    /// `Some(timeout)` for an agent run (waited with `agent.wait`); `None` for a process.
    wait: Option<Duration>,
}

/// Follows one spawn to its end and records it.
async fn track(
    state: web::Data<AppState>,
    t: Tracked,
    mut events: tokio::sync::broadcast::Receiver<
        std::sync::Arc<gateway_supervisor_actors::events::Event>,
    >,
) {
    let Tracked {
        spawn_id,
        gateway_id,
        link,
        run_id,
        session_key,
        wait,
    } = t;
    let (status, result, error) = match (wait, run_id) {
        (Some(timeout), Some(run_id)) => {
            let waited = link
                .call(
                    "agent.wait",
                    Some(json!({"runId": run_id, "timeoutMs": timeout.as_millis() as u64})),
                    timeout + Duration::from_secs(10),
                )
                .await;
            match waited {
                Ok(p) => {
                    let (status, err) = run_outcome(&p);
                    let reply = if status == "ok" {
                        last_reply(&link, session_key.as_deref()).await
                    } else {
                        None
                    };
                    let mut result = p.clone();
                    if let Some(r) = reply {
                        result["reply"] = json!(r);
                    }
                    (status, Some(result), err)
                }
                Err(e) => (
                    "error",
                    None,
                    Some(format!("while waiting for the run: {e}")),
                ),
            }
        }
        (None, Some(gateway_spawn_id)) => {
            // The seed protocol reports through a `spawn_result` event.
            let deadline = tokio::time::sleep(Duration::from_secs(DEFAULT_TIMEOUT_SECS));
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = &mut deadline => break ("timeout", None, Some("no spawn_result within 300 s".into())),
                    e = events.recv() => match e {
                        Ok(e) if e.kind == "gateway.spawn_result" && e.gateway_id == Some(gateway_id)
                            && e.payload.get("spawnId").and_then(Value::as_str) == Some(gateway_spawn_id.as_str()) => {
                            let code = e.payload.get("exitCode").and_then(Value::as_i64);
                            let status = if code == Some(0) { "ok" } else { "error" };
                            let error = (status == "error").then(|| e.payload.get("error").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| format!("exit code {code:?}")));
                            break (status, Some(json!({"exit_code": code, "stdout": e.payload.get("stdout"), "stderr": e.payload.get("stderr")})), error);
                        }
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(_) => break ("error", None, Some("event bus closed".into())),
                    }
                }
            }
        }
        _ => ("error", None, Some("the gateway returned no run id".into())),
    };
    let store = state.store.clone();
    let sid = spawn_id.clone();
    let update = SpawnUpdate {
        status: Some(status.into()),
        result: result.as_ref().map(Value::to_string),
        error: error.clone(),
        finished: true,
        ..SpawnUpdate::default()
    };
    if let Err(e) = web::block(move || store.update_spawn(&sid, update)).await {
        tracing::warn!(%e, spawn_id, "could not record the spawn result");
    }
    state.events.publish(
        "spawn.result",
        Some(gateway_id),
        json!({"spawn_id": spawn_id, "status": status, "error": error}),
    );
}

/// An `agent.wait` answer → `ok | error | aborted | timeout` and the gateway's error text. An
/// aborted run says `error: "aborted"` (the research capture) or only `stopReason: "rpc"` (what
/// 2026.9.6 answered live after `sessions.abort`).
pub fn run_outcome(p: &Value) -> (&'static str, Option<String>) {
    let raw = p.get("status").and_then(Value::as_str).unwrap_or("error");
    let err = p.get("error").and_then(Value::as_str).map(str::to_owned);
    let stop = p.get("stopReason").and_then(Value::as_str);
    let status = match (raw, err.as_deref(), stop) {
        ("ok", _, _) => "ok",
        ("timeout", _, _) => "timeout",
        (_, Some("aborted"), _) | (_, _, Some("rpc")) => "aborted",
        _ => "error",
    };
    (status, err)
}

/// The last assistant text of a session (`chat.history`).
async fn last_reply(link: &GatewayLink, session_key: Option<&str>) -> Option<String> {
    let key = session_key?;
    let history = link
        .call(
            "chat.history",
            Some(json!({"sessionKey": key, "limit": 20})),
            CALL_TIMEOUT,
        )
        .await
        .ok()?;
    let messages = history.get("messages")?.as_array()?;
    let last = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))?;
    match last.get("content")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(""),
        ),
        _ => None,
    }
}

#[utoipa::path(get, path = "/api/spawn/{id}", tag = "spawn",
    params(("id" = String, Path, description = "spawn_id")),
    responses((status = 200, body = SpawnJson), (status = 404, body = ErrorBody)),
    security(("api_key" = ["viewer"]), ("bearer" = ["viewer"])))]
pub async fn get(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let store = state.store.clone();
    let lookup = id.clone();
    let row = blocking(move || store.spawn(&lookup))
        .await?
        .ok_or(ApiError::SpawnNotFound(id))?;
    Ok(HttpResponse::Ok().json(SpawnJson::from(row)))
}

#[cfg(test)]
mod tests {
    use super::run_outcome;
    use serde_json::json;

    #[test]
    fn agent_wait_answers_map_to_spawn_statuses() {
        assert_eq!(run_outcome(&json!({"status": "ok"})).0, "ok");
        assert_eq!(run_outcome(&json!({"status": "timeout"})).0, "timeout");
        assert_eq!(
            run_outcome(&json!({"status": "error", "error": "aborted", "stopReason": "rpc"})).0,
            "aborted"
        );
        assert_eq!(
            run_outcome(&json!({"status": "error", "stopReason": "rpc"})).0,
            "aborted"
        );
        let (status, err) = run_outcome(
            &json!({"status": "error", "error": "No route-compatible authentication source is configured for openai."}),
        );
        assert_eq!(status, "error");
        assert!(err.unwrap().contains("authentication"));
        assert_eq!(run_outcome(&json!({})).0, "error");
    }
}
