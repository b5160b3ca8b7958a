//! The link's plain HTTP: one client per thread, the `/health` probe and the `/readyz` check.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::machine::HttpHealth;

thread_local! {
    // One HTTP/WebSocket client per arbiter thread (verified, insecure), shared by its actors.
    static CLIENTS: RefCell<HashMap<bool, awc::Client>> = RefCell::new(HashMap::new());
}

pub fn client(insecure: bool, connect_timeout: Duration, request_timeout: Duration) -> awc::Client {
    CLIENTS.with(|c| {
        c.borrow_mut()
            .entry(insecure)
            .or_insert_with(|| {
                awc::Client::builder()
                    .connector(
                        awc::Connector::new()
                            .rustls_0_23(crate::tls::client_config(insecure))
                            // An upgraded WebSocket keeps its connector permit: the default
                            // limit (100 per client) would cap the fleet at 100 per thread.
                            .limit(0)
                            .timeout(connect_timeout)
                            .handshake_timeout(connect_timeout),
                    )
                    .timeout(request_timeout)
                    .finish()
            })
            .clone()
    })
}

/// `GET /health`: how long a 2xx took, or why there was none.
pub async fn health(client: awc::Client, url: String, timeout: Duration) -> HttpHealth {
    let started = Instant::now();
    let timed_out = || HttpHealth::Failed {
        timed_out: true,
        message: "HTTP /health timed out".to_owned(),
    };
    match tokio::time::timeout(timeout, client.get(url).timeout(timeout).send()).await {
        Err(_) | Ok(Err(awc::error::SendRequestError::Timeout)) => timed_out(),
        Ok(Err(e)) => HttpHealth::Failed {
            timed_out: false,
            message: format!("HTTP /health failed: {e}"),
        },
        Ok(Ok(resp)) if resp.status().is_success() => {
            let json = resp
                .headers()
                .get(awc::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.contains("json"));
            if json {
                HttpHealth::Answered(started.elapsed())
            } else {
                HttpHealth::NoEndpoint
            }
        }
        Ok(Ok(resp)) => HttpHealth::Failed {
            timed_out: false,
            message: format!("HTTP /health answered {}", resp.status()),
        },
    }
}

/// `GET /readyz` answered 2xx within `timeout`.
pub async fn ready(client: awc::Client, url: String, timeout: Duration) -> bool {
    let request = client.get(url).timeout(timeout).send();
    matches!(tokio::time::timeout(timeout, request).await, Ok(Ok(resp)) if resp.status().is_success())
}
