//! Reads only the instances themselves have: the sessions of the gateways each one links live
//! in that instance's memory (a gateway's session cache is fed by its socket), so a cluster-wide
//! listing asks every other live instance for its part, as a hop, and merges. Each part is
//! bounded (time and bytes); an instance that does not answer is named in the answer, never
//! silently left out.

use std::time::Duration;

use actix_web::http::Method;
use actix_web::{HttpMessage, HttpRequest};
use futures_util::future::join_all;
use serde::de::DeserializeOwned;

use super::AppState;
use crate::cluster::forward::Hop;

/// How long a peer may take over its part of a read (a listing from memory: fast, or dead).
const PART_TIMEOUT: Duration = Duration::from_secs(3);

/// The most one part may weigh (1,000 sessions are about 300 KB).
const PART_LIMIT: usize = 4 * 1024 * 1024;

/// Every other instance's answer to `GET path`, and the instances that gave none.
pub struct Parts<T> {
    pub parts: Vec<T>,
    pub unreachable: Vec<String>,
}

impl<T> Default for Parts<T> {
    fn default() -> Self {
        Parts {
            parts: Vec::new(),
            unreachable: Vec::new(),
        }
    }
}

/// Whether this request gathers the other instances' parts: in a cluster, unless it is itself
/// a hop (a hop answers with this instance's part only).
pub fn gathers(state: &AppState, req: &HttpRequest) -> bool {
    state.cluster.is_some() && req.extensions().get::<Hop>().is_none()
}

/// Asks every other live instance for `GET path` (the caller's credential goes along and is
/// checked there) at once; each answer within [`PART_TIMEOUT`] and [`PART_LIMIT`].
pub async fn gather<T: DeserializeOwned>(
    state: &AppState,
    req: &HttpRequest,
    path: &str,
) -> Parts<T> {
    let Some(cluster) = &state.cluster else {
        return Parts::default();
    };
    let peers = cluster.peers();
    let asks = peers.iter().map(|peer| async move {
        let Some(url) = peer.url.as_deref() else {
            return Err(peer.instance.clone());
        };
        let sent = super::relay::hop(cluster, req, Method::GET, url, path, None)
            .timeout(PART_TIMEOUT)
            .send()
            .await;
        let mut answer = sent.map_err(|_| peer.instance.clone())?;
        if !answer.status().is_success() {
            return Err(peer.instance.clone());
        }
        let bytes = answer
            .body()
            .limit(PART_LIMIT)
            .await
            .map_err(|_| peer.instance.clone())?;
        serde_json::from_slice::<T>(&bytes).map_err(|_| peer.instance.clone())
    });
    let mut out = Parts::default();
    for answer in join_all(asks).await {
        match answer {
            Ok(part) => out.parts.push(part),
            Err(instance) => {
                tracing::warn!(
                    instance = %gateway_supervisor_actors::bounded::text(&instance, 64),
                    path,
                    "an instance gave no answer to a cluster-wide read"
                );
                out.unreachable.push(instance);
            }
        }
    }
    out
}
