//! The fleet's gateways as call targets — who can take a call, whose they are, what they
//! carry — read by routing (spawns, sessions, operations, usage, agents) and by every key's
//! scope (`http::visible`). The second half of the read port (the records are `GatewayReads`).
//!
//! Each reader names what it needs — one gateway, the ones linked here, the ids whose labels
//! pass a rule, the acting primary — instead of walking every target itself. That is the
//! point: an instance of a cluster that keeps full targets only for the gateways it links
//! (docs/design.md, *Cluster*, "Reading the fleet") answers the same questions for its peers'
//! from a compact table of id, owner, health and labels, and a reader asking for the ones
//! linked here never walks the peers at all. Alone, every answer is a walk of the registry's
//! shared targets: wait-free loads, no mailbox, no lock (`registry::shared`), O(fleet) for the
//! walks.

use std::collections::HashSet;
use std::sync::Arc;

use gateway_supervisor_actors::labels::Labels;
use gateway_supervisor_actors::messages::GatewayTarget;
use gateway_supervisor_actors::model::GatewayId;
use gateway_supervisor_actors::registry::{Seen, SharedTargets};

/// The read side of the fleet's call targets: cheap to clone.
#[derive(Clone)]
pub struct CallTargets {
    shared: SharedTargets,
}

impl CallTargets {
    pub fn new(shared: SharedTargets) -> CallTargets {
        CallTargets { shared }
    }

    /// Gateway `id`, if registered.
    pub fn get(&self, id: GatewayId) -> Option<Arc<GatewayTarget>> {
        self.shared.get(id)
    }

    /// Whether gateway `id` can take a call now: connected with its breaker closed (in a
    /// cluster, as its owner last stored it).
    pub fn reachable(&self, id: GatewayId) -> bool {
        self.get(id).is_some_and(|t| t.candidate.healthy)
    }

    /// Gateway `id`'s labels, if registered.
    pub fn labels_of(&self, id: GatewayId) -> Option<Labels> {
        self.get(id).map(|t| t.candidate.labels.clone())
    }

    /// Every gateway, in no order, as a walk meets it (a gateway linked elsewhere as its
    /// candidate, not built into a full target): for the readers that weigh the whole fleet (a
    /// spawn's choice, an operation's view of every gateway's state).
    pub fn each(&self, f: impl FnMut(Seen<'_>)) {
        self.shared.each(f)
    }

    /// The gateways this instance links (a link, whatever its health), in no order.
    pub fn linked_here(&self) -> Vec<Arc<GatewayTarget>> {
        let mut all = self.shared.here();
        all.retain(|t| !t.elsewhere && t.link.is_some());
        all
    }

    /// Those of `ids` this instance links, in the order asked.
    pub fn linked_of(&self, ids: &[GatewayId]) -> Vec<Arc<GatewayTarget>> {
        let mut these = self.shared.of(ids);
        these.retain(|t| !t.elsewhere && t.link.is_some());
        these
    }

    /// The ids of the gateways whose labels `keep` passes, in id order.
    pub fn ids_labelled(&self, keep: impl Fn(&Labels) -> bool) -> Vec<GatewayId> {
        let mut ids = Vec::new();
        self.shared.each(|t| {
            let c = t.candidate();
            if keep(&c.labels) {
                ids.push(c.id);
            }
        });
        ids.sort_unstable();
        ids
    }

    /// The first of `ids` that is not registered.
    pub fn first_unknown(&self, ids: &[GatewayId]) -> Option<GatewayId> {
        ids.iter()
            .copied()
            .find(|id| self.shared.get(*id).is_none())
    }

    /// The names of those of `ids` that are registered, in the order asked.
    pub fn names_of(&self, ids: &[GatewayId]) -> Vec<(GatewayId, String)> {
        let mut seen = HashSet::new();
        ids.iter()
            .filter(|id| seen.insert(**id))
            .filter_map(|id| self.shared.get(*id))
            .map(|t| (t.candidate.id, t.candidate.name.to_string()))
            .collect()
    }

    /// The acting primary, if any, and how many gateways are registered (for the error that
    /// says there is none).
    pub fn acting_primary(&self) -> (Option<Arc<GatewayTarget>>, usize) {
        let (mut acting, mut registered) = (None, 0);
        self.shared.each(|t| {
            registered += 1;
            if acting.is_none() && t.candidate().acting_primary {
                acting = Some(t.candidate().id);
            }
        });
        (acting.and_then(|id| self.shared.get(id)), registered)
    }
}
