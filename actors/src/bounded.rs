//! What a peer sends, made safe to keep, log and show: one place for the bounds.
//!
//! A gateway is a peer, not a friend: a hostile or broken one sent 1 MB `log` events until
//! the daemon held 1.2 GB, and a `server.version` with a newline forged a whole log line.
//! Every string a gateway controls goes through [`text`] (control characters escaped,
//! length bounded, the cut marked) before it is logged, stored or shown, and every JSON
//! payload kept beyond the frame that carried it goes through [`json`] (strings, arrays,
//! depth and total size bounded). Identifiers that must travel back to the gateway unchanged
//! (session keys) are not rewritten: [`identifier`] refuses them when they are too long.

use serde_json::{Map, Value};

/// Gateway versions, names, agent and model ids.
pub const SHORT: usize = 128;
/// Error messages and log messages.
pub const MESSAGE: usize = 2048;
/// A JSON payload kept in the event replay or the log buffer.
pub const PAYLOAD: usize = 16 * 1024;
/// A session key longer than this is not a session key.
pub const IDENTIFIER: usize = 512;

/// Strings inside a bounded payload.
const PAYLOAD_STRING: usize = 4096;
/// Elements kept of an array (or entries of an object) inside a bounded payload.
const PAYLOAD_ITEMS: usize = 100;
/// Nesting kept inside a bounded payload.
const PAYLOAD_DEPTH: usize = 8;

/// `s` with every control character escaped (`\n` → `\\n`, ESC → `\\u{1b}`) and cut to at
/// most `max` bytes plus a marker naming how much was cut.
pub fn text(s: &str, max: usize) -> String {
    // Looks at no more than `max` bytes' worth of a long string.
    if s.len() <= max && !s.chars().any(needs_escaping) {
        return s.to_owned();
    }
    let (mut out, consumed) = escaped_within(s, max, needs_escaping, |c, out| {
        out.extend(c.escape_default())
    });
    if consumed < s.len() {
        // A string cut before (a payload's string, then the message kept of it) says what the
        // first cut took too: the marker counts the original's bytes, not the copy's.
        let (body, cut_before) = earlier_cut(s);
        let left = body.len().saturating_sub(consumed) + cut_before;
        out.push_str(&format!("…[+{left} bytes]"));
    }
    out
}

/// `s` with each character `escapes` picks written by `escape`, cut before the character that
/// would take it past `max` bytes (an escape is never split); and how many bytes of `s` made
/// it in. The walk [`text`] and an approval's text (`protocol::approval_text`) share; each
/// adds its own marker to a cut.
pub fn escaped_within(
    s: &str,
    max: usize,
    escapes: impl Fn(char) -> bool,
    escape: impl Fn(char, &mut String),
) -> (String, usize) {
    let mut out = String::with_capacity(s.len().min(max) + 24);
    let mut consumed = 0;
    for c in s.chars() {
        let before = out.len();
        if escapes(c) {
            escape(c, &mut out);
        } else {
            out.push(c);
        }
        if out.len() > max {
            out.truncate(before);
            break;
        }
        consumed += c.len_utf8();
    }
    (out, consumed)
}

/// `s` without the marker an earlier [`text`] left at its end, and how many bytes that cut
/// took (0 and `s` itself when there is none).
fn earlier_cut(s: &str) -> (&str, usize) {
    let cut = s.strip_suffix(" bytes]").and_then(|rest| {
        let at = rest.rfind("…[+")?;
        let n = rest[at + "…[+".len()..].parse::<usize>().ok()?;
        Some((&s[..at], n))
    });
    cut.unwrap_or((s, 0))
}

