//! The gateways this instance of a cluster does not link, as it keeps them (docs/design.md,
//! *Cluster*, "Reading the fleet"): what routing, the election, `/metrics`' counts and the alert
//! watch need of each — its routing candidate, status, designation, holds and latency — and
//! nothing else: no record, no view, no index entry. Whoever needs the record reads it from the
//! database (the API through `gateway_reads`; the registry itself when a lease makes the
//! gateway this instance's, `state/records.rs`).
//!
//! Why (issue 60): at 100,000 gateways over 10 instances each instance holds 90,000 of these.
//! A view with its record, its index entries and a call target was ~800 bytes a gateway, 71 MB
//! of an instance's 166; a peer is ~90 bytes (its name the one allocation of its own; labels
//! shared with whoever else holds them).
//!
//! Kept in 64 shards by id, each an `Arc` of a vector sorted by id, which the call targets
//! publish as they are (`registry/shared.rs`): one copy of each peer, shared with the readers
//! and copied (`Arc::make_mut`) by its first change after a publication — a shard of ~1,400 at
//! 90,000, once per turn of the registry that changes it.

use std::sync::Arc;

use crate::model::{GatewayId, GatewayRecord, GatewayStatus, Vouched};
use crate::selection::Candidate;

/// One gateway another instance links (or that waits for an owner).
#[derive(Debug, Clone)]
pub struct Peer {
    /// As routing weighs it: `healthy` is the status its owner stored being `online`.
    pub candidate: Candidate,
    pub status: GatewayStatus,
    /// The designated primary (`is_primary` in its record).
    pub designated: bool,
    pub in_maintenance: bool,
    pub cordoned: bool,
    pub suspended: bool,
    /// As its owner last stored it, in ms (the election ranks stand-ins by it); 8 bytes, not
    /// an `Option<i64>`'s 16 (a latency past 49 days is not kept).
    pub(crate) latency: Option<u32>,
    /// Its owner's heartbeat while that owner lives under the epoch of its lease: the
    /// last-seen a link started here on adopting it begins from (`registry/beats.rs`).
    pub vouched: Vouched,
}

impl Peer {
    /// What this instance keeps of `record`, acting as primary or not.
    pub fn of(record: &GatewayRecord, acting: bool) -> Peer {
        Peer {
            candidate: Candidate {
                id: record.id,
                name: record.name.as_str().into(),
                healthy: record.status == GatewayStatus::Online,
                acting_primary: acting,
                active_sessions: record.sessions_count,
                capable: true,
                held_back: record.held_back(),
                labels: record.labels.clone(),
            },
            status: record.status,
            designated: record.is_primary,
            in_maintenance: record.maintenance.is_some(),
            cordoned: record.cordoned,
            suspended: record.suspension_id.is_some(),
            latency: record.latency.and_then(|l| u32::try_from(l).ok()),
            vouched: Vouched::default(),
        }
    }

    /// Its latency as its owner stored it (ms).
    pub fn latency(&self) -> Option<i64> {
        self.latency.map(i64::from)
    }

    pub fn id(&self) -> GatewayId {
        self.candidate.id
    }
}

/// The peers, and the call targets' maps of slots beside them (`registry/shared.rs`), are split
/// by id, so that a gateway added or removed copies one shard, not the fleet: registering
/// 100,000 gateways one by one copied the whole map each time (5 × 10⁹ pointer copies in all);
/// in 64 shards it is 1/64th of that.
pub(super) const SHARDS: usize = 64;

pub(super) fn shard_of(id: GatewayId) -> usize {
    id.get().rem_euclid(SHARDS as i64) as usize
}

/// One shard: its peers sorted by id.
pub type PeerShard = Arc<Vec<Peer>>;

/// Gateway `id`'s peer in `shard`, if there.
pub(super) fn find(shard: &[Peer], id: GatewayId) -> Option<&Peer> {
    let at = shard.binary_search_by_key(&id, Peer::id).ok()?;
    shard.get(at)
}

/// The peers held, as a reader got them (a snapshot: 64 pointers).
#[derive(Debug, Clone, Default)]
pub struct PeersHeld(Vec<PeerShard>);

impl PeersHeld {
    /// Peers held as given (a reader's test, a tool): one shard, sorted by id.
    pub fn of(mut peers: Vec<Peer>) -> PeersHeld {
        peers.sort_by_key(Peer::id);
        PeersHeld(vec![Arc::new(peers)])
    }

    pub fn iter(&self) -> impl Iterator<Item = &Peer> + '_ {
        self.0.iter().flat_map(|s| s.iter())
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|s| s.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The registry's table of peers: the only writer.
#[derive(Debug)]
pub(super) struct PeerTable {
    shards: Vec<PeerShard>,
    len: usize,
}

impl Default for PeerTable {
    fn default() -> Self {
        PeerTable {
            shards: (0..SHARDS).map(|_| Arc::default()).collect(),
            len: 0,
        }
    }
}

impl PeerTable {
    pub(super) fn get(&self, id: GatewayId) -> Option<&Peer> {
        find(&self.shards[shard_of(id)], id)
    }

