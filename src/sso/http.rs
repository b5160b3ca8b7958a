//! The OpenID library's HTTP client (discovery, keys, the token endpoint) as an `awc` request
//! on the serving thread: bounded in time ([`TIMEOUT`]) and in bytes ([`MAX_BODY`]), and
//! following no redirect (a provider's endpoints are named in its discovery document).

use std::time::Duration;

use openidconnect::{HttpRequest, HttpResponse};

/// One request to the provider, connect to last byte.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from the provider (a discovery document is ~2 KB, a key set ~1–10
/// KB, a token response ~2–4 KB).
pub const MAX_BODY: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("request to the provider: {0}")]
    Send(String),
    #[error("reading the provider's answer: {0}")]
    Body(String),
    #[error("the provider's answer: {0}")]
    Response(#[from] openidconnect::http::Error),
}

/// Sends `request` and reads its answer whole (at most [`MAX_BODY`]).
pub async fn send(request: HttpRequest) -> Result<HttpResponse, HttpError> {
    let client = awc::Client::builder()
        .timeout(TIMEOUT)
        .disable_redirects()
        .finish();
    let (parts, body) = request.into_parts();
    let method = awc::http::Method::from_bytes(parts.method.as_str().as_bytes())
        .map_err(|e| HttpError::Send(e.to_string()))?;
    let mut out = client.request(method, parts.uri.to_string());
    for (name, value) in &parts.headers {
        out = out.insert_header((name.as_str(), value.as_bytes()));
    }
    let mut answer = out.send_body(body).await.map_err(|e| {
        HttpError::Send(gateway_supervisor_actors::bounded::text(
            &e.to_string(),
            300,
        ))
    })?;
    let bytes = answer.body().limit(MAX_BODY).await.map_err(|e| {
        HttpError::Body(gateway_supervisor_actors::bounded::text(
            &e.to_string(),
            300,
        ))
    })?;
    let mut response = openidconnect::http::Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        response = response.header(name.as_str(), value.as_bytes());
    }
    Ok(response.body(bytes.to_vec())?)
}
