//! Who acts as primary, as the registry keeps it: the election's choice (`crate::election`,
//! pure) over the registry's views and peers (`peer_table.rs`), the acting flags on them, and
//! the change it makes — returned, never announced here (the actor publishes, counts and
//! audits it).
//!
//! The common case costs two lookups: `election::settled` looks at the acting and designated
//! gateways only, and the designated one is found once per change of the stored records. A
//! fleet of 10,000 connecting around a stand-in sends ~40,000 link reports; a pass over the
//! fleet on each of them was most of the daemon's start-up work (docs/design.md, *Election
//! and routing*).

use super::ownership::Ownership;
use super::peer_table::{Peer, PeerTable};
use super::views::Views;
use crate::election::{self, Candidate, Reason};
use crate::model::{BreakerState, GatewayId, GatewayRecord, GatewayView, LinkPhase};

/// The acting primary changed: what the event, the audit row and the metric say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryChange {
    pub acting: Option<GatewayId>,
    pub previous: Option<GatewayId>,
    pub designated: Option<GatewayId>,
    pub reason: Reason,
}

impl PrimaryChange {
    /// The event's and the audit row's details.
    pub fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "acting_primary": self.acting, "previous": self.previous,
            "designated": self.designated, "reason": self.reason.as_str(),
        })
    }
}

/// What a refresh did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Refreshed {
    /// The views whose `acting_primary` flag was rewritten (readers' copies are stale).
    pub flagged: Vec<GatewayId>,
    /// The acting primary moved (this instance elects, so it announces).
    pub change: Option<PrimaryChange>,
}

pub(super) struct Roles {
    acting: Option<GatewayId>,
    /// The designated primary (`None`: to be looked up again).
    designated: Option<Option<GatewayId>>,
    failback: bool,
}

impl Roles {
    pub(super) fn new(failback: bool) -> Self {
        Roles {
            acting: None,
            designated: None,
            failback,
        }
    }

    pub(super) fn set_failback(&mut self, failback: bool) {
        self.failback = failback;
    }

    pub(super) fn acting(&self) -> Option<GatewayId> {
        self.acting
    }

    /// At start: the designated primary acts until the links report (no change to announce),
    /// unless an operator holds it back.
    pub(super) fn start(&mut self, gateways: &Views, peers: &PeerTable) {
        self.acting = (gateways.values())
            .find(|v| v.record.is_primary && v.record.held_back().is_none())
            .map(|v| v.record.id)
            .or_else(|| {
                (peers.iter())
                    .find(|p| p.designated && p.candidate.held_back.is_none())
                    .map(Peer::id)
            });
    }

    /// A stored record was put, replaced or removed: who is designated is looked up again.
    pub(super) fn records_changed(&mut self) {
        self.designated = None;
    }

    /// Re-runs the election over the views and the peers, rewriting their flags when the
    /// choice moves. In a cluster only the coordinator elects; a member takes the
    /// coordinator's recorded choice silently (the coordinator announced it).
    pub(super) fn refresh(
        &mut self,
        gateways: &mut Views,
        peers: &mut PeerTable,
        ownership: &Ownership,
        latency: &dyn Fn(GatewayId) -> Option<i64>,
    ) -> Refreshed {
        if let Some(recorded) = ownership.following() {
            return self.follow(gateways, peers, recorded);
        }
        let judge = |id: GatewayId| match gateways.get(&id) {
            Some(v) => Some(candidate(v, ownership, latency)),
            None => peers.get(id).map(|p| peer_candidate(p, ownership)),
        };
        let current = self.acting.and_then(judge);
        let designated = self.designated(gateways, peers).and_then(judge);
        let flags_right = self
            .acting
            .is_none_or(|id| flagged_acting(gateways, peers, id));
        if flags_right && election::settled(current.as_ref(), designated.as_ref(), self.failback) {
            return Refreshed::default();
        }
        let candidates: Vec<Candidate> = (gateways.values())
            .map(|v| candidate(v, ownership, latency))
            .chain(peers.iter().map(|p| peer_candidate(p, ownership)))
            .collect();
        let (acting, reason) = election::elect(&candidates, self.acting, self.failback);
        let flagged = flag(gateways, peers, acting);
        let change = (acting != self.acting).then(|| PrimaryChange {
            acting,
            previous: self.acting,
            designated: candidates.iter().find(|c| c.designated).map(|c| c.id),
            reason,
        });
        self.acting = acting;
        Refreshed { flagged, change }
    }

