//! The audit sink: every audit row, oldest first, POSTed to `audit.sink_url` in batches of
//! NDJSON (the export's lines, [`super::encode`]), each signed — `X-Gateway-Supervisor-Signature:
//! sha256=<hex>`, HMAC-SHA256 of the exact body under `audit.sink_secret` — and named
//! (`X-Gateway-Supervisor-Delivery: audit-<first id>-<last id>`). One batch in flight; a 2xx
//! moves the cursor (`audit_sink_cursor`, compare-and-set) past it; anything else is tried again
//! after 1 s, 2 s, 4 s … at most 60 s, for as long as it takes: the rows wait in the database,
//! so nothing is lost and no action waits. A new sink starts from the log's first row.

use std::time::Duration;

use actix::Addr;

use super::AuditMetrics;
use super::encode::{Format, encode};
use crate::alerts::deliver::{DELIVERY, SIGNATURE, signature};
use crate::config::AuditConfig;
use crate::db::Store;
use gateway_supervisor_actors::RegistryActor;
use gateway_supervisor_actors::bounded;
use gateway_supervisor_actors::registry::Decides;

/// The longest wait between two tries of a batch.
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// What one round did.
#[derive(Debug, PartialEq, Eq)]
enum Round {
    /// Nothing new: wait `audit.sink_interval`.
    CaughtUp,
    /// A batch delivered: go on at once.
    Delivered,
    /// The collector or the store failed: wait, then try the same rows again.
    Failed,
}

/// Runs until the daemon stops. `url` and `secret` are set (checked at load).
pub async fn run(
    cfg: AuditConfig,
    registry: Addr<RegistryActor>,
    store: Store,
    metrics: AuditMetrics,
) {
    let (Some(url), Some(secret)) = (cfg.sink_url.clone(), cfg.sink_secret.clone()) else {
        return;
    };
    let client = awc::Client::builder()
        .disable_redirects()
        .timeout(cfg.sink_timeout)
        .finish();
    let shown = crate::config::shown_webhook_url(&url);
    let mut backoff = Duration::from_secs(1);
    loop {
        if !registry.send(Decides).await.unwrap_or(false) {
            metrics.pending.set(0);
            tokio::time::sleep(cfg.sink_interval).await;
            continue;
        }
        match round(
            &cfg,
            &client,
            &url,
            secret.as_bytes(),
            &store,
            &metrics,
            &shown,
        )
        .await
        {
            Round::Delivered => backoff = Duration::from_secs(1),
            Round::CaughtUp => {
                backoff = Duration::from_secs(1);
                tokio::time::sleep(cfg.sink_interval).await;
            }
            Round::Failed => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// One batch: read after the cursor, send, move the cursor.
async fn round(
    cfg: &AuditConfig,
    client: &awc::Client,
    url: &str,
    secret: &[u8],
    store: &Store,
    metrics: &AuditMetrics,
    shown: &str,
) -> Round {
    let batch = i64::try_from(cfg.sink_batch).unwrap_or(500);
    let read = store
        .call(move |s| {
            let cursor = match s.audit_sink_cursor()? {
                Some(c) => c,
                None => {
                    s.audit_sink_start(0)?;
                    s.audit_sink_cursor()?.unwrap_or(0)
                }
            };
            let rows = s.audit_page(cursor, i64::MIN, i64::MAX, None, batch)?;
            // Ids after the cursor, from the newest id (one index read, not a count: a backlog
            // of a million rows would be counted again at every batch). No row after the
            // cursor is ever deleted, so this is exact but for ids a rolled-back write skipped.
            let pending = (s.audit_last_id()? - cursor).max(0);
            Ok::<_, crate::db::DbError>((cursor, rows, pending))
        })
        .await;
    let (cursor, rows, pending) = match read {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(%e, "the audit sink could not read the log");
            return Round::Failed;
        }
    };
    metrics.pending.set(pending);
    let (Some(first), Some(last)) = (rows.first().map(|r| r.id), rows.last().map(|r| r.id)) else {
        return Round::CaughtUp;
    };
    let body = encode(Format::Ndjson, &rows, false);
    let signature = signature(secret, &body);
    let sent = client
        .post(url)
        .insert_header(("content-type", "application/x-ndjson"))
        .insert_header((SIGNATURE, signature))
        .insert_header((DELIVERY, format!("audit-{first}-{last}")))
        .send_body(body)
        .await;
    let failure = match sent {
        Ok(res) if res.status().is_success() => None,
        Ok(res) => Some(format!("the collector answered {}", res.status())),
        Err(e) => Some(bounded::text(&e.to_string(), 200)),
    };
    if let Some(error) = failure {
        metrics.sent(false, rows.len());
        tracing::warn!(sink = %shown, first, last, %error, "audit batch not delivered; tried again");
        return Round::Failed;
    }
    metrics.sent(true, rows.len());
    metrics.pending.set((pending - rows.len() as i64).max(0));
    match store
        .call(move |s| s.audit_sink_advance(cursor, last))
        .await
    {
        Ok(true) => Round::Delivered,
        // Another instance moved it (a change of decider): it is ahead; go on from there.
        Ok(false) => Round::Delivered,
        Err(e) => {
            tracing::warn!(%e, "the audit sink could not record its progress; the batch will be sent again");
            Round::Failed
        }
    }
}
