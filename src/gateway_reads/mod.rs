//! The fleet's gateways as the daemon's readers ask for them: one gateway, the list in its
//! order, the list only when it changed, and the few subsets readers walk the fleet for (those
//! a key sees, those whose maintenance ran out, those beyond capacity, one by name). Every
//! reader of the gateways' records outside the registry — the API's lists and lookups,
//! `/metrics`, the alert watch, maintenance expiry, managed gateways — asks here, and says
//! what it needs rather than copying the whole fleet to filter it.
//!
//! Two sources (docs/design.md, *Cluster*, "Reading the fleet"). Alone, the registry holds
//! every gateway: each read is one message to it, and the list is its shared snapshot (rebuilt
//! once per change, not per read). In a cluster, the records are read from the database
//! (`db/cluster/reads.rs`: keyset pages, tokens sealed) and the registry adds what only it
//! knows (`GatewaysHere`: its views of the gateways it links, the acting primary, the owners'
//! heartbeats) — so that an instance need not hold its peers' gateways at all: at 100,000 over
//! 10 instances, the 90,000 it does not link are ~71 MB of its ~166 MB (measured 2026-12-01 in
//! docs/performance.md). `/metrics` and the alert watch read memory in both (`held`,
//! `changed_since`).

mod targets;
pub use targets::CallTargets;

use std::sync::Arc;

use actix::Addr;
use gateway_supervisor_actors::messages::{
    GatewaySnapshot, GatewaysChangedSince, GetGateway, ListGateways,
};
use gateway_supervisor_actors::model::{GatewayId, GatewayView};
use gateway_supervisor_actors::registry::{GatewaysHere, Here, RegistryActor};

use crate::db::cluster::{StoredGateway, Which};
use crate::db::{DbError, Store};

use crate::tenancy::Scope;

/// Gateways in the list's order, shared.
pub type Views = Arc<Vec<Arc<GatewayView>>>;

/// Rows a page of the stored list holds: ~1 MB of rows in the client at once.
const PAGE: i64 = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the registry is unavailable: {0}")]
    Registry(#[source] actix::MailboxError),
    #[error("reading the gateways failed: {0}")]
    Store(#[from] DbError),
}

impl From<actix::MailboxError> for ReadError {
    fn from(err: actix::MailboxError) -> Self {
        ReadError::Registry(err)
    }
}

/// A subset of the fleet a reader walks it for, each a filter the source can apply where the
/// gateways are (in memory today; as a query on the database for an instance that does not
/// hold them).
#[derive(Debug, Clone, Copy)]
pub enum Subset<'a> {
    /// Every gateway.
    Every,
    /// Those a key of this scope sees (`Scope::sees` on their labels).
    SeenBy(&'a Scope),
    /// In maintenance with a window that ended by this Unix second.
    MaintenanceOverBy(i64),
    /// Registered beyond the capacity of the daemon (alone) that holds them: not linked.
    Unplaced,
}

impl Subset<'_> {
    /// Whether `view` is in the subset.
    pub fn keeps(&self, view: &GatewayView) -> bool {
        match self {
            Subset::Every => true,
            Subset::SeenBy(scope) => scope.is_platform() || scope.sees(&view.record.labels),
            Subset::MaintenanceOverBy(now) => view
                .record
                .maintenance
                .as_ref()
                .and_then(|m| m.until)
                .is_some_and(|until| until <= *now),
            Subset::Unplaced => view.unplaced(),
        }
    }
}

/// The read side of the fleet's gateways: cheap to clone.
#[derive(Clone)]
pub struct GatewayReads {
    registry: Addr<RegistryActor>,
    /// In a cluster: the database, where the records are read (the registry adds what only it
    /// knows, `registry/peers.rs`). Alone: `None`, the registry holds every gateway.
    stored: Option<Store>,
}

impl GatewayReads {
    /// Alone: `stored` is `None`. In a cluster: the shared database.
    pub fn new(registry: Addr<RegistryActor>, stored: Option<Store>) -> GatewayReads {
        GatewayReads { registry, stored }
    }

    /// Gateway `id`, if registered.
    pub async fn get(&self, id: GatewayId) -> Result<Option<GatewayView>, ReadError> {
        let Some(store) = &self.stored else {
            return Ok(self.registry.send(GetGateway(id)).await?);
        };
        let view = self.stored_one(store, Which::Id(id)).await?;
        Ok(view.map(|v| (*v).clone()))
    }

    /// Every gateway, primary first, then by name, with the change counter it was read at.
    pub async fn list(&self) -> Result<GatewaySnapshot, ReadError> {
        let Some(store) = &self.stored else {
            return Ok(self.registry.send(ListGateways).await?);
        };
        let here = self.registry.send(GatewaysHere(None)).await?;
        self.stored_list(store, here).await
    }

