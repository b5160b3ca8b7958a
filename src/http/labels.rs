//! `PATCH /api/gateways/{id}/labels`: changes some of a gateway's labels — a JSON merge patch
//! on its label object (`{"tier": "canary", "old": null}` sets `tier`, removes `old`, keeps the
//! rest), applied to the labels as stored at that moment, so two operators labelling one
//! gateway from two instances do not lose each other's change. The labels are Kubernetes'
//! (docs/design.md, *Labels and selectors*); selectors pick gateways by them.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::gateway_json::GatewayEnvelope;
use super::json::JsonBody;
use super::principal::Authenticated;
use gateway_supervisor_actors::labels::{LabelPatch, MAX_LABELS, Selector};
use gateway_supervisor_actors::messages::PatchLabels;
use gateway_supervisor_actors::model::GatewayId;

/// The most keys one patch names (every label removed and as many set).
const MAX_PATCH_KEYS: usize = 2 * MAX_LABELS;

/// A merge patch on the gateway's labels: each key set to a string is set, each key set to
/// `null` is removed, keys not named are kept.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object, example = json!({"tier": "canary", "old": null}))]
pub struct LabelsPatchRequest(pub BTreeMap<String, Option<String>>);

#[utoipa::path(patch, path = "/api/gateways/{id}/labels", tag = "gateways",
    description = "Changes some of the gateway's labels: a JSON merge patch on its label object (`{\"tier\": \"canary\", \"old\": null}` sets `tier`, removes `old`, keeps the rest). The result must be valid labels (Kubernetes' syntax; at most 64). Announced as a `gateway.changed` event with the new labels, and audited.",
    params(("id" = i64, Path, minimum = 1, description = "Gateway id")),
    request_body(content = LabelsPatchRequest, content_type = "application/merge-patch+json"),
    responses((status = 200, body = GatewayEnvelope), (status = 400, body = ErrorBody, description = "`invalid_field` (`labels`): a key or value that is not a label, or more than 64"),
        (status = 403, body = ErrorBody, description = "`out_of_scope`: a reserved label (`tenant`, `labels.reserved`) named by a key scoped to a tenant"),
        (status = 404, body = ErrorBody)))]
pub async fn patch(
    state: web::Data<AppState>,
    who: Authenticated,
    visible: super::visible::Visible,
    id: web::Path<GatewayId>,
    body: JsonBody<LabelsPatchRequest>,
) -> Result<HttpResponse, ApiError> {
    let patch: LabelPatch = body.0.0;
    visible.may_set_labels(patch.keys().map(String::as_str))?;
    if patch.is_empty() {
        return Err(ApiError::field(
            "labels",
            "nothing to change: name at least one label (a string sets it, null removes it)",
        ));
    }
    if patch.len() > MAX_PATCH_KEYS {
        return Err(ApiError::field(
            "labels",
            format!("a patch names at most {MAX_PATCH_KEYS} labels"),
        ));
    }
    let view = state
        .registry
        .send(PatchLabels {
            id: id.into_inner(),
            patch,
            by: who.0.caller(),
        })
        .await??;
    Ok(HttpResponse::Ok().json(GatewayEnvelope {
        gateway: (&view).into(),
    }))
}

/// A selector from a request, its error naming `field`.
pub fn selector(field: &str, text: &str) -> Result<Selector, ApiError> {
    Selector::parse(text).map_err(|e| ApiError::field(field, e.to_string()))
}

/// The gateways a listing's `selector` query parameter picks (`None`: it has none), refused
/// naming `selector` when it does not parse.
pub async fn picked(
    state: &AppState,
    text: Option<&str>,
) -> Result<Option<std::collections::BTreeSet<GatewayId>>, ApiError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let selector = selector("selector", text)?;
    let ids = state.fleet.operations.gateway_ids(&selector).await?;
    Ok(Some(ids.into_iter().collect()))
}
