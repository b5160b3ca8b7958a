//! `[cluster]`: how this daemon takes part in a cluster on PostgreSQL (ignored on SQLite,
//! where a daemon is alone). Defaults in the spirit of Kubernetes leases: a 15 s lease renewed
//! every 3 s.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, duration};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// This daemon's name in the cluster (1–64 of `A-Z a-z 0-9 . _ -`); unset = the host name
    /// and a hash of the state directory, stable across restarts.
    pub instance_id: Option<String>,
    /// How peers reach this daemon's HTTP listener (`http://10.0.0.5:3000`): actions on the
    /// gateways it links are forwarded there. Unset: the address it listens on (the host name
    /// for `0.0.0.0`).
    pub advertise_url: Option<String>,
    /// The host this daemon runs on (1–64 of `A-Z a-z 0-9 . _ -`): the managed gateways it
    /// runs belong to it, and are never moved to another host's daemon. Unset: the host name.
    pub host_id: Option<String>,
    /// How long a gateway lease lasts without renewal: how long a dead instance's gateways
    /// wait before another instance adopts them.
    #[serde(with = "duration")]
    pub lease_ttl: Duration,
    /// How often leases are renewed (at most a third of `lease_ttl`).
    #[serde(with = "duration")]
    pub renew_interval: Duration,
    /// How often the gateway rows and events other instances wrote are read when no
    /// notification came (LISTEN/NOTIFY wakes an instance at once; a notification can be
    /// lost, e.g. while the listener reconnects, and this bounds how late it is seen then).
    #[serde(with = "duration")]
    pub poll_interval: Duration,
    /// The most gateways this instance links (1–10,000,000); unset: what its open-file limit
    /// allows, less a reserve (`cluster::capacity`). Gateways no instance has room for are
    /// `unplaced`, shown and alerted, never silently dropped.
    pub max_gateways: Option<u64>,
    /// How far the clocks of the database's servers (a primary, and a replica promoted in its
    /// place) may differ (0–60 s): after a failover nothing is adopted for one `lease_ttl`
    /// plus this, since every expiry is then computed on the new server's clock.
    #[serde(with = "duration")]
    pub clock_skew: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            instance_id: None,
            advertise_url: None,
            host_id: None,
            lease_ttl: Duration::from_secs(15),
            renew_interval: Duration::from_secs(3),
            poll_interval: Duration::from_secs(1),
            max_gateways: None,
            clock_skew: Duration::from_secs(5),
        }
    }
}

impl ClusterConfig {
    pub fn check(&self) -> Result<(), ConfigError> {
        let (min, max) = (Duration::from_secs(2), Duration::from_secs(600));
        if self.lease_ttl < min || self.lease_ttl > max {
            return Err(ConfigError::Invalid(format!(
                "cluster.lease_ttl must be between 2s and 10m (got {})",
                humantime::format_duration(self.lease_ttl)
            )));
        }
        if self.renew_interval < Duration::from_millis(100)
            || self.renew_interval * 3 > self.lease_ttl
        {
            return Err(ConfigError::Invalid(format!(
                "cluster.renew_interval must be between 100ms and a third of cluster.lease_ttl \
                 ({}) (got {})",
                humantime::format_duration(self.lease_ttl / 3),
                humantime::format_duration(self.renew_interval)
            )));
        }
        if self.poll_interval < Duration::from_millis(100)
            || self.poll_interval > Duration::from_secs(3600)
        {
            return Err(ConfigError::Invalid(format!(
                "cluster.poll_interval must be between 100ms and 1h (got {})",
                humantime::format_duration(self.poll_interval)
            )));
        }
        if self.clock_skew > Duration::from_secs(60) {
            return Err(ConfigError::Invalid(format!(
                "cluster.clock_skew must be between 0s and 1m (got {})",
                humantime::format_duration(self.clock_skew)
            )));
        }
        if let Some(n) = self.max_gateways
            && !(1..=10_000_000).contains(&n)
        {
            return Err(ConfigError::Invalid(format!(
                "cluster.max_gateways must be between 1 and 10000000 (got {n})"
            )));
        }
        if let Some(id) = &self.instance_id
            && !valid_instance_id(id)
        {
            return Err(ConfigError::Invalid(format!(
                "cluster.instance_id must be 1-64 characters of A-Z a-z 0-9 . _ - (got `{}`)",
                id.escape_default()
            )));
        }
        if let Some(id) = &self.host_id
            && !valid_instance_id(id)
        {
            return Err(ConfigError::Invalid(format!(
                "cluster.host_id must be 1-64 characters of A-Z a-z 0-9 . _ - (got `{}`)",
                id.escape_default()
            )));
        }
        if let Some(url) = &self.advertise_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid(format!(
                "cluster.advertise_url must be an http:// or https:// URL (got `{}`)",
                url.escape_default()
            )));
        }
        Ok(())
    }

    /// The configured id, or the host name and a hash of the state directory.
    pub fn instance_id(&self, state_dir: &Path) -> String {
        if let Some(id) = &self.instance_id {
            return id.clone();
        }
        let host = hostname().unwrap_or_else(|| "host".into());
        let host: String = host
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .take(40)
            .collect();
        let dir = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_owned());
        use sha2::Digest;
        let digest = sha2::Sha256::digest(dir.as_os_str().as_encoded_bytes());
        let hash: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        format!("{host}-{hash}")
    }
}

impl ClusterConfig {
    /// The configured host id, or the host name (its characters outside the id's set dropped).
    pub fn host_id(&self) -> String {
        if let Some(id) = &self.host_id {
            return id.clone();
        }
        let host: String = hostname()
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .take(64)
            .collect();
        if host.is_empty() { "host".into() } else { host }
    }
}

fn valid_instance_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_id_is_stable_per_state_directory() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let cfg = ClusterConfig::default();
        assert_eq!(cfg.instance_id(a.path()), cfg.instance_id(a.path()));
        assert_ne!(cfg.instance_id(a.path()), cfg.instance_id(b.path()));
        assert!(valid_instance_id(&cfg.instance_id(a.path())));
    }

    #[test]
    fn timings_and_names_are_checked() {
        let ok = ClusterConfig::default();
        ok.check().unwrap();
        let slow_renewal = ClusterConfig {
            renew_interval: Duration::from_secs(6),
            ..ClusterConfig::default()
        };
        let err = slow_renewal.check().unwrap_err().to_string();
        assert!(err.contains("cluster.renew_interval"), "{err}");
        let bad_name = ClusterConfig {
            instance_id: Some("a b".into()),
            ..ClusterConfig::default()
        };
        assert!(
            bad_name
                .check()
                .unwrap_err()
                .to_string()
                .contains("instance_id")
        );
    }
}
