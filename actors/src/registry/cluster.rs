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

use super::beats::{InstanceBeat, LeaseOwner};
use super::messages::RegistryError;
use super::{Input, RegistryActor, WriteFut, WriteResult};
use crate::model::{GatewayId, GatewayRecord};

/// How often the registry checks its lease guard (a backstop: the runner stops links itself
/// when a renewal fails, and each link checks the guard before touching its gateway).
pub(super) const FENCE_CHECK: Duration = Duration::from_millis(250);

/// Whether this registry decides for the fleet: alone, or as the cluster's coordinator. What
/// must happen once per fleet (alerts) is done where this answers `true`.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Decides;

impl Handler<Decides> for RegistryActor {
    type Result = bool;
    fn handle(&mut self, _msg: Decides, _ctx: &mut Self::Context) -> bool {
        self.state.ownership().decides()
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
    /// Every live instance's epoch and last heartbeat: the last-seen of the gateways each links.
    pub beats: Vec<InstanceBeat>,
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
    /// Leases that changed hands (whose heartbeat stands for each gateway's last-seen).
    pub owners: Vec<LeaseOwner>,
    pub after_writes: u64,
}

/// Whether this instance knows gateway `id` — in a cluster, once it has read the row of a
/// gateway it had not heard of (`known_first`): a gateway registered through a peer a moment
/// ago, before the change feed brought it. What a scoped key's check of the gateway its path
/// names waits on (`http::visible::gateway_in_path`), as the writes do.
#[derive(Message)]
#[rtype(result = "Result<bool, RegistryError>")]
pub struct KnowGateway(pub GatewayId);

impl Handler<KnowGateway> for RegistryActor {
    type Result = WriteResult<bool>;

    fn handle(&mut self, msg: KnowGateway, _ctx: &mut Self::Context) -> Self::Result {
        self.known_first(msg.0, msg.0, |act, id| {
            Box::pin(actix::fut::ready(Ok(act.state.contains(id))))
        })
    }
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
        let input = Input::Leases {
            held: msg.held,
            valid_until: msg.valid_until,
            coordinator: msg.coordinator,
            acting: msg.acting,
            now: Instant::now(),
            beats: msg.beats,
        };
        self.apply(input, ctx);
    }
}

impl Handler<ActingPrimary> for RegistryActor {
    type Result = Option<GatewayId>;

    fn handle(&mut self, _msg: ActingPrimary, _ctx: &mut Self::Context) -> Self::Result {
        self.state.acting()
    }
}

impl Handler<ApplyStoreChanges> for RegistryActor {
    type Result = bool;

    fn handle(&mut self, msg: ApplyStoreChanges, ctx: &mut Self::Context) -> bool {
        if msg.after_writes != self.writes {
            return false;
        }
        let input = Input::StoreChanges {
            changed: msg.changed,
            deleted: msg.deleted,
            owners: msg.owners,
        };
        self.apply(input, ctx);
        true
    }
}

impl RegistryActor {
    /// Runs the write `then` for gateway `id` — in a cluster, after reading the gateway's row
    /// when this instance has not heard of it yet. A gateway created through another instance
    /// reaches this one through the change feed within a notification's round trip (tens of
    /// milliseconds, `wake.rs`); a client that writes to it through this instance sooner (a load
    /// balancer in front of the instances, a script that creates then renames) would otherwise
    /// be told it does not exist. The row read is applied as the feed would apply it, and
    /// counted as a write so that a feed read begun before it is not applied over it
    /// ([`ApplyStoreChanges`]). A gateway that is in the database nowhere costs one read of
    /// one row (bounded by the store's pool and statement timeouts) and is refused by `then`
    /// as before.
    pub(super) fn known_first<M: 'static, T: 'static>(
        &mut self,
        id: GatewayId,
        msg: M,
        then: fn(&mut Self, M) -> WriteFut<T>,
    ) -> WriteResult<T> {
        if self.state.contains(id) || !self.state.ownership().is_leased() {
            return AtomicResponse::new(then(self, msg));
        }
        let store = self.store.clone();
        let read =
            async move { tokio::task::spawn_blocking(move || store.gateway_records(&[id])).await };
        AtomicResponse::new(Box::pin(actix::fut::wrap_future::<_, Self>(read).then(
            move |read, act, ctx| {
                let changed = match read {
                    Ok(Ok(changed)) => changed,
                    // Not "not found": whether it exists is unknown (503, not 404).
                    Ok(Err(e)) => return Self::refuse(e.into()),
                    Err(join) => return Self::refuse(RegistryError::Interrupted(join)),
                };
                if !changed.is_empty() && !act.state.contains(id) {
                    act.writes += 1;
                    let input = Input::StoreChanges {
                        changed,
                        deleted: Vec::new(),
                        owners: Vec::new(),
                    };
                    act.apply(input, ctx);
                }
                then(act, msg)
            },
        )))
    }

    /// Reads the records of gateways about to be linked here off the actor's thread (`after`
    /// this long, for a read that failed) and hands the answer to the state
    /// (`state/records.rs`). The store's pool and statement timeouts bound the wait.
    pub(super) fn read_records(
        &mut self,
        ids: Vec<GatewayId>,
        after: Option<Duration>,
        ctx: &mut Context<Self>,
    ) {
        if let Some(after) = after {
            ctx.run_later(after, move |act, ctx| act.read_records(ids, None, ctx));
            return;
        }
        let store = self.store.clone();
        let asked = ids.clone();
        let read = async move {
            match tokio::task::spawn_blocking(move || store.gateway_records(&ids)).await {
                Ok(Ok(read)) => Some(read),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "reading the records of gateways to link failed; asking again");
                    None
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the records of gateways to link was interrupted; asking again");
                    None
                }
            }
        };
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(read)
                .map(move |read, act, ctx| act.apply(Input::RecordsRead { asked, read }, ctx)),
        );
    }
}