    /// The gateways as this instance holds them in memory, never read from the database: for
    /// `/metrics`, which must answer while the database is out of reach (a scrape that failed
    /// then would hide the outage it should show). Alone, the list; in a cluster, the views of
    /// the gateways this instance may link and every other as a peer (`peers`: status and
    /// holds, no record; docs/design.md, *Cluster*, "Reading the fleet").
    pub async fn held(&self) -> Result<GatewaySnapshot, ReadError> {
        Ok(self.registry.send(ListGateways).await?)
    }

    /// The list as this instance holds it in memory (as [`GatewayReads::held`]), only when
    /// the registry's view of it changed since `since` (the live numbers, latency and
    /// last-seen, are no such change): for a reader that looks every second, the alert watch.
    /// Not read from the database even in a cluster: the change feed moves the counter with
    /// every row it brings, and at 100,000 gateways a fleet changing somewhere every second
    /// would be 50 pages of rows a second.
    pub async fn changed_since(
        &self,
        since: Option<u64>,
    ) -> Result<Option<GatewaySnapshot>, ReadError> {
        Ok(self.registry.send(GatewaysChangedSince(since)).await?)
    }

    /// The gateways of `subset`, in the list's order (a platform key's: the shared list itself,
    /// not a copy).
    pub async fn subset(&self, subset: Subset<'_>) -> Result<Views, ReadError> {
        let Some(store) = &self.stored else {
            let all = self.list().await?;
            if matches!(subset, Subset::SeenBy(scope) if scope.is_platform()) {
                return Ok(all.views);
            }
            let kept = all.views.iter().filter(|v| subset.keeps(v)).cloned();
            return Ok(Arc::new(kept.collect()));
        };
        let mut kept = Vec::new();
        self.stored_walk(store, subset, |v| kept.push(v.clone()))
            .await?;
        kept.sort_by(|a, b| list_order(a).cmp(&list_order(b)));
        Ok(Arc::new(kept))
    }

    /// Meets every gateway of `subset` once, in no set order, as this instance shows it,
    /// without holding the fleet: for a reader that keeps a little of each (a page of the list
    /// keeps its counts and its rows). Alone, a walk of the shared list; in a cluster, a page
    /// of rows at a time, each made a view, met and dropped — so that a page of one at 100,000
    /// gateways holds 2,000 rows at a time, not 100,000 rows and as many views (~60 MB, which
    /// an instance kept resident after the answer: docs/performance.md).
    pub async fn walk(
        &self,
        subset: Subset<'_>,
        mut meet: impl FnMut(&Arc<GatewayView>),
    ) -> Result<(), ReadError> {
        let Some(store) = &self.stored else {
            let all = self.list().await?;
            all.views.iter().filter(|v| subset.keeps(v)).for_each(meet);
            return Ok(());
        };
        self.stored_walk(store, subset, &mut meet).await
    }

    /// The gateway named `name` (names are unique), if registered.
    pub async fn named(&self, name: &str) -> Result<Option<Arc<GatewayView>>, ReadError> {
        let Some(store) = &self.stored else {
            let all = self.list().await?;
            return Ok(all.views.iter().find(|v| v.record.name == name).cloned());
        };
        self.stored_one(store, Which::Name(name.to_owned())).await
    }

    /// Every stored gateway, as this instance shows it, in the list's order.
    async fn stored_list(&self, store: &Store, here: Here) -> Result<GatewaySnapshot, ReadError> {
        let mut views = Vec::new();
        self.stored_pages(store, &here, Subset::Every, |v| views.push(v.clone()))
            .await?;
        views.sort_by(|a, b| list_order(a).cmp(&list_order(b)));
        Ok(GatewaySnapshot {
            changes: here.changes,
            views: Arc::new(views),
            // Every gateway is a view here: the rows are.
            peers: Default::default(),
        })
    }

    /// [`GatewayReads::walk`] over the stored rows, one registry answer for all of them.
    async fn stored_walk(
        &self,
        store: &Store,
        subset: Subset<'_>,
        meet: impl FnMut(&Arc<GatewayView>),
    ) -> Result<(), ReadError> {
        let here = self.registry.send(GatewaysHere(None)).await?;
        self.stored_pages(store, &here, subset, meet).await
    }

