//! The operation's rules, pure: what to do next for one gateway given what its link shows
//! ([`next`]), what a restart's and a hold's answers mean for its progress (a drain's are in
//! `drain.rs`, an upgrade's in `upgrade.rs`), and which gateways go next and when the whole operation is over ([`plan`]). The
//! runner carries the decisions out and records each step before the next (docs/design.md,
//! *Fleet operations*).

use serde_json::Value;

use super::model::{GatewayProgress, OperationKind, OperationParams, OperationState, Step};
use super::{DETAIL_MAX, secs};
use gateway_supervisor_actors::bounded;
use gateway_supervisor_actors::model::GatewayId;

/// What this instance sees of a gateway now.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub exists: bool,
    /// Another instance links it: its gateway steps are that instance's to take.
    pub elsewhere: bool,
    /// Connected here, breaker closed.
    pub connected: bool,
    /// The process its link reaches, where the release names it.
    pub boot_id: Option<String>,
    pub version: Option<String>,
    /// It advertises `update.hold`.
    pub offers_hold: bool,
    /// It advertises `update.status`, `update.run` and `update.runs.get` (whether one runs
    /// already can be read, and an update it starts can be followed).
    pub offers_update: bool,
    /// It advertises `config.get` and `config.patch` (a config rollout's write).
    pub offers_config: bool,
    /// This daemon runs its process (a managed gateway of this host): an upgrade swaps its
    /// release here instead of asking it to update itself.
    pub managed: bool,
}

/// The next thing to do for one gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Nothing now: not started, over, waiting, or another instance's to do.
    Wait,
    /// A step that needs no call: record it.
    Advance(Step),
    /// Cordon it and note its process (then [`GatewayProgress::admitted`]).
    Admit { boot_id: Option<String> },
    /// Cordon it and note its process and release, for an upgrade (then
    /// [`GatewayProgress::admitted_for_update`]).
    AdmitUpdate { boot_id: Option<String> },
    /// Ask it (again) to suspend with `drain`; again renews the same suspension.
    Prepare { request_id: String },
    /// Release the operation's suspension (if it holds one), then ask for a restart, sent only
    /// to this process.
    Restart {
        boot_id: String,
        release: Option<String>,
        /// Past the gateway's active-work deferral (`skipDeferral`).
        forced: bool,
    },
    /// Abort the runs that hold the drain: release the suspension (if it holds one: a 2026.9
    /// gateway refuses `sessions.abort` while suspended), abort each active run, then drain
    /// again under a new request id ([`GatewayProgress::runs_aborted`]).
    AbortRuns { release: Option<String> },
    /// The drain timed out and the operation forces its restarts: go on to the restart, to be
    /// asked past the work that held the drain ([`GatewayProgress::forced`]).
    Force { suspension_id: Option<String> },
    /// See whether it is back: a `health` RPC and `/readyz` on the new process.
    CheckBack,
    /// Hold its pending automatic update (`update.hold`).
    Hold,
    /// Ask the process noted at the start to update itself (`update.run`), unless its
    /// `update.status` shows a run active already or another release than the canaries'.
    RequestUpdate { boot_id: String },
    /// Read the gateway's record of the run (`update.runs.get`), from the process that answers
    /// now (`another` than the one asked, or not).
    FollowRun { run_id: String, another: bool },
    /// Cordon it and note its process and release, for a swap of its release by this daemon
    /// (then [`GatewayProgress::admitted_for_swap`]).
    AdmitSwap { boot_id: Option<String> },
    /// Ask this daemon's process runner to swap its release (begun at the first ask), and
    /// read where the swap is ([`GatewayProgress::after_swap`]).
    Swap,
    /// Over for this gateway without acting: why.
    Skip { reason: String },
    /// Cancelled mid-way: release the operation's suspension (if it holds one), uncordon, and
    /// leave it `skipped`.
    Abandon { release: Option<String> },
    /// Over for this gateway: failed, releasing the operation's suspension if it holds one.
    Fail {
        reason: String,
        release: Option<String>,
    },
}

/// A kind's rule: what to do next for gateway progress `p`, as `f` shows it at `now_ms`, in
/// an operation that is `cancelling` or not (`kinds/<kind>.rs`; `kinds::next` by kind).
pub type Rule = fn(&GatewayProgress, &Facts, &OperationParams, bool, i64) -> Next;

