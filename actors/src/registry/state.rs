//! The registry's decisions, pure: what it knows of every gateway, and `apply(input)` that
//! changes it and says what is to be done ([`RegistryAction`]: publish, persist, start or stop
//! a link, announce a new acting primary). The actor (`registry/mod.rs`) carries actions out:
//! it owns the sockets' actors, the store writer and the event bus; this owns no thread, no
//! socket, no clock — time comes in with the input — so every rule below is a unit test
//! (`state_tests/`), as the link's machine is (relay's service / state split).
//!
//! The rules, in the order a link report meets them: a report from a link since restarted
//! carries an old epoch and is dropped (fencing); a change of connection or status is an
//! event; a gateway back as another process is an event; a record worth saving is persisted
//! (`LinkRecord::worth_saving_over`: a status change at once, last-seen every 60 s); and the
//! election runs only when the gateway's eligibility flipped (docs/design.md, *Election and
//! routing*).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use super::actions::{Input, RegistryAction, Write};
use super::beats::Beats;
use super::capacity::{Capacity, unplaced_error};
use super::index::Index;
use super::ownership::Ownership;
use super::peer_table::{Peer, PeerTable, PeersHeld};
use super::roles::{self, Roles};
use super::views::Views;
use crate::events::EventKind;
use crate::link::LinkTarget;
use crate::link::messages::{LinkUpdate, LiveStats};
use crate::model::{BreakerInfo, ConnectionInfo, GatewayId, GatewayRecord, LiveReadings, Vouched};

mod last_seen;
mod placing;
mod readers;
mod records;
use crate::store::LinkRecord;

/// A link started here: the epoch its reports must carry, and the numbers it shares.
struct Linked {
    epoch: u64,
    live: Arc<LiveStats>,
}

pub struct RegistryState {
    /// The gateways this instance may link, with their records (alone: every one).
    gateways: Views,
    /// In a cluster, every other gateway: what routing, the election and the counts need of
    /// it, no record (`registry/peer_table.rs`).
    peers: PeerTable,
    linked: HashMap<GatewayId, Linked>,
    epoch: u64,
    /// What was last sent to the store per linked gateway.
    persisted: HashMap<GatewayId, LinkRecord>,
    /// `features.methods` of each connected gateway.
    methods: HashMap<GatewayId, Arc<Vec<String>>>,
    roles: Roles,
    ownership: Ownership,
    /// Names and addresses, for the uniqueness checks of writes.
    index: Index,
    /// Whether links are started at all (not in tools that only read and write the registry).
    links: bool,
    /// Bumped by every change of the views (not by the live numbers).
    changes: u64,
    /// The gateways whose view, link or owner changed since the actor last asked (`touched_all`:
    /// every one).
    touched: HashSet<GatewayId>,
    touched_all: bool,
    /// Alone on its database: the most gateways it links (its open-file limit, or
    /// `cluster.max_gateways`); in a cluster, placement keeps each instance within its own.
    capacity: Capacity,
    /// In a cluster: each instance's heartbeat, which stands for the last-seen of the
    /// gateways it links.
    beats: Beats,
    /// In a cluster: the records being read for gateways about to be linked here.
    records: records::RecordReads,
}

impl RegistryState {
    pub fn new(records: Vec<GatewayRecord>, links: bool) -> Self {
        let mut state = RegistryState {
            gateways: HashMap::with_capacity(records.len()),
            peers: PeerTable::default(),
            linked: HashMap::new(),
            epoch: 0,
            persisted: HashMap::new(),
            methods: HashMap::new(),
            roles: Roles::new(true),
            ownership: Ownership::All,
            index: Index::default(),
            links,
            changes: 0,
            touched: HashSet::new(),
            touched_all: true,
            capacity: Capacity::default(),
            beats: Beats::default(),
            records: records::RecordReads::default(),
        };
        for record in records {
            state.put(record);
        }
        state
    }

