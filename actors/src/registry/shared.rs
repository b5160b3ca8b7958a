//! Every gateway as a call target, shared with the fleet without a trip through the registry's
//! mailbox (relay's project cache: the service writes, readers load).
//!
//! Two levels, so that neither a read nor a write copies the fleet: one slot per gateway
//! (`ArcSwap<GatewayTarget>`), replaced by the registry when that gateway's view, link or owner
//! changes — a link report costs one target rebuilt and one pointer stored — and the maps of
//! slots (64, by id), one replaced only when a gateway of it is added or removed. A spawn used to ask the registry for
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
type Shard = HashMap<GatewayId, Slot>;

/// The maps of slots are split by id, so that a gateway added or removed copies one shard's
/// pointers, not the fleet's: registering 100,000 gateways one by one copied the whole map each
/// time (5 × 10⁹ pointer copies in all); in 64 shards it is 1/64th of that.
const SHARDS: usize = 64;

fn shard_of(id: GatewayId) -> usize {
    id.get().rem_euclid(SHARDS as i64) as usize
}

/// The fleet's read handle: cheap to clone, every read wait-free.
#[derive(Clone)]
pub struct SharedTargets(Arc<[ArcSwap<Shard>]>);

impl Default for SharedTargets {
    fn default() -> Self {
        SharedTargets((0..SHARDS).map(|_| ArcSwap::default()).collect())
    }
}

impl SharedTargets {
    /// Every gateway as it is now, in no order (shared, not copied).
    pub fn all(&self) -> Vec<Arc<GatewayTarget>> {
        let mut all = Vec::with_capacity(self.len());
        for shard in self.0.iter() {
            all.extend(shard.load().values().map(|slot| slot.load_full()));
        }
        all
    }

    /// Gateway `id`, if registered.
    pub fn get(&self, id: GatewayId) -> Option<Arc<GatewayTarget>> {
        self.0[shard_of(id)]
            .load()
            .get(&id)
            .map(|slot| slot.load_full())
    }

    /// These gateways (those still registered), in the order asked.
    pub fn of(&self, ids: &[GatewayId]) -> Vec<Arc<GatewayTarget>> {
        ids.iter().filter_map(|id| self.get(*id)).collect()
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|shard| shard.load().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The registry's side: the only writer. It keeps no map of its own: the published maps are
/// the only ones (a copy for the writer took another entry a gateway — every gateway of the
/// fleet on every instance of a cluster).
#[derive(Default)]
pub(super) struct TargetsWriter {
    shared: SharedTargets,
}

impl TargetsWriter {
    pub(super) fn reader(&self) -> SharedTargets {
        self.shared.clone()
    }

    /// Stores the targets given and drops the gateways gone; a shard's map is replaced (once)
    /// only if a gateway of it was added or removed.
    pub(super) fn update(
        &mut self,
        targets: impl IntoIterator<Item = GatewayTarget>,
        gone: impl IntoIterator<Item = GatewayId>,
    ) {
        // The shards' new maps, copied from the published ones at their first addition or
        // removal.
        let mut copies: Vec<Option<Shard>> = (0..SHARDS).map(|_| None).collect();
        for target in targets {
            let id = target.candidate.id;
            let shard = shard_of(id);
            let published = self.shared.0[shard].load();
            let map = copies[shard].as_ref().unwrap_or(&published);
            match map.get(&id) {
                Some(slot) => slot.store(Arc::new(target)),
                None => {
                    copies[shard]
                        .get_or_insert_with(|| Shard::clone(&published))
                        .insert(id, Arc::new(ArcSwap::from_pointee(target)));
                }
            }
        }
        for id in gone {
            let shard = shard_of(id);
            let published = self.shared.0[shard].load();
            if copies[shard]
                .as_ref()
                .unwrap_or(&published)
                .contains_key(&id)
            {
                copies[shard]
                    .get_or_insert_with(|| Shard::clone(&published))
                    .remove(&id);
            }
        }
        for (shard, copy) in copies.into_iter().enumerate() {
            if let Some(map) = copy {
                self.shared.0[shard].store(Arc::new(map));
            }
        }
    }

    /// The gateways that have a slot, for a rebuild of every one.
    pub(super) fn ids(&self) -> Vec<GatewayId> {
        self.shared
            .0
            .iter()
            .flat_map(|s| s.load().keys().copied().collect::<Vec<_>>())
            .collect()
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
        writer.update(
            [target(GatewayId(1), false), target(GatewayId(2), false)],
            [],
        );
        assert_eq!(read.len(), 2);
        writer.update([target(GatewayId(2), true)], []);
        assert_eq!(
            (healthy(&read, GatewayId(1)), healthy(&read, GatewayId(2))),
            (Some(false), Some(true))
        );
    }

    #[test]
    fn a_change_of_one_gateway_leaves_the_map_of_slots_in_place() {
        let mut writer = TargetsWriter::default();
        let read = writer.reader();
        writer.update([target(GatewayId(1), false)], []);
        let map = read.0[shard_of(GatewayId(1))].load_full();
        writer.update([target(GatewayId(1), true)], []);
        assert!(
            Arc::ptr_eq(&map, &read.0[shard_of(GatewayId(1))].load_full()),
            "no copy of the map"
        );
        let other = read.0[shard_of(GatewayId(2))].load_full();
        writer.update([target(GatewayId(1 + SHARDS as i64), true)], []);
        assert!(
            !Arc::ptr_eq(&map, &read.0[shard_of(GatewayId(1))].load_full()),
            "a new gateway is a new map of its shard"
        );
        assert!(
            Arc::ptr_eq(&other, &read.0[shard_of(GatewayId(2))].load_full()),
            "and of no other"
        );
    }

    #[test]
    fn a_gateway_removed_is_gone_for_readers_and_a_target_already_read_stays_whole() {
        let mut writer = TargetsWriter::default();
        let read = writer.reader();
        writer.update([target(GatewayId(1), true), target(GatewayId(2), true)], []);
        let held = read.get(GatewayId(2)).unwrap();
        writer.update([], [GatewayId(2)]);
        assert_eq!(read.get(GatewayId(2)).map(|t| t.candidate.id), None);
        assert_eq!(
            read.of(&[GatewayId(2), GatewayId(1)])
                .iter()
                .map(|t| t.candidate.id)
                .collect::<Vec<_>>(),
            vec![GatewayId(1)]
        );
        assert_eq!(held.candidate.name, "gw2");
    }
}
