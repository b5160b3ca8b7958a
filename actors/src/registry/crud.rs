//! Gateway writes (create, update, delete): checked against memory and the primary rules,
//! written through the store while the registry holds its mailbox, then applied to memory and
//! announced; a new address or credential restarts the gateway's link.

use crate::events::EventKind;
use actix::prelude::*;
use tracing::info;

use super::messages::{
    CreateGateway, DeleteGateway, PatchLabels, RegistryError, SetCordon, SetMaintenance,
    SetSuspension, UpdateGateway,
};
use super::{RegistryActor, WriteResult};
use crate::model::GatewayView;
use crate::primary;

impl Handler<CreateGateway> for RegistryActor {
    type Result = WriteResult<GatewayView>;

    fn handle(&mut self, msg: CreateGateway, _ctx: &mut Self::Context) -> Self::Result {
        let CreateGateway { mut new, by } = msg;
        if self.name_taken(&new.name, None) {
            return Self::refuse(RegistryError::DuplicateName(new.name));
        }
        if let Err(taken) = self.address_taken(&new.host, new.port, None) {
            return Self::refuse(taken);
        }
        new.is_primary = primary::primary_on_create(self.gateways.is_empty(), new.is_primary);
        let store = self.store.clone();
        Self::write(
            move || store.insert_gateway(&new, &by),
            |record, act, ctx| {
                info!(gateway_id = record.id, name = %record.name, primary = record.is_primary, "gateway created");
                let id = record.id;
                act.events.publish(
                    EventKind::GatewayChanged,
                    Some(id),
                    serde_json::json!({"action": "created", "name": record.name, "labels": record.labels}),
                );
                let view = act.apply_stored(record);
                act.start_link(id, ctx);
                Ok(view)
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
        if patch.host.is_some() || patch.port.is_some() {
            let host = patch.host.as_deref().unwrap_or(&current.record.host);
            let port = patch.port.unwrap_or(current.record.port);
            if let Err(taken) = self.address_taken(host, port, Some(id)) {
                return Self::refuse(taken);
            }
        }
        patch.is_primary = match primary::primary_on_update(&current.record, patch.is_primary) {
            Ok(change) => change,
            Err(rule) => return Self::refuse(rule.into()),
        };
        // A new address or credential (or a new name, the link's metric label) restarts the link.
        let restart = patch.changes_link() || patch.name.is_some();
        let token_changed = patch.token.is_some();
        // The row read back carries the link's facts as the batched writer last saved them
        // (often `unknown` just after connecting): a change that leaves the link running and
        // sets none of them keeps the live ones, or the gateway would read `unknown` until
        // its status next changed.
        let keep_live = !restart && !patch.sets_live_facts();
        let store = self.store.clone();
        Self::write(
            move || store.update_gateway(id, &patch, &by),
            move |record, act, ctx| {
                info!(gateway_id = record.id, name = %record.name, restart_link = restart, "gateway updated");
                act.events.publish(
                    EventKind::GatewayChanged,
                    Some(id),
                    serde_json::json!({"action": "updated", "name": record.name, "labels": record.labels}),
                );
                let view = if keep_live {
                    act.apply_setting(record)
                } else {
                    act.apply_stored(record)
                };
                if restart && act.links.contains_key(&id) {
                    act.stop_link(id);
                    act.start_link_with(id, token_changed, ctx);
                }
                Ok(view)
            },
        )
    }
}

impl Handler<PatchLabels> for RegistryActor {
    type Result = WriteResult<GatewayView>;

    fn handle(&mut self, msg: PatchLabels, _ctx: &mut Self::Context) -> Self::Result {
        let PatchLabels { id, patch, by } = msg;
        if !self.gateways.contains_key(&id) {
            return Self::refuse(RegistryError::NotFound(id));
        }
        let store = self.store.clone();
        Self::write(
            move || store.patch_labels(id, &patch, &by),
            move |record, act, _ctx| {
                info!(gateway_id = id, labels = %record.labels, "gateway labels changed");
                act.events.publish(
                    EventKind::GatewayChanged,
                    Some(id),
                    serde_json::json!({"action": "labels", "name": record.name, "labels": record.labels}),
                );
                Ok(act.apply_setting(record))
            },
        )
    }
}

impl Handler<SetMaintenance> for RegistryActor {
    type Result = WriteResult<Option<GatewayView>>;

    fn handle(&mut self, msg: SetMaintenance, _ctx: &mut Self::Context) -> Self::Result {
        let SetMaintenance {
            id,
            maintenance,
            expired_by,
            by,
        } = msg;
        if !self.gateways.contains_key(&id) {
            return Self::refuse(RegistryError::NotFound(id));
        }
        let store = self.store.clone();
        Self::write(
            move || store.set_maintenance(id, maintenance.as_ref(), expired_by, &by),
            move |record, act, _ctx| {
                let Some(record) = record else {
                    return Ok(None);
                };
                let reason = record.maintenance.as_ref().map(|m| m.reason.clone());
                info!(
                    gateway_id = id,
                    in_maintenance = reason.is_some(),
                    "gateway maintenance changed"
                );
                act.events.publish(
                    EventKind::GatewayChanged,
                    Some(id),
                    serde_json::json!({"action": if reason.is_some() { "maintenance" } else { "maintenance_ended" },
                        "name": record.name, "maintenance": record.maintenance}),
                );
                // Held back: it acts as primary no longer and takes no spawns.
                Ok(Some(act.apply_setting(record)))
            },
        )
    }
}

impl Handler<SetSuspension> for RegistryActor {
    type Result = WriteResult<GatewayView>;

    fn handle(&mut self, msg: SetSuspension, _ctx: &mut Self::Context) -> Self::Result {
        let SetSuspension {
            id,
            suspension_id,
            by,
        } = msg;
        if !self.gateways.contains_key(&id) {
            return Self::refuse(RegistryError::NotFound(id));
        }
        let store = self.store.clone();
        Self::write(
            move || store.set_suspension(id, suspension_id.as_deref(), &by),
            move |record, act, _ctx| {
                info!(
                    gateway_id = id,
                    suspended = record.suspension_id.is_some(),
                    "gateway suspension recorded"
                );
                // A suspended gateway acts as primary no longer (and takes no spawns).
                Ok(act.apply_setting(record))
            },
        )
    }
}

impl Handler<SetCordon> for RegistryActor {
    type Result = WriteResult<GatewayView>;

    fn handle(&mut self, msg: SetCordon, _ctx: &mut Self::Context) -> Self::Result {
        let SetCordon { id, cordoned, by } = msg;
        if !self.gateways.contains_key(&id) {
            return Self::refuse(RegistryError::NotFound(id));
        }
        let store = self.store.clone();
        Self::write(
            move || store.set_cordon(id, cordoned, &by),
            move |record, act, _ctx| {
                info!(gateway_id = id, cordoned, "gateway cordon changed");
                act.events.publish(
                    EventKind::GatewayChanged,
                    Some(id),
                    serde_json::json!({"action": if cordoned { "cordoned" } else { "uncordoned" }, "name": record.name}),
                );
                // A cordoned gateway acts as primary no longer (and takes no spawns).
                Ok(act.apply_setting(record))
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
            move |(), act, _ctx| {
                info!(gateway_id = id, "gateway deleted");
                act.events.publish(
                    EventKind::GatewayChanged,
                    Some(id),
                    serde_json::json!({"action": "deleted"}),
                );
                act.stop_link(id);
                if let Some(links) = &act.link_ctx {
                    links.metrics.forget(id);
                }
                act.gateways.remove(&id);
                act.records_changed();
                act.refresh_roles();
                Ok(())
            },
        )
    }
}