    /// A cluster member (`instance`) loaded from `records`: every gateway a peer from the
    /// start (none is linked here until the runner says), no view, index entry or call target
    /// built for one only to be dropped — at 100,000 that was ~110 MB made and freed at every
    /// start, and the heap it left behind stayed resident (`scripts/bench.sh share`).
    pub fn member(records: Vec<GatewayRecord>, links: bool, now: Instant, instance: &str) -> Self {
        let mut state = RegistryState::new(Vec::new(), links);
        state.leased(now, instance);
        let peers: Vec<Peer> = records.iter().map(|r| Peer::of(r, false)).collect();
        drop(records);
        state.peers.put_all(peers);
        state
    }

    /// Alone: link at most `capacity` gateways (set before the registry starts).
    pub fn set_capacity(&mut self, capacity: Option<usize>) {
        self.capacity.set(capacity);
    }

    pub fn set_failback(&mut self, failback: bool) {
        self.roles.set_failback(failback);
    }

    /// A cluster member (`instance`: its id): nothing is linked, and nobody acts, until the
    /// runner says.
    pub fn leased(&mut self, now: Instant, instance: &str) {
        self.ownership = Ownership::leased(now, instance);
        // None is linked here yet: every gateway is a peer until a lease makes it this
        // instance's, and its record is read again then (`state/records.rs`).
        let views = std::mem::take(&mut self.gateways);
        self.index = Index::default();
        self.peers
            .put_all(views.into_values().map(|v| Peer::of(&v.record, false)));
        self.touched_all = true;
        self.views_changed();
    }

    pub fn apply(&mut self, input: Input) -> Vec<RegistryAction> {
        let mut out = self.decide(input);
        self.ask_for_records(&mut out);
        out
    }

    fn decide(&mut self, input: Input) -> Vec<RegistryAction> {
        let mut out = Vec::new();
        match input {
            Input::Started => {
                self.roles.start(&self.gateways, &self.peers);
                let mut ids: Vec<GatewayId> = self.gateways.keys().copied().collect();
                ids.sort_unstable();
                for id in ids {
                    self.start_link(id, false, &mut out);
                }
            }
            Input::Link(update) => self.link_update(update, &mut out),
            Input::DeviceToken(m) => {
                if self.epoch_of(m.id) == Some(m.epoch)
                    && let Some(view) = self.gateways.get_mut(&m.id).map(Arc::make_mut)
                {
                    view.record.device_token = m.token.clone();
                    out.push(RegistryAction::PersistDeviceToken(m.id, m.token));
                    self.touch(m.id);
                }
            }
            Input::Written(record, write) => self.written(record, write, &mut out),
            Input::Deleted(id) => {
                out.push(publish_change(id, serde_json::json!({"action": "deleted"})));
                self.remove(id, &mut out);
                self.refresh_roles(&mut out);
            }
            Input::Leases {
                held,
                valid_until,
                coordinator,
                acting,
                now,
                beats,
            } => {
                self.beats.round(&beats);
                let moved = self
                    .ownership
                    .renew(&held, valid_until, coordinator, acting, now);
                moved.log(held.len());
                for (id, _) in &moved.gone {
                    self.stop_link(*id, &mut out);
                    self.peer_if_elsewhere(*id);
                }
                for id in &moved.new {
                    if self.contains(*id) {
                        self.start_link(*id, false, &mut out);
                    }
                }
                if moved.roles_moved || !moved.gone.is_empty() || !moved.new.is_empty() {
                    self.refresh_roles(&mut out);
                }
            }
            Input::FenceCheck(now) => {
                let lapsed = self.ownership.lapse(now);
                if !lapsed.is_empty() {
                    tracing::warn!(
                        gateways = lapsed.len(),
                        "lease ended (not renewed in time): stopping every link"
                    );
                    for id in lapsed {
                        self.stop_link(id, &mut out);
                        self.peer_if_elsewhere(id);
                    }
                    self.refresh_roles(&mut out);
                }
            }
            Input::StoreChanges {
                changed,
                deleted,
                owners,
            } => {
                if changed.is_empty() && deleted.is_empty() && owners.is_empty() {
                    return out;
                }
                for id in deleted {
                    if self.contains(id) {
                        self.remove(id, &mut out);
                    }
                }
                for record in changed {
                    self.merge_stored(record, &mut out);
                }
                for owner in owners {
                    self.owner_read(owner);
                }
                self.views_changed();
                self.refresh_roles(&mut out);
            }
            Input::PersistLive => self.persist_live(&mut out),
            Input::RecordsRead { asked, read } => self.records_read(asked, read, &mut out),
        }
        out
    }

