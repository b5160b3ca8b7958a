//! What a playbook acts with: the few fleet powers a step of a long-running job needs — what
//! this instance sees of a gateway ([`Facts`]), a call to it (fenced to a process when it is
//! destructive), a disruption budget's unit, a cordon, an audit row, and the suspension and
//! health checks the drain and restart steps share. A playbook gets these and nothing else of
//! the fleet: it cannot reach into another service's state (docs/design.md, *Fleet
//! operations*). Cheap to clone: its parts are shared.

use serde_json::{Value, json};
use std::sync::Arc;

use super::model::GatewayProgress;
use super::rule::Facts;
use crate::db::operations::Operation;
use crate::fleet::budget::{Budgets, DisruptionKind};
use crate::fleet::context::FleetContext;
use crate::fleet::gateway_ops::GatewayOps;
use crate::fleet::processes::Processes;
use crate::fleet::{FleetError, operation::DETAIL_MAX};
use gateway_supervisor_actors::bounded;
use gateway_supervisor_actors::labels::Labels;
use gateway_supervisor_actors::model::{Caller, GatewayId};

/// A gateway as the fleet sees it now.
#[derive(Debug, Clone)]
pub struct GatewayState {
    pub id: GatewayId,
    pub labels: Labels,
    /// Connected and healthy (where it is linked).
    pub up: bool,
    /// Its group's acting primary.
    pub acting_primary: bool,
}

/// The fleet powers a playbook's steps use.
#[derive(Clone)]
pub struct Hands {
    pub(super) ctx: Arc<FleetContext>,
    gateway_ops: GatewayOps,
    budgets: Budgets,
    /// The gateway processes this daemon runs (managed gateways), once they are handed over.
    processes: Arc<std::sync::OnceLock<Arc<dyn Processes>>>,
    /// Every write to a gateway of the last minute, whoever made it (its limit is the
    /// gateway's, not a playbook's).
    pacer: Arc<std::sync::Mutex<super::pace::Pacer>>,
}

impl Hands {
    pub(crate) fn new(ctx: Arc<FleetContext>, gateway_ops: GatewayOps, budgets: Budgets) -> Self {
        Hands {
            ctx,
            gateway_ops,
            budgets,
            processes: Arc::default(),
            pacer: Arc::default(),
        }
    }

    /// A write's turn under gateway `id`'s write limit (`pace.rs`): `Ok` (counted), or
    /// `Err(ms)` to wait before asking again.
    pub fn write_turn(&self, id: GatewayId) -> Result<(), i64> {
        let now = gateway_supervisor_actors::unix_now_ms();
        match self.pacer.lock() {
            Ok(mut pacer) => pacer.take(id, now),
            Err(_) => Ok(()),
        }
    }

    /// Hands over the gateway processes this daemon runs (at start, once).
    pub(super) fn run_processes_with(&self, processes: Arc<dyn Processes>) {
        let _ = self.processes.set(processes);
    }

    /// The gateway processes this daemon runs, when there are any to run.
    pub(super) fn processes(&self) -> Option<&dyn Processes> {
        self.processes.get().map(|p| &**p)
    }

    /// What this instance sees of gateway `id` now (from the shared view: no lock, no store).
    pub fn facts(&self, id: GatewayId) -> Facts {
        match self.ctx.target(id) {
            None => Facts::default(),
            Some(t) => Facts {
                exists: true,
                elsewhere: t.elsewhere,
                connected: t.link.is_some() && t.candidate.healthy,
                offers_hold: t.offers("update.hold"),
                offers_update: ["update.status", "update.run", "update.runs.get"]
                    .iter()
                    .all(|m| t.offers(m)),
                offers_config: t.offers("config.get") && t.offers("config.patch"),
                managed: self.processes().is_some_and(|p| p.runs(id)),
                boot_id: t.boot_id.clone(),
                version: t.version.clone(),
            },
        }
    }

    /// Every gateway as the fleet sees it now (any instance's word for one linked elsewhere),
    /// in id order.
    pub fn gateway_states(&self) -> Vec<GatewayState> {
        let mut all = Vec::new();
        self.ctx.targets().each(|t| {
            let c = t.candidate();
            all.push(GatewayState {
                id: c.id,
                labels: c.labels.clone(),
                up: c.healthy,
                acting_primary: c.acting_primary,
            });
        });
        all.sort_unstable_by_key(|g| g.id);
        all
    }

    /// Every gateway's id, name and labels (or only gateway `one`'s), in id order.
    pub fn gateway_labels(&self, one: Option<GatewayId>) -> Vec<(GatewayId, String, Labels)> {
        let mut all = Vec::new();
        let mut keep = |c: &gateway_supervisor_actors::selection::Candidate| {
            all.push((c.id, c.name.to_string(), c.labels.clone()));
        };
        match one {
            Some(id) => {
                if let Some(t) = self.ctx.target(id) {
                    keep(&t.candidate);
                }
            }
            None => self.ctx.targets().each(|t| keep(t.candidate())),
        }
        all.sort_unstable_by_key(|(id, _, _)| *id);
        all
    }

    /// The gateways this instance links, connected and healthy, as the shared view shows them
    /// now (no lock, no store, nothing copied: a target is shared, and replaced in the view
    /// when anything of its gateway changes).
    pub fn linked_here(&self) -> Vec<Arc<gateway_supervisor_actors::messages::GatewayTarget>> {
        let mut all = self.ctx.targets().linked_here();
        all.retain(|t| t.candidate.healthy);
        all
    }

