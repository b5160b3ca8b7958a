//! Agents (`/api/agents`, sync from the acting primary's `agents.list`) and direct CLI
//! connections (`/api/connect`, heartbeats).

use crate::domain::{AgentStatus, ConnectionStatus};
use actix_web::{HttpResponse, web};
use gateway_supervisor_actors::events::EventKind;
use gateway_supervisor_actors::model::GatewayId;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::json::JsonBody;
use super::principal::Authenticated;
use super::{AppState, blocking};
use crate::db::agents::{AgentRow, ConnectionRow};
use crate::secrets::random_hex;
use crate::validate;

#[derive(Serialize, ToSchema)]
pub struct AgentJson {
    pub id: i64,
    pub name: String,
    pub role: Option<String>,
    /// online | offline | …
    pub status: AgentStatus,
    pub gateway_id: Option<GatewayId>,
    #[schema(value_type = Object)]
    pub config: Value,
    /// manual | gateway | cli
    pub source: String,
    pub last_seen: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<AgentRow> for AgentJson {
    fn from(a: AgentRow) -> Self {
        AgentJson {
            config: a.config_json(),
            id: a.id,
            name: a.name,
            role: a.role,
            status: a.status,
            gateway_id: a.gateway_id,
            source: a.source,
            last_seen: a.last_seen,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

#[utoipa::path(get, path = "/api/agents", tag = "agents", responses((status = 200, description = "`{agents: [...]}`")))]
pub async fn list(
    state: web::Data<AppState>,
    visible: super::visible::Visible,
) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let mut agents = blocking(move || store.agents()).await?;
    visible.retain(&mut agents, |a| a.gateway_id);
    Ok(HttpResponse::Ok()
        .json(json!({"agents": agents.into_iter().map(AgentJson::from).collect::<Vec<_>>()})))
}

#[utoipa::path(get, path = "/api/agents/{id}", tag = "agents", params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, description = "`{agent}`"), (status = 404, body = ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    visible: super::visible::Visible,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let agent = seen(&state, &visible, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({"agent": AgentJson::from(agent)})))
}

/// Agent `id` if the caller sees it — on a gateway in its scope — else its not-found.
async fn seen(
    state: &AppState,
    visible: &super::visible::Visible,
    id: i64,
) -> Result<crate::db::agents::AgentRow, ApiError> {
    let store = state.store.clone();
    blocking(move || store.agent(id))
        .await?
        .filter(|a| visible.sees_all() || a.gateway_id.is_some_and(|g| visible.gateway(g)))
        .ok_or(ApiError::AgentNotFound(id))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentUpdate {
    /// The whole config object; `gateway_config.preferred_gateway` (a gateway id or name) steers
    /// spawns.
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    /// 1–100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub role: Option<String>,
}

#[utoipa::path(put, path = "/api/agents/{id}", tag = "agents", params(("id" = i64, Path, minimum = 1)), request_body = AgentUpdate,
    responses((status = 200, description = "`{agent}`"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "`unprocessable`: neither `config` nor `role` given")))]
pub async fn update(
    state: web::Data<AppState>,
    who: Authenticated,
    visible: super::visible::Visible,
    id: web::Path<i64>,
    body: JsonBody<AgentUpdate>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    seen(&state, &visible, id).await?;
    let AgentUpdate { config, role } = body.0;
    if config.is_none() && role.is_none() {
        return Err(ApiError::Unprocessable(
            "nothing to update: give `config` or `role`".into(),
        ));
    }
    if let Some(c) = &config {
        if !c.is_object() {
            return Err(ApiError::field("config", "config must be a JSON object"));
        }
        if let Some(p) = c.pointer("/gateway_config/preferred_gateway") {
            let gateways = state.gateways();
            let labels = match p {
                Value::Number(n) => match n.as_i64() {
                    Some(id) => gateways.get(GatewayId(id)).await?.map(|v| v.record.labels),
                    None => None,
                },
                Value::String(name) => gateways.named(name).await?.map(|v| v.record.labels.clone()),
                _ => None,
            };
            let known = p.is_null() || labels.is_some_and(|l| visible.labels(&l));
            if !known {
                return Err(ApiError::field(
                    "config.gateway_config.preferred_gateway",
                    format!("preferred_gateway {p} is not a registered gateway's id or name"),
                ));
            }
        }
    }
    if let Some(r) = &role
        && (r.is_empty() || r.chars().count() > 100)
    {
        return Err(ApiError::field("role", "role must be 1–100 characters"));
    }
    let store = state.store.clone();
    let caller = who.0.caller();
    let agent = blocking(move || store.update_agent(id, config.as_ref(), role.as_deref(), &caller))
        .await?
        .ok_or(ApiError::AgentNotFound(id))?;
    Ok(HttpResponse::Ok().json(json!({"agent": AgentJson::from(agent)})))
}

#[utoipa::path(post, path = "/api/agents/sync", tag = "agents",
    description = "Reads the acting primary's `agents.list` and upserts the agents by name → `{synced, created, updated, agents}`. Unchanged agents count as neither, so a repeated sync reports 0 created and 0 updated.",
    responses((status = 200, description = "`{synced, created, updated, agents}`"), (status = 503, body = ErrorBody)))]
