//! Which gateways this instance links: all of them alone, its leases in a cluster
//! (docs/design.md, *Cluster*). The cluster runner decides the leases; this keeps them, with the
//! guard each link carries, and answers from them — time is an input (`now`), so the lease
//! rules are tested without a clock.

use std::collections::HashMap;
use std::time::Instant;

use crate::link::LeaseGuard;
use crate::model::GatewayId;

/// Which gateways this instance links.
pub(super) enum Ownership {
    /// All of them: the only daemon on its database.
    All,
    /// Those it holds a lease on, until `valid_until`. Only the coordinator elects the acting
    /// primary (and announces, audits and counts a change); the others follow `acting`, the
    /// coordinator's choice as recorded in the database.
    Leased {
        /// This instance's id.
        instance: std::sync::Arc<str>,
        held: HashMap<GatewayId, Held>,
        valid_until: Instant,
        coordinator: bool,
        acting: Option<GatewayId>,
    },
}

/// One lease held: its epoch, and the guard its link carries. Each link has its own guard,
/// moved forward only while its lease is renewed: a lease lost stays lost for its link even
/// when the next round renews the others (a stale socket gets no close frame).
pub(super) struct Held {
    epoch: u64,
    guard: LeaseGuard,
}

/// What one renewal round changed: leases gone (with whether each was still valid when it
/// went) and leases new to this instance.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct LeaseChanges {
    pub gone: Vec<(GatewayId, bool)>,
    pub new: Vec<GatewayId>,
    /// The coordinator's role or its recorded choice moved.
    pub roles_moved: bool,
    /// This instance became the coordinator (`Some(true)`) or stopped being it.
    pub coordinator: Option<bool>,
}

impl LeaseChanges {
    /// What an operator reads of a round that changed something (`held`: leases held now).
    pub(super) fn log(&self, held: usize) {
        if let Some(coordinator) = self.coordinator {
            tracing::info!(coordinator, "coordinator role changed");
        }
        let again = self
            .gone
            .iter()
            .filter(|(id, _)| self.new.contains(id))
            .count();
        if again > 0 {
            tracing::warn!(
                gateways = again,
                "a round renewed leases after their links had stopped at their guard: linking them again"
            );
        }
        let lapsed = self
            .gone
            .iter()
            .filter(|(id, valid)| !valid && !self.new.contains(id))
            .count();
        if lapsed > 0 {
            tracing::warn!(
                gateways = lapsed,
                "lease ended before it could be renewed: leaving those gateways to their new owners"
            );
        }
        if !self.gone.is_empty() || !self.new.is_empty() {
            tracing::info!(
                adopted = self.new.len(),
                released = self.gone.len(),
                held,
                "gateway leases changed"
            );
        }
    }
}

impl Ownership {
    /// A cluster member that holds nothing yet, until `now`.
    pub(super) fn leased(now: Instant, instance: &str) -> Self {
        Ownership::Leased {
            instance: instance.into(),
            held: HashMap::new(),
            valid_until: now,
            coordinator: false,
            acting: None,
        }
    }

    /// This instance's id in a cluster.
    pub(super) fn instance(&self) -> Option<&str> {
        match self {
            Ownership::All => None,
            Ownership::Leased { instance, .. } => Some(instance),
        }
    }

    pub(super) fn is_leased(&self) -> bool {
        matches!(self, Ownership::Leased { .. })
    }

    pub(super) fn may_link(&self, id: GatewayId) -> bool {
        match self {
            Ownership::All => true,
            Ownership::Leased { held, .. } => held.contains_key(&id),
        }
    }

    /// The guard gateway `id`'s link carries (`None`: alone, no lease needed).
    pub(super) fn guard(&self, id: GatewayId) -> Option<LeaseGuard> {
        match self {
            Ownership::All => None,
            Ownership::Leased { held, .. } => held.get(&id).map(|h| h.guard.clone()),
        }
    }

