//! One gateway log line, as `logs.tail` returns it (a raw tslog JSON line of the gateway's file
//! log: numbered arguments `"0"`, `"1"` …, `_meta.logLevelName`, `_meta.name` — the subsystem as
//! JSON —, `time`), turned into what `GET /api/logs` shows: level, subsystem, time, one message.
//! Pure, and hostile-proof: the gateway redacts its own lines, and every message is redacted
//! again here (bearer tokens, `token=`/`password:`-style pairs, `sk-` keys) and bounded before
//! it is stored, shown or streamed; a line that is not JSON is kept as redacted text.

use std::sync::LazyLock;

use regex_lite::Regex;
use serde_json::{Value, json};

use gateway_supervisor_actors::bounded;

/// What stands in for a secret.
pub const REDACTED: &str = "[redacted]";

static BEARER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}").expect("a valid pattern")
});
static PAIR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)((?:token|password|passwd|secret|api[_-]?key|authorization|cookie)["']?\s*[:=]\s*["']?)[^\s"',;}&]{4,}"#,
    )
    .expect("a valid pattern")
});
static KEY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}").expect("a valid pattern"));

/// `text` with anything that looks like a credential replaced by [`REDACTED`].
pub fn redact(text: &str) -> String {
    let text = BEARER.replace_all(text, |c: &regex_lite::Captures| {
        format!("{} {REDACTED}", &c[1])
    });
    let text = PAIR.replace_all(&text, |c: &regex_lite::Captures| {
        format!("{}{REDACTED}", &c[1])
    });
    KEY.replace_all(&text, REDACTED).into_owned()
}

/// A gateway log line as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayLogLine {
    pub level: Option<String>,
    pub subsystem: Option<String>,
    /// The gateway's own timestamp (ISO 8601), as it wrote it.
    pub time: Option<String>,
    pub message: String,
}

impl GatewayLogLine {
    /// The `log` event payload it becomes (what the log buffer and streams read).
    pub fn payload(&self) -> Value {
        self.payload_from("logs.tail")
    }

    /// The payload with another source: `output`, a managed gateway's own output.
    pub fn payload_from(&self, source: &'static str) -> Value {
        json!({"source": source, "level": self.level, "subsystem": self.subsystem,
               "time": self.time, "message": self.message})
    }
}

/// The subsystem a tslog `name` carries (`{"subsystem":"gateway/canvas"}`).
fn subsystem(name: Option<&Value>) -> Option<String> {
    let name = name?.as_str()?;
    let parsed: Value = serde_json::from_str(name).ok()?;
    parsed
        .get("subsystem")
        .and_then(Value::as_str)
        .map(|s| bounded::text(s, bounded::SHORT))
}

/// tslog's levels, the only ones kept (a filter and a display value: a known set).
const LEVELS: [&str; 7] = ["silly", "trace", "debug", "info", "warn", "error", "fatal"];

fn level_of(raw: &str) -> Option<String> {
    let l = raw.to_ascii_lowercase();
    LEVELS.contains(&l.as_str()).then_some(l)
}

