//! Where a gateway's record goes (docs/design.md, *Cluster*, "Reading the fleet"): a view, with
//! its record and index entries, if this instance may link the gateway (alone: every one); a
//! peer (`registry/peer_table.rs`), its record not kept, if not. A gateway moves between the
//! two as its lease comes and goes, keeping its acting flag and its owner's heartbeat.

use std::sync::Arc;

use super::RegistryState;
use crate::model::{
    BreakerInfo, ConnectionInfo, GatewayId, GatewayRecord, GatewayView, LiveReadings, Vouched,
};
use crate::registry::peer_table::Peer;

impl RegistryState {
    /// Puts `record` where it belongs: a view if this instance may link the gateway (alone:
    /// every one), else a peer, its record not kept (`registry/peer_table.rs`).
    pub(super) fn put(&mut self, record: GatewayRecord) {
        self.roles.records_changed();
        let id = record.id;
        self.touch(id);
        if !self.ownership.may_link(id) {
            let (acting, vouched) = match self.gateways.remove(&id) {
                Some(view) => {
                    self.index.remove(&view.record);
                    (view.acting_primary, Vouched::default())
                }
                None => match self.peers.get(id) {
                    Some(p) => (p.candidate.acting_primary, p.vouched.clone()),
                    None => (self.roles.flag_for(&record, true), Vouched::default()),
                },
            };
            self.peers.put(Peer {
                vouched,
                ..Peer::of(&record, acting)
            });
            return;
        }
        if let Some(view) = self.gateways.get_mut(&id).map(Arc::make_mut) {
            self.index.remove(&view.record);
            self.index.add(&record);
            view.record = record;
            return;
        }
        // A peer becoming this instance's keeps its owner's heartbeat until its link starts
        // (the last-seen that link begins from).
        let (acting_primary, vouched) = match self.peers.remove(id) {
            Some(peer) => (peer.candidate.acting_primary, peer.vouched),
            None => (
                self.roles.flag_for(&record, self.ownership.is_leased()),
                Vouched::default(),
            ),
        };
        self.index.add(&record);
        let view = GatewayView {
            acting_primary,
            record,
            connection: ConnectionInfo::none(),
            breaker: BreakerInfo::default(),
            live: LiveReadings::default(),
            vouched,
        };
        self.gateways.insert(id, Arc::new(view));
    }

    /// Gateway `id`, its lease gone or lapsed, becomes a peer (its record dropped: read again
    /// when a lease makes it this instance's).
    pub(super) fn peer_if_elsewhere(&mut self, id: GatewayId) {
        if self.ownership.may_link(id) {
            return;
        }
        if let Some(view) = self.gateways.remove(&id) {
            self.index.remove(&view.record);
            self.peers.put(Peer::of(&view.record, view.acting_primary));
            self.touch(id);
        }
    }
}
