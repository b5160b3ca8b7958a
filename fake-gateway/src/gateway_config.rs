//! The gateway's own configuration, as openclaw 2026.9.6 answers `config.get` (captured:
//! `testdata/openclaw-captures/2026.9.6/rpc.json`): the file (`raw`, `parsed`), the file over
//! the defaults (`config`, `runtimeConfig`), secrets shown as `__OPENCLAW_REDACTED__`, and
//! three hashes keyed per gateway (`hmac-sha256:v1:…`), so two fakes with one config have
//! different hashes, as two real gateways do. A test edits the config behind the daemon's
//! back with [`crate::FakeGateway::set_config`] (applied at once, as a hot reload does) or
//! [`crate::FakeGateway::save_config_only`] (on disk, waiting for a restart).
//!
//! `config.patch` answers as 2026.9.6 does (captured: `config_patch.json`): a compare-and-set
//! over `baseHash`, `noop` for a patch that changes nothing, `changedPaths` at the reload
//! plan's depth, a change under `gateway.*` that is not hot restarts the process (the reply
//! says so only in `sentinel.payload.stats.requiresRestart`), and 30 writes per 60 s, failed
//! ones included. [`crate::FakeGateway::race_next_config_patch`] makes another writer come
//! between a client's `config.get` and its patch.

use std::collections::VecDeque;
use std::sync::Arc;

use base64::Engine;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::{FakeGateway, Shared, lock};

const REDACTED: &str = "__OPENCLAW_REDACTED__";

pub(crate) struct GatewayConfig {
    /// The file as written.
    pub file: Value,
    /// The file the running process loaded.
    pub applied: Value,
    /// The per-gateway key of the hashes.
    key: [u8; 16],
    /// When each `config.patch` of the last minute came (Unix ms).
    writes: VecDeque<i64>,
    /// A change another writer makes just before the next `config.patch` is checked.
    race: Option<(String, Value)>,
}

/// 2026.9.6's write limit: per method, per client.
const WRITES_PER_WINDOW: usize = 30;
const WINDOW_MS: i64 = 60_000;

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
            writes: VecDeque::new(),
            race: None,
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

    /// `config.patch`: `Ok((payload, restarts))`, or 2026.9.6's error object.
    pub fn patch(&mut self, params: &Value, now_ms: i64) -> Result<(Value, bool), Value> {
        while self.writes.front().is_some_and(|t| now_ms - t >= WINDOW_MS) {
            self.writes.pop_front();
        }
        if self.writes.len() >= WRITES_PER_WINDOW {
            let wait = self
                .writes
                .front()
                .map_or(1, |t| t + WINDOW_MS - now_ms)
                .max(1);
            return Err(json!({"code": "UNAVAILABLE",
                "message": format!("rate limit exceeded for config.patch; retry after {}s", (wait + 999) / 1000),
                "retryable": true, "retryAfterMs": wait,
                "details": {"limit": "30 per 60s", "method": "config.patch"}}));
        }
        self.writes.push_back(now_ms);
        let invalid = |m: String| json!({"code": "INVALID_REQUEST", "message": m});
        let raw = params
            .get("raw")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let patch: Value = serde_json::from_str(raw)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| invalid("config.patch raw must be an object".into()))?;
        if let Some((path, value)) = self.race.take() {
            self.set(&path, value, true);
        }
        let current = self.get();
        match params.get("baseHash").and_then(Value::as_str) {
            None => {
                let first = leaf_paths(&patch, "")
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                return Err(invalid(format!(
                    "config base hash required for {first}; re-run config.get and retry with baseHash"
                )));
            }
            Some(h) if Some(h) != current["hash"].as_str() => {
                return Err(invalid(
                    "config changed since last load; re-run config.get and retry".into(),
                ));
            }
            Some(_) => {}
        }
        let mut next = self.file.clone();
        merge(&mut next, &kept_secrets(&patch, &self.file, ""));
        let path = "/srv/fake-gateway/openclaw.json";
        let leaves = changed_leaves(&self.file, &next, "");
        // Decided on the whole path: a rule may name four segments.
        let restarts = leaves
            .iter()
            .any(|p| crate::reload_plan::reload_of(p) == crate::reload_plan::Reload::Restart);
        let mut changed: Vec<String> = leaves
            .into_iter()
            .map(|p| p.split('.').take(3).collect::<Vec<_>>().join("."))
            .collect();
        changed.sort();
        changed.dedup();
        if changed.is_empty() {
            return Ok((
                json!({"ok": true, "path": path, "noop": true, "changedPaths": []}),
                false,
            ));
        }
        self.file = next;
        if !restarts {
            self.applied = self.file.clone();
        }
        let got = self.get();
        Ok((
            json!({"ok": true, "path": path, "hash": got["hash"], "config": got["config"],
                   "changedPaths": changed,
                   "sentinel": {"persisted": true, "payload": {
                       "kind": "config-patch", "status": "ok", "ts": now_ms,
                       "message": params.get("note").cloned().unwrap_or(Value::Null),
                       "doctorHint": "Recommended follow-up: run openclaw doctor --non-interactive in a terminal or approvals-capable OpenClaw surface.",
                       "stats": {"mode": "config.patch", "requiresRestart": restarts, "root": path}}}}),
            restarts,
        ))
    }

    /// A restart: the process loads the file.
    pub fn load(&mut self) {
        self.applied = self.file.clone();
    }

    /// The value at the dotted `path` of the running config (defaults included).
    pub fn value(&self, path: &str) -> Option<Value> {
        let runtime = Self::runtime(&self.applied);
        path.split('.')
            .try_fold(&runtime, |v, k| v.as_object()?.get(k))
            .cloned()
    }
}

