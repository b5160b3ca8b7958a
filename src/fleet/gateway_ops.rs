//! Cordon and uncordon a gateway (a stored setting). Suspend, resume and restart a whole gateway
//! with its own methods
//! (`gateway.suspend.prepare`, `gateway.suspend.resume`, `gateway.restart.request`). A gateway's
//! refusal (busy with active work) is `FleetError::Busy` with its reasons. A suspension is a
//! stored gateway state (its id, with an audit row), so a restarted daemon can still resume it
//! and a second suspend cannot orphan the first.

use gateway_supervisor_actors::events::EventKind;
use serde_json::{Value, json};

use super::FleetError;
use super::budget::DisruptionKind;
use crate::secrets::random_hex;
use gateway_supervisor_actors::messages::{SetCordon, SetMaintenance, SetSuspension};
use gateway_supervisor_actors::model::GatewayView;
use gateway_supervisor_actors::model::{Caller, GatewayId};
use gateway_supervisor_actors::protocol::frames::ErrorShape;
use gateway_supervisor_actors::protocol::suspend::SuspendStatus;
use std::sync::Arc;

use super::budget::Budgets;
use super::context::FleetContext;

mod rotate;
pub use rotate::Rotated;

/// Another client's suspension holds gateway `id` (the gateway does not say whose, nor its id,
/// so this daemon cannot release it): it lapses at `expiresAtMs` unless its client renews it.
/// How long a suspend asked through the API holds a budget's unit before its suspension is on
/// record (and counts by itself).
const SUSPEND_HOLD: std::time::Duration = std::time::Duration::from_secs(60);
/// How long a restart asked through the API counts as a disruption: a restart takes seconds
/// (2026.9.6 expects 1.5 s), and the gateway's status counts it while it is down longer.
const RESTART_HOLD: std::time::Duration = std::time::Duration::from_secs(30);

fn another_suspension(id: GatewayId, refused: &ErrorShape) -> FleetError {
    let lapses = refused
        .details
        .as_ref()
        .and_then(|d| d.get("expiresAtMs"))
        .and_then(Value::as_i64);
    FleetError::Busy {
        message: format!(
            "gateway {id} is suspended by another client (not through this daemon){}: it lapses \
             unless that client renews it, or a restart of the gateway ends it",
            lapses
                .and_then(|ms| u64::try_from(ms / 1000).ok())
                .and_then(|s| std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(s)))
                .map(|t| format!(" until {}", humantime::format_rfc3339_seconds(t)))
                .unwrap_or_default()
        ),
        details: json!({"gateway_id": id, "suspended_by": "another client", "expires_at_ms": lapses}),
    }
}

/// One gateway taken out of service and back: suspend, resume, restart (each through the
/// disruption budgets), cordon and maintenance.
#[derive(Clone)]
pub struct GatewayOps {
    ctx: Arc<FleetContext>,
    budgets: Budgets,
}

impl GatewayOps {
    pub fn new(ctx: Arc<FleetContext>, budgets: Budgets) -> Self {
        GatewayOps { ctx, budgets }
    }
    /// Gateway `id` as the registry holds it.
    async fn view(&self, id: GatewayId) -> Result<GatewayView, FleetError> {
        self.ctx
            .gateways()
            .get(id)
            .await?
            .ok_or(FleetError::NotFound(id))
    }

    /// The suspension this daemon recorded on gateway `id`, if any.
    async fn suspension_of(&self, id: GatewayId) -> Result<Option<String>, FleetError> {
        Ok(self.view(id).await?.record.suspension_id)
    }

    /// Stores (or clears) the suspension, with its audit row.
    pub(super) async fn record_suspension(
        &self,
        id: GatewayId,
        suspension_id: Option<String>,
        by: &Caller,
    ) -> Result<(), FleetError> {
        self.ctx
            .record(SetSuspension {
                id,
                suspension_id,
                by: by.clone(),
            })
            .await
            .map(|_| ())
    }

    /// Suspends the gateway and stores its suspension id for [`Fleet::resume`].
    #[tracing::instrument(name = "gateway.suspend", skip_all, fields(gateway_id = ?id))]
    pub async fn suspend(&self, id: GatewayId, by: &Caller) -> Result<Value, FleetError> {
        let result = self.suspend_now(id, by).await;
        self.ctx.counters.gateway_operation("suspend", &result);
        result
    }

