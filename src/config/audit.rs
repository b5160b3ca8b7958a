//! `[audit]`: where the audit log goes besides the database, and how long it stays there
//! (docs/operations.md, "Exporting the audit log").
//!
//! ```toml
//! [audit]
//! sink_url = "https://siem.example.com/ingest/gateway-supervisor"
//! sink_secret = "…"                 # or GATEWAY_SUPERVISOR__AUDIT__SINK_SECRET
//! retention = "400d"                # unset: kept for ever
//! [audit.retention_by_tenant]
//! team-a = "90d"
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, duration, duration_in};

/// The most tenants with a retention of their own.
const MAX_TENANTS: usize = 1000;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Where batches of new audit rows are POSTed as NDJSON (`https://`, or `http://` to a
    /// loopback address); unset: no sink.
    pub sink_url: Option<String>,
    /// The HMAC-SHA256 key of each batch's signature header (16+ characters).
    #[serde(skip_serializing)]
    pub sink_secret: Option<String>,
    /// Rows in one batch at most.
    pub sink_batch: usize,
    /// How often the sink looks for new rows once it has sent everything.
    #[serde(with = "duration")]
    pub sink_interval: Duration,
    /// One batch's deadline (connect to answer).
    #[serde(with = "duration")]
    pub sink_timeout: Duration,
    /// How long rows are kept (those of tenants named below: theirs); unset: for ever.
    #[serde(with = "duration::option")]
    pub retention: Option<Duration>,
    /// A tenant's own retention, shorter or longer than `retention`.
    pub retention_by_tenant: BTreeMap<String, Retention>,
}

/// A duration in the file (`"90d"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Retention(#[serde(with = "duration")] pub Duration);

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            sink_url: None,
            sink_secret: None,
            sink_batch: 500,
            sink_interval: Duration::from_secs(5),
            sink_timeout: Duration::from_secs(10),
            retention: None,
            retention_by_tenant: BTreeMap::new(),
        }
    }
}

impl AuditConfig {
    pub fn check(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        duration_in(
            "audit.sink_interval",
            self.sink_interval,
            Duration::from_millis(100),
            Duration::from_secs(3600),
        )?;
        duration_in(
            "audit.sink_timeout",
            self.sink_timeout,
            Duration::from_secs(1),
            Duration::from_secs(300),
        )?;
        if !(1..=10_000).contains(&self.sink_batch) {
            return bad(format!(
                "audit.sink_batch must be between 1 and 10000 (got {})",
                self.sink_batch
            ));
        }
        // A day at least: rows are swept hourly, and an audit trail kept for less than a day is
        // not one.
        let (day, century) = (
            Duration::from_secs(86_400),
            Duration::from_secs(100 * 365 * 86_400),
        );
        if let Some(r) = self.retention {
            duration_in("audit.retention", r, day, century)?;
        }
        if self.retention_by_tenant.len() > MAX_TENANTS {
            return bad(format!(
                "audit.retention_by_tenant: at most {MAX_TENANTS} tenants"
            ));
        }
        for (tenant, r) in &self.retention_by_tenant {
            if crate::tenancy::Scope::new(Some(tenant), None, None, None, &Default::default())
                .is_err()
            {
                return bad(format!(
                    "audit.retention_by_tenant: `{}` is not a tenant name (a DNS label)",
                    gateway_supervisor_actors::bounded::text(tenant, 64)
                ));
            }
            duration_in(
                &format!("audit.retention_by_tenant.{tenant}"),
                r.0,
                day,
                century,
            )?;
        }
        let Some(url) = &self.sink_url else {
            return Ok(());
        };
        if url.len() > 2048
            || url.parse::<awc::http::Uri>().is_err()
            || !super::secure_or_loopback(url)
        {
            return bad(
                "audit.sink_url must be an https:// URL (or http:// to a loopback address)".into(),
            );
        }
        match &self.sink_secret {
            Some(s) if s.len() >= 16 => Ok(()),
            _ => bad("audit.sink_secret (16 or more characters) is required with audit.sink_url: every batch is signed".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sink_needs_a_secret_and_a_private_channel_and_retention_is_a_day_or_more() {
        assert!(AuditConfig::default().check().is_ok());
        let sink = |url: &str, secret: Option<&str>| AuditConfig {
            sink_url: Some(url.into()),
            sink_secret: secret.map(Into::into),
            ..AuditConfig::default()
        };
        assert!(
            sink("https://siem.example.com/in", Some("0123456789abcdef"))
                .check()
                .is_ok()
        );
        assert!(
            sink("http://127.0.0.1:9000/in", Some("0123456789abcdef"))
                .check()
                .is_ok()
        );
        let e = sink("http://siem.example.com/in", Some("0123456789abcdef")).check();
        assert!(e.unwrap_err().to_string().contains("audit.sink_url"));
        let e = sink("https://siem.example.com/in", Some("short")).check();
        assert!(e.unwrap_err().to_string().contains("audit.sink_secret"));
        let short = AuditConfig {
            retention: Some(Duration::from_secs(3600)),
            ..AuditConfig::default()
        };
        assert!(
            short
                .check()
                .unwrap_err()
                .to_string()
                .contains("audit.retention")
        );
        let mut tenant = AuditConfig::default();
        tenant
            .retention_by_tenant
            .insert("Team A".into(), Retention(Duration::from_secs(86_400)));
        assert!(
            tenant
                .check()
                .unwrap_err()
                .to_string()
                .contains("not a tenant")
        );
    }
}
