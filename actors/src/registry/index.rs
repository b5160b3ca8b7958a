//! Names and addresses to gateways, so that a create or an update checks that its name and its
//! `host:port` are free in one lookup: a pass over the fleet per write made registering 100,000
//! gateways one by one quadratic. Several gateways may share a key for a moment (a rename and a
//! create from two instances arriving in either order), so each key keeps every holder.
//!
//! It also keeps the list's order (the designated primary, then by name, then by id), so the
//! sorted list readers get is a walk, not a sort: 100,000 views sorted by name took 57 ms of
//! the registry's mailbox after every change (`scripts/bench.sh registry`).
//!
//! Names and addresses are kept as keyed hashes beside the id (16 bytes in a B-tree's node,
//! no allocation of their own), and a lookup compares the records of the ids under the hash:
//! a name and an address held as strings in two hash maps of vectors took ~230 bytes and four
//! allocations a gateway, which in a cluster every instance pays for the whole fleet
//! (`scripts/bench.sh share`, docs/performance.md). The hasher's keys are random per process, so
//! no name a client picks can make collisions on purpose; a collision only costs a record
//! compared.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher, RandomState};

use super::views::Views;
use crate::model::{GatewayId, GatewayRecord};

#[derive(Default)]
pub(super) struct Index {
    hasher: RandomState,
    /// (hash of the name, id).
    names: BTreeSet<(u64, GatewayId)>,
    /// (hash of the host lower-cased and the port, id): `Edge.Example` and `edge.example` are
    /// one gateway.
    addresses: BTreeSet<(u64, GatewayId)>,
    /// Every gateway in the list's order: not primary (`false` first), name, id.
    order: BTreeSet<(bool, Box<str>, GatewayId)>,
}

impl Index {
    pub(super) fn add(&mut self, r: &GatewayRecord) {
        self.names.insert((self.name_key(&r.name), r.id));
        self.addresses
            .insert((self.address_key(&r.host, r.port), r.id));
        self.order.insert(order_key(r));
    }

    pub(super) fn remove(&mut self, r: &GatewayRecord) {
        self.names.remove(&(self.name_key(&r.name), r.id));
        self.addresses
            .remove(&(self.address_key(&r.host, r.port), r.id));
        self.order.remove(&order_key(r));
    }

    /// Every gateway in the list's order: the designated primary, then by name, then by id.
    pub(super) fn in_order(&self) -> impl Iterator<Item = GatewayId> + '_ {
        self.order.iter().map(|(_, _, id)| *id)
    }

    /// Another gateway named `name` (not `except`), of those in `views`.
    pub(super) fn name_holder(
        &self,
        views: &Views,
        name: &str,
        except: Option<GatewayId>,
    ) -> Option<GatewayId> {
        holders(&self.names, self.name_key(name))
            .filter(|id| Some(*id) != except)
            .find(|id| views.get(id).is_some_and(|v| v.record.name == name))
    }

    /// Another gateway at `host:port` (not `except`), of those in `views`.
    pub(super) fn address_holder(
        &self,
        views: &Views,
        host: &str,
        port: u16,
        except: Option<GatewayId>,
    ) -> Option<GatewayId> {
        holders(&self.addresses, self.address_key(host, port))
            .filter(|id| Some(*id) != except)
            .find(|id| {
                views.get(id).is_some_and(|v| {
                    v.record.port == port && v.record.host.eq_ignore_ascii_case(host)
                })
            })
    }

    fn name_key(&self, name: &str) -> u64 {
        self.hasher.hash_one(name)
    }

    /// The host hashed lower-cased byte by byte (no lower-cased copy made), then the port.
    fn address_key(&self, host: &str, port: u16) -> u64 {
        let mut h = self.hasher.build_hasher();
        for b in host.bytes() {
            h.write_u8(b.to_ascii_lowercase());
        }
        h.write_u16(port);
        h.finish()
    }
}

/// The ids kept under `key`.
fn holders(set: &BTreeSet<(u64, GatewayId)>, key: u64) -> impl Iterator<Item = GatewayId> + '_ {
    set.range((key, GatewayId(i64::MIN))..=(key, GatewayId(i64::MAX)))
        .map(|(_, id)| *id)
}

fn order_key(r: &GatewayRecord) -> (bool, Box<str>, GatewayId) {
    (!r.is_primary, r.name.as_str().into(), r.id)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::GatewayView;

    fn put(views: &mut Views, index: &mut Index, id: i64, name: &str, host: &str, port: u16) {
        let mut record = crate::model::test_record(GatewayId(id), false);
        record.name = name.to_owned();
        record.host = host.to_owned();
        record.port = port;
        index.add(&record);
        let view = GatewayView {
            record,
            acting_primary: false,
            connection: crate::model::ConnectionInfo::none(),
            breaker: Default::default(),
            live: Default::default(),
            vouched: Default::default(),
        };
        views.insert(GatewayId(id), Arc::new(view));
    }

    #[test]
    fn a_name_and_an_address_are_found_by_their_holder_and_freed_by_its_removal() {
        let (mut views, mut index) = (Views::new(), Index::default());
        put(&mut views, &mut index, 1, "edge", "Edge.Example", 443);
        put(&mut views, &mut index, 2, "core", "core.example", 443);
        assert_eq!(index.name_holder(&views, "edge", None), Some(GatewayId(1)));
        assert_eq!(index.name_holder(&views, "edge", Some(GatewayId(1))), None);
        assert_eq!(
            index.name_holder(&views, "Edge", None),
            None,
            "names keep their case"
        );
        assert_eq!(
            index.address_holder(&views, "edge.EXAMPLE", 443, None),
            Some(GatewayId(1)),
            "hosts are compared without case"
        );
        assert_eq!(
            index.address_holder(&views, "edge.example", 444, None),
            None
        );
        let gone = views.remove(&GatewayId(1)).expect("view");
        index.remove(&gone.record);
        assert_eq!(index.name_holder(&views, "edge", None), None);
        assert_eq!(
            index.address_holder(&views, "edge.example", 443, None),
            None
        );
        assert_eq!(index.in_order().collect::<Vec<_>>(), vec![GatewayId(2)]);
    }

    #[test]
    fn two_holders_of_one_name_are_both_kept_until_each_goes() {
        let (mut views, mut index) = (Views::new(), Index::default());
        put(&mut views, &mut index, 1, "edge", "a.example", 1);
        put(&mut views, &mut index, 2, "edge", "b.example", 1);
        assert_eq!(
            index.name_holder(&views, "edge", Some(GatewayId(1))),
            Some(GatewayId(2))
        );
        let gone = views.remove(&GatewayId(2)).expect("view");
        index.remove(&gone.record);
        assert_eq!(
            index.name_holder(&views, "edge", Some(GatewayId(2))),
            Some(GatewayId(1))
        );
    }

    #[test]
    fn a_hash_shared_by_two_names_answers_only_the_name_asked() {
        let (mut views, mut index) = (Views::new(), Index::default());
        put(&mut views, &mut index, 1, "edge", "a.example", 1);
        // Another name filed under the same key, as a collision would.
        let key = index.name_key("edge");
        index.names.insert((key, GatewayId(7)));
        put(&mut views, &mut index, 7, "core", "b.example", 1);
        assert_eq!(index.name_holder(&views, "edge", Some(GatewayId(1))), None);
        assert_eq!(index.name_holder(&views, "edge", None), Some(GatewayId(1)));
    }
}
