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
use crate::db::cluster::{ClusterState, LeasePage};

/// Which leases to list (an unknown parameter is an error, as everywhere).
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LeasesQuery {
    /// Leases per page: 1–1000, default 1000.
    #[param(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "super::query::integer")]
    pub limit: Option<i64>,
    /// The `next_after` of the page before: leases of gateways after this id.
    #[param(minimum = 1)]
    #[serde(default, deserialize_with = "super::query::id")]
    pub after: Option<GatewayId>,
}

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

/// What this instance may adopt (docs/design.md, *Cluster*: the adoption brake).
#[derive(Serialize, ToSchema)]
pub struct AdoptionJson {
    /// `paced`: up to `per_round` gateways a round (1,000 a second); `held`: until `until_ms`,
    /// only what `takes` says.
    pub state: &'static str,
    /// While held: `own` (gateways never leased or last held by this instance) or `nothing`
    /// (after a database failover, or while the database cannot be reached).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub takes: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_round: Option<usize>,
    /// Unix ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

impl From<&crate::cluster::brake::Adopt> for AdoptionJson {
    fn from(a: &crate::cluster::brake::Adopt) -> Self {
        use crate::cluster::brake::Adopt;
        match a {
            Adopt::Up(n) => AdoptionJson {
                state: "paced",
                takes: None,
                per_round: Some(*n),
                until_ms: None,
                why: None,
            },
            Adopt::Held {
                until_ms,
                why,
                takes,
            } => AdoptionJson {
                state: "held",
                takes: Some(takes.as_str()),
                per_round: None,
                until_ms: Some(*until_ms),
                why: Some(why.clone()),
            },
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ClusterJson {
    pub clustered: bool,
    /// The instance that makes the fleet-wide decisions (the acting primary): the holder of
    /// the coordinator's lease.
    pub coordinator: Option<String>,
    /// Gateways no instance links right now (no unexpired lease): adoption pending.
    pub gateways_unowned: usize,
    /// Gateways no live instance has room for (each is at its capacity): linked by none
    /// until an instance joins or `cluster.max_gateways` is raised.
    pub gateways_unplaced: usize,
    /// The first 100 of them, by id.
    pub unplaced: Vec<GatewayId>,
    /// This instance (the one that answered).
    pub instance_id: Option<String>,
    /// Its epoch: grows each time its heartbeat lapsed (every lease it held then ended).
    pub epoch: Option<u64>,
    /// What it may adopt now.
    pub adoption: Option<AdoptionJson>,
    pub instances: Vec<InstanceSummary>,
    /// One page of the leases, by gateway id (`limit`, `after`).
    pub leases: Vec<LeaseJson>,
    /// For the next page of leases (`after=`); absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<GatewayId>,
}

#[utoipa::path(get, path = "/api/cluster", tag = "cluster",
    description = "The instances sharing the database, how many gateways each links, and the gateway leases (which instance links which gateway), a page at a time.",
    params(LeasesQuery),
    responses((status = 200, body = ClusterJson), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn status(
    state: web::Data<AppState>,
    query: web::Query<LeasesQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = LeasePage {
        after: query.after,
        limit: super::query::limit(query.limit, 1000)?,
    };
    let Some(cluster) = &state.cluster else {
        // Alone: the gateways beyond its capacity, each of which says so.
        let mut unplaced: Vec<GatewayId> = state
            .gateways()
            .subset(crate::gateway_reads::Subset::Unplaced)
            .await?
            .iter()
            .map(|v| v.record.id)
            .collect();
        unplaced.sort_unstable();
        let count = unplaced.len();
        unplaced.truncate(crate::cluster::UNPLACED_LISTED);
        return Ok(HttpResponse::Ok().json(ClusterJson {
            clustered: false,
            coordinator: None,
            gateways_unowned: 0,
            gateways_unplaced: count,
            unplaced,
            instance_id: None,
            epoch: None,
            adoption: None,
            instances: Vec::new(),
            leases: Vec::new(),
            next_after: None,
        }));
    };
    let store = state.store.clone();
    let read = super::blocking(move || store.cluster_state(page)).await?;
    let gateways_unowned = read.unowned();
    let ClusterState {
        instances,
        held,
        mut leases,
        coordinator,
        ..
    } = read;
    let ttl_ms = i64::try_from(cluster.ttl.as_millis()).unwrap_or(i64::MAX);
    let instances = crate::cluster::status::instances(instances, &held, ttl_ms);
    let more = leases.len() as i64 > page.limit;
    leases.truncate(usize::try_from(page.limit).unwrap_or(0));
    let next_after = more.then(|| leases.last().map(|l| l.gateway_id)).flatten();
    let standing = cluster.standing();
    Ok(HttpResponse::Ok().json(ClusterJson {
        clustered: true,
        coordinator,
        gateways_unowned,
        gateways_unplaced: standing.unplaced_count,
        unplaced: standing.unplaced.clone(),
        instance_id: Some(cluster.instance_id.to_string()),
        epoch: Some(standing.epoch),
        adoption: Some(AdoptionJson::from(&standing.adoption)),
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
        next_after,
    }))
}
