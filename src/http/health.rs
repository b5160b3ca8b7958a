//! `POST /api/gateways/health` (probe now, all gateways concurrently) and
//! `GET /api/gateways/health/history` (the 24 h latency/status series).

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::json::OptionalJsonBody;
use super::principal::Authenticated;
use crate::db::health::HealthSampleRow;
use crate::db::unix_now;
use gateway_supervisor_actors::messages::{LinkHandle, Links, ProbeResult};
use gateway_supervisor_actors::model::{GatewayId, GatewayStatus};

/// Extra time a probe gets beyond `probe_timeout` before it is reported as timed out here.
const PROBE_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeRequest {
    /// Probe only this gateway; omit to probe all.
    pub gateway_id: Option<GatewayId>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProbeDetails {
    /// The gateway's `server.version`.
    pub version: Option<String>,
    pub uptime_ms: Option<u64>,
    pub protocol: Option<u32>,
    /// Whether the supervisor's socket to it is connected.
    pub connected: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProbeOne {
    pub healthy: bool,
    pub latency_ms: Option<u64>,
    /// unknown | online | degraded | timeout | offline
    pub status: String,
    pub details: ProbeDetails,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProbeEntry {
    pub gateway_id: GatewayId,
    pub name: String,
    pub healthy: bool,
    pub status: String,
    pub latency_ms: Option<u64>,
    pub details: ProbeDetails,
}

/// The probe's answer as the document shows it: one gateway's (`gateway_id` given) or all.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // the handler answers with the variants' types directly
pub enum ProbeAnswer {
    One(ProbeOne),
    All(ProbeAll),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProbeAll {
    /// Every gateway healthy.
    pub healthy: bool,
    pub results: Vec<ProbeEntry>,
    /// Unix seconds.
    pub probed_at: i64,
}

fn details(r: &ProbeResult) -> ProbeDetails {
    ProbeDetails {
        version: r.version.clone(),
        uptime_ms: r.uptime_ms,
        protocol: r.protocol,
        connected: r.connected,
        error: r.error.clone(),
    }
}

async fn probe_link(link: &LinkHandle, deadline: Duration) -> ProbeResult {
    match tokio::time::timeout(deadline, link.link.probe()).await {
        Ok(Some(result)) => result,
        Ok(None) => unanswered("the gateway's link is restarting"),
        Err(_) => ProbeResult {
            status: GatewayStatus::Timeout,
            ..unanswered("the probe did not finish in time")
        },
    }
}

fn unanswered(error: &str) -> ProbeResult {
    ProbeResult::unanswered(error)
}

#[utoipa::path(post, path = "/api/gateways/health", tag = "gateways",
    description = "Probes now: HTTP `GET /health` on the gateway plus the live socket's `health` RPC. All gateways are probed concurrently, so N dead gateways cost one `probe_timeout`. Limited to one call per `limits.manual_health_interval` (10 s) per API key.",
    request_body(content = Option<ProbeRequest>, description = "`{gateway_id}` for one gateway; no body for all"),
    responses((status = 200, description = "`ProbeOne` for one gateway, `ProbeAll` for all", body = ProbeAnswer),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn probe(
    state: web::Data<AppState>,
    who: Authenticated,
    visible: super::visible::Visible,
    body: OptionalJsonBody<ProbeRequest>,
) -> Result<HttpResponse, ApiError> {
    let gateway_id = body.0.and_then(|b| b.gateway_id);
    if let Some(id) = gateway_id {
        visible.one(id)?;
    }
    state.within(
        &state.manual_health_limiter,
        who.0.key_id,
        "manual health checks",
    )?;
    let mut links = state.registry.send(Links(gateway_id)).await?;
    visible.retain(&mut links, |l| Some(l.id));
    let deadline = state.probe_timeout + PROBE_GRACE;
    if let Some(id) = gateway_id {
        let link = links.first().ok_or(ApiError::GatewayNotFound(id))?;
        let r = probe_link(link, deadline).await;
        return Ok(HttpResponse::Ok().json(ProbeOne {
            healthy: r.healthy,
            latency_ms: r.latency_ms,
            status: r.status.as_str().to_owned(),
            details: details(&r),
        }));
    }
    let results = join_all(links.iter().map(|l| probe_link(l, deadline))).await;
    let mut entries: Vec<ProbeEntry> = links
        .iter()
        .zip(results)
        .map(|(link, r)| ProbeEntry {
            gateway_id: link.id,
            name: link.name.clone(),
            healthy: r.healthy,
            status: r.status.as_str().to_owned(),
            latency_ms: r.latency_ms,
            details: details(&r),
        })
        .collect();
    entries.sort_by_key(|e| e.gateway_id);
    Ok(HttpResponse::Ok().json(ProbeAll {
        healthy: entries.iter().all(|e| e.healthy),
        results: entries,
        probed_at: unix_now(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only this gateway.
    #[serde(default, deserialize_with = "super::query::id")]
    pub gateway_id: Option<GatewayId>,
    /// Unix seconds; default 24 h ago (older samples are pruned).
    #[serde(default, deserialize_with = "super::query::integer")]
    pub since: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPoint {
    pub ts: i64,
    pub status: String,
    pub latency: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistorySeries {
    pub gateway_id: GatewayId,
    pub name: String,
    pub points: Vec<HistoryPoint>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct History {
    pub since: i64,
    pub series: Vec<HistorySeries>,
}

#[utoipa::path(get, path = "/api/gateways/health/history", tag = "gateways",
    description = "Probe samples (status and latency) of the last 24 h, oldest first, per gateway.",
    params(HistoryQuery),
    responses((status = 200, body = History), (status = 404, body = ErrorBody)))]
pub async fn history(
    state: web::Data<AppState>,
    visible: super::visible::Visible,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let since = query.since.unwrap_or_else(|| unix_now() - 24 * 3600);
    let views = state
        .gateways()
        .subset(crate::gateway_reads::Subset::SeenBy(visible.scope()))
        .await?;
    if let Some(id) = query.gateway_id
        && !views.iter().any(|v| v.record.id == id)
    {
        return Err(ApiError::GatewayNotFound(id));
    }
    let store = state.store.clone();
    let gateway_id = query.gateway_id;
    let rows: Vec<HealthSampleRow> =
        super::blocking(move || store.health_history(gateway_id, since)).await?;
    let names: BTreeMap<GatewayId, String> = views
        .iter()
        .map(|v| (v.record.id, v.record.name.clone()))
        .collect();
    let mut series: BTreeMap<GatewayId, HistorySeries> = BTreeMap::new();
    for row in rows {
        let Some(name) = names.get(&row.gateway_id) else {
            continue;
        };
        series
            .entry(row.gateway_id)
            .or_insert_with(|| HistorySeries {
                gateway_id: row.gateway_id,
                name: name.clone(),
                points: Vec::new(),
            })
            .points
            .push(HistoryPoint {
                ts: row.ts,
                status: row.status,
                latency: row.latency,
                error: row.error,
            });
    }
    Ok(HttpResponse::Ok().json(History {
        since,
        series: series.into_values().collect(),
    }))
}