    // ---- link reports -----------------------------------------------------------------------

    fn link_update(&mut self, msg: LinkUpdate, out: &mut Vec<RegistryAction>) {
        if self.epoch_of(msg.id) != Some(msg.epoch) {
            return; // from a link that has since been restarted or stopped
        }
        let Some(was_eligible) = self.eligible(msg.id) else {
            return;
        };
        let Some(view) = self.gateways.get_mut(&msg.id).map(Arc::make_mut) else {
            return;
        };
        let (id, s) = (msg.id, msg.state);
        let connection_changed = view.connection.state != s.connection.state;
        if connection_changed {
            out.push(RegistryAction::Publish {
                kind: EventKind::ConnectionChanged,
                gateway: Some(id),
                payload: serde_json::json!({"state": s.connection.state, "last_error": s.connection.last_error, "pairing_request_id": s.connection.pairing_request_id}),
            });
        }
        if view.record.status != s.status {
            out.push(RegistryAction::Publish {
                kind: EventKind::GatewayStatus,
                gateway: Some(id),
                payload: serde_json::json!({"status": s.status, "previous": view.record.status}),
            });
        }
        // Back as another process or release: worth knowing (a restart nobody asked for, an
        // upgrade done by hand).
        if let Some(change) = crate::process::change(&view.connection, &s.connection) {
            tracing::info!(
                gateway_id = id.get(),
                ?change,
                "gateway came back as another process"
            );
            out.push(RegistryAction::Publish {
                kind: EventKind::GatewayChanged,
                gateway: Some(id),
                payload: change.payload(),
            });
        }
        view.connection = Arc::new(s.connection);
        view.breaker = s.breaker;
        self.methods.insert(id, s.methods);
        let r = &mut view.record;
        r.status = s.status;
        r.last_seen = s.last_seen.or(r.last_seen);
        r.latency = s.latency.or(r.latency);
        if let Some(n) = s.sessions_count {
            r.sessions_count = n;
        }
        if let Some(n) = s.agents_count {
            r.agents_count = n;
        }
        let record = LinkRecord {
            status: r.status,
            last_seen: r.last_seen,
            latency: r.latency,
            sessions_count: r.sessions_count,
            agents_count: r.agents_count,
        };
        self.touch(id);
        if connection_changed {
            out.push(RegistryAction::SessionsStale);
        }
        if record.worth_saving_over(self.persisted.get(&id), self.last_seen_by()) {
            self.persisted.insert(id, record.clone());
            out.push(RegistryAction::Persist(id, record));
        }
        // Who acts changes only when someone can act who could not, or the other way round
        // (`election::elect` ranks only at the moment it chooses): connecting and handshaking
        // reports of a starting fleet run no election.
        if self.eligible(id) != Some(was_eligible) {
            self.refresh_roles(out);
        }
    }

    // ---- writes made here -------------------------------------------------------------------

