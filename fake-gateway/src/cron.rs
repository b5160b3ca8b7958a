//! Cron as 2026.9.6 answers it (`testdata/openclaw-captures/2026.9.6/cron_rpc.json`, captured
//! by `tests/openclaw_e2e/cron.rs`): a fresh gateway's three jobs of its own; `cron.list` paged,
//! disabled jobs left out unless asked for, compact or whole, with a `snapshotRevision` that
//! moves only on a change; `cron.add {declarationKey}` converging on one job (`created: false,
//! updated: true` even when nothing changed, a new `configRevision` only when the definition
//! did); `cron.update`'s compare-and-set refusal; `cron.run`'s `due`, `force` and process
//! fence (to the `processInstanceId` `system.info` reports); a forced run's `cron.runs` entry (model,
//! provider, tokens, no cost); `cron.remove`. A bad minute is refused as the capture shows.
//! Each change and forced run is announced with a `cron` event as captured
//! (`cron_events.json`). What the capture does not show — an unknown id — is answered plainly
//! and said so where it is. It never fires a job on its schedule: a gateway that skips every
//! slot, as openclaw#139215 skips some.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use base64::Engine as _;
use serde_json::{Map, Value, json};
use sha2::Digest as _;

use crate::params::{closed, str_param};
use crate::{Shared, lock, now_ms, random_id};

/// The jobs and runs of one gateway.
pub(crate) struct CronState {
    jobs: BTreeMap<String, Value>,
    runs: Vec<Value>,
    manual: u64,
}

const LIST_PARAMS: [&str; 15] = [
    "limit",
    "offset",
    "query",
    "enabled",
    "scheduleKind",
    "lastRunStatus",
    "trigger",
    "sortBy",
    "sortDir",
    "agentId",
    "sessionKey",
    "sessionAgentId",
    "includeDisabled",
    "compact",
    "includeDeliveryPreviews",
];
const ADD_PARAMS: [&str; 18] = [
    "name",
    "declarationKey",
    "displayName",
    "owner",
    "agentId",
    "sessionKey",
    "description",
    "enabled",
    "deleteAfterRun",
    "schedule",
    "pacing",
    "trigger",
    "sessionTarget",
    "wakeMode",
    "payload",
    "delivery",
    "failureAlert",
    "toolsAllow",
];

impl CronState {
    /// A fresh gateway's jobs, as captured (their long texts shortened; an `every` job's
    /// anchor is each gateway's own, these are one gateway's).
    pub(crate) fn fresh() -> CronState {
        let now = now_ms() as i64;
        let mut jobs = BTreeMap::new();
        for (key, name, display, enabled, schedule, target, wake) in [
            (
                "heartbeat:main",
                "heartbeat-main",
                Some("Heartbeat (main)"),
                false,
                json!({"kind": "every", "everyMs": 1_800_000, "anchorMs": 813_017}),
                "main",
                "next-heartbeat",
            ),
            (
                "memory-core:memory-dreaming-promotion",
                "Memory Dreaming Promotion",
                None,
                true,
                json!({"kind": "cron", "expr": "0 3 * * *"}),
                "isolated",
                "now",
            ),
            (
                "skill-collection-review:main",
                "skill-collection-review-main",
                Some("Skill collection review (main)"),
                true,
                json!({"kind": "every", "everyMs": 604_800_000, "anchorMs": 245_613_017}),
                "isolated",
                "next-heartbeat",
            ),
        ] {
            let id = random_id();
            let payload = if key.starts_with("heartbeat") {
                json!({"kind": "heartbeat"})
            } else {
                json!({"kind": "agentTurn", "message": format!("(the {name} job's own prompt)")})
            };
            let mut job = json!({
                "id": id, "name": name, "declarationKey": key, "enabled": enabled,
                "schedule": schedule, "sessionTarget": target, "wakeMode": wake, "payload": payload,
                "createdAtMs": now, "updatedAtMs": now, "effectiveAgentId": "main", "state": {},
            });
            if let Some(d) = display {
                job["displayName"] = json!(d);
                job["agentId"] = json!("main");
            }
            if key.starts_with("heartbeat") {
                job["state"] = json!({});
            } else {
                job["delivery"] = json!({"mode": "none"});
            }
            revise(&mut job);
            schedule_next(&mut job, now);
            jobs.insert(id, job);
        }
        CronState {
            jobs,
            runs: Vec::new(),
            manual: 0,
        }
    }
}