pub async fn sync(
    state: web::Data<AppState>,
    who: Authenticated,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let result = state.fleet.agents.sync_agents(who.0.caller()).await;
    match super::relay::or_owner(&state, &req, None, result).await? {
        super::relay::Here::Done(report) => Ok(HttpResponse::Ok().json(report)),
        super::relay::Here::Relayed(res) => Ok(res),
    }
}

// ---- direct CLI connections -------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectRequest {
    /// As a gateway name: 1–100 letters, digits, spaces and `-_.:()/@#+`.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub agent_name: String,
    /// 1–100 printable characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub tool_name: String,
    /// 1–50 printable characters.
    #[schema(
        min_length = 1,
        max_length = 50,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub tool_version: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct DirectConnection {
    pub id: i64,
    pub agent_id: i64,
    pub tool_name: String,
    pub tool_version: Option<String>,
    pub connection_id: String,
    /// connected | disconnected
    pub status: ConnectionStatus,
    pub last_heartbeat: Option<i64>,
    /// The tool's metadata, as a JSON string (the seed's shape).
    pub metadata: Option<String>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub last_model: Option<String>,
    pub created_at: i64,
    pub agent_name: String,
    pub agent_status: AgentStatus,
    pub agent_role: Option<String>,
}

fn direct(c: ConnectionRow, a: &AgentRow) -> DirectConnection {
    DirectConnection {
        id: c.id,
        agent_id: c.agent_id,
        tool_name: c.tool_name,
        tool_version: c.tool_version,
        connection_id: c.connection_id,
        status: c.status,
        last_heartbeat: c.last_heartbeat,
        metadata: c.metadata,
        input_tokens: c.input_tokens,
        output_tokens: c.output_tokens,
        last_model: c.last_model,
        created_at: c.created_at,
        agent_name: a.name.clone(),
        agent_status: a.status,
        agent_role: a.role.clone(),
    }
}

fn short_text(field: &'static str, v: &str, max: usize) -> Result<(), ApiError> {
    if v.trim().is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(ApiError::field(
            field,
            format!("{field} must be 1–{max} printable characters"),
        ));
    }
    Ok(())
}

#[utoipa::path(post, path = "/api/connect", tag = "connections", request_body = ConnectRequest,
    description = "Registers a CLI tool for an agent (created if new); older connections of that agent are retired.",
    responses((status = 201, description = "`{connection_id, agent_id, agent_name, status, heartbeat_url}`"), (status = 400, body = ErrorBody)))]
