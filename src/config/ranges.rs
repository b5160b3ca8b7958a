//! Every number and duration of the configuration within a range an operator could mean.

use std::time::Duration;

use super::{Config, ConfigError};

impl Config {
    /// Every number and duration within a range an operator could mean. `heartbeat_interval =
    /// "1ns"` cost 41 % of a core for one gateway; `workers = 100000` or `shutdown_timeout =
    /// "100000d"` passed `check-config` before.
    pub(super) fn check_ranges(&self) -> Result<(), ConfigError> {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        let (g, l) = (&self.gateways, &self.limits);
        let durations = [
            (
                "server.shutdown_timeout",
                self.server.shutdown_timeout,
                s(0),
                s(3600),
            ),
            // Under `ctl events`' 60 s of silence, and under the 60 s idle timeouts of common
            // proxies and load balancers, which the keep-alive is for.
            (
                "server.stream_keepalive",
                self.server.stream_keepalive,
                s(1),
                s(50),
            ),
            (
                "gateways.heartbeat_interval",
                g.heartbeat_interval,
                ms(100),
                s(3600),
            ),
            (
                "gateways.health_interval",
                g.health_interval,
                s(1),
                s(86_400),
            ),
            ("gateways.probe_timeout", g.probe_timeout, ms(100), s(300)),
            (
                "gateways.breaker_cooldown",
                g.breaker_cooldown,
                ms(100),
                s(86_400),
            ),
            ("gateways.backoff_max", g.backoff_max, ms(100), s(3600)),
            (
                "gateways.connect_timeout",
                g.connect_timeout,
                ms(100),
                s(600),
            ),
            (
                "gateways.handshake_timeout",
                g.handshake_timeout,
                ms(100),
                s(600),
            ),
            ("gateways.rpc_timeout", g.rpc_timeout, ms(100), s(3600)),
            (
                "gateways.operation_timeout",
                g.operation_timeout,
                ms(100),
                s(3600),
            ),
            (
                "gateways.pairing_retry",
                g.pairing_retry,
                ms(100),
                s(86_400),
            ),
            (
                "limits.manual_health_interval",
                l.manual_health_interval,
                s(0),
                s(3600),
            ),
            (
                "connections.timeout",
                self.connections.timeout,
                s(1),
                s(86_400),
            ),
            (
                "auth.key_refresh_interval",
                self.auth.key_refresh_interval,
                ms(10),
                s(3600),
            ),
        ];
        for (key, value, min, max) in durations {
            duration_in(key, value, min, max)?;
        }
        let numbers: [(&str, u64, u64, u64); 10] = [
            (
                "server.workers (0 = one per core)",
                self.server.workers as u64,
                0,
                1024,
            ),
            (
                "server.streams_per_key",
                self.server.streams_per_key as u64,
                1,
                100_000,
            ),
            // Each stream is an open file: past 100,000 the daemon's gateways would have none.
            (
                "server.streams_max",
                self.server.streams_max as u64,
                1,
                100_000,
            ),
            (
                "database.pool_size (0 = the backend's default)",
                u64::from(self.database.pool_size),
                0,
                256,
            ),
            ("gateways.missed_pongs", u64::from(g.missed_pongs), 1, 100),
            (
                "gateways.breaker_threshold",
                u64::from(g.breaker_threshold),
                1,
                1000,
            ),
            (
                "gateways.degraded_latency_ms",
                g.degraded_latency_ms,
                1,
                600_000,
            ),
            (
                "limits.gateway_ops_per_minute (0 = off)",
                u64::from(l.gateway_ops_per_minute),
                0,
                1_000_000,
            ),
            (
                "limits.session_control_per_minute (0 = off)",
                u64::from(l.session_control_per_minute),
                0,
                1_000_000,
            ),
            (
                "limits.max_body_bytes",
                l.max_body_bytes as u64,
                1024,
                64 * 1024 * 1024,
            ),
        ];
        for (key, value, min, max) in numbers {
            if value < min || value > max {
                return Err(ConfigError::Invalid(format!(
                    "{key} must be between {min} and {max} (got {value})"
                )));
            }
        }
        Ok(())
    }
}

/// `value` within `min..=max`, or the error naming `key` and the range.
pub(crate) fn duration_in(
    key: &str,
    value: Duration,
    min: Duration,
    max: Duration,
) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::Invalid(format!(
            "{key} must be between {} and {} (got {})",
            humantime::format_duration(min),
            humantime::format_duration(max),
            humantime::format_duration(value)
        )));
    }
    Ok(())
}
