//! Last-seen and the live numbers saved (docs/design.md, *Cluster*, last-seen by heartbeat):
//! the periodic save, which rule an owner saves by, and a peer holding its owner's heartbeat
//! (`registry/beats.rs`) for the link that may adopt it. A gateway linked elsewhere is shown
//! with its owner's heartbeat by whoever reads its row (`registry/peers.rs`).

use super::RegistryState;
use crate::model::{GatewayId, Vouched};
use crate::registry::RegistryAction;
use crate::registry::beats::LeaseOwner;
use crate::store::{LastSeenBy, LinkRecord};

impl RegistryState {
    /// Who keeps the stored last-seen of the gateways linked here current.
    pub(super) fn last_seen_by(&self) -> LastSeenBy {
        if self.ownership.is_leased() && self.beats.stand_for_last_seen() {
            LastSeenBy::OwnersHeartbeat
        } else {
            LastSeenBy::Record
        }
    }

    /// The change feed read who holds gateway `id`'s lease: a peer holds that instance's
    /// heartbeat cell (not of this instance: a gateway it links has its link's own numbers).
    pub(super) fn owner_read(&mut self, LeaseOwner { gateway, owner }: LeaseOwner) {
        if self.ownership.may_link(gateway) || !self.peers.contains(gateway) {
            return;
        }
        let me = self.ownership.instance();
        let cell = owner
            .filter(|(instance, _)| Some(instance.as_str()) != me)
            .and_then(|(instance, epoch)| self.beats.cell(&instance, epoch));
        if let Some(peer) = self.peers.get_mut(gateway) {
            peer.vouched = cell.as_ref().map(Vouched::by).unwrap_or_default();
        }
    }

    /// The live numbers that moved on since they were last stored, by the same rule as link
    /// reports ([`LinkRecord::worth_saving_over`]).
    pub(super) fn persist_live(&mut self, out: &mut Vec<RegistryAction>) {
        let by = self.last_seen_by();
        let mut ids: Vec<GatewayId> = self.linked.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let (Some(view), Some(old), Some(link)) = (
                self.gateways.get(&id),
                self.persisted.get_mut(&id),
                self.linked.get(&id),
            ) else {
                continue;
            };
            let record = LinkRecord {
                last_seen: link.live.last_seen().max(old.last_seen),
                latency: link.live.latency().or(view.record.latency),
                ..old.clone()
            };
            if record.worth_saving_over(Some(old), by) {
                *old = record.clone();
                out.push(RegistryAction::Persist(id, record));
            }
        }
    }
}
