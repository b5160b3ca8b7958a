//! A config rollout's rules, pure: what to do next for one gateway ([`next`]), what the
//! gateway's answers mean for its progress ([`after_write`], [`after_check`],
//! [`after_revert`]), and the rollout as a whole — canaries, waves, promotion, the stop at the
//! first unhealthy gateway and the revert that follows ([`plan`]). The runner carries the
//! decisions out and records each step before the next (docs/design.md, *Config rollouts*).

use crate::fleet::operation::model::{
    GatewayProgress, OperationParams, OperationState, RolloutParams, Step,
};
use crate::fleet::operation::rule::Facts;
use gateway_supervisor_actors::bounded;

pub use super::reload_plan::{restarts, will_restart};

/// Longest detail kept for a gateway (it may quote the gateway).
const DETAIL_MAX: usize = 300;

/// The next thing to do for one gateway of a rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Nothing now: not started, over, waiting, or another instance's to do.
    Wait,
    /// Note its process and go on to the write.
    Begin { boot_id: Option<String> },
    /// `config.get`, save the values the patch replaces, `config.patch` over the hash read.
    Write,
    /// It came back from the restart its change needed, as `boot_id`.
    Back { boot_id: Option<String> },
    /// Healthy now (since `since_ms`), or not any more (`None`, with why).
    Health {
        since_ms: Option<i64>,
        why: Option<String>,
    },
    /// Healthy for `min_healthy_time`: read the written paths back.
    Check,
    /// `config.get`, then `config.patch` the saved values back over the hash read.
    Revert,
    /// Over for this gateway without writing: why.
    Skip { reason: String },
    /// Over for this gateway: failed, why.
    Fail { reason: String },
}

