//! `[usage]`: the usage and cost roll-up (each gateway's `usage.cost`, per agent and day) and
//! the per-agent daily budgets that refuse new spawns once spent.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, agent_ids_ok, duration, duration_in};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsageConfig {
    pub enabled: bool,
    /// How often each gateway's usage is read.
    #[serde(with = "duration")]
    pub interval: Duration,
    /// Days read from a gateway the first time it is seen (then today and yesterday).
    pub backfill_days: u32,
    /// Per-agent budgets: `[usage.budgets.<agent>] daily_usd = 25.0`.
    pub budgets: BTreeMap<String, Budget>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Once the agent's cost today (UTC, across every gateway) reaches this, its new spawns
    /// are refused (429 `budget_exceeded`).
    pub daily_usd: f64,
}

impl Default for UsageConfig {
    fn default() -> Self {
        UsageConfig {
            enabled: true,
            interval: Duration::from_secs(300),
            backfill_days: 30,
            budgets: BTreeMap::new(),
        }
    }
}

impl UsageConfig {
    /// The daily budget of `agent`, if it has one.
    pub fn daily_budget(&self, agent: &str) -> Option<f64> {
        self.budgets.get(agent).map(|b| b.daily_usd)
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        duration_in(
            "usage.interval",
            self.interval,
            Duration::from_millis(100),
            Duration::from_secs(86_400),
        )?;
        if !(1..=366).contains(&self.backfill_days) {
            return Err(ConfigError::Invalid(format!(
                "usage.backfill_days must be between 1 and 366 (got {})",
                self.backfill_days
            )));
        }
        agent_ids_ok("usage.budgets", self.budgets.keys())?;
        for (agent, b) in &self.budgets {
            if !b.daily_usd.is_finite() || b.daily_usd <= 0.0 || b.daily_usd > 1e9 {
                return Err(ConfigError::Invalid(format!(
                    "usage.budgets.{agent}.daily_usd must be more than 0 and at most 1e9 (got {})",
                    b.daily_usd
                )));
            }
        }
        Ok(())
    }
}
