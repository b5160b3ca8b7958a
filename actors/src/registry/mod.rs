//! The registry actor: owns the in-memory set of gateways and one gateway actor per gateway.
//! Reads are served from memory; writes go through the store one at a time (the mailbox is held
//! while a write is in flight), so memory and database never disagree. Link reports from the
//! gateway actors update memory at once and reach the database through one writer thread, off
//! every hot path.

use crate::events::EventKind;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use actix::fut::{ActorFutureExt, ready};
use actix::prelude::*;
use secrecy::SecretString;
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use crate::election::{self, Candidate};
use crate::events::EventBus;
use crate::link::handle::GatewayLink;
use crate::link::messages::{HealthSample, LiveStats, StopLink};
use crate::link::{GatewayActor, LinkContext, LinkTarget, Upward};
use crate::model::{
    BreakerInfo, Caller, ConnectionInfo, GatewayId, GatewayPatch, GatewayRecord, GatewayView,
    LinkPhase,
};
use crate::primary;
use crate::store::{GatewayStore, LinkRecord, StoreError};
use cluster::Ownership;
pub use cluster::{ActingPrimary, ApplyStoreChanges, Decides, SetLeases, StillOpen, WritesSoFar};
use messages::{
    ChangedGateways, GatewaySnapshot, GatewaysChangedSince, GetGateway, ListGateways, Ping,
    RegistryError,
};

/// Health samples older than this are pruned.
pub const HEALTH_RETENTION: Duration = Duration::from_secs(24 * 3600);
const PRUNE_INTERVAL: Duration = Duration::from_secs(600);

mod cluster;
mod crud;
mod links;
pub mod messages;
mod sessions;
mod writer;
use writer::{StoreWriter, WriteOp};

struct Link {
    addr: Addr<GatewayActor>,
    /// What callers get to ask of the link.
    handle: GatewayLink,
    epoch: u64,
    live: Arc<LiveStats>,
}

pub struct RegistryActor {
    store: Arc<dyn GatewayStore>,
    writer: StoreWriter,
    gateways: HashMap<GatewayId, GatewayView>,
    /// The sorted list handed to readers, as of a value of `version`; rebuilt on the first
    /// read after a change.
    snapshot: Option<(u64, Arc<Vec<GatewayView>>)>,
    /// Bumped on every change readers could see, so they can keep what they built from a
    /// snapshot (the HTTP layer keeps the serialized list) until it moves.
    version: Arc<AtomicU64>,
    /// Bumped by the registry's own changes (records, status, connection, breaker, roles), not
    /// by the live numbers a pong refreshes (which move `version` hundreds of times a second at
    /// fleet scale): what readers of those alone compare ([`GatewaysChangedSince`]).
    views_changes: u64,
    /// Sessions of the connected gateways, newest first; rebuilt on the first read after a
    /// change, so a listing costs `limit` entries, not a merge of every gateway's cache.
    merged_sessions: Option<Arc<Vec<crate::protocol::sessions::SessionEntry>>>,
    /// The session list's change counter: readers may keep what they built from a page while
    /// it holds (see [`ListSessions`](crate::messages::ListSessions)).
    sessions_version: Arc<AtomicU64>,
    link_ctx: Option<LinkContext>,
    links: HashMap<GatewayId, Link>,
    arbiters: Vec<Arbiter>,
    next_arbiter: usize,
    epoch: u64,
    persisted: HashMap<GatewayId, LinkRecord>,
    events: EventBus,
    failback: bool,
    acting: Option<GatewayId>,
    sessions: HashMap<GatewayId, Arc<Vec<crate::protocol::sessions::SessionEntry>>>,
    /// `features.methods` of each connected gateway.
    methods: HashMap<GatewayId, Arc<Vec<String>>>,
    /// Which gateways this instance links (all, or its leases in a cluster).
    ownership: Ownership,
    /// In a cluster: links told to stop whose actors may still be running (their sockets open);
    /// a lease is released only once its link is gone (`StillOpen`).
    closing: HashMap<GatewayId, Addr<GatewayActor>>,
    /// Writes of gateway settings made here so far (create, update, suspension, delete).
    writes: u64,
    /// The designated primary (`None`: to be looked up; see [`RegistryActor::designated`]).
    designated: Option<Option<GatewayId>>,
}

