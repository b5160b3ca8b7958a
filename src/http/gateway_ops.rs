//! `POST /api/gateways/{id}/suspend|resume|restart` (admin): the gateway's own
//! `gateway.suspend.prepare` / `gateway.suspend.resume` / `gateway.restart.request`. A gateway's
//! refusal (e.g. busy with active work) comes back as 409 with its reasons.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use super::AppState;
use super::error::call_error;
use super::error::{ApiError, ErrorBody};
use super::principal::Authenticated;
use crate::secrets::random_hex;
use gateway_supervisor_actors::messages::SpawnTargets;

const TIMEOUT: Duration = Duration::from_secs(30);

async fn call(state: &AppState, id: i64, method: &str, params: Value) -> Result<Value, ApiError> {
    let targets = state.registry.send(SpawnTargets).await?;
    let t = targets
        .into_iter()
        .find(|t| t.candidate.id == id)
        .ok_or(ApiError::GatewayNotFound(id))?;
    let name = t.candidate.name.clone();
    let link = t.link.filter(|_| t.candidate.healthy).ok_or_else(|| {
        ApiError::GatewayUnavailable(format!("gateway `{name}` is not connected"))
    })?;
    if !t.methods.iter().any(|m| m == method) {
        return Err(ApiError::UnsupportedAction {
            message: format!("gateway `{name}` does not offer `{method}`"),
            details: json!({"gateway_id": id, "gateway": name, "method": method}),
        });
    }
    link.call(method, Some(params), TIMEOUT)
        .await
        .map_err(|e| call_error(e, &name))
}

#[utoipa::path(post, path = "/api/gateways/{id}/suspend", tag = "gateways", params(("id" = i64, Path, minimum = 1)),
    description = "Suspends the whole gateway (`gateway.suspend.prepare`). A busy gateway refuses: 409 `gateway_busy` with its reason, active count and blockers.",
    responses((status = 200, description = "the gateway's answer"), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = ["admin"])))]
pub async fn suspend(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let answer = call(
        &state,
        id,
        "gateway.suspend.prepare",
        json!({"requestId": random_hex::<16>()?}),
    )
    .await?;
    if answer.get("status").and_then(Value::as_str) == Some("busy") {
        return Err(ApiError::GatewayBusy {
            message: format!(
                "gateway {id} refused to suspend: {}",
                answer
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("busy")
            ),
            details: answer,
        });
    }
    if let Some(sid) = answer.get("suspensionId").and_then(Value::as_str) {
        state
            .suspensions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, sid.to_owned());
    }
    state.events.publish(
        "gateway.status",
        Some(id),
        json!({"suspension": "prepared"}),
    );
    Ok(HttpResponse::Ok().json(json!({"gateway_id": id, "suspended": true, "gateway": answer})))
}

#[utoipa::path(post, path = "/api/gateways/{id}/resume", tag = "gateways", params(("id" = i64, Path, minimum = 1)),
    description = "Resumes a gateway this daemon suspended (`gateway.suspend.resume`).",
    responses((status = 200, description = "the gateway's answer"), (status = 409, body = ErrorBody),
        (status = 502, body = ErrorBody, description = "the gateway refused or answered out of protocol"),
        (status = 503, body = ErrorBody, description = "`gateway_unavailable`: the gateway is not connected")),
    security(("api_key" = ["admin"]), ("bearer" = ["admin"])))]
pub async fn resume(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let sid = state
        .suspensions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&id)
        .cloned();
    let sid = sid.ok_or_else(|| ApiError::GatewayBusy {
        message: format!("gateway {id} has no suspension made through this daemon to resume"),
        details: json!({"gateway_id": id}),
    })?;
    let answer = call(
        &state,
        id,
        "gateway.suspend.resume",
        json!({"suspensionId": sid}),
    )
    .await?;
    state
        .suspensions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id);
    state
        .events
        .publish("gateway.status", Some(id), json!({"suspension": "resumed"}));
    Ok(HttpResponse::Ok().json(json!({"gateway_id": id, "resumed": true, "gateway": answer})))
}

#[utoipa::path(post, path = "/api/gateways/{id}/restart", tag = "gateways", params(("id" = i64, Path, minimum = 1)),
    description = "Asks the gateway to restart itself (`gateway.restart.request`); the link reconnects when it is back.",
    responses((status = 200, description = "the gateway's answer"), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = ["admin"])))]
pub async fn restart(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let reason = format!(
        "requested through gateway-supervisor by {}",
        who.0.caller().label
    );
    let answer = call(
        &state,
        id,
        "gateway.restart.request",
        json!({"reason": reason}),
    )
    .await?;
    if answer.get("ok").and_then(Value::as_bool) == Some(false) {
        return Err(ApiError::GatewayBusy {
            message: format!("gateway {id} refused to restart"),
            details: answer,
        });
    }
    Ok(HttpResponse::Ok().json(json!({"gateway_id": id, "restart": answer})))
}
