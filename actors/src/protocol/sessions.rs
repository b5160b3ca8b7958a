//! Session entries as the API shows them, parsed from what gateways send (`sessions.list`
//! payloads, seed-protocol `tick` snapshots).
//!
//! `status` (active | paused | completed): a gateway's own `status` field wins where it uses the
//! seed's words (or `running`/`done`-style synonyms); otherwise an archived session is
//! `completed` and any other is `active` (open: it takes new messages). Real OpenClaw 2026.9
//! sessions have no pause; `running` says whether a run is in progress (`hasActiveRun`).

use serde::Serialize;
use serde_json::Value;

use crate::bounded;
use crate::model::GatewayId;

/// Where a session is, in the API's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    /// Open: it takes new messages.
    Active,
    Paused,
    Completed,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Active => "active",
            SessionStatus::Paused => "paused",
            SessionStatus::Completed => "completed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionEntry {
    pub key: String,
    pub agent: Option<String>,
    pub model: Option<String>,
    pub status: SessionStatus,
    pub running: bool,
    #[serde(rename = "totalTokens")]
    pub total_tokens: i64,
    /// Milliseconds, as the gateway reports it.
    #[serde(rename = "updatedAt")]
    pub updated_at: Option<i64>,
    pub gateway_id: GatewayId,
}

/// The most runs kept for a gateway that cannot list them ([`SessionEntry::running`]).
pub const HELD_RUNS_MAX: usize = 64;

impl SessionEntry {
    /// A session this daemon knows has a run going (it started it) though the gateway has not
    /// listed it: its agent read from the key (`agent:<id>:…`, as OpenClaw names sessions).
    pub fn running(key: String, gateway_id: GatewayId, now_ms: i64) -> SessionEntry {
        let agent = key
            .strip_prefix("agent:")
            .and_then(|rest| rest.split(':').next())
            .filter(|a| !a.is_empty())
            .map(|a| crate::bounded::text(a, crate::bounded::SHORT));
        SessionEntry {
            key,
            agent,
            model: None,
            status: SessionStatus::Active,
            running: true,
            total_tokens: 0,
            updated_at: Some(now_ms),
            gateway_id,
        }
    }
}

/// Token totals beyond this are shown as this (no session has used 10¹⁵ tokens).
const MAX_TOKENS: i64 = 1_000_000_000_000_000;

fn status_of(entry: &Value) -> SessionStatus {
    if let Some(s) = entry.get("status").and_then(Value::as_str) {
        match s {
            "paused" | "suspended" => return SessionStatus::Paused,
            "completed" | "done" | "ended" | "aborted" | "failed" | "killed" => {
                return SessionStatus::Completed;
            }
            "active" | "running" | "idle" => return SessionStatus::Active,
            _ => {}
        }
    }
    if entry.get("archived").and_then(Value::as_bool) == Some(true) {
        SessionStatus::Completed
    } else {
        SessionStatus::Active
    }
}

/// What an answer to `sessions.abort` says was done (2026.9.6: `{ok, abortedRunId, status:
/// "aborted"}`, or `status: "no-active-run"` when nothing ran; captured in `runs.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortAnswer {
    /// A run was aborted (or the answer does not say otherwise: the seed's `control`).
    Aborted,
    /// Nothing ran in the session any more.
    NothingRunning,
}

impl AbortAnswer {
    pub fn of(answer: &Value) -> AbortAnswer {
        match answer.get("status").and_then(Value::as_str) {
            Some(status) if status != "aborted" => AbortAnswer::NothingRunning,
            _ => AbortAnswer::Aborted,
        }
    }
}