    fn written(&mut self, mut record: GatewayRecord, write: Write, out: &mut Vec<RegistryAction>) {
        let id = record.id;
        if let Some(payload) = write.announcement(&record) {
            out.push(publish_change(id, payload));
        }
        // A setting written (a cordon, a suspension): the link's facts in the row are as the
        // batched writer last saved them, and the link reports only changes, so a stale status
        // taken from the row would stay: the live ones are kept.
        let keep_live = write.keeps_live_facts();
        if keep_live
            && self.linked.contains_key(&id)
            && let Some(current) = self.gateways.get(&id)
        {
            record.keep_live_facts(&current.record);
        }
        let is_primary = record.is_primary;
        self.put(record);
        if is_primary {
            // The store unset the previous one in the same transaction.
            for (other, view) in self.gateways.iter_mut() {
                if view.record.is_primary != (*other == id) {
                    let view = Arc::make_mut(view);
                    self.index.remove(&view.record);
                    view.record.is_primary = *other == id;
                    self.index.add(&view.record);
                }
            }
            let demoted: Vec<GatewayId> = (self.peers.iter())
                .filter(|p| p.designated && p.id() != id)
                .map(Peer::id)
                .collect();
            for other in demoted {
                if let Some(p) = self.peers.get_mut(other) {
                    p.designated = false;
                }
                self.touch(other);
            }
        }
        self.refresh_roles(out);
        match write {
            Write::Created => self.start_link(id, false, out),
            Write::Updated {
                relink: true,
                verify_shared_token,
                ..
            } if self.linked.contains_key(&id) => {
                self.stop_link(id, out);
                self.start_link(id, verify_shared_token, out);
            }
            _ => {}
        }
    }

    /// A gateway row from the database. Ours: its settings (a new address or credential
    /// restarts the link), our live facts kept. Another instance's: the row as its owner wrote
    /// it.
    fn merge_stored(&mut self, mut record: GatewayRecord, out: &mut Vec<RegistryAction>) {
        self.roles.records_changed();
        let id = record.id;
        let Some(current) = self.gateways.get(&id) else {
            // New here, or a peer (one this instance may link now waited for its record).
            self.put(record);
            if self.ownership.may_link(id) {
                self.start_link(id, false, out);
            }
            return;
        };
        if !self.linked.contains_key(&id) {
            self.put(record);
            return;
        }
        let relink = current.record.link_settings_differ(&record);
        record.keep_live_facts(&current.record);
        self.put(record);
        if relink {
            self.stop_link(id, out);
            self.start_link(id, false, out);
        }
    }

    fn remove(&mut self, id: GatewayId, out: &mut Vec<RegistryAction>) {
        self.stop_link(id, out);
        out.push(RegistryAction::Forget(id));
        if let Some(view) = self.gateways.remove(&id) {
            self.index.remove(&view.record);
        }
        self.peers.remove(id);
        self.methods.remove(&id);
        self.roles.records_changed();
        self.touch(id);
        self.capacity.leave(id);
        self.place_waiting(out);
    }

    // ---- links ------------------------------------------------------------------------------

    fn start_link(
        &mut self,
        id: GatewayId,
        verify_shared_token: bool,
        out: &mut Vec<RegistryAction>,
    ) {
        if !self.links || !self.ownership.may_link(id) || self.record_missing(id) {
            return;
        }
        if let Some(capacity) = self.full(id) {
            self.leave_unplaced(id, capacity);
            return;
        }
        self.capacity.leave(id);
        let Some(view) = self.gateways.get(&id) else {
            return;
        };
        let mut target =
            LinkTarget::of(&view.record, verify_shared_token, self.ownership.guard(id));
        target.dialer = self.ownership.dialer(id);
        self.epoch += 1;
        let live = Arc::new(LiveStats::default());
        if let Some(view) = self.gateways.get_mut(&id).map(Arc::make_mut) {
            // Linked here now: its last owner's heartbeat, as last read, is kept as its
            // last-seen until the link's own (the link's reports save from it).
            view.record.last_seen = view.last_seen();
            view.vouched = Vouched::default();
            view.live = LiveReadings::of(&live);
        }
        self.linked.insert(
            id,
            Linked {
                epoch: self.epoch,
                live: live.clone(),
            },
        );
        out.push(RegistryAction::StartLink {
            target: Box::new(target),
            epoch: self.epoch,
            live,
        });
        self.touch(id);
    }

    /// Alone and linking as many as it can hold, gateway `id` not among them: the capacity.
    fn full(&self, id: GatewayId) -> Option<usize> {
        if self.ownership.is_leased() {
            return None;
        }
        self.capacity
            .full(self.linked.len(), self.linked.contains_key(&id))
    }