    /// Whether gateway `id` can take a call now.
    pub fn reachable(&self, id: GatewayId) -> bool {
        self.ctx.reachable(id)
    }

    /// One call to gateway `id` (refused as any call is when it is not connected here, does not
    /// offer `method`, or is another instance's).
    pub async fn call(
        &self,
        id: GatewayId,
        method: &'static str,
        params: Value,
    ) -> Result<Value, FleetError> {
        self.ctx.call(id, method, params).await
    }

    /// One write to gateway `id` (`cron.remove`, `cron.run`: a call the gateway counts against
    /// its write limit), sent once its turn comes (`pace.rs`); refused as busy when the turn
    /// does not come within `wait` (a step that can come back later asks [`Hands::write_turn`]
    /// instead).
    pub async fn write(
        &self,
        id: GatewayId,
        method: &'static str,
        params: Value,
        wait: std::time::Duration,
    ) -> Result<Value, FleetError> {
        let deadline = tokio::time::Instant::now() + wait;
        while let Err(ms) = self.write_turn(id) {
            let at = tokio::time::Instant::now()
                + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(1));
            if at > deadline {
                return Err(FleetError::Busy {
                    message: format!(
                        "gateway {id} has had its {} writes of the minute; try again in {}s",
                        super::pace::LIMIT,
                        (ms + 999) / 1000
                    ),
                    details: json!({"gateway_id": id, "retry_after_ms": ms}),
                });
            }
            tokio::time::sleep_until(at).await;
        }
        self.ctx.call(id, method, params).await
    }

    /// One destructive call, sent only to process `boot_id`.
    pub(super) async fn call_fenced(
        &self,
        id: GatewayId,
        method: &'static str,
        params: Value,
        boot_id: &str,
    ) -> Result<Value, FleetError> {
        self.ctx
            .call_fenced(id, method, params, Some(boot_id))
            .await
    }

    /// Writes an audit row of a step carried out on gateway `id` (a storage failure is logged:
    /// the step itself happened).
    pub async fn audited(&self, by: &Caller, action: &'static str, id: GatewayId, details: Value) {
        self.ctx
            .audited(by, action, ("gateway", id.to_string()), details)
            .await;
    }

    /// Whether the disruption budgets let `op` take gateway `p` out of service (as `kind`,
    /// holding the unit at most `hold`) now; when they do not, it waits, saying which budget
    /// holds it.
    pub async fn within_budget(
        &self,
        op: &Operation,
        p: &mut GatewayProgress,
        kind: DisruptionKind,
        hold: std::time::Duration,
        by: &Caller,
    ) -> Result<bool, FleetError> {
        match self
            .budgets
            .admit_disruption(p.gateway_id, kind, Some(op.id.as_str()), by, hold)
            .await
        {
            Ok(()) => Ok(true),
            Err(FleetError::Disruption { message, .. }) => {
                p.detail = Some(bounded::text(&format!("waiting: {message}"), DETAIL_MAX));
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Ends `op`'s disruption of gateway `id` (its step there is over).
    pub(super) async fn release_disruption(&self, op: &Operation, id: GatewayId) {
        self.budgets
            .release_disruption(id, Some(op.id.as_str()))
            .await;
    }

    /// Takes gateway `id` out of service (`true`) or puts it back.
    pub(super) async fn cordon(
        &self,
        id: GatewayId,
        cordoned: bool,
        by: &Caller,
    ) -> Result<(), FleetError> {
        self.gateway_ops.cordon(id, cordoned, by).await.map(drop)
    }

    /// Puts a suspension this daemon made on record (a drain alone leaves it held).
    pub(super) async fn record_suspension(
        &self,
        id: GatewayId,
        suspension_id: String,
        by: &Caller,
    ) -> Result<(), FleetError> {
        self.gateway_ops
            .record_suspension(id, Some(suspension_id), by)
            .await
    }

    /// Releases suspension `sid` on gateway `id`: `Err` when the gateway refused (its words)
    /// or the call failed. `resumed: false` is no refusal: nothing held any more (it lapsed,
    /// or an earlier round whose record was lost released it).
    pub(super) async fn release(&self, id: GatewayId, sid: &str) -> Result<(), String> {
        match self
            .call(id, "gateway.suspend.resume", json!({"suspensionId": sid}))
            .await
        {
            Ok(a) if a.get("ok").and_then(Value::as_bool) != Some(false) => Ok(()),
            Ok(a) => {
                let said = a.get("reason").and_then(Value::as_str).unwrap_or("no");
                Err(format!("the gateway refused ({})", bounded::text(said, 80)))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Whether a restarted gateway is back: its `health` RPC answers and its `/readyz` 2xx.
    /// `Err`: what is missing, in words.
    pub(super) async fn check_back(&self, id: GatewayId) -> Result<(), String> {
        self.call(id, "health", json!({}))
            .await
            .map_err(|e| format!("the `health` call failed: {e}"))?;
        let link = self
            .ctx
            .target(id)
            .and_then(|t| t.link.clone())
            .ok_or("not connected")?;
        if link.ready().await {
            Ok(())
        } else {
            Err("`/readyz` did not answer 2xx".into())
        }
    }
}
