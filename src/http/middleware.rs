//! Request middleware: metrics/logging (outermost), authentication (`/api`; the role is checked
//! by the matched route, see `roles.rs`), and
//! the per-key rate limit on gateway operations.

use gateway_supervisor_actors::trace::{CURRENT, TraceContext};
use std::time::Instant;
use tracing::Instrument;

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::Payload;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, AUTHORIZATION, HeaderMap};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage, web};
use futures_util::StreamExt;

use super::AppState;
use super::error::ApiError;
use crate::auth::{AuthError, Principal};

fn app_state(req: &ServiceRequest) -> Result<web::Data<AppState>, Error> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("application state missing".into()).into())
}

/// The key a request presents: `x-api-key: KEY` or `Authorization: Bearer KEY`. Credentials
/// that do not say one thing are refused, not guessed at: an `Authorization` header that is not
/// `Bearer KEY` (even beside a good `x-api-key`), or the two headers naming different keys.
pub fn presented_key(headers: &HeaderMap) -> Result<Option<String>, AuthError> {
    let api_key = headers
        .get("x-api-key")
        .map(|v| v.to_str().unwrap_or("invalid").to_owned());
    let bearer = match headers.get(AUTHORIZATION) {
        None => None,
        Some(v) => {
            let auth = v.to_str().map_err(|_| AuthError::MalformedAuthorization)?;
            match auth.trim().split_once(' ') {
                Some((scheme, key))
                    if scheme.eq_ignore_ascii_case("bearer") && !key.trim().is_empty() =>
                {
                    Some(key.trim().to_owned())
                }
                _ => return Err(AuthError::MalformedAuthorization),
            }
        }
    };
    match (api_key, bearer) {
        (Some(a), Some(b)) if a != b => Err(AuthError::TwoKeys),
        (a, b) => Ok(a.or(b)),
    }
}

pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let state = app_state(&req)?;
    let presented = match presented_key(req.headers()) {
        Ok(key) => key,
        Err(e) => return Ok(refuse(req, ApiError::from(e))),
    };
    // A key in a header wins; without one, a console session's cookie stands for its key (its
    // cookies are parsed only then: programs' requests do not pay for it).
    let cookie = presented
        .is_none()
        .then(|| session_cookie(req.request()))
        .flatten();
    let principal = match cookie {
        Some(cookie) => match console_principal(&state, req.request(), &cookie) {
            Ok(p) => p,
            Err(e) => return Ok(refuse(req, e)),
        },
        None => match state.keys.authenticate(presented.as_deref()).await {
            Ok(p) => p,
            Err(e) => return Ok(refuse(req, ApiError::from(e))),
        },
    };
    // A hop from another instance of the cluster proves itself too (it carries the caller's
    // key, checked above, and the cluster's credential).
    if req
        .headers()
        .contains_key(crate::cluster::forward::FORWARDED_BY)
    {
        match verify_hop(&state, &req) {
            Ok(hop) => {
                req.extensions_mut().insert(hop);
            }
            Err(e) => return Ok(refuse(req, e)),
        }
    }
    req.extensions_mut().insert(principal);
    Ok(next.call(req).await?.map_into_left_body())
}

