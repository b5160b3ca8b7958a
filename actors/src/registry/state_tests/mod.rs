//! The registry's rules, one behaviour per test: a [`RegistryState`] fed inputs as the actor
//! feeds them (link reports, writes read back from the store, lease rounds with a clock the
//! test moves), judged by the actions it returns and the views readers would see.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::actions::{Input, RegistryAction, Write};
use super::roles::PrimaryChange;
use super::state::RegistryState;
use crate::events::EventKind;
use crate::link::LinkTarget;
use crate::link::messages::{LinkState, LinkUpdate, LiveStats};
use crate::model::{
    BreakerInfo, BreakerState, ConnectionInfo, GatewayId, GatewayRecord, GatewayStatus, LinkPhase,
};
use crate::store::LinkRecord;

mod cluster;
mod election;
mod links;
mod records;
mod settings;

pub(super) const UNIX: i64 = 1_795_238_987;

pub(super) use crate::model::test_record as gw;

/// A link's state as it reports it.
pub(super) fn link(phase: LinkPhase, status: GatewayStatus) -> LinkState {
    LinkState {
        connected: phase == LinkPhase::Connected,
        connection: ConnectionInfo {
            state: Some(phase),
            server_version: Some("2026.9.6".into()),
            boot_id: Some("boot-1".into()),
            ..ConnectionInfo::default()
        },
        breaker: BreakerInfo::default(),
        status,
        last_seen: Some(UNIX),
        latency: Some(20),
        sessions_count: Some(0),
        agents_count: Some(1),
        methods: Arc::new(vec!["health".into(), "sessions.list".into()]),
    }
}

pub(super) fn online() -> LinkState {
    link(LinkPhase::Connected, GatewayStatus::Online)
}

pub(super) fn offline() -> LinkState {
    link(LinkPhase::Backoff, GatewayStatus::Offline)
}

/// Connected, but its breaker open (calls failing).
pub(super) fn breaker_open() -> LinkState {
    LinkState {
        breaker: BreakerInfo {
            state: BreakerState::Open,
            consecutive_failures: 3,
        },
        ..link(LinkPhase::Connected, GatewayStatus::Degraded)
    }
}

/// A registry state with its links' shared numbers and targets kept as the actor would.
pub(super) struct Harness {
    pub state: RegistryState,
    pub live: HashMap<GatewayId, Arc<LiveStats>>,
    pub targets: HashMap<GatewayId, LinkTarget>,
    /// The rows in the store as the inputs fed so far wrote them (loaded, written here,
    /// brought by the change feed), which a read of records answers with at once (as the actor
    /// does when the store is up) while `answers_secrets`.
    pub stored: HashMap<GatewayId, GatewayRecord>,
    /// The shared tokens in the store, read with the records.
    pub stored_tokens: HashMap<GatewayId, String>,
    pub answers_secrets: bool,
}

impl Harness {
    /// Loaded from `records`, links on, not started.
    pub fn loaded(records: Vec<GatewayRecord>) -> Self {
        Harness {
            stored: records.iter().map(|r| (r.id, r.clone())).collect(),
            state: RegistryState::new(records, true),
            live: HashMap::new(),
            targets: HashMap::new(),
            stored_tokens: HashMap::new(),
            answers_secrets: true,
        }
    }

    /// Loaded and started (every link started, the designated primary acting).
    pub fn started(records: Vec<GatewayRecord>) -> Self {
        let mut h = Self::loaded(records);
        h.apply(Input::Started);
        h
    }

    /// The actions `input` leads to, with those of the answers to its reads of records
    /// (while `answers_secrets`) after them.
    pub fn apply(&mut self, input: Input) -> Vec<RegistryAction> {
        self.store(&input);
        let mut actions = self.state.apply(input);
        let mut at = 0;
        while at < actions.len() {
            match &actions[at] {
                RegistryAction::StartLink { target, live, .. } => {
                    self.live.insert(target.id, live.clone());
                    self.targets.insert(target.id, (**target).clone());
                }
                RegistryAction::ReadRecords { ids, after: None } if self.answers_secrets => {
                    let asked = ids.clone();
                    let read = self.records_stored(&asked);
                    let more = self.state.apply(Input::RecordsRead {
                        asked,
                        read: Some(read),
                    });
                    actions.extend(more);
                }
                _ => {}
            }
            at += 1;
        }
        actions
    }

