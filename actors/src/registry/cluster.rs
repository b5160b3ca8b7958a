//! The registry in a cluster: which gateways this instance may link (the leases the cluster
//! runner holds for it), and the gateway rows other instances changed. Alone (SQLite, or no
//! cluster), every gateway is linked and nothing arrives from elsewhere.
//!
//! The runner decides; the registry carries out: a lease held starts a link that carries the
//! instance's [`LeaseGuard`], a lease gone stops it, and a guard that runs out (renewals
//! failing, the process paused) stops every link before the lease itself expires in the
//! database (docs/design.md, *Cluster*).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tracing::{info, warn};

use super::RegistryActor;
use crate::link::LeaseGuard;
use crate::model::{GatewayId, GatewayRecord, GatewayStatus};

/// How often the registry checks its lease guard (a backstop: the runner stops links itself
/// when a renewal fails, and each link checks the guard before touching its gateway).
pub(super) const FENCE_CHECK: Duration = Duration::from_millis(250);

/// Which gateways this instance links.
pub(super) enum Ownership {
    /// All of them: the only daemon on its database.
    All,
    /// Those it holds a lease on, until `valid_until`. Only the coordinator elects the acting
    /// primary (and announces, audits and counts a change); the others follow `acting`, the
    /// coordinator's choice as recorded in the database.
    Leased {
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

impl Ownership {
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

    /// Whether another instance links this gateway (its facts come from the database).
    pub(super) fn elsewhere(&self, id: GatewayId) -> bool {
        !self.may_link(id)
    }
}

/// Whether this registry decides for the fleet: alone, or as the cluster's coordinator. What
/// must happen once per fleet (alerts) is done where this answers `true`.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Decides;

impl Handler<Decides> for RegistryActor {
    type Result = bool;
    fn handle(&mut self, _msg: Decides, _ctx: &mut Self::Context) -> bool {
        matches!(
            self.ownership,
            Ownership::All
                | Ownership::Leased {
                    coordinator: true,
                    ..
                }
        )
    }
}

/// From the cluster runner, after each renewal round: the leases this instance holds (gateway
/// → epoch), all valid until `valid_until` on this process's monotonic clock.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetLeases {
    pub held: HashMap<GatewayId, u64>,
    pub valid_until: Instant,
    /// This instance holds the coordinator's lease: it elects the acting primary.
    pub coordinator: bool,
    /// Otherwise: the acting primary the coordinator recorded.
    pub acting: Option<GatewayId>,
}

/// From the cluster runner, before it releases leases it stopped renewing: which of these
/// gateways still have a link running here (told to stop, not gone yet). Their leases are kept
/// until the link is gone, so that the next owner never opens a socket beside this one.
#[derive(Message)]
#[rtype(result = "Vec<GatewayId>")]
pub struct StillOpen(pub Vec<GatewayId>);

/// To the registry: the acting primary it elected (the coordinator records it).
#[derive(Message)]
#[rtype(result = "Option<GatewayId>")]
pub struct ActingPrimary;

/// To the registry, before the runner reads the change feed: how many settings writes it has
/// made so far ([`ApplyStoreChanges::after_writes`]).
#[derive(Message)]
#[rtype(result = "u64")]
pub struct WritesSoFar;

/// From the cluster runner: gateway rows written since it last looked (by any instance), and
/// gateways deleted, as read after the registry had made `after_writes` writes. Applied only if
/// it has made no other since (answer `true`): rows read before a write of this instance's
/// committed could be older than memory, and applying them would undo it until the next read.
/// Refused, the runner reads them again.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct ApplyStoreChanges {
    pub changed: Vec<GatewayRecord>,
    pub deleted: Vec<GatewayId>,
    pub after_writes: u64,
}

impl RegistryActor {
    /// In a cluster: no link starts until the runner says which gateways are this instance's.
    pub fn leased(mut self) -> Self {
        self.ownership = Ownership::Leased {
            held: HashMap::new(),
            valid_until: Instant::now(),
            coordinator: false,
            acting: None,
        };
        // Nobody acts as primary here until the coordinator says who (the views were loaded
        // as a daemon alone would see them).
        for view in self.gateways.values_mut() {
            view.acting_primary = false;
        }
        self
    }

    /// Stops every link when the last successful round's deadline has passed (every lease of
    /// that round ends then; each link's own guard has stopped it from touching its gateway).
    pub(super) fn check_fence(&mut self) {
        self.closing.retain(|_, addr| addr.connected());
        let Ownership::Leased {
            held, valid_until, ..
        } = &mut self.ownership
        else {
            return;
        };
        if held.is_empty() || Instant::now() < *valid_until {
            return;
        }
        warn!(
            gateways = held.len(),
            "lease ended (not renewed in time): stopping every link"
        );
        let ids: Vec<GatewayId> = held.drain().map(|(id, _)| id).collect();
        for id in ids {
            self.stop_link(id);
        }
        self.refresh_roles();
    }

    /// A gateway row from the database. Ours: its settings (a new address or credential
    /// restarts the link), our live facts kept. Another instance's: the row as its owner wrote
    /// it.
    fn merge_stored(&mut self, record: GatewayRecord, ctx: &mut Context<Self>) {
        self.records_changed();
        let id = record.id;
        let Some(current) = self.gateways.get_mut(&id) else {
            self.put(record);
            if self.ownership.may_link(id) {
                self.start_link(id, ctx);
            }
            return;
        };
        if self.links.contains_key(&id) {
            let old = &current.record;
            let relink = old.host != record.host
                || old.port != record.port
                || old.tls != record.tls
                || old.allow_insecure_tls != record.allow_insecure_tls
                || old.approvals != record.approvals
                || token_changed(old, &record);
            let mut record = record;
            record.keep_live_facts(old);
            current.record = record;
            if relink {
                self.stop_link(id);
                self.start_link(id, ctx);
            }
        } else {
            current.record = record;
        }
    }
}

