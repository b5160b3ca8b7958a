//! The fleet's sessions (each connected gateway's cache, merged newest first), where one session
//! lives, and every gateway as a target for a call (its link, health and methods).

use crate::events::EventKind;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use actix::prelude::*;

use super::RegistryActor;
use super::messages::{
    FindSession, GatewayTarget, ListSessions, RunsGoing, SessionOwner, SessionPage,
};
use crate::link::messages::{RunEnded, SessionsSnapshot};
use crate::model::{GatewayId, LinkPhase};
use crate::protocol::sessions::SessionStatus;

impl Handler<SessionsSnapshot> for RegistryActor {
    type Result = ();

    fn handle(&mut self, msg: SessionsSnapshot, _ctx: &mut Self::Context) {
        if self.state.epoch_of(msg.id) != Some(msg.epoch) {
            return;
        }
        let changed = self
            .sessions
            .get(&msg.id)
            .is_none_or(|old| **old != *msg.sessions);
        if changed {
            self.events.publish(
                EventKind::SessionChanged,
                Some(msg.id),
                serde_json::json!({"sessions": msg.sessions.len()}),
            );
        }
        self.sessions.insert(msg.id, msg.sessions);
        if changed {
            self.sessions_of_changed(msg.id);
        }
    }
}

impl Handler<RunsGoing> for RegistryActor {
    type Result = ();

    fn handle(&mut self, msg: RunsGoing, _ctx: &mut Self::Context) {
        if !self.state.contains(msg.id) {
            return;
        }
        let list = self.sessions.entry(msg.id).or_default();
        let missing: Vec<String> = msg
            .keys
            .into_iter()
            .filter(|k| !list.iter().any(|s| &s.key == k))
            .take(crate::protocol::sessions::HELD_RUNS_MAX)
            .collect();
        if missing.is_empty() {
            return;
        }
        let now = crate::unix_now_ms();
        let entries = Arc::make_mut(list);
        for key in missing {
            entries.push(crate::protocol::sessions::SessionEntry::running(
                key, msg.id, now,
            ));
        }
        self.sessions_of_changed(msg.id);
    }
}

impl RegistryActor {
    /// A gateway said a run of a cached session ended: the cache shows it not running until
    /// the gateway lists its sessions again (copied on write; readers keep the old list).
    pub(super) fn run_ended(&mut self, msg: RunEnded) {
        if self.state.epoch_of(msg.id) != Some(msg.epoch) {
            return;
        }
        let Some(list) = self.sessions.get_mut(&msg.id) else {
            return;
        };
        let Some(at) = list.iter().position(|s| s.key == msg.key && s.running) else {
            return;
        };
        Arc::make_mut(list)[at].running = false;
        self.sessions_of_changed(msg.id);
    }

    /// Gateway `id`'s cached sessions changed: the merged list is stale, and its active and
    /// running counts, part of its target, are published again.
    fn sessions_of_changed(&mut self, id: GatewayId) {
        self.sessions_changed();
        if let Some(target) = self.target(id) {
            self.targets.update([target], [], self.state.peer_shards());
        }
    }

    fn connected(&self, id: GatewayId) -> bool {
        self.state
            .raw_view(id)
            .is_some_and(|v| v.connection.state == Some(LinkPhase::Connected))
    }
}

impl RegistryActor {
    fn merged_sessions(&mut self) -> Arc<Vec<crate::protocol::sessions::SessionEntry>> {
        if let Some(m) = &self.merged_sessions {
            return m.clone();
        }
        let mut all: Vec<crate::protocol::sessions::SessionEntry> = self
            .sessions
            .iter()
            .filter(|(id, _)| self.connected(**id))
            .flat_map(|(_, list)| list.iter().cloned())
            .collect();
        all.sort_by(|a, b| {
            b.updated_at
                .cmp(&a.updated_at)
                .then_with(|| a.key.cmp(&b.key))
                .then_with(|| a.gateway_id.cmp(&b.gateway_id))
        });
        let all = Arc::new(all);
        self.merged_sessions = Some(all.clone());
        all
    }
}

impl Handler<ListSessions> for RegistryActor {
    type Result = SessionPage;

