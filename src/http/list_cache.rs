//! `GET /api/gateways` and this instance's `GET /api/sessions` served from serialized bodies:
//! both lists are read far more often than they change (dashboards poll them), so a read costs
//! a counter load and a reference count, not an actor round trip and a serialization of every
//! gateway or session. A gateway list body is kept for the second it was built in, no longer:
//! each gateway's `last_frame_age_s` moves with the clock, not with the registry. A session
//! body has nothing that moves with the clock; it is kept, per query, while the registry's
//! session counter stays where it was when its page was taken.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use actix::Addr;
use actix_web::web::Bytes;
use gateway_supervisor_actors::messages::{ListGateways, ListSessions};
use gateway_supervisor_actors::registry::RegistryActor;

use super::error::ApiError;
use super::gateways::{GatewayJson, GatewayList};
use super::sessions::{SessionJson, SessionList};

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

/// How many different session queries keep a body (a dashboard asks one or two).
const SESSION_QUERIES: usize = 16;

/// The filter and limit of a session listing: what a body answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionQueryKey {
    pub agent: Option<String>,
    pub key: Option<String>,
    pub gateway_id: Option<i64>,
    pub limit: usize,
}

pub struct SessionListCache {
    /// The registry's session counter.
    version: Arc<AtomicU64>,
    /// Bodies by query, each as of a value of the counter; the oldest built goes first.
    bodies: RwLock<Vec<(SessionQueryKey, u64, Bytes)>>,
}

impl SessionListCache {
    pub fn new(version: Arc<AtomicU64>) -> Self {
        SessionListCache {
            version,
            bodies: RwLock::new(Vec::new()),
        }
    }

    /// This instance's listing for `q`, as its page and its JSON body.
    pub async fn page(
        &self,
        registry: &Addr<RegistryActor>,
        q: &SessionQueryKey,
    ) -> Result<Bytes, ApiError> {
        let current = self.version.load(Ordering::Acquire);
        if let Some((_, _, body)) = self
            .bodies
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(k, v, _)| *v == current && k == q)
        {
            return Ok(body.clone());
        }
        let list = list(registry, q).await?;
        let body = Bytes::from(
            serde_json::to_vec(&list.1)
                .map_err(|e| ApiError::Internal(format!("session list encoding: {e}")))?,
        );
        let mut bodies = self.bodies.write().unwrap_or_else(|p| p.into_inner());
        match bodies.iter_mut().find(|(k, _, _)| k == q) {
            // Never replace a newer body with an older one built concurrently.
            Some(entry) if entry.1 < list.0 => *entry = (q.clone(), list.0, body.clone()),
            Some(_) => {}
            None => {
                if bodies.len() >= SESSION_QUERIES {
                    bodies.remove(0);
                }
                bodies.push((q.clone(), list.0, body.clone()));
            }
        }
        Ok(body)
    }
}

/// This instance's listing for `q` and the session counter it was taken at.
pub async fn list(
    registry: &Addr<RegistryActor>,
    q: &SessionQueryKey,
) -> Result<(u64, SessionList), ApiError> {
    let page = registry
        .send(ListSessions {
            agent: q.agent.clone(),
            key: q.key.clone(),
            gateway_id: q.gateway_id,
            limit: q.limit,
        })
        .await?;
    Ok((
        page.version,
        SessionList {
            total: page.total,
            truncated: page.total > page.sessions.len(),
            unreachable_instances: Vec::new(),
            sessions: page.sessions.into_iter().map(SessionJson::from).collect(),
        },
    ))
}
