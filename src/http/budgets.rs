//! `/api/budgets`: disruption budgets (docs/design.md, *Disruption budgets*) — how many of
//! the gateways a label selector picks may be out of service at once. Every voluntary
//! disruption (a rolling restart's, drain's, upgrade's or restarting config change's gateway,
//! a suspend or restart through the API) is checked against them when it begins: an
//! operation's gateway waits, an API call is answered 429 `disruption_budget` with
//! `Retry-After` and the budget's name. Admins write them; viewers read them.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::json::JsonBody;
use super::principal::Authenticated;
use crate::fleet::budget::rule::Limit;
use crate::fleet::budget::{BudgetSpec, BudgetStatus};

const COUNT_MAX: u32 = 100_000;
const NOTE_MAX: usize = 500;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetRequest {
    /// The gateways it covers: a label selector (`region=eu`; `""` covers every gateway).
    pub selector: String,
    /// At most this many of them out of service at once (give this or `min_available`).
    pub max_unavailable: Option<u32>,
    /// At least this many of them in service.
    pub min_available: Option<u32>,
    /// Why (at most 500 characters).
    pub note: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BudgetEnvelope {
    pub budget: BudgetStatus,
}

#[derive(Serialize, ToSchema)]
pub struct BudgetList {
    /// In name order.
    pub budgets: Vec<BudgetStatus>,
}

#[derive(Serialize, ToSchema)]
pub struct BudgetDeleted {
    pub deleted: bool,
}

#[utoipa::path(get, path = "/api/budgets", tag = "operations",
    description = "Every disruption budget, in name order, with how it stands: the gateways it covers, how many are in service, how many more may be taken out now, and which are out (offline, suspended, in maintenance or being disrupted).",
    responses((status = 200, body = BudgetList)))]
pub async fn list_budgets(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let budgets = state.fleet.budgets.budgets().await?;
    Ok(HttpResponse::Ok().json(BudgetList { budgets }))
}

#[utoipa::path(get, path = "/api/budgets/{name}", tag = "operations",
    params(("name" = String, Path, min_length = 1, max_length = 63, pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")),
    responses((status = 200, body = BudgetEnvelope), (status = 404, body = ErrorBody)))]
pub async fn get_budget(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let budget = state
        .fleet
        .budgets
        .budgets()
        .await?
        .into_iter()
        .find(|b| b.name == *name)
        .ok_or_else(|| ApiError::BudgetNotFound(bounded(&name)))?;
    Ok(HttpResponse::Ok().json(BudgetEnvelope { budget }))
}

fn bounded(name: &str) -> String {
    gateway_supervisor_actors::bounded::text(name, 64)
}

#[utoipa::path(put, path = "/api/budgets/{name}", tag = "operations",
    description = "Creates or replaces a disruption budget: `max_unavailable` (at most this many of the covered gateways out of service at once) or `min_available` (at least this many in service), not both. Checked by every voluntary disruption as it begins, in the transaction that records it, so two instances cannot both spend the last unit; gateways out for any reason count. A `min_available` larger than the gateways the selector picks now is refused (400 naming it: it would block every disruption for ever); `disruptions_allowed` never counts more than are in service (a `max_unavailable` of 10 over 2 gateways allows 2). Audited.",
    params(("name" = String, Path, min_length = 1, max_length = 63, pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")),
    request_body = BudgetRequest,
    responses((status = 200, body = BudgetEnvelope, description = "replaced"), (status = 201, body = BudgetEnvelope, description = "created"),
        (status = 400, body = ErrorBody, description = "`invalid_field`: the name, selector, limit or note")))]
pub async fn put_budget(
    state: web::Data<AppState>,
    who: Authenticated,
    name: web::Path<String>,
    body: JsonBody<BudgetRequest>,
) -> Result<HttpResponse, ApiError> {
    let r = body.0;
    let limit = match (r.max_unavailable, r.min_available) {
        (Some(n), None) if n <= COUNT_MAX => Limit::MaxUnavailable(n),
        (None, Some(n)) if n <= COUNT_MAX => Limit::MinAvailable(n),
        (Some(_), Some(_)) => {
            return Err(ApiError::field(
                "min_available",
                "give max_unavailable or min_available, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::field(
                "max_unavailable",
                "give max_unavailable or min_available",
            ));
        }
        (Some(_), None) => {
            return Err(ApiError::field(
                "max_unavailable",
                format!("max_unavailable is at most {COUNT_MAX}"),
            ));
        }
        (None, Some(_)) => {
            return Err(ApiError::field(
                "min_available",
                format!("min_available is at most {COUNT_MAX}"),
            ));
        }
    };
    if r.note
        .as_deref()
        .is_some_and(|n| n.chars().count() > NOTE_MAX || n.chars().any(char::is_control))
    {
        return Err(ApiError::field(
            "note",
            format!("a note is at most {NOTE_MAX} characters, without control characters"),
        ));
    }
    let spec = BudgetSpec {
        selector: r.selector,
        limit,
        note: r.note,
    };
    let (budget, created) = state
        .fleet
        .budgets
        .put_budget(&name, spec, &who.0.caller())
        .await?
        .map_err(|e| ApiError::field(e.field, e.message))?;
    let envelope = BudgetEnvelope { budget };
    Ok(if created {
        HttpResponse::Created().json(envelope)
    } else {
        HttpResponse::Ok().json(envelope)
    })
}

#[utoipa::path(delete, path = "/api/budgets/{name}", tag = "operations",
    params(("name" = String, Path, min_length = 1, max_length = 63)),
    responses((status = 200, body = BudgetDeleted), (status = 404, body = ErrorBody)))]
pub async fn delete_budget(
    state: web::Data<AppState>,
    who: Authenticated,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if !state
        .fleet
        .budgets
        .delete_budget(&name, &who.0.caller())
        .await?
    {
        return Err(ApiError::BudgetNotFound(bounded(&name)));
    }
    Ok(HttpResponse::Ok().json(BudgetDeleted { deleted: true }))
}
