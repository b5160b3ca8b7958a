//! What a gateway's answers mean for a spawn, as pure readers: the start answer (run id and
//! session), an `agent.wait` answer, a seed `spawn_result` event, and the reply text in a
//! `chat.history`. Each is tested against the shapes real gateways send.

use serde_json::{Value, json};

use crate::domain::SpawnStatus;

/// How a spawn ended: its status, what the gateway reported, and the error text if it failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub status: SpawnStatus,
    pub result: Option<Value>,
    pub error: Option<String>,
}

impl Finished {
    /// A spawn that failed on our side of the gateway (no result from it).
    pub fn failed(error: impl Into<String>) -> Self {
        Finished {
            status: SpawnStatus::Error,
            result: None,
            error: Some(error.into()),
        }
    }
}

/// The run a gateway started: `runId` (OpenClaw `agent`) or `spawnId` (seed `spawn`), and the
/// session it runs in.
pub fn started(payload: &Value) -> (Option<String>, Option<String>) {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let run_id = text(payload.get("runId").or_else(|| payload.get("spawnId")));
    (run_id, text(payload.get("sessionKey")))
}

/// An `agent.wait` answer → `ok | error | aborted | timeout` and the gateway's error text. An
/// aborted run says `error: "aborted"` (the research capture) or only `stopReason: "rpc"` (what
/// 2026.9.6 answered live after `sessions.abort`).
pub fn run_outcome(p: &Value) -> (SpawnStatus, Option<String>) {
    let raw = p.get("status").and_then(Value::as_str).unwrap_or("error");
    let err = p.get("error").and_then(Value::as_str).map(str::to_owned);
    let stop = p.get("stopReason").and_then(Value::as_str);
    let status = match (raw, err.as_deref(), stop) {
        ("ok", _, _) => SpawnStatus::Ok,
        ("timeout", _, _) => SpawnStatus::Timeout,
        (_, Some("aborted"), _) | (_, _, Some("rpc")) => SpawnStatus::Aborted,
        _ => SpawnStatus::Error,
    };
    (status, err)
}

/// Whether a seed `spawn_result` event reports the gateway's spawn `spawn_id`.
pub fn reports(payload: &Value, spawn_id: &str) -> bool {
    payload.get("spawnId").and_then(Value::as_str) == Some(spawn_id)
}

/// A seed `spawn_result` event → the process's end: exit code 0 is `ok`, anything else (or
/// none) an `error` with the gateway's text or the code.
pub fn process_outcome(payload: &Value) -> Finished {
    let code = payload.get("exitCode").and_then(Value::as_i64);
    let result = json!({
        "exit_code": code,
        "stdout": payload.get("stdout"),
        "stderr": payload.get("stderr"),
    });
    if code == Some(0) {
        return Finished {
            status: SpawnStatus::Ok,
            result: Some(result),
            error: None,
        };
    }
    let error = payload
        .get("error")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("exit code {code:?}"));
    Finished {
        status: SpawnStatus::Error,
        result: Some(result),
        error: Some(error),
    }
}

/// The last assistant text of a `chat.history` answer: a string, or the text parts joined.
pub fn last_reply(history: &Value) -> Option<String> {
    let messages = history.get("messages")?.as_array()?;
    let last = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))?;
    match last.get("content")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(""),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_wait_answers_map_to_spawn_statuses() {
        assert_eq!(run_outcome(&json!({"status": "ok"})).0, SpawnStatus::Ok);
        assert_eq!(
            run_outcome(&json!({"status": "timeout"})).0,
            SpawnStatus::Timeout
        );
        assert_eq!(
            run_outcome(&json!({"status": "error", "error": "aborted", "stopReason": "rpc"})).0,
            SpawnStatus::Aborted
        );
        assert_eq!(
            run_outcome(&json!({"status": "error", "stopReason": "rpc"})).0,
            SpawnStatus::Aborted
        );
        let (status, err) = run_outcome(
            &json!({"status": "error", "error": "No route-compatible authentication source is configured for openai."}),
        );
        assert_eq!(status, SpawnStatus::Error);
        assert!(err.unwrap().contains("authentication"));
        assert_eq!(run_outcome(&json!({})).0, SpawnStatus::Error);
    }

    #[test]
    fn a_start_answer_names_the_run_and_its_session() {
        let agent = json!({"runId": "r-1", "sessionKey": "agent:main:x", "status": "accepted"});
        assert_eq!(
            started(&agent),
            (Some("r-1".into()), Some("agent:main:x".into()))
        );
        assert_eq!(
            started(&json!({"spawnId": "s-9"})),
            (Some("s-9".into()), None)
        );
        assert_eq!(started(&json!({"runId": 7})), (None, None));
    }

    #[test]
    fn a_process_ends_ok_only_with_exit_code_zero() {
        let ok = process_outcome(&json!({"spawnId": "s", "exitCode": 0, "stdout": "hi"}));
        assert_eq!(ok.status, SpawnStatus::Ok);
        assert_eq!(ok.error, None);
        assert_eq!(ok.result.unwrap()["stdout"], "hi");
        let failed = process_outcome(&json!({"spawnId": "s", "exitCode": 2}));
        assert_eq!(failed.status, SpawnStatus::Error);
        assert_eq!(failed.error.as_deref(), Some("exit code Some(2)"));
        let told = process_outcome(&json!({"exitCode": 1, "error": "no such file"}));
        assert_eq!(told.error.as_deref(), Some("no such file"));
        assert!(reports(&json!({"spawnId": "s"}), "s"));
        assert!(!reports(&json!({"spawnId": "t"}), "s"));
    }

    #[test]
    fn the_reply_is_the_last_assistant_text() {
        let history = json!({"messages": [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}]},
            {"role": "user", "content": "again"},
        ]});
        assert_eq!(last_reply(&history).as_deref(), Some("hi there"));
        let plain = json!({"messages": [{"role": "assistant", "content": "plain"}]});
        assert_eq!(last_reply(&plain).as_deref(), Some("plain"));
        assert_eq!(
            last_reply(&json!({"messages": [{"role": "user", "content": "x"}]})),
            None
        );
        assert_eq!(last_reply(&json!({})), None);
    }
}
