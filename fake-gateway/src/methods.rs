//! Methods after `hello-ok`. Params objects are closed, as on the real gateway; unknown methods
//! and bad params get the real error codes.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::fleet_methods::{logs_tail, long_tool_call, usage_cost};
use crate::lifecycle::{
    SUSPEND_CONTROL_METHODS, finish_run, restart_request, suspend_prepare, suspend_resume,
    suspend_status,
};
use crate::params::{closed, str_param};
use crate::{Ctl, Run, Session, Shared, lock, now_ms, random_id};

const CORE_METHODS: [&str; 19] = [
    "chat.history",
    "gateway.suspend.prepare",
    "gateway.suspend.status",
    "gateway.suspend.resume",
    "gateway.restart.request",
    "health",
    "logs.tail",
    "status",
    "usage.cost",
    "sessions.list",
    "sessions.subscribe",
    "sessions.abort",
    "sessions.reset",
    "agents.list",
    "agent",
    "agent.wait",
    "chat.abort",
    "system-presence",
    "gateway.identity.get",
];
const SEED_METHODS: [&str; 2] = ["spawn", "control"];
pub(crate) const EVENTS: [&str; 15] = [
    "connect.challenge",
    "tick",
    "health",
    "shutdown",
    "agent",
    "chat",
    "sessions.changed",
    "session.tool",
    "agent.status",
    "log",
    "spawn_result",
    "exec.approval.requested",
    "exec.approval.resolved",
    "plugin.approval.requested",
    "plugin.approval.resolved",
];

pub(crate) fn advertised(shared: &Shared) -> Vec<&'static str> {
    let mut m: Vec<&'static str> = CORE_METHODS.to_vec();
    // 2026.8 brought `update.hold` (and the run ledger); of the releases imitated, protocol 4
    // (2026.9.6) has them.
    if lock(&shared.cfg).protocol >= 4 {
        m.extend([
            "update.hold",
            "update.run",
            "update.status",
            "update.runs.get",
            "update.runs.list",
            "exec.approval.list",
            "plugin.approval.list",
            "approval.get",
            "approval.resolve",
            "config.get",
            "config.patch",
            "cron.status",
            "cron.list",
            "cron.get",
            "cron.runs",
            "cron.add",
            "cron.update",
            "cron.remove",
            "cron.run",
            "system.info",
        ]);
    }
    if lock(&shared.cfg).seed_protocol {
        m.extend(SEED_METHODS);
    }
    m
}

fn error(id: &str, code: &str, message: &str) -> Value {
    json!({"type": "res", "id": id, "ok": false, "error": {"code": code, "message": message}})
}

fn ok(id: &str, payload: Value) -> Value {
    json!({"type": "res", "id": id, "ok": true, "payload": payload})
}

/// A session row as 2026.9.6 projects it during an `agent` run (seen live): `hasActiveRun` is
/// the activity fact and the row's status is `running`; `activeRunIds` is not projected
/// (identities unavailable).
fn session_json(s: &Session) -> Value {
    let active = s.active_run.is_some();
    json!({
        "key": s.key, "sessionId": s.key, "agentId": s.agent, "label": s.label, "kind": "direct",
        "updatedAt": s.updated_at, "status": if active { "running" } else { s.status },
        "totalTokens": s.total_tokens, "model": s.model, "archived": false,
        "hasActiveRun": active,
    })
}

