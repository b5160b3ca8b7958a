//! The registry: the in-memory set of gateways and one gateway actor per gateway. What it
//! decides is [`RegistryState`] (`state.rs`, pure, unit-tested in `state_tests/`); this actor
//! carries the decisions out — it starts and stops the links, writes through the store,
//! publishes events. Reads are served from memory; writes go through the store one at a time
//! (the mailbox is held while a write is in flight), so memory and database never disagree.
//! Link reports update memory at once and reach the database through one writer thread, off
//! every hot path.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use tracing::{info, warn};

use crate::events::{EventBus, EventKind};
use crate::link::handle::GatewayLink;
use crate::link::messages::{LiveStats, StopLink};
use crate::link::{GatewayActor, LinkContext, LinkTarget, Upward};
use crate::model::{Caller, GatewayId, GatewayPatch, GatewayView};
use crate::primary;
use crate::store::{GatewayStore, LinkRecord, StoreError};
pub use actions::{Input, RegistryAction, Write};
pub use beats::{InstanceBeat, LeaseOwner};
pub use capacity::UNPLACED;
pub use cluster::{
    ActingPrimary, ApplyStoreChanges, Decides, KnowGateway, SetLeases, StillOpen, WritesSoFar,
};
use messages::{
    GatewaySnapshot, GatewaysChangedSince, GetGateway, ListGateways, Ping, RegistryError,
};
pub use peers::{GatewaysHere, Here};
pub use roles::PrimaryChange;
use shared::TargetsWriter;
pub use shared::{Seen, SharedTargets};
pub use state::RegistryState;

/// Health samples older than this are pruned.
pub const HEALTH_RETENTION: Duration = Duration::from_secs(24 * 3600);
const PRUNE_INTERVAL: Duration = Duration::from_secs(600);

mod actions;
mod beats;
mod capacity;
mod cluster;
mod crud;
mod index;
mod links;
pub mod messages;
mod ownership;
pub mod peer_table;
mod peers;
mod roles;
mod sessions;
mod shared;
mod state;
#[cfg(test)]
mod state_tests;
mod views;
mod writer;
use writer::{StoreWriter, WriteOp};

struct Link {
    addr: Addr<GatewayActor>,
    /// What callers get to ask of the link.
    handle: GatewayLink,
}

/// Carries out what [`RegistryState`] decides: it owns the links' actors, the store and its
/// writer, the event bus and the readers' caches; the state owns every fact and rule.
pub struct RegistryActor {
    state: RegistryState,
    store: Arc<dyn GatewayStore>,
    writer: StoreWriter,
    /// The sorted list handed to readers, as of a value of `changes`; rebuilt on the first
    /// read after a change. A pong is not a change: the views read their link's live numbers
    /// when shown.
    snapshot: Option<(u64, Arc<Vec<Arc<GatewayView>>>)>,
    /// The state's change count, for readers on other threads (the HTTP layer's caches and
    /// validators), so they can keep what they built from a snapshot until it moves: the
    /// registry's own changes (records, status, connection, breaker, roles), not the live
    /// numbers.
    changes: Arc<AtomicU64>,
    /// Every gateway as a call target, for the fleet to read without a mailbox trip.
    targets: TargetsWriter,
    /// Sessions of the connected gateways, newest first; rebuilt on the first read after a
    /// change, so a listing costs `limit` entries, not a merge of every gateway's cache.
    merged_sessions: Option<Arc<Vec<crate::protocol::sessions::SessionEntry>>>,
    /// The session list's change counter: readers may keep what they built from a page while
    /// it holds (see [`ListSessions`](crate::messages::ListSessions)).
    sessions_version: Arc<AtomicU64>,
    sessions: HashMap<GatewayId, Arc<Vec<crate::protocol::sessions::SessionEntry>>>,
    /// One context, shared by every link (72 bytes inline in a link's task otherwise).
    link_ctx: Option<Arc<LinkContext>>,
    links: HashMap<GatewayId, Link>,
    arbiters: Vec<Arbiter>,
    next_arbiter: usize,
    events: EventBus,
    /// In a cluster: links told to stop whose actors may still be running (their sockets open);
    /// a lease is released only once its link is gone (`StillOpen`).
    closing: HashMap<GatewayId, Addr<GatewayActor>>,
    /// Writes of gateway settings made here so far (create, update, suspension, delete).
    writes: u64,
}

type WriteResult<T> = AtomicResponse<RegistryActor, Result<T, RegistryError>>;
/// A write's future before it is answered atomically ([`WriteResult`]): one may run after
/// another (`cluster.rs`, `known_first`).
type WriteFut<T> = ResponseActFuture<RegistryActor, Result<T, RegistryError>>;

