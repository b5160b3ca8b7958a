//! The 2026.9 fleet-facing methods beyond the core: `logs.tail` (the file log read by cursor),
//! `usage.cost` (daily usage per agent) and the `session.tool` events of a run inside a long
//! tool call — each shaped as 2026.9.6 shapes it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};

use crate::params::str_param;
use crate::{FakeGateway, Shared, lock, now_ms, random_id};

/// `logs.tail` as 2026.9.6 reads its file log: a byte cursor; from the tail (`maxBytes`, 250 kB
/// by default, at most 1 MB) without one, or when the cursor is past the end (`reset`) or too far
/// behind (`reset`, `truncated`); a partial first line dropped; at most `limit` lines (500, at
/// most 5,000), the newest, `truncated` when more.
pub(crate) fn logs_tail(shared: &Shared, params: &Map<String, Value>) -> Value {
    let lines = lock(&shared.log_file);
    let size: u64 = lines.iter().map(|l| l.len() as u64 + 1).sum();
    let max_bytes = params
        .get("maxBytes")
        .and_then(Value::as_u64)
        .unwrap_or(250_000)
        .clamp(1, 1_000_000);
    let limit = params
        .get("limit")
        .and_then(Value::as_u64)
        .unwrap_or(500)
        .clamp(1, 5000) as usize;
    let cursor = params.get("cursor").and_then(Value::as_u64);
    let (mut reset, mut truncated) = (false, false);
    let start = match cursor {
        Some(c) if c > size => {
            reset = true;
            truncated = size > max_bytes;
            size.saturating_sub(max_bytes)
        }
        Some(c) if size - c > max_bytes => {
            (reset, truncated) = (true, true);
            size - max_bytes
        }
        Some(c) => c,
        None => {
            truncated = size > max_bytes;
            size.saturating_sub(max_bytes)
        }
    };
    let mut offset = 0u64;
    let mut selected: Vec<&String> = Vec::new();
    for l in lines.iter() {
        // Only whole lines that begin at or after the start.
        if offset >= start {
            selected.push(l);
        }
        offset += l.len() as u64 + 1;
    }
    if selected.len() > limit {
        truncated = true;
        selected.drain(..selected.len() - limit);
    }
    json!({"file": "/tmp/openclaw/openclaw.log", "cursor": size, "size": size, "lines": selected,
           "truncated": truncated, "reset": reset})
}

/// `usage.cost` as 2026.9.6 shapes it (`finishCostUsageSummary`): one agent (`agentId`, default
/// the first), the last `days` (default 30) UTC days, every day present, zero when unused.
pub(crate) fn usage_cost(shared: &Shared, params: &Map<String, Value>) -> Value {
    let agent = str_param(params, "agentId")
        .map(str::to_owned)
        .or_else(|| lock(&shared.cfg).agents.first().cloned())
        .unwrap_or_else(|| "main".into());
    let days = params
        .get("days")
        .and_then(Value::as_u64)
        .unwrap_or(30)
        .clamp(1, 366);
    let usage = lock(&shared.usage);
    let now = std::time::SystemTime::now();
    let mut daily = Vec::new();
    let mut totals = (0u64, 0u64, 0f64);
    for back in (0..days).rev() {
        let t = now - Duration::from_secs(back * 86_400);
        let day = humantime::format_rfc3339_seconds(t).to_string()[..10].to_owned();
        let (input, output, cost) = usage
            .get(&(agent.clone(), day.clone()))
            .copied()
            .unwrap_or_default();
        totals = (totals.0 + input, totals.1 + output, totals.2 + cost);
        daily.push(
            json!({"date": day, "input": input, "output": output, "cacheRead": 0, "cacheWrite": 0,
            "totalTokens": input + output, "totalCost": cost, "inputCost": cost, "outputCost": 0,
            "cacheReadCost": 0, "cacheWriteCost": 0, "missingCostEntries": 0}),
        );
    }
    json!({"updatedAt": now_ms(), "days": days, "daily": daily,
           "totals": {"input": totals.0, "output": totals.1, "cacheRead": 0, "cacheWrite": 0,
                      "totalTokens": totals.0 + totals.1, "totalCost": totals.2},
           "cacheStatus": {"status": "fresh", "cachedFiles": 1, "pendingFiles": 0, "staleFiles": 0}})
}

/// A run inside a long tool call, as 2026.9.6 tells session subscribers: `session.tool` with
/// `phase: "start"`, then an `update` every 2 s (an exec's output) until the run ends.
pub(crate) fn long_tool_call(
    shared: &Arc<Shared>,
    run_id: &str,
    session_key: &str,
    agent_id: &str,
) {
    let call = format!("call_{}", &random_id()[..8]);
    let (session_key, agent_id) = (session_key.to_owned(), agent_id.to_owned());
    let event = move |phase: &str, seq: u64, run_id: &str| {
        json!({"runId": run_id, "stream": "tool", "seq": seq, "ts": now_ms(), "sessionKey": session_key, "agentId": agent_id,
               "data": {"phase": phase, "name": "exec", "toolCallId": call}})
    };
    shared.broadcast("session.tool", event("start", 2, run_id));
    let (shared, run_id) = (shared.clone(), run_id.to_owned());
    tokio::spawn(async move {
        for seq in 3.. {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let running = lock(&shared.runs)
                .get(&run_id)
                .is_some_and(|r| r.done.borrow().is_none());
            if !running {
                return;
            }
            shared.broadcast("session.tool", event("update", seq, &run_id));
        }
    });
}

/// What a test does to the gateway's file log and update campaign.
impl FakeGateway {
    /// Appends a line to the gateway's file log as 2026.9.6 writes it (tslog JSON: the
    /// subsystem as argument 0 and `_meta.name`, the message as argument 1, the level in
    /// `_meta.logLevelName`).
    pub fn log(&self, level: &str, subsystem: &str, message: &str) {
        let name = serde_json::json!({"subsystem": subsystem}).to_string();
        let now = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let line = serde_json::json!({
            "0": name, "1": message,
            "_meta": {"runtime": "node", "runtimeVersion": "24.21.0", "hostname": "unknown", "name": name,
                      "parentNames": ["openclaw"], "date": now, "logLevelId": 3,
                      "logLevelName": level.to_ascii_uppercase()},
            "time": now,
        });
        self.write_log(&line.to_string());
    }

    /// Appends one raw line to the gateway's file log (anything: a hostile gateway's too).
    pub fn write_log(&self, raw: &str) {
        lock(&self.shared.log_file).push(raw.to_owned());
    }

    /// An automatic update is scheduled (what `update.hold` holds).
    pub fn schedule_update(&self) {
        *lock(&self.shared.update_campaign) = Some(false);
    }

    /// Whether its update campaign is held.
    pub fn update_held(&self) -> bool {
        *lock(&self.shared.update_campaign) == Some(true)
    }
}
