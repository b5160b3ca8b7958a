//! The gateway's own lifecycle as 2026.9.6 runs it: suspension (`gateway.suspend.prepare`,
//! `status`, `resume`: one suspension at a time, renewed by its request id, `drain` holding it
//! while the work finishes) and restart (`gateway.restart.request`, deferred while runs are
//! active unless `skipDeferral`; then a new process: a new bootId, no suspension, no run).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::config::Suspension;
use crate::params::{closed, str_param};
use crate::{Ctl, FakeGateway, Shared, lock, now_ms, random_id};

/// The methods a gateway runs while suspended (2026.9.6's `SUSPEND_CONTROL_METHODS`).
pub(crate) const SUSPEND_CONTROL_METHODS: [&str; 4] = [
    "gateway.suspend.prepare",
    "gateway.suspend.status",
    "gateway.suspend.resume",
    "gateway.suspend.handoff",
];

/// How long after answering a restart request the fake restarts (its answer goes out first).
pub(crate) const RESTART_SIGNAL_DELAY: Duration = Duration::from_millis(50);
/// 2026.9.6 forces a deferred restart after this long.
const RESTART_DEFERRAL_BUDGET: Duration = Duration::from_secs(300);

/// Agent runs not finished yet.
pub(crate) fn active_runs(shared: &Shared) -> usize {
    lock(&shared.runs)
        .values()
        .filter(|r| r.done.borrow().is_none())
        .count()
}

fn blockers(active: usize) -> Value {
    json!([{"kind": "embedded-run", "count": active}])
}

/// How long a suspension lasts unless renewed (2026.9.6's `GATEWAY_SUSPEND_TTL_MS`).
pub(crate) const SUSPENSION_TTL_MS: u64 = 120_000;

/// A held suspension's phase as 2026.9.6 reports it (`prepare` adds its id and counts).
fn suspension_phase(s: &crate::Suspension, active: usize, prepare: bool) -> Value {
    let (id, expires) = (&s.id, s.expires_at_ms);
    match (active > 0, prepare) {
        (true, true) => {
            json!({"status": "draining", "suspensionId": id, "expiresAtMs": expires, "activeCount": active,
                               "blockers": blockers(active), "writeCustody": [], "retryAfterMs": 20000})
        }
        (true, false) => {
            json!({"status": "draining", "expiresAtMs": expires, "activeCount": active,
                                "blockers": blockers(active), "writeCustody": [], "retryAfterMs": 20000})
        }
        (false, true) => {
            json!({"status": "ready", "suspensionId": id, "expiresAtMs": expires, "activeCount": 0,
                                "blockers": [], "writeCustody": []})
        }
        (false, false) => json!({"status": "ready", "expiresAtMs": expires, "writeCustody": []}),
    }
}

/// The suspension held now: one past its expiry lapses here (2026.9.6 releases it on a timer
/// and says so with `gateway.suspension {phase: "accepting"}`).
pub(crate) fn held(shared: &Shared) -> Option<crate::Suspension> {
    let mut current = lock(&shared.suspension);
    match current.as_ref() {
        Some(s) if s.expires_at_ms <= now_ms() => {
            *current = None;
            drop(current);
            shared.broadcast("gateway.suspension", json!({"phase": "accepting"}));
            None
        }
        other => other.cloned(),
    }
}

/// A refusal as 2026.9.6 words it: `code`, `message`, and the rest of its error object.
fn refusal(code: &str, message: &str, rest: Value) -> Value {
    let mut e = json!({"code": code, "message": message});
    if let (Some(e), Value::Object(rest)) = (e.as_object_mut(), rest) {
        e.extend(rest);
    }
    e
}

fn invalid(message: impl Into<String>) -> Value {
    refusal("INVALID_REQUEST", &message.into(), json!({}))
}

