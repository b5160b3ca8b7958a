//! Operations endpoints: `/healthz`, `/readyz`, `/metrics`, and the audit log.

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::db;
use crate::db::audit::AuditRow;
use gateway_supervisor_actors::messages::Ping;
use gateway_supervisor_actors::model::GatewayId;

const REGISTRY_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    pub status: &'static str,
    pub database: &'static str,
    pub registry: &'static str,
}

#[utoipa::path(get, path = "/healthz", tag = "operations",
    description = "The process is alive and serving HTTP.",
    responses((status = 200, body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// `GET /api/docs`: the API viewer lives at `/api/docs/` (its links are relative).
pub async fn docs() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((actix_web::http::header::LOCATION, "/api/docs/"))
        .finish()
}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    description = "Startup finished, the database takes a write and the registry actor answers.",
    responses((status = 200, body = Readiness), (status = 503, body = ErrorBody)))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !state.ready.load(Ordering::Acquire) {
        return Err(ApiError::NotReady("starting up".into()));
    }
    state
        .store
        .call(|s| db::check_writable(&s.pool))
        .await
        .map_err(|e| ApiError::NotReady(format!("database unreachable: {e}")))?;
    state
        .registry
        .send(Ping)
        .timeout(REGISTRY_PROBE_TIMEOUT)
        .await
        .map_err(|e| ApiError::NotReady(format!("registry actor not answering: {e}")))?;
    if let Some(cluster) = &state.cluster
        && !cluster.in_view()
    {
        return Err(ApiError::NotReady(format!(
            "instance {} holds no current view of the cluster (no successful lease renewal within the lease)",
            cluster.instance_id
        )));
    }
    Ok(HttpResponse::Ok().json(Readiness {
        status: "ready",
        database: "ok",
        registry: "ok",
    }))
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    description = "Prometheus text exposition.",
    responses((status = 200, content_type = "text/plain; version=0.0.4", body = String)))]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let held = state.gateways().held().await?;
    state.metrics.set_events(&state.events);
    let text = state
        .metrics
        .render(&held.views, &held.peers)
        .map_err(|e| ApiError::Internal(format!("metrics encoding: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// At most this many entries, newest first (1–1000, default 100; read by `format=json`,
    /// refused out of range with any format).
    #[param(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "super::query::integer")]
    pub limit: Option<i64>,
    /// `json` (default: the newest `limit`), or an export of the whole range, oldest first,
    /// streamed: `ndjson` (one object a line) or `csv` (RFC 4180, a header line first).
    #[param(pattern = "^(json|ndjson|csv)$")]
    pub format: Option<String>,
    /// An export's first moment: RFC 3339 (`2026-11-01T00:00:00Z`) or a UTC day
    /// (`2026-11-01`); default: the beginning.
    pub since: Option<String>,
    /// An export's end (not included), as `since`; default: now.
    pub until: Option<String>,
    /// An export of what tenant's keys did and what was done to its gateways.
    #[param(pattern = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    pub tenant: Option<String>,
}

/// A moment of an export's range: RFC 3339 or a UTC day, as Unix seconds.
fn moment(field: &str, text: &str) -> Result<i64, ApiError> {
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .or_else(|_| {
            text.parse::<jiff::civil::Date>()
                .ok()
                .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
                .map(|z| z.timestamp().as_second())
                .ok_or(())
        })
        .map_err(|()| {
            ApiError::field(
                field,
                format!("{field} is a moment (2026-11-01T00:00:00Z) or a day (2026-11-01)"),
            )
        })
}

#[derive(Serialize, ToSchema)]
pub struct AuditList {
    pub entries: Vec<AuditRow>,
}

#[utoipa::path(get, path = "/api/audit", tag = "operations",
    description = "The audit log (admin): every gateway and API-key mutation, newest first — or, with `format=ndjson|csv`, exported: every row of `since..until` (of one `tenant` if given: the rows written as its own, what its keys did and what was done to its gateways), oldest first, streamed in constant memory however long the range. A key scoped to a tenant reads that tenant's part only (403 `out_of_scope` for another `tenant`, and for a key narrowed by a selector).",
    params(AuditQuery),
    responses((status = 200, description = "`json`: the newest entries; `ndjson` and `csv`: the export, streamed",
            content((AuditList = "application/json"), (String = "application/x-ndjson"), (String = "text/csv"))),
        (status = 400, body = ErrorBody, description = "`invalid_field`: `format`, `since`, `until` or `tenant` (a moment or a day; a DNS label)"),
        (status = 403, body = ErrorBody, description = "`forbidden`: not an admin key; `out_of_scope`: another tenant's part, or a key narrowed by a selector")))]
