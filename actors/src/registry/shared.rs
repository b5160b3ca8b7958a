//! Every gateway as a call target, shared with the fleet without a trip through the registry's
//! mailbox (relay's project cache: the service writes, readers load).
//!
//! Two levels, so that neither a read nor a write copies the fleet: one slot per gateway
//! (`ArcSwap<GatewayTarget>`), replaced by the registry when that gateway's view, link or owner
//! changes — a link report costs one target rebuilt and one pointer stored — and the map of
//! slots, replaced only when a gateway is added or removed. A spawn used to ask the registry for
//! `Targets` and receive a copy of all of them (10,000 names, labels and handles through a
//! mailbox per spawn); it now loads the map and reads the slots it needs.
//!
//! A reader sees each gateway as of its latest change; two gateways read one after the other
//! may be a change apart (the acting flag moving between them), which routing tolerates: the
//! next read is current. The registry updates the slots in the same turn that changes its
//! state, before it answers the write that caused it, so a caller that saw its write answered
//! reads the result.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::messages::GatewayTarget;
use crate::model::GatewayId;

type Slot = Arc<ArcSwap<GatewayTarget>>;

/// The fleet's read handle: cheap to clone, every read wait-free.
#[derive(Clone, Default)]
pub struct SharedTargets(Arc<ArcSwap<HashMap<GatewayId, Slot>>>);

impl SharedTargets {
    /// Every gateway as it is now, in no order (shared, not copied).
    pub fn all(&self) -> Vec<Arc<GatewayTarget>> {
        self.0
            .load()
            .values()
            .map(|slot| slot.load_full())
            .collect()
    }

    /// Gateway `id`, if registered.
    pub fn get(&self, id: GatewayId) -> Option<Arc<GatewayTarget>> {
        self.0.load().get(&id).map(|slot| slot.load_full())
    }

    /// These gateways (those still registered), in the order asked.
    pub fn of(&self, ids: &[GatewayId]) -> Vec<Arc<GatewayTarget>> {
        let slots = self.0.load();
        ids.iter()
            .filter_map(|id| slots.get(id).map(|slot| slot.load_full()))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.0.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The registry's side: the only writer.
#[derive(Default)]
pub(super) struct TargetsWriter {
    shared: SharedTargets,
    slots: HashMap<GatewayId, Slot>,
}

impl TargetsWriter {
    pub(super) fn reader(&self) -> SharedTargets {
        self.shared.clone()
    }

    /// Stores the targets given and drops the gateways gone; the map is replaced (once) only
    /// if a gateway was added or removed.
    pub(super) fn update(
        &mut self,
        targets: impl IntoIterator<Item = GatewayTarget>,
        gone: impl IntoIterator<Item = GatewayId>,
    ) {
        let mut members_changed = false;
        for target in targets {
            let id = target.candidate.id;
            match self.slots.get(&id) {
                Some(slot) => slot.store(Arc::new(target)),
                None => {
                    self.slots
                        .insert(id, Arc::new(ArcSwap::from_pointee(target)));
                    members_changed = true;
                }
            }
        }
        for id in gone {
            members_changed |= self.slots.remove(&id).is_some();
        }
        if members_changed {
            self.shared.0.store(Arc::new(self.slots.clone()));
        }
    }

    /// The gateways that have a slot, for a rebuild of every one.
    pub(super) fn ids(&self) -> Vec<GatewayId> {
        self.slots.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selection::Candidate;

    fn target(id: GatewayId, healthy: bool) -> GatewayTarget {
        GatewayTarget {
            candidate: Candidate {
                id,
                name: format!("gw{id}"),
                healthy,
                acting_primary: false,
                active_sessions: 0,
                capable: true,
                held_back: None,
                labels: Default::default(),
            },
            methods: Arc::default(),
            link: None,
            elsewhere: false,
            boot_id: None,
            version: None,
            running_sessions: None,
        }
    }

    fn healthy(read: &SharedTargets, id: GatewayId) -> Option<bool> {
        read.get(id).map(|t| t.candidate.healthy)
    }

    #[test]
    fn a_reader_sees_a_gateway_change_without_asking_again() {
        let mut writer = TargetsWriter::default();
        let read = writer.reader();
        writer.update([target(1, false), target(2, false)], []);
        assert_eq!(read.len(), 2);
        writer.update([target(2, true)], []);
        assert_eq!(
            (healthy(&read, 1), healthy(&read, 2)),
            (Some(false), Some(true))
        );
    }

    #[test]
    fn a_change_of_one_gateway_leaves_the_map_of_slots_in_place() {
        let mut writer = TargetsWriter::default();
        let read = writer.reader();
        writer.update([target(1, false)], []);
        let map = read.0.load_full();
        writer.update([target(1, true)], []);
        assert!(Arc::ptr_eq(&map, &read.0.load_full()), "no copy of the map");
        writer.update([target(3, true)], []);
        assert!(
            !Arc::ptr_eq(&map, &read.0.load_full()),
            "a new gateway is a new map"
        );
    }

    #[test]
    fn a_gateway_removed_is_gone_for_readers_and_a_target_already_read_stays_whole() {
        let mut writer = TargetsWriter::default();
        let read = writer.reader();
        writer.update([target(1, true), target(2, true)], []);
        let held = read.get(2).unwrap();
        writer.update([], [2]);
        assert_eq!(read.get(2).map(|t| t.candidate.id), None);
        assert_eq!(
            read.of(&[2, 1])
                .iter()
                .map(|t| t.candidate.id)
                .collect::<Vec<_>>(),
            vec![1]
        );
        assert_eq!(held.candidate.name, "gw2");
    }
}
