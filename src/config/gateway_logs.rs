//! `[gateway_logs]`: the central log tail. Every linked gateway that offers `logs.tail` has
//! its file log read from where the last read ended, and the new lines join `GET /api/logs`
//! and the `log` events.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, duration, duration_in};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayLogsConfig {
    pub enabled: bool,
    /// How often a gateway that is writing is read.
    #[serde(with = "duration")]
    pub interval: Duration,
    /// How often a quiet gateway (its last read brought no line) is read (never more often
    /// than `interval`); a line brings it back to `interval`.
    #[serde(with = "duration")]
    pub idle_interval: Duration,
    /// Lines asked for per read (the gateway's own cap is 5,000).
    pub max_lines: u32,
    /// Bytes asked for per read (the gateway's own cap is 1,000,000): what a gateway can make
    /// the daemon hold at once.
    pub max_bytes: u32,
    /// Lines read from a gateway the first time it is seen (its recent past).
    pub initial_lines: u32,
}

impl Default for GatewayLogsConfig {
    fn default() -> Self {
        GatewayLogsConfig {
            enabled: true,
            interval: Duration::from_secs(5),
            idle_interval: Duration::from_secs(120),
            max_lines: 500,
            max_bytes: 256 * 1024,
            initial_lines: 50,
        }
    }
}

impl GatewayLogsConfig {
    pub fn check(&self) -> Result<(), ConfigError> {
        duration_in(
            "gateway_logs.interval",
            self.interval,
            Duration::from_millis(100),
            Duration::from_secs(3600),
        )?;
        duration_in(
            "gateway_logs.idle_interval",
            self.idle_interval,
            Duration::from_millis(100),
            Duration::from_secs(3600),
        )?;
        for (key, value, max) in [
            ("gateway_logs.max_lines", self.max_lines, 5_000),
            ("gateway_logs.max_bytes", self.max_bytes, 1_000_000),
            ("gateway_logs.initial_lines", self.initial_lines, 5_000),
        ] {
            if value < 1 || value > max {
                return Err(ConfigError::Invalid(format!(
                    "{key} must be between 1 and {max} (got {value})"
                )));
            }
        }
        Ok(())
    }
}
