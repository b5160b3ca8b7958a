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
//! A gateway another instance of a cluster links has no slot: its shard keeps its candidate
//! alone (id, name, health as its owner stored it, acting flag, sessions, hold, labels),
//! sorted by id, and [`SharedTargets::get`] builds its full target when asked — there is
//! nothing else to know of it here (no link, no methods). A slot and its target were ~300
//! bytes a gateway; the candidate is ~80, and at 100,000 over 10 instances each instance
//! holds 90,000 of them (issue 60, docs/performance.md). A walk ([`SharedTargets::each`])
//! meets both kinds without building anything.
//!
//! A reader sees each gateway as of its latest change; two gateways read one after the other
//! may be a change apart (the acting flag moving between them), which routing tolerates: the
//! next read is current. The registry updates the shards in the same turn that changes its
//! state, before it answers the write that caused it, so a caller that saw its write answered
//! reads the result.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::messages::GatewayTarget;
use crate::model::GatewayId;
use crate::selection::Candidate;

type Slot = Arc<ArcSwap<GatewayTarget>>;

/// One shard of the fleet: the gateways not linked elsewhere as full targets, each in a slot
/// of its own, and those another instance links as their candidates alone, sorted by id.
#[derive(Clone, Default)]
struct Shard {
    here: HashMap<GatewayId, Slot>,
    elsewhere: Vec<Candidate>,
}

impl Shard {
    fn elsewhere(&self, id: GatewayId) -> Option<&Candidate> {
        let at = self.elsewhere.binary_search_by_key(&id, |c| c.id).ok()?;
        self.elsewhere.get(at)
    }

    fn len(&self) -> usize {
        self.here.len() + self.elsewhere.len()
    }
}

/// The maps of slots are split by id, so that a gateway added or removed copies one shard's
/// pointers, not the fleet's: registering 100,000 gateways one by one copied the whole map each
/// time (5 × 10⁹ pointer copies in all); in 64 shards it is 1/64th of that.
const SHARDS: usize = 64;

fn shard_of(id: GatewayId) -> usize {
    id.get().rem_euclid(SHARDS as i64) as usize
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
            for c in &shard.elsewhere {
                f(Seen::Elsewhere(c));
            }
        }
    }

    /// The full targets of every gateway not linked elsewhere (shared, not copied), in no order.
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

/// A shard's copy while a batch changes it, published once at the end.
#[derive(Default)]
struct Copy {
    shard: Shard,
    /// Candidates of gateways linked elsewhere new to the shard, merged in at the end.
    added: Vec<Candidate>,
    /// Gateways to take out of the shard's candidates at the end.
    dropped: HashSet<GatewayId>,
}

/// Shard `s`'s copy in this batch, made from `current` at its first change.
fn copy_of<'c>(copies: &'c mut [Option<Copy>], s: usize, current: &Shard) -> &'c mut Copy {
    copies[s].get_or_insert_with(|| Copy {
        shard: current.clone(),
        ..Copy::default()
    })
}

impl TargetsWriter {
    pub(super) fn reader(&self) -> SharedTargets {
        self.shared.clone()
    }

    /// Stores the targets given and drops the gateways gone. A full target already in its slot
    /// is stored there (no copy of its shard); any other change copies its shard once, and the
    /// copy is published at the end.
    pub(super) fn update(
        &mut self,
        targets: impl IntoIterator<Item = GatewayTarget>,
        gone: impl IntoIterator<Item = GatewayId>,
    ) {
        let mut copies: Vec<Option<Copy>> = (0..SHARDS).map(|_| None).collect();
        let published = |shard: usize| self.shared.0[shard].load_full();
        for target in targets {
            let id = target.candidate.id;
            let s = shard_of(id);
            let current = published(s);
            if target.elsewhere {
                let c = copy_of(&mut copies, s, &current);
                c.shard.here.remove(&id);
                c.dropped.remove(&id);
                match c.shard.elsewhere.binary_search_by_key(&id, |c| c.id) {
                    Ok(at) => c.shard.elsewhere[at] = target.candidate,
                    Err(_) => c.added.push(target.candidate),
                }
                continue;
            }
            let map = copies[s].as_ref().map_or(&current.here, |c| &c.shard.here);
            if let Some(slot) = map.get(&id) {
                slot.store(Arc::new(target));
                continue;
            }
            let c = copy_of(&mut copies, s, &current);
            c.dropped.insert(id);
            c.added.retain(|a| a.id != id);
            c.shard
                .here
                .insert(id, Arc::new(ArcSwap::from_pointee(target)));
        }
        for id in gone {
            let s = shard_of(id);
            let current = published(s);
            let held = copies[s].as_ref().map_or(&*current, |c| &c.shard);
            if held.here.contains_key(&id) || held.elsewhere(id).is_some() {
                let c = copy_of(&mut copies, s, &current);
                c.shard.here.remove(&id);
                c.dropped.insert(id);
            }
            if let Some(c) = copies[s].as_mut() {
                c.added.retain(|a| a.id != id);
            }
        }
        for (s, copy) in copies.into_iter().enumerate() {
            if let Some(Copy {
                mut shard,
                added,
                dropped,
            }) = copy
            {
                let list = &mut shard.elsewhere;
                if !dropped.is_empty() && !list.is_empty() {
                    list.retain(|c| !dropped.contains(&c.id));
                }
                if !added.is_empty() {
                    // Latest first, kept by a stable sort and the dedup: a batch that names a
                    // gateway twice keeps its last word.
                    list.extend(added.into_iter().rev());
                    list.sort_by_key(|c| c.id);
                    list.dedup_by_key(|c| c.id);
                }
                // Room a batch took (the first, every peer at once) is not kept.
                list.shrink_to_fit();
                self.shared.0[s].store(Arc::new(shard));
            }
        }
    }

