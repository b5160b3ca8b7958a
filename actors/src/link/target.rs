//! Where a link goes and with what: the gateway's address and credentials ([`LinkTarget`]),
//! the timing from configuration ([`LinkSettings`]), and what every link shares
//! ([`LinkContext`]).

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use secrecy::SecretString;

use super::machine::MachineSettings;
use crate::link_metrics::LinkMetrics;
use crate::model::{GatewayId, GatewayRecord};
use crate::protocol::device::DeviceIdentity;

/// Timing and thresholds, from the `gateways.*` configuration.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    /// What the decision machine needs: one copy, shared by every link's machine (80 bytes a
    /// link otherwise, in the link's task).
    pub machine: Arc<MachineSettings>,
    pub heartbeat_interval: Duration,
    pub health_interval: Duration,
    pub probe_timeout: Duration,
    pub connect_timeout: Duration,
    pub rpc_timeout: Duration,
    /// Reported as `client.version`.
    pub client_version: String,
    /// The fleet's `approvals.enabled`: links are their gateways' approval clients unless the
    /// gateway's own setting ([`LinkTarget::approvals`]) says otherwise.
    pub approvals: bool,
}

/// Where and how to reach one gateway (its secrets print as `[REDACTED]`).
#[derive(Debug, Clone)]
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
    /// The gateway's own approvals setting; `None` follows [`LinkSettings::approvals`].
    pub approvals: Option<bool>,
    /// In a cluster, until when this daemon may talk to the gateway (its lease, by this
    /// process's monotonic clock); `None` alone (no lease needed).
    pub lease: Option<LeaseGuard>,
    /// In a cluster, who dials: `instance:epoch`, the gateway's fencing epoch (sent in the
    /// connect, so a gateway — or a test's fake — can tell the owners apart).
    pub dialer: Option<std::sync::Arc<str>>,
}

impl LinkTarget {
    /// The link to gateway `r` (`verify_shared_token`: prove a shared token an admin just
    /// changed; `lease`: this instance's guard on it, in a cluster).
    pub fn of(r: &GatewayRecord, verify_shared_token: bool, lease: Option<LeaseGuard>) -> Self {
        LinkTarget {
            id: r.id,
            name: r.name.clone(),
            host: r.host.clone(),
            port: r.port,
            tls: r.tls,
            allow_insecure_tls: r.allow_insecure_tls,
            token: r.token.clone(),
            device_token: r.device_token.clone(),
            verify_shared_token,
            approvals: r.approvals,
            lease,
            dialer: None,
        }
    }
}

/// Until when a link may touch its gateway: the end of the lease this instance holds on it,
/// minus a safety margin, on the monotonic clock (docs/design.md, *Cluster*). The cluster moves
/// it forward at each renewal; a link checks it before it dials, writes a frame or probes, so
/// an instance that was paused past its lease never touches the gateway again, whatever runs
/// first when it resumes.
#[derive(Debug, Clone)]
pub struct LeaseGuard(Arc<AtomicU64>);

/// The origin of the guards' clock (nanoseconds after it).
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

impl LeaseGuard {
    pub fn until(deadline: Instant) -> Self {
        let guard = LeaseGuard(Arc::new(AtomicU64::new(0)));
        guard.extend(deadline);
        guard
    }

    /// Moves the deadline (forward after a renewal; back to now to fence at once).
    pub fn extend(&self, deadline: Instant) {
        let nanos = deadline.saturating_duration_since(origin()).as_nanos();
        self.0
            .store(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::Release);
    }

    pub fn valid_at(&self, now: Instant) -> bool {
        let nanos = now.saturating_duration_since(origin()).as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX) < self.0.load(Ordering::Acquire)
    }

    /// Whether a link holding `lease` may touch its gateway at `now` (no lease needed: always).
    pub fn permits(lease: Option<&LeaseGuard>, now: Instant) -> bool {
        lease.is_none_or(|l| l.valid_at(now))
    }
}

impl LinkTarget {
    /// Whether this daemon may touch the gateway now.
    pub(crate) fn may_touch(&self) -> bool {
        LeaseGuard::permits(self.lease.as_ref(), Instant::now())
    }

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
    /// Where approval news goes (`None`: nobody keeps an inbox; news is dropped).
    pub approvals: Option<crate::link::messages::ApprovalSink>,
}