    fn handle(&mut self, msg: ListSessions, _ctx: &mut Self::Context) -> Self::Result {
        let merged = self.merged_sessions();
        let unfiltered = msg.gateway_id.is_none()
            && msg.agent.is_none()
            && msg.key.is_none()
            && msg.within.is_none();
        let mut matching = merged.iter().filter(|s| {
            msg.gateway_id.is_none_or(|want| want == s.gateway_id)
                && msg.within.as_ref().is_none_or(|w| w.holds(s.gateway_id))
                && msg.key.as_deref().is_none_or(|k| s.key == k)
                && msg
                    .agent
                    .as_deref()
                    .is_none_or(|a| s.agent.as_deref() == Some(a))
        });
        let sessions: Vec<_> = matching.by_ref().take(msg.limit).cloned().collect();
        // Without a filter every session matches: no walk over the rest of the fleet's list.
        let total = if unfiltered {
            merged.len()
        } else {
            sessions.len() + matching.count()
        };
        SessionPage {
            version: self.sessions_version.load(Ordering::Acquire),
            total,
            sessions,
        }
    }
}

impl Handler<FindSession> for RegistryActor {
    type Result = MessageResult<FindSession>;

    fn handle(&mut self, msg: FindSession, _ctx: &mut Self::Context) -> Self::Result {
        let mut owners: Vec<GatewayId> = self
            .sessions
            .iter()
            .filter(|(id, _)| msg.gateway_id.is_none_or(|want| want == **id))
            .filter(|(_, list)| list.iter().any(|s| s.key == msg.key))
            .map(|(id, _)| *id)
            .collect();
        owners.sort_by_key(|id| (!self.connected(*id), *id));
        MessageResult(
            owners
                .into_iter()
                .filter_map(|id| {
                    let view = self.state.raw_view(id)?;
                    let link = self.links.get(&id)?;
                    Some(SessionOwner {
                        gateway_id: id,
                        name: view.record.name.clone(),
                        version: view.connection.server_version.clone(),
                        connected: self.connected(id),
                        methods: self.state.methods(id).cloned().unwrap_or_default(),
                        link: link.handle.clone(),
                        boot_id: view.connection.boot_id.clone(),
                    })
                })
                .collect(),
        )
    }
}

impl RegistryActor {
    /// Active and running sessions of gateway `id`'s cached list, in one pass (`None`: no list
    /// cached).
    pub(super) fn cached_session_counts(&self, id: GatewayId) -> Option<(i64, usize)> {
        self.sessions.get(&id).map(|list| {
            list.iter().fold((0i64, 0usize), |(active, running), s| {
                (
                    active + i64::from(s.status == SessionStatus::Active),
                    running + usize::from(s.running),
                )
            })
        })
    }

    /// Rebuilds the shared targets of the gateways the state changed (every one after loading).
    pub(super) fn publish_targets(&mut self) {
        let touched = match self.state.take_touched() {
            Some(ids) => ids,
            None => {
                // Every gateway the state has, and the slots of any it no longer has (each
                // once: a registered one is not rebuilt twice).
                let mut all: Vec<GatewayId> = self.state.views().map(|v| v.record.id).collect();
                let gone = self.targets.ids().into_iter();
                all.extend(gone.filter(|id| self.state.raw_view(*id).is_none()));
                all
            }
        };
        if touched.is_empty() {
            // The peers' shards still: a change of a peer alone touches its id too, but a
            // table filled at once (`RegistryState::leased`) publishes here.
            self.targets.update([], [], self.state.peer_shards());
            return;
        }
        let mut gone = Vec::new();
        let targets: Vec<_> = touched
            .into_iter()
            .filter_map(|id| {
                let target = self.target(id);
                if target.is_none() {
                    gone.push(id);
                }
                target
            })
            .collect();
        self.targets.update(targets, gone, self.state.peer_shards());
    }

    /// One gateway with a view here as a call target (`None`: not registered, or a peer —
    /// published with the peers' shards).
    pub(super) fn target(&self, id: GatewayId) -> Option<GatewayTarget> {
        let v = self.state.raw_view(id)?;
        let cached = self.cached_session_counts(id);
        let active = cached.map_or(v.record.sessions_count, |(active, _)| active);
        let running_sessions = cached.map(|(_, running)| running);
        let elsewhere = self.state.ownership().elsewhere(id);
        Some(GatewayTarget {
            candidate: crate::selection::Candidate {
                id,
                name: v.record.name.as_str().into(),
                healthy: if elsewhere {
                    v.record.status == crate::model::GatewayStatus::Online
                } else {
                    self.connected(id) && v.breaker.state == crate::model::BreakerState::Closed
                },
                acting_primary: v.acting_primary,
                active_sessions: active,
                capable: true,
                held_back: v.record.held_back(),
                labels: v.record.labels.clone(),
            },
            methods: self
                .state
                .methods(id)
                .cloned()
                .unwrap_or_else(GatewayTarget::no_methods),
            link: self.links.get(&id).map(|l| l.handle.clone()),
            elsewhere,
            boot_id: v.connection.boot_id.clone(),
            version: v.connection.server_version.clone(),
            running_sessions,
        })
    }
}
