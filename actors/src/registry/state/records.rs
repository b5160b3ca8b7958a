//! Records stay with the owner (docs/design.md, *Cluster*, "Secrets stay with the owner" and
//! "Reading the fleet"): an instance of a cluster keeps the record — and so the shared and
//! device tokens — of the gateways it may link, and of no other; every other gateway is a peer
//! (`registry/peer_table.rs`), what routing and the election need of it and nothing more.
//! Every instance used to keep every gateway's record, tokens decrypted — at 100,000 over 10
//! instances, 90,000 it never dials: ~71 MB of memory, and the whole fleet's tokens in a
//! memory disclosure or a core dump of any one of them.
//!
//! The rule: a record of a gateway this instance may not link is not kept, however it arrives
//! (loaded at start, from the change feed, read back after a write made here); a lease that
//! goes elsewhere, or lapses, turns the gateway's view into a peer. A link about to start for
//! a gateway that is still a peer asks the store for its record first, all those of one input
//! in one read ([`RegistryAction::ReadRecords`]), and starts when it comes
//! ([`Input::RecordsRead`]) if the gateway is still this instance's and not linked meanwhile;
//! a read that failed is asked again a second later. The cost: one indexed read per round that
//! adopts gateways, not per gateway. Alone every gateway is linked here and nothing changes.
//!
//! Checked by `state_tests/records.rs`.

use std::collections::HashSet;
use std::time::Duration;

use super::RegistryState;
use crate::model::{GatewayId, GatewayRecord};
use crate::registry::RegistryAction;

/// How long a failed read of records waits before it is asked again.
const RECORDS_RETRY: Duration = Duration::from_secs(1);

/// The reads of records under way.
#[derive(Default)]
pub(super) struct RecordReads {
    /// Asked of the store and not answered yet.
    asked: HashSet<GatewayId>,
    /// To ask at the end of the input being applied.
    wanted: Vec<GatewayId>,
}

impl RegistryState {
    /// Whether gateway `id` has no record here (a peer, or unknown): a peer's is asked for
    /// (once, however often this is asked before it comes), and the caller starts no link yet.
    pub(super) fn record_missing(&mut self, id: GatewayId) -> bool {
        if self.gateways.contains_key(&id) {
            return false;
        }
        if self.peers.contains(id) && self.records.asked.insert(id) {
            self.records.wanted.push(id);
        }
        true
    }

    /// The read of the records asked in this input, if any (at its end: one read for all).
    pub(super) fn ask_for_records(&mut self, out: &mut Vec<RegistryAction>) {
        if !self.records.wanted.is_empty() {
            out.push(RegistryAction::ReadRecords {
                ids: std::mem::take(&mut self.records.wanted),
                after: None,
            });
        }
    }

    /// The store's answer for `asked`: `read`, or `None` when the read failed.
    pub(super) fn records_read(
        &mut self,
        asked: Vec<GatewayId>,
        read: Option<Vec<GatewayRecord>>,
        out: &mut Vec<RegistryAction>,
    ) {
        // Answered (a gateway deleted since is not in `read`), or asked again below.
        for id in &asked {
            self.records.asked.remove(id);
        }
        let Some(read) = read else {
            // Asked again later, those still to be linked here.
            let mut again = asked;
            again.retain(|id| self.ownership.may_link(*id) && self.peers.contains(*id));
            if !again.is_empty() {
                self.records.asked.extend(again.iter().copied());
                out.push(RegistryAction::ReadRecords {
                    ids: again,
                    after: Some(RECORDS_RETRY),
                });
            }
            return;
        };
        let mut ids = Vec::with_capacity(read.len());
        for record in read {
            let id = record.id;
            // Still this instance's, and still a peer: a record the change feed brought
            // meanwhile is as new as this one or newer.
            if !self.ownership.may_link(id) || !self.peers.contains(id) {
                continue;
            }
            self.put(record);
            ids.push(id);
        }
        for id in ids {
            self.start_link(id, false, out);
        }
    }
}
