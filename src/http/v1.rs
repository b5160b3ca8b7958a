//! `/api/v1/gateways` (seed: mission-control-v1-create-gateway), over the same registry as
//! `/api/gateways`. Create connects first: unreachable or refused ⇒ 502 with a friendly message;
//! a version below `gateways.min_version` ⇒ 503; a non-CalVer version (e.g. `dev`) is accepted
//! with a warning. The gateway's main agent is recorded. Timestamps are RFC 3339.
//! `disable_device_pairing` is recorded but changes nothing: OpenClaw 2026.9 retired the
//! device-less Control-UI mode it selected, and this daemon always presents its device.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::json::JsonBody;
use super::principal::Authenticated;
use crate::validate;
use gateway_supervisor_actors::link::verify::{self, Target};
use gateway_supervisor_actors::messages::{CreateGateway, DeleteGateway, UpdateGateway};
use gateway_supervisor_actors::model::{
    GatewayId, GatewayPatch, GatewayRecord, GatewayView, NewGateway, Secrets,
};
use gateway_supervisor_actors::protocol::device::DeviceIdentity;
use gateway_supervisor_actors::protocol::errors::Disposition;
use gateway_supervisor_actors::protocol::version;
use gateway_supervisor_actors::store::GatewayStore;

/// What the v1 create check needs.
#[derive(Clone)]
pub struct V1Settings {
    pub identity: Arc<DeviceIdentity>,
    pub min_version: String,
    pub timeout: Duration,
}