/// The dotted paths of `v`'s leaves.
fn leaf_paths(v: &Value, at: &str) -> Vec<String> {
    match v.as_object() {
        Some(o) if !o.is_empty() => o
            .iter()
            .flat_map(|(k, v)| leaf_paths(v, &join(at, k)))
            .collect(),
        _ => vec![at.to_owned()],
    }
}

fn join(at: &str, k: &str) -> String {
    if at.is_empty() {
        k.to_owned()
    } else {
        format!("{at}.{k}")
    }
}

/// The patch with each redaction marker replaced by the value `file` holds there (2026.9.6
/// restores redacted values on write).
fn kept_secrets(patch: &Value, file: &Value, at: &str) -> Value {
    match patch {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| {
                    let held = file.get(k).unwrap_or(&Value::Null);
                    (k.clone(), kept_secrets(v, held, &join(at, k)))
                })
                .collect(),
        ),
        Value::String(s) if s == REDACTED => file.clone(),
        other => other.clone(),
    }
}

/// The leaves that differ between `a` and `b`.
fn changed_leaves(a: &Value, b: &Value, at: &str) -> Vec<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .flat_map(|k| {
                    changed_leaves(
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        &join(at, k),
                    )
                })
                .collect()
        }
        (x, y) if x == y => Vec::new(),
        // A subtree added or removed: its leaves changed (2026.9.6 names them, not the root).
        (o @ Value::Object(_), _) | (_, o @ Value::Object(_)) => leaf_paths(o, at),
        _ => vec![at.to_owned()],
    }
}

