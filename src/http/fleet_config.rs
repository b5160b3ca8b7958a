//! `/api/config`: config profiles (desired configuration per label selector) and each
//! gateway's drift from them (docs/design.md, *Fleet configuration*). Profiles are written by
//! admins (a profile decides what runs on many gateways); read by viewers, with every secret
//! shown as OpenClaw shows it (`__OPENCLAW_REDACTED__`).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::json::JsonBody;
use super::principal::Authenticated;
use crate::fleet_config::drift::DriftState;
use crate::fleet_config::profile::Profile;
use crate::fleet_config::{GatewayDrift, ProfileSpec};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileRequest {
    /// The gateways it is for: a label selector (`region=eu,tier!=canary`; `""` picks every
    /// gateway).
    pub selector: String,
    /// A JSON merge patch over the gateway's config (`null` removes a key). Values at secret
    /// paths (those OpenClaw redacts: `…token`, `…apiKey`, `…password`, …) are stored
    /// encrypted and never returned; `__OPENCLAW_REDACTED__` at such a path keeps the value
    /// held. At most 64 KiB, 16 deep, 512 paths.
    #[schema(value_type = Object)]
    pub patch: Value,
    /// Array paths the patch replaces whole (`config.patch`'s `replacePaths`; at most 256).
    #[serde(default)]
    pub replace_paths: Vec<String>,
    /// Why (at most 500 characters).
    pub note: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileJson {
    pub name: String,
    pub selector: String,
    /// The patch, secrets shown as `__OPENCLAW_REDACTED__`.
    #[schema(value_type = Object)]
    pub patch: Map<String, Value>,
    pub replace_paths: Vec<String>,
    pub note: Option<String>,
    pub updated_at_ms: i64,
    pub updated_by: String,
}

impl From<Profile> for ProfileJson {
    fn from(p: Profile) -> Self {
        ProfileJson {
            selector: p.selector.to_string(),
            name: p.name,
            patch: p.patch,
            replace_paths: p.replace_paths,
            note: p.note,
            updated_at_ms: p.updated_at_ms,
            updated_by: p.updated_by,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ProfileEnvelope {
    pub profile: ProfileJson,
}

/// A profile as saved, and how its paths and values were checked.
#[derive(Serialize, ToSchema)]
pub struct ProfileSaved {
    pub profile: ProfileJson,
    pub schema_check: crate::fleet_config::SchemaChecked,
}

#[derive(Serialize, ToSchema)]
pub struct ProfileList {
    /// In the order they apply (by name).
    pub profiles: Vec<ProfileJson>,
}

#[derive(Serialize, ToSchema)]
pub struct ProfileDeleted {
    pub deleted: bool,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DriftQuery {
    /// Only the gateways whose labels this selector picks.
    pub selector: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DriftReport {
    /// Every gateway the selector picks, in id order.
    pub gateways: Vec<GatewayDrift>,
    /// How many are in each state (each state present).
    #[schema(value_type = Object)]
    pub counts: std::collections::BTreeMap<&'static str, usize>,
}

#[utoipa::path(get, path = "/api/config/profiles", tag = "config",
    description = "Every config profile, in the order they apply (by name).",
    responses((status = 200, body = ProfileList)))]
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let profiles = state.fleet_config.profiles().await?;
    Ok(HttpResponse::Ok().json(ProfileList {
        profiles: profiles.into_iter().map(ProfileJson::from).collect(),
    }))
}

#[utoipa::path(get, path = "/api/config/profiles/{name}", tag = "config",
    params(("name" = String, Path, min_length = 1, max_length = 63, pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")),
    responses((status = 200, body = ProfileEnvelope), (status = 404, body = ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = state.fleet_config.profile(&name).await?;
    Ok(HttpResponse::Ok().json(ProfileEnvelope { profile: p.into() }))
}

#[utoipa::path(put, path = "/api/config/profiles/{name}", tag = "config",
    description = "Creates or replaces a config profile: a merge patch for the gateways its selector picks. Profiles apply in name order; a gateway's desired config is the merge of those that pick it. Checked first against the config schema of a connected gateway it picks (`config.schema.lookup`, OpenClaw 2026.9): a path the gateway does not know, or a value of another type than it takes there, is refused naming the path; with no gateway to ask, it is saved and `schema_check.checked` is `false`, saying why. Every gateway is judged against its profiles again at once (`GET /api/config/drift`). Audited with the paths it sets, never their values.",
    params(("name" = String, Path, min_length = 1, max_length = 63, pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")),
    request_body = ProfileRequest,
    responses((status = 200, body = ProfileSaved, description = "replaced"), (status = 201, body = ProfileSaved, description = "created"),
        (status = 400, body = ErrorBody, description = "`invalid_field`: the name, selector, patch (a path the gateway's schema does not have, a value of the wrong type, a path the daemon's link depends on), replace_paths or note")))]
pub async fn put(
    state: web::Data<AppState>,
    who: Authenticated,
    name: web::Path<String>,
    body: JsonBody<ProfileRequest>,
) -> Result<HttpResponse, ApiError> {
    let r = body.0;
    let spec = ProfileSpec {
        selector: r.selector,
        patch: r.patch,
        replace_paths: r.replace_paths,
        note: r.note,
    };
    let (p, created, schema_check) = state
        .fleet_config
        .put_profile(&name, spec, &who.0.caller())
        .await?;
    let envelope = ProfileSaved {
        profile: p.into(),
        schema_check,
    };
    Ok(if created {
        HttpResponse::Created().json(envelope)
    } else {
        HttpResponse::Ok().json(envelope)
    })
}

#[utoipa::path(delete, path = "/api/config/profiles/{name}", tag = "config",
    description = "Deletes a config profile. The gateways keep their config; they are judged again without it.",
    params(("name" = String, Path, min_length = 1, max_length = 63)),
    responses((status = 200, body = ProfileDeleted), (status = 404, body = ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    who: Authenticated,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .fleet_config
        .delete_profile(&name, &who.0.caller())
        .await?;
    Ok(HttpResponse::Ok().json(ProfileDeleted { deleted: true }))
}

#[utoipa::path(get, path = "/api/config/drift", tag = "config", params(DriftQuery),
    description = "Each gateway's config against its profiles, as last read back (`config.get`, compared value by value): `in_sync`; `drifted` (the paths, with live and desired values for those that are not secrets); `saved_not_applied` (the gateway saved a change it has not applied: it waits for a restart); `unknown` (offline, `config.get` not offered or failed, or not judged yet — the reason given). Judged on connect, when a profile changes and every `config.drift_interval`.",
    responses((status = 200, body = DriftReport), (status = 400, body = ErrorBody)))]
pub async fn drift(
    state: web::Data<AppState>,
    query: web::Query<DriftQuery>,
) -> Result<HttpResponse, ApiError> {
    let selector = match query.selector.as_deref() {
        Some(s) => super::labels::selector("selector", s)?,
        None => gateway_supervisor_actors::labels::Selector::everything(),
    };
    let gateways = state.fleet_config.drift(&selector).await?;
    let mut counts: std::collections::BTreeMap<&'static str, usize> = [
        DriftState::InSync,
        DriftState::Drifted,
        DriftState::SavedNotApplied,
        DriftState::Unknown,
    ]
    .into_iter()
    .map(|s| (s.as_str(), 0))
    .collect();
    for g in &gateways {
        *counts.entry(g.state.as_str()).or_default() += 1;
    }
    Ok(HttpResponse::Ok().json(DriftReport { gateways, counts }))
}
