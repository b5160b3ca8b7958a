//! A bounded buffer of the gateways' `log` events, for `GET /api/logs`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;

use gateway_supervisor_actors::events::EventBus;

pub const CAPACITY: usize = 5_000;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LogLine {
    pub id: u64,
    pub gateway_id: Option<i64>,
    /// Unix milliseconds.
    pub ts: i64,
    pub level: Option<String>,
    pub session: Option<String>,
    pub message: Option<String>,
    #[schema(value_type = Object)]
    pub payload: Value,
}

#[derive(Clone, Default)]
pub struct LogBuffer {
    lines: Arc<Mutex<VecDeque<LogLine>>>,
}

impl LogBuffer {
    pub fn push(&self, line: LogLine) {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() == CAPACITY {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// Newest last; the filters combine.
    pub fn query(
        &self,
        gateway_id: Option<i64>,
        session: Option<&str>,
        level: Option<&str>,
        limit: usize,
    ) -> Vec<LogLine> {
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<LogLine> = lines
            .iter()
            .rev()
            .filter(|l| gateway_id.is_none_or(|g| l.gateway_id == Some(g)))
            .filter(|l| session.is_none_or(|s| l.session.as_deref() == Some(s)))
            .filter(|l| level.is_none_or(|v| l.level.as_deref() == Some(v)))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }

    /// Fills the buffer from the bus's `log` events until the bus closes.
    pub async fn follow(self, bus: EventBus) {
        let (_, mut rx) = bus.subscribe_after(None);
        loop {
            match rx.recv().await {
                Ok(e) if e.kind == "log" => {
                    let text =
                        |k: &str| e.payload.get(k).and_then(Value::as_str).map(str::to_owned);
                    self.push(LogLine {
                        id: e.id,
                        gateway_id: e.gateway_id,
                        ts: e.ts,
                        level: text("level"),
                        session: text("session").or_else(|| text("sessionKey")),
                        message: text("message").or_else(|| text("msg")),
                        payload: e.payload.clone(),
                    });
                }
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
            gateway_id: Some(gw),
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
        let all = b.query(None, None, None, usize::MAX);
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(all[0].id, 10);
        let last = b.query(Some(1), None, Some("error"), 2);
        assert_eq!(last.len(), 2);
        assert!(
            last.iter()
                .all(|l| l.gateway_id == Some(1) && l.level.as_deref() == Some("error"))
        );
        assert!(last[0].id < last[1].id);
    }
}
