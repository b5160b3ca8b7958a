//! Sessions and agents counts from what gateways send: `sessions.list`, `agents.list`, the
//! `health` payload (RPC, event, and the hello snapshot).

use serde_json::Value;

/// More sessions or agents than any gateway could hold: a count outside `0..=PLAUSIBLE` is
/// not shown as reported (a gateway claiming ±10¹² sessions is broken or hostile).
pub const PLAUSIBLE: i64 = 10_000_000;

/// A reported count, if it is plausible.
fn plausible(n: i64) -> Option<i64> {
    (0..=PLAUSIBLE).contains(&n).then_some(n)
}

/// `sessions.list` → `totalCount` (all sessions, not just the page), else `count`, else the
/// page length.
pub fn sessions_from_list(payload: &Value) -> Option<i64> {
    payload
        .get("totalCount")
        .and_then(Value::as_i64)
        .or_else(|| payload.get("count").and_then(Value::as_i64))
        .or_else(|| {
            payload
                .get("sessions")
                .and_then(Value::as_array)
                .map(|a| a.len() as i64)
        })
        .and_then(plausible)
}

/// `agents.list` → the number of agents.
pub fn agents_from_list(payload: &Value) -> Option<i64> {
    payload
        .get("agents")
        .and_then(Value::as_array)
        .map(|a| a.len() as i64)
}

/// A health payload → (sessions, agents): `sessions.count` and the `agents` array.
pub fn from_health(health: &Value) -> (Option<i64>, Option<i64>) {
    let sessions = health
        .get("sessions")
        .and_then(|s| s.get("count"))
        .and_then(Value::as_i64)
        .and_then(plausible);
    let agents = health
        .get("agents")
        .and_then(Value::as_array)
        .map(|a| a.len() as i64);
    (sessions, agents)
}

/// Whether a health payload says the gateway is not ok.
pub fn health_not_ok(health: &Value) -> bool {
    health.get("ok").and_then(Value::as_bool) == Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implausible_counts_are_not_shown() {
        use serde_json::json;
        assert_eq!(
            sessions_from_list(&json!({"totalCount": 1_000_000_000_000i64})),
            None
        );
        assert_eq!(sessions_from_list(&json!({"totalCount": -5})), None);
        assert_eq!(sessions_from_list(&json!({"totalCount": 12})), Some(12));
        let (s, _) = from_health(&json!({"sessions": {"count": -1_000_000_000_000i64}}));
        assert_eq!(s, None);
    }

    fn rpc_result(method: &str) -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../testdata/openclaw-captures/2026.9.6/rpc.json"
        );
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["method"] == method)
            .unwrap()["response"]["payload"]
            .clone()
    }

    #[test]
    fn counts_from_real_payloads() {
        assert_eq!(sessions_from_list(&rpc_result("sessions.list")), Some(0));
        assert_eq!(agents_from_list(&rpc_result("agents.list")), Some(1));
        let health = rpc_result("health");
        assert_eq!(from_health(&health), (Some(0), Some(1)));
        assert!(!health_not_ok(&health));
    }

    #[test]
    fn fallbacks() {
        let v: Value = serde_json::json!({"count": 2, "sessions": [1, 2]});
        assert_eq!(sessions_from_list(&v), Some(2));
        let v: Value = serde_json::json!({"sessions": [1, 2, 3]});
        assert_eq!(sessions_from_list(&v), Some(3));
        assert_eq!(agents_from_list(&serde_json::json!({})), None);
        assert!(health_not_ok(&serde_json::json!({"ok": false})));
    }
}