type WriteResult<T> = AtomicResponse<RegistryActor, Result<T, RegistryError>>;

impl RegistryActor {
    /// Loads the registry (blocking: call from a blocking thread before starting the actor),
    /// repairing a missing primary if the database was edited by hand. With `link_ctx`, one
    /// gateway actor per gateway is started when the registry starts.
    pub fn load(
        store: Arc<dyn GatewayStore>,
        link_ctx: Option<LinkContext>,
    ) -> Result<Self, StoreError> {
        let mut records = store.load_gateways()?;
        if let Some(id) = primary::repair_candidate(&records) {
            warn!(
                gateway_id = id,
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
        let mut actor = RegistryActor {
            writer: StoreWriter::spawn(store.clone())?,
            store,
            gateways: HashMap::new(),
            snapshot: None,
            views_changes: 0,
            version: Arc::new(AtomicU64::new(1)),
            merged_sessions: None,
            sessions_version: Arc::new(AtomicU64::new(0)),
            link_ctx,
            links: HashMap::new(),
            arbiters: Vec::new(),
            next_arbiter: 0,
            epoch: 0,
            persisted: HashMap::new(),
            events: EventBus::new(),
            failback: true,
            acting: None,
            sessions: HashMap::new(),
            methods: HashMap::new(),
            ownership: Ownership::All,
            closing: HashMap::new(),
            writes: 0,
            designated: None,
        };
        for record in records {
            actor.put(record);
        }
        Ok(actor)
    }

    /// Events go to `events`; `failback` = `election.failback`.
    pub fn with_events(mut self, events: EventBus, failback: bool) -> Self {
        self.events = events;
        self.failback = failback;
        self
    }

    pub fn len(&self) -> usize {
        self.gateways.len()
    }

    pub fn is_empty(&self) -> bool {
        self.gateways.is_empty()
    }

    fn put(&mut self, record: GatewayRecord) {
        self.records_changed();
        let id = record.id;
        match self.gateways.get_mut(&id) {
            Some(existing) => existing.record = record,
            None => {
                self.gateways.insert(
                    id,
                    GatewayView {
                        acting_primary: match self.ownership {
                            Ownership::All => record.is_primary && record.held_back().is_none(),
                            Ownership::Leased { .. } => Some(id) == self.acting,
                        },
                        record,
                        connection: ConnectionInfo::default(),
                        breaker: BreakerInfo::default(),
                    },
                );
            }
        }
        self.views_changed();
    }

    /// Readers' copies of the gateway list are stale.
    fn views_changed(&mut self) {
        self.snapshot = None;
        self.views_changes += 1;
        self.version.fetch_add(1, Ordering::Release);
    }

    /// The merged session list is stale (a cache changed, or a gateway connected or left).
    fn sessions_changed(&mut self) {
        self.merged_sessions = None;
        self.sessions_version.fetch_add(1, Ordering::Release);
    }

    /// A handle on the change counter of the session list.
    pub fn sessions_version(&self) -> Arc<AtomicU64> {
        self.sessions_version.clone()
    }

    /// A handle on the change counter of the gateway list (see [`ListGateways`]).
    pub fn version(&self) -> Arc<AtomicU64> {
        self.version.clone()
    }

    /// Takes a record just written to the store into memory; if it is now the primary, the
    /// previous one is not (the store did the same in its transaction).
    /// A setting written (a cordon, a suspension): the stored record, with the live facts of a
    /// link here kept — the row's are as the batched writer last saved them, and the link
    /// reports only changes, so a stale status taken from the row would stay.
    fn apply_setting(&mut self, mut record: GatewayRecord) -> GatewayView {
        if self.links.contains_key(&record.id)
            && let Some(current) = self.gateways.get(&record.id)
        {
            record.keep_live_facts(&current.record);
        }
        self.apply_stored(record)
    }

    fn apply_stored(&mut self, record: GatewayRecord) -> GatewayView {
        let (id, is_primary) = (record.id, record.is_primary);
        self.put(record);
        if is_primary {
            for (other_id, view) in self.gateways.iter_mut() {
                view.record.is_primary = *other_id == id;
            }
            self.records_changed();
        }
        self.refresh_roles();
        self.gateways[&id].clone()
    }

    /// Re-runs the election; a change is an event, a metric and an audit row. In a cluster only
    /// the coordinator elects; the others follow its recorded choice.
    fn refresh_roles(&mut self) {
        if self.follow_coordinator() {
            return;
        }
        let current = self
            .acting
            .and_then(|id| self.gateways.get(&id))
            .map(|v| self.candidate(v));
        let designated = self
            .designated()
            .and_then(|id| self.gateways.get(&id))
            .map(|v| self.candidate(v));
        let flags_right = self
            .acting
            .is_none_or(|id| self.gateways.get(&id).is_some_and(|v| v.acting_primary));
        if flags_right && election::settled(current.as_ref(), designated.as_ref(), self.failback) {
            return;
        }
        let candidates: Vec<Candidate> =
            self.gateways.values().map(|v| self.candidate(v)).collect();
        let (acting, reason) = election::elect(&candidates, self.acting, self.failback);
        for view in self.gateways.values_mut() {
            view.acting_primary = Some(view.record.id) == acting;
        }
        self.views_changed();
        if acting != self.acting {
            let previous = self.acting;
            self.acting = acting;
            let designated = candidates.iter().find(|c| c.designated).map(|c| c.id);
            let details = serde_json::json!({
                "acting_primary": acting, "previous": previous, "designated": designated, "reason": reason.as_str(),
            });
            // Ids as numbers, `none` for no gateway: not Rust's `Some(4)`.
            let id =
                |g: Option<GatewayId>| g.map_or_else(|| "none".to_owned(), |id| id.to_string());
            info!(acting = %id(acting), previous = %id(previous), reason = reason.as_str(), "acting primary changed");
            self.events
                .publish(EventKind::GatewayPrimary, acting, details.clone());
            if let Some(ctx) = &self.link_ctx {
                ctx.metrics.primary_changes.inc();
            }
            self.writer
                .send(WriteOp::Audit("gateway.primary", acting, details));
        }
    }

    /// The designated primary's id, found once per change of the stored records rather than
    /// by a pass over the fleet on every link report.
    fn designated(&mut self) -> Option<GatewayId> {
        if let Some(known) = self.designated {
            return known;
        }
        let found = self
            .gateways
            .values()
            .find(|v| v.record.is_primary)
            .map(|v| v.record.id);
        self.designated = Some(found);
        found
    }

    /// A stored record was put, replaced or removed: who is designated is to be looked up again.
    fn records_changed(&mut self) {
        self.designated = None;
    }

    fn candidate(&self, v: &GatewayView) -> Candidate {
        // A gateway another instance links is judged by what its owner wrote.
        let reachable = if self.ownership.elsewhere(v.record.id) {
            cluster::eligible_elsewhere(v.record.status)
        } else {
            v.connection.state == Some(LinkPhase::Connected)
                && v.breaker.state == crate::model::BreakerState::Closed
        };
        Candidate {
            id: v.record.id,
            designated: v.record.is_primary,
            eligible: reachable && v.record.held_back().is_none(),
            held_back: v.record.held_back().is_some(),
            status: v.record.status,
            latency_ms: self
                .links
                .get(&v.record.id)
                .and_then(|l| l.live.latency())
                .or(v.record.latency),
            sessions: v.record.sessions_count,
        }
    }

    fn snapshot(&mut self) -> GatewaySnapshot {
        let version = self.version.load(Ordering::Acquire);
        if let Some((v, views)) = &self.snapshot
            && *v == version
        {
            return GatewaySnapshot {
                version,
                views: views.clone(),
            };
        }
        let mut list: Vec<GatewayView> = self
            .gateways
            .keys()
            .filter_map(|id| self.view(*id))
            .collect();
        list.sort_by(|a, b| {
            b.record
                .is_primary
                .cmp(&a.record.is_primary)
                .then_with(|| a.record.name.cmp(&b.record.name))
                .then_with(|| a.record.id.cmp(&b.record.id))
        });
        let list = Arc::new(list);
        self.snapshot = Some((version, list.clone()));
        GatewaySnapshot {
            version,
            views: list,
        }
    }

    /// A gateway as readers see it: the registry's record with the link's live numbers.
    fn view(&self, id: GatewayId) -> Option<GatewayView> {
        let mut view = self.gateways.get(&id)?.clone();
        if let Some(link) = self.links.get(&id) {
            let r = &mut view.record;
            r.latency = link.live.latency().or(r.latency);
            r.last_seen = link.live.last_seen().max(r.last_seen);
            view.connection.last_frame = crate::model::FrameClock::of(&link.live);
        }
        Some(view)
    }

    /// Writes the live numbers that moved on since they were last stored, by the same rule
    /// as link reports ([`LinkRecord::worth_saving_over`]).
    fn persist_live(&mut self) {
        for (id, link) in &self.links {
            let (Some(view), Some(old)) = (self.gateways.get(id), self.persisted.get_mut(id))
            else {
                continue;
            };
            let record = LinkRecord {
                last_seen: link.live.last_seen().max(old.last_seen),
                latency: link.live.latency().or(view.record.latency),
                ..old.clone()
            };
            if record.worth_saving_over(Some(old)) {
                *old = record.clone();
                self.writer.send(WriteOp::Link(*id, record));
            }
        }
    }

    fn name_taken(&self, name: &str, except: Option<GatewayId>) -> bool {
        self.gateways
            .values()
            .any(|v| v.record.name == name && Some(v.record.id) != except)
    }

    /// The other gateway that already has `host:port` (host compared without case), refused as
    /// [`RegistryError::DuplicateAddress`].
    fn address_taken(
        &self,
        host: &str,
        port: u16,
        except: Option<GatewayId>,
    ) -> Result<(), RegistryError> {
        let other = self.gateways.values().find(|v| {
            v.record.port == port
                && v.record.host.eq_ignore_ascii_case(host)
                && Some(v.record.id) != except
        });
        match other {
            Some(v) => Err(RegistryError::DuplicateAddress {
                id: v.record.id,
                name: v.record.name.clone(),
                host: v.record.host.clone(),
                port,
            }),
            None => Ok(()),
        }
    }

    // ---- links ------------------------------------------------------------------------------

    fn start_link(&mut self, id: GatewayId, ctx: &mut Context<Self>) {
        self.start_link_with(id, false, ctx);
    }

    fn start_link_with(
        &mut self,
        id: GatewayId,
        verify_shared_token: bool,
        ctx: &mut Context<Self>,
    ) {
        let (Some(link_ctx), Some(view)) = (self.link_ctx.clone(), self.gateways.get(&id)) else {
            return;
        };
        if !self.ownership.may_link(id) {
            return;
        }
        link_ctx.metrics.track(id);
        if self.arbiters.is_empty() {
            let n = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2);
            self.arbiters = (0..n).map(|_| crate::link::runtime::arbiter()).collect();
        }
        let r = &view.record;
        let target = LinkTarget {
            id,
            name: r.name.clone(),
            host: r.host.clone(),
            port: r.port,
            tls: r.tls,
            allow_insecure_tls: r.allow_insecure_tls,
            token: r.token.clone(),
            device_token: r.device_token.clone(),
            verify_shared_token,
            approvals: r.approvals,
            lease: self.ownership.guard(id),
        };
        self.epoch += 1;
        let epoch = self.epoch;
        let up = Upward::to(&ctx.address());
        let arbiter = &self.arbiters[self.next_arbiter % self.arbiters.len()];
        self.next_arbiter += 1;
        let live = Arc::new(LiveStats::new(self.version.clone()));
        let link_live = live.clone();
        let addr = GatewayActor::start_in_arbiter(&arbiter.handle(), move |_| {
            GatewayActor::new(target, epoch, link_live, link_ctx, up)
        });
        let handle = GatewayLink::of(&addr);
        self.links.insert(
            id,
            Link {
                addr,
                handle,
                epoch,
                live,
            },
        );
    }

    fn stop_link(&mut self, id: GatewayId) {
        if let Some(link) = self.links.remove(&id) {
            link.addr.do_send(StopLink);
            if matches!(self.ownership, Ownership::Leased { .. }) {
                self.closing.insert(id, link.addr);
            }
        }
        self.persisted.remove(&id);
        self.sessions.remove(&id);
        self.sessions_changed();
        if let Some(view) = self.gateways.get_mut(&id) {
            view.connection = ConnectionInfo::default();
            view.breaker = BreakerInfo::default();
        }
        self.views_changed();
    }

    fn current_epoch(&self, id: GatewayId) -> Option<u64> {
        self.links.get(&id).map(|l| l.epoch)
    }

    // ---- writes -----------------------------------------------------------------------------

    /// Runs a store call on a blocking thread while the actor holds its mailbox (atomic), then
    /// applies the result to memory with `apply`.
    fn write<T, R, F, A>(call: F, apply: A) -> WriteResult<T>
    where
        T: 'static,
        R: Send + 'static,
        F: FnOnce() -> Result<R, StoreError> + Send + 'static,
        A: FnOnce(R, &mut RegistryActor, &mut Context<RegistryActor>) -> Result<T, RegistryError>
            + 'static,
    {
        let fut = async move {
            match tokio::task::spawn_blocking(call).await {
                Ok(result) => result.map_err(RegistryError::from),
                Err(join) => Err(RegistryError::Interrupted(join)),
            }
        };
        AtomicResponse::new(Box::pin(
            actix::fut::wrap_future::<_, RegistryActor>(fut).map(
                |result, act: &mut RegistryActor, ctx| {
                    // Counted whatever the outcome: the feed's rows read before it may be older
                    // than memory now (`ApplyStoreChanges`).
                    act.writes += 1;
                    result.and_then(|value| apply(value, act, ctx))
                },
            ),
        ))
    }

    fn refuse<T: 'static>(err: RegistryError) -> WriteResult<T> {
        AtomicResponse::new(Box::pin(ready(Err(err))))
    }
}

