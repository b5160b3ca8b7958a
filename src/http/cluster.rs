//! `GET /api/cluster`: the instances sharing this database, their heartbeats, and which
//! gateway each one links (its lease, epoch and time left). On SQLite the daemon is alone:
//! `clustered: false` and empty lists.

use actix_web::{HttpResponse, web};
use gateway_supervisor_actors::model::GatewayId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::cluster::status::InstanceSummary;

/// No parameters (an unknown one is an error, as everywhere).
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct NoQuery {}

#[derive(Serialize, ToSchema)]
pub struct LeaseJson {
    pub gateway_id: GatewayId,
    pub owner: String,
    /// Grows with every change of owner (or a lease taken back after it expired); never
    /// goes back.
    pub epoch: i64,
    /// Milliseconds until it expires; 0 or less: expired or released.
    pub expires_in_ms: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ClusterJson {
    pub clustered: bool,
    /// The instance that makes the fleet-wide decisions (the acting primary): the holder of
    /// the coordinator's lease.
    pub coordinator: Option<String>,
    /// Gateways no instance links right now (no unexpired lease): adoption pending.
    pub gateways_unowned: usize,
    /// This instance (the one that answered).
    pub instance_id: Option<String>,
    pub instances: Vec<InstanceSummary>,
    pub leases: Vec<LeaseJson>,
}

#[utoipa::path(get, path = "/api/cluster", tag = "cluster",
    description = "The instances sharing the database and the gateway leases (which instance links which gateway).",
    params(NoQuery),
    responses((status = 200, body = ClusterJson), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn status(
    state: web::Data<AppState>,
    _query: web::Query<NoQuery>,
) -> Result<HttpResponse, ApiError> {
    let Some(cluster) = &state.cluster else {
        return Ok(HttpResponse::Ok().json(ClusterJson {
            clustered: false,
            coordinator: None,
            gateways_unowned: 0,
            instance_id: None,
            instances: Vec::new(),
            leases: Vec::new(),
        }));
    };
    let store = state.store.clone();
    let crate::db::cluster::ClusterState {
        instances,
        leases,
        gateways,
        coordinator,
    } = super::blocking(move || store.cluster_state()).await?;
    let ttl_ms = i64::try_from(cluster.ttl.as_millis()).unwrap_or(i64::MAX);
    let instances = crate::cluster::status::instances(instances, &leases, ttl_ms);
    let gateways_unowned = crate::cluster::status::unowned(&leases, gateways);
    Ok(HttpResponse::Ok().json(ClusterJson {
        clustered: true,
        coordinator,
        gateways_unowned,
        instance_id: Some(cluster.instance_id.to_string()),
        instances,
        leases: leases
            .into_iter()
            .map(|l| LeaseJson {
                gateway_id: l.gateway_id,
                owner: l.owner,
                epoch: l.epoch,
                expires_in_ms: l.expires_in_ms,
            })
            .collect(),
    }))
}
