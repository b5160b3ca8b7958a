//! A bounded buffer of the gateways' `log` events, for `GET /api/logs`.
//!
//! Bounded twice: at most [`CAPACITY`] lines and at most [`CAPACITY_BYTES`] (each line's
//! message and payload are already cut by `bounded`), so 400 one-megabyte log events from a
//! hostile gateway cost at most a few megabytes; and an answer carries at most
//! [`RESPONSE_BYTES`], newest lines first, saying so when lines were left out.

use gateway_supervisor_actors::events::EventKind;
use gateway_supervisor_actors::model::GatewayId;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;

use gateway_supervisor_actors::bounded;
use gateway_supervisor_actors::events::EventBus;

pub const CAPACITY: usize = 5_000;
/// Approximate JSON bytes the buffer may hold.
pub const CAPACITY_BYTES: usize = 8 * 1024 * 1024;
/// Approximate JSON bytes one answer may carry.
pub const RESPONSE_BYTES: usize = 2 * 1024 * 1024;
/// Bytes of a line beyond its message and payload (id, gateway, ts, field names).
const LINE_OVERHEAD: usize = 128;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LogLine {
    pub id: u64,
    pub gateway_id: Option<GatewayId>,
    /// Unix milliseconds.
    pub ts: i64,
    pub level: Option<String>,
    pub session: Option<String>,
    pub message: Option<String>,
    #[schema(value_type = Object)]
    pub payload: Value,
}

impl LogLine {
    /// The line a `log` event is.
    pub fn of(e: &gateway_supervisor_actors::events::Event) -> LogLine {
        let field = |k: &str| e.payload.get(k).and_then(Value::as_str);
        LogLine {
            id: e.id,
            gateway_id: e.gateway_id,
            ts: e.ts,
            level: bounded::opt_text(field("level"), bounded::SHORT),
            session: field("session")
                .or_else(|| field("sessionKey"))
                .and_then(bounded::identifier)
                .map(str::to_owned),
            message: bounded::opt_text(field("message").or_else(|| field("msg")), bounded::MESSAGE),
            payload: e.payload.clone(),
        }
    }

    fn size(&self) -> usize {
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        LINE_OVERHEAD
            + text(&self.level)
            + text(&self.session)
            + text(&self.message)
            + bounded::json_size(&self.payload)
    }
}

#[derive(Default)]
struct Lines {
    /// Each line with its size.
    lines: VecDeque<(LogLine, usize)>,
    bytes: usize,
}

#[derive(Clone, Default)]
pub struct LogBuffer {
    inner: Arc<Mutex<Lines>>,
}

/// Which lines a reader wants; every filter given must match.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub gateway_id: Option<GatewayId>,
    pub session: Option<String>,
    pub level: Option<String>,
    /// Lower-case text the message must contain (case-insensitively).
    pub text: Option<String>,
    /// Only lines of these gateways (a scoped key's; `None`: every line, the daemon's own
    /// included).
    pub within: Option<gateway_supervisor_actors::messages::Within>,
}

impl LogFilter {
    pub fn matches(&self, l: &LogLine) -> bool {
        self.gateway_id.is_none_or(|g| l.gateway_id == Some(g))
            && self
                .within
                .as_ref()
                .is_none_or(|w| l.gateway_id.is_some_and(|g| w.holds(g)))
            && self
                .session
                .as_deref()
                .is_none_or(|s| l.session.as_deref() == Some(s))
            && self
                .level
                .as_deref()
                .is_none_or(|v| l.level.as_deref() == Some(v))
            && self.text.as_deref().is_none_or(|t| {
                l.message
                    .as_deref()
                    .is_some_and(|m| m.to_lowercase().contains(t))
            })
    }
}

/// An answer: the newest matching lines (oldest first) and whether the byte cap left some out.
pub struct LogQueryResult {
    pub lines: Vec<LogLine>,
    pub truncated: bool,
}

