//! `[config]`: how often the daemon reads each gateway's configuration back (`config.get`)
//! to judge it against the profiles that pick it. A gateway is also judged when its link
//! connects and when a profile changes; the interval catches a change made on the gateway
//! itself (an operator's `openclaw config set`, a hand edit).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, duration, duration_in};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetConfigConfig {
    /// Each gateway linked here is judged again this often (10 s – 1 day, default 5 min).
    #[serde(with = "duration")]
    pub drift_interval: Duration,
}

impl Default for FleetConfigConfig {
    fn default() -> Self {
        FleetConfigConfig {
            drift_interval: Duration::from_secs(300),
        }
    }
}

impl FleetConfigConfig {
    pub fn check(&self) -> Result<(), ConfigError> {
        duration_in(
            "config.drift_interval",
            self.drift_interval,
            Duration::from_secs(10),
            Duration::from_secs(86_400),
        )
    }
}
