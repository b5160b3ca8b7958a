//! `[approvals]`: whether this daemon is its gateways' approval client, and what it does about
//! an approval nobody answers. Connecting with `caps: ["approvals"]` makes a 2026.9 gateway
//! wait for the daemon's answer to each exec and plugin approval (up to 30 minutes) instead of
//! denying it at once when no approval client is connected — a responsibility, so it is off
//! unless asked for (fleet-wide here, or per gateway with its own `approvals` field, which
//! wins), and an approval left unanswered is escalated (`escalate_after`: a signed webhook
//! alert) and then denied by the daemon (`auto_deny_after`; `0s` never). `[approvals.exec]` and
//! `[approvals.plugin]` override both per kind.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, duration, duration_in};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalsConfig {
    /// The fleet's default; a gateway's `approvals: true|false` overrides it.
    pub enabled: bool,
    /// An approval pending this long is escalated: one alert to the webhooks.
    #[serde(with = "duration")]
    pub escalate_after: Duration,
    /// An approval pending this long is denied by the daemon (`0s`: never).
    #[serde(with = "duration")]
    pub auto_deny_after: Duration,
    pub exec: KindPolicy,
    pub plugin: KindPolicy,
}

/// Per-kind overrides of the fleet's timings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KindPolicy {
    #[serde(with = "duration::option")]
    pub escalate_after: Option<Duration>,
    #[serde(with = "duration::option")]
    pub auto_deny_after: Option<Duration>,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        ApprovalsConfig {
            enabled: false,
            escalate_after: Duration::from_secs(120),
            auto_deny_after: Duration::from_secs(600),
            exec: KindPolicy::default(),
            plugin: KindPolicy::default(),
        }
    }
}

/// What to do about one kind's unanswered approvals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    pub escalate_after: Duration,
    /// `None`: never denied by the daemon.
    pub auto_deny_after: Option<Duration>,
}

impl ApprovalsConfig {
    /// Whether a gateway whose own setting is `own` is answered by this daemon.
    pub fn for_gateway(&self, own: Option<bool>) -> bool {
        own.unwrap_or(self.enabled)
    }

    /// The timings for approvals of `kind` (`exec`, `plugin`; any other kind: the fleet's).
    pub fn timings(&self, kind: &str) -> Timings {
        let own = match kind {
            "exec" => &self.exec,
            "plugin" => &self.plugin,
            _ => &KindPolicy::default(),
        };
        let auto = own.auto_deny_after.unwrap_or(self.auto_deny_after);
        Timings {
            escalate_after: own.escalate_after.unwrap_or(self.escalate_after),
            auto_deny_after: (!auto.is_zero()).then_some(auto),
        }
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        let (s, day) = (Duration::from_secs, Duration::from_secs(86_400));
        let all = [
            ("approvals", self.escalate_after, self.auto_deny_after),
            (
                "approvals.exec",
                self.exec.escalate_after.unwrap_or(s(1)),
                self.exec.auto_deny_after.unwrap_or_default(),
            ),
            (
                "approvals.plugin",
                self.plugin.escalate_after.unwrap_or(s(1)),
                self.plugin.auto_deny_after.unwrap_or_default(),
            ),
        ];
        for (key, escalate, auto) in all {
            duration_in(&format!("{key}.escalate_after"), escalate, s(1), day)?;
            if !auto.is_zero() {
                duration_in(&format!("{key}.auto_deny_after"), auto, s(1), day)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_s_own_timings_win_and_zero_never_denies() {
        let mut cfg = ApprovalsConfig::default();
        assert_eq!(
            cfg.timings("exec"),
            Timings {
                escalate_after: Duration::from_secs(120),
                auto_deny_after: Some(Duration::from_secs(600)),
            }
        );
        cfg.plugin.auto_deny_after = Some(Duration::ZERO);
        cfg.plugin.escalate_after = Some(Duration::from_secs(5));
        assert_eq!(cfg.timings("plugin").auto_deny_after, None);
        assert_eq!(cfg.timings("plugin").escalate_after, Duration::from_secs(5));
        assert_eq!(cfg.timings("system-agent"), cfg.timings("exec"));
    }

    #[test]
    fn timings_out_of_range_are_refused_naming_the_key() {
        let mut cfg = ApprovalsConfig::default();
        cfg.exec.auto_deny_after = Some(Duration::from_secs(90_000));
        let e = cfg.check().unwrap_err().to_string();
        assert!(e.contains("approvals.exec.auto_deny_after"), "{e}");
    }
}
