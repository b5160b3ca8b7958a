//! 2026.9.6's self-update surface: `update.run`, `update.status`, `update.runs.get` and
//! `update.runs.list`, over a run ledger that survives the fake's restarts (the real one is in
//! the gateway's state database).
//!
//! What `update.run` does depends on how the gateway is installed, which a test chooses with
//! [`Update`]. The default is what a real 2026.9.6 answers in this project's test harness
//! (captured: `testdata/openclaw-captures/2026.9.6/update_run_refused.json`): `ok: false`,
//! the run `skipped` with `container-image-install`. The other modes are the managed-service
//! handoff, which needs a systemd-managed install no test machine here has; their answers
//! follow 2026.9.6's handler (`dist/update-*.mjs`: the `handoff` block, the run's phases,
//! `succeeded`/`rolled-back` and their reasons) and its docs (`cli/update/status-and-history`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::params::closed;
use crate::{Shared, lock, now_ms, random_id};

/// What `update.run` does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Update {
    /// Refused as a real 2026.9.6 in the test harness refuses it (`container-image-install`).
    #[default]
    Refused,
    /// A managed-service handoff that installs `version`, restarts as a new process running
    /// it, and records the run `succeeded`.
    To { version: String },
    /// Installs `version`, which fails its runtime verification: the previous release is
    /// restored (another restart) and the run is `rolled-back`.
    RollsBack { version: String },
    /// The handoff starts, the gateway goes down and never comes back.
    NeverBack,
}

/// How long the handoff takes from acknowledgment to the restart.
const HANDOFF: Duration = Duration::from_millis(400);

fn run_record(run_id: &str, before: &str) -> Value {
    let now = now_ms();
    json!({
        "runId": run_id, "createdAtMs": now, "updatedAtMs": now, "trigger": "api",
        "phase": "requested", "status": "running", "reason": null,
        "origin": {"doctorHint": "Recommended follow-up: run openclaw doctor --non-interactive in a terminal or approvals-capable OpenClaw surface."},
        "target": {"channel": "stable", "kind": "package"},
        "before": {"version": before}, "after": {},
        "steps": [{"step": "requested", "status": "in_progress", "startedAtMs": now}],
        "verification": {"runningVersion": before, "serviceRunning": true, "pid": 1},
        "repair": [], "confirmedAtMs": null, "finishedAtMs": null, "downtimeMs": null,
    })
}

/// Updates run `run_id` in the ledger.
fn record(shared: &Shared, run_id: &str, change: impl FnOnce(&mut Value)) {
    let mut runs = lock(&shared.update_runs);
    if let Some(run) = runs.iter_mut().find(|r| r["runId"] == run_id) {
        change(run);
        run["updatedAtMs"] = json!(now_ms());
    }
}

fn finish(run: &mut Value, status: &str, reason: Option<&str>, after: Option<&str>) {
    let now = now_ms();
    run["status"] = json!(status);
    run["phase"] = json!("finished");
    run["reason"] = json!(reason);
    run["finishedAtMs"] = json!(now);
    if let Some(v) = after {
        run["after"] = json!({"version": v});
        run["verification"]["runningVersion"] = json!(v);
    }
    if status == "succeeded" {
        run["confirmedAtMs"] = json!(now);
    }
    if let Some(steps) = run["steps"].as_array_mut() {
        for s in steps.iter_mut() {
            s["status"] = json!(match status {
                "succeeded" => "completed",
                "skipped" => "skipped",
                _ => "failed",
            });
            s["endedAtMs"] = json!(now);
        }
    }
}

