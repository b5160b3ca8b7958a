//! Names and addresses to gateways, so that a create or an update checks that its name and its
//! `host:port` are free in one lookup: a pass over the fleet per write made registering 100,000
//! gateways one by one quadratic. Several gateways may share a key for a moment (a rename and a
//! create from two instances arriving in either order), so each key keeps every holder.
//!
//! It also keeps the list's order (the designated primary, then by name, then by id), so the
//! sorted list readers get is a walk, not a sort: 100,000 views sorted by name took 57 ms of
//! the registry's mailbox after every change (`scripts/bench.sh registry`).

use std::collections::{BTreeSet, HashMap};

use crate::model::{GatewayId, GatewayRecord};

#[derive(Default)]
pub(super) struct Index {
    names: HashMap<String, Vec<GatewayId>>,
    /// Host lower-cased: `Edge.Example` and `edge.example` are one gateway.
    addresses: HashMap<(String, u16), Vec<GatewayId>>,
    /// Every gateway in the list's order: not primary (`false` first), name, id.
    order: BTreeSet<(bool, String, GatewayId)>,
}

impl Index {
    pub(super) fn add(&mut self, r: &GatewayRecord) {
        self.names.entry(r.name.clone()).or_default().push(r.id);
        self.addresses
            .entry((r.host.to_ascii_lowercase(), r.port))
            .or_default()
            .push(r.id);
        self.order.insert(order_key(r));
    }

    pub(super) fn remove(&mut self, r: &GatewayRecord) {
        drop_id(&mut self.names, r.name.clone(), r.id);
        drop_id(
            &mut self.addresses,
            (r.host.to_ascii_lowercase(), r.port),
            r.id,
        );
        self.order.remove(&order_key(r));
    }

    /// Every gateway in the list's order: the designated primary, then by name, then by id.
    pub(super) fn in_order(&self) -> impl Iterator<Item = GatewayId> + '_ {
        self.order.iter().map(|(_, _, id)| *id)
    }

    /// Another gateway named `name` (not `except`).
    pub(super) fn name_holder(&self, name: &str, except: Option<GatewayId>) -> Option<GatewayId> {
        first_other(self.names.get(name), except)
    }

    /// Another gateway at `host:port` (not `except`).
    pub(super) fn address_holder(
        &self,
        host: &str,
        port: u16,
        except: Option<GatewayId>,
    ) -> Option<GatewayId> {
        first_other(
            self.addresses.get(&(host.to_ascii_lowercase(), port)),
            except,
        )
    }
}

fn order_key(r: &GatewayRecord) -> (bool, String, GatewayId) {
    (!r.is_primary, r.name.clone(), r.id)
}

fn drop_id<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Vec<GatewayId>>, key: K, id: GatewayId) {
    if let Some(ids) = map.get_mut(&key) {
        ids.retain(|i| *i != id);
        if ids.is_empty() {
            map.remove(&key);
        }
    }
}

fn first_other(ids: Option<&Vec<GatewayId>>, except: Option<GatewayId>) -> Option<GatewayId> {
    ids?.iter().copied().find(|id| Some(*id) != except)
}
