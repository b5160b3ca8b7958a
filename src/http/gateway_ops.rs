//! `POST /api/gateways/{id}/suspend|resume|restart` (admin): the gateway's own
//! `gateway.suspend.prepare` / `gateway.suspend.resume` / `gateway.restart.request`. A gateway's
//! refusal (e.g. busy with active work) comes back as 409 with its reasons.

use actix_web::{HttpRequest, HttpResponse, web};
use gateway_supervisor_actors::model::GatewayId;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::principal::Authenticated;
use super::relay::{Here, or_owner};

#[utoipa::path(post, path = "/api/gateways/{id}/suspend", tag = "gateways", params(("id" = i64, Path, minimum = 1)),
    description = "Suspends the whole gateway (`gateway.suspend.prepare`). A busy gateway refuses: 409 `gateway_busy` with its reason, active count and blockers. A disruption budget that would be broken refuses first: 429 `disruption_budget` with `Retry-After` and the budget's name (`details.budget`).",
    responses((status = 200, description = "the gateway's answer"), (status = 409, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "`disruption_budget`"), (status = 503, body = ErrorBody)))]
pub async fn suspend(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    id: web::Path<GatewayId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let result = state.fleet.gateway_ops.suspend(id, &who.0.caller()).await;
    let answer = match or_owner(&state, &req, None, result).await? {
        Here::Done(answer) => answer,
        Here::Relayed(res) => return Ok(res),
    };
    Ok(HttpResponse::Ok().json(json!({"gateway_id": id, "suspended": true, "gateway": answer})))
}

#[utoipa::path(post, path = "/api/gateways/{id}/resume", tag = "gateways", params(("id" = i64, Path, minimum = 1)),
    description = "Resumes a gateway this daemon suspended (`gateway.suspend.resume`).",
    responses((status = 200, description = "the gateway's answer"), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody, description = "the gateway refused or answered out of protocol"),
        (status = 503, body = ErrorBody, description = "`gateway_unavailable`: the gateway is not connected")))]
pub async fn resume(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    id: web::Path<GatewayId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let result = state.fleet.gateway_ops.resume(id, &who.0.caller()).await;
    let answer = match or_owner(&state, &req, None, result).await? {
        Here::Done(answer) => answer,
        Here::Relayed(res) => return Ok(res),
    };
    Ok(HttpResponse::Ok().json(json!({"gateway_id": id, "resumed": true, "gateway": answer})))
}

/// A destructive operation's condition.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ProcessQuery {
    /// Only if the gateway is still this process (`connection.boot_id` as the caller saw it):
    /// 409 `gateway_changed` otherwise, and nothing is sent.
    #[param(min_length = 1, max_length = 128, pattern = "^[!-~]+$")]
    pub expected_boot_id: Option<String>,
}

#[utoipa::path(post, path = "/api/gateways/{id}/restart", tag = "gateways", params(("id" = i64, Path, minimum = 1), ProcessQuery),
    description = "Asks the gateway to restart itself (`gateway.restart.request`); the link reconnects when it is back. Sent only to the gateway process the decision was made on: with `?expected_boot_id=` the one the caller saw (409 `gateway_changed` if the gateway restarted since; 409 `unsupported_action` if its release reports no bootId), otherwise the one the link reached when the request arrived. A disruption budget that would be broken refuses: 429 `disruption_budget` with `Retry-After` and the budget's name.",
    responses((status = 200, description = "the gateway's answer"), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "`disruption_budget`"), (status = 503, body = ErrorBody)))]
pub async fn restart(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    id: web::Path<GatewayId>,
    query: web::Query<ProcessQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let expected = super::query::boot_id(query.expected_boot_id.as_deref())?;
    let result = state
        .fleet
        .gateway_ops
        .restart(id, expected.as_deref(), &who.0.caller())
        .await;
    let answer = match or_owner(&state, &req, None, result).await? {
        Here::Done(answer) => answer,
        Here::Relayed(res) => return Ok(res),
    };
    Ok(HttpResponse::Ok().json(json!({"gateway_id": id, "restart": answer})))
}

#[utoipa::path(post, path = "/api/gateways/{id}/rotate-token", tag = "gateways", params(("id" = i64, Path, minimum = 1)),
    description = "Rotates the gateway's shared token, coordinated with the daemon's own link: the gateway must be linked, offer `config.get`/`config.patch` and run in `token` auth mode; the old and a new random token (32 bytes) are put on record, encrypted; the new one is written with `config.patch` over the hash read (the gateway applies it at once and drops every connection on the old one); the daemon stores it and waits up to 30 s for its link to be back with it — not back, it goes back to the old token and answers 409. A daemon stopped in between settles the rotation at its next start. Neither token is ever shown. Audited (`gateway.rotate_token`).",
    responses((status = 200, body = crate::fleet::Rotated), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`gateway_busy`: not in `token` auth mode, or the gateway did not take the new token (the old one is back in use); `unsupported_action`: no `config.patch`"),
        (status = 502, body = ErrorBody, description = "`gateway_error`: the gateway refused the write (nothing changed)"),
        (status = 503, body = ErrorBody, description = "`gateway_unavailable`: not connected")))]
pub async fn rotate_token(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    id: web::Path<GatewayId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let result = state
        .fleet
        .gateway_ops
        .rotate_token(id, &who.0.caller())
        .await;
    match or_owner(&state, &req, None, result).await? {
        Here::Done(rotated) => Ok(HttpResponse::Ok().json(rotated)),
        Here::Relayed(res) => Ok(res),
    }
}

#[utoipa::path(post, path = "/api/gateways/{id}/cordon", tag = "gateways", params(("id" = i64, Path, minimum = 1)),
    description = "Cordons the gateway: its sessions and runs go on, but no new spawn is routed to it (a spawn naming it is refused with the reason) and it does not act as primary, until uncordoned. Stored with the gateway (`cordoned: true`, the `gateways_cordoned` metric, a `gateway.changed` event, an audit row); survives a daemon restart; any instance of a cluster records it.",
    responses((status = 200, body = super::gateway_json::GatewayEnvelope), (status = 404, body = ErrorBody)))]
pub async fn cordon(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<GatewayId>,
) -> Result<HttpResponse, ApiError> {
    set_cordon(&state, &who, id.into_inner(), true).await
}

#[utoipa::path(post, path = "/api/gateways/{id}/uncordon", tag = "gateways", params(("id" = i64, Path, minimum = 1)),
    description = "Lifts a cordon: the gateway takes spawns again and may act as primary. Refused while a running operation (a drain, a rolling restart, an upgrade) holds the gateway.",
    responses((status = 200, body = super::gateway_json::GatewayEnvelope), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`gateway_busy`: a running operation holds the gateway (`details.operation_id`)")))]
pub async fn uncordon(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<GatewayId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    // An operator's uncordon, not an operation's own: refused while one holds the gateway.
    state
        .fleet
        .operations
        .refuse_while_held(id, "uncordon")
        .await?;
    set_cordon(&state, &who, id, false).await
}

async fn set_cordon(
    state: &AppState,
    who: &Authenticated,
    id: GatewayId,
    cordoned: bool,
) -> Result<HttpResponse, ApiError> {
    let view = state
        .fleet
        .gateway_ops
        .cordon(id, cordoned, &who.0.caller())
        .await?;
    Ok(
        HttpResponse::Ok().json(super::gateway_json::GatewayEnvelope {
            gateway: (&view).into(),
        }),
    )
}
