//! Carrying out a forward the fleet decided (`FleetError::LinkedElsewhere`: another instance
//! of the cluster links the gateway): the same request, sent to that instance with the hop's
//! credential (`cluster::forward`), answered with its answer. Nothing is retried: if the owner
//! does not answer, the caller gets 503 `owner_unavailable` with `Retry-After`, and decides.

use actix_web::http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};

use super::AppState;
use super::error::ApiError;
use crate::cluster::forward::{FORWARD_SIG, FORWARD_TS, FORWARDED_BY, Hop};
use crate::fleet::{FleetError, Owner, ServiceError};
use gateway_supervisor_actors::model::GatewayId;

/// The most an owner's answer may weigh (answers are envelopes, not listings).
const ANSWER_LIMIT: usize = 4 * 1024 * 1024;

/// The caller's headers the owner needs: who, which request, what body.
const RELAYED: [&str; 6] = [
    "x-api-key",
    "authorization",
    "idempotency-key",
    "content-type",
    "accept",
    // The request's id, the client's or the one made for it (`observe::request_id`).
    super::observe::REQUEST_ID,
];

/// On a hop: the gateway the forwarding instance resolved the request to (a spawn it chose
/// the gateway for, a session it found there).
pub const HOP_GATEWAY: &str = "x-gs-gateway";

thread_local! {
    /// One client per worker thread (a client holds a connection pool and a TLS
    /// configuration: built once, not per hop; awc clients are not `Send`).
    static HOP_CLIENT: awc::Client = awc::Client::builder().disable_redirects().finish();
}

/// `method path` to the instance at `url` as a hop: the internal credential, the caller's own
/// credential and request headers, the request id, and the gateway it is for.
pub(super) fn hop(
    cluster: &crate::cluster::Cluster,
    req: &HttpRequest,
    method: actix_web::http::Method,
    url: &str,
    path: &str,
    gateway: Option<GatewayId>,
) -> awc::ClientRequest {
    let ts = crate::db::unix_now();
    let sig = cluster
        .forward_key
        .sign(&cluster.instance_id, method.as_str(), path, ts);
    let mut out = HOP_CLIENT
        .with(Clone::clone)
        .request(method, format!("{}{path}", url.trim_end_matches('/')))
        .timeout(cluster.forward_timeout)
        .insert_header((FORWARDED_BY, cluster.instance_id.as_ref()))
        .insert_header((FORWARD_TS, ts.to_string()))
        .insert_header((FORWARD_SIG, sig));
    for name in RELAYED {
        if let Some(value) = req.headers().get(name) {
            out = out.insert_header((name, value.clone()));
        }
    }
    // A console session (a key's or a signed-in user's) travels as its cookie alone, no other
    // cookie: the owner checks it as this instance did, without the browser's origin checks,
    // which this instance made and the hop's signature vouches for.
    if req.headers().get("x-api-key").is_none()
        && req.headers().get("authorization").is_none()
        && let Some(cookie) = super::middleware::session_cookie(req)
    {
        out = out.insert_header((
            actix_web::http::header::COOKIE,
            format!("{}={cookie}", crate::console_session::COOKIE),
        ));
    }
    if let Some(id) = gateway {
        out = out.insert_header((HOP_GATEWAY, id.to_string()));
    }
    out
}

/// The gateway a verified hop was resolved to by the instance that forwarded it.
pub fn hop_gateway(req: &HttpRequest) -> Option<GatewayId> {
    req.extensions().get::<Hop>()?;
    req.headers().get(HOP_GATEWAY)?.to_str().ok()?.parse().ok()
}

/// A use case's outcome here, or the owner's answer.
pub enum Here<T> {
    Done(T),
    Relayed(HttpResponse),
}

/// `result` as is, unless its gateway is linked by another instance: then `req` (with
/// `body`) goes there.
pub async fn or_owner<T, E>(
    state: &AppState,
    req: &HttpRequest,
    body: Option<Vec<u8>>,
    result: Result<T, E>,
) -> Result<Here<T>, ApiError>
where
    E: ServiceError + Into<ApiError>,
{
    let e = match result {
        Ok(done) => return Ok(Here::Done(done)),
        Err(e) => e,
    };
    match e.elsewhere().map(|(id, owner)| (id, owner.clone())) {
        Some((id, owner)) => relay(state, req, body, id, owner).await.map(Here::Relayed),
        None => Err(e.into()),
    }
}

