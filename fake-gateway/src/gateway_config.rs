//! The gateway's own configuration, as openclaw 2026.9.6 answers `config.get` (captured:
//! `testdata/openclaw-captures/2026.9.6/rpc.json`): the file (`raw`, `parsed`), the file over
//! the defaults (`config`, `runtimeConfig`), secrets shown as `__OPENCLAW_REDACTED__`, and
//! three hashes keyed per gateway (`hmac-sha256:v1:…`), so two fakes with one config have
//! different hashes, as two real gateways do. A test edits the config behind the daemon's
//! back with [`crate::FakeGateway::set_config`] (applied at once, as a hot reload does) or
//! [`crate::FakeGateway::save_config_only`] (on disk, waiting for a restart).

use base64::Engine;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

const REDACTED: &str = "__OPENCLAW_REDACTED__";

pub(crate) struct GatewayConfig {
    /// The file as written.
    pub file: Value,
    /// The file the running process loaded.
    pub applied: Value,
    /// The per-gateway key of the hashes.
    key: [u8; 16],
}

/// What 2026.9.6 adds to a fresh file at load (captured).
fn defaults() -> Value {
    json!({
        "agents": {"entries": {"main": {}}, "defaults": {"maxConcurrent": 8,
            "subagents": {"maxConcurrent": 8, "archiveAfterMinutes": 60}, "compaction": {"mode": "safeguard"}}},
        "commands": {"native": "auto", "nativeSkills": "auto", "restart": true},
        "messages": {"ackReactionScope": "group-mentions"}
    })
}

fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    b.remove(k);
                } else {
                    merge(b.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// 2026.9.6's `isSensitiveConfigPath`, for the paths the fake's files hold.
fn secret(path: &str) -> bool {
    let p = path.to_lowercase();
    (p.ends_with("token") && !p.ends_with("maxtokens"))
        || p.contains("password")
        || p.contains("secret")
        || p.contains("apikey")
        || p.contains("api_key")
}

fn redacted(v: &Value, at: &str) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| {
                    let path = if at.is_empty() {
                        k.clone()
                    } else {
                        format!("{at}.{k}")
                    };
                    (k.clone(), redacted(v, &path))
                })
                .collect::<Map<_, _>>(),
        ),
        Value::String(s) if secret(at) && !s.is_empty() => Value::String(REDACTED.into()),
        other => other.clone(),
    }
}

impl GatewayConfig {
    pub fn new(port: u16, token: Option<&str>) -> Self {
        let auth = match token {
            Some(t) => json!({"mode": "token", "token": t}),
            None => json!({"mode": "none"}),
        };
        let file = json!({
            "gateway": {"mode": "local", "port": port, "bind": "loopback", "auth": auth},
            "update": {"checkOnStart": false}
        });
        let mut key = [0u8; 16];
        getrandom::getrandom(&mut key).unwrap_or_default();
        GatewayConfig {
            applied: file.clone(),
            file,
            key,
        }
    }

    fn hash(&self, v: &Value) -> String {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(v.to_string().as_bytes());
        format!(
            "hmac-sha256:v1:{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize())
        )
    }

    fn runtime(of: &Value) -> Value {
        let mut r = defaults();
        merge(&mut r, of);
        r
    }

    /// The answer to `config.get`.
    pub fn get(&self) -> Value {
        let parsed = redacted(&self.file, "");
        let mut source = parsed.clone();
        merge(&mut source, &json!({"agents": {"entries": {"main": {}}}}));
        let runtime = redacted(&Self::runtime(&self.applied), "");
        let raw = serde_json::to_string_pretty(&parsed).unwrap_or_default() + "\n";
        json!({
            "path": "/srv/fake-gateway/openclaw.json",
            "includedPaths": [], "includeProvenance": [],
            "agentRosterIncludeOwned": false, "bindingsIncludeOwned": false,
            "exists": true, "raw": raw, "parsed": parsed,
            "sourceConfig": source, "resolved": source, "valid": true,
            "runtimeConfig": runtime, "config": runtime,
            "hash": self.hash(&Value::String(raw.clone())),
            "issues": [], "warnings": [], "legacyIssues": [],
            "configRevisionHash": self.hash(&Self::runtime(&self.file)),
            "appliedConfigHash": self.hash(&Self::runtime(&self.applied)),
        })
    }

    /// Sets `value` at the dotted `path` of the file (`null` removes it); `apply`: the running
    /// process takes it too.
    pub fn set(&mut self, path: &str, value: Value, apply: bool) {
        let mut patch = value;
        for key in path.rsplit('.') {
            patch = json!({ key: patch });
        }
        merge(&mut self.file, &patch);
        if apply {
            self.applied = self.file.clone();
        }
    }

    /// The value at the dotted `path` of the running config (defaults included).
    pub fn value(&self, path: &str) -> Option<Value> {
        let runtime = Self::runtime(&self.applied);
        path.split('.')
            .try_fold(&runtime, |v, k| v.as_object()?.get(k))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured() -> Value {
        let text = include_str!("../../testdata/openclaw-captures/2026.9.6/rpc.json");
        let capture: Value = serde_json::from_str(text).expect("the capture parses");
        capture["results"]
            .as_array()
            .expect("results")
            .iter()
            .find(|r| r["method"] == "config.get")
            .expect("a config.get")["response"]["payload"]
            .clone()
    }

    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
        k.sort();
        k
    }

    #[test]
    fn config_get_answers_what_2026_9_6_answers() {
        let real = captured();
        let fake = GatewayConfig::new(18789, Some("t0ken")).get();
        assert_eq!(keys(&fake), keys(&real));
        for k in [
            "config",
            "runtimeConfig",
            "parsed",
            "sourceConfig",
            "resolved",
        ] {
            assert_eq!(fake[k], real[k], "{k}: the same file gives the same {k}");
        }
        // `raw` is the file's own text (its layout is whoever wrote it): the same JSON.
        let parsed = |v: &Value| serde_json::from_str::<Value>(v.as_str().unwrap()).unwrap();
        assert_eq!(parsed(&fake["raw"]), parsed(&real["raw"]));
        for k in ["hash", "configRevisionHash", "appliedConfigHash"] {
            assert!(
                fake[k].as_str().unwrap().starts_with("hmac-sha256:v1:"),
                "{k}"
            );
        }
        assert_eq!(fake["configRevisionHash"], fake["appliedConfigHash"]);
        let other = GatewayConfig::new(18789, Some("t0ken")).get();
        assert_ne!(other["hash"], fake["hash"], "keyed per gateway");
    }

    #[test]
    fn a_change_saved_but_not_applied_shows_in_the_hashes_not_the_running_config() {
        let mut c = GatewayConfig::new(18789, None);
        c.set("gateway.bind", json!("lan"), false);
        let got = c.get();
        assert_ne!(got["configRevisionHash"], got["appliedConfigHash"]);
        assert_eq!(got["config"]["gateway"]["bind"], "loopback");
        assert_eq!(got["parsed"]["gateway"]["bind"], "lan");
    }
}