impl Actor for RegistryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // The designated primary acts until the links report (that is no change to announce),
        // unless an operator holds it back: then nobody does until the election or the
        // coordinator names a stand-in.
        self.acting = self
            .gateways
            .values()
            .find(|v| v.record.is_primary && v.record.held_back().is_none())
            .map(|v| v.record.id);
        let ids: Vec<GatewayId> = self.gateways.keys().copied().collect();
        for id in &ids {
            self.start_link(*id, ctx);
        }
        ctx.run_interval(PRUNE_INTERVAL, |act, _| act.prune());
        if matches!(self.ownership, Ownership::Leased { .. }) {
            ctx.run_interval(cluster::FENCE_CHECK, |act, _| act.check_fence());
        }
        ctx.run_interval(
            Duration::from_secs(LinkRecord::LAST_SEEN_EVERY as u64),
            |act, _| act.persist_live(),
        );
        self.prune();
        info!(
            gateways = ids.len(),
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
    type Result = Option<ChangedGateways>;
    fn handle(&mut self, msg: GatewaysChangedSince, _ctx: &mut Self::Context) -> Self::Result {
        (msg.0 != Some(self.views_changes)).then(|| ChangedGateways {
            changes: self.views_changes,
            snapshot: self.snapshot(),
        })
    }
}

impl Handler<GetGateway> for RegistryActor {
    type Result = Option<GatewayView>;
    fn handle(&mut self, msg: GetGateway, _ctx: &mut Self::Context) -> Self::Result {
        self.view(msg.0)
    }
}

impl Handler<Ping> for RegistryActor {
    type Result = ();
    fn handle(&mut self, _msg: Ping, _ctx: &mut Self::Context) {}
}