/// `result` as is, unless the managed gateway's process runs on another host: then `req`
/// (with `body`) goes to a live instance of that host, which alone can act on it.
pub async fn or_host<T>(
    state: &AppState,
    req: &HttpRequest,
    body: Option<Vec<u8>>,
    result: Result<T, crate::managed::ManagedError>,
) -> Result<Here<T>, ApiError> {
    let (id, host) = match result {
        Err(crate::managed::ManagedError::OtherHost { id, host }) => (id, host),
        other => return other.map(Here::Done).map_err(Into::into),
    };
    let Some(cluster) = &state.cluster else {
        return Err(crate::managed::ManagedError::OtherHost { id, host }.into());
    };
    let (store, ttl, wanted) = (state.store.clone(), cluster.ttl, host.clone());
    let found = super::blocking(move || store.host_instance(&wanted, ttl)).await?;
    let Some((instance, url)) = found else {
        return Err(unavailable(
            &host,
            ttl.as_secs().max(1),
            format!(
                "managed gateway {id} runs on host `{}`, where no daemon is up: its process keeps running, unsupervised, until one returns",
                gateway_supervisor_actors::bounded::text(&host, 64)
            ),
        ));
    };
    relay(state, req, body, id, Owner { instance, url })
        .await
        .map(Here::Relayed)
}

fn unavailable(instance: &str, retry_after_secs: u64, message: String) -> ApiError {
    ApiError::OwnerUnavailable {
        message,
        instance: instance.to_owned(),
        retry_after_secs,
    }
}

/// `req` (with `body`) sent to the instance that links the gateway of `e`, when another one
/// does; `None` when `e` is not that (the caller answers it its own way: a part of an answer it
/// can give without the gateway).
pub async fn if_elsewhere<E: ServiceError>(
    state: &AppState,
    req: &HttpRequest,
    body: Option<Vec<u8>>,
    e: &E,
) -> Option<Result<HttpResponse, ApiError>> {
    let (id, owner) = e.elsewhere().map(|(id, owner)| (id, owner.clone()))?;
    Some(relay(state, req, body, id, owner).await)
}

async fn relay(
    state: &AppState,
    req: &HttpRequest,
    body: Option<Vec<u8>>,
    id: GatewayId,
    owner: Owner,
) -> Result<HttpResponse, ApiError> {
    let Some(cluster) = &state.cluster else {
        return Err(FleetError::LinkedElsewhere { id, owner }.into());
    };
    let retry = cluster.ttl.as_secs().max(1);
    // A hop is never forwarded again: the lease moved while it travelled.
    if req.extensions().get::<Hop>().is_some() {
        return Err(unavailable(
            &owner.instance,
            1,
            format!(
                "gateway {id} moved to instance `{}` while this request was forwarded to this one; retry",
                owner.instance
            ),
        ));
    }
    let Some(url) = owner.url.as_deref() else {
        return Err(unavailable(
            &owner.instance,
            retry,
            format!(
                "gateway {id} is linked by instance `{}`, which has no cluster.advertise_url to forward to",
                owner.instance
            ),
        ));
    };
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_owned(), |p| p.as_str().to_owned());
    let out = hop(cluster, req, req.method().clone(), url, &path, Some(id));
    let sent = match body {
        Some(bytes) => out.send_body(bytes).await,
        None => out.send().await,
    };
    let lost = |e: &dyn std::fmt::Display| {
        unavailable(
            &owner.instance,
            retry,
            format!(
                "instance `{}` ({url}), which links gateway {id}, did not answer: {}; the request was not retried",
                owner.instance,
                gateway_supervisor_actors::bounded::text(&e.to_string(), 200)
            ),
        )
    };
    let mut answer = sent.map_err(|e| lost(&e))?;
    let status = answer.status();
    let content_type = answer.headers().get(CONTENT_TYPE).cloned();
    let retry_after = answer
        .headers()
        .get(actix_web::http::header::RETRY_AFTER)
        .cloned();
    let bytes = answer
        .body()
        .limit(ANSWER_LIMIT)
        .await
        .map_err(|e| lost(&e))?;
    let mut res = HttpResponse::build(status);
    if let Some(ct) = content_type {
        res.insert_header((CONTENT_TYPE, ct));
    }
    if let Some(ra) = retry_after {
        res.insert_header((actix_web::http::header::RETRY_AFTER, ra));
    }
    if let Ok(v) = HeaderValue::from_str(&owner.instance) {
        res.insert_header((HeaderName::from_static("x-gs-answered-by"), v));
    }
    Ok(res.body(bytes))
}