pub async fn connect(
    state: web::Data<AppState>,
    body: JsonBody<ConnectRequest>,
) -> Result<HttpResponse, ApiError> {
    let r = body.0;
    let agent_name = validate::name(&r.agent_name)
        .map_err(|e| ApiError::field("agent_name", e.message.replace("name", "agent_name")))?;
    short_text("tool_name", &r.tool_name, 100)?;
    if let Some(v) = &r.tool_version {
        short_text("tool_version", v, 50)?;
    }
    if r.metadata.as_ref().is_some_and(|m| !m.is_object()) {
        return Err(ApiError::field(
            "metadata",
            "metadata must be a JSON object",
        ));
    }
    let connection_id = format!("conn-{}", random_hex::<12>()?);
    let store = state.store.clone();
    let cid = connection_id.clone();
    let (agent, _) = blocking(move || {
        store.connect_cli(
            &agent_name,
            &r.tool_name,
            r.tool_version.as_deref(),
            r.metadata.as_ref(),
            &cid,
        )
    })
    .await?;
    state.events.publish(
        EventKind::AgentStatus,
        None,
        json!({"agent_id": agent.id, "name": agent.name, "status": AgentStatus::Online}),
    );
    Ok(HttpResponse::Created().json(json!({
        "connection_id": connection_id,
        "agent_id": agent.id,
        "agent_name": agent.name,
        "status": ConnectionStatus::Connected,
        "heartbeat_url": format!("/api/agents/{}/heartbeat", agent.id),
    })))
}

#[utoipa::path(get, path = "/api/connect", tag = "connections", responses((status = 200, description = "`{connections: [DirectConnection]}`")))]
pub async fn connections(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let rows = blocking(move || store.connections()).await?;
    let list: Vec<DirectConnection> = rows.into_iter().map(|(c, a)| direct(c, &a)).collect();
    Ok(HttpResponse::Ok().json(json!({"connections": list})))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisconnectRequest {
    pub connection_id: String,
}

#[utoipa::path(delete, path = "/api/connect", tag = "connections", request_body = DisconnectRequest,
    responses((status = 200, description = "`{disconnected: true}`"), (status = 404, body = ErrorBody)))]
pub async fn disconnect(
    state: web::Data<AppState>,
    body: JsonBody<DisconnectRequest>,
) -> Result<HttpResponse, ApiError> {
    let cid = body.0.connection_id;
    let store = state.store.clone();
    let lookup = cid.clone();
    if !blocking(move || store.disconnect_cli(&lookup)).await? {
        return Err(ApiError::ConnectionNotFound(cid));
    }
    state.events.publish(
        EventKind::AgentStatus,
        None,
        json!({"connection_id": cid, "status": ConnectionStatus::Disconnected}),
    );
    Ok(HttpResponse::Ok().json(json!({"disconnected": true})))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenUsage {
    #[schema(minimum = 0)]
    pub input: Option<i64>,
    #[schema(minimum = 0)]
    pub output: Option<i64>,
    pub model: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    pub connection_id: String,
    pub tokens: Option<TokenUsage>,
}

#[utoipa::path(post, path = "/api/agents/{id}/heartbeat", tag = "connections", params(("id" = i64, Path, minimum = 1)), request_body = HeartbeatRequest,
    description = "Liveness and token usage of a CLI connection; a connection without a heartbeat for `connections.timeout` (60 s) becomes disconnected.",
    responses((status = 200, description = "`{ok, status: HEARTBEAT_OK, …}`"), (status = 404, body = ErrorBody)))]
pub async fn heartbeat(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: JsonBody<HeartbeatRequest>,
) -> Result<HttpResponse, ApiError> {
    let agent_id = id.into_inner();
    let HeartbeatRequest {
        connection_id,
        tokens,
    } = body.0;
    let usage = match tokens {
        Some(t) => {
            let (input, output) = (t.input.unwrap_or(0), t.output.unwrap_or(0));
            if input < 0 || output < 0 {
                return Err(ApiError::field(
                    "tokens",
                    "token counts must not be negative",
                ));
            }
            Some((input, output, t.model))
        }
        None => None,
    };
    let store = state.store.clone();
    let cid = connection_id.clone();
    let row = blocking(move || {
        store.heartbeat(
            agent_id,
            &cid,
            usage.as_ref().map(|(i, o, m)| (*i, *o, m.as_deref())),
        )
    })
    .await?
    .ok_or_else(|| ApiError::ConnectionNotFound(format!("{connection_id} (agent {agent_id})")))?;
    Ok(HttpResponse::Ok().json(json!({
        "ok": true,
        "status": "HEARTBEAT_OK",
        "agent_id": agent_id,
        "connection_id": row.connection_id,
        "last_heartbeat": row.last_heartbeat,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
    })))
}