    async fn suspend_now(&self, id: GatewayId, by: &Caller) -> Result<Value, FleetError> {
        // Forwarded before anything here: the instance that links the gateway records its
        // suspension (this one's view of the record may lag the cluster's change feed), and a
        // budget unit held here for a forwarded request would be spent twice meanwhile.
        let reached = self.ctx.reach(id, "gateway.suspend.prepare").await?;
        if let Some(sid) = self.suspension_of(id).await? {
            return Err(FleetError::Busy {
                message: format!(
                    "gateway {id} is already suspended through this daemon (suspension {sid}); resume it first"
                ),
                details: json!({"gateway_id": id, "suspension_id": sid}),
            });
        }
        // The gateway deduplicates suspensions by this id.
        let request_id = random_hex::<16>().map_err(FleetError::Random)?;
        // Recorded once it is suspended, it counts as out of service by its suspension.
        self.budgets
            .admit_disruption(id, DisruptionKind::Suspend, None, by, SUSPEND_HOLD)
            .await?;
        let params = json!({"requestId": request_id});
        let answer = match self
            .ctx
            .send(reached, None, "gateway.suspend.prepare", params)
            .await
        {
            Ok(answer) => answer,
            Err(e) => {
                self.budgets.release_disruption(id, None).await;
                return Err(match e.suspension_conflict() {
                    Some(refused) => another_suspension(id, refused),
                    None => e,
                });
            }
        };
        if SuspendStatus::of(&answer) == SuspendStatus::Busy {
            self.budgets.release_disruption(id, None).await;
            let reason = answer
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("busy");
            return Err(FleetError::Busy {
                message: format!("gateway {id} refused to suspend: {reason}"),
                details: answer,
            });
        }
        match answer.get("suspensionId").and_then(Value::as_str) {
            Some(sid) => {
                let sid = gateway_supervisor_actors::bounded::text(sid, 128);
                self.record_suspension(id, Some(sid), by).await?;
                // On record, its suspension counts it out of service from now on.
                self.budgets.release_disruption(id, None).await;
            }
            // Nothing to resume it by later; the action is still on record.
            None => {
                self.ctx
                    .audited(
                        by,
                        "gateway.suspend",
                        ("gateway", id.to_string()),
                        json!({"request_id": request_id, "suspension_id": null}),
                    )
                    .await;
            }
        }
        self.ctx.events.publish(
            EventKind::GatewayStatus,
            Some(id),
            json!({"suspension": "prepared"}),
        );
        Ok(answer)
    }

    /// Resumes a gateway this daemon suspended.
    #[tracing::instrument(name = "gateway.resume", skip_all, fields(gateway_id = ?id))]
    pub async fn resume(&self, id: GatewayId, by: &Caller) -> Result<Value, FleetError> {
        let result = self.resume_now(id, by).await;
        self.ctx.counters.gateway_operation("resume", &result);
        result
    }

    async fn resume_now(&self, id: GatewayId, by: &Caller) -> Result<Value, FleetError> {
        // Forwarded first: the suspension is on record at the instance that made it, which
        // links the gateway; this one may not have heard of it yet (it answered "nothing to
        // resume" to a resume sent right after the suspend, in the cluster suite).
        let reached = self.ctx.reach(id, "gateway.suspend.resume").await?;
        let sid = self.suspension_of(id).await?;
        let sid = sid.ok_or_else(|| FleetError::Busy {
            message: format!("gateway {id} has no suspension made through this daemon to resume"),
            details: json!({"gateway_id": id}),
        })?;
        let params = json!({"suspensionId": sid});
        let answer = self
            .ctx
            .send(reached, None, "gateway.suspend.resume", params)
            .await?;
        self.record_suspension(id, None, by).await?;
        self.budgets.release_disruption(id, None).await;
        self.ctx.events.publish(
            EventKind::GatewayStatus,
            Some(id),
            json!({"suspension": "resumed"}),
        );
        Ok(answer)
    }

    /// Asks the gateway to restart itself; `by` is named in the gateway's own log and audited.
    /// `expected_boot_id`: only if the gateway is still that process (the one the caller saw).
    #[tracing::instrument(name = "gateway.restart", skip_all, fields(gateway_id = ?id))]
    pub async fn restart(
        &self,
        id: GatewayId,
        expected_boot_id: Option<&str>,
        by: &Caller,
    ) -> Result<Value, FleetError> {
        let result = self.restart_now(id, expected_boot_id, by).await;
        self.ctx.counters.gateway_operation("restart", &result);
        result
    }

