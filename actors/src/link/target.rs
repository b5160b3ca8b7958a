//! Where a link goes and with what: the gateway's address and credentials ([`LinkTarget`]),
//! the timing from configuration ([`LinkSettings`]), and what every link shares
//! ([`LinkContext`]).

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use super::machine::MachineSettings;
use crate::link_metrics::LinkMetrics;
use crate::model::GatewayId;
use crate::protocol::device::DeviceIdentity;

/// Timing and thresholds, from the `gateways.*` configuration.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    /// What the decision machine needs.
    pub machine: MachineSettings,
    pub heartbeat_interval: Duration,
    pub health_interval: Duration,
    pub probe_timeout: Duration,
    pub connect_timeout: Duration,
    pub rpc_timeout: Duration,
    /// Reported as `client.version`.
    pub client_version: String,
}

/// Where and how to reach one gateway.
#[derive(Clone)]
pub struct LinkTarget {
    pub id: GatewayId,
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub allow_insecure_tls: bool,
    pub token: Option<SecretString>,
    pub device_token: Option<SecretString>,
    /// The shared token was just changed by an admin: prove it on the first connect.
    pub verify_shared_token: bool,
}

impl LinkTarget {
    fn authority(&self) -> String {
        crate::model::authority(&self.host, self.port)
    }

    /// Never carries a token: credentials go in the `connect` frame only.
    pub(crate) fn ws_url(&self) -> String {
        format!(
            "{}://{}/",
            if self.tls { "wss" } else { "ws" },
            self.authority()
        )
    }

    pub(crate) fn health_url(&self) -> String {
        self.http_url("/health")
    }

    pub(crate) fn http_url(&self, path: &str) -> String {
        format!(
            "{}://{}{path}",
            if self.tls { "https" } else { "http" },
            self.authority()
        )
    }
}

/// Shared by all gateway actors.
#[derive(Clone)]
pub struct LinkContext {
    pub settings: Arc<LinkSettings>,
    pub identity: Arc<DeviceIdentity>,
    pub metrics: Arc<LinkMetrics>,
    pub events: crate::events::EventBus,
}
