//! What a drain's answers mean, pure: the gateway's answer to `gateway.suspend.prepare {drain:
//! true}` (ready, still draining with its blockers, another client's suspension), the runs this
//! daemon knows hold it, their abort (the suspension released, the runs aborted, a new
//! suspension under a new request id: the order a 2026.9 gateway accepts), and when the drain
//! gives up — its timeout, or `wait_ready` after its runs were aborted (docs/design.md, *Fleet
//! operations*).

use serde_json::Value;

use super::model::{BlockingRun, DrainTimeoutPolicy, GatewayProgress, OperationParams, Step};
use super::rule::{Facts, Next, another, fail, overdue};
use super::{DETAIL_MAX, secs};
use gateway_supervisor_actors::bounded;
use gateway_supervisor_actors::protocol::suspend::SuspendStatus;

/// What follows a drain once the gateway is idle: nothing (a drain alone leaves it suspended
/// and cordoned), or its restart (a rolling restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterDrain {
    Stop,
    Restart,
}

/// Whether the runs holding `p`'s drain are to be aborted now: an operator asked (since they
/// last were), or the drain timed out under [`DrainTimeoutPolicy::AbortRuns`] (once).
pub(super) fn wants_abort(
    p: &GatewayProgress,
    params: &OperationParams,
    since_ms: i64,
    now_ms: i64,
) -> bool {
    let asked = p
        .abort_runs_asked_at
        .is_some_and(|asked| p.runs_aborted_at.is_none_or(|done| asked > done));
    let timed_out = params.drain().on_drain_timeout == DrainTimeoutPolicy::AbortRuns
        && p.runs_aborted_at.is_none()
        && now_ms > since_ms.saturating_add(secs(params.drain().drain_timeout_s));
    asked || timed_out
}

/// A draining gateway's next step (a drain's and a rolling restart's alike): asked again to
/// suspend until it says `ready`; past its timeout, forced on to the restart
/// (`force_after_drain`), its runs aborted (asked, or [`DrainTimeoutPolicy::AbortRuns`]), or
/// failed with its suspension released.
pub fn draining(p: &GatewayProgress, f: &Facts, params: &OperationParams, now_ms: i64) -> Next {
    let Step::Draining {
        request_id,
        suspension_id,
        since_ms,
    } = &p.step
    else {
        return Next::Wait;
    };
    let here = !f.elsewhere && f.connected;
    if params.drain().force_after_drain
        && now_ms > since_ms.saturating_add(secs(params.drain().drain_timeout_s))
    {
        let grace = secs(params.drain().drain_timeout_s).saturating_add(secs(params.wait_ready_s));
        return if here {
            Next::Force {
                suspension_id: suspension_id.clone(),
            }
        } else if now_ms > since_ms.saturating_add(grace) {
            overdue(
                "still busy and not reachable to force a restart",
                params.wait_ready_s,
                p,
                "no answer",
            )
        } else {
            Next::Wait
        };
    }
    if wants_abort(p, params, *since_ms, now_ms) && here {
        return Next::AbortRuns {
            release: suspension_id.clone(),
        };
    }
    if now_ms > drain_deadline(p, params, *since_ms) {
        let waited = p.detail.as_deref().unwrap_or("no answer");
        return fail(
            &match p.runs_aborted_at {
                Some(_) => format!(
                    "still busy {}s after its runs were aborted: {waited}",
                    params.wait_ready_s
                ),
                None => format!(
                    "still busy after the drain timeout ({}s): {waited}",
                    params.drain().drain_timeout_s
                ),
            },
            suspension_id.clone().filter(|_| !f.elsewhere),
        );
    }
    if !here {
        Next::Wait
    } else if another(p, f) {
        fail(
            "the gateway restarted on its own during the drain (another process answers)",
            None,
        )
    } else {
        Next::Prepare {
            request_id: request_id.clone(),
        }
    }
}

/// When `p`'s drain gives up: its timeout, or `wait_ready` after its runs were last aborted
/// if that is later.
pub(super) fn drain_deadline(p: &GatewayProgress, params: &OperationParams, since_ms: i64) -> i64 {
    let timeout = since_ms.saturating_add(secs(params.drain().drain_timeout_s));
    p.runs_aborted_at.map_or(timeout, |at| {
        timeout.max(at.saturating_add(secs(params.wait_ready_s)))
    })
}

impl GatewayProgress {
    /// Cordoned, its process noted: draining starts with a new request id.
    pub fn admitted(&mut self, boot_id: Option<String>, request_id: String, now_ms: i64) {
        self.boot_id_before = boot_id;
        self.started_at.get_or_insert(now_ms);
        self.step = Step::Draining {
            request_id,
            suspension_id: None,
            since_ms: now_ms,
        };
        self.detail = Some("draining".into());
    }