impl RegistryActor {
    /// Loads the registry (blocking: call from a blocking thread before starting the actor),
    /// repairing a missing primary if the database was edited by hand. With `link_ctx`, one
    /// gateway actor per gateway is started when the registry starts.
    /// Loads the registry from `store`: alone (`member`: `None`), every gateway a view to link;
    /// an instance of a cluster (`member`: its id), every gateway a peer until its leases come.
    pub fn load(
        store: Arc<dyn GatewayStore>,
        link_ctx: Option<LinkContext>,
        member: Option<&str>,
    ) -> Result<Self, StoreError> {
        let mut records = store.load_gateways(member.is_some())?;
        if let Some(id) = primary::repair_candidate(&records) {
            warn!(
                gateway_id = id.get(),
                "no primary gateway in the database; promoting the oldest"
            );
            let patch = GatewayPatch {
                is_primary: Some(true),
                ..GatewayPatch::default()
            };
            let promoted = store.update_gateway(id, &patch, &Caller::system("primary-repair"))?;
            records.retain(|r| r.id != id);
            records.push(promoted);
        }
        let links = link_ctx.is_some();
        let state = match member {
            Some(instance) => RegistryState::member(records, links, Instant::now(), instance),
            None => RegistryState::new(records, links),
        };
        let mut actor = RegistryActor {
            changes: Arc::new(AtomicU64::new(state.changes())),
            targets: TargetsWriter::default(),
            state,
            writer: StoreWriter::spawn(store.clone())?,
            store,
            snapshot: None,
            merged_sessions: None,
            sessions_version: Arc::new(AtomicU64::new(0)),
            sessions: HashMap::new(),
            link_ctx: link_ctx.map(Arc::new),
            links: HashMap::new(),
            arbiters: Vec::new(),
            next_arbiter: 0,
            events: EventBus::new(),
            closing: HashMap::new(),
            writes: 0,
        };
        actor.publish_targets();
        Ok(actor)
    }

    /// Events go to `events`; `failback` = `election.failback`.
    pub fn with_events(mut self, events: EventBus, failback: bool) -> Self {
        self.events = events;
        self.state.set_failback(failback);
        self
    }

    /// Alone: link at most `capacity` gateways; the rest are unplaced, lowest id placed first
    /// as room is made.
    pub fn within(mut self, capacity: Option<usize>) -> Self {
        self.state.set_capacity(capacity);
        self
    }

    pub fn len(&self) -> usize {
        self.state.len()
    }

    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    /// A handle on the change counter of the session list.
    pub fn sessions_version(&self) -> Arc<AtomicU64> {
        self.sessions_version.clone()
    }

    /// A handle on the count of the registry's own changes (records, status, connection,
    /// breaker, roles; not the live numbers a pong refreshes).
    pub fn changes(&self) -> Arc<AtomicU64> {
        self.changes.clone()
    }

    /// Every gateway as a call target, read without asking the registry.
    pub fn targets(&self) -> SharedTargets {
        self.targets.reader()
    }

    /// Hands `input` to the state and carries out what it decides, in order.
    fn apply(&mut self, input: Input, ctx: &mut Context<Self>) {
        let actions = self.state.apply(input);
        for action in actions {
            match action {
                RegistryAction::Publish {
                    kind,
                    gateway,
                    payload,
                } => {
                    self.events.publish(kind, gateway, payload);
                }
                RegistryAction::Persist(id, record) => self.writer.send(WriteOp::Link(id, record)),
                RegistryAction::PersistDeviceToken(id, token) => {
                    self.writer.send(WriteOp::DeviceToken(id, token))
                }
                RegistryAction::PrimaryChanged(change) => self.announce(change),
                RegistryAction::StartLink {
                    target,
                    epoch,
                    live,
                } => self.start_link(*target, epoch, live, ctx),
                RegistryAction::StopLink(id) => self.stop_link(id),
                RegistryAction::Forget(id) => {
                    if let Some(links) = &self.link_ctx {
                        links.metrics.forget(id);
                    }
                }
                RegistryAction::SessionsStale => self.sessions_changed(),
                RegistryAction::ReadRecords { ids, after } => self.read_records(ids, after, ctx),
            }
        }
        self.changed();
    }

    /// After the state changed: readers' copies of the gateway list are stale, and the shared
    /// targets of the gateways it touched are rebuilt.
    fn changed(&mut self) {
        let changes = self.state.changes();
        if self.changes.swap(changes, Ordering::AcqRel) != changes {
            self.snapshot = None;
        }
        self.publish_targets();
    }

    /// The merged session list is stale (a cache changed, or a gateway connected or left).
    fn sessions_changed(&mut self) {
        self.merged_sessions = None;
        self.sessions_version.fetch_add(1, Ordering::Release);
    }