    /// The gateways that have a target, for a rebuild of every one.
    pub(super) fn ids(&self) -> Vec<GatewayId> {
        let mut ids = Vec::new();
        for shard in self.shared.0.iter() {
            let shard = shard.load();
            ids.extend(shard.here.keys().copied());
            ids.extend(shard.elsewhere.iter().map(|c| c.id));
        }
        ids
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

    fn elsewhere(id: GatewayId, healthy: bool) -> GatewayTarget {
        GatewayTarget {
            elsewhere: true,
            ..target(id, healthy)
        }
    }

    /// Each gateway as a walk meets it: (id, linked elsewhere), in id order.
    fn walk(read: &SharedTargets) -> Vec<(i64, bool)> {
        let mut all = Vec::new();
        read.each(|t| all.push((t.candidate().id.get(), t.elsewhere())));
        all.sort_unstable();
        all
    }

    /// What an instance of a cluster holds of a gateway another links is its candidate; a
    /// reader asking for it gets a whole target (no link, no methods), and a walk meets it once.
    #[test]
    fn a_gateway_linked_elsewhere_is_kept_as_its_candidate_and_read_whole() {
        let mut writer = TargetsWriter::default();
        let read = writer.reader();
        // Several of one shard in one batch, out of order: found by id all the same.
        let ids = [3 + SHARDS as i64, 3, 3 + 2 * SHARDS as i64];
        writer.update(ids.map(|id| elsewhere(GatewayId(id), true)), []);
        writer.update([target(GatewayId(1), false)], []);
        assert_eq!(read.len(), 4);
        for id in ids {
            let t = read.get(GatewayId(id)).expect("registered");
            assert!(t.elsewhere && t.link.is_none() && t.methods.is_empty());
            assert_eq!((t.candidate.id, t.candidate.healthy), (GatewayId(id), true));
            assert_eq!(t.candidate.name, format!("gw{id}"));
        }
        assert_eq!(
            walk(&read),
            vec![(1, false), (3, true), (67, true), (131, true)]
        );
        // Its owner's word changes: read at once, and still once in a walk.
        writer.update([elsewhere(GatewayId(3), false)], []);
        assert_eq!(healthy(&read, GatewayId(3)), Some(false));
        assert_eq!(walk(&read).len(), 4);
        assert_eq!(
            read.here().len(),
            1,
            "only the one not linked elsewhere has a slot"
        );
    }

    /// A lease moving here and away again moves the gateway between a slot and the candidates:
    /// never both (a walk meets it once), never neither, and removal finds it either way.
    #[test]
    fn a_gateway_whose_lease_moves_is_met_once_wherever_it_is() {
        let mut writer = TargetsWriter::default();
        let read = writer.reader();
        writer.update(
            [elsewhere(GatewayId(5), true), elsewhere(GatewayId(6), true)],
            [],
        );
        writer.update([target(GatewayId(5), true)], []);
        assert_eq!(walk(&read), vec![(5, false), (6, true)]);
        assert!(!read.get(GatewayId(5)).unwrap().elsewhere);
        writer.update([elsewhere(GatewayId(5), false)], []);
        assert_eq!(walk(&read), vec![(5, true), (6, true)]);
        assert!(read.here().is_empty());
        // One batch naming a gateway twice keeps its last word.
        writer.update(
            [target(GatewayId(6), true), elsewhere(GatewayId(6), false)],
            [],
        );
        assert_eq!(walk(&read), vec![(5, true), (6, true)]);
        assert_eq!(healthy(&read, GatewayId(6)), Some(false));
        writer.update([], [GatewayId(5), GatewayId(6)]);
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
