//! What every fleet service shares (docs/design.md, *Architecture*): the registry and its
//! shared targets, the store, the event bus, the deadlines, the counters and, in a cluster, this
//! instance's id — and the one way to reach a gateway for a call (connected, healthy, offering
//! the method, linked here; to the process a decision was made on). The services
//! (`Spawns`, `SessionControl`, `GatewayOps`, `Operations`, …) each hold it behind an `Arc`
//! beside their own state.

use std::sync::Arc;

use actix::Addr;
use serde_json::Value;

use super::{Deadlines, FleetCounters, FleetError, Owner};
use crate::gateway_reads::CallTargets;
use gateway_supervisor_actors::RegistryActor;
use gateway_supervisor_actors::events::EventBus;
use gateway_supervisor_actors::messages::{GatewayLink, GatewayTarget, RegistryError};
use gateway_supervisor_actors::model::{Caller, GatewayId, GatewayView};

/// A connected gateway able to take one method.
pub(super) struct Reached {
    pub(super) name: String,
    pub(super) version: Option<String>,
    pub(super) link: GatewayLink,
    /// The gateway process the link reaches, where the release names it.
    pub(super) boot_id: Option<String>,
}

/// A process condition the gateway's release gives no way to check.
#[derive(Debug, PartialEq, Eq)]
pub struct Unverifiable;

/// The gateway process a destructive action may go to (docs/design.md, *Generation fence*):
/// the one the caller saw, when it names one, else the one the decision was made on — the
/// link sends nothing to another. `Err`: the caller named a process and the gateway's release
/// does not say which process it is, so the condition cannot be checked.
pub fn fenced_process(
    expected: Option<&str>,
    reported: Option<&str>,
) -> Result<Option<String>, Unverifiable> {
    match (expected, reported) {
        (Some(_), None) => Err(Unverifiable),
        (Some(e), Some(_)) => Ok(Some(e.to_owned())),
        (None, r) => Ok(r.map(str::to_owned)),
    }
}

pub struct FleetContext {
    pub(super) registry: Addr<RegistryActor>,
    /// Every gateway as a call target, read without a trip through the registry's mailbox.
    targets: CallTargets,
    pub(super) store: crate::db::Store,
    pub(super) events: EventBus,
    pub(super) deadlines: Deadlines,
    pub(super) counters: FleetCounters,
    /// This instance's id, in a cluster.
    pub(super) instance: Option<String>,
}

impl FleetContext {
    pub fn new(
        registry: Addr<RegistryActor>,
        targets: CallTargets,
        store: crate::db::Store,
        events: EventBus,
        deadlines: Deadlines,
        counters: FleetCounters,
        instance: Option<String>,
    ) -> Arc<Self> {
        Arc::new(FleetContext {
            registry,
            targets,
            store,
            events,
            deadlines,
            counters,
            instance,
        })
    }

    /// When another instance links gateway `id`: that instance. `None` alone, or when no
    /// other instance holds its lease (it is this one's, or nobody's for the moment).
    pub(super) async fn linked_elsewhere(
        &self,
        id: GatewayId,
    ) -> Result<Option<Owner>, FleetError> {
        let Some(me) = self.instance.clone() else {
            return Ok(None);
        };
        let holder = self.stored(move |store| store.lease_holder(id)).await?;
        Ok(holder.filter(|h| h.owner != me).map(|h| Owner {
            instance: h.owner,
            url: h.advertise_url,
        }))
    }

    /// `NotConnected`, unless another instance links the gateway (then it is theirs).
    pub(super) async fn not_here(&self, id: GatewayId, name: String) -> FleetError {
        match self.linked_elsewhere(id).await {
            Ok(Some(owner)) => FleetError::LinkedElsewhere { id, owner },
            Ok(None) => FleetError::NotConnected { name },
            Err(e) => e,
        }
    }

    /// The fleet's gateways to read (`gateway_reads`).
    pub(super) fn gateways(&self) -> crate::gateway_reads::GatewayReads {
        let stored = self.instance.as_ref().map(|_| self.store.clone());
        crate::gateway_reads::GatewayReads::new(self.registry.clone(), stored)
    }

    /// The fleet's gateways as call targets (`gateway_reads::targets`).
    pub(super) fn targets(&self) -> &CallTargets {
        &self.targets
    }

    /// Whether gateway `id` can take a call now: connected with its breaker closed (in a
    /// cluster, as its owner last stored it). From the shared view: no lock, no store.
    pub fn reachable(&self, id: GatewayId) -> bool {
        self.targets.reachable(id)
    }