    /// A new acting primary: an event, a metric and an audit row.
    fn announce(&mut self, change: PrimaryChange) {
        // Ids as numbers, `none` for no gateway: not Rust's `Some(4)`.
        let id = |g: Option<GatewayId>| g.map_or_else(|| "none".to_owned(), |id| id.to_string());
        info!(acting = %id(change.acting), previous = %id(change.previous), reason = change.reason.as_str(), "acting primary changed");
        let details = change.details();
        self.events
            .publish(EventKind::GatewayPrimary, change.acting, details.clone());
        if let Some(ctx) = &self.link_ctx {
            ctx.metrics.primary_changes.inc();
        }
        self.writer
            .send(WriteOp::Audit("gateway.primary", change.acting, details));
    }

    fn snapshot(&mut self) -> GatewaySnapshot {
        let changes = self.changes.load(Ordering::Acquire);
        if let Some((c, views)) = &self.snapshot
            && *c == changes
        {
            return GatewaySnapshot {
                changes,
                views: views.clone(),
                peers: self.state.peers_held(),
            };
        }
        let list = Arc::new(self.state.sorted_views());
        self.snapshot = Some((changes, list.clone()));
        GatewaySnapshot {
            changes,
            views: list,
            peers: self.state.peers_held(),
        }
    }

    // ---- links ------------------------------------------------------------------------------

    fn start_link(
        &mut self,
        target: LinkTarget,
        epoch: u64,
        live: Arc<LiveStats>,
        ctx: &mut Context<Self>,
    ) {
        let Some(link_ctx) = self.link_ctx.clone() else {
            return;
        };
        let id = target.id;
        link_ctx.metrics.track(id);
        if self.arbiters.is_empty() {
            let n = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2);
            self.arbiters = (0..n).map(|_| crate::link::runtime::arbiter()).collect();
        }
        let up = Upward::to(&ctx.address());
        let arbiter = &self.arbiters[self.next_arbiter % self.arbiters.len()];
        self.next_arbiter += 1;
        let addr = GatewayActor::start_in_arbiter(&arbiter.handle(), move |_| {
            GatewayActor::new(target, epoch, live, link_ctx, up)
        });
        let handle = GatewayLink::of(&addr);
        self.links.insert(id, Link { addr, handle });
    }

    fn stop_link(&mut self, id: GatewayId) {
        if let Some(link) = self.links.remove(&id) {
            link.addr.do_send(StopLink);
            if self.state.ownership().is_leased() {
                self.closing.insert(id, link.addr);
            }
        }
        self.sessions.remove(&id);
    }
}

impl Actor for RegistryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.apply(Input::Started, ctx);
        ctx.run_interval(PRUNE_INTERVAL, |act, _| act.prune());
        if self.state.ownership().is_leased() {
            ctx.run_interval(cluster::FENCE_CHECK, |act, ctx| {
                act.closing.retain(|_, addr| addr.connected());
                act.apply(Input::FenceCheck(Instant::now()), ctx);
            });
        }
        ctx.run_interval(
            Duration::from_secs(LinkRecord::LAST_SEEN_EVERY as u64),
            |act, ctx| act.apply(Input::PersistLive, ctx),
        );
        self.prune();
        info!(
            gateways = self.state.len(),
            links = self.links.len(),
            "registry started"
        );
    }
}

impl RegistryActor {
    fn prune(&self) {
        let before = crate::unix_now() - HEALTH_RETENTION.as_secs() as i64;
        self.writer.send(WriteOp::Prune(before));
    }
}

impl Handler<ListGateways> for RegistryActor {
    type Result = MessageResult<ListGateways>;
    fn handle(&mut self, _msg: ListGateways, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.snapshot())
    }
}

impl Handler<GatewaysChangedSince> for RegistryActor {
    type Result = Option<GatewaySnapshot>;
    fn handle(&mut self, msg: GatewaysChangedSince, _ctx: &mut Self::Context) -> Self::Result {
        let snapshot = self.snapshot();
        (msg.0 != Some(snapshot.changes)).then_some(snapshot)
    }
}

impl Handler<GatewaysHere> for RegistryActor {
    type Result = Here;
    fn handle(&mut self, msg: GatewaysHere, _ctx: &mut Self::Context) -> Here {
        self.state.here(self.changes.load(Ordering::Acquire), msg.0)
    }
}

impl Handler<GetGateway> for RegistryActor {
    type Result = Option<GatewayView>;
    fn handle(&mut self, msg: GetGateway, _ctx: &mut Self::Context) -> Self::Result {
        self.state.view(msg.0)
    }
}

impl Handler<Ping> for RegistryActor {
    type Result = ();
    fn handle(&mut self, _msg: Ping, _ctx: &mut Self::Context) {}
}