/// The console session cookie a request carries, if any: `__Host-gs_session` (set over
/// HTTPS) or `gs_session` (set over plain HTTP, where browsers refuse the `__Host-` prefix).
pub fn session_cookie(req: &actix_web::HttpRequest) -> Option<String> {
    crate::console_session::COOKIE_NAMES
        .iter()
        .find_map(|name| req.cookie(name))
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

/// Who a console session's cookie stands for, once [`cookie_request_allowed`] let the request
/// through and the cookie is one this cluster issued, not logged out, for an active key.
pub fn console_principal(
    state: &AppState,
    req: &actix_web::HttpRequest,
    cookie: &str,
) -> Result<Principal, ApiError> {
    cookie_request_allowed(req.method(), req.headers(), &own_origin(req))?;
    let mut found = None;
    let id = state
        .console_sessions
        .verify(cookie, crate::db::unix_now(), |id| {
            found = state.keys.by_id(id);
            found.as_ref().map(|(_, hash)| *hash)
        })
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    if state.keys.session_ended(cookie) {
        return Err(ApiError::Unauthorized(
            "the console session was logged out; log in again".into(),
        ));
    }
    found
        .map(|(principal, _)| principal)
        .filter(|p| p.key_id == id)
        .ok_or_else(|| ApiError::Unauthorized("the console session's key is not active".into()))
}

/// This daemon as the browser reached it: `scheme://host[:port]`.
fn own_origin(req: &actix_web::HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

/// Whether a request that a browser authenticated with the console's cookie may go on. A
/// browser attaches the cookie to requests other pages start too, and `SameSite=Strict` does
/// not cover another port of the same host or a sibling subdomain (they are the same *site*),
/// so the rule is the request's origin, not its site:
/// - `Sec-Fetch-Site`, when the browser sends it, must be `same-origin` (or `none`: the
///   operator typed the address);
/// - an `Origin`, whenever one is sent (a cross-origin `EventSource` sends one), must be this
///   daemon's;
/// - a change (any method but GET, HEAD and OPTIONS) and a WebSocket upgrade must send one:
///   browsers always do for both, and the WebSocket upgrade is a GET that no CORS check
///   guards, so a page elsewhere could otherwise read the event stream.
pub fn cookie_request_allowed(
    method: &Method,
    headers: &HeaderMap,
    own: &str,
) -> Result<(), ApiError> {
    let text = |v: &header::HeaderValue| {
        gateway_supervisor_actors::bounded::text(&String::from_utf8_lossy(v.as_bytes()), 128)
    };
    if let Some(site) = headers.get("sec-fetch-site")
        && !matches!(site.as_bytes(), b"same-origin" | b"none")
    {
        return Err(ApiError::CrossOrigin(format!(
            "a console session's request started by another page (Sec-Fetch-Site: {}) is \
             refused here ({own})",
            text(site)
        )));
    }
    let upgrade = headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    match headers.get(header::ORIGIN) {
        Some(origin) if origin.as_bytes().eq_ignore_ascii_case(own.as_bytes()) => Ok(()),
        Some(origin) => Err(ApiError::CrossOrigin(format!(
            "a console session's request from origin {} is refused here ({own})",
            text(origin)
        ))),
        None if upgrade => Err(ApiError::CrossOrigin(
            "a console session's WebSocket must say its Origin".into(),
        )),
        None if !safe => Err(ApiError::CrossOrigin(
            "a console session's request that changes something must say its Origin".into(),
        )),
        None => Ok(()),
    }
}

/// The request's `Origin` is this daemon as the browser reached it (login and logout).
pub fn same_origin(req: &actix_web::HttpRequest) -> Result<(), ApiError> {
    cookie_request_allowed(&Method::POST, req.headers(), &own_origin(req))
}

/// The hop's credential: signed by an instance with this cluster's master key, recently.
fn verify_hop(
    state: &AppState,
    req: &ServiceRequest,
) -> Result<crate::cluster::forward::Hop, ApiError> {
    use crate::cluster::forward::{FORWARD_SIG, FORWARD_TS, FORWARDED_BY, Hop};
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let Some(cluster) = &state.cluster else {
        return Err(ApiError::Unauthorized(
            "a forwarded request reached a daemon that is not in a cluster".into(),
        ));
    };
    let from = header(FORWARDED_BY);
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path(), |p| p.as_str());
    cluster
        .forward_key
        .verify(
            from,
            req.method().as_str(),
            path,
            header(FORWARD_TS),
            header(FORWARD_SIG),
            crate::db::unix_now(),
        )
        .map_err(|e| ApiError::Unauthorized(format!("forwarded request refused: {e}")))?;
    Ok(Hop {
        from: gateway_supervisor_actors::bounded::text(from, 64),
    })
}

/// A refusal as a response (not an `Err`), so that it passes [`close_unread_bodies`] like any
/// other response and the connection of a refused body is closed.
pub fn refuse<B>(req: ServiceRequest, err: ApiError) -> ServiceResponse<EitherBody<B>> {
    req.error_response(err).map_into_right_body()
}

pub async fn limit_gateway_ops(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let state = app_state(&req)?;
    let key_id = req.extensions().get::<Principal>().map(|p| p.key_id);
    // A hop was counted where it entered the cluster.
    let hop = req
        .extensions()
        .get::<crate::cluster::forward::Hop>()
        .is_some();
    if let Some(key_id) = key_id.filter(|_| !hop)
        && let Err(retry_after_secs) = state.gateway_ops_limiter.check(key_id)
    {
        state
            .metrics
            .rate_limited
            .with_label_values(&[state.gateway_ops_limiter.name])
            .inc();
        let err = ApiError::RateLimited {
            limit: "gateway operations",
            retry_after_secs,
        };
        return Ok(refuse(req, err));
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// Closes the connection after a response whose request body was not read to the end.
///
/// actix drains the rest of an unread chunked body to keep the connection alive; a refused
/// client whose body never ends (401 before the body is read, say) then holds its socket for
/// as long as it likes. Here the request's payload is kept alive until the response has been
/// written, which makes actix answer with `Connection: close` and drop the socket (after
/// `client_disconnect_timeout`) instead of draining. A fully read body changes nothing.
pub async fn close_unread_bodies(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    // Most requests (every GET) have no body: nothing to hold, and their responses keep
    // actix's whole-body fast path.
    let headers = req.headers();
    let has_body = headers.contains_key(actix_web::http::header::TRANSFER_ENCODING)
        || headers
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    if !has_body {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let original = Rc::new(RefCell::new(req.take_payload()));
    let reader = Rc::clone(&original);
    let proxy = futures_util::stream::poll_fn(move |cx| reader.borrow_mut().poll_next_unpin(cx));
    req.set_payload(Payload::Stream {
        payload: Box::pin(proxy),
    });
    // Refusals arrive as responses (see `refuse`), so they carry the payload too.
    let res = next.call(req).await?.map_into_boxed_body();
    Ok(res
        .map_body(move |_, body| HoldPayload {
            body,
            _payload: original,
        })
        .map_into_right_body())
}

/// A response body that keeps the request's payload alive until it is dropped.
pub struct HoldPayload {
    body: BoxBody,
    _payload: Rc<RefCell<Payload>>,
}

impl MessageBody for HoldPayload {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}

/// The method as a metric label or in a message: one of the standard methods, else `OTHER`.
/// Any token is a valid HTTP method, so the raw string would let unauthenticated clients mint
/// label values (`curl -X FOOBAR` made a new series per request).
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

/// A request's id: the client's `X-Request-Id` when it is a plain token (1–128 of
/// `A-Z a-z 0-9 . _ -`), else a new random one. It is echoed in the response, logged in the
/// access line and kept in the request's extensions for whatever else records the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

pub const REQUEST_ID: &str = "x-request-id";

fn request_id(headers: &HeaderMap) -> RequestId {
    let given = headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            (1..=128).contains(&id.len())
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        });
    RequestId(match given {
        Some(id) => id.to_owned(),
        None => new_request_id(),
    })
}

/// 32 hex digits: a random half drawn once per process, then a counter — unique without a
/// trip to the kernel's randomness on every request.
fn new_request_id() -> String {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        crate::secrets::random_hex::<8>().unwrap_or_else(|_| format!("{:016x}", std::process::id()))
    });
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Not `format!("{n:016x}")`: padded through the formatter it cost 1.6 % of the daemon's CPU
    // serving a cached `GET /api/sessions` (perf, 64 connections).
    let mut id = String::with_capacity(32);
    id.push_str(prefix);
    id.push_str(&hex::encode(n.to_be_bytes()));
    id
}