/// Unix seconds → RFC 3339 UTC (`2026-03-05T10:30:00Z`).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[derive(Serialize, ToSchema)]
pub struct GatewayRead {
    pub id: GatewayId,
    pub name: String,
    pub url: String,
    pub workspace_root: Option<String>,
    pub gateway_agent_id: Option<String>,
    pub allow_insecure_tls: bool,
    pub disable_device_pairing: bool,
    pub token_set: bool,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

fn read(v: &GatewayView, warnings: Vec<String>) -> GatewayRead {
    let r = &v.record;
    GatewayRead {
        id: r.id,
        name: r.name.clone(),
        url: r.url(),
        workspace_root: r.workspace_root.clone(),
        gateway_agent_id: r.gateway_agent_id.clone(),
        allow_insecure_tls: r.allow_insecure_tls,
        disable_device_pairing: r.disable_device_pairing,
        token_set: r.has_token(),
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
        warnings,
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayCreate {
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    /// `ws://host:port` or `wss://host:port`.
    #[schema(pattern = r"^\s*wss?://")]
    pub url: String,
    pub workspace_root: String,
    pub token: Option<String>,
    #[serde(default)]
    pub allow_insecure_tls: bool,
    #[serde(default)]
    pub disable_device_pairing: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayUpdate {
    pub name: Option<String>,
    pub url: Option<String>,
    pub workspace_root: Option<String>,
    pub token: Option<String>,
    pub allow_insecure_tls: Option<bool>,
    pub disable_device_pairing: Option<bool>,
}

/// Gateway `r`'s shared token as it is now: the record's, or the store's when another instance
/// of the cluster links the gateway (its secrets stay with its owner, docs/design.md,
/// *Cluster*).
async fn current_token(
    state: &AppState,
    r: &GatewayRecord,
) -> Result<Option<SecretString>, ApiError> {
    if r.secrets == Secrets::Carried {
        return Ok(r.token.clone());
    }
    let (store, id) = (state.store.clone(), r.id);
    let read = web::block(move || store.gateway_secrets(&[id]))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::storage(e.to_string()))?;
    Ok(read.into_iter().next().and_then(|s| s.token))
}

/// Connects once and checks the version; returns the main agent and any warnings.
async fn check(
    state: &AppState,
    url: &str,
    insecure: bool,
    token: Option<&SecretString>,
) -> Result<(Option<String>, Vec<String>), ApiError> {
    let s = &state.v1;
    let target = Target {
        url,
        insecure_tls: insecure,
        token,
    };
    let reached = verify::handshake_once(&target, &s.identity, env!("CARGO_PKG_VERSION"), s.timeout).await.map_err(|f| {
        let (code, message) = match (&f.disposition, f.code.unreachable()) {
            (Disposition::Pairing { request_id }, _) => (
                "gateway_pairing_required",
                format!("Gateway requires pairing approval for this supervisor's device (request {}); approve it on the gateway (`openclaw devices approve`) and retry", request_id.as_deref().unwrap_or("?")),
            ),
            (_, true) => ("gateway_unreachable", format!("Gateway is unreachable: {}", f.message)),
            _ => ("gateway_refused", format!("Gateway refused the connection ({}): {}", f.code, f.message)),
        };
        ApiError::BadGateway { code, message }
    })?;
    let mut warnings = Vec::new();
    match (
        version::calver(&reached.version),
        version::calver(&s.min_version),
    ) {
        (Some(have), Some(min)) if have < min => {
            return Err(ApiError::VersionTooOld(format!(
                "Gateway version {} is below the minimum required version {}; upgrade the gateway",
                reached.version, s.min_version
            )));
        }
        (None, _) => {
            tracing::warn!(version = %reached.version, "gateway version is not CalVer; minimum version check skipped");
            warnings.push(format!(
                "gateway version `{}` is not CalVer; the minimum version check was skipped",
                reached.version
            ));
        }
        _ => {}
    }
    Ok((reached.default_agent, warnings))
}

fn validated_url(url: &str) -> Result<validate::GatewayUrl, ApiError> {
    validate::url(url).map_err(|e| ApiError::field("url", e.message))
}

#[utoipa::path(post, path = "/api/v1/gateways", tag = "v1", request_body = GatewayCreate,
    responses((status = 201, body = GatewayRead), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    who: Authenticated,
    visible: super::visible::Visible,
    body: JsonBody<GatewayCreate>,
) -> Result<HttpResponse, ApiError> {
    let r = body.0;
    let labels = visible.labels_for_new(&Default::default())?;
    let name = validate::name(&r.name).map_err(|e| ApiError::field("name", e.message))?;
    let url = validated_url(&r.url)?;
    if r.workspace_root.trim().is_empty() {
        return Err(ApiError::Unprocessable(
            "workspace_root must not be empty".into(),
        ));
    }
    let token = r
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| SecretString::from(t.to_owned()));
    let (agent, warnings) = check(&state, &r.url, r.allow_insecure_tls, token.as_ref()).await?;
    let new = NewGateway {
        approvals: None,
        labels,
        name,
        host: url.host,
        port: url.port,
        tls: url.tls,
        allow_insecure_tls: r.allow_insecure_tls,
        token,
        is_primary: false,
        workspace_root: Some(r.workspace_root.trim().to_owned()),
        disable_device_pairing: r.disable_device_pairing,
        gateway_agent_id: agent,
    };
    let view = state
        .registry
        .send(CreateGateway {
            new,
            by: who.0.caller(),
        })
        .await??;
    Ok(HttpResponse::Created().json(read(&view, warnings)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Rows in the page: any count, clamped to 1–1000 (default 50).
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    #[serde(default, deserialize_with = "super::query::integer")]
    pub limit: Option<usize>,
    /// Gateways skipped before the page.
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    #[serde(default, deserialize_with = "super::query::integer")]
    pub offset: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/gateways", tag = "v1", params(Page),
    responses((status = 200, description = "`{items: [GatewayRead], total, limit, offset}`")))]
pub async fn list(
    state: web::Data<AppState>,
    visible: super::visible::Visible,
    page: web::Query<Page>,
) -> Result<HttpResponse, ApiError> {
    let (limit, offset) = (
        page.limit.unwrap_or(50).clamp(1, 1000),
        page.offset.unwrap_or(0),
    );
    // Met one at a time: the page holds its rows, not the fleet (`gateway_page::Pager`).
    let q = super::gateway_page::PageQuery::window(limit, offset);
    let mut pager = super::gateway_page::Pager::new(&q);
    let seen = crate::gateway_reads::Subset::SeenBy(visible.scope());
    state.gateways().walk(seen, |v| pager.meet(v)).await?;
    let (rows, total, _) = pager.rows();
    let items: Vec<GatewayRead> = rows.iter().map(|v| read(v, Vec::new())).collect();
    Ok(HttpResponse::Ok()
        .json(json!({"items": items, "total": total, "limit": limit, "offset": offset})))
}

#[utoipa::path(get, path = "/api/v1/gateways/{id}", tag = "v1", params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = GatewayRead), (status = 404, body = ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    id: web::Path<GatewayId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let view = state
        .gateways()
        .get(id)
        .await?
        .ok_or(ApiError::GatewayNotFound(id))?;
    Ok(HttpResponse::Ok().json(read(&view, Vec::new())))
}

#[utoipa::path(patch, path = "/api/v1/gateways/{id}", tag = "v1", params(("id" = i64, Path, minimum = 1)), request_body = GatewayUpdate,
    description = "Partial update; a new url, token or TLS setting is checked (connect + version) before it is stored.",
    responses((status = 200, body = GatewayRead), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`duplicate_name`, or `duplicate_address`: another gateway has this host:port"),
        (status = 422, body = ErrorBody, description = "`unprocessable`: an empty `workspace_root`"), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn update(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<GatewayId>,
    body: JsonBody<GatewayUpdate>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let r = body.0;
    let current = state
        .gateways()
        .get(id)
        .await?
        .ok_or(ApiError::GatewayNotFound(id))?;
    let url = r.url.as_deref().map(validated_url).transpose()?;
    let token = r.token.as_deref().map(|t| {
        Some(t.trim())
            .filter(|t| !t.is_empty())
            .map(|t| SecretString::from(t.to_owned()))
    });
    let mut warnings = Vec::new();
    let mut agent = None;
    if url.is_some() || token.is_some() || r.allow_insecure_tls.is_some() {
        let check_url = r.url.clone().unwrap_or_else(|| current.record.url());
        let check_token = match &token {
            Some(t) => t.clone(),
            None => current_token(&state, &current.record).await?,
        };
        let insecure = r
            .allow_insecure_tls
            .unwrap_or(current.record.allow_insecure_tls);
        let (a, w) = check(&state, &check_url, insecure, check_token.as_ref()).await?;
        agent = a;
        warnings = w;
    }
    if r.workspace_root
        .as_deref()
        .is_some_and(|w| w.trim().is_empty())
    {
        return Err(ApiError::Unprocessable(
            "workspace_root must not be empty".into(),
        ));
    }
    let patch = GatewayPatch {
        name: r
            .name
            .as_deref()
            .map(validate::name)
            .transpose()
            .map_err(|e| ApiError::field("name", e.message))?,
        host: url.as_ref().map(|u| u.host.clone()),
        port: url.as_ref().map(|u| u.port),
        tls: url.as_ref().map(|u| u.tls),
        allow_insecure_tls: r.allow_insecure_tls,
        token,
        workspace_root: r.workspace_root.map(|w| Some(w.trim().to_owned())),
        disable_device_pairing: r.disable_device_pairing,
        gateway_agent_id: agent.map(Some),
        ..GatewayPatch::default()
    };
    if patch.is_empty() {
        return Ok(HttpResponse::Ok().json(read(&current, warnings)));
    }
    let view = state
        .registry
        .send(UpdateGateway {
            id,
            patch,
            by: who.0.caller(),
        })
        .await??;
    Ok(HttpResponse::Ok().json(read(&view, warnings)))
}

#[utoipa::path(delete, path = "/api/v1/gateways/{id}", tag = "v1", params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, description = "`{deleted: true}`"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`gateway_busy`: a running operation holds the gateway, or it is suspended through this daemon (resume it first)")))]
pub async fn delete(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<GatewayId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    state.fleet.operations.may_delete(id).await?;
    state
        .registry
        .send(DeleteGateway {
            id,
            by: who.0.caller(),
            lost: false,
        })
        .await??;
    Ok(HttpResponse::Ok().json(json!({"deleted": true})))
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_772_706_600), "2026-03-05T10:30:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
