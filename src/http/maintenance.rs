//! `POST /api/gateways/{id}/maintenance` and `DELETE …` (admin): a maintenance window, Consul's
//! `maint` for gateways — out of routing and the election like a cordon, the gateway's alerts
//! suppressed, the reason shown wherever the gateway is, ended by an operator or by itself at
//! `until`. A stored setting: any instance records it, every instance holds it.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::gateway_json::GatewayEnvelope;
use super::json::JsonBody;
use super::principal::Authenticated;
use gateway_supervisor_actors::model::{GatewayId, Maintenance};

/// The longest window (30 days).
const LONGEST_S: i64 = 30 * 86_400;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceRequest {
    /// Why (1–500 characters), shown wherever the gateway is.
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
    /// When it ends by itself (Unix seconds, within 30 days); or give `duration_seconds`;
    /// neither: when an operator ends it.
    pub until: Option<i64>,
    /// How long from now it lasts (1 s – 30 days), instead of `until`.
    #[schema(minimum = 1, maximum = 2592000)]
    pub duration_seconds: Option<i64>,
}

impl MaintenanceRequest {
    fn validate(self, now: i64, by: String) -> Result<Maintenance, ApiError> {
        let reason = self.reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 || reason.chars().any(char::is_control)
        {
            return Err(ApiError::field(
                "reason",
                "the reason is 1–500 characters of text",
            ));
        }
        let until = match (self.until, self.duration_seconds) {
            (Some(_), Some(_)) => {
                return Err(ApiError::field(
                    "until",
                    "give either until or duration_seconds, not both",
                ));
            }
            (Some(u), None) if u <= now || u - now > LONGEST_S => {
                return Err(ApiError::field(
                    "until",
                    "until must be in the future, within 30 days (Unix seconds)",
                ));
            }
            (None, Some(d)) if !(1..=LONGEST_S).contains(&d) => {
                return Err(ApiError::field(
                    "duration_seconds",
                    "duration_seconds must be between 1 and 2592000 (30 days)",
                ));
            }
            (Some(u), None) => Some(u),
            (None, Some(d)) => Some(now + d),
            (None, None) => None,
        };
        Ok(Maintenance {
            reason: reason.to_owned(),
            by,
            since: now,
            until,
        })
    }
}

#[utoipa::path(post, path = "/api/gateways/{id}/maintenance", tag = "gateways", params(("id" = i64, Path, minimum = 1)),
    description = "Puts the gateway in maintenance: its work goes on, it takes no new spawns and does not act as primary (like a cordon), its alerts (offline, breaker open) are not sent, and the reason is shown in its object (`maintenance`), the console and `gateway.changed`. Ends at `until` by itself, or with `DELETE`. Asked again, the window is replaced.",
    request_body = MaintenanceRequest,
    responses((status = 200, body = GatewayEnvelope), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn start(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<GatewayId>,
    body: JsonBody<MaintenanceRequest>,
) -> Result<HttpResponse, ApiError> {
    let caller = who.0.caller();
    let window = body
        .0
        .validate(gateway_supervisor_actors::unix_now(), caller.label.clone())?;
    let view = state
        .fleet
        .gateway_ops
        .maintenance(id.into_inner(), Some(window), &caller)
        .await?;
    Ok(HttpResponse::Ok().json(GatewayEnvelope {
        gateway: (&view).into(),
    }))
}

#[utoipa::path(delete, path = "/api/gateways/{id}/maintenance", tag = "gateways", params(("id" = i64, Path, minimum = 1)),
    description = "Ends the gateway's maintenance: it takes spawns again (unless cordoned or suspended) and its alerts are sent again.",
    responses((status = 200, body = GatewayEnvelope), (status = 404, body = ErrorBody)))]
pub async fn end(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<GatewayId>,
) -> Result<HttpResponse, ApiError> {
    let view = state
        .fleet
        .gateway_ops
        .maintenance(id.into_inner(), None, &who.0.caller())
        .await?;
    Ok(HttpResponse::Ok().json(GatewayEnvelope {
        gateway: (&view).into(),
    }))
}
