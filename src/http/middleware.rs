//! Request middleware: metrics/logging (outermost), authentication (`/api`; the role is checked
//! by the matched route, see `roles.rs`), and
//! the per-key rate limit on gateway operations.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{AUTHORIZATION, HeaderMap};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};

use super::AppState;
use super::error::ApiError;
use crate::auth::Principal;

fn app_state(req: &ServiceRequest) -> Result<web::Data<AppState>, Error> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("application state missing".into()).into())
}

/// `x-api-key: KEY` or `Authorization: Bearer KEY`.
pub fn presented_key(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get("x-api-key") {
        return Some(v.to_str().unwrap_or("invalid").to_owned());
    }
    let auth = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = auth.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| key.trim().to_owned())
}

pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let state = app_state(&req)?;
    let principal = state
        .keys
        .authenticate(presented_key(req.headers()).as_deref())
        .await
        .map_err(ApiError::from)?;
    req.extensions_mut().insert(principal);
    next.call(req).await
}

pub async fn limit_gateway_ops(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let state = app_state(&req)?;
    let key_id = req.extensions().get::<Principal>().map(|p| p.key_id);
    if let Some(key_id) = key_id
        && let Err(retry_after_secs) = state.gateway_ops_limiter.check(key_id)
    {
        state
            .metrics
            .rate_limited
            .with_label_values(&[state.gateway_ops_limiter.name])
            .inc();
        return Err(ApiError::RateLimited {
            limit: "gateway operations",
            retry_after_secs,
        }
        .into());
    }
    next.call(req).await
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

/// Records every request's route pattern (bounded label set), status and duration. Logs at
/// debug; never logs query strings, headers or bodies.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let state = app_state(&req)?;
    let method = method_label(req.method());
    let path = gateway_supervisor_actors::bounded::text(req.path(), 256);
    let result = next.call(req).await;
    let (status, route) = match &result {
        Ok(res) => (
            res.status(),
            res.request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".into()),
        ),
        Err(err) => (err.as_response_error().status_code(), "rejected".into()),
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
    tracing::debug!(%method, %path, status = status.as_u16(), elapsed_ms = elapsed.as_secs_f64() * 1e3, "request");
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(
            method_label(&Method::from_bytes(b"FOOBAR").unwrap()),
            "OTHER"
        );
        assert_eq!(method_label(&Method::from_bytes(b"get").unwrap()), "OTHER");
    }

    #[test]
    fn keys_come_from_either_header() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_key(&h), None);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer gsk_abc"));
        assert_eq!(presented_key(&h).as_deref(), Some("gsk_abc"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic Zm9v"));
        assert_eq!(presented_key(&h), None);
        h.insert(
            "x-api-key"
                .parse::<actix_web::http::header::HeaderName>()
                .unwrap(),
            HeaderValue::from_static("gsk_x"),
        );
        assert_eq!(presented_key(&h).as_deref(), Some("gsk_x"));
    }
}
