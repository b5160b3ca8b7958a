//! The words of a watchdog step: the `session.watchdog` event as the watchdog publishes it and
//! the alerts read it (one type both sides name, so neither reads the other's payload by key),
//! and the step and outcome its metric and audit row name.

use serde_json::Value;

use super::rule::Remedy;

/// A `session.watchdog` event's payload: the step taken on a session, with what it found and
/// did (published here, read typed by the alerts).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WatchdogEvent {
    pub step: WatchdogStep,
    pub session_key: String,
    /// The step's own findings: `outcome`, `agent_id`, `run_ids`, `gateway_name`, …
    #[serde(flatten)]
    pub details: serde_json::Map<String, Value>,
}

/// A watchdog step as its event names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchdogStep {
    Stalled,
    Abort,
    Reset,
    Unrecovered,
    Recovered,
    WaitingOnApproval,
}

/// A watchdog step, as its event, metric and audit row name it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Step {
    Stalled,
    Remedy(Remedy),
    Unrecovered,
    Recovered,
    WaitingOnApproval,
}

impl Step {
    pub(super) fn word(self) -> WatchdogStep {
        match self {
            Step::Stalled => WatchdogStep::Stalled,
            Step::Remedy(Remedy::Abort) => WatchdogStep::Abort,
            Step::Remedy(Remedy::Reset) => WatchdogStep::Reset,
            Step::Unrecovered => WatchdogStep::Unrecovered,
            Step::Recovered => WatchdogStep::Recovered,
            Step::WaitingOnApproval => WatchdogStep::WaitingOnApproval,
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Step::Stalled => "stalled",
            Step::Remedy(r) => r.as_str(),
            Step::Unrecovered => "unrecovered",
            Step::Recovered => "recovered",
            Step::WaitingOnApproval => "waiting_on_approval",
        }
    }

    pub(super) fn audit_action(self) -> &'static str {
        match self {
            Step::Stalled => "watchdog.stalled",
            Step::Remedy(Remedy::Abort) => "watchdog.abort",
            Step::Remedy(Remedy::Reset) => "watchdog.reset",
            Step::Unrecovered => "watchdog.unrecovered",
            Step::Recovered => "watchdog.recovered",
            Step::WaitingOnApproval => "watchdog.waiting_on_approval",
        }
    }
}

/// How a step went (the metric's `outcome` label: a known set).
#[derive(Debug, Clone, Copy)]
pub(super) enum Outcome {
    Detected,
    Taken,
    Failed,
    Ineffective,
    Reported,
    Effective,
    ByItself,
}

impl Outcome {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Outcome::Detected => "detected",
            Outcome::Taken => "taken",
            Outcome::Failed => "failed",
            Outcome::Ineffective => "ineffective",
            Outcome::Reported => "reported",
            Outcome::Effective => "effective",
            Outcome::ByItself => "by_itself",
        }
    }

    /// Logged as a warning: something did not work, or nothing more can be tried.
    pub(super) fn worth_a_warning(self) -> bool {
        matches!(
            self,
            Outcome::Failed | Outcome::Ineffective | Outcome::Reported
        )
    }
}