/// Handles one request frame; returns the response (`None` for frames that are not requests).
pub(crate) async fn handle(
    shared: &Arc<Shared>,
    text: &str,
    tx: &mpsc::UnboundedSender<Ctl>,
    client: &crate::approvals::Client,
) -> Option<Value> {
    let frame: Value = serde_json::from_str(text).ok()?;
    if frame.get("type").and_then(Value::as_str) != Some("req") {
        return None;
    }
    let id = frame
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let method = frame
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some(tp) = frame.get("traceparent").and_then(Value::as_str) {
        let mut kept = lock(&shared.traceparents);
        if kept.len() == crate::TRACEPARENTS_KEPT {
            kept.remove(0);
        }
        kept.push((method.to_owned(), tp.to_owned()));
    }
    let empty = Map::new();
    let params = match frame.get("params") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Some(error(
                &id,
                "INVALID_REQUEST",
                &format!("invalid {method} params: at root: must be object"),
            ));
        }
    };
    // As 2026.9.6: while a suspension is held (draining or ready), only the suspension's own
    // methods run; everything else is refused, retryable.
    let suspension = crate::lifecycle::held(shared);
    if !SUSPEND_CONTROL_METHODS.contains(&method)
        && let Some(held) = &suspension
    {
        {
            let mut refused = lock(&shared.refused_suspended);
            if refused.len() >= 1000 {
                refused.remove(0);
            }
            refused.push(method.to_owned());
        }
        return Some(json!({"type": "res", "id": id, "ok": false, "error": {
            "code": "UNAVAILABLE",
            "message": format!("{method} unavailable during gateway suspension"),
            "retryable": true, "retryAfterMs": 1000,
            "details": {"method": method, "reason": "gateway-suspending",
                        "phase": held.phase(crate::lifecycle::active_runs(shared))}}}));
    }
    if lock(&shared.faults).unanswered.iter().any(|m| m == method) {
        return None;
    }
    if method == "config.patch" {
        shared
            .counters
            .config_patches_received
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    let slow = lock(&shared.faults)
        .slow_method
        .clone()
        .filter(|(m, _)| m == method);
    if let Some((_, delay)) = slow {
        tokio::time::sleep(delay).await;
    }
    // The suspension's methods answer with 2026.9.6's own error objects.
    let suspend = match method {
        "gateway.suspend.prepare" => Some(suspend_prepare(shared, params)),
        "gateway.suspend.status" => Some(suspend_status(shared, params)),
        "gateway.suspend.resume" => Some(suspend_resume(shared, params)),
        _ => None,
    };
    let suspend = suspend.or_else(|| {
        (method == "config.patch" && lock(&shared.cfg).protocol >= 4)
            .then(|| crate::gateway_config::config_patch(shared, params))
    });
    let suspend = suspend.or_else(|| {
        (lock(&shared.cfg).protocol >= 4)
            .then(|| crate::approvals::method(shared, method, params, client))
            .flatten()
    });
    // Cron, as 2026.9.6 (its guard taken after the configuration's is let go).
    let protocol4 = lock(&shared.cfg).protocol >= 4;
    let suspend = suspend.or_else(|| {
        protocol4
            .then(|| crate::cron::call(shared, method, params))
            .flatten()
    });
    if let Some(answer) = suspend {
        return Some(match answer {
            Ok(payload) => ok(&id, payload),
            Err(e) => json!({"type": "res", "id": id, "ok": false, "error": e}),
        });
    }
    let seed = lock(&shared.cfg).seed_protocol;
    let result: Result<Value, String> = match method {
        "health" => closed(method, params, &[]).map(|_| shared.health_payload()),
        "config.get" if lock(&shared.cfg).protocol >= 4 => {
            let forced = lock(&shared.faults).config_get_answer.clone();
            closed(method, params, &[])
                .map(|_| forced.unwrap_or_else(|| shared.with_config(|c| c.get())))
        }
        // As captured (`rpc.json`), the host's figures made up and fixed.
        "system.info" if lock(&shared.cfg).protocol >= 4 => closed(method, params, &[]).map(|_| {
            json!({"machineName": "fake", "hostname": "fake", "platform": "linux", "arch": "x64",
                "nodeVersion": "v24.21.0", "pid": std::process::id(),
                "processInstanceId": *lock(&shared.process_instance_id), "uptimeMs": 1000,
                "cpuCount": 2, "memoryTotalBytes": 8_589_934_592u64})
        }),
        "status" => Ok(json!({"runtimeVersion": lock(&shared.cfg).version, "sessions": {"count": lock(&shared.sessions).len()}})),
        "system-presence" => Ok(json!([])),
        "gateway.identity.get" => Ok(json!({"deviceId": "fake-gateway", "publicKey": ""})),
        "sessions.subscribe" => closed(method, params, &[]).map(|_| json!({"subscribed": true})),
        "sessions.list" => closed(
            method,
            params,
            &["limit", "offset", "activeMinutes", "agentId", "search", "archived", "includeLastMessage", "label", "kind", "activeOnly"],
        )
        .map(|_| {
            let agent = str_param(params, "agentId");
            let active_only = params.get("activeOnly").and_then(Value::as_bool) == Some(true);
            let limit = params.get("limit").and_then(Value::as_u64).unwrap_or(100) as usize;
            let sessions = lock(&shared.sessions);
            let matching: Vec<&Session> = sessions
                .values()
                .filter(|s| agent.is_none_or(|a| a == s.agent) && (!active_only || s.active_run.is_some()))
                .collect();
            let page: Vec<Value> = matching.iter().take(limit).map(|s| session_json(s)).collect();
            json!({"ts": now_ms(), "count": page.len(), "totalCount": matching.len(), "limitApplied": limit,
                   "hasMore": matching.len() > page.len(), "sessions": page})
        }),
        "agents.list" => closed(method, params, &[]).map(|_| {
            let cfg = lock(&shared.cfg);
            json!({"defaultId": cfg.agents.first(), "agents": cfg.agents.iter().map(|a| json!({"id": a, "workspace": format!("/fake/{a}")})).collect::<Vec<_>>()})
        }),
        "agent" => agent(shared, params),
        // Answered, not advertised: as 2026.9.6.
        "sessions.usage.timeseries" => closed(method, params, &["key", "agentId"])
            .and_then(|_| usage_timeseries(shared, params)),
        "chat.history" => closed(method, params, &["sessionKey", "limit", "cursor"]).and_then(|_| {
            let key = str_param(params, "sessionKey").ok_or("invalid chat.history params: at root: must have required property 'sessionKey'")?;
            let limit = params.get("limit").and_then(Value::as_u64).unwrap_or(200) as usize;
            let sessions = lock(&shared.sessions);
            let s = sessions.get(key).ok_or_else(|| format!("unknown session: {key}"))?;
            let skip = s.messages.len().saturating_sub(limit);
            Ok(json!({"sessionKey": key, "sessionId": key, "messages": s.messages[skip..]}))
        }),
        "agent.wait" => return Some(agent_wait(shared, &id, params).await),
        "logs.tail" => closed(method, params, &["cursor", "limit", "maxBytes"]).map(|_| logs_tail(shared, params)),
        "usage.cost" => Ok(usage_cost(shared, params)),
        "update.run" if lock(&shared.cfg).protocol >= 4 => crate::update::run(shared, params),
        "update.status" if lock(&shared.cfg).protocol >= 4 => crate::update::status(shared, params),
        "update.runs.get" if lock(&shared.cfg).protocol >= 4 => crate::update::get(shared, params),
        "update.runs.list" if lock(&shared.cfg).protocol >= 4 => crate::update::list(shared, params),
        // As 2026.9.6: `ok` only when a pending campaign was held (none, or already held: false).
        "update.hold" => closed(method, params, &[]).map(|_| {
            shared.counters.update_holds.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut campaign = lock(&shared.update_campaign);
            let held = *campaign == Some(false);
            if held {
                *campaign = Some(true);
            }
            json!({"ok": held})
        }),
        "sessions.abort" => closed(method, params, &["key", "runId", "agentId", "clearQueued"]).map(|_| -> Value {
            shared.counters.aborts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let run = str_param(params, "runId").map(str::to_owned).or_else(|| {
                str_param(params, "key").and_then(|k| lock(&shared.sessions).get(k).and_then(|s| s.active_run.clone()))
            });
            // Wedged: answered as a successful abort, the lane stays held (openclaw #92270).
            if lock(&shared.faults).wedged.is_some() && let Some(r) = run {
                return json!({"ok": true, "abortedRunId": r, "status": "aborted"});
            }
            match run.and_then(|r| finish_run(shared, &r, json!({"status": "error", "error": "aborted", "stopReason": "rpc"})).then_some(r)) {
                Some(r) => json!({"ok": true, "abortedRunId": r, "status": "aborted"}),
                None => json!({"ok": true, "abortedRunId": null, "status": "no-active-run"}),
            }
        }),
        // As 2026.9.6: the run is interrupted and the session starts afresh under its key.
        "sessions.reset" => closed(method, params, &["key", "agentId", "reason", "expectedSessionId"]).and_then(|_| {
            let key = str_param(params, "key").ok_or_else(|| "invalid sessions.reset params: at root: must have required property 'key'".to_owned())?;
            shared.counters.resets.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let run = lock(&shared.sessions).get(key).ok_or_else(|| format!("unknown session: {key}"))?.active_run.clone();
            if let Some(r) = run && lock(&shared.faults).wedged != Some(crate::Wedge::Stuck) {
                finish_run(shared, &r, json!({"status": "error", "error": "aborted", "stopReason": "reset"}));
            }
            let mut sessions = lock(&shared.sessions);
            let s = sessions.get_mut(key).ok_or_else(|| format!("unknown session: {key}"))?;
            s.total_tokens = 0;
            s.messages.clear();
            s.updated_at = now_ms();
            Ok(json!({"ok": true, "key": key, "entry": session_json(s), "resolved": {"modelProvider": "fake", "model": s.model}}))
        }),
        "chat.abort" => closed(method, params, &["sessionKey", "runId", "agentId", "preserveSideRuns"]).map(|_| {
            let run = str_param(params, "sessionKey").and_then(|k| lock(&shared.sessions).get(k).and_then(|s| s.active_run.clone()));
            let aborted = run
                .as_deref()
                .is_some_and(|r| finish_run(shared, r, json!({"status": "error", "error": "aborted", "stopReason": "rpc"})));
            json!({"ok": true, "aborted": aborted, "runIds": if aborted { vec![run] } else { vec![] }})
        }),
        "gateway.restart.request" => restart_request(shared, params),
        "spawn" if seed => spawn(shared, params, tx),
        "control" if seed => control(shared, params),
        other => Err(format!("unknown method: {other}")),
    };
    Some(match result {
        Ok(payload) => ok(&id, payload),
        Err(message) => error(&id, "INVALID_REQUEST", &message),
    })
}

