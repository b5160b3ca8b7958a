//! What a connected gateway said about its runs since the socket opened: per session, when a
//! run last showed a sign of life (an `agent`, `chat`, `session.tool`, `session.observer` or
//! `session.operation` event naming the session) and which tool calls it reports started and
//! not finished. The stuck-session watchdog reads it (docs/design.md, *Stuck-session
//! watchdog*): a session inside a tool call the gateway reports active is not stalled however
//! long the call takes, and a session that speaks is making progress.
//!
//! Bounded: at most [`MAX_SESSIONS`] sessions (the one heard from longest ago goes first) and
//! [`MAX_OPEN_TOOLS`] open tool calls per session (a gateway that starts tools and never ends
//! them cannot grow it). Keys are bounded identifiers; anything else is not recorded. A new
//! socket starts empty: what an earlier connection said about tool calls is not known to be
//! true any more.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::bounded;

/// Sessions remembered per link.
pub const MAX_SESSIONS: usize = 1024;
/// Open tool calls remembered per session.
pub const MAX_OPEN_TOOLS: usize = 16;

/// One session's signs of life.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionActivity {
    /// When (unix ms) the gateway last said something about a run of this session.
    pub last_progress_ms: i64,
    /// Tool calls started and not finished (`toolCallId`s).
    pub open_tools: Vec<String>,
}

impl SessionActivity {
    pub fn in_tool_call(&self) -> bool {
        !self.open_tools.is_empty()
    }
}

#[derive(Debug, Default)]
pub struct Activity {
    /// A B-tree: 24 bytes in every link's task and no allocation while empty (most links,
    /// most of the time), where a hash map took 48 and kept its room after a clear.
    sessions: BTreeMap<String, SessionActivity>,
}

/// The session an event is about, and what it says about tools.
fn session_of(payload: &Value) -> Option<&str> {
    payload
        .get("sessionKey")
        .or_else(|| payload.get("key"))
        .and_then(Value::as_str)
        .and_then(bounded::identifier)
        .filter(|k| k.len() <= bounded::SHORT * 2)
}

impl Activity {
    /// Whether `event` is one this table learns from.
    pub fn listens_to(event: &str) -> bool {
        matches!(
            event,
            "agent" | "chat" | "session.tool" | "session.observer" | "session.operation"
        )
    }

    /// Records what `event` says, heard at `now_ms`. The session whose run it ends, if it
    /// says a run ended (an `agent` lifecycle `end`/`error`, a `chat` `final`/`aborted`/`error`).
    pub fn note(&mut self, event: &str, payload: &Value, now_ms: i64) -> Option<String> {
        if !Self::listens_to(event) {
            return None;
        }
        let key = session_of(payload)?;
        if !self.sessions.contains_key(key) && self.sessions.len() >= MAX_SESSIONS {
            self.forget_oldest();
        }
        let entry = self.sessions.entry(key.to_owned()).or_default();
        entry.last_progress_ms = entry.last_progress_ms.max(now_ms);
        let tool = payload.get("stream").and_then(Value::as_str) == Some("tool");
        if !tool {
            // A run that ended ends its tool calls with it.
            let phase = payload
                .get("data")
                .and_then(|d| d.get("phase"))
                .and_then(Value::as_str);
            let state = payload.get("state").and_then(Value::as_str);
            if matches!(phase, Some("end" | "error"))
                || matches!(state, Some("final" | "aborted" | "error"))
            {
                entry.open_tools.clear();
                return Some(key.to_owned());
            }
            return None;
        }
        let data = payload.get("data");
        let call = data
            .and_then(|d| d.get("toolCallId"))
            .and_then(Value::as_str)
            .and_then(bounded::identifier)
            .map(|c| bounded::text(c, bounded::SHORT));
        let phase = data.and_then(|d| d.get("phase")).and_then(Value::as_str);
        let call = call?;
        match phase {
            Some("start") if !entry.open_tools.contains(&call) => {
                if entry.open_tools.len() >= MAX_OPEN_TOOLS {
                    entry.open_tools.remove(0);
                }
                entry.open_tools.push(call);
            }
            Some("result") => entry.open_tools.retain(|c| *c != call),
            _ => {}
        }
        None
    }