    pub(super) fn contains(&self, id: GatewayId) -> bool {
        self.get(id).is_some()
    }

    /// Gateway `id`'s peer to change (its shard copied if a reader holds it).
    pub(super) fn get_mut(&mut self, id: GatewayId) -> Option<&mut Peer> {
        let shard = &mut self.shards[shard_of(id)];
        let at = shard.binary_search_by_key(&id, Peer::id).ok()?;
        Arc::make_mut(shard).get_mut(at)
    }

    /// Puts `peer`, replacing the one of its id.
    pub(super) fn put(&mut self, peer: Peer) {
        let shard = Arc::make_mut(&mut self.shards[shard_of(peer.id())]);
        match shard.binary_search_by_key(&peer.id(), Peer::id) {
            Ok(at) => shard[at] = peer,
            Err(at) => {
                shard.insert(at, peer);
                self.len += 1;
            }
        }
    }

    /// Puts many at once (a table filled at start): one sort a shard, not an insertion each.
    pub(super) fn put_all(&mut self, peers: impl IntoIterator<Item = Peer>) {
        let mut touched = [false; SHARDS];
        for peer in peers {
            let s = shard_of(peer.id());
            touched[s] = true;
            Arc::make_mut(&mut self.shards[s]).push(peer);
        }
        self.len = 0;
        for (s, shard) in self.shards.iter_mut().enumerate() {
            if touched[s] {
                let shard = Arc::make_mut(shard);
                // Stable, then the first of each id kept: the latest is put last, so reversed.
                shard.reverse();
                shard.sort_by_key(Peer::id);
                shard.dedup_by_key(|p| p.id());
                shard.shrink_to_fit();
            }
            self.len += shard.len();
        }
    }

    pub(super) fn remove(&mut self, id: GatewayId) -> Option<Peer> {
        let shard = &mut self.shards[shard_of(id)];
        let at = shard.binary_search_by_key(&id, Peer::id).ok()?;
        self.len -= 1;
        Some(Arc::make_mut(shard).remove(at))
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Peer> + '_ {
        self.shards.iter().flat_map(|s| s.iter())
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The shards as they are now, for the call targets to publish and readers to hold.
    pub(super) fn shards(&self) -> &[PeerShard] {
        &self.shards
    }

    pub(super) fn held(&self) -> PeersHeld {
        PeersHeld(self.shards.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(id: i64, status: GatewayStatus) -> Peer {
        let mut r = GatewayRecord::new(GatewayId(id), format!("gw{id}"), "h".into(), 1);
        r.status = status;
        Peer::of(&r, false)
    }

    /// Found by id whatever the order they came in, one per id, counted; a reader's shard is
    /// left as it was when the table changes after it.
    #[test]
    fn peers_are_found_by_id_once_each_and_a_reader_s_copy_stays_as_read() {
        let mut t = PeerTable::default();
        t.put_all([
            peer(65, GatewayStatus::Online),
            peer(1, GatewayStatus::Online),
            peer(1, GatewayStatus::Offline),
            peer(129, GatewayStatus::Unknown),
        ]);
        assert_eq!(t.len(), 3);
        assert_eq!(
            t.get(GatewayId(1)).map(|p| p.status),
            Some(GatewayStatus::Offline),
            "the last put of an id is kept"
        );
        let held = t.held();
        t.put(peer(193, GatewayStatus::Online));
        t.get_mut(GatewayId(65)).unwrap().status = GatewayStatus::Timeout;
        assert_eq!(
            t.remove(GatewayId(129)).map(|p| p.id()),
            Some(GatewayId(129))
        );
        assert_eq!(t.len(), 3);
        let mut ids: Vec<GatewayId> = t.iter().map(Peer::id).collect();
        ids.sort_unstable();
        assert_eq!(ids, vec![GatewayId(1), GatewayId(65), GatewayId(193)]);
        assert_eq!(held.len(), 3, "the reader's snapshot");
        let read = held.iter().find(|p| p.id() == GatewayId(65)).unwrap();
        assert_eq!(read.status, GatewayStatus::Online);
        assert!(t.get(GatewayId(129)).is_none() && !t.contains(GatewayId(129)));
    }

    /// What routing sees of a peer: healthy only if its owner stored it online; held back by
    /// the first of its holds.
    #[test]
    fn a_peer_is_routed_by_the_status_its_owner_stored_and_its_holds() {
        let mut r = GatewayRecord::new(GatewayId(3), "gw3".into(), "h".into(), 1);
        r.status = GatewayStatus::Degraded;
        r.cordoned = true;
        r.is_primary = true;
        let p = Peer::of(&r, true);
        assert!(!p.candidate.healthy && p.candidate.acting_primary && p.designated);
        assert_eq!(
            p.candidate.held_back,
            Some(crate::model::HeldBack::Cordoned)
        );
        assert!(p.cordoned && !p.suspended && !p.in_maintenance);
    }
}
