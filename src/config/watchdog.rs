//! `[watchdog]`: the stuck-session watchdog (docs/design.md, *Stuck-session watchdog*). On by
//! default and reporting only: `dry_run = true` says what it would abort, reset or restart and
//! does none of it until an operator turns it off.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, agent_ids_ok, duration, duration_in};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchdogConfig {
    pub enabled: bool,
    /// How often every linked gateway's active sessions are looked at.
    #[serde(with = "duration")]
    pub interval: Duration,
    /// An active run with no sign of life this long is stalled.
    #[serde(with = "duration")]
    pub stall_after: Duration,
    /// How long after an abort or a reset the session must be free (or progressing) for the
    /// step to count as having worked.
    #[serde(with = "duration")]
    pub verify_after: Duration,
    /// Report only: the destructive steps (abort, reset, restart) are named, not taken.
    pub dry_run: bool,
    /// The ladder's destructive steps, each on its own.
    pub abort: bool,
    pub reset: bool,
    /// A restart of a gateway whose stalled session survived abort and reset (a rolling
    /// restart of that one gateway: drained first, fenced to its process).
    pub restart: bool,
    /// How long that restart's drain waits for the gateway's other work before the restart
    /// is asked past it (`skipDeferral`: the wedged run would hold a drain for ever).
    #[serde(with = "duration")]
    pub restart_drain_timeout: Duration,
    /// Per-agent `stall_after` (an agent whose runs think for long).
    pub agents: BTreeMap<String, AgentWatch>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentWatch {
    #[serde(with = "duration")]
    pub stall_after: Duration,
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        WatchdogConfig {
            enabled: true,
            interval: Duration::from_secs(30),
            stall_after: Duration::from_secs(600),
            verify_after: Duration::from_secs(60),
            dry_run: true,
            abort: true,
            reset: true,
            restart: false,
            restart_drain_timeout: Duration::from_secs(120),
            agents: BTreeMap::new(),
        }
    }
}

impl WatchdogConfig {
    /// The stall threshold for `agent`.
    /// The least stall threshold of any agent (the default's, or a shorter override).
    pub fn shortest_stall_after(&self) -> Duration {
        self.agents
            .values()
            .map(|w| w.stall_after)
            .fold(self.stall_after, Duration::min)
    }

    pub fn stall_after_for(&self, agent: Option<&str>) -> Duration {
        agent
            .and_then(|a| self.agents.get(a))
            .map_or(self.stall_after, |w| w.stall_after)
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        let range = duration_in;
        let (ms, s) = (Duration::from_millis, Duration::from_secs);
        range("watchdog.interval", self.interval, ms(100), s(3600))?;
        range(
            "watchdog.stall_after",
            self.stall_after,
            ms(500),
            s(7 * 86_400),
        )?;
        range("watchdog.verify_after", self.verify_after, ms(100), s(3600))?;
        range(
            "watchdog.restart_drain_timeout",
            self.restart_drain_timeout,
            s(1),
            s(3600),
        )?;
        agent_ids_ok("watchdog.agents", self.agents.keys())?;
        for (agent, w) in &self.agents {
            range(
                &format!("watchdog.agents.{agent}.stall_after"),
                w.stall_after,
                ms(500),
                s(7 * 86_400),
            )?;
        }
        Ok(())
    }
}