/// `update.run`.
pub(crate) fn run(shared: &Arc<Shared>, params: &Map<String, Value>) -> Result<Value, String> {
    closed(
        "update.run",
        params,
        &[
            "requester",
            "sessionKey",
            "deliveryContext",
            "note",
            "continuationMessage",
            "restartDelayMs",
            "timeoutMs",
            "target",
        ],
    )?;
    let (mode, before) = {
        let cfg = lock(&shared.cfg);
        (cfg.update.clone(), cfg.version.clone())
    };
    let run_id = random_id();
    lock(&shared.update_runs).push(run_record(&run_id, &before));
    let root = "/fake/node_modules/openclaw";
    if mode == Update::Refused {
        let reason = "container-image-install";
        record(shared, &run_id, |r| {
            if let Some(steps) = r["steps"].as_array_mut() {
                steps.push(json!({"step": "installation-inspection", "status": "completed"}));
            }
            finish(r, "skipped", Some(reason), None);
            r["steps"][0]["status"] = json!("skipped");
        });
        let result = json!({"status": "skipped", "mode": "unknown", "root": root,
                            "before": {"version": before}, "reason": reason, "steps": [], "durationMs": 0});
        return Ok(json!({
            "runId": run_id, "ok": false, "ackDelivered": false, "ackQueued": false, "result": result,
            "restart": null,
            "sentinel": {"persisted": true, "payload": {"kind": "update", "status": "skipped", "ts": now_ms(), "message": null,
                "stats": {"runId": run_id, "mode": "unknown", "root": root, "target": "stable channel",
                          "before": {"version": before}, "after": null, "steps": [], "reason": reason, "durationMs": 0}}},
        }));
    }
    // Process-local: a second handoff while one runs is refused (2026.9.6).
    if lock(&shared.update_runs)
        .iter()
        .any(|r| r["status"] == "running" && r["runId"] != run_id.as_str())
    {
        record(shared, &run_id, |r| {
            finish(
                r,
                "skipped",
                Some("managed-service-handoff-already-running"),
                None,
            )
        });
        return Ok(json!({
            "runId": run_id, "ok": false, "ackDelivered": false, "ackQueued": false,
            "result": {"status": "skipped", "mode": "npm", "root": root, "reason": "managed-service-handoff-already-running",
                       "before": {"version": before}, "steps": [], "durationMs": 0},
            "handoff": {"status": "already-running", "command": "openclaw update --yes --json",
                        "message": "Another managed update is already running; retry after it completes."},
            "restart": null,
        }));
    }
    shared
        .counters
        .update_runs
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let handoff = shared.clone();
    let id = run_id.clone();
    let was = before.clone();
    tokio::spawn(async move { carry_out(handoff, id, mode, was).await });
    let command = "openclaw update --yes --json";
    Ok(json!({
        "runId": run_id, "ok": true, "ackDelivered": false, "ackQueued": false,
        "result": {"status": "skipped", "mode": "npm", "root": root, "reason": "managed-service-handoff-started",
                   "before": {"version": before},
                   "steps": [{"name": "managed-service update handoff", "command": command, "cwd": root, "durationMs": 3, "exitCode": null}],
                   "durationMs": 3},
        "handoff": {"status": "started", "pid": 4242, "command": command},
        "restart": null,
        "sentinel": {"persisted": true, "payload": {"kind": "update", "status": "skipped", "ts": now_ms(), "message": null}},
    }))
}

/// The detached updater: phases, then the restart into the new release (or its rollback).
async fn carry_out(shared: Arc<Shared>, run_id: String, mode: Update, before: String) {
    for phase in ["staging", "validating", "activating", "restarting"] {
        tokio::time::sleep(HANDOFF / 4).await;
        record(&shared, &run_id, |r| r["phase"] = json!(phase));
    }
    let down = lock(&shared.cfg).restart_down;
    match mode {
        Update::Refused => {}
        Update::NeverBack => shared.restart(None),
        Update::To { version } => {
            lock(&shared.cfg).version = version.clone();
            record(&shared, &run_id, |r| {
                finish(r, "succeeded", None, Some(&version));
                r["downtimeMs"] = json!(down.map(|d| d.as_millis() as u64));
            });
            shared.restart(down);
        }
        Update::RollsBack { version } => {
            // The candidate starts, fails its verification, and the previous release returns.
            lock(&shared.cfg).version = version;
            shared.restart(down);
            tokio::time::sleep(down.unwrap_or(HANDOFF) + HANDOFF).await;
            lock(&shared.cfg).version = before.clone();
            record(&shared, &run_id, |r| {
                finish(
                    r,
                    "rolled-back",
                    Some("runtime-verification-failed"),
                    Some(&before),
                )
            });
            shared.restart(down);
        }
    }
}

/// `update.status`: the restart sentinel, the active and last runs, what is available.
pub(crate) fn status(shared: &Shared, params: &Map<String, Value>) -> Result<Value, String> {
    closed("update.status", params, &["refreshCheckout"])?;
    let runs = lock(&shared.update_runs);
    let mut out = json!({"sentinel": null, "updateAvailable": null, "effectiveChannel": "stable",
                         "schedule": {"channel": "stable", "autoEnabled": false}});
    if let Some(active) = runs.iter().rev().find(|r| r["status"] == "running") {
        out["activeRun"] = active.clone();
    }
    if let Some(last) = runs.iter().rev().find(|r| r["status"] != "running") {
        out["lastRun"] = last.clone();
    }
    Ok(out)
}

/// `update.runs.get`: the run, or `null` for an unknown id.
pub(crate) fn get(shared: &Shared, params: &Map<String, Value>) -> Result<Value, String> {
    closed("update.runs.get", params, &["runId"])?;
    let id = params
        .get("runId")
        .and_then(Value::as_str)
        .ok_or("invalid update.runs.get params: at root: must have required property 'runId'")?;
    let runs = lock(&shared.update_runs);
    Ok(json!({"run": runs.iter().find(|r| r["runId"] == id)}))
}

/// `update.runs.list`: newest first, `limit` 20 by default, at most 100.
pub(crate) fn list(shared: &Shared, params: &Map<String, Value>) -> Result<Value, String> {
    closed("update.runs.list", params, &["limit"])?;
    let limit = params
        .get("limit")
        .and_then(Value::as_u64)
        .unwrap_or(20)
        .min(100) as usize;
    let runs = lock(&shared.update_runs);
    Ok(json!({"runs": runs.iter().rev().take(limit).collect::<Vec<_>>()}))
}
