//! What the links report upward (state, device token, health samples) and what callers ask of
//! them (handles, stop). Reports from a link that has since been restarted carry an old epoch
//! and are ignored.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::messages::{
    LinkHandle, LinkedHere, LinkedHereOffering, Links, LinksOf, Offering, StopAllLinks,
};
use super::writer::WriteOp;
use super::{Input, RegistryActor};
use crate::link::GatewayActor;
use crate::link::messages::{
    DeviceTokenChanged, HealthSample, LinkReport, LinkUpdate, SessionsSnapshot, StopLink,
};
use crate::model::GatewayId;

impl Handler<LinkReport> for RegistryActor {
    type Result = ();

    fn handle(&mut self, msg: LinkReport, ctx: &mut Self::Context) {
        match msg {
            LinkReport::Update(m) => Handler::<LinkUpdate>::handle(self, *m, ctx),
            LinkReport::DeviceToken(m) => Handler::<DeviceTokenChanged>::handle(self, m, ctx),
            LinkReport::Health(m) => Handler::<HealthSample>::handle(self, m, ctx),
            LinkReport::Sessions(m) => Handler::<SessionsSnapshot>::handle(self, m, ctx),
            LinkReport::RunEnded(m) => self.run_ended(m),
        }
    }
}

impl Handler<LinkUpdate> for RegistryActor {
    type Result = ();

    fn handle(&mut self, msg: LinkUpdate, ctx: &mut Self::Context) {
        self.apply(Input::Link(msg), ctx);
    }
}

impl Handler<DeviceTokenChanged> for RegistryActor {
    type Result = ();

    fn handle(&mut self, msg: DeviceTokenChanged, ctx: &mut Self::Context) {
        self.apply(Input::DeviceToken(msg), ctx);
    }
}

impl Handler<HealthSample> for RegistryActor {
    type Result = ();

    fn handle(&mut self, msg: HealthSample, _ctx: &mut Self::Context) {
        if self.state.contains(msg.gateway_id) {
            self.writer.send(WriteOp::Sample(msg));
        }
    }
}

impl RegistryActor {
    /// What a caller gets to ask of gateway `id`'s link, if it has one.
    fn link_handle(&self, id: GatewayId) -> Option<LinkHandle> {
        let link = self.links.get(&id)?;
        let record = self.state.record(id)?;
        Some(LinkHandle {
            id,
            name: record.name.clone(),
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
            .filter(|id| !self.state.ownership().elsewhere(*id))
    }

    /// Whether gateway `id`'s handshake advertised every one of `methods`.
    fn offers_all(&self, id: GatewayId, methods: &[&str], known: &mut OffersByRelease) -> bool {
        let Some(list) = self.state.methods(id) else {
            return false;
        };
        *known
            .entry(Arc::as_ptr(list))
            .or_insert_with(|| methods.iter().all(|m| list.iter().any(|l| l == m)))
    }
}

impl Handler<StopAllLinks> for RegistryActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _msg: StopAllLinks, ctx: &mut Self::Context) -> Self::Result {
        self.apply(Input::PersistLive, ctx);
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
