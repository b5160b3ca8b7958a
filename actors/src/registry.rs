//! The registry actor: owns the in-memory set of gateways, serves reads from memory and applies
//! writes through the store, one at a time, so memory and database never disagree.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use actix::fut::{ActorFutureExt, ready};
use actix::prelude::*;
use tracing::{info, warn};

use crate::messages::{
    CountByStatus, CreateGateway, DeleteGateway, GetGateway, ListGateways, Ping, RegistryError,
    UpdateGateway,
};
use crate::model::{
    BreakerInfo, Caller, ConnectionInfo, GatewayId, GatewayPatch, GatewayRecord, GatewayStatus,
    GatewayView,
};
use crate::primary;
use crate::store::{GatewayStore, StoreError};

pub struct RegistryActor {
    store: Arc<dyn GatewayStore>,
    gateways: HashMap<GatewayId, GatewayView>,
    /// Sorted list handed to readers; rebuilt after each write.
    snapshot: Arc<Vec<GatewayView>>,
}

type WriteResult<T> = AtomicResponse<RegistryActor, Result<T, RegistryError>>;

impl RegistryActor {
    /// Loads the registry (blocking: call from a blocking thread before starting the actor),
    /// repairing a missing primary if the database was edited by hand.
    pub fn load(store: Arc<dyn GatewayStore>) -> Result<Self, StoreError> {
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
            store,
            gateways: HashMap::new(),
            snapshot: Arc::new(Vec::new()),
        };
        for record in records {
            actor.put(record);
        }
        actor.rebuild_snapshot();
        Ok(actor)
    }

    pub fn len(&self) -> usize {
        self.gateways.len()
    }

    pub fn is_empty(&self) -> bool {
        self.gateways.is_empty()
    }

    fn put(&mut self, record: GatewayRecord) -> GatewayView {
        let view = match self.gateways.remove(&record.id) {
            Some(mut existing) => {
                existing.record = record;
                existing
            }
            None => GatewayView {
                record,
                acting_primary: false,
                connection: ConnectionInfo::default(),
                breaker: BreakerInfo::default(),
            },
        };
        let id = view.record.id;
        self.gateways.insert(id, view);
        self.gateways[&id].clone()
    }

    /// Takes a record just written to the store into memory; if it is now the primary, the
    /// previous one is not (the store did the same in its transaction).
    fn apply_stored(&mut self, record: GatewayRecord) -> GatewayView {
        let (id, is_primary) = (record.id, record.is_primary);
        self.put(record);
        if is_primary {
            self.demote_others(id);
        }
        self.rebuild_snapshot();
        self.gateways[&id].clone()
    }

    /// After a write made `id` primary, the previous primary is no longer one (the store did the
    /// same in its transaction).
    fn demote_others(&mut self, id: GatewayId) {
        for (other_id, view) in self.gateways.iter_mut() {
            if *other_id != id {
                view.record.is_primary = false;
            }
        }
    }

    fn rebuild_snapshot(&mut self) {
        // Until the gateway link elects an acting primary, the designated one acts.
        for view in self.gateways.values_mut() {
            view.acting_primary = view.record.is_primary;
        }
        let mut list: Vec<GatewayView> = self.gateways.values().cloned().collect();
        list.sort_by(|a, b| {
            b.record
                .is_primary
                .cmp(&a.record.is_primary)
                .then_with(|| a.record.name.cmp(&b.record.name))
                .then_with(|| a.record.id.cmp(&b.record.id))
        });
        self.snapshot = Arc::new(list);
    }

    fn name_taken(&self, name: &str, except: Option<GatewayId>) -> bool {
        self.gateways
            .values()
            .any(|v| v.record.name == name && Some(v.record.id) != except)
    }

    fn records(&self) -> Vec<GatewayRecord> {
        self.gateways.values().map(|v| v.record.clone()).collect()
    }

    fn view(&self, id: GatewayId) -> Option<GatewayView> {
        self.gateways.get(&id).cloned()
    }

    /// Runs a store call on a blocking thread while the actor holds its mailbox (atomic), then
    /// applies the result to memory with `apply` (which rebuilds the snapshot).
    fn write<T, R, F, A>(call: F, apply: A) -> WriteResult<T>
    where
        T: 'static,
        R: Send + 'static,
        F: FnOnce() -> Result<R, StoreError> + Send + 'static,
        A: FnOnce(R, &mut RegistryActor) -> Result<T, RegistryError> + 'static,
    {
        let fut = async move {
            match tokio::task::spawn_blocking(call).await {
                Ok(result) => result.map_err(RegistryError::from),
                Err(join) => Err(RegistryError::Store(format!("storage task failed: {join}"))),
            }
        };
        AtomicResponse::new(Box::pin(
            actix::fut::wrap_future::<_, RegistryActor>(fut).map(
                |result, act: &mut RegistryActor, _ctx| result.and_then(|value| apply(value, act)),
            ),
        ))
    }

    fn refuse<T: 'static>(err: RegistryError) -> WriteResult<T> {
        AtomicResponse::new(Box::pin(ready(Err(err))))
    }
}

