//! What readers ask of the registry's state; nothing here changes it.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::RegistryState;
use crate::model::{GatewayId, GatewayRecord, GatewayView};
use crate::registry::ownership::Ownership;
use crate::registry::peers::Here;

/// What readers ask; nothing here changes the state.
impl RegistryState {
    /// Bumped by every change of the views (records, status, connection, breaker, roles).
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Every gateway registered: those with a view here and the peers.
    pub fn len(&self) -> usize {
        self.gateways.len() + self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn acting(&self) -> Option<GatewayId> {
        self.roles.acting()
    }

    /// Alone: the registered gateways it has no room for, lowest id first.
    pub fn unplaced(&self) -> &BTreeSet<GatewayId> {
        self.capacity.waiting()
    }

    pub(in crate::registry) fn ownership(&self) -> &Ownership {
        &self.ownership
    }

    pub fn contains(&self, id: GatewayId) -> bool {
        self.gateways.contains_key(&id) || self.peers.contains(id)
    }

    /// Gateway `id`'s record, if this instance keeps it (alone: every one; in a cluster, those
    /// it may link — a peer's is in the database).
    pub fn record(&self, id: GatewayId) -> Option<&GatewayRecord> {
        self.gateways.get(&id).map(|v| &v.record)
    }

    /// Whether this instance may link gateway `id` (alone: every one; in a cluster, those it
    /// holds the lease of) — and so keeps its record.
    pub fn may_link(&self, id: GatewayId) -> bool {
        self.ownership.may_link(id)
    }

    /// Whether gateway `id` is the designated primary (`None`: not registered).
    pub fn designated(&self, id: GatewayId) -> Option<bool> {
        match self.gateways.get(&id) {
            Some(v) => Some(v.record.is_primary),
            None => self.peers.get(id).map(|p| p.designated),
        }
    }

    /// The epoch of gateway `id`'s link here (`None`: not linked here).
    pub fn epoch_of(&self, id: GatewayId) -> Option<u64> {
        self.linked.get(&id).map(|l| l.epoch)
    }

    pub fn linked_ids(&self) -> impl Iterator<Item = GatewayId> + '_ {
        self.linked.keys().copied()
    }

    pub fn methods(&self, id: GatewayId) -> Option<&Arc<Vec<String>>> {
        self.methods.get(&id)
    }

    /// The views (alone every gateway; in a cluster those this instance may link), in no order.
    pub fn views(&self) -> impl Iterator<Item = &GatewayView> + '_ {
        self.gateways.values().map(|v| &**v)
    }

    pub fn raw_view(&self, id: GatewayId) -> Option<&GatewayView> {
        self.gateways.get(&id).map(|v| &**v)
    }

    /// A gateway as readers see it: the record, and its link's live numbers to read.
    pub fn view(&self, id: GatewayId) -> Option<GatewayView> {
        self.gateways.get(&id).map(|v| (**v).clone())
    }

    /// What a reader of stored rows needs from here (`registry/peers.rs`), as of change
    /// `changes`: the views of the gateways this instance links (`only` that one's, if given),
    /// the acting primary, and each owner's heartbeat.
    pub fn here(&self, changes: u64, only: Option<GatewayId>) -> Here {
        let mine = |(id, view): (&GatewayId, &Arc<GatewayView>)| {
            self.ownership.may_link(*id).then(|| (*id, view.clone()))
        };
        let views = match only {
            Some(id) => self
                .gateways
                .get_key_value(&id)
                .and_then(mine)
                .into_iter()
                .collect(),
            None => self.gateways.iter().filter_map(mine).collect(),
        };
        Here::new(
            changes,
            self.roles.acting(),
            self.ownership.instance(),
            views,
            self.beats.cells(),
        )
    }

    /// Every gateway with a view here as readers see it, primary first, then by name and id:
    /// shared with the state, not copied (see [`Views`]).
    pub fn sorted_views(&self) -> Vec<Arc<GatewayView>> {
        self.index
            .in_order()
            .filter_map(|id| self.gateways.get(&id).cloned())
            .collect()
    }

    /// Whether a gateway with a view here has `name` (in a cluster the database checks the
    /// peers' inside the write: `db/gateways`).
    pub fn name_taken(&self, name: &str, except: Option<GatewayId>) -> bool {
        self.index
            .name_holder(&self.gateways, name, except)
            .is_some()
    }

    /// The other gateway with a view here that already has `host:port` (host compared without
    /// case; in a cluster the database checks the peers' inside the write,
    /// `db/gateways/address.rs`).
    pub fn address_owner(
        &self,
        host: &str,
        port: u16,
        except: Option<GatewayId>,
    ) -> Option<&GatewayRecord> {
        let id = self
            .index
            .address_holder(&self.gateways, host, port, except)?;
        self.record(id)
    }
}
