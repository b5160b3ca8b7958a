//! What the links report upward (state, device token, health samples) and what callers ask of
//! them (handles, stop). Reports from a link that has since been restarted carry an old epoch
//! and are ignored.

use crate::events::EventKind;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::info;

use actix::prelude::*;

use super::RegistryActor;
use super::messages::{
    LinkHandle, LinkedHere, LinkedHereOffering, Links, LinksOf, Offering, StopAllLinks,
};
use super::writer::WriteOp;
use crate::link::GatewayActor;
use crate::link::messages::{
    DeviceTokenChanged, HealthSample, LinkReport, LinkUpdate, SessionsSnapshot, StopLink,
};
use crate::model::GatewayId;
use crate::store::LinkRecord;

impl Handler<LinkReport> for RegistryActor {
    type Result = ();

    fn handle(&mut self, msg: LinkReport, ctx: &mut Self::Context) {
        match msg {
            LinkReport::Update(m) => Handler::<LinkUpdate>::handle(self, *m, ctx),
            LinkReport::DeviceToken(m) => Handler::<DeviceTokenChanged>::handle(self, m, ctx),
            LinkReport::Health(m) => Handler::<HealthSample>::handle(self, m, ctx),
            LinkReport::Sessions(m) => Handler::<SessionsSnapshot>::handle(self, m, ctx),
        }
    }
}

impl Handler<LinkUpdate> for RegistryActor {
    type Result = ();

    fn handle(&mut self, msg: LinkUpdate, _ctx: &mut Self::Context) {
        if self.current_epoch(msg.id) != Some(msg.epoch) {
            return; // from a link that has since been restarted or stopped
        }
        let Some(was_eligible) = self
            .gateways
            .get(&msg.id)
            .map(|v| self.candidate(v).eligible)
        else {
            return;
        };
        let Some(view) = self.gateways.get_mut(&msg.id) else {
            return;
        };
        let s = msg.state;
        let state_changed = view.connection.state != s.connection.state;
        let status_changed = view.record.status != s.status;
        let previous_status = view.record.status;
        if state_changed {
            self.events.publish(
                EventKind::ConnectionChanged,
                Some(msg.id),
                serde_json::json!({"state": s.connection.state, "last_error": s.connection.last_error, "pairing_request_id": s.connection.pairing_request_id}),
            );
        }
        if status_changed {
            self.events.publish(
                EventKind::GatewayStatus,
                Some(msg.id),
                serde_json::json!({"status": s.status, "previous": previous_status}),
            );
        }
        // Back as another process or release: worth knowing (a restart nobody asked for, an
        // upgrade done by hand).
        if let Some(change) = crate::process::change(&view.connection, &s.connection) {
            info!(
                gateway_id = msg.id,
                ?change,
                "gateway came back as another process"
            );
            self.events
                .publish(EventKind::GatewayChanged, Some(msg.id), change.payload());
        }
        view.connection = s.connection;
        view.breaker = s.breaker;
        self.methods.insert(msg.id, s.methods);
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
        self.views_changed();
        if state_changed {
            self.sessions_changed();
        }
        if record.worth_saving_over(self.persisted.get(&msg.id)) {
            self.persisted.insert(msg.id, record.clone());
            self.writer.send(WriteOp::Link(msg.id, record));
        }
        // Who acts changes only when someone can act who could not, or the other way round
        // (`election::elect` ranks only at the moment it chooses): connecting and handshaking
        // reports of a starting fleet run no election.
        let eligible = self
            .gateways
            .get(&msg.id)
            .is_some_and(|v| self.candidate(v).eligible);
        if eligible != was_eligible {
            self.refresh_roles();
        }
    }
}

impl Handler<DeviceTokenChanged> for RegistryActor {
    type Result = ();

    fn handle(&mut self, msg: DeviceTokenChanged, _ctx: &mut Self::Context) {
        if self.current_epoch(msg.id) != Some(msg.epoch) {
            return;
        }
        if let Some(view) = self.gateways.get_mut(&msg.id) {
            view.record.device_token = msg.token.clone();
            self.writer.send(WriteOp::DeviceToken(msg.id, msg.token));
            self.views_changed();
        }
    }
}

