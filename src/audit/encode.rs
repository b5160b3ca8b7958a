//! The audit log's rows as they leave the daemon — the export (`GET /api/audit?format=`) and
//! the sink (`[audit] sink_url`) write the same lines: NDJSON, one JSON object a line, or RFC
//! 4180 CSV (the `csv` crate: a field with commas, quotes or line breaks is quoted, quotes
//! doubled).

use crate::db::audit::AuditRow;

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

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }
}

const CSV_HEADER: [&str; 9] = [
    "id",
    "time",
    "actor",
    "api_key_id",
    "action",
    "target_type",
    "target_id",
    "details",
    "tenant",
];

/// The rows as the format writes them (the CSV header first when `header`).
pub fn encode(format: Format, rows: &[AuditRow], header: bool) -> Vec<u8> {
    match format {
        Format::Ndjson => {
            let mut out = Vec::with_capacity(rows.len() * 256);
            for r in rows {
                let line = serde_json::json!({
                    "id": r.id, "ts": r.ts, "time": time(r.ts), "actor": r.actor,
                    "api_key_id": r.api_key_id, "action": r.action,
                    "target_type": r.target_type, "target_id": r.target_id,
                    "details": r.details.as_deref().and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok()),
                    "tenant": r.tenant,
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
                    r.tenant.clone().unwrap_or_default(),
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
            tenant: Some("blue".into()),
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
        assert_eq!(&rec[8], "blue");
        let nd = String::from_utf8(encode(Format::Ndjson, &[r.clone(), r], false)).unwrap();
        assert_eq!(nd.lines().count(), 2);
        let v: serde_json::Value = serde_json::from_str(nd.lines().next().unwrap()).unwrap();
        assert_eq!(v["details"]["labels"]["a"], "b,c");
        assert_eq!(v["time"], "2026-11-28T21:06:40Z");
        assert_eq!(v["tenant"], "blue");
    }
}