impl LogBuffer {
    pub fn push(&self, line: LogLine) {
        let size = line.size();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        while inner.lines.len() == CAPACITY || inner.bytes + size > CAPACITY_BYTES {
            let Some((_, dropped)) = inner.lines.pop_front() else {
                break;
            };
            inner.bytes -= dropped;
        }
        inner.lines.push_back((line, size));
        inner.bytes += size;
    }

    /// Bytes held (approximate JSON size).
    pub fn bytes(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }

    /// Newest last; the filters combine; at most [`RESPONSE_BYTES`].
    pub fn query(&self, filter: &LogFilter, limit: usize) -> LogQueryResult {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut budget = RESPONSE_BYTES;
        let mut truncated = false;
        let mut out = Vec::new();
        for (line, size) in inner
            .lines
            .iter()
            .rev()
            .filter(|(l, _)| filter.matches(l))
            .take(limit)
        {
            if *size > budget {
                truncated = true;
                break;
            }
            budget -= size;
            out.push(line.clone());
        }
        out.reverse();
        LogQueryResult {
            lines: out,
            truncated,
        }
    }

    /// Fills the buffer from the bus's `log` events until the bus closes.
    pub async fn follow(self, bus: EventBus) {
        let (_, mut rx) = bus.subscribe_after(None);
        loop {
            match rx.recv().await {
                Ok(e) if e.kind == EventKind::Log => self.push(LogLine::of(&e)),
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: u64, gw: i64, level: &str) -> LogLine {
        LogLine {
            id,
            gateway_id: Some(GatewayId(gw)),
            ts: 0,
            level: Some(level.into()),
            session: None,
            message: None,
            payload: Value::Null,
        }
    }

    #[test]
    fn bounded_and_filtered() {
        let b = LogBuffer::default();
        for i in 0..(CAPACITY as u64 + 10) {
            b.push(line(
                i,
                (i % 2) as i64,
                if i % 3 == 0 { "error" } else { "info" },
            ));
        }
        let all = b.query(&LogFilter::default(), usize::MAX).lines;
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(all[0].id, 10);
        let errors = LogFilter {
            gateway_id: Some(GatewayId(1)),
            level: Some("error".into()),
            ..LogFilter::default()
        };
        let last = b.query(&errors, 2).lines;
        assert_eq!(last.len(), 2);
        assert!(
            last.iter()
                .all(|l| l.gateway_id == Some(GatewayId(1)) && l.level.as_deref() == Some("error"))
        );
        assert!(last[0].id < last[1].id);
    }

    #[test]
    fn text_matches_the_message_case_insensitively() {
        let b = LogBuffer::default();
        for (i, m) in ["Canvas host mounted", "heartbeat: disabled"]
            .iter()
            .enumerate()
        {
            b.push(LogLine {
                message: Some((*m).into()),
                ..line(i as u64, 1, "info")
            });
        }
        let canvas = LogFilter {
            text: Some("canvas".into()),
            ..LogFilter::default()
        };
        let found = b.query(&canvas, 10).lines;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].message.as_deref(), Some("Canvas host mounted"));
    }

    #[test]
    fn bounded_by_bytes_and_answers_are_capped() {
        let b = LogBuffer::default();
        let big = |id| LogLine {
            message: Some("m".repeat(bounded::MESSAGE)),
            payload: serde_json::json!({"message": "p".repeat(12 * 1024)}),
            ..line(id, 1, "info")
        };
        for i in 0..5_000 {
            b.push(big(i));
        }
        assert!(b.bytes() <= CAPACITY_BYTES, "{}", b.bytes());
        let answer = b.query(&LogFilter::default(), CAPACITY);
        assert!(answer.truncated);
        let bytes = serde_json::to_string(&answer.lines).unwrap().len();
        assert!(bytes <= RESPONSE_BYTES, "{bytes}");
        // The newest line is always in the answer.
        assert_eq!(answer.lines.last().unwrap().id, 4_999);
        let small = b.query(&LogFilter::default(), 3);
        assert!(!small.truncated);
        assert_eq!(small.lines.len(), 3);
    }
}
