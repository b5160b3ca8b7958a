//! The stuck-session ladder, as one pure rule: what the watchdog remembers of a session
//! ([`Watched`]), what it sees of it this round ([`Seen`]), what the operator allows
//! ([`Ladder`]) in — the next [`Watched`] and the [`Decision`]s to carry out, out. No clock, no
//! gateway, no store: the runner (`watchdog::mod`) feeds it and carries out what it decides
//! (docs/design.md, *Stuck-session watchdog*).
//!
//! - A session is **stalled** when it has an active run, showed no sign of life (its row's
//!   `updatedAt`, token count or run ids changed, or a run event named it) for `stall_after`,
//!   and is not inside a tool call the gateway reports as open: a long tool call is work, not
//!   a wedge (openclaw #140671).
//! - The ladder, one step per verification: report → abort → (after `verify_after`) reset →
//!   (after `verify_after`) unrecovered: the gateway reads `degraded`, an alert goes out, and a
//!   safe restart is started where allowed. A step the gateway does not advertise is passed
//!   over; a step the operator turned off too.
//! - **An abort or a reset worked only if the lane is free** — no active run, or other runs
//!   than the stalled ones — within `verify_after` (openclaw #92270: aborts answered `aborted`
//!   that left the lane held for hours). Anything else is `Ineffective`, its own outcome.
//! - **Dry run** (the default) names the destructive steps it would take and takes none; the
//!   session goes straight to unrecovered, which only reports.
//! - A session that is free again, or moves again, is `Recovered` from any stage.

use std::time::Duration;

use crate::domain::ApprovalId;

/// What a session's row says, compared round to round: any change is progress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprint {
    pub updated_at: Option<i64>,
    pub total_tokens: i64,
    /// `activeRunIds` where the gateway names them (sorted).
    pub run_ids: Vec<String>,
}

/// One session this round.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `hasActiveRun`.
    pub active: bool,
    pub fingerprint: Fingerprint,
    /// The last run event that named the session (unix ms), as the link heard it.
    pub last_event_ms: Option<i64>,
    /// Inside a tool call the gateway reported started and not finished.
    pub in_tool_call: bool,
    /// This session's stall threshold (its agent's, or the default).
    pub stall_after: Duration,
    /// A pending approval in the fleet's inbox asked by this session's run (its id): the run
    /// waits for a person, it is not stalled.
    pub waiting_on_approval: Option<ApprovalId>,
}

/// What is tried on a stalled session itself, in ladder order (the gateway restart at the
/// end is the gateway's, not the session's: [`Decision::Unrecovered`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remedy {
    Abort,
    Reset,
}

impl Remedy {
    pub fn as_str(self) -> &'static str {
        match self {
            Remedy::Abort => "abort",
            Remedy::Reset => "reset",
        }
    }
}

/// Where a session is on the ladder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    Watching,
    /// `remedy` was taken at `at_ms`; the lane must be free by `at_ms + verify_after`.
    Verifying {
        remedy: Remedy,
        at_ms: i64,
    },
    /// Nothing more to try: reported, alerted, the gateway degraded.
    Unrecovered {
        since_ms: i64,
    },
}

/// What the watchdog remembers of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub fingerprint: Fingerprint,
    /// The last sign of life (unix ms).
    pub progress_ms: i64,
    pub stage: Stage,
    /// The runs that were active when the session stalled.
    pub stalled_runs: Vec<String>,
    /// The approval it was last seen waiting on.
    pub waiting_on: Option<ApprovalId>,
}

impl Watched {
    pub fn unrecovered(&self) -> bool {
        matches!(self.stage, Stage::Unrecovered { .. })
    }
}

/// What the operator allows and the gateway offers.
#[derive(Debug, Clone, Copy)]
pub struct Ladder {
    pub verify_after: Duration,
    pub dry_run: bool,
    pub abort: bool,
    pub reset: bool,
    pub restart: bool,
    /// How long the restart's drain waits before the restart is asked past the work.
    pub restart_drain_timeout: Duration,
    /// The gateway advertises `sessions.abort` / `sessions.reset`.
    pub offers_abort: bool,
    pub offers_reset: bool,
}

