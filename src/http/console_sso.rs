//! The console's single sign-on doors ([`crate::sso`]): `GET /console/sso` (is it on, and the
//! button's words), `GET /console/sso/login` (to the provider) and `GET
//! /console/sso/callback` (back from it: the session cookie, then the console). Each is rate
//! limited per client address ([`super::console::SIGN_INS_PER_MINUTE`]). A refused sign-in is logged with its reason
//! and the client's address; the page says only that it failed.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::AppState;
use super::console::{console_cookie, session_cookie_for};
use super::error::ApiError;
use crate::console_session::LIFETIME;
use crate::sso::{Callback, pending};

/// The single sign-on service, or 404 when `[sso]` is off.
fn sso(state: &AppState) -> Result<&crate::sso::Sso, ApiError> {
    state.console.sso.as_ref().ok_or_else(|| {
        ApiError::RouteNotFound("single sign-on: it is not configured ([sso])".into())
    })
}

fn peer(req: &HttpRequest) -> std::net::IpAddr {
    req.peer_addr()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| a.ip())
}

/// The sign-in in progress's cookie, set (`value`) or cleared (`None`).
fn pending_cookie(req: &HttpRequest, value: Option<String>) -> Cookie<'static> {
    let max_age = if value.is_some() {
        pending::LIFETIME_S
    } else {
        0
    };
    let value = value.unwrap_or_default();
    console_cookie(
        req,
        pending::COOKIE,
        value,
        pending::PATH,
        SameSite::Lax,
        max_age,
    )
}

/// `GET /console/sso` → `{enabled, button}`.
pub async fn info(state: web::Data<AppState>) -> HttpResponse {
    let body = match &state.console.sso {
        Some(s) => serde_json::json!({"enabled": true, "button": s.button()}),
        None => serde_json::json!({"enabled": false}),
    };
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// `GET /console/sso/login` → 303 to the provider, with the sign-in's cookie.
pub async fn login(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let sso = sso(&state)?;
    let limit = &state.console.sign_ins;
    state.within(limit, peer(&req), limit.name)?;
    let started = sso.start(crate::db::unix_now()).await.map_err(|e| {
        tracing::warn!(client = %peer(&req), reason = %e, "console single sign-on could not start");
        ApiError::IdentityProviderUnavailable(
            "the identity provider cannot be reached; the daemon's log says why".into(),
        )
    })?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, started.url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(pending_cookie(&req, Some(started.cookie)))
        .finish())
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// What the browser sees of a refused sign-in: that it failed, and the way back.
const REFUSED_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Sign-in failed</title></head><body><main><h1>Sign-in failed</h1>\
<p id=\"sso-refused\">Single sign-on did not let you in. The daemon's log says why; \
ask the platform team that runs it.</p><p><a href=\"/console/\">Back to the console</a></p>\
</main></body></html>";

/// `GET /console/sso/callback?code&state` → the session cookie and 303 to the console, or a
/// page that says sign-in failed (403).
pub async fn callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, ApiError> {
    let sso = sso(&state)?;
    let limit = &state.console.sign_ins;
    state.within(limit, peer(&req), limit.name)?;
    let q = query.into_inner();
    let cookie = req.cookie(pending::COOKIE).map(|c| c.value().to_owned());
    let back = Callback {
        code: q.code,
        state: q.state,
        error: q.error,
        error_description: q.error_description,
    };
    let now = crate::db::unix_now();
    match sso.finish(cookie.as_deref(), back, now).await {
        Ok(user) => {
            if sso.principal(&user, state.keys.reserved()).is_none() {
                tracing::warn!(client = %peer(&req), user = %user.name, "console single sign-on refused: the group's mapping does not read back");
                return Ok(refused(&req));
            }
            tracing::info!(client = %peer(&req), user = %user.name, group = %user.group, "console single sign-on");
            let value = state.console.sessions.issue_sso(&user, now);
            Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/console/"))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .cookie(pending_cookie(&req, None))
                .cookie(session_cookie_for(&req, value, LIFETIME.as_secs() as i64))
                .finish())
        }
        Err(e) => {
            tracing::warn!(client = %peer(&req), reason = %e, "console single sign-on refused");
            Ok(refused(&req))
        }
    }
}

fn refused(req: &HttpRequest) -> HttpResponse {
    HttpResponse::Forbidden()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .cookie(pending_cookie(req, None))
        .body(REFUSED_PAGE)
}
