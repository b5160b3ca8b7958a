//! The storage the registry writes through. The daemon implements it over diesel; the actor
//! calls it from a blocking thread, never on its own.

use secrecy::SecretString;

use crate::link::messages::HealthSample;
use crate::model::{Caller, GatewayId, GatewayPatch, GatewayRecord, GatewayStatus, NewGateway};

/// What the link measured, persisted so a restart shows the last known state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRecord {
    pub status: GatewayStatus,
    pub last_seen: Option<i64>,
    pub latency: Option<i64>,
    pub sessions_count: i64,
    pub agents_count: i64,
}

/// Who keeps a linked gateway's last-seen current for readers of the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastSeenBy {
    /// Alone on its database: the record, rewritten once last-seen moved on by
    /// [`LinkRecord::LAST_SEEN_EVERY`] (what a restart shows).
    Record,
    /// In a cluster: the owner's heartbeat, one row per instance a round, which peers read as
    /// last-seen for every gateway it links and stored reachable
    /// ([`crate::model::GatewayView::last_seen`]). The record is rewritten only when a shown
    /// fact changes: 10,000 gateways rewritten once a minute were ~167 rows a second, each
    /// carried to every instance by the change feed (docs/performance.md).
    OwnersHeartbeat,
}

impl LinkRecord {
    /// How stale the stored last-seen may get while nothing else changes: a write per
    /// gateway per heartbeat would be hundreds a second at 10,000 gateways.
    pub const LAST_SEEN_EVERY: i64 = 60;

    /// A latency that moved by less than this (ms), or by less than half, is the same one
    /// for every reader (the election breaks ties with it): ping jitter is not a change.
    pub const LATENCY_MOVED_MS: i64 = 25;

    /// Whether this record should replace `stored` in the database: never stored, a shown
    /// fact changed (status, counts, latency moved materially), or — kept by the record —
    /// last-seen moved on by `LAST_SEEN_EVERY` seconds.
    pub fn worth_saving_over(&self, stored: Option<&LinkRecord>, by: LastSeenBy) -> bool {
        stored.is_none_or(|old| {
            old.status != self.status
                || old.sessions_count != self.sessions_count
                || old.agents_count != self.agents_count
                || latency_moved(old.latency, self.latency)
                || (by == LastSeenBy::Record
                    && self.last_seen.unwrap_or(0) - old.last_seen.unwrap_or(0)
                        >= Self::LAST_SEEN_EVERY)
        })
    }
}

