//! `GET /api/sessions` (merged from every connected gateway's live session cache; no gateway
//! round trip per request) and `POST /api/sessions/{key}/control` (routed to the owning gateway).

use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use gateway_supervisor_actors::model::GatewayId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::json::JsonBody;
use super::list_cache::SessionQueryKey;
use super::principal::Authenticated;
pub use super::session_json::{SessionJson, SessionList};
use super::visible::Visible;
use crate::fleet::sessions::{Elsewhere, SessionAction, SessionTarget};

#[derive(Debug, Deserialize, Serialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SessionQuery {
    /// Only this agent's sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Only sessions with this key (where is `agent:main:main`?).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(
        default,
        deserialize_with = "super::query::id",
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway_id: Option<GatewayId>,
    /// 1–1000, default 50.
    #[param(minimum = 1, maximum = 1000)]
    #[serde(
        default,
        deserialize_with = "super::query::integer",
        skip_serializing_if = "Option::is_none"
    )]
    pub limit: Option<usize>,
}

/// Several instances' parts as one listing: newest first (ties by key, then gateway, as each
/// instance orders its own), the first `limit`, the totals summed.
fn merge(parts: Vec<SessionList>, limit: usize, unreachable: Vec<String>) -> SessionList {
    let total = parts.iter().map(|p| p.total).sum();
    let mut sessions: Vec<SessionJson> = parts.into_iter().flat_map(|p| p.sessions).collect();
    sessions.sort_by(|a, b| {
        b.updated_at
            .cmp(&a.updated_at)
            .then_with(|| a.key.cmp(&b.key))
            .then_with(|| a.gateway_id.cmp(&b.gateway_id))
    });
    sessions.truncate(limit);
    SessionList {
        truncated: total > sessions.len(),
        total,
        sessions,
        unreachable_instances: unreachable,
    }
}

#[utoipa::path(get, path = "/api/sessions", tag = "sessions",
    description = "Sessions of every connected gateway, newest first, from the gateways' live caches (kept fresh by sessions.list on connect and sessions.changed / tick events). Status: a gateway's own status where it has one; otherwise archived sessions are `completed` and others `active`; `running` is true while a run is in progress. In a cluster every instance's part is gathered (each instance caches the gateways it links); `unreachable_instances` names those that did not answer.",
    params(SessionQuery),
    responses((status = 200, body = SessionList), (status = 400, body = ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    visible: Visible,
    query: web::Query<SessionQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::field("limit", "limit must be between 1 and 1000"));
    }
    let q = query_key(&query, limit);
    if !super::fanout::gathers(&state, &req) && visible.sees_all() {
        let body = state.session_list.page(&state.registry, &q).await?;
        return Ok(super::json::json_bytes(body));
    }
    let (_, here) = super::list_cache::list_within(&state.registry, &q, visible.within()).await?;
    if !super::fanout::gathers(&state, &req) {
        return Ok(HttpResponse::Ok().json(here));
    }
    let mut gathered = gather_parts(&state, &req, &query).await;
    gathered.parts.push(here);
    Ok(HttpResponse::Ok().json(merge(gathered.parts, limit, gathered.unreachable)))
}

/// The other instances' parts of the listing `query` asks for.
async fn gather_parts(
    state: &AppState,
    req: &HttpRequest,
    query: &SessionQuery,
) -> super::fanout::Parts<SessionList> {
    let path = format!(
        "/api/sessions?{}",
        serde_urlencoded::to_string(query).unwrap_or_default()
    );
    super::fanout::gather(state, req, &path).await
}

fn query_key(query: &SessionQuery, limit: usize) -> SessionQueryKey {
    SessionQueryKey {
        agent: query.agent.clone(),
        key: query.key.clone(),
        gateway_id: query.gateway_id,
        limit,
    }
}

