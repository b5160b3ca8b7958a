//! The words of a managed gateway's process, as shown and stored.

use serde::{Deserialize, Serialize};

/// What an operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Desired {
    Running,
    Stopped,
}

/// Where its process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProcessState {
    /// Its release is being installed.
    Installing,
    /// Started; not yet owning its listener with `/startupz` `started`.
    Starting,
    Running,
    /// Crashed; started again after a delay.
    Backoff,
    /// Ended cleanly without asking to be restarted.
    Exited,
    /// Not started again: the start limit, a refusal (exit 78), or a failed install or start.
    Failed,
    /// SIGTERM sent; draining.
    Stopping,
    Stopped,
    /// Shown, never stored: no daemon of its host is up (in a cluster), so nobody watches the
    /// process — it was left running and is adopted when one returns.
    Unsupervised,
}

impl Desired {
    pub fn as_str(self) -> &'static str {
        match self {
            Desired::Running => "running",
            Desired::Stopped => "stopped",
        }
    }

    pub fn parse(s: &str) -> Option<Desired> {
        [Desired::Running, Desired::Stopped]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

impl ProcessState {
    pub const ALL: [ProcessState; 9] = [
        ProcessState::Installing,
        ProcessState::Starting,
        ProcessState::Running,
        ProcessState::Backoff,
        ProcessState::Exited,
        ProcessState::Failed,
        ProcessState::Stopping,
        ProcessState::Stopped,
        ProcessState::Unsupervised,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProcessState::Installing => "installing",
            ProcessState::Starting => "starting",
            ProcessState::Running => "running",
            ProcessState::Backoff => "backoff",
            ProcessState::Exited => "exited",
            ProcessState::Failed => "failed",
            ProcessState::Stopping => "stopping",
            ProcessState::Stopped => "stopped",
            ProcessState::Unsupervised => "unsupervised",
        }
    }

    pub fn parse(s: &str) -> Option<ProcessState> {
        ProcessState::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// A `gateway.managed` event's payload: where a managed gateway's process is now (published by
/// its runner, read typed by the alerts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedEvent {
    pub state: ProcessState,
    pub detail: Option<String>,
    pub pid: Option<i64>,
    pub restarts: i32,
    pub crashes: i32,
    pub last_exit: Option<String>,
}