/// Another suspension is held: refused, retryable when it lapses (2026.9.6's
/// `gateway-suspension-conflict`).
fn conflict(message: &str, s: &crate::Suspension) -> Value {
    refusal(
        "UNAVAILABLE",
        message,
        json!({"retryable": true, "retryAfterMs": s.expires_at_ms.saturating_sub(now_ms()),
               "details": {"reason": "gateway-suspension-conflict", "expiresAtMs": s.expires_at_ms}}),
    )
}

/// As 2026.9.6's suspend coordinator: the same request renews its suspension (another is
/// refused as a conflict); busy without `drain` refuses, with `drain` it holds the suspension
/// while the work finishes (`draining`, then `ready`). `Err`: the error object.
pub(crate) fn suspend_prepare(
    shared: &Shared,
    params: &Map<String, Value>,
) -> Result<Value, Value> {
    let method = "gateway.suspend.prepare";
    closed(method, params, &["requestId", "terminalPolicy", "drain"]).map_err(invalid)?;
    let request_id = str_param(params, "requestId").ok_or_else(|| {
        invalid("invalid gateway.suspend.prepare params: at root: must have required property 'requestId'")
    })?;
    let drain = params.get("drain").and_then(Value::as_bool) == Some(true);
    let active = active_runs(shared);
    if let Some(s) = held(shared) {
        if s.request_id != request_id || s.drain != drain {
            return Err(conflict(
                "another gateway suspension is already prepared",
                &s,
            ));
        }
        let mut current = lock(&shared.suspension);
        let renewed = current.as_mut().map(|s| {
            s.expires_at_ms = now_ms() + SUSPENSION_TTL_MS;
            s.clone()
        });
        drop(current);
        return Ok(suspension_phase(&renewed.unwrap_or(s), active, true));
    }
    if active > 0 && !drain {
        return Ok(
            json!({"status": "busy", "reason": "active-work", "retryAfterMs": 20000, "activeCount": active,
                         "blockers": blockers(active), "writeCustody": []}),
        );
    }
    let s = crate::Suspension {
        id: random_id(),
        request_id: request_id.to_owned(),
        drain,
        expires_at_ms: now_ms() + SUSPENSION_TTL_MS,
    };
    *lock(&shared.suspension) = Some(s.clone());
    shared.broadcast("gateway.suspension", json!({"phase": s.phase(active)}));
    Ok(suspension_phase(&s, active, true))
}

pub(crate) fn suspend_status(shared: &Shared, params: &Map<String, Value>) -> Result<Value, Value> {
    closed("gateway.suspend.status", params, &["suspensionId"]).map_err(invalid)?;
    let id = str_param(params, "suspensionId")
        .ok_or_else(|| invalid("must have required property 'suspensionId'"))?;
    match held(shared) {
        None => Ok(json!({"status": "running"})),
        Some(s) if s.id != id => Err(conflict("a different gateway suspension is prepared", &s)),
        Some(s) => Ok(suspension_phase(&s, active_runs(shared), false)),
    }
}

pub(crate) fn suspend_resume(shared: &Shared, params: &Map<String, Value>) -> Result<Value, Value> {
    closed("gateway.suspend.resume", params, &["suspensionId"]).map_err(invalid)?;
    let id = str_param(params, "suspensionId")
        .ok_or_else(|| invalid("must have required property 'suspensionId'"))?;
    match held(shared) {
        None => return Ok(json!({"ok": true, "status": "running", "resumed": false})),
        Some(s) if s.id != id => {
            return Err(refusal(
                "INVALID_REQUEST",
                "gateway suspension id does not match",
                json!({"retryable": false}),
            ));
        }
        Some(_) => *lock(&shared.suspension) = None,
    }
    shared.broadcast("gateway.suspension", json!({"phase": "accepting"}));
    Ok(json!({"ok": true, "status": "running", "resumed": true}))
}