    /// The rows `input` writes, as the store holds them after it.
    fn store(&mut self, input: &Input) {
        match input {
            Input::Written(record, _) => {
                self.stored.insert(record.id, record.clone());
            }
            Input::Deleted(id) => {
                self.stored.remove(id);
            }
            Input::StoreChanges {
                changed, deleted, ..
            } => {
                for r in changed {
                    self.stored.insert(r.id, r.clone());
                }
                for id in deleted {
                    self.stored.remove(id);
                }
            }
            _ => {}
        }
    }

    /// What the store holds of `ids`' records, tokens decrypted (those still registered).
    pub fn records_stored(&self, ids: &[GatewayId]) -> Vec<GatewayRecord> {
        ids.iter()
            .filter_map(|id| self.stored.get(id))
            .map(|r| GatewayRecord {
                token: self.stored_tokens.get(&r.id).map(|t| t.clone().into()),
                ..r.clone()
            })
            .collect()
    }

    /// A report from gateway `id`'s current link.
    pub fn report(&mut self, id: GatewayId, state: LinkState) -> Vec<RegistryAction> {
        let epoch = self.state.epoch_of(id).expect("linked here");
        self.apply(Input::Link(LinkUpdate { id, epoch, state }))
    }

    /// Every gateway in `ids` connects and reads online.
    pub fn connect_all(&mut self, ids: &[GatewayId]) {
        for id in ids {
            self.report(*id, online());
        }
    }

    pub fn acting(&self) -> Option<GatewayId> {
        self.state.acting()
    }

    /// The gateways whose views, or peers, say they act as primary.
    pub fn flagged(&self) -> Vec<GatewayId> {
        let peers = self.state.peers_held();
        let mut ids: Vec<GatewayId> = (self.state.views())
            .filter(|v| v.acting_primary)
            .map(|v| v.record.id)
            .chain(
                (peers.iter())
                    .filter(|p| p.candidate.acting_primary)
                    .map(|p| p.id()),
            )
            .collect();
        ids.sort_unstable();
        ids
    }

    pub fn status(&self, id: GatewayId) -> GatewayStatus {
        self.state.record(id).expect("registered").status
    }
}

pub(super) fn primary_changes(actions: &[RegistryAction]) -> Vec<PrimaryChange> {
    actions
        .iter()
        .filter_map(|a| match a {
            RegistryAction::PrimaryChanged(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// The payloads of the events of `kind` published, in order.
pub(super) fn published(actions: &[RegistryAction], kind: EventKind) -> Vec<Value> {
    actions
        .iter()
        .filter_map(|a| match a {
            RegistryAction::Publish {
                kind: k, payload, ..
            } if *k == kind => Some(payload.clone()),
            _ => None,
        })
        .collect()
}

pub(super) fn starts(actions: &[RegistryAction]) -> Vec<GatewayId> {
    actions
        .iter()
        .filter_map(|a| match a {
            RegistryAction::StartLink { target, .. } => Some(target.id),
            _ => None,
        })
        .collect()
}

pub(super) fn stops(actions: &[RegistryAction]) -> Vec<GatewayId> {
    actions
        .iter()
        .filter_map(|a| match a {
            RegistryAction::StopLink(id) => Some(*id),
            _ => None,
        })
        .collect()
}

pub(super) fn persisted(actions: &[RegistryAction]) -> Vec<(GatewayId, LinkRecord)> {
    actions
        .iter()
        .filter_map(|a| match a {
            RegistryAction::Persist(id, r) => Some((*id, r.clone())),
            _ => None,
        })
        .collect()
}

pub(super) fn sessions_stale(actions: &[RegistryAction]) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, RegistryAction::SessionsStale))
}
