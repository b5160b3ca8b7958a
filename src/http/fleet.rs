//! Fleet-wide reads: `GET /api/fleet/versions`, the fleet grouped by release and build
//! (`fleet::versions`; in a cluster each instance knows the releases of the gateways it links,
//! so the others are asked for their part — a hop answers with its own part only), and `GET
//! /api/alerts`, the webhook delivery log.

use actix_web::{HttpRequest, HttpResponse, web};
use gateway_supervisor_actors::model::GatewayId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::fleet::versions::{VersionGroup, inventory, merge};
use crate::gateway_reads::Subset;

#[derive(Serialize, Deserialize, ToSchema)]
pub struct VersionInventory {
    /// The largest group first; `version: null` for gateways with no handshake yet.
    pub versions: Vec<VersionGroup>,
    /// Gateways counted.
    pub total: usize,
    /// Cluster instances that did not give their part (their gateways count as unknown).
    pub unreachable_instances: Vec<String>,
}

#[utoipa::path(get, path = "/api/fleet/versions", tag = "gateways",
    description = "The fleet grouped by the release, build and protocol each gateway's last handshake reported (`hello-ok.server.version`/`buildId`), largest group first; gateways that never completed a handshake are the `version: null` group. Each gateway's own object also shows its bootId and capabilities; a gateway coming back as another release or process is a `gateway.changed` event.",
    responses((status = 200, body = VersionInventory), (status = 503, body = ErrorBody)))]
pub async fn versions(
    state: web::Data<AppState>,
    visible: super::visible::Visible,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let views = state
        .gateways()
        .subset(Subset::SeenBy(visible.scope()))
        .await?;
    let here = inventory(&views);
    if !super::fanout::gathers(&state, &req) {
        let total = here.iter().map(|g| g.count).sum();
        return Ok(HttpResponse::Ok().json(VersionInventory {
            versions: here,
            total,
            unreachable_instances: Vec::new(),
        }));
    }
    let gathered =
        super::fanout::gather::<VersionInventory>(&state, &req, "/api/fleet/versions").await;
    let mut parts: Vec<Vec<VersionGroup>> =
        gathered.parts.into_iter().map(|p| p.versions).collect();
    parts.push(here);
    let all: Vec<GatewayId> = views.iter().map(|v| v.record.id).collect();
    let versions = merge(parts, &all);
    Ok(HttpResponse::Ok().json(VersionInventory {
        total: versions.iter().map(|g| g.count).sum(),
        versions,
        unreachable_instances: gathered.unreachable,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    /// 1–1000, default 50.
    #[param(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "super::query::integer")]
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryLog {
    /// Newest first.
    pub deliveries: Vec<crate::db::alerts::DeliveryRow>,
}

#[utoipa::path(get, path = "/api/alerts", tag = "operations", params(AlertsQuery),
    description = "The webhook delivery log (`alerts.webhook_url`): each alert sent, newest first, with its delivery status (pending, delivered, failed), attempts and last error. Empty when no webhook is configured.",
    responses((status = 200, body = DeliveryLog), (status = 400, body = ErrorBody)))]
pub async fn alerts(
    state: web::Data<AppState>,
    query: web::Query<AlertsQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = super::query::limit(query.limit, 50)?;
    let store = state.store.clone();
    let deliveries = super::blocking(move || store.deliveries(limit)).await?;
    Ok(HttpResponse::Ok().json(DeliveryLog { deliveries }))
}