/// `config.patch`, as 2026.9.6 answers it; a change that needs a restart restarts the "process"
/// once the answer is out.
pub(crate) fn config_patch(
    shared: &Arc<Shared>,
    params: &Map<String, Value>,
) -> Result<Value, Value> {
    let params = &Value::Object(params.clone());
    let now = crate::now_ms() as i64;
    let (payload, restarts) = shared.with_config(|c| c.patch(params, now))?;
    // Every operator connection hears of a write (captured), though `features.events` does not
    // list the event.
    if payload.get("noop").and_then(Value::as_bool) != Some(true) {
        shared.broadcast(
            "config.changed",
            json!({"hash": payload["hash"], "path": payload["path"], "ts": now}),
        );
    }
    // `gateway.auth.token` is hot in 2026.9.6 when the mode is unchanged: the new token is in
    // force at once and every socket on the old one is closed with 4001 `gateway auth
    // changed` (captured: `token_rotation_watch.json`).
    if payload.get("noop").and_then(Value::as_bool) != Some(true) {
        let token = shared.with_config(|c| c.value("gateway.auth.token"));
        if let Some(Value::String(token)) = token {
            let changed = lock(&shared.cfg).token.as_deref() != Some(token.as_str());
            if changed {
                lock(&shared.cfg).token = Some(token);
                // Answered first, then the sockets on the old token closed (those open now:
                // one opened on the new token meanwhile stays).
                let old: Vec<u64> = lock(&shared.conns)
                    .iter()
                    .filter(|(_, c)| c.shared_token)
                    .map(|(id, _)| *id)
                    .collect();
                let closing = shared.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(crate::lifecycle::RESTART_SIGNAL_DELAY).await;
                    for (_, c) in lock(&closing.conns)
                        .iter()
                        .filter(|(id, _)| old.contains(id))
                    {
                        let _ =
                            c.tx.send(crate::Ctl::Close(4001, "gateway auth changed".into()));
                    }
                });
            }
        }
    }
    if restarts {
        let down = lock(&shared.cfg).restart_down;
        let restarting = shared.clone();
        tokio::spawn(async move {
            // Answered first, then the restart, as `gateway.restart.request` does.
            tokio::time::sleep(crate::lifecycle::RESTART_SIGNAL_DELAY).await;
            restarting.restart(down);
        });
    }
    Ok(payload)
}

impl FakeGateway {
    /// Sets the dotted `path` of the gateway's config file to `value` (`null` removes it),
    /// applied at once — an operator's edit on the gateway itself, hot-reloaded.
    pub fn set_config(&self, path: &str, value: Value) {
        self.shared.with_config(|c| c.set(path, value, true));
    }

    /// As [`Self::set_config`], saved to the file but not applied (a change that waits for a
    /// restart: `configRevisionHash` is no longer `appliedConfigHash`).
    pub fn save_config_only(&self, path: &str, value: Value) {
        self.shared.with_config(|c| c.set(path, value, false));
    }

    /// The value at the dotted `path` of the config the gateway runs (defaults included).
    pub fn config_value(&self, path: &str) -> Option<Value> {
        self.shared.with_config(|c| c.value(path))
    }

    /// Another writer sets `path` to `value` just before the next `config.patch` is checked:
    /// the client's `baseHash` (read before) is stale.
    pub fn race_next_config_patch(&self, path: &str, value: Value) {
        self.shared
            .with_config(|c| c.race = Some((path.to_owned(), value)));
    }

