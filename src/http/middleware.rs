//! Who the caller is (every `/api` request, worked out in the matched route's own service, then
//! its role checked: `roles.rs`) and the per-key rate limit on gateway operations. The outermost
//! layer (ids, traces, metrics, the access line) is `observe.rs`.

use actix_web::dev::ServiceRequest;
use actix_web::http::Method;
use actix_web::http::header::{self, AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use actix_web::{HttpMessage, web};

use super::AppState;
use super::error::ApiError;
use crate::auth::{AuthError, KeyCache, KeyDigest, Principal};

/// Header names as constants: looked up by `&str`, a name is parsed again on every request.
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
const FORWARDED_BY: HeaderName = HeaderName::from_static(crate::cluster::forward::FORWARDED_BY);

/// The headers that say who a request is from, found in one pass over its headers: a lookup by
/// name hashes the name (SipHash) each time, three of them on every `/api` request, where a
/// client sends two to five headers in all. The first value of each, as a lookup finds.
#[derive(Default)]
struct Credentials<'a> {
    api_key: Option<&'a HeaderValue>,
    authorization: Option<&'a HeaderValue>,
    /// A hop from another instance of the cluster.
    forwarded: bool,
}

impl<'a> Credentials<'a> {
    fn of(headers: &'a HeaderMap) -> Self {
        let mut found = Credentials::default();
        for (name, value) in headers {
            if *name == X_API_KEY {
                found.api_key.get_or_insert(value);
            } else if *name == AUTHORIZATION {
                found.authorization.get_or_insert(value);
            } else if *name == FORWARDED_BY {
                found.forwarded = true;
            }
        }
        found
    }