/// What every kind decides before its own steps: nothing for a gateway not in flight; under a
/// cancel, a drain let go and the gateway put back in service (a restart already sent is seen
/// through: half a restart is worse than a whole one), an update not yet asked not asked; a
/// deleted gateway failed. `None`: the kind's own step decides.
pub fn opening(p: &GatewayProgress, f: &Facts, cancelling: bool) -> Option<Next> {
    if !p.step.in_flight() {
        return Some(Next::Wait);
    }
    if cancelling {
        match &p.step {
            Step::Draining { .. } | Step::Restarting { .. } if f.elsewhere => {
                return Some(Next::Wait);
            }
            Step::Draining { suspension_id, .. } | Step::Restarting { suspension_id, .. } => {
                return Some(Next::Abandon {
                    release: suspension_id.clone(),
                });
            }
            Step::Updating { run_id: None, .. } if !f.elsewhere => {
                return Some(Next::Abandon { release: None });
            }
            _ => {}
        }
    }
    (!f.exists).then(|| fail("the gateway was deleted", None))
}

/// An admitted gateway every kind waits on or fails the same way: another instance's to
/// start, or not connected (the process to act on cannot be verified).
pub fn admitted(f: &Facts) -> Option<Next> {
    if f.elsewhere {
        Some(Next::Wait)
    } else if !f.connected {
        Some(fail(
            "not connected: the process to act on cannot be verified",
            None,
        ))
    } else {
        None
    }
}

/// Whether another process than the one noted at the start answers now.
pub fn another(p: &GatewayProgress, f: &Facts) -> bool {
    f.connected && f.boot_id.is_some() && f.boot_id != p.boot_id_before
}

/// A gateway that restarted (or updated), waiting to be back: checked once another process
/// answers, failed past `wait_ready`.
pub fn returning(p: &GatewayProgress, f: &Facts, params: &OperationParams, now_ms: i64) -> Next {
    let Step::Returning { since_ms } = &p.step else {
        return Next::Wait;
    };
    if now_ms > since_ms.saturating_add(secs(params.wait_ready_s)) {
        overdue(
            "did not come back healthy",
            params.wait_ready_s,
            p,
            "not reconnected",
        )
    } else if f.elsewhere || !another(p, f) {
        Next::Wait
    } else {
        Next::CheckBack
    }
}

/// A process that must not restart without its step failing: "the release does not report
/// which process it is" for `what` (a restart, a swap) that could then not be verified.
pub fn unverifiable(what: &str, f: &Facts) -> Next {
    fail(
        &format!(
            "OpenClaw {} does not report which process it is (no bootId): {what} could not be verified",
            f.version.as_deref().unwrap_or("unknown")
        ),
        None,
    )
}

/// Failed for lack of time: "`what` within `s`s: what it was waiting for".
pub fn overdue(what: &str, s: u64, p: &GatewayProgress, waiting: &str) -> Next {
    let detail = p.detail.as_deref().unwrap_or(waiting);
    fail(&format!("{what} within {s}s: {detail}"), None)
}

pub fn fail(reason: &str, release: Option<String>) -> Next {
    Next::Fail {
        reason: reason.to_owned(),
        release,
    }
}

impl GatewayProgress {
    /// The answer to the restart request: `Ok(answer)`, `Err(Some(why))` for a failed call
    /// (tried again next round), `Err(None)` when another process answers already (restarted).
    pub fn after_restart(&mut self, answer: Result<&Value, Option<String>>, now_ms: i64) {
        match answer {
            Ok(a) if a.get("ok").and_then(Value::as_bool) == Some(false) => {
                self.fail("the gateway refused to restart", now_ms);
            }
            Ok(_) | Err(None) => {
                self.step = Step::Returning { since_ms: now_ms };
                self.detail = Some("restart requested; waiting for the new process".into());
            }
            Err(Some(why)) => {
                self.detail = Some(bounded::text(
                    &format!("the restart call failed: {why}"),
                    DETAIL_MAX,
                ));
            }
        }
    }

    /// Checked back (another process, `health` answered, `/readyz` 2xx) as `version`: a
    /// baking canary has baked, an upgraded gateway is judged by
    /// [`back_upgraded`](Self::back_upgraded), a restarted one is done.
    pub fn checked_back(
        &mut self,
        kind: OperationKind,
        boot_id: Option<String>,
        version: Option<String>,
        proven: Option<&str>,
        params: &OperationParams,
        now_ms: i64,
    ) {
        match (&self.step, kind) {
            (Step::Baking { .. }, _) => self.baked(now_ms),
            (_, OperationKind::Upgrade) => {
                let bake_s = params.upgrade().map_or(0, |u| u.canary_bake_s);
                self.back_upgraded(boot_id, version, proven, bake_s, now_ms);
            }
            _ => self.back(boot_id, now_ms),
        }
    }

    /// Back: another process, the `health` RPC answered, `/readyz` 2xx, uncordoned.
    pub fn back(&mut self, boot_id: Option<String>, now_ms: i64) {
        self.boot_id_after = boot_id;
        self.step = Step::Done;
        self.detail = Some("restarted and healthy".into());
        self.finished_at = Some(now_ms);
    }