    /// The gateway's answer to `gateway.suspend.prepare {drain: true}` (or why there was none);
    /// drained, it is done or goes on to its restart as `then` says.
    pub fn after_prepare(&mut self, then: AfterDrain, answer: Result<&Value, String>, now_ms: i64) {
        let Step::Draining {
            request_id,
            suspension_id,
            since_ms,
        } = &self.step
        else {
            return;
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(why) => {
                self.detail = Some(bounded::text(
                    &format!("the drain call failed: {why}"),
                    DETAIL_MAX,
                ));
                return;
            }
        };
        let sid = answer
            .get("suspensionId")
            .and_then(Value::as_str)
            .map(|s| bounded::text(s, 128))
            .or_else(|| suspension_id.clone());
        match SuspendStatus::of(answer) {
            SuspendStatus::Ready => {
                self.blocking_runs.clear();
                self.detail = Some(match &sid {
                    Some(sid) => format!("drained (suspension {sid})"),
                    None => "drained".into(),
                });
                self.step = match then {
                    AfterDrain::Stop => {
                        self.finished_at = Some(now_ms);
                        Step::Done
                    }
                    AfterDrain::Restart => Step::Restarting {
                        suspension_id: sid,
                        since_ms: now_ms,
                        forced: false,
                    },
                };
            }
            SuspendStatus::Draining | SuspendStatus::Busy => {
                self.detail = Some(blockers(answer));
                self.step = Step::Draining {
                    request_id: request_id.clone(),
                    suspension_id: sid,
                    since_ms: *since_ms,
                };
            }
            SuspendStatus::Conflict => {
                self.fail(
                    "another suspension, not this operation's, holds the gateway: resume it first",
                    now_ms,
                );
            }
            SuspendStatus::Running | SuspendStatus::Unexpected => {
                let said = answer.get("status").and_then(Value::as_str);
                self.detail = Some(bounded::text(
                    &format!(
                        "unexpected drain answer (status {})",
                        said.unwrap_or("missing")
                    ),
                    DETAIL_MAX,
                ));
            }
        }
    }

    /// The runs this daemon knows of on the gateway while its drain waits.
    pub fn blocked_by(&mut self, runs: Vec<BlockingRun>) {
        self.blocking_runs = runs;
    }

    /// The runs holding the drain were aborted (`aborted`: their sessions; `refused`: what
    /// could not be, and why): it drains again under `request_id`, a new suspension.
    pub fn runs_aborted(
        &mut self,
        request_id: String,
        aborted: &[String],
        refused: &[String],
        now_ms: i64,
    ) {
        let Step::Draining { since_ms, .. } = self.step else {
            return;
        };
        self.runs_aborted_at = Some(now_ms);
        self.step = Step::Draining {
            request_id,
            suspension_id: None,
            since_ms,
        };
        let mut said = match aborted {
            [] => "no active run to abort".to_owned(),
            keys => format!("aborted {} run(s): {}", keys.len(), keys.join(", ")),
        };
        if !refused.is_empty() {
            said.push_str(&format!("; not aborted: {}", refused.join("; ")));
        }
        said.push_str("; draining again");
        self.detail = Some(bounded::text(&said, DETAIL_MAX));
    }

    /// The runs could not be aborted this round (tried again next round, until the deadline).
    pub fn abort_failed(&mut self, why: &str) {
        self.detail = Some(bounded::text(
            &format!("aborting the runs that hold the drain failed: {why}"),
            DETAIL_MAX,
        ));
    }

    /// Its drain timed out in an operation that forces its restarts: the restart is to be
    /// asked past the work still there.
    pub fn forced(&mut self, suspension_id: Option<String>, drain_timeout_s: u64, now_ms: i64) {
        let blockers = self.detail.as_deref().unwrap_or("no answer");
        self.detail = Some(bounded::text(
            &format!(
                "still busy after the drain timeout ({drain_timeout_s}s: {blockers}): restarting past the active work"
            ),
            DETAIL_MAX,
        ));
        self.step = Step::Restarting {
            suspension_id,
            since_ms: now_ms,
            forced: true,
        };
    }

    /// The operation's suspension could not be released before the restart (tried again next
    /// round, until the deadline).
    pub fn release_failed(&mut self, why: &str) {
        self.detail = Some(bounded::text(
            &format!("releasing the drain's suspension before the restart failed: {why}"),
            DETAIL_MAX,
        ));
    }
}

/// "waiting for 2 active: embedded-run ×1, queue ×1", from a `draining`/`busy` answer.
fn blockers(answer: &Value) -> String {
    let active = answer
        .get("activeCount")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let kinds: Vec<String> = answer
        .get("blockers")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .take(8)
                .map(|b| {
                    let kind = b.get("kind").and_then(Value::as_str).unwrap_or("work");
                    let kind = bounded::text(kind, 40);
                    match b.get("count").and_then(Value::as_u64) {
                        Some(n) => format!("{kind} ×{n}"),
                        None => kind,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if kinds.is_empty() {
        format!("waiting for {active} active")
    } else {
        format!("waiting for {active} active: {}", kinds.join(", "))
    }
}
