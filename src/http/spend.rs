//! `/api/spend/budgets`: spend and run budgets per key and per tenant (docs/design.md,
//! *Spend*). A budget is for `key:<id>` or `tenant:<name>`; every spawn is admitted against its
//! key's and its gateway's tenant's, by reserving an estimate in the transaction that checks
//! `spent + reserved + estimate ≤ max` — refused with 429 `budget_exceeded`, `Retry-After` at
//! the window's reset and the budget's name — and settled when its run ends from the gateway's
//! own numbers. The platform's: admins write them, viewers read them.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::json::JsonBody;
use super::principal::Authenticated;
use crate::db::unix_now;
use crate::spend::budget::{self, SpendBudgetSpec, SpendBudgetView};

#[derive(Serialize, ToSchema)]
pub struct SpendBudgetList {
    /// In subject order.
    pub budgets: Vec<SpendBudgetView>,
}

#[derive(Serialize, ToSchema)]
pub struct SpendBudgetEnvelope {
    pub budget: SpendBudgetView,
}

#[derive(Serialize, ToSchema)]
pub struct SpendBudgetDeleted {
    pub deleted: bool,
}

fn subject(text: &str) -> Result<crate::db::spend::Subject, ApiError> {
    budget::subject(text).map_err(|e| ApiError::field("subject", e))
}

/// The budget of `wanted` (a stored subject) as it stands now.
async fn one(state: &AppState, wanted: String) -> Result<SpendBudgetView, ApiError> {
    all(state)
        .await?
        .into_iter()
        .find(|b| b.subject == wanted)
        .ok_or(ApiError::SpendBudgetNotFound(wanted))
}

async fn all(state: &AppState) -> Result<Vec<SpendBudgetView>, ApiError> {
    let now = unix_now();
    let rows = super::stored(state, move |s| s.spend_budgets(now)).await?;
    Ok(rows
        .into_iter()
        .map(|(b, t, w)| budget::view(b, t, w))
        .collect())
}

#[utoipa::path(get, path = "/api/spend/budgets", tag = "spend",
    description = "Every spend budget, with its current window (start and reset) and ledger: spent (settled runs, at their gateways' own numbers), reserved (runs going, at their estimates), runs started and going.",
    responses((status = 200, body = SpendBudgetList)))]
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(SpendBudgetList {
        budgets: all(&state).await?,
    }))
}

#[utoipa::path(get, path = "/api/spend/budgets/{subject}", tag = "spend",
    params(("subject" = String, Path, description = "`key:<id>` or `tenant:<name>`", pattern = r"^(key:[1-9][0-9]{0,17}|tenant:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)$")),
    responses((status = 200, body = SpendBudgetEnvelope), (status = 404, body = ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let budget = one(&state, subject(&path)?.stored()).await?;
    Ok(HttpResponse::Ok().json(SpendBudgetEnvelope { budget }))
}

#[utoipa::path(put, path = "/api/spend/budgets/{subject}", tag = "spend",
    description = "Sets the budget of a key (`key:<id>`) or a tenant (`tenant:<name>`), whole. Its `7d` and `30d` windows count from today in its time zone. Audited.",
    params(("subject" = String, Path, description = "`key:<id>` or `tenant:<name>`", pattern = r"^(key:[1-9][0-9]{0,17}|tenant:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)$")),
    request_body = SpendBudgetSpec,
    responses((status = 200, body = SpendBudgetEnvelope),
        (status = 400, body = ErrorBody, description = "`invalid_field`: a time zone the daemon does not know, an amount out of range, a spend cap with no estimate"),
        (status = 404, body = ErrorBody, description = "`key_not_found`: no such key")))]
pub async fn put(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<String>,
    body: JsonBody<SpendBudgetSpec>,
) -> Result<HttpResponse, ApiError> {
    let subject = subject(&path)?;
    if let crate::db::spend::Subject::Key(id) = subject {
        let known = super::stored(&state, move |s| s.list_api_keys()).await?;
        if !known.iter().any(|k| k.id == id) {
            return Err(ApiError::KeyNotFound(id));
        }
    }
    let caller = who.0.caller();
    let record = body
        .0
        .record(&subject, unix_now(), &caller.label)
        .map_err(|(field, why)| ApiError::field(field, why))?;
    let wanted = record.subject.clone();
    super::stored(&state, move |s| s.put_spend_budget(&record, &caller)).await?;
    let budget = one(&state, wanted).await?;
    Ok(HttpResponse::Ok().json(SpendBudgetEnvelope { budget }))
}

#[utoipa::path(delete, path = "/api/spend/budgets/{subject}", tag = "spend",
    params(("subject" = String, Path, description = "`key:<id>` or `tenant:<name>`", pattern = r"^(key:[1-9][0-9]{0,17}|tenant:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)$")),
    responses((status = 200, body = SpendBudgetDeleted), (status = 404, body = ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    who: Authenticated,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let wanted = subject(&path)?.stored();
    let caller = who.0.caller();
    let name = wanted.clone();
    if !super::stored(&state, move |s| s.delete_spend_budget(&name, &caller)).await? {
        return Err(ApiError::SpendBudgetNotFound(wanted));
    }
    Ok(HttpResponse::Ok().json(SpendBudgetDeleted { deleted: true }))
}
