//! Every gateway as a call target, shared with the fleet without a trip through the registry's
//! mailbox (relay's project cache: the service writes, readers load).
//!
//! Two levels, so that neither a read nor a write copies the fleet: one slot per gateway
//! (`ArcSwap<GatewayTarget>`), replaced by the registry when that gateway's view, link or owner
//! changes — a link report costs one target rebuilt and one pointer stored — and the shards
//! (64, by id), one replaced only when a gateway of it is added, removed or linked elsewhere. A
//! spawn used to ask the registry for `Targets` and receive a copy of all of them (10,000
//! names, labels and handles through a mailbox per spawn); it now loads the shards and reads
//! what it needs.
//!
//! A gateway another instance of a cluster links has no slot: its shard publishes the
//! registry's peers of that shard as they are (`registry/peer_table.rs`, an `Arc` shared, not
//! copied), whose candidates are what routing weighs, and [`SharedTargets::get`] builds a full
//! target from one when asked — there is nothing else to know of it here (no link, no
//! methods). A slot and its target were ~300 bytes a gateway; at 100,000 over 10 instances
//! each instance holds 90,000 peers (issue 60, docs/performance.md). A walk
//! ([`SharedTargets::each`]) meets both kinds without building anything.
//!
//! A reader sees each gateway as of its latest change; two gateways read one after the other
//! may be a change apart (the acting flag moving between them), which routing tolerates: the
//! next read is current. The registry updates the shards in the same turn that changes its
//! state, before it answers the write that caused it, so a caller that saw its write answered
//! reads the result.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::messages::GatewayTarget;
use super::peer_table::{PeerShard, SHARDS, find, shard_of};
use crate::model::GatewayId;
use crate::selection::Candidate;

type Slot = Arc<ArcSwap<GatewayTarget>>;

/// One shard of the fleet: the gateways with a view here as full targets, each in a slot of
/// its own, and the registry's peers of the shard (`registry/peer_table.rs`) as it published
/// them.
#[derive(Clone, Default)]
struct Shard {
    here: HashMap<GatewayId, Slot>,
    elsewhere: PeerShard,
}

impl Shard {
    fn elsewhere(&self, id: GatewayId) -> Option<&Candidate> {
        find(&self.elsewhere, id).map(|p| &p.candidate)
    }

    fn len(&self) -> usize {
        self.here.len() + self.elsewhere.len()
    }
}