/// A route pattern as a label: its parameters' names without their regexes
/// (`/api/gateways/{id:\d+}` → `/api/gateways/{id}`), the way the OpenAPI document spells it.
fn route_label(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    // Depth of braces; inside a parameter, everything after its `:` is its regex.
    let (mut depth, mut in_regex) = (0u32, false);
    for c in pattern.chars() {
        match c {
            '{' => {
                depth += 1;
                if depth == 1 {
                    out.push(c);
                }
            }
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    in_regex = false;
                    out.push(c);
                }
            }
            ':' if depth == 1 => in_regex = true,
            _ if depth >= 1 && in_regex => {}
            _ if depth > 1 => {}
            _ => out.push(c),
        }
    }
    out
}

/// The request's trace: the caller's `traceparent` when it is well formed, else a new one.
fn trace_context(headers: &HeaderMap) -> TraceContext {
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse)
        .unwrap_or_else(TraceContext::root)
}

/// Records every request's route pattern (bounded label set), status and duration, gives it a
/// request id and a trace (the caller's W3C `traceparent`, or a new one: the `request` span
/// carries both, and gateway calls made for the request pass the trace on), and writes the
/// access line (`log.access`; target `access`). Never logs query strings, headers or bodies.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let state = app_state(&req)?;
    let method = method_label(req.method());
    let id = request_id(req.headers());
    let trace = trace_context(req.headers());
    req.extensions_mut().insert(id.clone());
    let span =
        tracing::info_span!("request", request_id = %id.0, trace_id = %trace.trace_id(), %method);
    if crate::otel::enabled() {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let _ = span.set_parent(crate::otel::parent(&trace));
    }
    let mut result = CURRENT.scope(trace, next.call(req).instrument(span)).await;
    let (status, route, key_id) = match &mut result {
        Ok(res) => {
            if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&id.0) {
                res.headers_mut().insert(
                    actix_web::http::header::HeaderName::from_static(REQUEST_ID),
                    value,
                );
            }
            // The key only matters to the access line.
            let key_id = state
                .access_log
                .then(|| {
                    res.request()
                        .extensions()
                        .get::<Principal>()
                        .map(|p| p.key_id)
                })
                .flatten();
            (
                res.status(),
                res.request()
                    .match_pattern()
                    .map_or_else(|| "unmatched".into(), |p| route_label(&p)),
                key_id,
            )
        }
        Err(err) => (
            err.as_response_error().status_code(),
            "rejected".into(),
            None,
        ),
    };
    let elapsed = started.elapsed();
    state
        .metrics
        .http_requests
        .with_label_values(&[method, route.as_str(), status.as_str()])
        .inc();
    state
        .metrics
        .http_duration
        .with_label_values(&[method, route.as_str()])
        .observe(elapsed.as_secs_f64());
    if state.access_log {
        // The route pattern, never the raw path (ids and keys in paths stay out of the log).
        let key = key_id.map_or_else(|| "-".to_owned(), |k| k.to_string());
        tracing::info!(target: "access", request_id = %id.0, trace_id = %trace.trace_id(), %method, route = %route, status = status.as_u16(), elapsed_ms = (elapsed.as_secs_f64() * 1e4).round() / 10.0, key_id = %key, "request");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    #[test]
    fn route_labels_name_parameters_without_their_regexes() {
        assert_eq!(route_label(r"/api/gateways/{id:\d+}"), "/api/gateways/{id}");
        assert_eq!(
            route_label(r"/api/gateways/{id:\d+}/suspend"),
            "/api/gateways/{id}/suspend"
        );
        assert_eq!(route_label(r"/a/{x:[0-9]{1,3}}/b"), "/a/{x}/b");
        assert_eq!(
            route_label("/api/sessions/{key}/control"),
            "/api/sessions/{key}/control"
        );
        assert_eq!(route_label("/metrics"), "/metrics");
    }

    #[test]
    fn a_new_request_id_is_32_hex_digits_ending_in_its_count() {
        let (a, b) = (new_request_id(), new_request_id());
        for id in [&a, &b] {
            assert_eq!(id.len(), 32, "{id}");
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            );
        }
        assert_eq!(a[..16], b[..16], "one prefix per process");
        let count = |id: &str| u64::from_str_radix(&id[16..], 16).unwrap();
        assert!(count(&b) > count(&a), "{a} then {b}");
    }

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(
            method_label(&Method::from_bytes(b"FOOBAR").unwrap()),
            "OTHER"
        );
        assert_eq!(method_label(&Method::from_bytes(b"get").unwrap()), "OTHER");
    }

    fn key(h: &HeaderMap) -> Result<Option<String>, &'static str> {
        presented_key(h).map_err(|e| match e {
            AuthError::MalformedAuthorization => "malformed",
            AuthError::TwoKeys => "two keys",
            _ => "other",
        })
    }

    #[test]
    fn keys_come_from_either_header() {
        let mut h = HeaderMap::new();
        assert_eq!(key(&h), Ok(None));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer gsk_abc"));
        assert_eq!(key(&h), Ok(Some("gsk_abc".into())));
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_static("x-api-key"),
            HeaderValue::from_static("gsk_x"),
        );
        assert_eq!(key(&h), Ok(Some("gsk_x".into())));
        // The same key in both: one thing said twice.
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer gsk_x"));
        assert_eq!(key(&h), Ok(Some("gsk_x".into())));
    }

    #[test]
    fn credentials_that_do_not_say_one_thing_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_static("x-api-key"),
            HeaderValue::from_static("gsk_x"),
        );
        for bad in ["Basic Zm9v", "Bearer", "Bearer  ", "gsk_x", ";"] {
            h.insert(AUTHORIZATION, HeaderValue::from_static(bad));
            assert_eq!(key(&h), Err("malformed"), "{bad:?} beside a good x-api-key");
        }
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer gsk_y"));
        assert_eq!(key(&h), Err("two keys"));
    }

    fn cookie_request(method: Method, pairs: &[(&'static str, &'static str)]) -> bool {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        cookie_request_allowed(&method, &h, "http://127.0.0.1:8080").is_ok()
    }

    #[test]
    fn a_cookie_request_from_another_origin_is_refused_whatever_its_method() {
        let own = ("origin", "http://127.0.0.1:8080");
        let other_port = ("origin", "http://127.0.0.1:8081");
        let ws = ("upgrade", "websocket");
        // The console itself: its reads (no Origin: same-origin GETs send none), its changes,
        // its WebSocket.
        assert!(cookie_request(Method::GET, &[]));
        assert!(cookie_request(
            Method::GET,
            &[("sec-fetch-site", "same-origin")]
        ));
        assert!(cookie_request(Method::GET, &[("sec-fetch-site", "none")]));
        assert!(cookie_request(Method::POST, &[own]));
        assert!(cookie_request(Method::GET, &[ws, own]));
        // Another port of the same host is the same site, not the same origin.
        assert!(!cookie_request(Method::GET, &[ws, other_port]));
        assert!(!cookie_request(Method::GET, &[other_port]));
        assert!(!cookie_request(Method::POST, &[other_port]));
        assert!(!cookie_request(
            Method::GET,
            &[("sec-fetch-site", "same-site")]
        ));
        assert!(!cookie_request(
            Method::GET,
            &[("sec-fetch-site", "cross-site")]
        ));
        assert!(!cookie_request(
            Method::GET,
            &[own, ("sec-fetch-site", "cross-site")]
        ));
        // A WebSocket or a change that does not say where it comes from.
        assert!(!cookie_request(Method::GET, &[ws]));
        assert!(!cookie_request(Method::GET, &[("upgrade", "WebSocket")]));
        assert!(!cookie_request(Method::DELETE, &[]));
    }
}
