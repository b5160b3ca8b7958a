//! The registry's vocabulary: what it hears of ([`Input`]) and what it decides to do
//! ([`RegistryAction`]). [`RegistryState::apply`](super::RegistryState::apply) turns one into
//! the other; the actor carries the actions out in order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use secrecy::SecretString;

use super::beats::{InstanceBeat, LeaseOwner};
use super::roles::PrimaryChange;
use crate::events::EventKind;
use crate::link::LinkTarget;
use crate::link::messages::{DeviceTokenChanged, LinkUpdate, LiveStats};
use crate::model::{GatewayId, GatewayRecord};
use crate::store::LinkRecord;

/// What the registry hears of.
#[derive(Debug)]
pub enum Input {
    /// The actor started: the designated primary acts, a link starts per gateway owned.
    Started,
    /// A link's report of its state.
    Link(LinkUpdate),
    /// A link's new device token.
    DeviceToken(DeviceTokenChanged),
    /// A gateway row written here (read back from the store).
    Written(GatewayRecord, Write),
    /// A gateway deleted here.
    Deleted(GatewayId),
    /// The cluster runner's renewal round (see `cluster::SetLeases`), heard at `now`.
    Leases {
        held: HashMap<GatewayId, u64>,
        valid_until: Instant,
        coordinator: bool,
        acting: Option<GatewayId>,
        now: Instant,
        /// Every live instance's epoch and last heartbeat.
        beats: Vec<InstanceBeat>,
    },
    /// The fence check at `now`: a lease round's deadline passed without a renewal.
    FenceCheck(Instant),
    /// Rows other instances wrote and gateways they deleted (the cluster's change feed).
    StoreChanges {
        changed: Vec<GatewayRecord>,
        deleted: Vec<GatewayId>,
        /// Leases that changed hands.
        owners: Vec<LeaseOwner>,
    },
    /// The periodic save of the live numbers (last seen, latency) that moved on.
    PersistLive,
    /// The store's answer to [`RegistryAction::ReadRecords`] for `asked`: the records of
    /// those still registered, or `None` when the read failed.
    RecordsRead {
        asked: Vec<GatewayId>,
        read: Option<Vec<GatewayRecord>>,
    },
}

/// Which write a [`Input::Written`] record comes from: what it announces, and what it does to
/// the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Created,
    /// `relink`: the address, a credential or the name changed (the link restarts;
    /// `verify_shared_token`: it proves the new shared token on its first connect). `keep_live`:
    /// the row's link facts are as the batched writer last saved them; the live ones are kept.
    Updated {
        relink: bool,
        verify_shared_token: bool,
        keep_live: bool,
    },
    Labels,
    /// Maintenance set (`true`) or ended.
    Maintenance(bool),
    Suspension,
    Cordon(bool),
}

impl Write {
    /// The `gateway.changed` event's payload for this write (`None`: a suspension, which the
    /// gateway's own status event tells).
    pub fn announcement(self, r: &GatewayRecord) -> Option<serde_json::Value> {
        let action = match self {
            Write::Created => "created",
            Write::Updated { .. } => "updated",
            Write::Labels => "labels",
            Write::Maintenance(true) => "maintenance",
            Write::Maintenance(false) => "maintenance_ended",
            Write::Cordon(true) => "cordoned",
            Write::Cordon(false) => "uncordoned",
            Write::Suspension => return None,
        };
        Some(match self {
            Write::Maintenance(_) => {
                serde_json::json!({"action": action, "name": r.name, "maintenance": r.maintenance})
            }
            Write::Cordon(_) => serde_json::json!({"action": action, "name": r.name}),
            _ => serde_json::json!({"action": action, "name": r.name, "labels": r.labels}),
        })
    }

    /// Whether the row's link facts give way to the live ones: a setting's row carries them as
    /// the batched writer last saved them, and the link reports only changes, so a stale status
    /// taken from the row would stay.
    pub fn keeps_live_facts(self) -> bool {
        match self {
            Write::Created => false,
            Write::Updated { keep_live, .. } => keep_live,
            _ => true,
        }
    }
}

/// What the actor is to do, in order.
#[derive(Debug)]
pub enum RegistryAction {
    Publish {
        kind: EventKind,
        gateway: Option<GatewayId>,
        payload: serde_json::Value,
    },
    /// Save a gateway's link facts (through the batched writer).
    Persist(GatewayId, LinkRecord),
    PersistDeviceToken(GatewayId, Option<SecretString>),
    /// Announce, count and audit a new acting primary.
    PrimaryChanged(PrimaryChange),
    /// Start a link to `target` under `epoch`, sharing `live` with the registry.
    StartLink {
        target: Box<LinkTarget>,
        epoch: u64,
        live: Arc<LiveStats>,
    },
    StopLink(GatewayId),
    /// The gateway is gone: its metric series go too.
    Forget(GatewayId),
    /// The fleet's merged session list is stale (a gateway connected, left or was stopped).
    SessionsStale,
    /// Read these gateways' records from the store (`after` this long: a read that failed)
    /// and answer with [`Input::RecordsRead`]: they are to be linked here
    /// (`state/records.rs`).
    ReadRecords {
        ids: Vec<GatewayId>,
        after: Option<std::time::Duration>,
    },
}