impl Handler<HealthSample> for RegistryActor {
    type Result = ();

    fn handle(&mut self, msg: HealthSample, _ctx: &mut Self::Context) {
        if self.gateways.contains_key(&msg.gateway_id) {
            self.writer.send(WriteOp::Sample(msg));
        }
    }
}

impl RegistryActor {
    /// What a caller gets to ask of gateway `id`'s link, if it has one.
    fn link_handle(&self, id: GatewayId) -> Option<LinkHandle> {
        let link = self.links.get(&id)?;
        let view = self.gateways.get(&id)?;
        Some(LinkHandle {
            id,
            name: view.record.name.clone(),
            link: link.handle.clone(),
        })
    }
}

impl Handler<Links> for RegistryActor {
    type Result = MessageResult<Links>;

    fn handle(&mut self, msg: Links, _ctx: &mut Self::Context) -> Self::Result {
        let handles = self
            .links
            .keys()
            .filter(|id| msg.0.is_none_or(|want| want == **id))
            .filter_map(|id| self.link_handle(*id))
            .collect();
        MessageResult(handles)
    }
}

impl Handler<LinksOf> for RegistryActor {
    type Result = MessageResult<LinksOf>;

    fn handle(&mut self, msg: LinksOf, _ctx: &mut Self::Context) -> Self::Result {
        let handles = msg
            .0
            .into_iter()
            .filter_map(|id| self.link_handle(id))
            .collect();
        MessageResult(handles)
    }
}

impl Handler<Offering> for RegistryActor {
    type Result = MessageResult<Offering>;

    fn handle(&mut self, msg: Offering, _ctx: &mut Self::Context) -> Self::Result {
        let mut offers = OffersByRelease::default();
        let ids = self
            .links_here()
            .filter(|id| self.offers_all(*id, &[msg.0], &mut offers))
            .collect();
        MessageResult(ids)
    }
}

impl Handler<LinkedHereOffering> for RegistryActor {
    type Result = MessageResult<LinkedHereOffering>;

    fn handle(&mut self, msg: LinkedHereOffering, _ctx: &mut Self::Context) -> Self::Result {
        let mut offers = OffersByRelease::default();
        let here = self
            .links_here()
            .map(|id| LinkedHere {
                id,
                offers_all: self.offers_all(id, msg.0, &mut offers),
                running_sessions: self.cached_session_counts(id).map(|(_, running)| running),
            })
            .collect();
        MessageResult(here)
    }
}

/// Whether a method list offers what was asked, per list: method lists are shared per release
/// (`crate::intern`), so a fleet of 10,000 on two releases searches two lists, not 10,000.
type OffersByRelease = HashMap<*const Vec<String>, bool>;

impl RegistryActor {
    /// The gateways this instance links (not those linked elsewhere in a cluster).
    fn links_here(&self) -> impl Iterator<Item = GatewayId> + '_ {
        self.links
            .keys()
            .copied()
            .filter(|id| !self.ownership.elsewhere(*id))
    }

    /// Whether gateway `id`'s handshake advertised every one of `methods`.
    fn offers_all(&self, id: GatewayId, methods: &[&str], known: &mut OffersByRelease) -> bool {
        let Some(list) = self.methods.get(&id) else {
            return false;
        };
        *known
            .entry(Arc::as_ptr(list))
            .or_insert_with(|| methods.iter().all(|m| list.iter().any(|l| l == m)))
    }
}

impl Handler<StopAllLinks> for RegistryActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _msg: StopAllLinks, _ctx: &mut Self::Context) -> Self::Result {
        self.persist_live();
        let addrs: Vec<Addr<GatewayActor>> = self.links.drain().map(|(_, l)| l.addr).collect();
        let writer = self.writer.clone();
        Box::pin(async move {
            let stops = addrs.iter().map(|a| a.send(StopLink));
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                futures_util::future::join_all(stops),
            )
            .await;
            // What the links reported last reaches the database before the process exits.
            if let Some(written) = writer.flushed() {
                let _ = tokio::time::timeout(Duration::from_secs(5), written).await;
            }
        })
    }
}