/// `sha256:` + base64url of the definition's hash: what the gateway's revisions look like.
fn digest(v: &Value) -> String {
    let hash = sha2::Sha256::digest(v.to_string().as_bytes());
    format!(
        "sha256:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash)
    )
}

/// The definition's revision (its fields but the bookkeeping ones).
fn revise(job: &mut Value) {
    let mut def = job.clone();
    if let Some(o) = def.as_object_mut() {
        for k in [
            "id",
            "configRevision",
            "createdAtMs",
            "updatedAtMs",
            "state",
            "nextRunAtMs",
            "effectiveAgentId",
        ] {
            o.remove(k);
        }
    }
    job["configRevision"] = json!(digest(&def));
}

/// Sets `nextRunAtMs` (top level and in `state`) after `now`, for the schedules the fake
/// computes: `every` exactly; `cron` at the next minute boundary (the fake does not read
/// expressions beyond checking them).
fn schedule_next(job: &mut Value, now: i64) {
    if job["enabled"] == false {
        return;
    }
    let s = &job["schedule"];
    let next = match s["kind"].as_str() {
        Some("every") => {
            let (every, anchor) = (
                s["everyMs"].as_i64().unwrap_or(60_000).max(1),
                s["anchorMs"].as_i64().unwrap_or(0),
            );
            Some(anchor + ((now - anchor).div_euclid(every) + 1) * every)
        }
        Some("cron") => Some((now / 60_000 + 1) * 60_000),
        _ => None,
    };
    if let Some(n) = next {
        job["nextRunAtMs"] = json!(n);
        job["state"]["nextRunAtMs"] = json!(n);
    }
}

/// A cron expression's fields within range, as croner refuses them (`Invalid value for
/// minute: 61`, captured); `None` when it reads.
fn bad_expression(expr: &str) -> Option<String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let (names, ranges): (&[&str], &[(u32, u32)]) = match fields.len() {
        5 => (
            &["minute", "hour", "day", "month", "weekday"],
            &[(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)],
        ),
        6 => (
            &["second", "minute", "hour", "day", "month", "weekday"],
            &[(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 7)],
        ),
        _ => {
            return Some(format!(
                "CronPattern: invalid configuration format ('{expr}'), exactly five or six space separated parts are required."
            ));
        }
    };
    for ((field, name), (lo, hi)) in fields.iter().zip(names).zip(ranges) {
        for part in field.split([',', '-', '/']) {
            if part == "*" || part.is_empty() || part.chars().any(|c| c.is_ascii_alphabetic()) {
                continue;
            }
            match part.parse::<u32>() {
                Ok(n) if (*lo..=*hi).contains(&n) => {}
                _ => return Some(format!("CronPattern: Invalid value for {name}: {part}")),
            }
        }
    }
    None
}

/// The compact form of a job, as `cron.list {compact: true}` gives it.
fn compact(job: &Value) -> Value {
    let state = &job["state"];
    let at = |ms: Option<i64>| {
        ms.map(|m| {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(m.max(0) as u64);
            humantime::format_rfc3339_millis(t).to_string()
        })
    };
    let mut c = json!({
        "id": job["id"], "name": job["name"], "enabled": job["enabled"],
        "declarationKey": job["declarationKey"], "effectiveAgentId": job["effectiveAgentId"],
        "schedule": job["schedule"], "scheduleKind": job["schedule"]["kind"],
        "nextRunAtMs": job["nextRunAtMs"], "nextRunAt": at(job["nextRunAtMs"].as_i64()),
        "lastRunAtMs": state["lastRunAtMs"], "lastRunAt": at(state["lastRunAtMs"].as_i64()),
        "lastRunStatus": state["lastRunStatus"], "lastRunError": state["lastError"],
        "updatedAtMs": job["updatedAtMs"],
    });
    for k in ["agentId", "displayName"] {
        if !job[k].is_null() {
            c[k] = job[k].clone();
        }
    }
    c
}