fn agent(shared: &Arc<Shared>, p: &Map<String, Value>) -> Result<Value, String> {
    closed(
        "agent",
        p,
        &[
            "message",
            "idempotencyKey",
            "agentId",
            "sessionKey",
            "sessionId",
            "model",
            "provider",
            "timeout",
            "deliver",
            "label",
        ],
    )?;
    let message = str_param(p, "message")
        .ok_or("invalid agent params: at root: must have required property 'message'")?;
    let key = str_param(p, "idempotencyKey")
        .ok_or("invalid agent params: at root: must have required property 'idempotencyKey'")?;
    let agent_id = str_param(p, "agentId")
        .map(str::to_owned)
        .unwrap_or_else(|| {
            lock(&shared.cfg)
                .agents
                .first()
                .cloned()
                .unwrap_or_else(|| "main".into())
        });
    let run_id = key.to_owned();
    // Same idempotency key, same run: never two.
    if let Some(run) = lock(&shared.runs).get(&run_id) {
        return Ok(
            json!({"runId": run_id, "sessionKey": run.session_key, "agentId": agent_id, "status": "accepted", "acceptedAt": now_ms()}),
        );
    }
    let session_key = str_param(p, "sessionKey")
        .map(str::to_owned)
        .unwrap_or_else(|| format!("agent:{agent_id}:dashboard:{}", random_id()));
    {
        let mut sessions = lock(&shared.sessions);
        let s = sessions
            .entry(session_key.clone())
            .or_insert_with(|| Session {
                key: session_key.clone(),
                agent: agent_id.clone(),
                label: str_param(p, "label").map(str::to_owned),
                status: "active",
                total_tokens: 0,
                updated_at: now_ms(),
                model: str_param(p, "model").unwrap_or("fake/model").to_owned(),
                active_run: None,
                messages: Vec::new(),
                usage_points: Vec::new(),
            });
        s.messages.push(json!({"role": "user", "content": [{"type": "text", "text": message}], "timestamp": now_ms()}));
        s.active_run = Some(run_id.clone());
        s.status = "active";
        s.updated_at = now_ms();
    }
    let (done, _) = tokio::sync::watch::channel(None);
    lock(&shared.runs).insert(
        run_id.clone(),
        Run {
            session_key: session_key.clone(),
            done,
        },
    );
    shared.broadcast("sessions.changed", json!({"sessionKey": session_key, "agentId": agent_id, "reason": "agent.run.started", "runId": run_id}));
    shared.broadcast("agent", json!({"runId": run_id, "sessionKey": session_key, "stream": "lifecycle", "data": {"phase": "start", "startedAt": now_ms()}}));
    let duration = if message.contains("SLOW") || message.contains("TOOL") {
        Duration::from_secs(3600)
    } else {
        lock(&shared.cfg).run_duration
    };
    if message.contains("TOOL") {
        long_tool_call(shared, &run_id, &session_key, &agent_id);
    }
    let reply = format!("echo: {message}");
    let (shared2, run2) = (shared.clone(), run_id.clone());
    tokio::spawn(async move {
        tokio::time::sleep(duration).await;
        shared2.broadcast(
            "agent",
            json!({"runId": run2, "stream": "assistant", "data": {"text": reply, "delta": reply}}),
        );
        finish_run(&shared2, &run2, json!({"status": "ok", "reply": reply}));
    });
    Ok(
        json!({"runId": run_id, "sessionKey": session_key, "agentId": agent_id, "status": "accepted", "acceptedAt": now_ms()}),
    )
}

