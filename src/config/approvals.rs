//! `[approvals]`: whether this daemon is its gateways' approval client. Connecting with
//! `caps: ["approvals"]` makes a 2026.9 gateway wait for the daemon's answer to each exec and
//! plugin approval (up to 30 minutes) instead of denying it at once when no approval client is
//! connected — a responsibility, so it is off unless asked for (fleet-wide here, or per gateway
//! with its own `approvals` field, which wins).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalsConfig {
    /// The fleet's default; a gateway's `approvals: true|false` overrides it.
    pub enabled: bool,
}

impl ApprovalsConfig {
    /// Whether a gateway whose own setting is `own` is answered by this daemon.
    pub fn for_gateway(&self, own: Option<bool>) -> bool {
        own.unwrap_or(self.enabled)
    }
}