/// Answered, then the restart itself: `shutdown`, close 1012, back as a new process after
/// `restart_down` (the real gateway answers first, then signals itself). As 2026.9.6's safe
/// restart: with active work it is `deferred` until that work is done (at most 5 minutes);
/// `skipDeferral` restarts past it, and the work dies with the process.
pub(crate) fn restart_request(
    shared: &Arc<Shared>,
    params: &Map<String, Value>,
) -> Result<Value, String> {
    closed(
        "gateway.restart.request",
        params,
        &["reason", "skipDeferral", "target"],
    )?;
    shared
        .counters
        .restart_requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let down = lock(&shared.cfg).restart_down;
    let skip = params.get("skipDeferral").and_then(Value::as_bool) == Some(true);
    // The runs that hold a deferred restart: each says when it is done.
    let mut holding: Vec<_> = lock(&shared.runs)
        .values()
        .filter(|r| r.done.borrow().is_none())
        .map(|r| r.done.subscribe())
        .collect();
    let active = holding.len();
    let deferred = active > 0 && !skip;
    if !deferred {
        holding.clear();
    }
    let restarting = shared.clone();
    tokio::spawn(async move {
        let drained = async {
            for done in &mut holding {
                let _ = done.wait_for(Option::is_some).await;
            }
        };
        let _ = tokio::time::timeout(RESTART_DEFERRAL_BUDGET, drained).await;
        tokio::time::sleep(RESTART_SIGNAL_DELAY).await;
        restarting.restart(down);
    });
    let preflight = if active == 0 {
        json!({"safe": true, "counts": {"embeddedRuns": 0, "totalActive": 0}, "blockers": [], "summary": "safe to restart now"})
    } else {
        let message = format!("{active} active embedded run(s)");
        json!({"safe": false, "counts": {"embeddedRuns": active, "totalActive": active},
               "blockers": [{"kind": "embedded-run", "count": active, "message": message}],
               "summary": format!("restart deferred: {message}")})
    };
    Ok(
        json!({"ok": true, "status": if deferred { "deferred" } else { "scheduled" }, "preflight": preflight,
              "restart": {"ok": true, "signal": "SIGUSR2", "reason": str_param(params, "reason"), "delayMs": 0}}),
    )
}

impl Shared {
    /// As on SIGTERM/restart: `shutdown` event (with `restartExpectedMs`), close 1012, a new
    /// process (a new bootId, no suspension, no run), handshakes refused with UNAVAILABLE/1013 and
    /// `/readyz` 503 for `down` — for ever when `None`.
    pub fn restart(self: &Arc<Self>, down: Option<Duration>) {
        let expected = down.unwrap_or(Duration::from_millis(1500));
        self.broadcast(
            "shutdown",
            json!({"reason": "gateway restarting", "restartExpectedMs": expected.as_millis() as u64}),
        );
        for c in lock(&self.conns).values() {
            let _ = c.tx.send(Ctl::Close(1012, "service restart".into()));
        }
        *lock(&self.boot_id) = random_id();
        *lock(&self.process_instance_id) = random_id();
        // The new process loads the file (a change saved for a restart is running now).
        if let Some(c) = lock(&self.gateway_config).as_mut() {
            c.load();
        }
        *lock(&self.suspension) = None;
        crate::approvals::cancel_pending(self);
        // The runs die with the process (wedged ones too: that is what a restart is for).
        let running: Vec<String> = lock(&self.runs)
            .iter()
            .filter(|(_, r)| r.done.borrow().is_none())
            .map(|(id, _)| id.clone())
            .collect();
        for id in running {
            finish_run(
                self,
                &id,
                json!({"status": "error", "error": "gateway restarting", "stopReason": "restart"}),
            );
        }
        lock(&self.faults).starting = true;
        if let Some(down) = down {
            let shared = self.clone();
            crate::runtime().spawn(async move {
                tokio::time::sleep(down).await;
                lock(&shared.faults).starting = false;
            });
        }
    }
}