impl Actor for RegistryActor {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Self::Context) {
        info!(gateways = self.gateways.len(), "registry started");
    }
}

impl Handler<ListGateways> for RegistryActor {
    type Result = MessageResult<ListGateways>;
    fn handle(&mut self, _msg: ListGateways, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.snapshot.clone())
    }
}

impl Handler<GetGateway> for RegistryActor {
    type Result = Option<GatewayView>;
    fn handle(&mut self, msg: GetGateway, _ctx: &mut Self::Context) -> Self::Result {
        self.view(msg.0)
    }
}

impl Handler<CountByStatus> for RegistryActor {
    type Result = MessageResult<CountByStatus>;
    fn handle(&mut self, _msg: CountByStatus, _ctx: &mut Self::Context) -> Self::Result {
        let mut counts: BTreeMap<GatewayStatus, usize> =
            GatewayStatus::ALL.into_iter().map(|s| (s, 0)).collect();
        for view in self.gateways.values() {
            *counts.entry(view.record.status).or_default() += 1;
        }
        MessageResult(counts)
    }
}

impl Handler<Ping> for RegistryActor {
    type Result = ();
    fn handle(&mut self, _msg: Ping, _ctx: &mut Self::Context) {}
}

impl Handler<CreateGateway> for RegistryActor {
    type Result = WriteResult<GatewayView>;

    fn handle(&mut self, msg: CreateGateway, _ctx: &mut Self::Context) -> Self::Result {
        let CreateGateway { mut new, by } = msg;
        if self.name_taken(&new.name, None) {
            return Self::refuse(RegistryError::DuplicateName(new.name));
        }
        new.is_primary = primary::primary_on_create(&self.records(), new.is_primary);
        let store = self.store.clone();
        Self::write(
            move || store.insert_gateway(&new, &by),
            |record, act| {
                info!(gateway_id = record.id, name = %record.name, primary = record.is_primary, "gateway created");
                Ok(act.apply_stored(record))
            },
        )
    }
}

impl Handler<UpdateGateway> for RegistryActor {
    type Result = WriteResult<GatewayView>;

    fn handle(&mut self, msg: UpdateGateway, _ctx: &mut Self::Context) -> Self::Result {
        let UpdateGateway { id, mut patch, by } = msg;
        let Some(current) = self.gateways.get(&id) else {
            return Self::refuse(RegistryError::NotFound(id));
        };
        if let Some(name) = &patch.name
            && self.name_taken(name, Some(id))
        {
            return Self::refuse(RegistryError::DuplicateName(name.clone()));
        }
        patch.is_primary = match primary::primary_on_update(&current.record, patch.is_primary) {
            Ok(change) => change,
            Err(rule) => return Self::refuse(rule.into()),
        };
        let store = self.store.clone();
        Self::write(
            move || store.update_gateway(id, &patch, &by),
            |record, act| {
                info!(gateway_id = record.id, name = %record.name, "gateway updated");
                Ok(act.apply_stored(record))
            },
        )
    }
}

impl Handler<DeleteGateway> for RegistryActor {
    type Result = WriteResult<()>;

    fn handle(&mut self, msg: DeleteGateway, _ctx: &mut Self::Context) -> Self::Result {
        let DeleteGateway { id, by } = msg;
        let Some(current) = self.gateways.get(&id) else {
            return Self::refuse(RegistryError::NotFound(id));
        };
        if let Err(rule) = primary::check_delete(&current.record) {
            return Self::refuse(rule.into());
        }
        let store = self.store.clone();
        Self::write(
            move || store.delete_gateway(id, &by),
            move |(), act| {
                info!(gateway_id = id, "gateway deleted");
                act.gateways.remove(&id);
                act.rebuild_snapshot();
                Ok(())
            },
        )
    }
}