/// Which gateway's session: required when several gateways have the key.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ControlQuery {
    #[param(minimum = 1)]
    #[serde(default, deserialize_with = "super::query::id")]
    pub gateway_id: Option<GatewayId>,
    /// Only if the gateway is still this process (`connection.boot_id` as the caller saw it):
    /// 409 `gateway_changed` otherwise, and nothing is sent.
    #[param(min_length = 1, max_length = 128, pattern = "^[!-~]+$")]
    pub expected_boot_id: Option<String>,
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
    pub gateway_id: GatewayId,
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
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn control(
    state: web::Data<AppState>,
    who: Authenticated,
    visible: Visible,
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
    if !hop {
        state.within(
            &state.session_control_limiter,
            key.clone(),
            "session control",
        )?;
    }
    // A hop comes with the gateway the forwarding instance found the session on.
    let gateway_id = query.gateway_id.or_else(|| super::relay::hop_gateway(&req));
    let gateway_id = in_scope(&state, &visible, &key, gateway_id).await?;
    let expected_boot_id = super::query::boot_id(query.expected_boot_id.as_deref())?;
    let elsewhere = match gateway_id {
        Some(_) => Elsewhere::default(),
        None => elsewhere(&state, &req, &key).await,
    };
    let target = SessionTarget {
        key: key.clone(),
        gateway_id,
        expected_boot_id,
        elsewhere,
    };
    let result = state
        .fleet
        .sessions
        .control_session(target, action, &who.0.caller())
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

/// For a key narrowed to a tenant or to agents: the gateway of session `key` among those it
/// sees, its agent one the key may steer — found here, so that the fleet neither resolves the
/// key over gateways the caller cannot see nor names them as candidates. A platform key's
/// `gateway_id` is passed on as given.
async fn in_scope(
    state: &AppState,
    visible: &Visible,
    key: &str,
    gateway_id: Option<GatewayId>,
) -> Result<Option<GatewayId>, ApiError> {
    if visible.sees_all() && visible.scope().agents().is_none() {
        return Ok(gateway_id);
    }
    if let Some(id) = gateway_id {
        visible.one(id)?;
    }
    let q = super::list_cache::SessionQueryKey {
        agent: None,
        key: Some(key.to_owned()),
        gateway_id,
        limit: 16,
    };
    let (_, found) = super::list_cache::list_within(&state.registry, &q, visible.within()).await?;
    match found.sessions.as_slice() {
        [] => Err(ApiError::SessionNotFound(key.to_owned())),
        [one] => {
            visible.agent(one.agent.as_deref())?;
            Ok(Some(one.gateway_id))
        }
        several => Err(ApiError::AmbiguousSession {
            message: format!(
                "session `{key}` exists on {} gateways; say which with ?gateway_id=",
                several.len()
            ),
            details: serde_json::json!({"candidates": several
                .iter()
                .map(|s| serde_json::json!({"gateway_id": s.gateway_id}))
                .collect::<Vec<_>>()}),
        }),
    }
}

/// In a cluster: the other instances' gateways that have session `key`.
async fn elsewhere(state: &AppState, req: &HttpRequest, key: &str) -> Elsewhere {
    if !super::fanout::gathers(state, req) {
        return Elsewhere::default();
    }
    let query = SessionQuery {
        agent: None,
        key: Some(key.to_owned()),
        gateway_id: None,
        limit: Some(1000),
    };
    let gathered = gather_parts(state, req, &query).await;
    Elsewhere {
        gateways: gathered
            .parts
            .iter()
            .flat_map(|p| p.sessions.iter().map(|s| s.gateway_id))
            .collect(),
        unheard: gathered.unreachable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(key: &str, gateway_id: GatewayId, updated_at: i64) -> SessionJson {
        SessionJson {
            key: key.into(),
            agent: None,
            model: None,
            status: "active".into(),
            running: false,
            total_tokens: 0,
            updated_at: Some(updated_at),
            gateway_id,
        }
    }

    fn part(sessions: Vec<SessionJson>, total: usize) -> SessionList {
        SessionList {
            truncated: total > sessions.len(),
            total,
            sessions,
            unreachable_instances: Vec::new(),
        }
    }

    #[test]
    fn parts_merge_newest_first_within_the_limit_with_their_totals_summed() {
        let a = part(
            vec![
                session("k1", GatewayId(1), 30),
                session("k2", GatewayId(1), 10),
            ],
            5,
        );
        let b = part(
            vec![
                session("k3", GatewayId(2), 20),
                session("k1", GatewayId(2), 30),
            ],
            2,
        );
        let merged = merge(vec![a, b], 3, vec!["c".into()]);
        let order: Vec<(&str, GatewayId)> = merged
            .sessions
            .iter()
            .map(|s| (s.key.as_str(), s.gateway_id))
            .collect();
        assert_eq!(
            order,
            [
                ("k1", GatewayId(1)),
                ("k1", GatewayId(2)),
                ("k3", GatewayId(2))
            ]
        );
        assert_eq!((merged.total, merged.truncated), (7, true));
        assert_eq!(merged.unreachable_instances, ["c"]);
    }

    #[test]
    fn a_single_complete_part_is_not_truncated() {
        let merged = merge(
            vec![part(vec![session("k", GatewayId(1), 1)], 1)],
            50,
            vec![],
        );
        assert_eq!((merged.total, merged.truncated), (1, false));
    }
}