impl Ladder {
    /// The remedies after `after` (or all), in ladder order, that may be tried here.
    fn remedies_after(&self, after: Option<Remedy>) -> impl Iterator<Item = Remedy> + '_ {
        [
            (Remedy::Abort, self.abort && self.offers_abort),
            (Remedy::Reset, self.reset && self.offers_reset),
        ]
        .into_iter()
        .skip_while(move |(r, _)| after.is_some_and(|a| *r != a))
        .skip(usize::from(after.is_some()))
        .filter_map(|(r, ok)| ok.then_some(r))
    }

    /// What a dry run names: every destructive step that would be taken.
    fn would(&self) -> Vec<&'static str> {
        let mut would: Vec<&'static str> = self.remedies_after(None).map(Remedy::as_str).collect();
        if self.restart {
            would.push("restart");
        }
        would
    }
}

/// What to carry out for one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Report it: event, metric, audit. `would` names the steps a dry run did not take.
    Stalled {
        idle_ms: i64,
        would: Vec<&'static str>,
    },
    /// Take this remedy now.
    Take(Remedy),
    /// The remedy was answered but the lane is still held after `verify_after`.
    Ineffective(Remedy),
    /// Nothing more to try: degrade the gateway, alert, and restart it if `restart`.
    Unrecovered { restart: bool },
    /// Free or moving again; `after` is the remedy that freed it (`None`: it moved by itself,
    /// or after the ladder ended).
    Recovered { after: Option<Remedy> },
    /// Its run waits on this approval (reported once per approval): not stalled.
    WaitingOnApproval { approval_id: ApprovalId },
}

/// One round for one session: `None` for a session first seen now, `seen` `None` for a session
/// the gateway no longer lists as active. Returns what to remember (`None`: forget it) and
/// what to carry out, in order.
pub fn step(
    was: Option<&Watched>,
    seen: Option<&Seen>,
    ladder: &Ladder,
    now_ms: i64,
) -> (Option<Watched>, Vec<Decision>) {
    let (Some(seen), Some(was)) = (seen.filter(|s| s.active), was) else {
        // Not active: forgotten, and recovered if it was on the ladder.
        let decisions = match was.map(|w| &w.stage) {
            Some(Stage::Verifying { remedy, .. }) => vec![Decision::Recovered {
                after: Some(*remedy),
            }],
            Some(Stage::Unrecovered { .. }) => vec![Decision::Recovered { after: None }],
            _ => Vec::new(),
        };
        // Active and first seen now: watched from now.
        let watched = seen.filter(|s| s.active).map(|s| Watched {
            fingerprint: s.fingerprint.clone(),
            progress_ms: s.last_event_ms.unwrap_or(now_ms).min(now_ms),
            stage: Stage::Watching,
            stalled_runs: Vec::new(),
            waiting_on: s.waiting_on_approval.clone(),
        });
        let mut decisions = decisions;
        if let Some(approval_id) = watched.as_ref().and_then(|w| w.waiting_on.clone()) {
            decisions.push(Decision::WaitingOnApproval { approval_id });
        }
        return (watched, decisions);
    };
    // Waiting on a person is not a stall: as a long tool call, it counts as life.
    let moved = seen.fingerprint != was.fingerprint
        || seen.last_event_ms.is_some_and(|e| e > was.progress_ms)
        || seen.in_tool_call
        || seen.waiting_on_approval.is_some();
    let waiting = seen
        .waiting_on_approval
        .clone()
        .filter(|id| was.waiting_on.as_ref() != Some(id))
        .map(|approval_id| Decision::WaitingOnApproval { approval_id });
    let next = Watched {
        fingerprint: seen.fingerprint.clone(),
        progress_ms: if moved {
            now_ms.max(was.progress_ms)
        } else {
            was.progress_ms
        },
        waiting_on: seen.waiting_on_approval.clone(),
        ..was.clone()
    };
    let (next, mut decisions) = ladder_step(was, seen, next, moved, ladder, now_ms);
    decisions.splice(0..0, waiting);
    (next, decisions)
}