/// A latency first measured, or moved by more than half and more than
/// [`LinkRecord::LATENCY_MOVED_MS`].
fn latency_moved(old: Option<i64>, new: Option<i64>) -> bool {
    match (old, new) {
        (None, Some(_)) => true,
        (Some(a), Some(b)) => (b - a).abs() > (a / 2).max(LinkRecord::LATENCY_MOVED_MS),
        _ => false,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("gateway {0} not found")]
    NotFound(GatewayId),
    #[error("a gateway named `{0}` already exists")]
    DuplicateName(String),
    /// Another gateway already has this host (without case) and port, as the database said
    /// inside the write that would have taken it.
    #[error("gateway `{name}` (id {id}) already has the address {host}:{port}")]
    DuplicateAddress {
        id: GatewayId,
        name: String,
        host: String,
        port: u16,
    },
    /// The labels a change would leave are not valid labels.
    #[error(transparent)]
    Labels(#[from] crate::labels::LabelError),
    /// The database (or the writer thread in front of it) failed; the cause is kept.
    #[error("storage failed: {0}")]
    Backend(#[source] BackendError),
}

/// Why a store backend failed: its own error (a query, a pool, a cipher), kept as the cause.
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl StoreError {
    /// A backend failure, with `err` as its cause.
    pub fn backend(err: impl Into<BackendError>) -> Self {
        StoreError::Backend(err.into())
    }
}

/// Every mutation writes its audit row in the same transaction as the change itself.
/// A gateway's secrets as stored, decrypted.
#[derive(Debug)]
pub struct GatewaySecrets {
    pub id: GatewayId,
    pub token: Option<SecretString>,
    pub device_token: Option<SecretString>,
}

pub trait GatewayStore: Send + Sync + 'static {
    /// Every gateway, by id; `sealed`: the tokens left in the store (an instance of a cluster
    /// at start, which links none yet and reads each record again when it may).
    fn load_gateways(&self, sealed: bool) -> Result<Vec<GatewayRecord>, StoreError>;

    /// The secrets of these gateways as stored now (decrypted), for an instance of a cluster
    /// about to link them (it holds no secret of a gateway it does not link). A gateway
    /// deleted meanwhile is left out.
    fn gateway_secrets(&self, ids: &[GatewayId]) -> Result<Vec<GatewaySecrets>, StoreError>;

    /// These gateways' records as stored now, their secrets decrypted, for an instance of a
    /// cluster about to link them (it keeps no record of a gateway it does not link). A
    /// gateway deleted meanwhile is left out.
    fn gateway_records(&self, ids: &[GatewayId]) -> Result<Vec<GatewayRecord>, StoreError>;

    /// Inserts; when `new.is_primary`, the previous primary is unset in the same transaction.
    fn insert_gateway(&self, new: &NewGateway, by: &Caller) -> Result<GatewayRecord, StoreError>;

    /// Applies the patch; `is_primary: Some(true)` unsets the previous primary in the same
    /// transaction.
    fn update_gateway(
        &self,
        id: GatewayId,
        patch: &GatewayPatch,
        by: &Caller,
    ) -> Result<GatewayRecord, StoreError>;

    fn delete_gateway(&self, id: GatewayId, by: &Caller) -> Result<(), StoreError>;

    /// Records (or with `None` clears) the suspension this daemon made on the gateway, with its
    /// audit row (`gateway.suspend` / `gateway.resume`).
    fn set_suspension(
        &self,
        id: GatewayId,
        suspension_id: Option<&str>,
        by: &Caller,
    ) -> Result<GatewayRecord, StoreError>;

    /// Cordons (no new spawns, not primary) or uncordons the gateway, with its audit row
    /// (`gateway.cordon` / `gateway.uncordon`).
    fn set_cordon(
        &self,
        id: GatewayId,
        cordoned: bool,
        by: &Caller,
    ) -> Result<GatewayRecord, StoreError>;

    /// Puts the gateway in maintenance (`Some`) or ends it (`None`), with its audit row
    /// (`gateway.maintenance` / `gateway.maintenance.end`). With `expired_by`, it is ended only
    /// if its window ended by then (an operator may have extended it meanwhile): `Ok(None)`
    /// when it had not.
    fn set_maintenance(
        &self,
        id: GatewayId,
        maintenance: Option<&crate::model::Maintenance>,
        expired_by: Option<i64>,
        by: &Caller,
    ) -> Result<Option<GatewayRecord>, StoreError>;

    /// Applies a merge patch to the gateway's labels as they are stored at that moment (a
    /// concurrent change from another instance is not lost), with its audit row
    /// (`gateway.labels`).
    fn patch_labels(
        &self,
        id: GatewayId,
        patch: &crate::labels::LabelPatch,
        by: &Caller,
    ) -> Result<GatewayRecord, StoreError>;

    // Link bookkeeping: not audited (nobody changed the gateway), written in the background.

    /// Saves what the links reported, in one transaction (a gateway deleted meanwhile is
    /// skipped).
    fn save_link_records(&self, batch: &[(GatewayId, LinkRecord)]) -> Result<(), StoreError>;

    /// Stores (encrypted) or clears the device token the gateway issued.
    fn save_device_token(
        &self,
        id: GatewayId,
        token: Option<&SecretString>,
    ) -> Result<(), StoreError>;

    /// Appends probe samples, in one transaction.
    fn add_health_samples(&self, batch: &[HealthSample]) -> Result<(), StoreError>;

    /// Deletes samples older than `before` (Unix seconds); returns how many.
    fn prune_health_samples(&self, before: i64) -> Result<usize, StoreError>;

    /// An audit row for something the daemon decided itself (e.g. a new acting primary).
    fn record_audit(
        &self,
        by: &Caller,
        action: &str,
        target_id: Option<GatewayId>,
        details: &serde_json::Value,
    ) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> LinkRecord {
        LinkRecord {
            status: GatewayStatus::Online,
            last_seen: Some(1_000),
            latency: Some(30),
            sessions_count: 2,
            agents_count: 1,
        }
    }

    /// What changes a record for every reader is saved by either rule: never stored, a status,
    /// a count, a latency moved materially. Jitter is not.
    #[test]
    fn a_link_record_is_saved_when_a_shown_fact_changes() {
        let stored = stored();
        for by in [LastSeenBy::Record, LastSeenBy::OwnersHeartbeat] {
            assert!(stored.worth_saving_over(None, by));
            let jitter = LinkRecord {
                latency: Some(54),
                last_seen: Some(1_059),
                ..stored.clone()
            };
            assert!(!jitter.worth_saving_over(Some(&stored), by), "{by:?}");
            let slower = LinkRecord {
                latency: Some(56),
                ..stored.clone()
            };
            assert!(slower.worth_saving_over(Some(&stored), by), "{by:?}");
            let degraded = LinkRecord {
                status: GatewayStatus::Degraded,
                ..stored.clone()
            };
            assert!(degraded.worth_saving_over(Some(&stored), by));
            let more_sessions = LinkRecord {
                sessions_count: 3,
                ..stored.clone()
            };
            assert!(more_sessions.worth_saving_over(Some(&stored), by));
        }
    }

    /// Alone, last-seen a minute on is saved (what a restart shows); in a cluster never on its
    /// own: the owner's heartbeat stands for it.
    #[test]
    fn last_seen_alone_is_saved_a_minute_on_only_when_the_record_keeps_it() {
        let stored = stored();
        let later = LinkRecord {
            last_seen: Some(1_060),
            ..stored.clone()
        };
        assert!(later.worth_saving_over(Some(&stored), LastSeenBy::Record));
        let much_later = LinkRecord {
            last_seen: Some(100_000),
            ..stored.clone()
        };
        assert!(!much_later.worth_saving_over(Some(&stored), LastSeenBy::OwnersHeartbeat));
    }
}