pub fn parse_entry(
    entry: &Value,
    gateway_id: GatewayId,
    default_model: Option<&str>,
) -> Option<SessionEntry> {
    let key = entry
        .get("key")
        .or_else(|| entry.get("sessionKey"))
        .and_then(Value::as_str)
        .and_then(bounded::identifier)?;
    let running = entry
        .get("hasActiveRun")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        || entry.get("status").and_then(Value::as_str) == Some("running");
    Some(SessionEntry {
        key: key.to_owned(),
        agent: entry
            .get("agentId")
            .or_else(|| entry.get("agent"))
            .and_then(Value::as_str)
            .map(|a| bounded::text(a, bounded::SHORT)),
        model: entry
            .get("model")
            .and_then(Value::as_str)
            .or(default_model)
            .map(|m| bounded::text(m, bounded::SHORT)),
        status: status_of(entry),
        running,
        total_tokens: entry
            .get("totalTokens")
            .and_then(Value::as_i64)
            .or_else(|| {
                entry
                    .get("usage")
                    .and_then(|u| u.get("totalTokens"))
                    .and_then(Value::as_i64)
            })
            .unwrap_or(0)
            .clamp(0, MAX_TOKENS),
        updated_at: entry.get("updatedAt").and_then(Value::as_i64),
        gateway_id,
    })
}

/// A `sessions.list` payload (or a seed `tick` snapshot with a `sessions` array).
pub fn parse_list(payload: &Value, gateway_id: GatewayId) -> Option<Vec<SessionEntry>> {
    let default_model = payload
        .get("defaults")
        .and_then(|d| d.get("model"))
        .and_then(Value::as_str);
    let list = payload.get("sessions")?.as_array()?;
    Some(
        list.iter()
            .filter_map(|e| parse_entry(e, gateway_id, default_model))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_run_the_gateway_has_not_listed_reads_as_running_with_the_agent_of_its_key() {
        let e = SessionEntry::running("agent:main:dashboard:1f2e".into(), GatewayId(3), 7);
        assert_eq!(e.agent.as_deref(), Some("main"));
        assert!(e.running && e.status == SessionStatus::Active);
        assert_eq!((e.gateway_id, e.updated_at), (GatewayId(3), Some(7)));
        assert_eq!(
            SessionEntry::running("odd-key".into(), GatewayId(3), 7).agent,
            None
        );
    }

    #[test]
    fn real_entries_from_the_capture() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/openclaw-captures/2026.9.6/run_lifecycle.json"
        );
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let payload = v["calls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["method"] == "sessions.list")
            .unwrap()["response"]["payload"]
            .clone();
        let sessions = parse_list(&payload, GatewayId(7)).unwrap();
        assert!(!sessions.is_empty());
        let s = &sessions[0];
        assert!(s.key.starts_with("agent:main:"));
        assert_eq!(s.agent.as_deref(), Some("main"));
        assert_eq!(s.model.as_deref(), Some("gpt-6-astra"));
        assert_eq!(s.status, SessionStatus::Active);
        assert!(!s.running);
        assert_eq!(s.gateway_id, GatewayId(7));
        assert!(s.updated_at.unwrap() > 1_700_000_000_000);
    }

    #[test]
    fn status_mapping() {
        let e = |v: Value| parse_entry(&v, GatewayId(1), None).unwrap();
        assert_eq!(
            e(json!({"key": "k", "status": "paused"})).status,
            SessionStatus::Paused
        );
        assert_eq!(
            e(json!({"key": "k", "status": "completed"})).status,
            SessionStatus::Completed
        );
        assert_eq!(
            e(json!({"key": "k", "archived": true})).status,
            SessionStatus::Completed
        );
        assert_eq!(
            e(json!({"key": "k", "hasActiveRun": true})).status,
            SessionStatus::Active
        );
        assert!(e(json!({"key": "k", "hasActiveRun": true})).running);
        assert_eq!(e(json!({"key": "k"})).status, SessionStatus::Active);
        assert_eq!(
            e(json!({"sessionKey": "k2", "usage": {"totalTokens": 12}})).total_tokens,
            12
        );
        assert!(parse_entry(&json!({"nokey": 1}), GatewayId(1), None).is_none());
    }

    #[test]
    fn an_abort_answer_says_whether_a_run_was_aborted() {
        let capture: Value = serde_json::from_str(include_str!(
            "../../../testdata/openclaw-captures/2026.9.6/suspension_drain_abort.json"
        ))
        .unwrap();
        let aborted = &capture["sessions.abort after resume"]["ok"];
        assert_eq!(AbortAnswer::of(aborted), AbortAnswer::Aborted, "{aborted}");
        let nothing = json!({"ok": true, "abortedRunId": null, "status": "no-active-run"});
        assert_eq!(AbortAnswer::of(&nothing), AbortAnswer::NothingRunning);
    }
}