/// The session's usage points, as 2026.9.6 answers them (`{points, sessionId}`).
fn usage_timeseries(shared: &Shared, p: &Map<String, Value>) -> Result<Value, String> {
    let key = str_param(p, "key").ok_or(
        "invalid sessions.usage.timeseries params: at root: must have required property 'key'",
    )?;
    let sessions = lock(&shared.sessions);
    let s = sessions
        .get(key)
        .ok_or_else(|| format!("session not found: {key}"))?;
    Ok(json!({"points": s.usage_points, "sessionId": format!("fake-{}", s.key)}))
}

async fn agent_wait(shared: &Shared, id: &str, p: &Map<String, Value>) -> Value {
    if let Err(e) = closed("agent.wait", p, &["runId", "timeoutMs"]) {
        return error(id, "INVALID_REQUEST", &e);
    }
    let Some(run_id) = str_param(p, "runId") else {
        return error(
            id,
            "INVALID_REQUEST",
            "invalid agent.wait params: at root: must have required property 'runId'",
        );
    };
    let timeout =
        Duration::from_millis(p.get("timeoutMs").and_then(Value::as_u64).unwrap_or(30_000));
    let rx = lock(&shared.runs).get(run_id).map(|r| r.done.subscribe());
    let Some(mut rx) = rx else {
        return error(id, "INVALID_REQUEST", &format!("unknown runId: {run_id}"));
    };
    let waited = tokio::time::timeout(timeout, rx.wait_for(Option::is_some)).await;
    let mut payload = match waited {
        Ok(Ok(v)) => v.clone().unwrap_or(json!({"status": "error"})),
        _ => json!({"status": "timeout"}),
    };
    payload["runId"] = json!(run_id);
    payload["endedAt"] = json!(now_ms());
    ok(id, payload)
}