    async fn restart_now(
        &self,
        id: GatewayId,
        expected_boot_id: Option<&str>,
        by: &Caller,
    ) -> Result<Value, FleetError> {
        let reason = format!("requested through gateway-supervisor by {}", by.label);
        // Forwarded before anything here, as a suspend is: a budget unit held here for a
        // restart the linking instance carries out would count twice meanwhile.
        let method = "gateway.restart.request";
        let reached = self.ctx.reach(id, method).await?;
        let process = FleetContext::fence(id, &reached, expected_boot_id)?;
        self.budgets
            .admit_disruption(id, DisruptionKind::Restart, None, by, RESTART_HOLD)
            .await?;
        let params = json!({"reason": reason});
        let answer = match self.ctx.send(reached, process, method, params).await {
            Ok(answer) => answer,
            Err(e) => {
                self.budgets.release_disruption(id, None).await;
                return Err(e);
            }
        };
        if answer.get("ok").and_then(Value::as_bool) == Some(false) {
            return Err(FleetError::Busy {
                message: format!("gateway {id} refused to restart"),
                details: answer,
            });
        }
        self.ctx
            .audited(
                by,
                "gateway.restart",
                ("gateway", id.to_string()),
                json!({}),
            )
            .await;
        Ok(answer)
    }

    /// Cordons the gateway (its work goes on; no new spawn is routed to it and it does not act
    /// as primary) or uncordons it. A stored setting, not a gateway call: any instance of a
    /// cluster records it, and every instance sees it through the database.
    #[tracing::instrument(name = "gateway.cordon", skip_all, fields(gateway_id = ?id))]
    pub async fn cordon(
        &self,
        id: GatewayId,
        cordoned: bool,
        by: &Caller,
    ) -> Result<GatewayView, FleetError> {
        let result = self
            .ctx
            .record(SetCordon {
                id,
                cordoned,
                by: by.clone(),
            })
            .await;
        let operation = if cordoned { "cordon" } else { "uncordon" };
        self.ctx.counters.gateway_operation(operation, &result);
        result
    }

    /// Puts the gateway in maintenance (held back like a cordon, its alerts suppressed, the
    /// reason shown) or ends it. A stored setting: any instance records it.
    #[tracing::instrument(name = "gateway.maintenance", skip_all, fields(gateway_id = ?id))]
    pub async fn maintenance(
        &self,
        id: GatewayId,
        maintenance: Option<gateway_supervisor_actors::model::Maintenance>,
        by: &Caller,
    ) -> Result<GatewayView, FleetError> {
        let operation = if maintenance.is_some() {
            "maintenance"
        } else {
            "maintenance_end"
        };
        let sent = self
            .ctx
            .registry
            .send(SetMaintenance {
                id,
                maintenance,
                expired_by: None,
                by: by.clone(),
            })
            .await;
        let result = match sent {
            Ok(Ok(Some(view))) => Ok(view),
            Ok(Ok(None)) => Err(FleetError::NotFound(id)),
            Ok(Err(e)) => Err(FleetError::Record(e)),
            Err(e) => Err(FleetError::Registry(e)),
        };
        self.ctx.counters.gateway_operation(operation, &result);
        result
    }

    /// Ends every maintenance window that has run out (`until` passed), each once, audited as
    /// the daemon's. Run every few seconds by the daemon.
    pub async fn expire_maintenance(&self, now: i64) {
        let Ok(over) = self
            .ctx
            .gateways()
            .subset(crate::gateway_reads::Subset::MaintenanceOverBy(now))
            .await
        else {
            return;
        };
        let due: Vec<GatewayId> = over.iter().map(|v| v.record.id).collect();
        for id in due {
            let ended = self
                .ctx
                .registry
                .send(SetMaintenance {
                    id,
                    maintenance: None,
                    expired_by: Some(now),
                    by: Caller::system("maintenance window ended"),
                })
                .await;
            match ended {
                Ok(Ok(Some(_))) => {
                    tracing::info!(gateway_id = id.get(), "maintenance window ended")
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(gateway_id = id.get(), %e, "could not end a maintenance window")
                }
                Err(e) => {
                    tracing::warn!(gateway_id = id.get(), %e, "could not end a maintenance window")
                }
            }
        }
    }
}