/// One raw line.
pub fn parse(raw: &str) -> GatewayLogLine {
    let Ok(Value::Object(o)) = serde_json::from_str::<Value>(raw) else {
        return GatewayLogLine {
            level: None,
            subsystem: None,
            time: None,
            message: bounded::text(&redact(raw), bounded::MESSAGE),
        };
    };
    let meta = o.get("_meta");
    let name = meta.and_then(|m| m.get("name"));
    let level = meta
        .and_then(|m| m.get("logLevelName"))
        .or_else(|| o.get("level"))
        .and_then(Value::as_str)
        .and_then(level_of);
    let time = o
        .get("time")
        .or_else(|| meta.and_then(|m| m.get("date")))
        .and_then(Value::as_str)
        .map(|t| bounded::text(t, 64));
    // The numbered arguments in order; the first is the subsystem tag when it repeats `name`.
    let mut numbered: Vec<(usize, &Value)> = o
        .iter()
        .filter_map(|(k, v)| k.parse::<usize>().ok().map(|i| (i, v)))
        .collect();
    numbered.sort_by_key(|(i, _)| *i);
    let message = match o.get("message").and_then(Value::as_str) {
        Some(m) => m.to_owned(),
        None => numbered
            .iter()
            .filter(|(i, v)| !(*i == 0 && Some(*v) == name))
            .map(|(_, v)| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" "),
    };
    GatewayLogLine {
        level,
        subsystem: subsystem(name),
        time,
        message: bounded::text(&redact(&message), bounded::MESSAGE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line as 2026.3.31 and 2026.9.6 write their file log (abridged `_meta.path`).
    const CANVAS: &str = r#"{"0":"{\"subsystem\":\"gateway/canvas\"}","1":"canvas host mounted at http://127.0.0.1:11000/__openclaw__/canvas/","_meta":{"runtime":"node","runtimeVersion":"22.23.3","hostname":"unknown","name":"{\"subsystem\":\"gateway/canvas\"}","parentNames":["openclaw"],"date":"2026-11-23T10:02:18.466Z","logLevelId":3,"logLevelName":"INFO"},"time":"2026-11-23T10:02:18.470+00:00"}"#;
    const HEARTBEAT: &str = r#"{"0":"{\"subsystem\":\"gateway/heartbeat\"}","1":{"enabled":false},"2":"heartbeat: disabled","_meta":{"name":"{\"subsystem\":\"gateway/heartbeat\"}","date":"2026-11-23T10:02:18.518Z","logLevelId":3,"logLevelName":"WARN"},"time":"2026-11-23T10:02:18.520+00:00"}"#;

    #[test]
    fn a_real_line_gives_level_subsystem_time_and_the_message() {
        let l = parse(CANVAS);
        assert_eq!(l.level.as_deref(), Some("info"));
        assert_eq!(l.subsystem.as_deref(), Some("gateway/canvas"));
        assert_eq!(l.time.as_deref(), Some("2026-11-23T10:02:18.470+00:00"));
        assert_eq!(
            l.message,
            "canvas host mounted at http://127.0.0.1:11000/__openclaw__/canvas/"
        );
        let h = parse(HEARTBEAT);
        assert_eq!(h.level.as_deref(), Some("warn"));
        assert_eq!(h.message, r#"{"enabled":false} heartbeat: disabled"#);
    }

    #[test]
    fn credentials_are_redacted_wherever_they_appear() {
        for (raw, leaked) in [
            (
                "auth header Bearer abcdef0123456789xyz",
                "abcdef0123456789xyz",
            ),
            ("token=s3cr3t-value&x=1", "s3cr3t-value"),
            (r#"{"0":"config","1":{"password":"hunter22"}}"#, "hunter22"),
            (
                "provider key sk-ant0123456789abcdefghij used",
                "sk-ant0123456789abcdefghij",
            ),
            ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ] {
            let l = parse(raw);
            assert!(!l.message.contains(leaked), "{raw} → {}", l.message);
            assert!(l.message.contains(REDACTED), "{raw} → {}", l.message);
        }
        // Words that merely mention a secret are left alone.
        assert_eq!(redact("token rotated"), "token rotated");
    }

    #[test]
    fn hostile_lines_are_bounded_and_escaped() {
        let huge = format!(
            r#"{{"0":"{}","_meta":{{"logLevelName":"{}"}}}}"#,
            "x".repeat(100_000),
            "E".repeat(1000)
        );
        let l = parse(&huge);
        assert!(
            l.message.len() <= bounded::MESSAGE + 32,
            "{}",
            l.message.len()
        );
        assert_eq!(l.level, None, "a level outside tslog's is not kept");
        let not_json = parse("plain \u{1b}[31mtext\u{0} line");
        assert!(
            !not_json.message.contains('\u{0}'),
            "{:?}",
            not_json.message
        );
        assert!(not_json.level.is_none());
    }
}
