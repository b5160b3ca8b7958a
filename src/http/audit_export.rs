//! `GET /api/audit?format=ndjson|csv`: the audit log exported — any range, oldest first, as a
//! stream. The rows are read a page at a time (keyset on the id, 1,000 a page) and each page is
//! written before the next is read, through a channel of four pages: a month of a busy fleet
//! goes out in constant memory, as fast as the client reads (a client that stops reading
//! stops the reads). CSV is RFC 4180's (the `csv` crate: a field with commas, quotes or line
//! breaks is quoted, quotes doubled); NDJSON is one JSON object a line.

use actix_web::HttpResponse;
use actix_web::web::Bytes;

use super::AppState;
use crate::db::audit::{AuditRow, AuditScope};

/// Rows read at a time.
const PAGE: i64 = 1000;
/// Pages written ahead of the client.
const AHEAD: usize = 4;

/// How an export is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    Csv,
}

impl Format {
    pub fn parse(s: &str) -> Option<Option<Format>> {
        match s {
            "json" => Some(None),
            "ndjson" => Some(Some(Format::Ndjson)),
            "csv" => Some(Some(Format::Csv)),
            _ => None,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }
}

const CSV_HEADER: [&str; 8] = [
    "id",
    "time",
    "actor",
    "api_key_id",
    "action",
    "target_type",
    "target_id",
    "details",
];

/// The rows as the format writes them.
fn encode(format: Format, rows: &[AuditRow], header: bool) -> Vec<u8> {
    match format {
        Format::Ndjson => {
            let mut out = Vec::with_capacity(rows.len() * 256);
            for r in rows {
                let line = serde_json::json!({
                    "id": r.id, "ts": r.ts, "time": time(r.ts), "actor": r.actor,
                    "api_key_id": r.api_key_id, "action": r.action,
                    "target_type": r.target_type, "target_id": r.target_id,
                    "details": r.details.as_deref().and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok()),
                });
                if serde_json::to_writer(&mut out, &line).is_ok() {
                    out.push(b'\n');
                }
            }
            out
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 256));
            if header {
                let _ = w.write_record(CSV_HEADER);
            }
            for r in rows {
                let _ = w.write_record([
                    r.id.to_string(),
                    time(r.ts),
                    r.actor.clone(),
                    r.api_key_id.map(|k| k.to_string()).unwrap_or_default(),
                    r.action.clone(),
                    r.target_type.clone(),
                    r.target_id.clone().unwrap_or_default(),
                    r.details.clone().unwrap_or_default(),
                ]);
            }
            w.into_inner().unwrap_or_default()
        }
    }
}

/// RFC 3339 (UTC) of Unix second `ts`.
fn time(ts: i64) -> String {
    jiff::Timestamp::from_second(ts)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(details: &str) -> AuditRow {
        AuditRow {
            id: 7,
            ts: 1_795_900_000,
            actor: "api_key:ops, \"night\"\nshift".into(),
            api_key_id: Some(3),
            action: "gateway.labels".into(),
            target_type: "gateway".into(),
            target_id: Some("12".into()),
            details: Some(details.into()),
        }
    }

    #[test]
    fn a_field_with_commas_quotes_and_line_breaks_is_quoted_and_a_line_is_one_object() {
        let r = row(r#"{"labels":{"a":"b,c"}}"#);
        let csv = String::from_utf8(encode(Format::Csv, std::slice::from_ref(&r), true)).unwrap();
        assert!(csv.starts_with("id,time,actor,"), "{csv}");
        assert!(
            csv.contains("\"api_key:ops, \"\"night\"\"\nshift\""),
            "{csv}"
        );
        let mut read = csv::Reader::from_reader(csv.as_bytes());
        let rec = read.records().next().unwrap().unwrap();
        assert_eq!(&rec[2], r.actor.as_str());
        assert_eq!(&rec[7], r#"{"labels":{"a":"b,c"}}"#);
        let nd = String::from_utf8(encode(Format::Ndjson, &[r.clone(), r], false)).unwrap();
        assert_eq!(nd.lines().count(), 2);
        let v: serde_json::Value = serde_json::from_str(nd.lines().next().unwrap()).unwrap();
        assert_eq!(v["details"]["labels"]["a"], "b,c");
        assert_eq!(v["time"], "2026-11-28T21:06:40Z");
    }
}