    /// Gateway `id` waits for room: not linked, and saying why where its link's errors show.
    fn leave_unplaced(&mut self, id: GatewayId, capacity: usize) {
        self.capacity.wait(id);
        if let Some(view) = self.gateways.get_mut(&id).map(Arc::make_mut) {
            view.connection = Arc::new(ConnectionInfo {
                last_error: Some(unplaced_error(capacity)),
                ..ConnectionInfo::default()
            });
            view.record.status = crate::model::GatewayStatus::Unknown;
        }
        self.touch(id);
    }

    /// Room made (a gateway deleted): the waiting ones with the lowest ids are linked.
    fn place_waiting(&mut self, out: &mut Vec<RegistryAction>) {
        while let Some(id) = self.capacity.first_waiting() {
            if self.full(id).is_some() {
                return;
            }
            self.capacity.leave(id);
            self.start_link(id, false, out);
        }
    }

    fn stop_link(&mut self, id: GatewayId, out: &mut Vec<RegistryAction>) {
        if self.linked.remove(&id).is_some() {
            out.push(RegistryAction::StopLink(id));
        }
        self.persisted.remove(&id);
        out.push(RegistryAction::SessionsStale);
        if let Some(view) = self.gateways.get_mut(&id).map(Arc::make_mut) {
            // In memory only: the link's last-seen, until the next owner's heartbeat reads.
            view.record.last_seen = view.last_seen();
            view.connection = ConnectionInfo::none();
            view.breaker = BreakerInfo::default();
            view.live = LiveReadings::default();
        }
        self.touch(id);
    }

    // ---- roles ------------------------------------------------------------------------------

    fn refresh_roles(&mut self, out: &mut Vec<RegistryAction>) {
        let linked = &self.linked;
        let latency = |id: GatewayId| linked.get(&id).and_then(|l| l.live.latency());
        let refreshed = self.roles.refresh(
            &mut self.gateways,
            &mut self.peers,
            &self.ownership,
            &latency,
        );
        for id in refreshed.flagged {
            self.touch(id);
        }
        if let Some(change) = refreshed.change {
            out.push(RegistryAction::PrimaryChanged(change));
        }
    }

    fn eligible(&self, id: GatewayId) -> Option<bool> {
        let view = self.gateways.get(&id)?;
        let latency = |_: GatewayId| None;
        Some(roles::candidate(view, &self.ownership, &latency).eligible)
    }

    /// The peers' shards as they are now, for the call targets to publish.
    pub(super) fn peer_shards(&self) -> &[super::peer_table::PeerShard] {
        self.peers.shards()
    }

    /// The peers as they are now, for a reader to hold (`/metrics`' counts, the alert watch).
    pub fn peers_held(&self) -> PeersHeld {
        self.peers.held()
    }

    fn views_changed(&mut self) {
        self.changes += 1;
    }

    /// The gateways changed since the last call (`None`: every one, as after loading), for the
    /// shared read view to rebuild theirs only.
    pub fn take_touched(&mut self) -> Option<Vec<GatewayId>> {
        let touched = std::mem::take(&mut self.touched);
        if std::mem::take(&mut self.touched_all) {
            return None;
        }
        let mut ids: Vec<GatewayId> = touched.into_iter().collect();
        ids.sort_unstable();
        Some(ids)
    }

    /// Gateway `id`'s view (or its link, or its owner) changed: readers' copies are stale.
    fn touch(&mut self, id: GatewayId) {
        // Every one is to be rebuilt anyway (after loading): no set of 100,000 ids to build.
        if !self.touched_all {
            self.touched.insert(id);
        }
        self.views_changed();
    }
}

fn publish_change(id: GatewayId, payload: serde_json::Value) -> RegistryAction {
    RegistryAction::Publish {
        kind: EventKind::GatewayChanged,
        gateway: Some(id),
        payload,
    }
}