/// One gateway as a walk of the fleet meets it: a full target, or the candidate of a gateway
/// linked elsewhere (what routing weighs; its full target is built when asked, [`SharedTargets::get`]).
#[derive(Clone, Copy)]
pub enum Seen<'a> {
    Here(&'a GatewayTarget),
    Elsewhere(&'a Candidate),
}

impl<'a> Seen<'a> {
    pub fn candidate(self) -> &'a Candidate {
        match self {
            Seen::Here(t) => &t.candidate,
            Seen::Elsewhere(c) => c,
        }
    }

    /// Linked by another instance of the cluster (see [`GatewayTarget::elsewhere`]).
    pub fn elsewhere(self) -> bool {
        match self {
            Seen::Here(t) => t.elsewhere,
            Seen::Elsewhere(_) => true,
        }
    }

    /// Whether its handshake advertised `method` (known only of a gateway linked here).
    pub fn offers(self, method: &str) -> bool {
        match self {
            Seen::Here(t) => t.offers(method),
            Seen::Elsewhere(_) => false,
        }
    }
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
    /// Every gateway, in no order, each as it is now (a gateway of the walk's shard may change
    /// after it was met; the next walk sees it).
    pub fn each(&self, mut f: impl FnMut(Seen<'_>)) {
        for shard in self.0.iter() {
            let shard = shard.load();
            for slot in shard.here.values() {
                f(Seen::Here(&slot.load()));
            }
            for p in shard.elsewhere.iter() {
                f(Seen::Elsewhere(&p.candidate));
            }
        }
    }

    /// The full targets of every gateway with a view here (shared, not copied), in no order.
    pub fn here(&self) -> Vec<Arc<GatewayTarget>> {
        let mut here = Vec::new();
        for shard in self.0.iter() {
            here.extend(shard.load().here.values().map(|slot| slot.load_full()));
        }
        here
    }

    /// Gateway `id`, if registered (one linked elsewhere: built from its candidate).
    pub fn get(&self, id: GatewayId) -> Option<Arc<GatewayTarget>> {
        let shard = self.0[shard_of(id)].load();
        if let Some(slot) = shard.here.get(&id) {
            return Some(slot.load_full());
        }
        let c = shard.elsewhere(id)?;
        Some(Arc::new(GatewayTarget::elsewhere(c.clone())))
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

    /// Stores the targets given (of gateways with a view here), drops the slots of `gone`
    /// (removed, or now peers), and publishes `peers`, the registry's peer shards as they are.
    /// A target already in its slot is stored there (no copy of its shard); any other change
    /// copies its shard's map of slots once, and the shard is published once, at the end.
    pub(super) fn update(
        &mut self,
        targets: impl IntoIterator<Item = GatewayTarget>,
        gone: impl IntoIterator<Item = GatewayId>,
        peers: &[PeerShard],
    ) {
        let mut copies: Vec<Option<Shard>> = (0..SHARDS).map(|_| None).collect();
        for target in targets {
            let id = target.candidate.id;
            let s = shard_of(id);
            let published = self.shared.0[s].load();
            let map = copies[s].as_ref().map_or(&published.here, |c| &c.here);
            match map.get(&id) {
                Some(slot) => slot.store(Arc::new(target)),
                None => {
                    copies[s]
                        .get_or_insert_with(|| Shard::clone(&published))
                        .here
                        .insert(id, Arc::new(ArcSwap::from_pointee(target)));
                }
            }
        }
        for id in gone {
            let s = shard_of(id);
            let published = self.shared.0[s].load();
            if copies[s]
                .as_ref()
                .map_or(&published.here, |c| &c.here)
                .contains_key(&id)
            {
                copies[s]
                    .get_or_insert_with(|| Shard::clone(&published))
                    .here
                    .remove(&id);
            }
        }
        for (s, shard) in peers.iter().enumerate() {
            let published = self.shared.0[s].load();
            if !Arc::ptr_eq(&published.elsewhere, shard) {
                copies[s]
                    .get_or_insert_with(|| Shard::clone(&published))
                    .elsewhere = shard.clone();
            }
        }
        for (s, copy) in copies.into_iter().enumerate() {
            if let Some(shard) = copy {
                self.shared.0[s].store(Arc::new(shard));
            }
        }
    }

    /// The gateways that have a slot, for a rebuild of every one.
    pub(super) fn ids(&self) -> Vec<GatewayId> {
        let mut ids = Vec::new();
        for shard in self.shared.0.iter() {
            ids.extend(shard.load().here.keys().copied());
        }
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GatewayRecord, GatewayStatus};
    use crate::registry::peer_table::{Peer, PeerTable};

    fn target(id: GatewayId, healthy: bool) -> GatewayTarget {
        GatewayTarget {
            candidate: Candidate {
                id,
                name: format!("gw{id}").into(),
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

    fn peer(id: i64, online: bool) -> Peer {
        let mut r = GatewayRecord::new(GatewayId(id), format!("gw{id}"), "h".into(), 1);
        r.status = if online {
            GatewayStatus::Online
        } else {
            GatewayStatus::Offline
        };
        Peer::of(&r, false)
    }

    /// Each gateway as a walk meets it: (id, linked elsewhere), in id order.
    fn walk(read: &SharedTargets) -> Vec<(i64, bool)> {
        let mut all = Vec::new();
        read.each(|t| all.push((t.candidate().id.get(), t.elsewhere())));
        all.sort_unstable();
        all
    }

    /// An instance of a cluster publishes its peers as its table holds them: a reader asking
    /// for one gets a whole target (no link, no methods), a walk meets it once, and a change
    /// of the table is read at the next publication.
    #[test]
    fn a_gateway_linked_elsewhere_is_published_as_its_peer_and_read_whole() {
        let mut writer = TargetsWriter::default();
        let read = writer.reader();
        let mut peers = PeerTable::default();
        let ids = [3 + SHARDS as i64, 3, 3 + 2 * SHARDS as i64];
        peers.put_all(ids.map(|id| peer(id, true)));
        writer.update([target(GatewayId(1), false)], [], peers.shards());
        assert_eq!(read.len(), 4);
        for id in ids {
            let t = read.get(GatewayId(id)).expect("registered");
            assert!(t.elsewhere && t.link.is_none() && t.methods.is_empty());
            assert_eq!((t.candidate.id, t.candidate.healthy), (GatewayId(id), true));
            assert_eq!(*t.candidate.name, format!("gw{id}"));
        }
        assert_eq!(
            walk(&read),
            vec![(1, false), (3, true), (67, true), (131, true)]
        );
        peers.put(peer(3, false));
        assert_eq!(
            healthy(&read, GatewayId(3)),
            Some(true),
            "not published yet"
        );
        writer.update([], [], peers.shards());
        assert_eq!(healthy(&read, GatewayId(3)), Some(false));
        assert_eq!(
            read.here().len(),
            1,
            "only the gateway with a view has a slot"
        );
    }

    /// A lease moving here and away again moves the gateway between a slot and the peers in
    /// one publication: a walk meets it once.
    #[test]
    fn a_gateway_whose_lease_moves_is_met_once_wherever_it_is() {
        let mut writer = TargetsWriter::default();
        let read = writer.reader();
        let mut peers = PeerTable::default();
        peers.put_all([peer(5, true), peer(6, true)]);
        writer.update([], [], peers.shards());
        peers.remove(GatewayId(5));
        writer.update([target(GatewayId(5), true)], [], peers.shards());
        assert_eq!(walk(&read), vec![(5, false), (6, true)]);
        assert!(!read.get(GatewayId(5)).unwrap().elsewhere);
        peers.put(peer(5, false));
        writer.update([], [GatewayId(5)], peers.shards());
        assert_eq!(walk(&read), vec![(5, true), (6, true)]);
        assert!(read.here().is_empty());
        peers.remove(GatewayId(5));
        peers.remove(GatewayId(6));
        writer.update([], [], peers.shards());
        assert!(read.is_empty());
        assert_eq!(read.get(GatewayId(5)).map(|t| t.candidate.id), None);
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
            &[],
        );
        assert_eq!(read.len(), 2);
        writer.update([target(GatewayId(2), true)], [], &[]);
        assert_eq!(
            (healthy(&read, GatewayId(1)), healthy(&read, GatewayId(2))),
            (Some(false), Some(true))
        );
    }

    #[test]
    fn a_change_of_one_gateway_leaves_the_map_of_slots_in_place() {
        let mut writer = TargetsWriter::default();
        let read = writer.reader();
        writer.update([target(GatewayId(1), false)], [], &[]);
        let map = read.0[shard_of(GatewayId(1))].load_full();
        writer.update([target(GatewayId(1), true)], [], &[]);
        assert!(
            Arc::ptr_eq(&map, &read.0[shard_of(GatewayId(1))].load_full()),
            "no copy of the map"
        );
        let other = read.0[shard_of(GatewayId(2))].load_full();
        writer.update([target(GatewayId(1 + SHARDS as i64), true)], [], &[]);
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
        writer.update(
            [target(GatewayId(1), true), target(GatewayId(2), true)],
            [],
            &[],
        );
        let held = read.get(GatewayId(2)).unwrap();
        writer.update([], [GatewayId(2)], &[]);
        assert_eq!(read.get(GatewayId(2)).map(|t| t.candidate.id), None);
        assert_eq!(
            read.of(&[GatewayId(2), GatewayId(1)])
                .iter()
                .map(|t| t.candidate.id)
                .collect::<Vec<_>>(),
            vec![GatewayId(1)]
        );
        assert_eq!(&*held.candidate.name, "gw2");
    }
}
