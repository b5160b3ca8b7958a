//! `[cron]`: the fleet's cron inventory and its missed-fire watchdog (docs/design.md, *Cron*).
//!
//! ```toml
//! [cron]
//! sweep_interval = "15m"     # each gateway's jobs read again at least this often
//! grace = "2m"               # how late a fire may start and still count
//! recover = "force"          # run a missed fire once (default "off": report it only)
//! recover_selector = "team=payments"   # only on the gateways this picks (unset: all)
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, duration, duration_in};
use gateway_supervisor_actors::labels::Selector;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CronConfig {
    pub enabled: bool,
    /// Each gateway's jobs are read again at least this often, gateways spread over it.
    #[serde(with = "duration")]
    pub sweep_interval: Duration,
    /// How late after its slot (and the job's stagger) a fire may start and still count; a
    /// slot is judged once this has passed.
    #[serde(with = "duration")]
    pub grace: Duration,
    /// How often the watchdog judges the slots that became decidable.
    #[serde(with = "duration")]
    pub watch_interval: Duration,
    /// What is done about a fire a gateway skipped: `off` (reported) or `force` (run once
    /// with `cron.run {mode: "force"}`, fenced to the process that skipped it).
    pub recover: Recover,
    /// `recover` applies to the gateways this label selector picks (unset: every gateway).
    pub recover_selector: Option<String>,
}

/// What the watchdog does about a missed fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Recover {
    Off,
    Force,
}

impl Default for CronConfig {
    fn default() -> Self {
        CronConfig {
            enabled: true,
            sweep_interval: Duration::from_secs(900),
            grace: Duration::from_secs(120),
            watch_interval: Duration::from_secs(15),
            recover: Recover::Off,
            recover_selector: None,
        }
    }
}

impl CronConfig {
    /// The gateways `recover` applies to.
    pub fn recover_selector(&self) -> Option<Selector> {
        self.recover_selector
            .as_deref()
            .and_then(|s| Selector::parse(s).ok())
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        duration_in(
            "cron.sweep_interval",
            self.sweep_interval,
            Duration::from_secs(10),
            Duration::from_secs(86_400),
        )?;
        duration_in(
            "cron.grace",
            self.grace,
            Duration::from_secs(1),
            Duration::from_secs(3600),
        )?;
        duration_in(
            "cron.watch_interval",
            self.watch_interval,
            Duration::from_secs(1),
            Duration::from_secs(600),
        )?;
        if let Some(text) = &self.recover_selector {
            Selector::parse(text).map_err(|e| {
                ConfigError::Invalid(format!("cron.recover_selector is not a selector: {e}"))
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_is_off_unless_asked_and_a_bad_selector_is_named() {
        let c = CronConfig::default();
        assert_eq!(c.recover, Recover::Off);
        assert!(c.check().is_ok());
        let bad = CronConfig {
            recover_selector: Some("=x".into()),
            ..CronConfig::default()
        };
        let e = bad.check().unwrap_err().to_string();
        assert!(e.contains("cron.recover_selector"), "{e}");
        let fast = CronConfig {
            sweep_interval: Duration::from_secs(1),
            ..CronConfig::default()
        };
        assert!(
            fast.check()
                .unwrap_err()
                .to_string()
                .contains("cron.sweep_interval")
        );
    }
}