/// The suspension as a test drives and reads it.
impl FakeGateway {
    /// Suspends the gateway as another operator client of it would (`gateway.suspend.prepare
    /// {drain: true}` under a request of its own): from now on it runs only the suspension's
    /// own methods, as a held 2026.9.6 suspension does, until [`FakeGateway::release_suspension`].
    pub fn hold_suspension(&self) {
        let s = Suspension {
            id: random_id(),
            request_id: "another-client".into(),
            drain: true,
            // Renewed by its client for as long as a test holds it.
            expires_at_ms: now_ms() + 86_400_000,
        };
        let phase = s.phase(crate::lifecycle::active_runs(&self.shared));
        *lock(&self.shared.suspension) = Some(s);
        self.shared
            .broadcast("gateway.suspension", json!({"phase": phase}));
    }

    /// Ends the suspension [`FakeGateway::hold_suspension`] held (its client resumed it).
    pub fn release_suspension(&self) {
        *lock(&self.shared.suspension) = None;
        self.shared
            .broadcast("gateway.suspension", json!({"phase": "accepting"}));
    }

    /// The methods refused because a suspension was held, oldest first (the last 1,000).
    pub fn refused_while_suspended(&self) -> Vec<String> {
        lock(&self.shared.refused_suspended).clone()
    }

    /// Whether the gateway is suspended (prepared and not resumed).
    pub fn suspended(&self) -> bool {
        crate::lifecycle::held(&self.shared).is_some()
    }

    /// Out of service as a client sees it: suspended, or restarting (refusing connects).
    pub fn out_of_service(&self) -> bool {
        self.suspended() || lock(&self.shared.faults).starting
    }
}

/// Ends a run (once); returns whether it was still running.
pub(crate) fn finish_run(shared: &Shared, run_id: &str, outcome: Value) -> bool {
    let runs = lock(&shared.runs);
    let Some(run) = runs.get(run_id) else {
        return false;
    };
    if run.done.borrow().is_some() {
        return false;
    }
    // Kept whether or not anyone waits now: `send` drops the value when nobody is subscribed,
    // and an `agent.wait` sent after the end then waited for ever (2026.9.6 answers at once).
    run.done.send_replace(Some(outcome.clone()));
    let session_key = run.session_key.clone();
    drop(runs);
    // Read before the sessions are locked (elsewhere the configuration is locked first).
    let cost = lock(&shared.cfg).run_cost_usd;
    if let Some(s) = lock(&shared.sessions).get_mut(&session_key) {
        if let Some(reply) = outcome.get("reply").and_then(Value::as_str) {
            s.messages.push(json!({"role": "assistant", "content": [{"type": "text", "text": reply}], "timestamp": now_ms()}));
        }
        s.active_run = None;
        s.total_tokens += 10;
        s.updated_at = now_ms();
        let cumulative = s
            .usage_points
            .last()
            .and_then(|p| p["cumulativeCost"].as_f64())
            .unwrap_or(0.0)
            + cost;
        s.usage_points
            .push(json!({"cacheRead": 0, "cacheWrite": 0, "cost": cost,
            "cumulativeCost": cumulative, "cumulativeTokens": s.total_tokens, "input": 100,
            "output": 20, "timestamp": now_ms(), "totalTokens": 120}));
        if s.usage_points.len() > 200 {
            s.usage_points.remove(0);
        }
        let day = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()[..10]
            .to_owned();
        let mut usage = lock(&shared.usage);
        let u = usage.entry((s.agent.clone(), day)).or_default();
        *u = (u.0 + 100, u.1 + 20, u.2 + cost);
    }
    let aborted = outcome["error"] == "aborted";
    shared.broadcast(
        "agent",
        json!({"runId": run_id, "sessionKey": session_key, "stream": "lifecycle", "data": {"phase": if outcome["status"] == "error" { "error" } else { "end" }, "aborted": aborted}}),
    );
    shared.broadcast(
        "chat",
        json!({"runId": run_id, "sessionKey": session_key, "state": if aborted { "aborted" } else { "final" }}),
    );
    shared.broadcast(
        "sessions.changed",
        json!({"sessionKey": session_key, "reason": "agent.run.ended", "runId": run_id}),
    );
    true
}