/// The seed protocol's process spawn: runs the command, reports `spawn_result`.
fn spawn(
    shared: &Arc<Shared>,
    p: &Map<String, Value>,
    tx: &mpsc::UnboundedSender<Ctl>,
) -> Result<Value, String> {
    closed("spawn", p, &["command", "args", "env", "cwd", "agent"])?;
    let command = str_param(p, "command")
        .ok_or("invalid spawn params: at root: must have required property 'command'")?;
    let args: Vec<String> = p
        .get("args")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let spawn_id = random_id();
    let mut cmd = tokio::process::Command::new(command);
    cmd.args(&args).kill_on_drop(true);
    if let Some(env) = p.get("env").and_then(Value::as_object) {
        for (k, v) in env {
            if let Some(v) = v.as_str() {
                cmd.env(k, v);
            }
        }
    }
    if let Some(cwd) = str_param(p, "cwd") {
        cmd.current_dir(cwd);
    }
    let child = cmd.output();
    let (sid, tx, shared) = (spawn_id.clone(), tx.clone(), shared.clone());
    tokio::spawn(async move {
        let payload = match child.await {
            Ok(out) => {
                json!({"spawnId": sid, "exitCode": out.status.code(), "stdout": String::from_utf8_lossy(&out.stdout), "stderr": String::from_utf8_lossy(&out.stderr)})
            }
            Err(e) => json!({"spawnId": sid, "exitCode": null, "error": e.to_string()}),
        };
        let _ = tx.send(Ctl::Frame(
            json!({"type": "event", "event": "spawn_result", "payload": payload}),
        ));
        shared.broadcast(
            "log",
            json!({"level": "info", "message": format!("spawn {sid} finished")}),
        );
    });
    Ok(json!({"spawnId": spawn_id, "status": "started"}))
}

/// The seed protocol's per-session control.
fn control(shared: &Shared, p: &Map<String, Value>) -> Result<Value, String> {
    closed("control", p, &["sessionKey", "action"])?;
    let key = str_param(p, "sessionKey")
        .ok_or("invalid control params: at root: must have required property 'sessionKey'")?;
    let action = str_param(p, "action")
        .ok_or("invalid control params: at root: must have required property 'action'")?;
    let status = match action {
        "pause" => "paused",
        "resume" => "active",
        "kill" => "completed",
        other => {
            return Err(format!(
                "invalid control params: at /action: unknown action {other}"
            ));
        }
    };
    let run = {
        let mut sessions = lock(&shared.sessions);
        let s = sessions
            .get_mut(key)
            .ok_or_else(|| format!("unknown session: {key}"))?;
        s.status = status;
        s.updated_at = now_ms();
        if action == "kill" {
            s.active_run.take()
        } else {
            None
        }
    };
    if let Some(r) = run {
        finish_run(
            shared,
            &r,
            json!({"status": "error", "error": "aborted", "stopReason": "rpc"}),
        );
    }
    shared.broadcast("agent.status", json!({"sessionKey": key, "status": status}));
    shared.broadcast(
        "log",
        json!({"level": "info", "session": key, "message": format!("session {action}")}),
    );
    Ok(json!({"ok": true, "sessionKey": key, "status": status}))
}
