//! A declared job's rules, pure: what one gateway should carry ([`want`]), the next step of
//! one gateway in a declaration's rollout ([`next`]) and what the gateway's answer makes of it
//! ([`after`]), and what the keeper writes between rollouts ([`keep`]): a gateway that came to
//! match, one that stopped matching, one that came back carrying a job it should not, and the
//! move of a single-firing job when the gateway firing it goes. Checked by the tests below;
//! carried out by `playbook.rs` (a gateway's step) and `mod.rs` (the keeper).

use crate::cron::declaration::{Candidate, move_order, owner};
use crate::domain::CronMove;
use crate::fleet::operation::model::{GatewayProgress, Step};
use crate::fleet::operation::rule::Facts;
use gateway_supervisor_actors::bounded;
use gateway_supervisor_actors::model::GatewayId;

/// Longest detail kept for a gateway (it may quote the gateway).
const DETAIL_MAX: usize = 300;

/// What a gateway should carry of a declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Its job, enabled or not (a single-firing job is enabled on one gateway).
    Put { enabled: bool },
    /// None of it.
    Remove,
}

/// A declaration as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub revision: i64,
    pub deleted: bool,
    pub single: Option<CronMove>,
    /// The gateway a single-firing job is enabled on.
    pub owner: Option<GatewayId>,
}

/// What gateway `id`, matching the declaration's selector or not, should carry.
pub fn want(d: &Held, id: GatewayId, matches: bool) -> Want {
    if d.deleted || !matches {
        return Want::Remove;
    }
    Want::Put {
        enabled: d.single.is_none() || d.owner == Some(id),
    }
}

/// The next thing to do for one gateway of a declaration's rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Nothing now: over, waiting its turn, or another instance's to do.
    Wait,
    /// Start writing.
    Begin,
    /// Write what it should carry ([`want`]), then read it back.
    Write,
    /// Over without writing: why.
    Skip(String),
    /// Over: failed, why.
    Fail(String),
}

/// What to do next for gateway `p` of a rollout (cancelling or not) whose gateways have
/// `deadline_s` from their start, as `f` shows it at `now_ms`.
pub fn next(
    p: &GatewayProgress,
    f: &Facts,
    deadline_s: u64,
    cancelling: bool,
    now_ms: i64,
) -> Next {
    if !p.step.in_flight() {
        return Next::Wait;
    }
    if cancelling {
        return Next::Skip("cancelled before it was written".into());
    }
    if !f.exists {
        return Next::Fail("the gateway was deleted".into());
    }
    if f.elsewhere {
        return Next::Wait;
    }
    let deadline_ms = i64::try_from(deadline_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    let late = now_ms > p.started_at.unwrap_or(now_ms).saturating_add(deadline_ms);
    match &p.step {
        // Down now: nothing is waited for — the keeper writes it when it links again.
        Step::Admitted if !f.connected => {
            Next::Skip("not connected: written when it links again".into())
        }
        Step::Admitted => Next::Begin,
        Step::Writing { .. } if late => Next::Fail(format!(
            "not written within {deadline_s}s of its start: {}",
            if f.connected {
                p.detail.as_deref().unwrap_or("its calls failed")
            } else {
                "not connected"
            }
        )),
        Step::Writing { .. } if !f.connected => Next::Wait,
        Step::Writing { not_before_ms, .. } if now_ms < *not_before_ms => Next::Wait,
        Step::Writing { .. } => Next::Write,
        _ => Next::Wait,
    }
}

/// What a write came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written and read back: where the gateway's job still differs (empty: as declared).
    Put { enabled: bool, drift: Vec<String> },
    /// Its job removed (or it carried none).
    Removed,
    /// The gateway refused it, in its words.
    Refused(String),
    /// Not done now (not sent, lost on the way, or the gateway said when to retry): again in
    /// `after_ms`.
    Again { after_ms: i64, why: String },
}

fn set_detail(p: &mut GatewayProgress, detail: impl AsRef<str>) {
    p.detail = Some(bounded::text(detail.as_ref(), DETAIL_MAX));
}

fn finish(p: &mut GatewayProgress, step: Step, detail: impl AsRef<str>, now_ms: i64) {
    p.step = step;
    set_detail(p, detail);
    p.finished_at = Some(now_ms);
}