fn find<'a>(
    state: &'a mut CronState,
    params: &Map<String, Value>,
    method: &str,
) -> Result<&'a mut Value, String> {
    let id = str_param(params, "id")
        .or_else(|| str_param(params, "jobId"))
        .ok_or_else(|| {
            format!("invalid {method} params: at root: must have required property 'id'")
        })?;
    // Not captured: an unknown id's refusal.
    state
        .jobs
        .get_mut(id)
        .ok_or_else(|| format!("unknown cron job id: {id}"))
}

/// One `cron.*` request; `None` for a method that is not cron's. Errors are INVALID_REQUEST
/// with the message; a compare-and-set refusal carries its details (`Err(Value)`).
pub(crate) fn call(
    shared: &Shared,
    method: &str,
    params: &Map<String, Value>,
) -> Option<Result<Value, Value>> {
    let plain =
        |r: Result<Value, String>| r.map_err(|m| json!({"code": "INVALID_REQUEST", "message": m}));
    let now = now_ms() as i64;
    let mut guard = lock(&shared.cron);
    let state = &mut *guard;
    let asked = str_param(params, "id").or_else(|| str_param(params, "jobId"));
    let before = asked.and_then(|id| state.jobs.get(id)).cloned();
    let answer = match method {
        "cron.status" => plain(closed(method, params, &[]).map(|_| {
            let enabled = state.jobs.values().filter(|j| j["enabled"] != false).count();
            let wake = state.jobs.values().filter_map(|j| j["nextRunAtMs"].as_i64()).min();
            json!({"enabled": true, "triggersEnabled": true, "storage": "sqlite",
                   "storePath": "/fake/state/openclaw.sqlite", "sqlitePath": "/fake/state/openclaw.sqlite",
                   "jobs": enabled, "nextWakeAtMs": wake})
        })),
        "cron.list" => plain(closed(method, params, &LIST_PARAMS).map(|_| {
            let all = params.get("includeDisabled").and_then(Value::as_bool) == Some(true);
            let limit = params.get("limit").and_then(Value::as_i64).unwrap_or(50).clamp(1, 200);
            let offset = params.get("offset").and_then(Value::as_i64).unwrap_or(0).max(0);
            let is_compact = params.get("compact").and_then(Value::as_bool) == Some(true);
            let mut listed: Vec<&Value> = state.jobs.values().filter(|j| all || j["enabled"] != false).collect();
            listed.sort_by_key(|j| j["nextRunAtMs"].as_i64().unwrap_or(i64::MAX));
            let total = listed.len() as i64;
            let page: Vec<Value> = listed
                .iter()
                .skip(offset as usize)
                .take(limit as usize)
                .map(|j| if is_compact { compact(j) } else { (*j).clone() })
                .collect();
            shared.counters.cron_jobs_listed.fetch_add(page.len() as u64, Ordering::Relaxed);
            let more = offset + (page.len() as i64) < total;
            let revision = digest(&json!(listed.iter().map(|j| (&j["id"], &j["configRevision"], &j["updatedAtMs"], &j["state"])).collect::<Vec<_>>()));
            let mut out = json!({"jobs": page, "total": total, "offset": offset, "limit": limit,
                "hasMore": more, "nextOffset": if more { json!(offset + limit) } else { Value::Null },
                "snapshotRevision": revision});
            if !is_compact {
                let previews: Map<String, Value> = out["jobs"].as_array().into_iter().flatten()
                    .filter_map(|j| Some((j["id"].as_str()?.to_owned(), json!({"label": "not requested", "detail": "not requested"}))))
                    .collect();
                out["deliveryPreviews"] = Value::Object(previews);
            }
            out
        })),
        "cron.get" => plain(closed(method, params, &["id", "jobId"]).and_then(|_| find(state, params, method).map(|j| j.clone()))),
        "cron.add" => add(state, params, now),
        "cron.update" => update(state, params, now),
        "cron.remove" => plain(closed(method, params, &["id", "jobId"]).and_then(|_| {
            let id = find(state, params, method)?["id"].as_str().unwrap_or_default().to_owned();
            state.jobs.remove(&id);
            Ok(json!({"ok": true, "removed": true}))
        })),
        "cron.run" => run(shared, state, params, now),
        "cron.runs" => plain(closed(method, params, &["scope", "id", "jobId", "runId", "agentId", "limit", "offset", "statuses", "deliveryStatuses", "query", "sortDir"]).map(|_| {
            let id = str_param(params, "id").or_else(|| str_param(params, "jobId"));
            let limit = params.get("limit").and_then(Value::as_i64).unwrap_or(50).clamp(1, 200);
            let offset = params.get("offset").and_then(Value::as_i64).unwrap_or(0).max(0);
            let mut entries: Vec<&Value> = state.runs.iter().filter(|r| id.is_none_or(|id| r["jobId"] == id)).collect();
            entries.reverse();
            let total = entries.len() as i64;
            let page: Vec<Value> = entries.into_iter().skip(offset as usize).take(limit as usize).cloned().collect();
            shared.counters.cron_jobs_listed.fetch_add(page.len() as u64, Ordering::Relaxed);
            let more = offset + (page.len() as i64) < total;
            json!({"entries": page, "total": total, "offset": offset, "limit": limit, "hasMore": more,
                   "nextOffset": if more { json!(offset + limit) } else { Value::Null }})
        })),
        _ => return None,
    };
    let events = answer
        .as_ref()
        .map(|a| announced(state, method, a, before))
        .unwrap_or_default();
    drop(guard);
    for payload in events {
        shared.broadcast("cron", payload);
    }
    Some(answer)
}

