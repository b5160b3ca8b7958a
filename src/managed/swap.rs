//! Swapping a managed gateway's release, with a real rollback (docs/design.md, *Managed
//! gateways*): the host's half of an upgrade — the fleet's half (waves, canaries, budgets,
//! drain) is the operation's. Pure: the step and what just happened in, the next step and what
//! to do out; the runner carries the actions out and records each step before the next.
//!
//! In order: install the target beside the current release; `openclaw database preflight` a
//! consistent copy of the state with the *target* release (a refusal here costs nothing: the
//! gateway was never stopped); stop the gateway (SIGTERM, its drain); copy its state (the
//! rollback's snapshot: a target that started may have migrated the state, and the previous
//! release then refuses it with exit 78 — 2026.9.5 on 2026.9.6's state does); start the target
//! on the same state; then it must run for `min_healthy_time` within `healthy_deadline`. A
//! target that exits (78 included) or is not healthy in time is stopped, the snapshot put
//! back, and the previous release started again: the swap ends `RolledBack` with why.

use super::policy::Exit;

/// Where a swap is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Installing,
    Preflighting,
    Stopping,
    Snapshotting,
    StartingTarget,
    /// The target runs since `since_ms` (not yet `min_healthy_time`).
    Settling {
        since_ms: i64,
    },
    /// Putting the previous release back: stop the target, restore the snapshot, start it.
    RollingBack {
        why: String,
    },
    /// The previous release runs again; the swap ended rolled back.
    RolledBack {
        why: String,
    },
    /// The target runs and stayed healthy.
    Done,
    /// Over without a change (nothing was stopped), or a rollback that could not finish.
    Failed {
        why: String,
    },
}

/// What the runner reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Installed(Result<(), String>),
    Preflighted(Result<(), String>),
    Stopped,
    Snapshotted(Result<(), String>),
    /// The target owns its listener and `/startupz` says `started`.
    TargetStarted,
    /// The target ended (while starting or settling).
    TargetExited(Exit),
    /// The clock (the runner looks every so often).
    Tick,
    /// The previous release runs again on the restored state, or could not.
    PreviousRestored(Result<(), String>),
}

/// What the runner does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Install,
    Preflight,
    /// SIGTERM, the drain, SIGKILL at the stop timeout.
    Stop,
    Snapshot,
    StartTarget,
    /// Stop the target (if it runs), put the snapshot back, start the previous release.
    RollBack,
    /// Nothing: wait for the next input.
    Wait,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gates {
    pub min_healthy_ms: i64,
    /// From the target's start: it must have been healthy for `min_healthy_ms` by then.
    pub healthy_deadline_ms: i64,
}

/// The swap's state: its step and when the target was started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swap {
    pub step: Step,
    started_target_ms: Option<i64>,
}

impl Default for Swap {
    fn default() -> Self {
        Swap {
            step: Step::Installing,
            started_target_ms: None,
        }
    }
}

impl Swap {
    /// The first action.
    pub fn begin(&self) -> Action {
        Action::Install
    }

    pub fn over(&self) -> bool {
        matches!(
            self.step,
            Step::Done | Step::RolledBack { .. } | Step::Failed { .. }
        )
    }

    fn roll_back(&mut self, why: String) -> Action {
        self.step = Step::RollingBack { why };
        Action::RollBack
    }

    /// What `input` at `now_ms` means for the swap, and what to do next.
    pub fn next(&mut self, input: Input, now_ms: i64, gates: Gates) -> Action {
        use Input as I;
        match (&self.step, input) {
            (Step::Installing, I::Installed(Ok(()))) => {
                self.step = Step::Preflighting;
                Action::Preflight
            }
            (Step::Installing, I::Installed(Err(e))) => {
                self.step = Step::Failed {
                    why: format!("the target could not be installed: {e}"),
                };
                Action::Wait
            }
            (Step::Preflighting, I::Preflighted(Ok(()))) => {
                self.step = Step::Stopping;
                Action::Stop
            }
            (Step::Preflighting, I::Preflighted(Err(e))) => {
                self.step = Step::Failed {
                    why: format!("the target refused a copy of the state: {e}"),
                };
                Action::Wait
            }
            (Step::Stopping, I::Stopped) => {
                self.step = Step::Snapshotting;
                Action::Snapshot
            }
            (Step::Snapshotting, I::Snapshotted(Ok(()))) => {
                self.step = Step::StartingTarget;
                self.started_target_ms = Some(now_ms);
                Action::StartTarget
            }
            // Nothing changed yet but the stop: the previous release starts again as it was.
            (Step::Snapshotting, I::Snapshotted(Err(e))) => self.roll_back(format!(
                "the state could not be copied before the swap: {e}"
            )),
            (Step::StartingTarget, I::TargetStarted) => {
                self.step = Step::Settling { since_ms: now_ms };
                self.settle(now_ms, gates)
            }
            (Step::StartingTarget | Step::Settling { .. }, I::TargetExited(exit)) => {
                let why = match exit {
                    Exit::Code(Exit::REFUSED) => "the target refused to start (exit 78)".to_owned(),
                    other => format!("the target ended ({})", other.describe()),
                };
                self.roll_back(why)
            }
            (Step::StartingTarget, I::Tick) => {
                if self.past_deadline(now_ms, gates) {
                    self.roll_back("the target did not start within its deadline".into())
                } else {
                    Action::Wait
                }
            }
            (Step::Settling { .. }, I::Tick) => self.settle(now_ms, gates),
            (Step::RollingBack { why }, I::PreviousRestored(Ok(()))) => {
                self.step = Step::RolledBack { why: why.clone() };
                Action::Wait
            }
            (Step::RollingBack { why }, I::PreviousRestored(Err(e))) => {
                self.step = Step::Failed {
                    why: format!("{why}; and the previous release could not be put back: {e}"),
                };
                Action::Wait
            }
            // Anything else (a late report, a tick between steps) changes nothing.
            _ => Action::Wait,
        }
    }

    fn past_deadline(&self, now_ms: i64, gates: Gates) -> bool {
        self.started_target_ms
            .is_some_and(|t| now_ms.saturating_sub(t) > gates.healthy_deadline_ms)
    }

    fn settle(&mut self, now_ms: i64, gates: Gates) -> Action {
        let Step::Settling { since_ms } = self.step else {
            return Action::Wait;
        };
        if now_ms.saturating_sub(since_ms) >= gates.min_healthy_ms {
            self.step = Step::Done;
            Action::Wait
        } else if self.past_deadline(now_ms, gates) {
            self.roll_back("the target was not healthy for long enough within its deadline".into())
        } else {
            Action::Wait
        }
    }
}

#[cfg(test)]
#[path = "swap_tests.rs"]
mod tests;