    /// Who dials gateway `id`: `instance:epoch` in a cluster (`None` alone).
    pub(super) fn dialer(&self, id: GatewayId) -> Option<std::sync::Arc<str>> {
        match self {
            Ownership::All => None,
            Ownership::Leased { instance, held, .. } => held
                .get(&id)
                .map(|h| format!("{instance}:{}", h.epoch).into()),
        }
    }

    /// Whether another instance links this gateway (its facts come from the database).
    pub(super) fn elsewhere(&self, id: GatewayId) -> bool {
        !self.may_link(id)
    }

    /// Whether this instance decides for the fleet: alone, or as the cluster's coordinator.
    pub(super) fn decides(&self) -> bool {
        matches!(
            self,
            Ownership::All
                | Ownership::Leased {
                    coordinator: true,
                    ..
                }
        )
    }

    /// A member, not the coordinator: the acting primary the coordinator recorded.
    pub(super) fn following(&self) -> Option<Option<GatewayId>> {
        match self {
            Ownership::Leased {
                coordinator: false,
                acting,
                ..
            } => Some(*acting),
            _ => None,
        }
    }

    /// Takes one renewal round: `leases` (gateway → epoch) valid until `valid_until`. A lease
    /// renewed moves its guard forward. One lost (not in `leases`) is reported gone and leaves
    /// its guard where it was: its link stops, and may still close politely, before anyone
    /// else may take the gateway. One retaken under a new epoch, or whose guard had already
    /// passed at `now` when the round landed (its link saw that and stopped itself: a guard
    /// never comes back to life), is reported gone and new at once: its old guard is fenced
    /// now and a new link dials under a new guard.
    pub(super) fn renew(
        &mut self,
        leases: &HashMap<GatewayId, u64>,
        until: Instant,
        is_coordinator: bool,
        recorded_acting: Option<GatewayId>,
        now: Instant,
    ) -> LeaseChanges {
        let Ownership::Leased {
            held,
            valid_until,
            coordinator,
            acting,
            ..
        } = self
        else {
            return LeaseChanges::default();
        };
        *valid_until = until;
        let roles_moved = *coordinator != is_coordinator || *acting != recorded_acting;
        let coordinator_moved = (*coordinator != is_coordinator).then_some(is_coordinator);
        *coordinator = is_coordinator;
        *acting = recorded_acting;
        let mut gone: Vec<(GatewayId, bool)> = held
            .iter()
            .filter(|(id, h)| leases.get(id) != Some(&h.epoch) || !h.guard.valid_at(now))
            .map(|(id, h)| (*id, h.guard.valid_at(now)))
            .collect();
        gone.sort_unstable();
        for (id, _) in &gone {
            if let Some(h) = held.remove(id)
                && leases.contains_key(id)
            {
                // Still this instance's, under a newer epoch or a new guard: a new link takes
                // it now, and the old one must say nothing more — not even its close frame.
                // (A lease gone elsewhere keeps its guard: the link may close politely.)
                h.guard.extend(now);
            }
        }
        let mut new = Vec::new();
        for (id, epoch) in leases {
            match held.get(id) {
                Some(h) => h.guard.extend(until),
                None => {
                    held.insert(
                        *id,
                        Held {
                            epoch: *epoch,
                            guard: LeaseGuard::until(until),
                        },
                    );
                    new.push(*id);
                }
            }
        }
        new.sort_unstable();
        LeaseChanges {
            gone,
            new,
            roles_moved,
            coordinator: coordinator_moved,
        }
    }

    /// The last successful round's deadline has passed at `now`: every lease of that round has
    /// ended, so every one is dropped (returned, to stop their links).
    pub(super) fn lapse(&mut self, now: Instant) -> Vec<GatewayId> {
        let Ownership::Leased {
            held, valid_until, ..
        } = self
        else {
            return Vec::new();
        };
        if held.is_empty() || now < *valid_until {
            return Vec::new();
        }
        let mut ids: Vec<GatewayId> = held.drain().map(|(id, _)| id).collect();
        ids.sort_unstable();
        ids
    }
}
