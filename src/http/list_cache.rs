//! `GET /api/gateways` and this instance's `GET /api/sessions` served from serialized bodies:
//! both lists are read far more often than they change (dashboards poll them), so a read costs
//! a counter load and a reference count, not an actor round trip and a serialization of every
//! gateway or session. A gateway list body is kept for the second it was built in, no longer:
//! each gateway's `last_frame_age_s` moves with the clock, not with the registry. A session
//! body has nothing that moves with the clock; it is kept, per query, while the registry's
//! session counter stays where it was when its page was taken.
//!
//! A gateway list body goes stale every second and at every change, while clients keep asking:
//! the requests that find it stale while another one rebuilds it wait for that rebuild instead
//! of each asking the registry and serializing the fleet again (under load, dozens at once, all
//! competing for the same cores, on every change).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::{ArcSwap, ArcSwapOption};

use actix::Addr;
use actix_web::web::Bytes;
use gateway_supervisor_actors::messages::ListSessions;
use gateway_supervisor_actors::model::GatewayId;
use gateway_supervisor_actors::registry::RegistryActor;

use super::error::ApiError;
use super::gateways::{GatewayJson, GatewayList};
use super::session_json::{SessionJson, SessionList};
use crate::gateway_reads::GatewayReads;

pub struct GatewayListCache {
    /// The registry's change counter.
    version: Arc<AtomicU64>,
    /// The body as of (a value of the counter, the Unix second it was built in). Swapped, not
    /// locked: a lock's reader count is a write to one cache line from every worker on every
    /// read (docs/design.md "Serving reads").
    body: ArcSwapOption<((u64, i64), Bytes)>,
    /// Held while a body is built: one rebuild at a time.
    building: tokio::sync::Mutex<()>,
}

impl GatewayListCache {
    pub fn new(version: Arc<AtomicU64>) -> Self {
        GatewayListCache {
            version,
            body: ArcSwapOption::empty(),
            building: tokio::sync::Mutex::new(()),
        }
    }

    /// The JSON body of the current list.
    pub async fn body(&self, gateways: &GatewayReads) -> Result<Bytes, ApiError> {
        self.body_or_build(|| async {
            let snapshot = gateways.list().await?;
            let body = serde_json::to_vec(&GatewayList {
                gateways: snapshot
                    .views
                    .iter()
                    .map(|v| GatewayJson::from(&**v))
                    .collect(),
            })
            .map_err(|e| ApiError::Internal(format!("gateway list encoding: {e}")))?;
            Ok((snapshot.changes, kept(body)))
        })
        .await
    }

    /// The body kept if fresh; otherwise `build`'s (the registry's counter it was taken at, and
    /// the body), built by one request at a time.
    async fn body_or_build<F, Fut>(&self, build: F) -> Result<Bytes, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(u64, Bytes), ApiError>>,
    {
        if let Some(body) = self.fresh() {
            return Ok(body);
        }
        let _turn = self.building.lock().await;
        // Built while this request waited its turn: taken as it is.
        if let Some(body) = self.fresh() {
            return Ok(body);
        }
        let second = gateway_supervisor_actors::unix_now();
        let (version, body) = build().await?;
        self.body
            .store(Some(Arc::new(((version, second), body.clone()))));
        Ok(body)
    }

    /// The body kept, if it is of the registry's current counter and of this second.
    fn fresh(&self) -> Option<Bytes> {
        let current = (
            self.version.load(Ordering::Acquire),
            gateway_supervisor_actors::unix_now(),
        );
        match &*self.body.load() {
            Some(kept) if kept.0 == current => Some(kept.1.clone()),
            _ => None,
        }
    }
}

/// A body to keep, in an allocation of its own size: serialized into a `Vec` that doubled as
/// it grew, it held up to twice its bytes for as long as it was kept (a whole list of 2,000
/// gateways: 4.19 MB for 1.3 MB of JSON, heaptrack).
fn kept(mut body: Vec<u8>) -> Bytes {
    body.shrink_to_fit();
    Bytes::from(body)
}

