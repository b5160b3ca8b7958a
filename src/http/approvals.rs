//! The fleet's approvals inbox: `GET /api/approvals` (filtered, newest first, by cursor),
//! `GET /api/approvals/{gateway_id}/{id}`, and `POST …/resolve` — answered through the
//! gateway, which decides whose answer is first: a later answer, through any instance, gets
//! 409 `approval_already_resolved` with the answer that won (docs/design.md, *Approvals*).

use actix_web::{HttpRequest, HttpResponse, web};
use gateway_supervisor_actors::model::GatewayId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::json::JsonBody;
use super::principal::Authenticated;
use crate::approvals::model::{Approval, ApprovalStatus};
use crate::db::approvals::ApprovalFilter;
use crate::domain::ApprovalId;
use gateway_supervisor_actors::protocol::approvals::{ApprovalKind, Decision, ID_MAX};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsQuery {
    /// pending | allowed | denied | expired | cancelled
    #[param(pattern = "^(pending|allowed|denied|expired|cancelled)$")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "super::query::id")]
    pub gateway_id: Option<GatewayId>,
    /// Only the approvals of gateways whose labels this selector picks (`region=eu`).
    pub selector: Option<String>,
    /// exec | plugin | system-agent
    #[param(pattern = "^(exec|plugin|system-agent)$")]
    pub kind: Option<String>,
    /// An agent id, as the gateway presents it.
    #[param(min_length = 1, max_length = 128)]
    pub agent: Option<String>,
    /// 1–1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "super::query::integer")]
    pub limit: Option<i64>,
    /// The `next_cursor` of the page before.
    #[param(pattern = "^-?[0-9]{1,18}_-?[0-9]{1,18}_[!-~]{1,128}$")]
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ApprovalList {
    pub approvals: Vec<Approval>,
    /// For the next page (`cursor=`); absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ApprovalEnvelope {
    pub approval: Approval,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// allow-once | allow-always | deny
    #[schema(pattern = "^(allow-once|allow-always|deny)$")]
    pub decision: String,
    /// Why, for the audit log (at most 500 characters).
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

#[utoipa::path(get, path = "/api/approvals", tag = "approvals", params(ApprovalsQuery),
    description = "Every gateway's approvals, newest first: pending ones wait for an answer (`POST …/resolve`).",
    responses((status = 200, body = ApprovalList), (status = 400, body = ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    visible: super::visible::Visible,
    query: web::Query<ApprovalsQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    if let Some(id) = q.gateway_id {
        visible.one(id)?;
    }
    let limit = super::query::limit(q.limit, 100)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(ApprovalStatus::parse(s).ok_or_else(|| {
            ApiError::field(
                "status",
                format!(
                    "status must be pending, allowed, denied, expired or cancelled (got `{}`)",
                    bounded(s)
                ),
            )
        })?),
    };
    if let Some(kind) = q.kind.as_deref()
        && ApprovalKind::parse(kind).is_none()
    {
        return Err(ApiError::field(
            "kind",
            format!(
                "kind must be exec, plugin or system-agent (got `{}`)",
                bounded(kind)
            ),
        ));
    }
    if let Some(agent) = q.agent.as_deref()
        && (agent.is_empty() || agent.chars().count() > 128)
    {
        return Err(ApiError::field("agent", "agent must be 1–128 characters"));
    }
    let after = q.cursor.as_deref().map(cursor).transpose()?;
    let gateways = visible.narrow(super::labels::picked(&state, q.selector.as_deref()).await?);
    let filter = ApprovalFilter {
        status,
        gateway_id: q.gateway_id,
        gateways,
        kind: q.kind,
        agent: q.agent,
        after,
    };
    let mut approvals = super::blocking({
        let store = state.store.clone();
        move || store.approvals(&filter, limit + 1)
    })
    .await?;
    let more = approvals.len() as i64 > limit;
    approvals.truncate(limit as usize);
    let approvals = state.approvals.shown(approvals);
    let next_cursor = more
        .then(|| approvals.last())
        .flatten()
        .map(|a| format!("{}_{}_{}", a.created_at_ms, a.gateway_id, a.id));
    Ok(HttpResponse::Ok().json(ApprovalList {
        approvals,
        next_cursor,
    }))
}

#[utoipa::path(get, path = "/api/approvals/{gateway_id}/{id}", tag = "approvals",
    params(("gateway_id" = i64, Path, minimum = 1), ("id" = String, Path, min_length = 1, max_length = 128, pattern = "^[!-~]+$")),
    description = "One approval: what the gateway presented, and how it ended.",
    responses((status = 200, body = ApprovalEnvelope), (status = 404, body = ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (gateway_id, id) = ids(path.into_inner())?;
    let store = state.store.clone();
    let found = {
        let id = id.clone();
        super::blocking(move || store.approval(gateway_id, &id)).await?
    };
    let approval = found.ok_or(ApiError::ApprovalNotFound { gateway_id, id })?;
    let approval = state.approvals.shown(vec![approval]).remove(0);
    Ok(HttpResponse::Ok().json(ApprovalEnvelope { approval }))
}

#[utoipa::path(post, path = "/api/approvals/{gateway_id}/{id}/resolve", tag = "approvals",
    params(("gateway_id" = i64, Path, minimum = 1), ("id" = String, Path, min_length = 1, max_length = 128, pattern = "^[!-~]+$")),
    request_body = ResolveRequest,
    description = "Answers a pending approval through its gateway. The first answer wins, whoever gives it: a later one gets 409 with the answer that won. Only a decision the gateway offers (`offered_decisions`) is sent, and an approval not `presented_whole` can only be denied: nobody may allow what nobody was shown. Needs the operator role (an answer lets a command run on a gateway host, as a spawn does).",
    responses((status = 200, body = ApprovalEnvelope), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`approval_not_found`"),
        (status = 409, body = ErrorBody, description = "`approval_already_resolved`: answered first by someone else (details: decision, resolved_by, resolver_label); `approval_not_pending`: expired or cancelled; `decision_not_offered`: the gateway does not offer this decision (details: offered); `approval_not_shown_whole`: an allow of an approval whose presentation was cut (it can only be denied)")))]
pub async fn resolve(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<(String, String)>,
    body: JsonBody<ResolveRequest>,
) -> Result<HttpResponse, ApiError> {
    let (gateway_id, id) = ids(path.into_inner())?;
    let decision = Decision::parse(&body.0.decision).ok_or_else(|| {
        ApiError::field(
            "decision",
            format!(
                "decision must be allow-once, allow-always or deny (got `{}`)",
                bounded(&body.0.decision)
            ),
        )
    })?;
    if body
        .0
        .reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > 500)
    {
        return Err(ApiError::field(
            "reason",
            "reason must be at most 500 characters",
        ));
    }
    let result = state
        .approvals
        .resolve(gateway_id, id, decision, &who.0.caller())
        .await;
    let result = match result {
        Ok(a) => Ok(a),
        Err(crate::approvals::ApprovalError::Fleet(e)) => Err(e),
        Err(e) => return Err(e.into()),
    };
    let body = serde_json::to_vec(&body.0).ok();
    match super::relay::or_owner(&state, &req, body, result).await? {
        super::relay::Here::Done(approval) => {
            Ok(HttpResponse::Ok().json(ApprovalEnvelope { approval }))
        }
        super::relay::Here::Relayed(res) => Ok(res),
    }
}

/// The path's gateway id and approval id, checked.
fn ids((gateway_id, id): (String, String)) -> Result<(GatewayId, ApprovalId), ApiError> {
    let gateway_id = gateway_id
        .parse::<GatewayId>()
        .map_err(|_| ApiError::field("gateway_id", "gateway_id must be a positive integer"))?;
    if id.is_empty() || id.len() > ID_MAX || id.chars().any(char::is_control) {
        return Err(ApiError::field(
            "id",
            format!("id must be 1–{ID_MAX} characters without control characters"),
        ));
    }
    Ok((gateway_id, ApprovalId::from(id)))
}

/// A `next_cursor`: `<created_at_ms>_<gateway_id>_<id>`.
fn cursor(c: &str) -> Result<(i64, GatewayId, ApprovalId), ApiError> {
    let bad = || ApiError::field("cursor", "cursor must be a next_cursor this API returned");
    let mut parts = c.splitn(3, '_');
    let at = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let g = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let id = parts
        .next()
        .filter(|id| !id.is_empty() && id.len() <= ID_MAX)
        .ok_or_else(bad)?;
    Ok((at, g, ApprovalId::from(id)))
}

fn bounded(s: &str) -> String {
    gateway_supervisor_actors::bounded::text(s, 64)
}