/// C0 and C1 controls, DEL, and the bidirectional overrides that reorder a terminal line.
fn needs_escaping(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The same for an optional string.
pub fn opt_text(s: Option<&str>, max: usize) -> Option<String> {
    s.map(|s| text(s, max))
}

/// `s` itself if it is a plausible identifier: not empty, at most [`IDENTIFIER`] bytes and
/// free of control characters. Never rewritten, since it goes back to the gateway.
pub fn identifier(s: &str) -> Option<&str> {
    (!s.is_empty() && s.len() <= IDENTIFIER && !s.chars().any(needs_escaping)).then_some(s)
}

/// A payload bounded to about `budget` bytes of JSON: strings cut, arrays and objects
/// shortened, deep nesting replaced. Whatever still does not fit becomes
/// `{"truncated": true, "bytes": <approximate original size>}`.
pub fn json(value: Value, budget: usize) -> Value {
    json_sized(value, budget).0
}

/// [`json`] and the size of what it returns, for callers that account bytes (one walk over a
/// payload that fits, not two).
pub fn json_sized(value: Value, budget: usize) -> (Value, usize) {
    let size = json_size(&value);
    if size <= budget {
        return (value, size);
    }
    let clipped = clip(value, 0);
    let clipped_size = json_size(&clipped);
    if clipped_size <= budget {
        (clipped, clipped_size)
    } else {
        let summary = serde_json::json!({ "truncated": true, "bytes": size });
        let summary_size = json_size(&summary);
        (summary, summary_size)
    }
}

fn clip(value: Value, depth: usize) -> Value {
    if depth >= PAYLOAD_DEPTH && (value.is_array() || value.is_object()) {
        return Value::String("…[nested too deep]".into());
    }
    match value {
        Value::String(s) if s.len() > PAYLOAD_STRING => Value::String(text(&s, PAYLOAD_STRING)),
        Value::Array(items) => {
            let total = items.len();
            let mut out: Vec<Value> = items
                .into_iter()
                .take(PAYLOAD_ITEMS)
                .map(|v| clip(v, depth + 1))
                .collect();
            if total > PAYLOAD_ITEMS {
                out.push(Value::String(format!(
                    "…[+{} items]",
                    total - PAYLOAD_ITEMS
                )));
            }
            Value::Array(out)
        }
        Value::Object(map) => {
            let total = map.len();
            let mut out: Map<String, Value> = map
                .into_iter()
                .take(PAYLOAD_ITEMS)
                .map(|(k, v)| (text(&k, SHORT), clip(v, depth + 1)))
                .collect();
            if total > PAYLOAD_ITEMS {
                out.insert(
                    "…".into(),
                    Value::String(format!("+{} entries", total - PAYLOAD_ITEMS)),
                );
            }
            Value::Object(out)
        }
        other => other,
    }
}

/// The size of `value` as compact JSON, counted without serializing (escapes counted as
/// one byte, so it is a slight underestimate for strings full of quotes or controls).
pub fn json_size(value: &Value) -> usize {
    match value {
        Value::Null => 4,
        Value::Bool(b) => {
            if *b {
                4
            } else {
                5
            }
        }
        Value::Number(n) => n.to_string().len(),
        Value::String(s) => s.len() + 2,
        // Brackets, then each element and its comma, less the last comma.
        Value::Array(items) => (2 + items.iter().map(|v| json_size(v) + 1).sum::<usize>())
            .saturating_sub(usize::from(!items.is_empty())),
        // Braces, then each `"key":value,`, less the last comma.
        Value::Object(map) => (2 + map
            .iter()
            .map(|(k, v)| k.len() + 4 + json_size(v))
            .sum::<usize>())
        .saturating_sub(usize::from(!map.is_empty())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_escapes_controls_so_a_peer_cannot_forge_a_log_line() {
        let forged = "2026.9.6\n2026-11-22T00:00:00Z ERROR gateway_supervisor::daemon: INJECTED";
        let out = text(forged, SHORT);
        assert!(!out.contains('\n'));
        assert!(out.contains("\\n"));
        assert_eq!(text("\x1b[31mred", SHORT), "\\u{1b}[31mred");
        assert_eq!(text("a\u{202e}b", SHORT), "a\\u{202e}b");
        assert_eq!(text("plain 2026.9.6", SHORT), "plain 2026.9.6");
    }

    #[test]
    fn text_is_bounded_and_says_what_was_cut() {
        let long = "v".repeat(64 * 1024);
        let out = text(&long, SHORT);
        assert!(out.len() <= SHORT + 24, "{}", out.len());
        assert!(out.ends_with(&format!("…[+{} bytes]", 64 * 1024 - SHORT)));
        // Never cuts inside a character.
        let wide = "é".repeat(200);
        let out = text(&wide, 11);
        assert!(out.starts_with("ééééé…"), "{out}");
    }

    /// A megabyte log message is cut as a payload string (4,096 bytes) and then as a message
    /// (2,048): the marker still counts what the original lost, not what the copy lost (it
    /// read `…[+2067 bytes]`).
    #[test]
    fn a_string_cut_twice_says_what_the_original_lost() {
        let original = "m".repeat(1 << 20);
        let once = text(&original, 4096);
        let twice = text(&once, MESSAGE);
        assert!(twice.starts_with(&"m".repeat(100)));
        assert!(
            twice.ends_with(&format!("…[+{} bytes]", (1 << 20) - MESSAGE)),
            "{}",
            &twice[twice.len() - 30..]
        );
        // Through a payload and then the message, as a log event goes.
        let payload = json(json!({"message": original}), PAYLOAD);
        let message = text(payload["message"].as_str().unwrap(), MESSAGE);
        assert!(message.ends_with(&format!("…[+{} bytes]", (1 << 20) - MESSAGE)));
        // A string that only looks cut keeps its own count when it is not cut again.
        assert_eq!(text("x…[+5 bytes]", SHORT), "x…[+5 bytes]");
    }

    #[test]
    fn identifiers_pass_unchanged_or_not_at_all() {
        assert_eq!(identifier("agent:main:main"), Some("agent:main:main"));
        assert_eq!(identifier(""), None);
        assert_eq!(identifier("a\nb"), None);
        assert_eq!(identifier(&"k".repeat(IDENTIFIER + 1)), None);
    }

    #[test]
    fn small_payloads_are_kept_as_they_are() {
        let v = json!({"level": "info", "message": "hello", "n": [1, 2, 3]});
        assert_eq!(json(v.clone(), PAYLOAD), v);
        assert_eq!(json_size(&v), v.to_string().len());
    }

    #[test]
    fn a_megabyte_log_event_is_cut_to_the_budget() {
        let v = json!({"level": "info", "message": "x".repeat(1 << 20), "session": "s"});
        let out = json(v, PAYLOAD);
        assert!(
            out.to_string().len() <= PAYLOAD,
            "{}",
            out.to_string().len()
        );
        assert_eq!(out["level"], "info");
        assert!(out["message"].as_str().unwrap().ends_with("bytes]"));
    }

    #[test]
    fn wide_and_deep_payloads_are_bounded_too() {
        let wide = Value::Array((0..100_000).map(|i| json!(i)).collect());
        assert!(json(wide, PAYLOAD).to_string().len() <= PAYLOAD);
        let mut deep = json!(1);
        for _ in 0..1_000 {
            deep = json!([deep]);
        }
        assert!(json(deep, PAYLOAD).to_string().len() <= PAYLOAD);
        // Many strings each under the per-string cap still cannot exceed the budget.
        let many: Vec<Value> = (0..100).map(|_| json!("y".repeat(4000))).collect();
        let out = json(Value::Array(many), PAYLOAD);
        assert!(out.to_string().len() <= PAYLOAD);
        assert_eq!(out["truncated"], true);
    }
}
