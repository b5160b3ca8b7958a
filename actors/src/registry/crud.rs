//! Gateway writes (create, update, delete): checked against memory and the primary rules,
//! written through the store while the registry holds its mailbox, then applied to memory and
//! announced; a new address or credential restarts the gateway's link. In a cluster, a write
//! for a gateway this instance has not heard of yet reads its row first (`known_first`,
//! `cluster.rs`).

use actix::fut::{ActorFutureExt, ready};
use actix::prelude::*;
use tracing::info;

use super::messages::{
    CreateGateway, DeleteGateway, PatchLabels, RegistryError, SetCordon, SetMaintenance,
    SetSuspension, UpdateGateway,
};
use super::{Input, RegistryActor, Write, WriteFut, WriteResult};
use crate::model::{GatewayId, GatewayRecord, GatewayView};
use crate::primary;
use crate::store::StoreError;

impl Handler<CreateGateway> for RegistryActor {
    type Result = WriteResult<GatewayView>;

    fn handle(&mut self, msg: CreateGateway, _ctx: &mut Self::Context) -> Self::Result {
        AtomicResponse::new(self.create(msg))
    }
}

impl RegistryActor {
    fn create(&mut self, msg: CreateGateway) -> WriteFut<GatewayView> {
        let CreateGateway { mut new, by } = msg;
        if self.state.name_taken(&new.name, None) {
            return Self::refuse(RegistryError::DuplicateName(new.name));
        }
        if let Err(taken) = self.address_taken(&new.host, new.port, None) {
            return Self::refuse(taken);
        }
        new.is_primary = primary::primary_on_create(self.state.is_empty(), new.is_primary);
        let store = self.store.clone();
        Self::write(
            move || store.insert_gateway(&new, &by),
            |record, act, ctx| {
                info!(gateway_id = record.id.get(), name = %record.name, primary = record.is_primary, "gateway created");
                act.written(record, Write::Created, ctx)
            },
        )
    }
}

/// The writes to one existing gateway: each is carried out by the method named, once this
/// instance knows the gateway (`known_first`).
macro_rules! writes_to_one {
    ($($msg:ident => $method:ident: $answer:ty;)*) => {$(
        impl Handler<$msg> for RegistryActor {
            type Result = WriteResult<$answer>;

            fn handle(&mut self, msg: $msg, _ctx: &mut Self::Context) -> Self::Result {
                self.known_first(msg.id, msg, Self::$method)
            }
        }
    )*};
}

writes_to_one! {
    UpdateGateway => update: GatewayView;
    PatchLabels => patch_labels: GatewayView;
    SetMaintenance => set_maintenance: Option<GatewayView>;
    SetSuspension => set_suspension: GatewayView;
    SetCordon => set_cordon: GatewayView;
    DeleteGateway => delete: ();
}

impl RegistryActor {
    fn update(&mut self, msg: UpdateGateway) -> WriteFut<GatewayView> {
        let UpdateGateway { id, mut patch, by } = msg;
        // A peer's record is in the database alone: what the rules need of it is here, and
        // the store checks its name and address inside the write (`db/gateways`).
        let Some(is_primary) = self.state.designated(id) else {
            return Self::refuse(RegistryError::NotFound(id));
        };
        if let Some(name) = &patch.name
            && self.state.name_taken(name, Some(id))
        {
            return Self::refuse(RegistryError::DuplicateName(name.clone()));
        }
        if (patch.host.is_some() || patch.port.is_some())
            && let Some(current) = self.state.record(id)
        {
            let host = patch.host.as_deref().unwrap_or(&current.host);
            let port = patch.port.unwrap_or(current.port);
            if let Err(taken) = self.address_taken(host, port, Some(id)) {
                return Self::refuse(taken);
            }
        }
        let target = primary::Target { is_primary };
        patch.is_primary = match primary::primary_on_update(target, patch.is_primary) {
            Ok(change) => change,
            Err(rule) => return Self::refuse(rule.into()),
        };
        // A new address or credential (or a new name, the link's metric label) restarts the link.
        let relink = patch.changes_link() || patch.name.is_some();
        let verify_shared_token = patch.token.is_some();
        // The row read back carries the link's facts as the batched writer last saved them
        // (often `unknown` just after connecting): a change that leaves the link running and
        // sets none of them keeps the live ones, or the gateway would read `unknown` until
        // its status next changed.
        let keep_live = !relink && !patch.sets_live_facts();
        let store = self.store.clone();
        Self::write(
            move || store.update_gateway(id, &patch, &by),
            move |record, act, ctx| {
                info!(gateway_id = record.id.get(), name = %record.name, restart_link = relink, "gateway updated");
                let write = Write::Updated {
                    relink,
                    verify_shared_token,
                    keep_live,
                };
                act.written(record, write, ctx)
            },
        )
    }

    fn patch_labels(&mut self, msg: PatchLabels) -> WriteFut<GatewayView> {
        let PatchLabels { id, patch, by } = msg;
        if !self.state.contains(id) {
            return Self::refuse(RegistryError::NotFound(id));
        }
        let store = self.store.clone();
        Self::write(
            move || store.patch_labels(id, &patch, &by),
            move |record, act, ctx| {
                info!(gateway_id = id.get(), labels = %record.labels, "gateway labels changed");
                act.written(record, Write::Labels, ctx)
            },
        )
    }

