//! `GET /api/hosts`: the hosts whose daemons run managed gateways — each host's live instances
//! (in a cluster), what its daemon last said of it (releases installed, CPUs, memory, load) and
//! its managed gateways with their release and state.

use std::collections::BTreeSet;

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::managed::{ManagedView, named};
use crate::managed::host::HostInfo;

/// One host.
#[derive(Serialize, ToSchema)]
pub struct HostView {
    pub host_id: String,
    /// Some daemon of this host is up (always, for a daemon on its own): its managed
    /// gateways are watched, restarted and upgraded.
    pub supervised: bool,
    /// Its live instances, in a cluster (absent for a daemon on its own).
    pub instances: Option<Vec<String>>,
    /// What its daemon last said of it, and when (absent until it has).
    pub info: Option<HostInfo>,
    pub info_updated_at_ms: Option<i64>,
    /// Its managed gateways, by id.
    pub managed: Vec<ManagedView>,
}

#[derive(Serialize, ToSchema)]
pub struct HostList {
    /// By host id.
    pub hosts: Vec<HostView>,
}

#[utoipa::path(get, path = "/api/hosts", tag = "managed",
    description = "The hosts of managed gateways and of this daemon's instances: whether a daemon of each is up (`supervised`; in a cluster its live `instances`), what its daemon last said of it (`info`: OpenClaw releases installed, CPUs, memory, one-minute load; written every 30 s) and its managed gateways — `unsupervised` while no daemon of their host is up (their processes keep running).",
    responses((status = 200, body = HostList)))]
pub async fn list_hosts(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let stored = super::blocking(move || store.hosts()).await?;
    let live = state.managed.live_hosts().await?;
    let managed = named(&state, state.managed.list().await?, &live).await?;
    let mut ids: BTreeSet<String> = stored.iter().map(|h| h.host_id.clone()).collect();
    ids.extend(managed.iter().map(|m| m.host_id.clone()));
    ids.insert(state.managed.host_id().to_owned());
    if let Some(live) = &live {
        ids.extend(live.keys().cloned());
    }
    let hosts = ids
        .into_iter()
        .map(|host_id| {
            let row = stored.iter().find(|h| h.host_id == host_id);
            let instances = live
                .as_ref()
                .map(|l| l.get(&host_id).cloned().unwrap_or_default());
            HostView {
                supervised: instances.as_ref().is_none_or(|i| !i.is_empty()),
                instances,
                info: row.and_then(|r| serde_json::from_str(&r.info).ok()),
                info_updated_at_ms: row.map(|r| r.updated_at_ms),
                managed: managed
                    .iter()
                    .filter(|m| m.host_id == host_id)
                    .cloned()
                    .collect(),
                host_id,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(HostList { hosts }))
}