    /// How many `config.patch` calls came in the last minute.
    pub fn config_writes(&self) -> usize {
        let now = crate::now_ms() as i64;
        self.shared
            .with_config(|c| c.writes.iter().filter(|t| now - **t < WINDOW_MS).count())
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

    fn captured_patches() -> Vec<Value> {
        let text = include_str!("../../testdata/openclaw-captures/2026.9.6/config_patch.json");
        let capture: Value = serde_json::from_str(text).expect("the capture parses");
        capture["results"].as_array().expect("results").clone()
    }

    fn answer(r: Result<(Value, bool), Value>) -> Value {
        match r {
            Ok((payload, _)) => json!({"ok": true, "payload": payload}),
            Err(e) => json!({"ok": false, "error": e}),
        }
    }

    /// The real answer with the parts that name the machine or the moment taken out.
    fn shape(mut v: Value) -> Value {
        if let Some(p) = v.get_mut("payload").and_then(Value::as_object_mut) {
            for k in ["config", "hash", "path"] {
                p.remove(k);
            }
            if let Some(sp) = p.get_mut("sentinel").and_then(|s| s.get_mut("payload")) {
                sp["ts"] = json!(0);
                sp["message"] = json!(null);
                sp["stats"]["root"] = json!("");
            }
        }
        v
    }

    #[test]
    fn config_patch_answers_what_2026_9_6_answers() {
        let real = captured_patches();
        let by_what = |w: &str| {
            real.iter()
                .find(|r| r["what"].as_str().is_some_and(|x| x.starts_with(w)))
                .unwrap_or_else(|| panic!("captured: {w}"))["response"]
                .clone()
        };
        let mut c = GatewayConfig::new(20000, Some("t0ken"));
        let hot = json!({"raw": "{\"gateway\":{\"http\":{\"endpoints\":{\"chatCompletions\":{\"enabled\":true}}}}}"});
        let with_hash = |c: &GatewayConfig, mut p: Value| {
            p["baseHash"] = c.get()["hash"].clone();
            p
        };
        let stale = c.get()["hash"].clone();
        let first = c.patch(&with_hash(&c, hot.clone()), 1_000);
        assert!(!first.as_ref().unwrap().1, "a hot change does not restart");
        assert_eq!(shape(answer(first)), shape(by_what("a hot change")));
        assert_eq!(
            c.value("gateway.http.endpoints.chatCompletions.enabled"),
            Some(json!(true))
        );
        let again = c.patch(&with_hash(&c, hot.clone()), 2_000);
        assert_eq!(
            shape(answer(again)),
            shape(by_what("the same change again"))
        );
        let mut late = json!({"raw": "{\"agents\":{\"defaults\":{\"maxConcurrent\":7}}}"});
        late["baseHash"] = stale;
        assert_eq!(answer(c.patch(&late, 3_000)), by_what("a stale baseHash"));
        let none = json!({"raw": "{\"agents\":{\"defaults\":{\"maxConcurrent\":7}}}"});
        assert_eq!(answer(c.patch(&none, 4_000)), by_what("no baseHash"));

        let mut fresh = GatewayConfig::new(20001, Some("t0ken"));
        let base = json!({"raw": "{\"gateway\":{\"controlUi\":{\"basePath\":\"/ui\"}}}"});
        let restart = fresh.patch(&with_hash(&fresh, base), 1_000);
        assert!(restart.as_ref().unwrap().1, "basePath restarts the gateway");
        assert_eq!(
            shape(answer(restart)),
            shape(by_what("a change that needs a restart"))
        );
        assert_ne!(
            fresh.get()["configRevisionHash"],
            fresh.get()["appliedConfigHash"],
            "saved, not applied until the restart"
        );
        fresh.load();
        assert_eq!(
            fresh.value("gateway.controlUi.basePath"),
            Some(json!("/ui"))
        );
    }

    #[test]
    fn the_thirty_first_write_in_a_minute_is_refused_as_2026_9_6_refuses_it() {
        let limited = captured_patches()
            .into_iter()
            .find(|r| r["response"]["error"]["code"] == "UNAVAILABLE")
            .expect("a captured refusal")["response"]["error"]
            .clone();
        let mut c = GatewayConfig::new(20000, None);
        for i in 0..30 {
            let mut p = json!({"raw": format!("{{\"agents\":{{\"defaults\":{{\"maxConcurrent\":{i}}}}}}}")});
            p["baseHash"] = c.get()["hash"].clone();
            assert!(c.patch(&p, 1_000 + i).is_ok(), "write {i}");
        }
        let mut p = json!({"raw": "{\"agents\":{\"defaults\":{\"maxConcurrent\":99}}}"});
        p["baseHash"] = c.get()["hash"].clone();
        let refused = c.patch(&p, 13_000).unwrap_err();
        assert_eq!(refused["details"], limited["details"]);
        assert_eq!(refused["retryable"], true);
        assert_eq!(refused["retryAfterMs"], 48_000);
        assert_eq!(
            refused["message"],
            "rate limit exceeded for config.patch; retry after 48s"
        );
        assert!(
            c.patch(&p, 61_000).is_ok(),
            "the first write left the window"
        );
    }
}
