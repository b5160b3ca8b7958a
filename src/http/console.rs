//! The web console: its files, compiled into the binary (`console/`; no build step, no CDN),
//! and its session — `POST /console/login` turns an API key into the session cookie
//! ([`crate::console_session`]), `POST /console/logout` forgets it, `GET /console/session`
//! says whose it is. The pages call the API like any client; the cookie authenticates them
//! there (`middleware::authenticate`), and the API enforces each role.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::json::JsonBody;
use super::middleware::{console_principal, same_origin, session_cookie};
use crate::console_session::{COOKIE, HOST_COOKIE, LIFETIME};
use crate::ratelimit::KeyedLimiter;
use std::sync::Arc;

/// Login attempts a client address may make per minute (in a burst, then one every 6 s): an
/// operator mistyping a key is not slowed; guessing keys from one address is. Each refused
/// key is logged with the address.
pub const LOGINS_PER_MINUTE: u32 = 10;

/// How the console's users sign in.
pub struct ConsoleAuth {
    /// Issues and checks the session cookies.
    pub sessions: crate::console_session::SessionSigner,
    /// Logins and sign-ins per client address ([`LOGINS_PER_MINUTE`]).
    pub logins: Arc<KeyedLimiter<std::net::IpAddr>>,
    /// Single sign-on through the company's provider, when `[sso]` is on.
    pub sso: Option<crate::sso::Sso>,
    /// Single sign-on starts and callbacks per client address ([`SIGN_INS_PER_MINUTE`]).
    pub sign_ins: KeyedLimiter<std::net::IpAddr>,
}

/// Single sign-on doors a client address may pass per minute, starts and callbacks together:
/// more than key logins, as a company's users sign in from behind one address (a NAT, a
/// proxy) and nothing is guessed there (a callback needs the provider's one-time code and the
/// sign-in's own cookie); enough to keep one client from turning the daemon into a load on the
/// provider.
pub const SIGN_INS_PER_MINUTE: u32 = 120;

/// One file of the console.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// A console file by its path under `/console/` and `console/` in the repository.
macro_rules! asset {
    ($path:literal, $content_type:literal) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!("../../console/", $path)),
        }
    };
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../console/index.html"),
    },
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("ops.js", "text/javascript; charset=utf-8"),
    asset!("approvals.js", "text/javascript; charset=utf-8"),
    asset!("config.js", "text/javascript; charset=utf-8"),
    asset!("hosts.js", "text/javascript; charset=utf-8"),
    asset!("cron.js", "text/javascript; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!(
        "vendor/uplot/uPlot.iife.min.js",
        "text/javascript; charset=utf-8"
    ),
    asset!("vendor/uplot/uPlot.min.css", "text/css; charset=utf-8"),
    asset!("vendor/uplot/LICENSE", "text/plain; charset=utf-8"),
];

/// Only the console's own files run and connect; nothing frames it.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `GET /` → the console.
pub async fn root() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, "/console/"))
        .finish()
}

/// `GET /console/{file}`.
pub async fn asset(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let path = path.into_inner();
    let asset = ASSETS
        .iter()
        .find(|a| a.path == path)
        .ok_or_else(|| ApiError::RouteNotFound(format!("GET /console/{}", bounded(&path))))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, asset.content_type))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(asset.body))
}

fn bounded(s: &str) -> String {
    gateway_supervisor_actors::bounded::text(s, 128)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    key: String,
}

/// The session cookie: the browser keeps it no longer than the session lasts, sends it to
/// this site only, never shows it to scripts; over HTTPS it is `Secure` and `__Host-`
/// prefixed (no `Domain`: a sibling subdomain can neither set nor shadow it).
pub fn session_cookie_for(req: &HttpRequest, value: String, max_age: i64) -> Cookie<'static> {
    let https = over_https(req);
    let name = if https { HOST_COOKIE } else { COOKIE };
    console_cookie(req, name, value, "/", SameSite::Strict, max_age)
}

/// Whether the browser reached this daemon over HTTPS.
fn over_https(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

/// A cookie of the console's: never shown to scripts, `Secure` over HTTPS, for `path`, kept
/// `max_age` seconds (0: forgotten).
pub fn console_cookie(
    req: &HttpRequest,
    name: &'static str,
    value: String,
    path: &'static str,
    same_site: SameSite,
    max_age: i64,
) -> Cookie<'static> {
    let mut c = Cookie::new(name, value);
    c.set_path(path);
    c.set_http_only(true);
    c.set_same_site(same_site);
    c.set_secure(over_https(req));
    c.set_max_age(actix_web::cookie::time::Duration::seconds(max_age));
    c
}

/// `POST /console/login {key}` → the session cookie and `{name, role}`.
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonBody<Login>,
) -> Result<HttpResponse, ApiError> {
    same_origin(&req)?;
    let peer = req
        .peer_addr()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    let logins = &state.console.logins;
    state.within(logins, peer, logins.name)?;
    let principal = match state.keys.authenticate(Some(&body.0.key)).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(client = %peer, reason = %e, "console login refused");
            return Err(e.into());
        }
    };
    // The stored hash the cookie is bound to, as the session check will read it.
    let (_, hash) = state
        .keys
        .by_id(principal.key_id)
        .ok_or_else(|| ApiError::Unauthorized("the key was revoked meanwhile".into()))?;
    let value = state
        .console
        .sessions
        .issue(principal.key_id, &hash, crate::db::unix_now());
    Ok(HttpResponse::Ok()
        .cookie(session_cookie_for(&req, value, LIFETIME.as_secs() as i64))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({"name": principal.name, "role": principal.role})))
}

/// `POST /console/logout`: the session ends here (its cookie is refused from now on, by every
/// instance within `auth.key_refresh_interval`) and the browser forgets the cookie.
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    same_origin(&req)?;
    if let Some(cookie) = session_cookie(&req) {
        let keys = state.keys.clone();
        super::blocking(move || keys.end_session(&cookie)).await?;
    }
    Ok(HttpResponse::NoContent()
        .cookie(session_cookie_for(&req, String::new(), 0))
        .finish())
}

/// `GET /console/session` → `{name, role}` of the session, or 401.
pub async fn session(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let cookie = session_cookie(&req)
        .ok_or_else(|| ApiError::Unauthorized("no console session; log in".into()))?;
    let principal = console_principal(&state, &req, &cookie)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({"name": principal.name, "role": principal.role})))
}