/// The `cron` events a change or a run sends, as captured (`cron_events.json`): each with the
/// job whole, `added`/`updated` with its next run, a run `started` then `finished` with its
/// entry's facts, `removed` with the job as it was.
fn announced(state: &CronState, method: &str, answer: &Value, before: Option<Value>) -> Vec<Value> {
    let job = |id: &str| state.jobs.get(id).cloned().unwrap_or(Value::Null);
    let changed = |action: &str, id: &str| {
        let j = job(id);
        json!({"action": action, "jobId": id, "job": j, "nextRunAtMs": j["state"]["nextRunAtMs"]})
    };
    match method {
        "cron.add" => {
            let id = answer["job"]["id"].as_str().unwrap_or_default();
            let action = if answer["created"] == true {
                "added"
            } else {
                "updated"
            };
            vec![changed(action, id)]
        }
        "cron.update" => vec![changed(
            "updated",
            answer["id"].as_str().unwrap_or_default(),
        )],
        "cron.remove" => before
            .map(|b| vec![json!({"action": "removed", "jobId": b["id"], "job": b})])
            .unwrap_or_default(),
        "cron.run" if answer["enqueued"] == true => {
            let Some(run) = state.runs.last() else {
                return Vec::new();
            };
            let id = run["jobId"].as_str().unwrap_or_default();
            let mut finished = run.clone();
            finished["job"] = job(id);
            finished["nextRunAtMs"] = finished["job"]["state"]["nextRunAtMs"].clone();
            if let Some(f) = finished.as_object_mut() {
                f.remove("ts");
            }
            vec![
                json!({"action": "started", "jobId": id, "job": job(id), "runAtMs": run["runAtMs"]}),
                finished,
            ]
        }
        _ => Vec::new(),
    }
}

