//! `GET /api/gateways` served from the serialized body of the registry's latest snapshot: the
//! list is read far more often than it changes (dashboards poll it), so a read costs a counter
//! load and a reference count, not an actor round trip and a serialization of every gateway.
//! A body is kept for the second it was built in, no longer: each gateway's
//! `last_frame_age_s` moves with the clock, not with the registry.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use actix::Addr;
use actix_web::web::Bytes;
use gateway_supervisor_actors::messages::ListGateways;
use gateway_supervisor_actors::registry::RegistryActor;

use super::error::ApiError;
use super::gateways::{GatewayJson, GatewayList};

pub struct GatewayListCache {
    /// The registry's change counter.
    version: Arc<AtomicU64>,
    /// The body as of (a value of the counter, the Unix second it was built in).
    body: RwLock<Option<((u64, i64), Bytes)>>,
}

impl GatewayListCache {
    pub fn new(version: Arc<AtomicU64>) -> Self {
        GatewayListCache {
            version,
            body: RwLock::new(None),
        }
    }

    /// The JSON body of the current list.
    pub async fn body(&self, registry: &Addr<RegistryActor>) -> Result<Bytes, ApiError> {
        let current = (
            self.version.load(Ordering::Acquire),
            gateway_supervisor_actors::unix_now(),
        );
        if let Some((v, body)) = &*self.body.read().unwrap_or_else(|p| p.into_inner())
            && *v == current
        {
            return Ok(body.clone());
        }
        let snapshot = registry.send(ListGateways).await?;
        let body = Bytes::from(
            serde_json::to_vec(&GatewayList {
                gateways: snapshot.views.iter().map(GatewayJson::from).collect(),
            })
            .map_err(|e| ApiError::Internal(format!("gateway list encoding: {e}")))?,
        );
        let mut cached = self.body.write().unwrap_or_else(|p| p.into_inner());
        // Never replace a newer body with an older one built concurrently.
        let built = (snapshot.version, current.1);
        if cached.as_ref().is_none_or(|(v, _)| *v < built) {
            *cached = Some((built, body.clone()));
        }
        Ok(body)
    }
}
