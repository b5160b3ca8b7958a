//! Declared cron jobs: `PUT /api/cron/declarations/{name}` (the job wanted on every gateway a
//! selector picks, written by an operation on the fleet engine), `DELETE` (removed from every
//! gateway that carries it, the same way), and the declarations with each gateway's drift.
//! The platform's: a declaration's selector may reach any tenant's gateways.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::json::JsonBody;
use super::operation_json::{OperationEnvelope, accepted};
use super::principal::Authenticated;
use crate::cron::declared::{DeclarationView, Pace};

/// Gateways a declaration's rollout writes at once, at most.
const MAX_PARALLEL: u32 = 50;

/// A declared job.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclarationRequest {
    /// The gateways that carry it: a label selector (`team=payments`; empty: every gateway).
    #[schema(max_length = 1024)]
    pub selector: String,
    /// The job as 2026.9.6's `cron.add` takes it — `name`, `schedule` (`cron {expr, tz?,
    /// staggerMs?}`, `every {everyMs}` or `at {at}`), `payload` (`agentTurn` or `systemEvent`),
    /// `sessionTarget`, `delivery`, … — without `declarationKey` (the daemon's: `gs:<name>`)
    /// and `enabled` (decided per gateway).
    #[schema(value_type = Object)]
    pub job: Value,
    /// Fired by one matching gateway only (the group's acting primary, else the lowest id up),
    /// disabled on the others, and moved when that gateway goes down.
    pub single: Option<bool>,
    /// How a single-firing job moves: `overlap` (enable the new gateway first: one fire may
    /// happen twice; the default) or `gap` (disable the old one first: one fire may be missed).
    #[serde(rename = "move")]
    #[schema(pattern = "^(overlap|gap)$")]
    pub move_: Option<String>,
    /// The first `canary` gateways are written first; a failure stops the rest (default 1).
    #[schema(minimum = 0, maximum = 1000)]
    pub canary: Option<u32>,
    /// Gateways written at once after the canaries (1–50, default 8).
    #[schema(minimum = 1, maximum = 50)]
    pub max_parallel: Option<u32>,
}

/// Every declaration.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeclarationList {
    pub declarations: Vec<DeclarationView>,
}

fn pace(canary: Option<u32>, max_parallel: Option<u32>) -> Result<Pace, ApiError> {
    let max_parallel = max_parallel.unwrap_or(8);
    if !(1..=MAX_PARALLEL).contains(&max_parallel) {
        return Err(ApiError::field(
            "max_parallel",
            format!("max_parallel must be between 1 and {MAX_PARALLEL}"),
        ));
    }
    let canary = canary.unwrap_or(1);
    if canary > 1000 {
        return Err(ApiError::field("canary", "canary is at most 1000"));
    }
    Ok(Pace {
        canary,
        max_parallel,
    })
}

#[utoipa::path(put, path = "/api/cron/declarations/{name}", tag = "cron",
    params(("name" = String, Path, pattern = "^[a-z0-9][a-z0-9-]{0,63}$")),
    request_body = DeclarationRequest,
    description = "Declares a job on every gateway the selector picks, as an operation on the fleet engine (`GET /api/operations/{id}`; cancel it there): the canaries first, then `max_parallel` gateways at a time, each write paced under the gateway's write limit (30 a minute, 2 s apart). Per gateway: `cron.add` with `declarationKey: gs:<name>` (the gateway updates the same job when it has it), read back with `cron.get` and compared by value; a gateway that carries the job and is no longer picked has it removed. Every field is checked here first (a bad expression or time zone is a 400 naming the field); a gateway that still refuses fails the operation with its words, and with the canary first nothing else is written. A gateway down now is written when it links again; later, a gateway that comes to match gets the job and one that stops matching loses it. With `single`, the job is enabled on one gateway only and moved (`move`) when that gateway goes down.",
    responses((status = 202, body = OperationEnvelope),
        (status = 400, body = ErrorBody, description = "`invalid_field` naming the field: name, selector, job.* (schedule.expr, schedule.tz, payload.kind, …), single, move, canary, max_parallel"),
        (status = 409, body = ErrorBody, description = "`gateway_busy`: a gateway is already in a running operation (the declaration's earlier rollout, say); `cron_declarations_full`: 100 are kept at most")))]
pub async fn put_declaration(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<String>,
    body: JsonBody<DeclarationRequest>,
) -> Result<HttpResponse, ApiError> {
    let r = body.0;
    let pace = pace(r.canary, r.max_parallel)?;
    let declared = json!({"selector": r.selector, "job": r.job,
        "single": r.single, "move": r.move_});
    let op = state
        .cron
        .declare(&path.into_inner(), &declared, pace, &who.0.caller())
        .await?;
    Ok(accepted(op))
}

#[utoipa::path(delete, path = "/api/cron/declarations/{name}", tag = "cron",
    params(("name" = String, Path)),
    description = "Deletes a declaration: its job is removed (`cron.remove`) from every gateway that carries it, as an operation on the fleet engine, paced like its writes; a gateway down now has it removed when it links again.",
    responses((status = 202, body = OperationEnvelope), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`gateway_busy`: a gateway is already in a running operation")))]
pub async fn delete_declaration(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let op = state
        .cron
        .undeclare(&path.into_inner(), pace(None, None)?, &who.0.caller())
        .await?;
    Ok(accepted(op))
}

#[utoipa::path(get, path = "/api/cron/declarations", tag = "cron",
    description = "Every declaration (at most 100), with each gateway it was written to: the revision written, whether it is enabled there, and its drift — the fields where the gateway's job differs from the declaration by value (`job` when the job is gone), or the gateway's refusal.",
    responses((status = 200, body = DeclarationList)))]
pub async fn list_declarations(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let declarations = state
        .cron
        .declarations()
        .await
        .map_err(|e| ApiError::from(e.into_fleet()))?;
    Ok(HttpResponse::Ok().json(DeclarationList { declarations }))
}

#[utoipa::path(get, path = "/api/cron/declarations/{name}", tag = "cron",
    params(("name" = String, Path)),
    description = "One declaration with each gateway's drift.",
    responses((status = 200, body = DeclarationView), (status = 404, body = ErrorBody)))]
pub async fn get_declaration(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    match state
        .cron
        .declaration(&name)
        .await
        .map_err(|e| ApiError::from(e.into_fleet()))?
    {
        Some(d) => Ok(HttpResponse::Ok().json(d)),
        None => Err(ApiError::CronDeclarationNotFound(
            gateway_supervisor_actors::bounded::text(&name, 64),
        )),
    }
}