    /// The key a request presents: `x-api-key: KEY` or `Authorization: Bearer KEY`.
    /// Credentials that do not say one thing are refused, not guessed at: an `Authorization`
    /// header that is not `Bearer KEY` (even beside a good `x-api-key`), or the two headers
    /// naming different keys.
    ///
    /// `x-api-key` is read as UTF-8, not through `HeaderValue::to_str`, whose check of each byte
    /// for visible ASCII was 8 instructions a byte on every request; a key with any other
    /// character is none of ours, which the cache's lookup says anyway.
    fn key(&self) -> Result<Option<&'a str>, AuthError> {
        let api_key = self
            .api_key
            .map(|v| std::str::from_utf8(v.as_bytes()).unwrap_or("invalid"));
        let bearer = match self.authorization {
            None => None,
            Some(v) => {
                let auth = v.to_str().map_err(|_| AuthError::MalformedAuthorization)?;
                match auth.trim().split_once(' ') {
                    Some((scheme, key))
                        if scheme.eq_ignore_ascii_case("bearer") && !key.trim().is_empty() =>
                    {
                        Some(key.trim())
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
}

/// Who the caller of an `/api` route is, worked out in the route's own service (`roles.rs`)
/// before its role is checked, and by the `/api` answers that no route gives (404 and 405 come
/// only after 401: a caller without a key learns nothing about which paths exist).
///
/// Not a layer on an `/api` scope: a scope is one more router, a boxed service and a mapped
/// future on every request, and its middleware another service and future. Serving a cached
/// `GET /api/sessions` they were about a tenth of the daemon's user CPU (docs/design.md
/// "Serving reads"). The common case, a key the cache knows, is decided here without a
/// future; only a key the cache has not seen waits on the store ([`Admission::settle`]).
pub fn admission(req: &ServiceRequest) -> Admission {
    match req.app_data::<web::Data<AppState>>() {
        Some(state) => admit(state, req),
        None => Admission::Refused(ApiError::Internal("application state missing".into())),
    }
}

/// What [`admission`] made of a request's credentials.
pub enum Admission {
    /// The caller (and a hop's credential) is on the request.
    Admitted,
    Refused(ApiError),
    /// A well-formed key the cache does not know: the store decides. `forwarded`: the request
    /// is a hop from another instance, whose credential is checked once the key is known.
    AskStore {
        key: String,
        forwarded: bool,
    },
}

impl Admission {
    /// The caller is on the request, or the refusal: a key the cache did not know is looked up
    /// in the store first.
    pub async fn settle(self, req: &ServiceRequest) -> Result<(), ApiError> {
        match self {
            Admission::Admitted => Ok(()),
            Admission::Refused(err) => Err(err),
            Admission::AskStore { key, forwarded } => {
                let state = req
                    .app_data::<web::Data<AppState>>()
                    .ok_or_else(|| ApiError::Internal("application state missing".into()))?;
                let principal = state.keys.from_store(&key).await?;
                enter(state, req, principal, forwarded)
            }
        }
    }
}

fn admit(state: &AppState, req: &ServiceRequest) -> Admission {
    let credentials = Credentials::of(req.headers());
    let presented = match credentials.key() {
        Ok(key) => key,
        Err(e) => return Admission::Refused(e.into()),
    };
    // A key in a header wins; without one, a console session's cookie stands for its key (its
    // cookies are parsed only then: programs' requests do not pay for it).
    let cookie = presented
        .is_none()
        .then(|| session_cookie(req.request()))
        .flatten();
    let principal = match cookie {
        // On a hop the browser's origin was checked by the instance that forwarded it; the
        // hop's own credential is checked in `enter`, before anything is let in.
        Some(cookie) if credentials.forwarded => session_principal(state, &cookie),
        Some(cookie) => console_principal(state, req.request(), &cookie),
        None => match state.keys.cached(presented) {
            Ok(Some(principal)) => Ok(principal),
            Ok(None) => {
                return Admission::AskStore {
                    key: presented.unwrap_or_default().to_owned(),
                    forwarded: credentials.forwarded,
                };
            }
            Err(e) => Err(e.into()),
        },
    };
    match principal.and_then(|p| enter(state, req, p, credentials.forwarded)) {
        Ok(()) => Admission::Admitted,
        Err(err) => Admission::Refused(err),
    }
}

/// Puts the caller on the request, once a hop from another instance of the cluster (which
/// carries the caller's key, checked already) has proved the cluster's credential too.
fn enter(
    state: &AppState,
    req: &ServiceRequest,
    principal: Principal,
    forwarded: bool,
) -> Result<(), ApiError> {
    if forwarded {
        let hop = verify_hop(state, req)?;
        req.extensions_mut().insert(hop);
    }
    req.extensions_mut().insert(principal);
    Ok(())
}

/// The credential a request was let in with, kept by a live event stream (`events.rs`) to ask
/// again while it runs: a stream is one request that lasts for hours, and a key revoked or a
/// console session logged out must not go on receiving the fleet's events.
pub enum Credential {
    /// A key in a header, as its digest: the stream does not keep the key.
    Key(KeyDigest),
    /// A console session's cookie.
    Session(String),
}

impl Credential {
    /// What the request presented: a key in a header, or else its console cookie.
    pub fn of(req: &actix_web::HttpRequest) -> Option<Credential> {
        match Credentials::of(req.headers()).key() {
            Ok(Some(key)) => KeyCache::digest(key).map(Credential::Key),
            Ok(None) => session_cookie(req).map(Credential::Session),
            Err(_) => None,
        }
    }

    /// Whether it would still let its caller in, from memory alone: a key still active (a
    /// revoked one leaves the cache at its next refresh); a session not logged out, not
    /// expired, for a key still active.
    pub fn still_admits(&self, state: &AppState) -> bool {
        match self {
            Credential::Key(digest) => state.keys.still_active(digest),
            Credential::Session(cookie) => session_principal(state, cookie).is_ok(),
        }
    }
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
    session_principal(state, cookie)
}

/// Who a console session's cookie stands for, wherever the request came from: a cookie this
/// cluster issued, not logged out, not expired, for an active key.
fn session_principal(state: &AppState, cookie: &str) -> Result<Principal, ApiError> {
    if crate::console_session::is_sso(cookie) {
        return sso_principal(state, cookie);
    }
    let mut found = None;
    let id = state
        .console
        .sessions
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

/// Who a single sign-on session's cookie stands for: a user the provider signed in, whose
/// group is still mapped (as the configuration says now), not logged out, not expired.
fn sso_principal(state: &AppState, cookie: &str) -> Result<Principal, ApiError> {
    let sso = state.console.sso.as_ref().ok_or_else(|| {
        ApiError::Unauthorized("single sign-on is off on this daemon; log in again".into())
    })?;
    let user = state
        .console
        .sessions
        .verify_sso(cookie, crate::db::unix_now())
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    if state.keys.session_ended(cookie) {
        return Err(ApiError::Unauthorized(
            "the console session was logged out; log in again".into(),
        ));
    }
    sso.principal(&user, state.keys.reserved()).ok_or_else(|| {
        ApiError::Unauthorized(
            "the console session's group is no longer mapped ([[sso.groups]]); log in again".into(),
        )
    })
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

/// The per-key limit on gateway operations (`limits.gateway_ops_per_minute`), a check of the
/// `/gateways` routes (`api_routes.rs`) run after their role's: a refused role spends none of
/// the caller's budget, and neither does a path no route answers.
pub fn limit_gateway_ops(
    req: &ServiceRequest,
    caller: &Principal,
) -> Result<Option<super::route_check::Wait>, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal("application state missing".into()))?;
    // A hop was counted where it entered the cluster.
    if req
        .extensions()
        .get::<crate::cluster::forward::Hop>()
        .is_some()
    {
        return Ok(None);
    }
    state
        .within(
            &state.gateway_ops_limiter,
            caller.key_id,
            "gateway operations",
        )
        .map(|()| None)
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

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

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
        Credentials::of(h)
            .key()
            .map(|k| k.map(str::to_owned))
            .map_err(|e| match e {
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

    #[test]
    fn one_pass_over_the_headers_finds_what_lookups_by_name_would() {
        let mut h = HeaderMap::new();
        for (name, value) in [
            ("accept", "*/*"),
            ("x-api-key", "gsk_first"),
            ("host", "localhost"),
            ("x-api-key", "gsk_second"),
        ] {
            h.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let found = Credentials::of(&h);
        assert_eq!(
            found.api_key,
            h.get(X_API_KEY),
            "the first value, as `get` finds"
        );
        assert_eq!(found.authorization, None);
        assert!(!found.forwarded);
        assert_eq!(key(&h), Ok(Some("gsk_first".into())));
        h.insert(FORWARDED_BY, HeaderValue::from_static("instance-b"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer gsk_first"));
        let found = Credentials::of(&h);
        assert!(found.forwarded);
        assert_eq!(found.authorization, h.get(AUTHORIZATION));
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