    /// A registry write, waited for: the mailbox's failure and the registry's refusal as the
    /// fleet's errors.
    pub(super) async fn record<M>(&self, msg: M) -> Result<GatewayView, FleetError>
    where
        M: actix::Message<Result = Result<GatewayView, RegistryError>> + Send + 'static,
        RegistryActor: actix::Handler<M>,
    {
        self.registry
            .send(msg)
            .await
            .map_err(FleetError::Registry)?
            .map_err(FleetError::Record)
    }

    /// Gateway `id` as a target, if registered.
    pub(super) fn target(&self, id: GatewayId) -> Option<Arc<GatewayTarget>> {
        self.targets.get(id)
    }

    /// Writes the audit row of an action carried out on a gateway; a storage failure is logged,
    /// not returned (the action itself happened and must not be reported as failed).
    pub(super) async fn audited(
        &self,
        by: &Caller,
        action: &'static str,
        target: (&'static str, String),
        details: Value,
    ) {
        let by = by.clone();
        let (target_type, target_id) = target;
        let written = self
            .stored(move |store| store.audit(&by, action, target_type, target_id, &details))
            .await;
        if let Err(e) = written {
            tracing::error!(%e, action, "could not write the audit row of an action");
        }
    }

    /// Runs a storage call on a blocking thread.
    pub(super) async fn stored<T, F>(&self, call: F) -> Result<T, FleetError>
    where
        T: Send + 'static,
        F: FnOnce(&crate::db::Store) -> Result<T, crate::db::DbError> + Send + 'static,
    {
        self.store.call(call).await.map_err(FleetError::Storage)
    }

    /// Gateway `id`, if it is connected and healthy and offers `method`.
    pub(super) async fn reach(
        &self,
        id: GatewayId,
        method: &'static str,
    ) -> Result<Reached, FleetError> {
        let t = self.target(id).ok_or(FleetError::NotFound(id))?;
        let name = t.candidate.name.to_string();
        let offers = t.offers(method);
        let Some(link) = t.link.clone().filter(|_| t.candidate.healthy) else {
            return Err(self.not_here(id, name).await);
        };
        if !offers {
            return Err(FleetError::Unsupported { id, name, method });
        }
        Ok(Reached {
            name,
            version: t.version.clone(),
            link,
            boot_id: t.boot_id.clone(),
        })
    }

    /// One call to a reached gateway.
    pub(super) async fn call(
        &self,
        id: GatewayId,
        method: &'static str,
        params: Value,
    ) -> Result<Value, FleetError> {
        let r = self.reach(id, method).await?;
        self.send(r, None, method, params).await
    }

    /// One call to gateway `id` for another part of the daemon (the approvals inbox): refused
    /// as any call is when it is not connected here, does not offer `method`, or is linked by
    /// another instance (`LinkedElsewhere`, for the caller to forward).
    pub async fn call_gateway(
        &self,
        id: GatewayId,
        method: &'static str,
        params: Value,
    ) -> Result<Value, FleetError> {
        self.call(id, method, params).await
    }

    /// One destructive call, sent only to the gateway process it was decided on
    /// ([`fenced_process`]).
    pub(super) async fn call_fenced(
        &self,
        id: GatewayId,
        method: &'static str,
        params: Value,
        expected_boot_id: Option<&str>,
    ) -> Result<Value, FleetError> {
        let r = self.reach(id, method).await?;
        let process = Self::fence(id, &r, expected_boot_id)?;
        self.send(r, process, method, params).await
    }

    /// The process a destructive call to the reached gateway `id` goes to
    /// ([`fenced_process`]), or why its release cannot be held to one.
    #[allow(clippy::result_large_err)] // the FleetError every call returns; checked once a call
    pub(super) fn fence(
        id: GatewayId,
        r: &Reached,
        expected_boot_id: Option<&str>,
    ) -> Result<Option<String>, FleetError> {
        fenced_process(expected_boot_id, r.boot_id.as_deref())
            .map_err(|_| FleetError::unverifiable(id, &r.name, r.version.as_deref()))
    }

    /// The call itself, on the reached gateway's link (only to `process`, when given).
    pub(super) async fn send(
        &self,
        r: Reached,
        process: Option<String>,
        method: &'static str,
        params: Value,
    ) -> Result<Value, FleetError> {
        r.link
            .call_on(process, method, Some(params), self.deadlines.operation)
            .await
            .map_err(|source| FleetError::Call {
                name: r.name,
                source,
            })
    }
}
