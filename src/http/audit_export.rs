//! `GET /api/audit?format=ndjson|csv`: the audit log exported — any range, oldest first, as a
//! stream. The rows are read a page at a time (keyset on the id, 1,000 a page) and each page is
//! written before the next is read, through a channel of four pages: a month of a busy fleet
//! goes out in constant memory, as fast as the client reads (a client that stops reading
//! stops the reads). CSV is RFC 4180's (the `csv` crate: a field with commas, quotes or line
//! breaks is quoted, quotes doubled); NDJSON is one JSON object a line.

use actix_web::HttpResponse;
use actix_web::web::Bytes;

use super::AppState;
use crate::audit::encode::{Format, encode};
use crate::db::audit::AuditScope;

/// Rows read at a time.
const PAGE: i64 = 1000;
/// Pages written ahead of the client.
const AHEAD: usize = 4;

/// The export of rows made in `[since, until)` (of `only`, if given), as a streamed answer.
pub fn export(
    state: &AppState,
    format: Format,
    since: i64,
    until: i64,
    only: Option<AuditScope>,
) -> HttpResponse {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, actix_web::Error>>(AHEAD);
    let store = state.store.clone();
    let mut shutdown = state.shutdown.subscribe();
    actix_web::rt::spawn(async move {
        let mut after = 0;
        let mut first = true;
        loop {
            let only = only.clone();
            let page = store
                .call(move |s| s.audit_page(after, since, until, only.as_ref(), PAGE))
                .await;
            let rows = match page {
                Ok(rows) => rows,
                Err(e) => {
                    // The status went out with the first byte: the stream ends short, said in
                    // the log (and, in NDJSON, as its last line).
                    tracing::warn!(%e, after, "the audit export stopped: the store failed");
                    if format == Format::Ndjson {
                        let _ = tx
                            .send(Ok(Bytes::from_static(
                                b"{\"error\":\"storage_unavailable\",\"message\":\"the export stopped here: the daemon's log has the cause\"}\n",
                            )))
                            .await;
                    }
                    return;
                }
            };
            if rows.is_empty() && !first {
                return;
            }
            let bytes = encode(format, &rows, first);
            first = false;
            let done = rows.len() < PAGE as usize;
            after = rows.last().map_or(after, |r| r.id);
            tokio::select! {
                sent = tx.send(Ok(Bytes::from(bytes))) => if sent.is_err() { return },
                _ = shutdown.wait_for(|stopping| *stopping) => return,
            }
            if done {
                return;
            }
        }
    });
    HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header(("x-accel-buffering", "no"))
        .streaming(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }))
}