/// `healthy_deadline` in milliseconds.
fn deadline_ms(rp: &RolloutParams) -> i64 {
    i64::try_from(rp.healthy_deadline_s.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// When gateway `p` must be done by.
fn deadline(p: &GatewayProgress, rp: &RolloutParams) -> i64 {
    p.started_at.unwrap_or(0).saturating_add(deadline_ms(rp))
}

fn fail(reason: impl Into<String>) -> Next {
    Next::Fail {
        reason: reason.into(),
    }
}

/// What to do next for gateway `p` of a rollout in `state`, as `f` shows it at `now_ms`.
pub fn next(
    p: &GatewayProgress,
    f: &Facts,
    rp: &RolloutParams,
    state: OperationState,
    now_ms: i64,
) -> Next {
    if !p.step.in_flight() {
        return Next::Wait;
    }
    let cancelling = state == OperationState::Cancelling;
    let unwritten = matches!(p.step, Step::Admitted | Step::Writing { .. }) && !p.written;
    if cancelling && unwritten {
        return Next::Skip {
            reason: "cancelled before it was written".into(),
        };
    }
    // An operator's cancel stops a revert where it is: what is not put back yet stays as the
    // rollout left it, and says so (decided here, by whichever instance reads it first).
    if cancelling && matches!(p.step, Step::Reverting { .. }) {
        return fail("not put back: the rollout was cancelled while it was putting gateways back");
    }
    if !f.exists {
        return fail("the gateway was deleted");
    }
    if f.elsewhere {
        return Next::Wait;
    }
    let late = now_ms > deadline(p, rp);
    let secs = rp.healthy_deadline_s;
    match &p.step {
        // Late, whatever the link says: a gateway that looks connected while every call to
        // it fails must not hold the rollout for ever either.
        Step::Admitted | Step::Writing { .. } if late => fail(format!(
            "{} within {secs}s of its start{}",
            if p.written {
                "its write was not confirmed"
            } else {
                "not written"
            },
            match (&p.detail, f.connected) {
                (_, false) => ": not connected".to_owned(),
                (Some(last), true) => format!(": {last}"),
                (None, true) => String::new(),
            }
        )),
        Step::Admitted | Step::Writing { .. } if !f.connected => Next::Wait,
        Step::Admitted if !f.offers_config => fail(format!(
            "OpenClaw {} does not offer config.get and config.patch (2026.9 does)",
            f.version.as_deref().unwrap_or("unknown")
        )),
        Step::Admitted => Next::Begin {
            boot_id: f.boot_id.clone(),
        },
        Step::Writing { not_before_ms, .. } if now_ms < *not_before_ms => Next::Wait,
        Step::Writing { .. } => Next::Write,
        Step::Applying { .. } => {
            let another = f.connected && f.boot_id.is_some() && f.boot_id != p.boot_id_before;
            if another {
                Next::Back {
                    boot_id: f.boot_id.clone(),
                }
            } else if late {
                fail(format!(
                    "did not come back within {secs}s from the restart its change needs"
                ))
            } else {
                Next::Wait
            }
        }
        Step::Settling { healthy_since_ms } => {
            let process = p.boot_id_after.as_ref().or(p.boot_id_before.as_ref());
            let another = f.boot_id.as_ref().is_some_and(|b| Some(b) != process);
            if f.connected && process.is_some() && another {
                return fail("it restarted while it was to stay healthy (another process answers)");
            }
            let min = i64::try_from(rp.min_healthy_time_s.saturating_mul(1000)).unwrap_or(i64::MAX);
            match (f.connected, healthy_since_ms) {
                (true, Some(since)) if now_ms >= since.saturating_add(min) => Next::Check,
                _ if late => fail(format!(
                    "not healthy for {}s within {secs}s of its start: {}",
                    rp.min_healthy_time_s,
                    if f.connected {
                        "it did not stay healthy long enough"
                    } else {
                        "it is not connected (or its breaker is open)"
                    }
                )),
                (true, None) => Next::Health {
                    since_ms: Some(now_ms),
                    why: None,
                },
                (false, Some(_)) => Next::Health {
                    since_ms: None,
                    why: Some("not healthy: not connected, or its breaker is open".into()),
                },
                _ => Next::Wait,
            }
        }
        // A revert ends by `healthy_deadline` too: a gateway down for good (or one whose every
        // call fails) is named as not put back, and the rollout ends.
        Step::Reverting { since_ms, .. } if now_ms > since_ms.saturating_add(deadline_ms(rp)) => {
            fail(format!(
                "could not be put back within {secs}s of the revert: {}",
                if f.connected {
                    p.detail.as_deref().unwrap_or("its calls failed")
                } else {
                    "not connected"
                }
            ))
        }
        Step::Reverting { .. } if !f.connected => Next::Wait,
        Step::Reverting { not_before_ms, .. } if now_ms < *not_before_ms => Next::Wait,
        Step::Reverting { .. } => Next::Revert,
        _ => Next::Wait,
    }
}

pub(super) fn set_detail(p: &mut GatewayProgress, detail: impl AsRef<str>) {
    p.detail = Some(bounded::text(detail.as_ref(), DETAIL_MAX));
}

/// Over: `step` (done, failed, skipped or reverted), why.
pub fn finish(p: &mut GatewayProgress, step: Step, detail: impl AsRef<str>, now_ms: i64) {
    p.step = step;
    set_detail(p, detail);
    p.finished_at = Some(now_ms);
}

/// Gateway `p`'s progress after decision `n` that needs no call (those that do are
/// `answers.rs`'s `after_write`, `after_check` and `after_revert`).
pub fn apply(p: &mut GatewayProgress, n: &Next, now_ms: i64) {
    match n {
        Next::Begin { boot_id } => {
            p.boot_id_before = boot_id.clone();
            // Its deadline counts from here (it may have waited for a disruption budget).
            p.started_at = Some(now_ms);
            p.step = Step::Writing {
                attempts: 0,
                not_before_ms: now_ms,
            };
            set_detail(p, "reading its config");
        }
        Next::Back { boot_id } => {
            p.boot_id_after = boot_id.clone();
            p.step = Step::Settling {
                healthy_since_ms: Some(now_ms),
            };
            set_detail(p, "restarted with the change; staying healthy");
        }
        Next::Health { since_ms, why } => {
            p.step = Step::Settling {
                healthy_since_ms: *since_ms,
            };
            set_detail(p, why.as_deref().unwrap_or("healthy; staying healthy"));
        }
        Next::Skip { reason } => finish(p, Step::Skipped, reason, now_ms),
        Next::Fail { reason } => finish(p, Step::Failed, reason, now_ms),
        Next::Wait | Next::Write | Next::Check | Next::Revert => {}
    }
}

/// The rollout as a whole at `now_ms`: the next state and, when it says why it stopped, the
/// operation's detail. Admits pending gateways (canaries first; the rest once every canary is
/// over, and promoted unless `auto_promote`) while fewer than `max_parallel` are in flight;
/// at the first failed gateway, stops: the ones not written are left untouched and, with
/// `auto_revert`, every written one is put back.
pub fn plan(
    progress: &mut [GatewayProgress],
    params: &OperationParams,
    rp: &RolloutParams,
    state: OperationState,
    now_ms: i64,
) -> (OperationState, Option<String>) {
    match state {
        OperationState::Reverting => return reverted(progress, state),
        OperationState::Cancelling => return cancelled(progress, now_ms),
        s if !s.is_live() => return (s, None),
        _ => {}
    }
    if let Some(stopped) = stop_at_failure(progress, rp, state, now_ms) {
        return stopped;
    }
    if all_over(progress) {
        return (OperationState::Succeeded, None);
    }
    admit(progress, params, rp, state, now_ms)
}

fn all_over(progress: &[GatewayProgress]) -> bool {
    progress.iter().all(|p| p.step.is_over())
}

/// A revert under way: over once every gateway is — `reverted`, or `failed` naming the
/// gateways it did not put back.
fn reverted(
    progress: &[GatewayProgress],
    state: OperationState,
) -> (OperationState, Option<String>) {
    if !all_over(progress) {
        return (state, None);
    }
    let kept: Vec<String> = progress
        .iter()
        .filter(|p| p.written && p.step != Step::Reverted)
        .map(|p| p.gateway_id.to_string())
        .collect();
    if kept.is_empty() {
        (OperationState::Reverted, None)
    } else {
        (
            OperationState::Failed,
            Some(format!(
                "the revert did not put back gateway(s) {}",
                kept.join(", ")
            )),
        )
    }
}

/// A cancel: what was not started is left untouched; over once every gateway is, naming the
/// changed gateways a cancelled revert left as the rollout made them.
fn cancelled(progress: &mut [GatewayProgress], now_ms: i64) -> (OperationState, Option<String>) {
    for p in progress.iter_mut().filter(|p| p.step == Step::Pending) {
        finish(
            p,
            Step::Skipped,
            "left untouched: the rollout was cancelled",
            now_ms,
        );
    }
    if !all_over(progress) {
        return (OperationState::Cancelling, None);
    }
    let left: Vec<String> = progress
        .iter()
        .filter(|p| p.written && p.step == Step::Failed)
        .map(|p| p.gateway_id.to_string())
        .collect();
    let detail = (!left.is_empty()).then(|| {
        bounded::text(
            &format!(
                "cancelled; gateway(s) {} keep the rollout's values (not put back)",
                left.join(", ")
            ),
            DETAIL_MAX,
        )
    });
    (OperationState::Cancelled, detail)
}

/// The stop at the first failed gateway, if there is one: those not written are left
/// untouched and, with `auto_revert`, every written one is to be put back.
fn stop_at_failure(
    progress: &mut [GatewayProgress],
    rp: &RolloutParams,
    state: OperationState,
    now_ms: i64,
) -> Option<(OperationState, Option<String>)> {
    let failed = progress.iter().find(|p| p.step == Step::Failed)?;
    let why = format!(
        "gateway {} failed: {}",
        failed.gateway_id,
        failed.detail.as_deref().unwrap_or("no detail")
    );
    let untouched = format!("left untouched: gateway {} failed", failed.gateway_id);
    for p in progress.iter_mut() {
        let unwritten = matches!(p.step, Step::Admitted | Step::Writing { .. }) && !p.written;
        if p.step == Step::Pending || unwritten {
            finish(p, Step::Skipped, &untouched, now_ms);
        }
    }
    let written: Vec<usize> = (0..progress.len())
        .filter(|i| progress[*i].written && progress[*i].step != Step::Reverted)
        .collect();
    if rp.auto_revert && !written.is_empty() {
        for i in &written {
            let p = &mut progress[*i];
            p.step = Step::Reverting {
                attempts: 0,
                not_before_ms: now_ms,
                since_ms: now_ms,
            };
            p.finished_at = None;
            set_detail(p, format!("to be put back: {why}"));
        }
        let detail = format!("{why}; putting back {} changed gateway(s)", written.len());
        return Some((
            OperationState::Reverting,
            Some(bounded::text(&detail, DETAIL_MAX)),
        ));
    }
    let over = all_over(progress);
    Some((
        if over { OperationState::Failed } else { state },
        Some(bounded::text(&why, DETAIL_MAX)),
    ))
}

/// Admits pending gateways: canaries first, the rest once every canary is over and the
/// rollout promoted (or `auto_promote`), while fewer than `max_parallel` are in flight; a
/// paused rollout admits none.
fn admit(
    progress: &mut [GatewayProgress],
    params: &OperationParams,
    rp: &RolloutParams,
    state: OperationState,
    now_ms: i64,
) -> (OperationState, Option<String>) {
    let canaries_over = progress
        .iter()
        .filter(|p| p.canary)
        .all(|p| p.step.is_over());
    let any_canary = progress.iter().any(|p| p.canary);
    let rest_waiting = progress
        .iter()
        .any(|p| !p.canary && p.step == Step::Pending);
    let promoted = rp.auto_promote || rp.promoted || !any_canary;
    if state == OperationState::Paused {
        return (state, None);
    }
    if canaries_over && rest_waiting && !promoted {
        return (
            OperationState::AwaitingPromotion,
            Some("the canaries are done: promote it to go on".into()),
        );
    }
    let in_flight = progress.iter().filter(|p| p.step.in_flight()).count();
    let room = usize::try_from(params.max_unavailable)
        .unwrap_or(usize::MAX)
        .saturating_sub(in_flight);
    for p in progress
        .iter_mut()
        .filter(|p| p.step == Step::Pending && (p.canary || canaries_over))
        .take(room)
    {
        p.step = Step::Admitted;
        p.started_at = Some(now_ms);
        set_detail(p, "started");
    }
    (OperationState::Running, None)
}

#[cfg(test)]
#[path = "rule_tests.rs"]
mod tests;