    fn set_maintenance(&mut self, msg: SetMaintenance) -> WriteFut<Option<GatewayView>> {
        let SetMaintenance {
            id,
            maintenance,
            expired_by,
            by,
        } = msg;
        if !self.state.contains(id) {
            return Self::refuse(RegistryError::NotFound(id));
        }
        let store = self.store.clone();
        Self::write(
            move || store.set_maintenance(id, maintenance.as_ref(), expired_by, &by),
            move |record, act, ctx| {
                let Some(record) = record else {
                    return Ok(None);
                };
                let set = record.maintenance.is_some();
                info!(
                    gateway_id = id.get(),
                    in_maintenance = set,
                    "gateway maintenance changed"
                );
                // Held back: it acts as primary no longer and takes no spawns.
                act.written(record, Write::Maintenance(set), ctx).map(Some)
            },
        )
    }

    fn set_suspension(&mut self, msg: SetSuspension) -> WriteFut<GatewayView> {
        let SetSuspension {
            id,
            suspension_id,
            by,
        } = msg;
        if !self.state.contains(id) {
            return Self::refuse(RegistryError::NotFound(id));
        }
        let store = self.store.clone();
        Self::write(
            move || store.set_suspension(id, suspension_id.as_deref(), &by),
            move |record, act, ctx| {
                info!(
                    gateway_id = id.get(),
                    suspended = record.suspension_id.is_some(),
                    "gateway suspension recorded"
                );
                // A suspended gateway acts as primary no longer (and takes no spawns).
                act.written(record, Write::Suspension, ctx)
            },
        )
    }

    fn set_cordon(&mut self, msg: SetCordon) -> WriteFut<GatewayView> {
        let SetCordon { id, cordoned, by } = msg;
        if !self.state.contains(id) {
            return Self::refuse(RegistryError::NotFound(id));
        }
        let store = self.store.clone();
        Self::write(
            move || store.set_cordon(id, cordoned, &by),
            move |record, act, ctx| {
                info!(gateway_id = id.get(), cordoned, "gateway cordon changed");
                // A cordoned gateway acts as primary no longer (and takes no spawns).
                act.written(record, Write::Cordon(cordoned), ctx)
            },
        )
    }

    fn delete(&mut self, msg: DeleteGateway) -> WriteFut<()> {
        let DeleteGateway { id, by, lost } = msg;
        let Some(is_primary) = self.state.designated(id) else {
            return Self::refuse(RegistryError::NotFound(id));
        };
        let others = self.state.len().saturating_sub(1);
        if let Err(rule) = primary::check_delete(primary::Target { is_primary }, others, lost) {
            return Self::refuse(rule.into());
        }
        let store = self.store.clone();
        Self::write(
            move || store.delete_gateway(id, &by),
            move |(), act, ctx| {
                info!(gateway_id = id.get(), "gateway deleted");
                act.apply(Input::Deleted(id), ctx);
                Ok(())
            },
        )
    }

    /// Refuses `host:port` when another gateway has it ([`RegistryError::DuplicateAddress`]).
    fn address_taken(
        &self,
        host: &str,
        port: u16,
        except: Option<GatewayId>,
    ) -> Result<(), RegistryError> {
        match self.state.address_owner(host, port, except) {
            Some(r) => Err(RegistryError::DuplicateAddress {
                id: r.id,
                name: r.name.clone(),
                host: r.host.clone(),
                port,
            }),
            None => Ok(()),
        }
    }

    /// Runs a store call on a blocking thread while the actor holds its mailbox (atomic), then
    /// applies the result to memory with `apply`.
    fn write<T, R, F, A>(call: F, apply: A) -> WriteFut<T>
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
        Box::pin(actix::fut::wrap_future::<_, RegistryActor>(fut).map(
            |result, act: &mut RegistryActor, ctx| {
                // Counted whatever the outcome: the feed's rows read before it may be older
                // than memory now (`ApplyStoreChanges`).
                act.writes += 1;
                result.and_then(|value| apply(value, act, ctx))
            },
        ))
    }

    /// Applies a record written here and answers with its view: in a cluster, of a gateway
    /// another instance links, the record as written (kept here as a peer, without it).
    fn written(
        &mut self,
        record: GatewayRecord,
        write: Write,
        ctx: &mut Context<Self>,
    ) -> Result<GatewayView, RegistryError> {
        let id = record.id;
        let shown = (!self.state.may_link(id)).then(|| record.clone());
        self.apply(Input::Written(record, write), ctx);
        match (self.state.view(id), shown) {
            (Some(view), _) => Ok(view),
            (None, Some(record)) if self.state.contains(id) => {
                let acting = self.state.acting() == Some(id);
                Ok(GatewayView::unlinked(record, acting))
            }
            _ => Err(RegistryError::NotFound(id)),
        }
    }

    pub(super) fn refuse<T: 'static>(err: RegistryError) -> WriteFut<T> {
        Box::pin(ready(Err(err)))
    }
}