    /// What is known about `key`.
    pub fn get(&self, key: &str) -> Option<&SessionActivity> {
        self.sessions.get(key)
    }

    /// Everything known, for the watchdog.
    pub fn snapshot(&self) -> BTreeMap<String, SessionActivity> {
        self.sessions.clone()
    }

    /// A new socket: nothing the last one said is known to hold.
    pub fn clear(&mut self) {
        self.sessions.clear();
    }

    fn forget_oldest(&mut self) {
        if let Some(oldest) = self
            .sessions
            .iter()
            .min_by_key(|(_, a)| a.last_progress_ms)
            .map(|(k, _)| k.clone())
        {
            self.sessions.remove(&oldest);
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(phase: &str, id: &str) -> Value {
        // As 2026.9.6 sends a tool phase to session subscribers (`session.tool`).
        json!({"runId": "r1", "stream": "tool", "sessionKey": "agent:main:main", "seq": 4,
               "data": {"phase": phase, "name": "exec", "toolCallId": id}})
    }

    #[test]
    fn any_run_event_is_a_sign_of_life() {
        let mut a = Activity::default();
        a.note("agent", &json!({"runId": "r1", "sessionKey": "agent:main:main", "stream": "assistant", "data": {"delta": "x"}}), 10);
        assert_eq!(a.get("agent:main:main").unwrap().last_progress_ms, 10);
        a.note(
            "session.observer",
            &json!({"sessionKey": "agent:main:main", "runId": "r1"}),
            20,
        );
        assert_eq!(a.get("agent:main:main").unwrap().last_progress_ms, 20);
        // Events without a session, or that are not about runs, are not recorded.
        a.note("agent", &json!({"runId": "r2", "stream": "assistant"}), 30);
        a.note("health", &json!({"sessionKey": "agent:main:other"}), 30);
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn a_started_tool_call_is_open_until_its_result() {
        let mut a = Activity::default();
        a.note("session.tool", &tool("start", "call-1"), 10);
        assert!(a.get("agent:main:main").unwrap().in_tool_call());
        a.note("session.tool", &tool("update", "call-1"), 20);
        assert!(a.get("agent:main:main").unwrap().in_tool_call());
        a.note("session.tool", &tool("result", "call-1"), 30);
        assert!(!a.get("agent:main:main").unwrap().in_tool_call());
    }

    #[test]
    fn a_run_that_ends_ends_its_tool_calls() {
        let mut a = Activity::default();
        a.note("agent", &tool("start", "call-1"), 10);
        a.note("agent", &json!({"runId": "r1", "sessionKey": "agent:main:main", "stream": "lifecycle", "data": {"phase": "error", "aborted": true}}), 20);
        assert!(!a.get("agent:main:main").unwrap().in_tool_call());
    }

    #[test]
    fn bounded_in_sessions_and_open_calls() {
        let mut a = Activity::default();
        for i in 0..(MAX_SESSIONS + 10) {
            a.note(
                "agent",
                &json!({"sessionKey": format!("agent:main:s{i}")}),
                i as i64,
            );
        }
        assert_eq!(a.len(), MAX_SESSIONS);
        assert!(a.get("agent:main:s0").is_none(), "the oldest goes first");
        for i in 0..100 {
            a.note("session.tool", &tool("start", &format!("c{i}")), 5000);
        }
        assert_eq!(
            a.get("agent:main:main").unwrap().open_tools.len(),
            MAX_OPEN_TOOLS
        );
        // A key that is not a plausible identifier is not recorded.
        a.note("agent", &json!({"sessionKey": "bad\u{0}key"}), 1);
        assert!(a.get("bad\u{0}key").is_none());
    }
}