fn token_changed(a: &GatewayRecord, b: &GatewayRecord) -> bool {
    use secrecy::ExposeSecret;
    a.token.as_ref().map(|t| t.expose_secret().to_owned())
        != b.token.as_ref().map(|t| t.expose_secret().to_owned())
}

impl Handler<WritesSoFar> for RegistryActor {
    type Result = u64;

    fn handle(&mut self, _msg: WritesSoFar, _ctx: &mut Self::Context) -> u64 {
        self.writes
    }
}

impl Handler<StillOpen> for RegistryActor {
    type Result = MessageResult<StillOpen>;

    fn handle(&mut self, msg: StillOpen, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(
            msg.0
                .into_iter()
                .filter(|id| {
                    self.links.contains_key(id)
                        || self.closing.get(id).is_some_and(|addr| addr.connected())
                })
                .collect(),
        )
    }
}

impl Handler<SetLeases> for RegistryActor {
    type Result = ();

    fn handle(&mut self, msg: SetLeases, ctx: &mut Self::Context) {
        let Ownership::Leased {
            held,
            valid_until,
            coordinator,
            acting,
        } = &mut self.ownership
        else {
            return;
        };
        *valid_until = msg.valid_until;
        let roles_moved = *coordinator != msg.coordinator || *acting != msg.acting;
        if *coordinator != msg.coordinator {
            info!(coordinator = msg.coordinator, "coordinator role changed");
        }
        *coordinator = msg.coordinator;
        *acting = msg.acting;
        let now = Instant::now();
        // Leases lost or retaken (a new epoch): their guards stay where they were.
        let gone: Vec<(GatewayId, bool)> = held
            .iter()
            .filter(|(id, h)| msg.held.get(id) != Some(&h.epoch))
            .map(|(id, h)| (*id, h.guard.valid_at(now)))
            .collect();
        for (id, _) in &gone {
            held.remove(id);
        }
        let mut new = Vec::new();
        for (id, epoch) in &msg.held {
            match held.get(id) {
                Some(h) => h.guard.extend(msg.valid_until),
                None => {
                    held.insert(
                        *id,
                        Held {
                            epoch: *epoch,
                            guard: LeaseGuard::until(msg.valid_until),
                        },
                    );
                    new.push(*id);
                }
            }
        }
        let lapsed = gone.iter().filter(|(_, valid)| !valid).count();
        if lapsed > 0 {
            warn!(
                gateways = lapsed,
                "lease ended before it could be renewed: leaving those gateways to their new owners"
            );
        }
        for (id, _) in &gone {
            self.stop_link(*id);
        }
        for id in &new {
            if self.gateways.contains_key(id) {
                self.start_link(*id, ctx);
            }
        }
        if !gone.is_empty() || !new.is_empty() {
            info!(
                adopted = new.len(),
                released = gone.len(),
                held = msg.held.len(),
                "gateway leases changed"
            );
        }
        if roles_moved || !gone.is_empty() || !new.is_empty() {
            self.refresh_roles();
        }
    }
}

impl Handler<ActingPrimary> for RegistryActor {
    type Result = Option<GatewayId>;

    fn handle(&mut self, _msg: ActingPrimary, _ctx: &mut Self::Context) -> Self::Result {
        self.acting
    }
}

impl RegistryActor {
    /// Not the coordinator: the acting primary is the coordinator's choice, taken silently
    /// (the coordinator announced it). Returns `false` when this instance elects.
    pub(super) fn follow_coordinator(&mut self) -> bool {
        let Ownership::Leased {
            coordinator: false,
            acting,
            ..
        } = &self.ownership
        else {
            return false;
        };
        let acting = acting.filter(|id| self.gateways.contains_key(id));
        // New views take their flag from `self.acting` (`put`): only a change rewrites them.
        if acting != self.acting {
            self.acting = acting;
            for view in self.gateways.values_mut() {
                view.acting_primary = Some(view.record.id) == acting;
            }
            self.views_changed();
        }
        true
    }
}

impl Handler<ApplyStoreChanges> for RegistryActor {
    type Result = bool;

    fn handle(&mut self, msg: ApplyStoreChanges, ctx: &mut Self::Context) -> bool {
        if msg.after_writes != self.writes {
            return false;
        }
        if msg.changed.is_empty() && msg.deleted.is_empty() {
            return true;
        }
        for id in msg.deleted {
            if self.gateways.contains_key(&id) {
                self.stop_link(id);
                if let Some(links) = &self.link_ctx {
                    links.metrics.forget(id);
                }
                self.gateways.remove(&id);
                self.records_changed();
            }
        }
        for record in msg.changed {
            self.merge_stored(record, ctx);
        }
        self.views_changed();
        self.refresh_roles();
        true
    }
}

/// Whether a gateway linked elsewhere can act as primary, from what its owner wrote. `Unknown`
/// (its owner has not reported yet: the cluster is starting, or it was just adopted) is no
/// reason to move the role — as a daemon alone keeps its designated primary until its links
/// report — so it counts as eligible; a measured `offline` or `timeout` does not.
pub(super) fn eligible_elsewhere(status: GatewayStatus) -> bool {
    status.eligible_elsewhere()
}