fn add(state: &mut CronState, params: &Map<String, Value>, now: i64) -> Result<Value, Value> {
    let refuse = |m: String| json!({"code": "INVALID_REQUEST", "message": m});
    closed("cron.add", params, &ADD_PARAMS).map_err(refuse)?;
    // 2026.9.6's `assertCronDeliveryInputNonBlankFields`, before anything else is read.
    for field in ["channel", "to"] {
        let value = &params.get("delivery").unwrap_or(&Value::Null)[field];
        if !value.is_null() && value.as_str().is_none_or(|v| v.trim().is_empty()) {
            return Err(refuse(format!(
                "invalid cron.add params: delivery.{field} must be a non-empty string"
            )));
        }
    }
    let schedule = params.get("schedule").cloned().unwrap_or(Value::Null);
    if schedule["kind"] == "cron"
        && let Some(why) = bad_expression(schedule["expr"].as_str().unwrap_or_default())
    {
        return Err(refuse(format!("invalid cron.add params: {why}")));
    }
    let mut def: Map<String, Value> = params.clone();
    def.entry("enabled").or_insert(json!(true));
    def.entry("delivery").or_insert(json!({"mode": "announce"}));
    let preview = if def["delivery"]["mode"] == "none" {
        json!({"label": "not requested", "detail": "not requested"})
    } else {
        json!({"label": "announce -> last", "detail": "last -> no route, will fail-closed: Channel is required (no configured channels detected)."})
    };
    let key = str_param(params, "declarationKey").map(str::to_owned);
    let existing = key.as_ref().and_then(|k| {
        state
            .jobs
            .values()
            .find(|j| j["declarationKey"] == k.as_str())
            .map(|j| j["id"].as_str().unwrap_or_default().to_owned())
    });
    let (id, created) = match existing {
        Some(id) => (id, false),
        None => (random_id(), true),
    };
    let before = state.jobs.get(&id).cloned();
    let mut job = Value::Object(def);
    job["id"] = json!(id);
    job["effectiveAgentId"] = params.get("agentId").cloned().unwrap_or(json!("main"));
    job["createdAtMs"] = before
        .as_ref()
        .map_or(json!(now), |b| b["createdAtMs"].clone());
    job["updatedAtMs"] = json!(now);
    job["state"] = before.as_ref().map_or(json!({}), |b| b["state"].clone());
    revise(&mut job);
    if before
        .as_ref()
        .is_some_and(|b| b["schedule"] != job["schedule"])
    {
        job["state"]["scheduleActivatedAtMs"] = json!(now);
    }
    schedule_next(&mut job, now);
    state.jobs.insert(id, job.clone());
    // The answer's job leaves the payload's message out (captured); cron.get has it.
    let mut shown = job;
    if let Some(p) = shown["payload"].as_object_mut() {
        p.remove("message");
    }
    let mut out = json!({"created": created, "job": shown, "deliveryPreview": preview});
    if !created {
        out["updated"] = json!(true);
    }
    Ok(out)
}

fn update(state: &mut CronState, params: &Map<String, Value>, now: i64) -> Result<Value, Value> {
    let refuse = |m: String| json!({"code": "INVALID_REQUEST", "message": m});
    closed(
        "cron.update",
        params,
        &["id", "jobId", "patch", "expectedConfigRevision"],
    )
    .map_err(refuse)?;
    let job = find(state, params, "cron.update").map_err(refuse)?;
    if let Some(expected) = str_param(params, "expectedConfigRevision")
        && job["configRevision"] != expected
    {
        return Err(json!({"code": "INVALID_REQUEST",
            "message": "cron job definition no longer matches the loaded version; review the latest version before retrying",
            "details": {"code": "CRON_JOB_CHANGED", "expectedConfigRevision": expected, "actualConfigRevision": job["configRevision"]}}));
    }
    if let Some(patch) = params.get("patch").and_then(Value::as_object) {
        for (k, v) in patch {
            if k != "state" {
                job[k.as_str()] = v.clone();
            }
        }
    }
    job["updatedAtMs"] = json!(now);
    job["state"]["consecutiveErrors"] = json!(0);
    job["state"]["scheduleErrorCount"] = json!(0);
    revise(job);
    schedule_next(job, now);
    Ok(job.clone())
}