/// How many different session queries keep a body (a dashboard asks one or two).
const SESSION_QUERIES: usize = 16;

/// The filter and limit of a session listing: what a body answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionQueryKey {
    pub agent: Option<String>,
    pub key: Option<String>,
    pub gateway_id: Option<GatewayId>,
    pub limit: usize,
}

pub struct SessionListCache {
    /// The registry's session counter.
    version: Arc<AtomicU64>,
    /// Bodies by query, each as of a value of the counter; the oldest built goes first. Swapped,
    /// not locked, like the gateway list's.
    bodies: ArcSwap<Vec<(SessionQueryKey, u64, Bytes)>>,
}

impl SessionListCache {
    pub fn new(version: Arc<AtomicU64>) -> Self {
        SessionListCache {
            version,
            bodies: ArcSwap::from_pointee(Vec::new()),
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
            .load()
            .iter()
            .find(|(k, v, _)| *v == current && k == q)
        {
            return Ok(body.clone());
        }
        let list = list(registry, q).await?;
        let body = kept(
            serde_json::to_vec(&list.1)
                .map_err(|e| ApiError::Internal(format!("session list encoding: {e}")))?,
        );
        self.bodies.rcu(|bodies| {
            let mut bodies = Vec::clone(bodies);
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
            bodies
        });
        Ok(body)
    }
}

/// This instance's listing for `q` and the session counter it was taken at.
pub async fn list(
    registry: &Addr<RegistryActor>,
    q: &SessionQueryKey,
) -> Result<(u64, SessionList), ApiError> {
    list_within(registry, q, None).await
}

/// [`list`] of the sessions on the gateways `within` holds (a scoped key's; not cached).
pub async fn list_within(
    registry: &Addr<RegistryActor>,
    q: &SessionQueryKey,
    within: Option<gateway_supervisor_actors::messages::Within>,
) -> Result<(u64, SessionList), ApiError> {
    let page = registry
        .send(ListSessions {
            agent: q.agent.clone(),
            key: q.key.clone(),
            gateway_id: q.gateway_id,
            limit: q.limit,
            within,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_kept_body_holds_no_more_than_its_bytes() {
        // Grown as a serializer grows it: a piece at a time.
        let mut grown = Vec::new();
        for i in 0..100_000u32 {
            grown.extend_from_slice(&i.to_le_bytes());
        }
        assert!(grown.capacity() > grown.len(), "the doubling left room");
        let len = grown.len();
        let body = kept(grown);
        assert_eq!(body.len(), len);
        // Bytes made from a Vec whose length is its capacity is that allocation, nothing more.
        assert_eq!(Vec::from(body).capacity(), len);
    }

    #[tokio::test]
    async fn requests_that_find_the_list_stale_together_wait_for_one_rebuild() {
        let version = Arc::new(AtomicU64::new(7));
        let cache = GatewayListCache::new(version.clone());
        let builds = AtomicUsize::new(0);
        let build = || async {
            builds.fetch_add(1, Ordering::SeqCst);
            // The registry's answer takes a turn of the runtime: every other request runs.
            tokio::task::yield_now().await;
            Ok((7, Bytes::from_static(b"{\"gateways\":[]}")))
        };
        let bodies =
            futures_util::future::join_all((0..32).map(|_| cache.body_or_build(build))).await;
        assert!(
            bodies
                .iter()
                .all(|b| b.as_deref().ok() == Some(&b"{\"gateways\":[]}"[..]))
        );
        // One build (two if the clock's second turned during the test), not one per request.
        let built = builds.load(Ordering::SeqCst);
        assert!(built <= 2, "{built} builds for 32 requests");

        // A change of the registry's counter: the next request builds again.
        version.store(8, Ordering::Release);
        let again = cache
            .body_or_build(|| async { Ok((8, Bytes::from_static(b"new"))) })
            .await;
        assert_eq!(again.ok().as_deref(), Some(&b"new"[..]));
    }
}