/// Gateway `p` after decision `n` that needs no call.
pub fn apply(p: &mut GatewayProgress, n: &Next, now_ms: i64) {
    match n {
        Next::Begin => {
            p.started_at = Some(now_ms);
            p.step = Step::Writing {
                attempts: 0,
                not_before_ms: now_ms,
            };
            set_detail(p, "writing");
        }
        Next::Skip(why) => finish(p, Step::Skipped, why, now_ms),
        Next::Fail(why) => finish(p, Step::Failed, why, now_ms),
        Next::Wait | Next::Write => {}
    }
}

/// Gateway `p` after its write came to `outcome`.
pub fn after(p: &mut GatewayProgress, outcome: Outcome, now_ms: i64) {
    match outcome {
        Outcome::Put { enabled, drift } if drift.is_empty() => {
            p.written = true;
            let how = if enabled { "enabled" } else { "disabled" };
            finish(
                p,
                Step::Done,
                format!("written, {how}, read back as declared"),
                now_ms,
            );
        }
        Outcome::Put { drift, .. } => {
            p.written = true;
            finish(
                p,
                Step::Failed,
                format!(
                    "written, but the gateway keeps {} otherwise",
                    drift.join(", ")
                ),
                now_ms,
            );
        }
        Outcome::Removed => {
            p.written = true;
            finish(p, Step::Done, "removed", now_ms);
        }
        Outcome::Refused(words) => {
            finish(
                p,
                Step::Failed,
                format!("the gateway refused it: {words}"),
                now_ms,
            );
        }
        Outcome::Again { after_ms, why } => {
            if let Step::Writing {
                attempts,
                not_before_ms,
            } = &mut p.step
            {
                *attempts = attempts.saturating_add(1);
                *not_before_ms = now_ms.saturating_add(after_ms.max(1));
            }
            set_detail(p, why);
        }
    }
}

/// One gateway as the keeper sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub candidate: Candidate,
    /// The declaration's selector picks it.
    pub matches: bool,
    /// Its inventory holds a job with the declaration's key.
    pub carries: bool,
    /// What it was last written as: the revision, enabled, refused.
    pub written: Option<(i64, bool, bool)>,
}

/// What the keeper does for one declaration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Kept {
    /// A single-firing job's gateway, where it changes (recorded first, by compare-and-set).
    pub moved_to: Option<GatewayId>,
    /// The gateways to write, in the order to write them.
    pub write: Vec<GatewayId>,
}

/// What the keeper writes of declaration `d` over `seen` (its rollout succeeded and none of
/// its gateways is held by a running operation): every gateway up that should carry another
/// thing than it was written with — one that came to match or stopped matching, one written
/// at an older revision, one whose `enabled` a move changes; a gateway the last write of this
/// revision refused is not asked again (its next revision is), and a job edited or removed on
/// the gateway by hand is drift, shown and not overwritten. A single-firing job moves off a
/// gateway that is down; its writes go new gateway first (`overlap`) or last (`gap`).
pub fn keep(d: &Held, seen: &[Seen]) -> Kept {
    let matched: Vec<Candidate> = seen
        .iter()
        .filter(|s| s.matches)
        .map(|s| s.candidate)
        .collect();
    let now_owner = match d.single {
        Some(_) if !d.deleted => owner(d.owner, &matched),
        _ => d.owner,
    };
    let held = Held {
        owner: now_owner,
        ..*d
    };
    let write: Vec<GatewayId> = seen
        .iter()
        .filter(|s| s.candidate.up)
        .filter(
            |s| match (want(&held, s.candidate.id, s.matches), s.written) {
                (Want::Remove, written) => s.carries || written.is_some(),
                (Want::Put { .. }, None) => true,
                (Want::Put { .. }, Some((rev, _, _))) if rev < d.revision => true,
                (Want::Put { .. }, Some((_, _, true))) => false,
                // A job removed by hand is drift, shown (`missing`); a new revision writes it again.
                (Want::Put { enabled }, Some((_, was, false))) => was != enabled,
            },
        )
        .map(|s| s.candidate.id)
        .collect();
    let write = match (d.single, now_owner) {
        (Some(how), Some(owner)) if write.contains(&owner) => move_order(owner, write, how),
        _ => {
            let mut w = write;
            w.sort_unstable();
            w
        }
    };
    Kept {
        moved_to: now_owner.filter(|o| d.owner != Some(*o)),
        write,
    }
}

#[cfg(test)]
#[path = "rule_tests.rs"]
mod tests;