    /// Not back yet: what is missing.
    pub fn not_back(&mut self, missing: &str) {
        self.detail = Some(bounded::text(missing, DETAIL_MAX));
    }

    /// The answer to `update.hold`: `ok: true` held the gateway's update campaign; `ok: false`
    /// is the gateway's "nothing to hold" (no campaign, already held, or already applying —
    /// 2026.9.6 logs which, and does not say).
    pub fn after_hold(&mut self, answer: Result<&Value, String>, now_ms: i64) {
        match answer {
            Ok(a) if a.get("ok").and_then(Value::as_bool) == Some(true) => {
                self.step = Step::Done;
                self.detail = Some("update held".into());
                self.finished_at = Some(now_ms);
            }
            Ok(_) => {
                self.step = Step::Done;
                self.detail = Some(
                    "nothing held: the gateway had no update campaign to hold (or it was already held or applying)"
                        .into(),
                );
                self.finished_at = Some(now_ms);
            }
            Err(why) => self.fail(&format!("update.hold failed: {why}"), now_ms),
        }
    }

    /// Over without acting (`reason`).
    pub fn skip(&mut self, reason: &str, now_ms: i64) {
        self.blocking_runs.clear();
        self.step = Step::Skipped;
        self.detail = Some(bounded::text(reason, DETAIL_MAX));
        self.finished_at = Some(now_ms);
    }

    pub fn fail(&mut self, reason: &str, now_ms: i64) {
        self.blocking_runs.clear();
        self.step = Step::Failed;
        self.detail = Some(bounded::text(reason, DETAIL_MAX));
        self.finished_at = Some(now_ms);
    }
}

/// The operation as a whole: skips what an earlier failure (with `abort_on_failure`) leaves
/// untouched, admits pending gateways in order while fewer than
/// `max_unavailable` are in flight, and gives the final state once every gateway is over.
/// Returns the gateways it admitted.
pub fn plan(
    progress: &mut [GatewayProgress],
    params: &OperationParams,
    cancelling: bool,
    now_ms: i64,
) -> (Vec<GatewayId>, Option<OperationState>) {
    let failed = progress
        .iter()
        .find(|p| p.step == Step::Failed)
        .map(|p| p.gateway_id);
    let canaries = || progress.iter().filter(|p| p.canary);
    let failed_canary = canaries()
        .find(|p| p.step == Step::Failed)
        .map(|p| p.gateway_id);
    let canaries_over = canaries().all(|p| p.step.is_over());
    let no_canary_done =
        canaries().next().is_some() && canaries_over && !canaries().any(|p| p.step == Step::Done);
    let stop = if cancelling {
        Some("left untouched: the operation was cancelled".to_owned())
    } else if let Some(id) = failed_canary {
        Some(format!("left untouched: canary gateway {id} failed"))
    } else if no_canary_done {
        Some("left untouched: no canary was upgraded, so nothing is proven".to_owned())
    } else {
        failed
            .filter(|_| params.abort_on_failure)
            .map(|id| format!("left untouched: gateway {id} failed"))
    };
    let mut admitted = Vec::new();
    if let Some(why) = stop {
        // A cancel also stops what was admitted and not begun.
        let stopped = |s: &Step| *s == Step::Pending || (cancelling && *s == Step::Admitted);
        for p in progress.iter_mut().filter(|p| stopped(&p.step)) {
            p.step = Step::Skipped;
            p.detail = Some(why.clone());
            p.finished_at = Some(now_ms);
        }
    } else {
        let in_flight = progress.iter().filter(|p| p.step.in_flight()).count();
        let room = usize::try_from(params.max_unavailable)
            .unwrap_or(usize::MAX)
            .saturating_sub(in_flight);
        // The others wait until every canary is over.
        for p in progress
            .iter_mut()
            .filter(|p| p.step == Step::Pending && (p.canary || canaries_over))
            .take(room)
        {
            p.step = Step::Admitted;
            p.started_at = Some(now_ms);
            p.detail = Some("started".into());
            admitted.push(p.gateway_id);
        }
    }
    let over = progress.iter().all(|p| p.step.is_over());
    let verdict = over.then(|| {
        if cancelling {
            OperationState::Cancelled
        } else if progress.iter().any(|p| p.rolled_back) {
            // A managed gateway's swap failed and was put back: the operation stopped there.
            OperationState::Reverted
        } else if progress.iter().any(|p| p.step == Step::Failed) {
            OperationState::Failed
        } else {
            OperationState::Succeeded
        }
    });
    (admitted, verdict)
}

#[cfg(test)]
#[path = "rule_tests.rs"]
mod tests;