pub async fn audit(
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
    visible: super::visible::Visible,
) -> Result<HttpResponse, ApiError> {
    // A key scoped to a tenant reads its tenant's part, and only that (docs/design.md,
    // *Tenancy*); one narrowed by a selector reads none: the log is kept per tenant.
    let scoped = match visible.scope().tenant() {
        None => None,
        Some(_) if visible.scope().selector().is_some() => {
            return Err(ApiError::OutOfScope(
                "the audit log is read per tenant; a key narrowed by a selector reads none of it"
                    .into(),
            ));
        }
        Some(t) => {
            if query.tenant.as_deref().is_some_and(|asked| asked != t) {
                return Err(ApiError::OutOfScope(format!(
                    "this key reads the audit log of tenant `{t}` only"
                )));
            }
            Some(t.to_owned())
        }
    };
    let format = match query.format.as_deref() {
        None => None,
        Some(f) => crate::audit::encode::Format::parse(f)
            .ok_or_else(|| ApiError::field("format", "format is json, ndjson or csv"))?,
    };
    // Checked whatever the format (ignored by `json`, never silently wrong).
    if let Some(t) = query.tenant.as_deref()
        && !gateway_supervisor_actors::labels::is_dns_label(t)
    {
        return Err(ApiError::field("tenant", "a tenant is a DNS label"));
    }
    if format.is_none()
        && (query.since.is_some() || query.until.is_some() || query.tenant.is_some())
    {
        return Err(ApiError::field(
            "format",
            "since, until and tenant choose the rows of an export: add format=ndjson or format=csv",
        ));
    }
    // Read by `json` alone, but out of range is refused whatever the format (never ignored).
    let limit = super::query::limit(query.limit, 100)?;
    if let Some(format) = format {
        let since = query
            .since
            .as_deref()
            .map(|s| moment("since", s))
            .transpose()?;
        let until = query
            .until
            .as_deref()
            .map(|s| moment("until", s))
            .transpose()?;
        let only = match query.tenant.as_deref().or(scoped.as_deref()) {
            None => None,
            Some(t) => Some(tenant_part(&state, t).await?),
        };
        return Ok(super::audit_export::export(
            &state,
            format,
            since.unwrap_or(i64::MIN),
            until.unwrap_or(i64::MAX),
            only,
        ));
    }
    let only = match scoped.as_deref() {
        None => None,
        Some(t) => Some(tenant_part(&state, t).await?),
    };
    let store = state.store.clone();
    let entries = super::blocking(move || store.audit_entries(limit, only.as_ref())).await?;
    Ok(HttpResponse::Ok().json(AuditList { entries }))
}

/// Tenant `t`'s part of the log: the rows written as its own, what its keys did, and what was
/// done to its gateways (rows written before rows named their tenant).
async fn tenant_part(state: &AppState, t: &str) -> Result<crate::db::audit::AuditScope, ApiError> {
    let keys = super::stored(state, |s| s.list_api_keys()).await?;
    Ok(crate::db::audit::AuditScope {
        tenant: Some(t.to_owned()),
        key_ids: keys
            .into_iter()
            .filter(|k| k.tenant.as_deref() == Some(t))
            .map(|k| k.id)
            .collect(),
        gateway_ids: state
            .scopes
            .tenant_gateways(t)
            .into_iter()
            .map(|g| g.get().to_string())
            .collect(),
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    #[serde(default, deserialize_with = "super::query::id")]
    pub gateway_id: Option<GatewayId>,
    pub session: Option<String>,
    /// `info`, `warn`, `error`, … as the line says it.
    pub level: Option<String>,
    /// Text the message contains (case-insensitive), at most 256 characters.
    #[param(max_length = 256)]
    pub q: Option<String>,
    /// `true`: a Server-Sent Events stream of the matching lines from now on (each a `log`
    /// event), instead of the buffer.
    pub follow: Option<bool>,
    /// 1–5000, default 100.
    #[param(minimum = 1, maximum = 5000)]
    #[serde(default, deserialize_with = "super::query::integer")]
    pub limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/logs", tag = "operations",
    description = "The gateways' recent log lines, oldest first: their `log` events and, from every gateway that offers `logs.tail` (OpenClaw 2026.9), its file log read every `gateway_logs.interval` (`payload.source: \"logs.tail\"`, with `level`, `subsystem`, the gateway's `time`; credentials redacted by the gateway and again here). A buffer of the last 5,000 lines or 8 MiB; an answer carries at most 2 MiB (`truncated: true` says older matching lines were left out). Filters: `gateway_id`, `session`, `level`, `q` (text). With `follow=true` the answer is a Server-Sent Events stream of the matching lines as they come (each a `log` event as `GET /api/events` frames it).",
    params(LogQuery),
    responses((status = 200, description = "`{logs: [...]}`"), (status = 400, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "`rate_limited` (`follow=true`): the key holds `server.streams_per_key` streams open already, or the daemon `server.streams_max`")))]
pub async fn logs(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    visible: super::visible::Visible,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    if let Some(id) = query.gateway_id {
        visible.one(id)?;
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=crate::logs::CAPACITY).contains(&limit) {
        return Err(ApiError::field("limit", "limit must be between 1 and 5000"));
    }
    let query = query.into_inner();
    if query.q.as_deref().is_some_and(|q| q.chars().count() > 256) {
        return Err(ApiError::field("q", "q must be at most 256 characters"));
    }
    let filter = crate::logs::LogFilter {
        gateway_id: query.gateway_id,
        session: query.session,
        level: query.level,
        text: query.q.map(|q| q.to_lowercase()),
        within: visible.within(),
    };
    if query.follow == Some(true) {
        return super::events::stream(&state, &req, None, move |e| {
            e.kind == gateway_supervisor_actors::events::EventKind::Log
                && filter.matches(&crate::logs::LogLine::of(e))
        });
    }
    let answer = state.logs.query(&filter, limit);
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "logs": answer.lines,
        "truncated": answer.truncated,
    })))
}