fn run(
    shared: &Shared,
    state: &mut CronState,
    params: &Map<String, Value>,
    now: i64,
) -> Result<Value, Value> {
    let refuse = |m: String| json!({"code": "INVALID_REQUEST", "message": m});
    closed(
        "cron.run",
        params,
        &["id", "jobId", "mode", "expectedProcessInstanceId"],
    )
    .map_err(refuse)?;
    let process = lock(&shared.process_instance_id).clone();
    if str_param(params, "expectedProcessInstanceId").is_some_and(|p| p != process) {
        return Err(refuse(
            "invalid cron.run params: Gateway process changed after preflight".into(),
        ));
    }
    let mode = str_param(params, "mode").unwrap_or("force");
    let job = find(state, params, "cron.run").map_err(refuse)?;
    let id = job["id"].as_str().unwrap_or_default().to_owned();
    let due = job["nextRunAtMs"].as_i64().is_some_and(|n| n <= now);
    let enabled = job["enabled"] != false;
    if (mode == "due" && !due) || (mode == "if-enabled" && !enabled) {
        let reason = if enabled { "not-due" } else { "disabled" };
        return Ok(
            json!({"ok": true, "ran": false, "reason": reason, "processInstanceId": process}),
        );
    }
    // The run: done at once (the fake model answers at once), recorded as 2026.9.6 records it.
    // The fake's sessions run `fake/model`: provider `fake`, model `model`.
    let model = "model";
    job["state"]["lastRunAtMs"] = json!(now);
    job["state"]["lastRunStatus"] = json!("ok");
    job["state"]["lastStatus"] = json!("ok");
    job["state"]["lastDurationMs"] = json!(1);
    job["state"]["consecutiveErrors"] = json!(0);
    job["updatedAtMs"] = json!(now);
    let name = job["name"].clone();
    state.manual += 1;
    let run_id = format!("manual:{id}:{now}:{}", state.manual);
    let session = random_id();
    state.runs.push(json!({
        "ts": now + 1, "jobId": id, "jobName": name, "action": "finished", "status": "ok",
        "completionStatus": "succeeded", "summary": "pong", "delivered": false, "deliveryStatus": "not-requested",
        "sessionId": session, "sessionKey": format!("agent:main:cron:{id}:run:{session}"),
        "runId": run_id, "runAtMs": now, "durationMs": 1, "model": model, "provider": "fake",
        "usage": {"input_tokens": 10, "output_tokens": 1, "total_tokens": 11},
    }));
    if state.runs.len() > 1000 {
        state.runs.remove(0);
    }
    Ok(json!({"ok": true, "enqueued": true, "runId": run_id, "processInstanceId": process}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture() -> Value {
        serde_json::from_str(include_str!(
            "../../testdata/openclaw-captures/2026.9.6/cron_rpc.json"
        ))
        .unwrap()
    }

    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
    }

    #[test]
    fn changes_are_announced_with_the_captured_keys() {
        let events: Value = serde_json::from_str(include_str!(
            "../../testdata/openclaw-captures/2026.9.6/cron_events.json"
        ))
        .unwrap();
        let real = |action: &str| {
            let e = events["events"]
                .as_array()
                .unwrap()
                .iter()
                .rfind(|e| e["payload"]["action"] == action)
                .unwrap()
                .clone();
            keys(&e["payload"])
        };
        let mut state = CronState::fresh();
        let def = capture()["calls"][4]["params"].clone();
        let params = def.as_object().unwrap().clone();
        let added = add(&mut state, &params, 1_000).unwrap();
        let said = announced(&state, "cron.add", &added, None);
        assert_eq!(keys(&said[0]), real("added"));
        assert_eq!(said[0]["action"], "added");
        let again = add(&mut state, &params, 2_000).unwrap();
        let said = announced(&state, "cron.add", &again, None);
        assert_eq!(
            (keys(&said[0]), &said[0]["action"]),
            (real("updated"), &json!("updated"))
        );
        let id = added["job"]["id"].as_str().unwrap().to_owned();
        let before = state.jobs.remove(&id);
        let said = announced(
            &state,
            "cron.remove",
            &json!({"ok": true, "removed": true}),
            before,
        );
        assert_eq!(keys(&said[0]), real("removed"));
        // The job whole, its prompt too, as the real event carries it.
        assert_eq!(said[0]["job"]["payload"]["message"], "say pong");
    }

    #[test]
    fn a_blank_delivery_channel_is_refused_in_the_captured_words() {
        let calls = capture()["calls"].as_array().unwrap().clone();
        let real = calls
            .iter()
            .find(|c| c["params"]["declarationKey"] == "gs:blank")
            .expect("captured");
        let params = real["params"].as_object().unwrap().clone();
        let refused = add(&mut CronState::fresh(), &params, 1_000).unwrap_err();
        assert_eq!(refused["message"], real["error"]["message"]);
        assert_eq!(refused["code"], real["error"]["code"]);
    }

    #[test]
    fn expressions_are_refused_as_croner_refuses_them() {
        assert_eq!(
            bad_expression("61 * * * *").as_deref(),
            Some("CronPattern: Invalid value for minute: 61")
        );
        let captured = &capture()["calls"][8]["error"]["message"];
        assert_eq!(
            captured,
            "invalid cron.add params: CronPattern: Invalid value for minute: 61"
        );
        for ok in [
            "* * * * *",
            "*/5 * * * *",
            "0 3 * * *",
            "0 9 * * MON-FRI",
            "0 0 1,15 * *",
            "* * * * * *",
        ] {
            assert_eq!(bad_expression(ok), None, "{ok}");
        }
        assert!(bad_expression("* * 32 * *").is_some());
        assert!(bad_expression("* *").is_some());
    }

    #[test]
    fn a_fresh_gateways_jobs_have_the_captured_shape() {
        let fake = CronState::fresh();
        let real = capture()["calls"][1]["answer"]["jobs"].clone();
        for (key, real) in real
            .as_array()
            .unwrap()
            .iter()
            .map(|j| (j["declarationKey"].clone(), j))
        {
            let mine = fake
                .jobs
                .values()
                .find(|j| j["declarationKey"] == key)
                .unwrap();
            for k in [
                "id",
                "name",
                "declarationKey",
                "enabled",
                "schedule",
                "sessionTarget",
                "wakeMode",
                "configRevision",
                "effectiveAgentId",
                "createdAtMs",
                "updatedAtMs",
            ] {
                assert!(!mine[k].is_null(), "{key} {k}");
            }
            // The anchor of an `every` job is the gateway's own (it differed between two fresh
            // gateways); its kind, period and expression are the release's.
            for k in ["kind", "everyMs", "expr"] {
                assert_eq!(mine["schedule"][k], real["schedule"][k], "{key} {k}");
            }
            assert_eq!(mine["enabled"], real["enabled"], "{key}");
            assert_eq!(
                mine["nextRunAtMs"].is_null(),
                real["nextRunAtMs"].is_null(),
                "{key}"
            );
        }
        let compact_real = &capture()["calls"][3]["answer"]["jobs"][0];
        let any = fake
            .jobs
            .values()
            .find(|j| j["declarationKey"] == compact_real["declarationKey"])
            .unwrap();
        assert_eq!(keys(&compact(any)), keys(compact_real));
    }
}