    /// The stored gateways of `subset` as `here` shows them, a page of rows at a time. Maintenance
    /// run out is asked of the database (a handful of rows, `db/cluster/reads.rs`), the rest
    /// read whole and filtered here (a scope's labels and a link's error are not columns).
    async fn stored_pages(
        &self,
        store: &Store,
        here: &Here,
        subset: Subset<'_>,
        mut meet: impl FnMut(&Arc<GatewayView>),
    ) -> Result<(), ReadError> {
        let mut meet_all = |rows: Vec<StoredGateway>| {
            for row in rows {
                let view = here.view_of(row.record, row.owner);
                if subset.keeps(&view) {
                    meet(&view);
                }
            }
        };
        if let Subset::MaintenanceOverBy(now) = subset {
            meet_all(store.call(move |s| s.stored_maintenance_over(now)).await?);
            return Ok(());
        }
        let mut after = GatewayId(0);
        loop {
            let page = store.call(move |s| s.stored_gateways(after, PAGE)).await?;
            let full = page.len() as i64 == PAGE;
            after = page.last().map_or(after, |g| g.record.id);
            meet_all(page);
            if !full {
                return Ok(());
            }
        }
    }

    /// One stored gateway, as this instance shows it.
    async fn stored_one(
        &self,
        store: &Store,
        which: Which,
    ) -> Result<Option<Arc<GatewayView>>, ReadError> {
        let read = store.call(move |store| store.stored_gateway(&which));
        let Some(row) = read.await.map_err(ReadError::Store)? else {
            return Ok(None);
        };
        let here = self
            .registry
            .send(GatewaysHere(Some(row.record.id)))
            .await?;
        Ok(Some(here.view_of(row.record, row.owner)))
    }
}

/// The list's order, as the registry keeps it: the designated primary, then by name, then id.
pub fn list_order(v: &GatewayView) -> (bool, &str, GatewayId) {
    (!v.record.is_primary, &v.record.name, v.record.id)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use gateway_supervisor_actors::labels::Labels;
    use gateway_supervisor_actors::model::{
        BreakerInfo, ConnectionInfo, GatewayRecord, LinkError, LiveReadings, Maintenance,
    };
    use gateway_supervisor_actors::registry::UNPLACED;

    use super::*;
    use crate::tenancy::Reserved;

    fn view(tenant: Option<&str>) -> GatewayView {
        let mut record = GatewayRecord::new(GatewayId(1), "gw1".into(), "127.0.0.1".into(), 1);
        let pairs = tenant.map(|t| ("tenant".to_owned(), t.to_owned()));
        record.labels = Labels::new(pairs.into_iter().collect::<BTreeMap<_, _>>()).unwrap();
        GatewayView {
            record,
            acting_primary: false,
            connection: Arc::new(ConnectionInfo::default()),
            breaker: BreakerInfo::default(),
            live: LiveReadings::default(),
            vouched: Default::default(),
        }
    }

    /// A tenant's key keeps its tenant's gateways only; a platform key keeps every one, a
    /// gateway with no tenant label included (the default tenant's).
    #[test]
    fn a_key_s_subset_is_its_tenant_s_gateways() {
        let reserved = Reserved::new(Vec::new());
        let acme = Scope::new(Some("acme"), None, None, None, &reserved).unwrap();
        let platform = Scope::platform();
        for (tenant, acme_sees) in [(Some("acme"), true), (Some("globex"), false), (None, false)] {
            let v = view(tenant);
            assert_eq!(Subset::SeenBy(&acme).keeps(&v), acme_sees, "{tenant:?}");
            assert!(Subset::SeenBy(&platform).keeps(&v), "{tenant:?}");
        }
    }

    /// A window is over at its `until` second, not before; one with no end never is.
    #[test]
    fn maintenance_is_over_from_its_until() {
        let mut v = view(None);
        assert!(
            !Subset::MaintenanceOverBy(100).keeps(&v),
            "not in maintenance"
        );
        let window = |until| {
            Some(Box::new(Maintenance {
                reason: "disk".into(),
                by: "ops".into(),
                since: 10,
                until,
            }))
        };
        v.record.maintenance = window(Some(100));
        assert!(!Subset::MaintenanceOverBy(99).keeps(&v));
        assert!(Subset::MaintenanceOverBy(100).keeps(&v));
        v.record.maintenance = window(None);
        assert!(!Subset::MaintenanceOverBy(i64::MAX).keeps(&v));
    }

    /// Unplaced is what the view says in place of a link's error, and only that error.
    #[test]
    fn unplaced_is_the_capacity_error_only() {
        let mut v = view(None);
        assert!(!Subset::Unplaced.keeps(&v));
        let failed = |code: &str| ConnectionInfo {
            last_error: Some(LinkError {
                code: code.to_owned(),
                message: "m".into(),
                retryable: true,
            }),
            ..ConnectionInfo::default()
        };
        v.connection = Arc::new(failed("handshake_timeout"));
        assert!(!Subset::Unplaced.keeps(&v));
        v.connection = Arc::new(failed(UNPLACED));
        assert!(Subset::Unplaced.keeps(&v));
    }
}
