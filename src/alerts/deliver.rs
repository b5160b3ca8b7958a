//! Delivering alerts: one at a time, in order, each recorded (`alert_deliveries`) before its
//! first attempt and updated after its last. The body is JSON; `X-Gateway-Supervisor-Signature:
//! sha256=<hex>` is HMAC-SHA256 of the exact body under `alerts.secret` (the body carries its
//! time and id, so a receiver can refuse replays). A 2xx is delivered; anything else is tried
//! again after 1 s, 2 s, 4 s … (at most 60 s), `alerts.retries` times.

use crate::domain::DeliveryStatus;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;

use super::rule::Alert;
use crate::db::Store;
use crate::db::alerts::NewDelivery;
use gateway_supervisor_actors::bounded;

pub const SIGNATURE: &str = "x-gateway-supervisor-signature";
pub const DELIVERY: &str = "x-gateway-supervisor-delivery";

pub struct Webhook {
    url: String,
    key: Vec<u8>,
    timeout: Duration,
    retries: u32,
}

impl Webhook {
    pub fn new(url: String, key: &[u8], timeout: Duration, retries: u32) -> Self {
        Webhook {
            url,
            key: key.to_vec(),
            timeout,
            retries,
        }
    }

    /// The URL without its path or query (which may hold a token), for logs.
    pub fn describe(&self) -> String {
        crate::config::shown_webhook_url(&self.url)
    }

    /// `sha256=<hex>` of `body`.
    pub fn sign(&self, body: &[u8]) -> String {
        signature(&self.key, body)
    }
}

/// `sha256=<hex>`: HMAC-SHA256 of `body` under `key`, as the signature header carries it (an
/// alert's, an audit batch's).
pub fn signature(key: &[u8], body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(crate::secrets::hmac_sha256(key, &[body]))
    )
}

/// The body of one alert.
fn body(id: &str, alert: &Alert) -> Vec<u8> {
    json!({
        "id": id,
        "kind": alert.kind,
        "state": alert.state,
        "gateway_id": alert.gateway_id,
        "summary": alert.summary,
        "details": bounded::json(alert.details.clone(), 16 * 1024),
        "at": gateway_supervisor_actors::unix_now(),
        "source": "gateway-supervisor",
    })
    .to_string()
    .into_bytes()
}

/// Deliveries to the webhook in flight at once. One at a time, a receiver that hangs held
/// every later alert for its whole timeout and retries (~91 s with the defaults); a few at a
/// time, the others go on while it hangs, and a receiver is never flooded.
pub const IN_FLIGHT: usize = 4;

/// Delivers what the watch queues, until the queue closes: each alert on a task of its own, at
/// most [`IN_FLIGHT`] at once.
pub async fn worker(
    hook: Webhook,
    mut rx: mpsc::Receiver<Alert>,
    store: Store,
    counter: prometheus::IntCounterVec,
) {
    let client = awc::Client::builder()
        .disable_redirects()
        .timeout(hook.timeout)
        .finish();
    let hook = std::rc::Rc::new(hook);
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    while let Some(alert) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (hook, client, store, counter) =
            (hook.clone(), client.clone(), store.clone(), counter.clone());
        actix::spawn(async move {
            deliver(&hook, &client, &store, &counter, alert).await;
            drop(slot);
        });
    }
}

/// One alert: recorded as pending, sent with retries (each attempt recorded as it starts, so
/// an alert in flight shows how far it got), its outcome recorded and counted.
async fn deliver(
    hook: &Webhook,
    client: &awc::Client,
    store: &Store,
    counter: &prometheus::IntCounterVec,
    alert: Alert,
) {
    let Ok(id) = crate::secrets::random_hex::<12>().map(|h| format!("alert_{h}")) else {
        return;
    };
    let record = {
        let id = id.clone();
        let (kind, state, gateway_id, summary) = (
            alert.kind.as_str(),
            alert.state.as_str(),
            alert.gateway_id,
            alert.summary.clone(),
        );
        store
            .call(move |store| {
                store.insert_delivery(&NewDelivery {
                    id: &id,
                    kind,
                    state,
                    gateway_id,
                    summary: &summary,
                })
            })
            .await
    };
    if record.is_err() {
        tracing::warn!(
            kind = alert.kind.as_str(),
            "could not record an alert delivery"
        );
    }
    let body = body(&id, &alert);
    let signature = hook.sign(&body);
    let mut attempts: i64 = 0;
    let mut last_error = None;
    let mut backoff = Duration::from_secs(1);
    let delivered = loop {
        attempts += 1;
        // Recorded as the attempt starts: an alert in flight shows it is being tried.
        record_outcome(
            store,
            &id,
            DeliveryStatus::Pending,
            attempts,
            last_error.clone(),
        )
        .await;
        let sent = client
            .post(&hook.url)
            .insert_header(("content-type", "application/json"))
            .insert_header((SIGNATURE, signature.as_str()))
            .insert_header((DELIVERY, id.as_str()))
            .send_body(body.clone())
            .await;
        match sent {
            Ok(res) if res.status().is_success() => break true,
            Ok(res) => last_error = Some(format!("the webhook answered {}", res.status())),
            Err(e) => last_error = Some(bounded::text(&e.to_string(), 200)),
        }
        if attempts > i64::from(hook.retries) {
            break false;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(60));
    };
    let status = if delivered {
        DeliveryStatus::Delivered
    } else {
        DeliveryStatus::Failed
    };
    counter
        .with_label_values(&[alert.kind.as_str(), status.as_str()])
        .inc();
    if !delivered {
        tracing::warn!(kind = alert.kind.as_str(), attempts, error = ?last_error, "alert not delivered");
    }
    record_outcome(store, &id, status, attempts, last_error).await;
}

async fn record_outcome(
    store: &Store,
    id: &str,
    status: DeliveryStatus,
    attempts: i64,
    last_error: Option<String>,
) {
    let id = id.to_owned();
    let written = store
        .call(move |store| store.update_delivery(&id, status, attempts, last_error.as_deref()))
        .await;
    if written.is_err() {
        tracing::warn!("could not record an alert delivery's outcome");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body_and_the_url_is_shown_without_its_path() {
        let hook = Webhook::new(
            "https://hooks.example.com/T0/secret-token?x=1".into(),
            b"0123456789abcdef",
            Duration::from_secs(1),
            0,
        );
        // echo -n '{"a":1}' | openssl dgst -sha256 -hmac 0123456789abcdef
        assert_eq!(
            hook.sign(br#"{"a":1}"#),
            "sha256=1c76fbb930d3aa8b1633728fae212c68ca68a6752bb319b98be6fe17e86cf5b8"
        );
        assert_eq!(hook.describe(), "https://hooks.example.com/…");
    }
}
