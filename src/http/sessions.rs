//! `GET /api/sessions` (merged from every connected gateway's live session cache; no gateway
//! round trip per request) and `POST /api/sessions/{key}/control` (routed to the owning gateway).

use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::json::JsonBody;
use super::principal::Authenticated;
use crate::fleet::sessions::SessionAction;
use gateway_supervisor_actors::messages::ListSessions;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SessionQuery {
    /// Only this agent's sessions.
    pub agent: Option<String>,
    #[serde(default, deserialize_with = "super::query::integer")]
    pub gateway_id: Option<i64>,
    /// 1–1000, default 50.
    #[param(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "super::query::integer")]
    pub limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionJson {
    pub key: String,
    pub agent: Option<String>,
    pub model: Option<String>,
    /// active | paused | completed
    pub status: String,
    /// A run is in progress.
    pub running: bool,
    #[serde(rename = "totalTokens")]
    pub total_tokens: i64,
    /// Milliseconds, as the gateway reports it.
    #[serde(rename = "updatedAt")]
    pub updated_at: Option<i64>,
    pub gateway_id: i64,
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionJson>,
    /// Sessions that matched the filter, listed or not.
    pub total: usize,
    /// More matched than `limit` allowed: `sessions` is the newest `limit` of `total`.
    pub truncated: bool,
}

#[utoipa::path(get, path = "/api/sessions", tag = "sessions",
    description = "Sessions of every connected gateway, newest first, from the gateways' live caches (kept fresh by sessions.list on connect and sessions.changed / tick events). Status: a gateway's own status where it has one; otherwise archived sessions are `completed` and others `active`; `running` is true while a run is in progress.",
    params(SessionQuery),
    responses((status = 200, body = SessionList), (status = 400, body = ErrorBody)),
    security(("api_key" = ["viewer"]), ("bearer" = ["viewer"])))]
pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<SessionQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::field("limit", "limit must be between 1 and 1000"));
    }
    let page = state
        .registry
        .send(ListSessions {
            agent: query.agent.clone(),
            gateway_id: query.gateway_id,
            limit,
        })
        .await?;
    Ok(HttpResponse::Ok().json(SessionList {
        total: page.total,
        truncated: page.total > page.sessions.len(),
        sessions: page
            .sessions
            .into_iter()
            .map(|s| SessionJson {
                key: s.key,
                agent: s.agent,
                model: s.model,
                status: s.status.as_str().to_owned(),
                running: s.running,
                total_tokens: s.total_tokens,
                updated_at: s.updated_at,
                gateway_id: s.gateway_id,
            })
            .collect(),
    }))
}

/// Which gateway's session: required when several gateways have the key.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ControlQuery {
    #[param(minimum = 1)]
    #[serde(default, deserialize_with = "super::query::id")]
    pub gateway_id: Option<i64>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlRequest {
    /// pause | resume | kill
    #[schema(pattern = "^(pause|resume|kill)$")]
    pub action: String,
}

#[derive(Serialize, ToSchema)]
pub struct ControlResult {
    pub ok: bool,
    pub action: String,
    pub session: String,
    pub gateway_id: i64,
    /// The gateway method used (`sessions.abort`, or the seed protocol's `control`).
    pub method: String,
    #[schema(value_type = Object)]
    pub result: Value,
}

#[utoipa::path(post, path = "/api/sessions/{key}/control", tag = "sessions",
    description = "Routes to the gateway that owns the session: a session is (gateway, key), and a key several gateways have needs `?gateway_id=` (409 `ambiguous_session` names the candidates; never a guess). `kill` uses `sessions.abort` (real OpenClaw) or the seed protocol's `control`; `pause`/`resume` need a gateway that advertises per-session `control` (real OpenClaw 2026.9 has none: 409 `unsupported_action` names the gateway, its version and the alternatives). 10 requests per minute per session.",
    params(("key" = String, Path, description = "Session key, e.g. agent:main:main"), ControlQuery),
    request_body = ControlRequest,
    responses((status = 200, body = ControlResult), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = ["operator"]), ("bearer" = ["operator"])))]
pub async fn control(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    key: web::Path<String>,
    query: web::Query<ControlQuery>,
    body: JsonBody<ControlRequest>,
) -> Result<HttpResponse, ApiError> {
    let key = key.into_inner();
    let action: SessionAction = body.0.action.parse().map_err(|()| {
        ApiError::field(
            "action",
            format!(
                "action must be pause, resume or kill (got `{}`)",
                body.0.action
            ),
        )
    })?;
    // A hop was counted where it entered the cluster.
    let hop = req
        .extensions()
        .get::<crate::cluster::forward::Hop>()
        .is_some();
    if !hop && let Err(retry_after_secs) = state.session_control_limiter.check(key.clone()) {
        state
            .metrics
            .rate_limited
            .with_label_values(&[state.session_control_limiter.name])
            .inc();
        return Err(ApiError::RateLimited {
            limit: "session control",
            retry_after_secs,
        });
    }
    let result = state
        .fleet
        .control_session(&key, query.gateway_id, action, &who.0.caller())
        .await;
    let body = serde_json::to_vec(&body.0).ok();
    let done = match super::relay::or_owner(&state, &req, body, result).await? {
        super::relay::Here::Done(done) => done,
        super::relay::Here::Relayed(res) => return Ok(res),
    };
    Ok(HttpResponse::Ok().json(ControlResult {
        ok: true,
        action: action.as_str().to_owned(),
        session: key,
        gateway_id: done.gateway_id,
        method: done.method.to_owned(),
        result: done.result,
    }))
}