/// The ladder's part of [`step`] for a session watched before and active now.
fn ladder_step(
    was: &Watched,
    seen: &Seen,
    mut next: Watched,
    moved: bool,
    ladder: &Ladder,
    now_ms: i64,
) -> (Option<Watched>, Vec<Decision>) {
    // The lane after a remedy: free only if none of the stalled runs is still active (a
    // gateway that names no runs proves nothing but `hasActiveRun`, which is true here).
    let lane_freed = !seen.fingerprint.run_ids.is_empty()
        && !was.stalled_runs.is_empty()
        && !seen
            .fingerprint
            .run_ids
            .iter()
            .any(|r| was.stalled_runs.contains(r));
    match was.stage.clone() {
        Stage::Watching => {
            let idle = now_ms.saturating_sub(next.progress_ms);
            let stall_ms = i64::try_from(seen.stall_after.as_millis()).unwrap_or(i64::MAX);
            if idle < stall_ms {
                return (Some(next), Vec::new());
            }
            next.stalled_runs = seen.fingerprint.run_ids.clone();
            let mut decisions = vec![Decision::Stalled {
                idle_ms: idle,
                would: if ladder.dry_run {
                    ladder.would()
                } else {
                    Vec::new()
                },
            }];
            decisions.extend(climb(&mut next, None, ladder, now_ms));
            (Some(next), decisions)
        }
        Stage::Verifying { remedy, .. } if lane_freed => {
            next.stage = Stage::Watching;
            next.progress_ms = now_ms;
            next.stalled_runs.clear();
            (
                Some(next),
                vec![Decision::Recovered {
                    after: Some(remedy),
                }],
            )
        }
        Stage::Verifying { remedy, at_ms } => {
            let verify_ms = i64::try_from(ladder.verify_after.as_millis()).unwrap_or(i64::MAX);
            if now_ms.saturating_sub(at_ms) < verify_ms {
                return (Some(next), Vec::new());
            }
            let mut decisions = vec![Decision::Ineffective(remedy)];
            decisions.extend(climb(&mut next, Some(remedy), ladder, now_ms));
            (Some(next), decisions)
        }
        Stage::Unrecovered { .. } if moved => {
            next.stage = Stage::Watching;
            next.stalled_runs.clear();
            (Some(next), vec![Decision::Recovered { after: None }])
        }
        Stage::Unrecovered { .. } => (Some(next), Vec::new()),
    }
}

/// The next rung after `after`: the next remedy allowed and offered (none in a dry run), or
/// the end of the ladder.
fn climb(next: &mut Watched, after: Option<Remedy>, ladder: &Ladder, now_ms: i64) -> Vec<Decision> {
    let remedy = (!ladder.dry_run)
        .then(|| ladder.remedies_after(after).next())
        .flatten();
    match remedy {
        Some(remedy) => {
            next.stage = Stage::Verifying {
                remedy,
                at_ms: now_ms,
            };
            vec![Decision::Take(remedy)]
        }
        None => {
            next.stage = Stage::Unrecovered { since_ms: now_ms };
            vec![Decision::Unrecovered {
                restart: ladder.restart && !ladder.dry_run,
            }]
        }
    }
}

/// What is known of a gateway before asking it anything.
#[derive(Debug, Clone, Copy)]
pub struct Known {
    /// Sessions with a run in progress in its cached session list (`None`: no list cached).
    pub running_cached: Option<usize>,
    /// Sessions of it the watchdog follows now (stalled, being remedied, or being watched).
    pub following: usize,
    /// Since the watchdog last asked it, or first saw it (its cached list, read when the
    /// link connected, stands for a first look).
    pub since_last_look: Duration,
}

/// Whether a gateway's active sessions are asked for this round. Its cached session list
/// (fresh on every `sessions.changed`, which a run's start sends) says whether a run is in
/// progress there; a gateway with none, whose sessions the watchdog follows none of, has
/// nothing that could stall, and is asked only once every `shortest_stall` (the least
/// `stall_after` of any agent) in case the list missed a run — a session cannot be stalled
/// for less than that, so none goes unseen for longer than twice the threshold. A fleet of
/// 10,000 idle gateways is then not asked 333 times a second — nor all at once at the first
/// round after a start, whose cached lists were read moments before, when the links connected.
pub fn worth_a_look(known: Known, shortest_stall: Duration) -> bool {
    known.running_cached.is_none_or(|n| n > 0)
        || known.following > 0
        || known.since_last_look >= shortest_stall
}

#[cfg(test)]
#[path = "rule_tests.rs"]
mod tests;
