//! What happens after a managed gateway's process ends (docs/design.md, *Managed gateways*):
//! OpenClaw's external-supervisor contract, then systemd's `Restart=on-failure` with
//! `StartLimitBurst`/`StartLimitIntervalSec` and a doubling delay. Pure: the exit, the answer of
//! `openclaw gateway restart-handoff consume` and the clock in, the decision out.
//!
//! - A clean exit (0) is first offered to the handoff: `accepted` means the gateway asked to be
//!   restarted (`gateway.restart.request`, SIGUSR2), so it starts again at once and is not a
//!   crash. Without a handoff a clean exit stays down, as under `Restart=on-failure`; so does an
//!   exit by SIGTERM, SIGINT, SIGHUP or SIGPIPE (systemd counts them clean too).
//! - Exit 78 (`EX_CONFIG`) is the gateway refusing to start, e.g. a state database written by a
//!   newer release (a downgrade): starting it again cannot help, so it is not retried.
//! - Anything else is a crash: restarted after a delay that doubles from `delay` to
//!   `max_delay`, unless `burst` crashes fell within `interval` — then the supervisor gives up
//!   and says so (an alert), as systemd's start limit does.

use std::time::Duration;

/// How a process ended, as its keeper recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// It is gone and nothing recorded how (its keeper was killed too).
    Unknown,
}

impl Exit {
    /// Exit 78: the gateway refused to start (e.g. a downgrade); not retried.
    pub const REFUSED: i32 = 78;

    pub fn describe(&self) -> String {
        match self {
            Exit::Code(c) => format!("exit {c}"),
            Exit::Signal(s) => format!("killed by signal {s}"),
            Exit::Unknown => "ended, how is unknown".to_owned(),
        }
    }
}

/// The answer of `openclaw gateway restart-handoff consume --expected-pid <pid> --json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handoff {
    /// The gateway wrote a restart intent for this pid before it exited.
    Accepted { intent_id: String },
    /// No intent (`none`), or one refused (`rejected`: expired, invalid, another pid's).
    NotAccepted { reason: String },
    /// The CLI could not answer (it failed, timed out, or printed something else).
    Failed { reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashPolicy {
    /// Crashes within `interval` that make the supervisor give up (systemd's
    /// `StartLimitBurst`).
    pub burst: u32,
    pub interval: Duration,
    /// The delay before the first restart after a crash; doubled for each crash in a row.
    pub delay: Duration,
    pub max_delay: Duration,
}

impl Default for CrashPolicy {
    fn default() -> Self {
        CrashPolicy {
            burst: 5,
            interval: Duration::from_secs(600),
            delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }
}

/// Why a gateway is not started again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GiveUp {
    /// It ended cleanly and asked for no restart.
    Clean,
    /// Exit 78: it refused to start (e.g. a downgrade).
    Refused,
    /// `burst` crashes within `interval`.
    StartLimit { crashes: u32, within: Duration },
}

impl GiveUp {
    pub fn describe(&self) -> String {
        match self {
            GiveUp::Clean => "exited cleanly without asking to be restarted".to_owned(),
            GiveUp::Refused => "refused to start (exit 78: e.g. a state database newer than this release); not retried".to_owned(),
            GiveUp::StartLimit { crashes, within } => format!(
                "gave up after {crashes} crashes within {}",
                humantime::format_duration(*within)
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterExit {
    /// The gateway asked for it (an accepted handoff): start at once, not a crash.
    RestartNow,
    /// A crash: start again after `delay`.
    RestartAfter {
        delay: Duration,
        crashes_in_a_row: u32,
    },
    /// Stay down.
    GiveUp(GiveUp),
}

/// The crashes a gateway had, newest last (millisecond timestamps), and how many in a row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrashHistory {
    pub recent_ms: Vec<i64>,
    pub in_a_row: u32,
}

impl CrashHistory {
    /// A start that stayed up long enough ends a run of crashes (the delay starts over).
    pub fn stayed_up(&mut self) {
        self.in_a_row = 0;
    }
}

/// Whether a clean exit should be offered to the handoff (`consume` runs only then).
pub fn asks_handoff(exit: Exit) -> bool {
    exit == Exit::Code(0)
}

/// Signals systemd's `Restart=on-failure` counts as a clean end: SIGHUP, SIGINT, SIGTERM,
/// SIGPIPE.
fn clean_signal(signal: i32) -> bool {
    matches!(signal, 1 | 2 | 13 | 15)
}

/// The decision after `exit`; `handoff` is consume's answer when [`asks_handoff`] was true.
/// Records a crash in `history`.
pub fn after_exit(
    policy: &CrashPolicy,
    history: &mut CrashHistory,
    exit: Exit,
    handoff: Option<&Handoff>,
    now_ms: i64,
) -> AfterExit {
    match exit {
        Exit::Code(0) => {
            return match handoff {
                Some(Handoff::Accepted { .. }) => AfterExit::RestartNow,
                _ => AfterExit::GiveUp(GiveUp::Clean),
            };
        }
        Exit::Code(Exit::REFUSED) => return AfterExit::GiveUp(GiveUp::Refused),
        Exit::Signal(s) if clean_signal(s) => return AfterExit::GiveUp(GiveUp::Clean),
        Exit::Code(_) | Exit::Signal(_) | Exit::Unknown => {}
    }
    let window_ms = i64::try_from(policy.interval.as_millis()).unwrap_or(i64::MAX);
    history
        .recent_ms
        .retain(|t| now_ms.saturating_sub(*t) < window_ms);
    history.recent_ms.push(now_ms);
    history.in_a_row = history.in_a_row.saturating_add(1);
    let crashes = u32::try_from(history.recent_ms.len()).unwrap_or(u32::MAX);
    if crashes >= policy.burst {
        return AfterExit::GiveUp(GiveUp::StartLimit {
            crashes,
            within: policy.interval,
        });
    }
    let doublings = history.in_a_row.saturating_sub(1).min(20);
    let delay = policy
        .delay
        .saturating_mul(1u32 << doublings)
        .min(policy.max_delay);
    AfterExit::RestartAfter {
        delay,
        crashes_in_a_row: history.in_a_row,
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