    /// A member: the coordinator's choice (if that gateway is known here), flags rewritten only
    /// when it moves (new views take theirs from [`Roles::flag_for`]).
    fn follow(
        &mut self,
        gateways: &mut Views,
        peers: &mut PeerTable,
        recorded: Option<GatewayId>,
    ) -> Refreshed {
        let acting = recorded.filter(|id| gateways.contains_key(id) || peers.contains(*id));
        // The flags too: a member starts with none set (and the designated primary as its own
        // guess), so the coordinator recording that same gateway is no move, yet it must show.
        let flags_right = acting.is_none_or(|id| flagged_acting(gateways, peers, id));
        if acting == self.acting && flags_right {
            return Refreshed::default();
        }
        self.acting = acting;
        Refreshed {
            flagged: flag(gateways, peers, acting),
            change: None,
        }
    }

    /// The acting flag of a view just put into memory.
    /// Alone, the designated primary unless held back (the election corrects it on the next
    /// change); in a cluster, whoever this instance last knew to act.
    pub(super) fn flag_for(&self, record: &GatewayRecord, leased: bool) -> bool {
        if leased {
            Some(record.id) == self.acting
        } else {
            record.is_primary && record.held_back().is_none()
        }
    }

    /// The designated primary's id, found once per change of the stored records.
    fn designated(&mut self, gateways: &Views, peers: &PeerTable) -> Option<GatewayId> {
        if let Some(known) = self.designated {
            return known;
        }
        let found = (gateways.values())
            .find(|v| v.record.is_primary)
            .map(|v| v.record.id)
            .or_else(|| peers.iter().find(|p| p.designated).map(Peer::id));
        self.designated = Some(found);
        found
    }
}

/// Whether gateway `id` (a view or a peer) is flagged as acting.
fn flagged_acting(gateways: &Views, peers: &PeerTable, id: GatewayId) -> bool {
    match gateways.get(&id) {
        Some(v) => v.acting_primary,
        None => peers.get(id).is_some_and(|p| p.candidate.acting_primary),
    }
}

/// Sets each gateway's flag to whether it is `acting`; returns those whose flag moved. A peer's
/// shard is copied only if one of its flags moves (at most two gateways' do).
fn flag(gateways: &mut Views, peers: &mut PeerTable, acting: Option<GatewayId>) -> Vec<GatewayId> {
    let mut moved = Vec::new();
    for (id, view) in gateways.iter_mut() {
        let acts = Some(*id) == acting;
        if view.acting_primary != acts {
            std::sync::Arc::make_mut(view).acting_primary = acts;
            moved.push(*id);
        }
    }
    let peers_moved: Vec<GatewayId> = (peers.iter())
        .filter(|p| p.candidate.acting_primary != (Some(p.id()) == acting))
        .map(Peer::id)
        .collect();
    for id in peers_moved {
        if let Some(p) = peers.get_mut(id) {
            p.candidate.acting_primary = Some(id) == acting;
        }
        moved.push(id);
    }
    moved
}

/// What the election looks at for one gateway. One linked elsewhere is judged by what its
/// owner wrote; one linked here by its socket and breaker; an operator's hold rules either out.
pub(super) fn candidate(
    v: &GatewayView,
    ownership: &Ownership,
    latency: &dyn Fn(GatewayId) -> Option<i64>,
) -> Candidate {
    let id = v.record.id;
    let reachable = if ownership.elsewhere(id) {
        v.record.status.eligible_elsewhere()
    } else {
        v.connection.state == Some(LinkPhase::Connected) && v.breaker.state == BreakerState::Closed
    };
    let held_back = v.record.held_back().is_some();
    Candidate {
        id,
        designated: v.record.is_primary,
        eligible: reachable && !held_back,
        held_back,
        status: v.record.status,
        latency_ms: latency(id).or(v.record.latency),
        sessions: v.record.sessions_count,
    }
}

/// What the election looks at for a peer: what its owner wrote (a gateway this instance may
/// link whose record is still being read is not reachable yet); an operator's hold rules it
/// out.
pub(super) fn peer_candidate(p: &Peer, ownership: &Ownership) -> Candidate {
    let id = p.id();
    let held_back = p.candidate.held_back.is_some();
    let reachable = ownership.elsewhere(id) && p.status.eligible_elsewhere();
    Candidate {
        id,
        designated: p.designated,
        eligible: reachable && !held_back,
        held_back,
        status: p.status,
        latency_ms: p.latency(),
        sessions: p.candidate.active_sessions,
    }
}
