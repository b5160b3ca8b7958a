//! What the fleet's use cases did, counted for `/metrics`: every spawn request and how each
//! spawn ended, every session action and every gateway operation, by outcome. Every label
//! value comes from a fixed set: the use case's own names, [`SpawnStatus`], and
//! each service error's outcome ([`ServiceError::outcome`]).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use prometheus::{CounterVec, IntCounterVec, Opts, Registry};

use super::ServiceError;
use super::operation::model::{OperationKind, OperationState};
use crate::domain::SpawnStatus;

#[derive(Clone)]
pub struct FleetCounters {
    spawns: IntCounterVec,
    spawns_finished: IntCounterVec,
    session_controls: IntCounterVec,
    gateway_operations: IntCounterVec,
    operations_finished: IntCounterVec,
    spend_admissions: IntCounterVec,
    spend_settled: CounterVec,
    /// The tenants that have a series (`tenant` label values), at most [`MAX_TENANT_SERIES`].
    tenants: Arc<Mutex<HashSet<String>>>,
}

/// Tenants given their own series; the rest are counted as `other`. A tenant is an admin's
/// label value (a DNS label), not a peer's: bounded so that a fleet of many tenants cannot
/// grow `/metrics` without end.
pub const MAX_TENANT_SERIES: usize = 100;

/// The outcome label of a use case's result.
fn outcome<T, E: ServiceError>(result: &Result<T, E>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.outcome(),
    }
}

impl FleetCounters {
    pub fn new() -> Result<Self, prometheus::Error> {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels)
        };
        Ok(FleetCounters {
            spawns: counter(
                "spawns_total",
                "Spawn requests by outcome (ok: a gateway took it).",
                &["outcome"],
            )?,
            spawns_finished: counter(
                "spawns_finished_total",
                "Spawns that ended, by final status.",
                &["status"],
            )?,
            session_controls: counter(
                "session_controls_total",
                "Session actions (pause, resume, kill) by outcome.",
                &["action", "outcome"],
            )?,
            gateway_operations: counter(
                "gateway_operations_total",
                "Gateway operations (suspend, resume, restart) by outcome.",
                &["operation", "outcome"],
            )?,
            operations_finished: counter(
                "operations_finished_total",
                "Fleet operations (drain, rolling_restart) that ended, by final state.",
                &["kind", "state"],
            )?,
            spend_admissions: counter(
                "spend_admissions_total",
                "Spawns checked against their key's and tenant's spend budgets, by tenant (the first 100 seen; then `other`) and outcome (admitted, over_budget).",
                &["tenant", "outcome"],
            )?,
            spend_settled: CounterVec::new(
                Opts::new(
                    "spend_settled_cost_usd_total",
                    "US dollars of runs settled at their gateway's own number, by tenant (the first 100 seen; then `other`).",
                ),
                &["tenant"],
            )?,
            tenants: Arc::default(),
        })
    }

    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        for vec in [
            &self.spawns,
            &self.spawns_finished,
            &self.session_controls,
            &self.gateway_operations,
            &self.operations_finished,
            &self.spend_admissions,
        ] {
            registry.register(Box::new(vec.clone()))?;
        }
        registry.register(Box::new(self.spend_settled.clone()))
    }

    /// `tenant` as a label value: itself while fewer than [`MAX_TENANT_SERIES`] have series.
    fn tenant_label(&self, tenant: &str) -> String {
        let mut seen = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(tenant) || seen.len() < MAX_TENANT_SERIES {
            seen.insert(tenant.to_owned());
            tenant.to_owned()
        } else {
            "other".to_owned()
        }
    }

    /// A spawn checked against its budgets: admitted or not.
    pub(super) fn spend_admission(&self, tenant: &str, admitted: bool) {
        let outcome = if admitted { "admitted" } else { "over_budget" };
        self.spend_admissions
            .with_label_values(&[self.tenant_label(tenant).as_str(), outcome])
            .inc();
    }

    /// A run settled at `usd`, its gateway's number.
    pub(super) fn spend_settled(&self, tenant: &str, usd: f64) {
        self.spend_settled
            .with_label_values(&[self.tenant_label(tenant).as_str()])
            .inc_by(usd);
    }

    pub(super) fn spawn<T, E: ServiceError>(&self, result: &Result<T, E>) {
        self.spawns.with_label_values(&[outcome(result)]).inc();
    }

    pub(crate) fn operation_finished(&self, kind: OperationKind, state: OperationState) {
        self.operations_finished
            .with_label_values(&[kind.as_str(), state.as_str()])
            .inc();
    }

    pub(super) fn spawn_finished(&self, status: SpawnStatus) {
        self.spawns_finished
            .with_label_values(&[status.as_str()])
            .inc();
    }

    pub(super) fn session_control<T, E: ServiceError>(
        &self,
        action: &'static str,
        result: &Result<T, E>,
    ) {
        self.session_controls
            .with_label_values(&[action, outcome(result)])
            .inc();
    }

    pub(super) fn gateway_operation<T, E: ServiceError>(
        &self,
        operation: &'static str,
        result: &Result<T, E>,
    ) {
        self.gateway_operations
            .with_label_values(&[operation, outcome(result)])
            .inc();
    }
}
