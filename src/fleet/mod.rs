//! The fleet: use cases that reach gateways, one call each for the HTTP handlers — spawns and
//! their tracking, session control, gateway operations (suspend, resume, restart) and agent
//! sync. Which gateway takes a call, whether it can, how long it may take (from
//! configuration: [`Deadlines`]) and what its answer means are decided here, once; the
//! handlers only validate their input and shape the envelope (docs/design.md,
//! *Architecture*).

pub mod agents;
pub mod budget;
mod counters;
mod gateway_ops;
pub mod log_tail;
pub mod operation;
pub mod processes;
pub mod sessions;
pub mod spawn;
pub mod usage;
pub mod versions;
pub mod watchdog;

use std::time::Duration;

use actix::Addr;
use serde_json::Value;

use gateway_supervisor_actors::RegistryActor;
use gateway_supervisor_actors::events::EventBus;
use gateway_supervisor_actors::messages::{CallError, GatewayLink, GatewayTarget};
use gateway_supervisor_actors::model::{Caller, GatewayId};
use gateway_supervisor_actors::registry::SharedTargets;
use gateway_supervisor_actors::selection::NoGateway;

pub use counters::FleetCounters;

/// How long a gateway may take to answer (`gateways.rpc_timeout`, `gateways.operation_timeout`).
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// A call: a spawn, a session action, a list, a reply.
    pub call: Duration,
    /// A gateway operation (suspend, resume, restart): a suspend waits for the gateway to drain.
    pub operation: Duration,
}

/// Why a use case could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("gateway {0} not found")]
    NotFound(GatewayId),
    #[error("gateway `{name}` is not connected")]
    NotConnected { name: String },
    #[error("gateway `{name}` does not offer `{method}`")]
    Unsupported {
        id: GatewayId,
        name: String,
        method: &'static str,
    },
    /// The gateway refused for now (busy with work, nothing to resume); its answer is kept.
    #[error("{message}")]
    Busy { message: String, details: Value },
    /// A disruption budget refuses taking the gateway out of service now (`details`: the
    /// budget, the gateway, the kind).
    #[error("{message}")]
    Disruption {
        message: String,
        details: Value,
        retry_after_secs: u64,
    },
    #[error("the call to gateway `{name}` failed: {source}")]
    Call {
        name: String,
        #[source]
        source: CallError,
    },
    #[error("session `{0}` not found on any connected gateway")]
    SessionNotFound(String),
    /// The key is on several gateways; the request must say which (`?gateway_id=`).
    #[error("session `{key}` exists on {} gateways; say which with ?gateway_id=", gateways.len())]
    AmbiguousSession {
        key: String,
        gateways: Vec<(GatewayId, String)>,
    },
    #[error("gateway `{name}` that owns session `{key}` is not connected")]
    SessionOwnerNotConnected { name: String, key: String },
    /// The gateway owning the session has no way to carry out the action.
    #[error(
        "gateway `{name}` (OpenClaw {version}) has no per-session {action}; alternatives: kill the session, or suspend the whole gateway with POST /api/gateways/{id}/suspend"
    )]
    NoSessionControl {
        id: GatewayId,
        name: String,
        version: String,
        action: &'static str,
    },
    /// The request named a gateway process (`expected_boot_id`) and the gateway's release does
    /// not report one.
    #[error(
        "gateway `{name}` (OpenClaw {version}) does not report which process it is (no bootId), so expected_boot_id cannot be checked; send the request without it"
    )]
    ProcessUnverifiable {
        id: GatewayId,
        name: String,
        version: String,
    },
    /// No gateway is the acting primary in this instance's view: none is registered, or none of
    /// the `registered` ones has been elected (none healthy, or the election's word has not
    /// reached this instance yet).
    #[error("{}", no_primary(*registered))]
    NoPrimary { registered: usize },
    #[error("the primary gateway `{name}` is not connected")]
    PrimaryNotConnected { name: String },
    #[error("storage failed: {0}")]
    Storage(#[source] crate::db::DbError),
    #[error("the storage call did not finish: {0}")]
    Interrupted(#[source] tokio::task::JoinError),
    #[error("the registry is unavailable: {0}")]
    Registry(#[source] actix::MailboxError),
    /// The registry refused or failed to record what the gateway did.
    #[error("recording it failed: {0}")]
    Record(#[source] gateway_supervisor_actors::messages::RegistryError),
    #[error("no randomness for a request id: {0}")]
    Random(#[source] crate::secrets::SecretsError),
    /// A client idempotency key already used for a different request.
    #[error(
        "this Idempotency-Key was already used for spawn {spawn_id} with a different request; send a new key for a new request"
    )]
    IdempotencyKeyReused { spawn_id: String },
    /// No gateway can take the spawn (`selection::select`'s reason).
    #[error("{0}")]
    NoGateway(#[source] NoGateway),
    /// The key was not found here and some instances of the cluster did not say whether they
    /// have it: acting on a guess could hit the wrong session.
    #[error(
        "instance(s) {} did not answer whether their gateways have session `{key}`; retry, or name the gateway with ?gateway_id=", instances.join(", ")
    )]
    SessionUnheard { key: String, instances: Vec<String> },
    /// The agent spent its daily budget.
    #[error(
        "agent `{}` spent its daily budget: ${:.2} of ${:.2} on {} (UTC); new spawns are refused until the day is over or usage.budgets.{}.daily_usd is raised",
        .0.agent, .0.spent_usd, .0.budget_usd, .0.day, .0.agent
    )]
    OverBudget(usage::rollup::OverBudget),
    /// Another instance of the cluster links the gateway: the action is its to carry out.
    #[error("gateway {id} is linked by instance `{}`", .owner.instance)]
    LinkedElsewhere { id: GatewayId, owner: Owner },
}

/// Why there is no acting primary, by how many gateways are registered.
fn no_primary(registered: usize) -> String {
    match registered {
        0 => "no gateway is registered".to_owned(),
        n => format!(
            "none of the {n} registered gateway(s) is the acting primary yet: one is elected among the healthy ones (GET /api/gateways shows each one's status)"
        ),
    }
}

/// The instance that links a gateway (the holder of its lease) and where it listens.
#[derive(Debug, Clone)]
pub struct Owner {
    pub instance: String,
    pub url: Option<String>,
}

impl FleetError {
    /// Refused: a running operation already holds gateway `gateway_id`.
    pub fn held(gateway_id: i64, operation_id: &str) -> Self {
        FleetError::Busy {
            message: format!(
                "gateway {gateway_id} is already in running operation {operation_id}; wait for it to end"
            ),
            details: serde_json::json!({"gateway_id": gateway_id, "operation_id": operation_id}),
        }
    }

    /// The gateway's own refusal of the call, if that is what this is.
    pub fn refusal(&self) -> Option<&gateway_supervisor_actors::protocol::frames::ErrorShape> {
        match self {
            FleetError::Call {
                source: CallError::Gateway(refused),
                ..
            } => Some(refused),
            _ => None,
        }
    }

    /// The gateway's refusal when another suspension, not the caller's, holds it (2026.9.6
    /// says so as an error, `gateway-suspension-conflict`, not as an answer).
    pub fn suspension_conflict(
        &self,
    ) -> Option<&gateway_supervisor_actors::protocol::frames::ErrorShape> {
        use gateway_supervisor_actors::protocol::suspend::SuspendStatus;
        match self {
            FleetError::Call {
                source: CallError::Gateway(refused),
                ..
            } if SuspendStatus::of_refusal(refused) == Some(SuspendStatus::Conflict) => {
                Some(refused)
            }
            _ => None,
        }
    }

    /// A process condition ([`fenced_process`]) gateway `id`'s release gives no way to check.
    fn unverifiable(id: GatewayId, name: &str, version: Option<&str>) -> Self {
        FleetError::ProcessUnverifiable {
            id,
            name: name.to_owned(),
            version: version.unwrap_or("unknown").to_owned(),
        }
    }

    /// A fixed word for what went wrong (the `outcome` label of the fleet's counters).
    pub fn outcome(&self) -> &'static str {
        match self {
            FleetError::NotFound(_) | FleetError::SessionNotFound(_) => "not_found",
            FleetError::AmbiguousSession { .. } => "ambiguous",
            FleetError::NotConnected { .. }
            | FleetError::SessionOwnerNotConnected { .. }
            | FleetError::NoPrimary { .. }
            | FleetError::PrimaryNotConnected { .. } => "not_connected",
            FleetError::Unsupported { .. }
            | FleetError::NoSessionControl { .. }
            | FleetError::ProcessUnverifiable { .. } => "unsupported",
            FleetError::Call {
                source: CallError::AnotherProcess { .. },
                ..
            } => "another_process",
            FleetError::Busy { .. } => "busy",
            FleetError::Disruption { .. } => "disruption_budget",
            FleetError::Call {
                source: CallError::Timeout(_),
                ..
            } => "timeout",
            FleetError::Call {
                source: CallError::NotConnected,
                ..
            } => "not_connected",
            FleetError::Call { .. } => "gateway_error",
            FleetError::IdempotencyKeyReused { .. } => "idempotency_key_reused",
            FleetError::OverBudget(_) => "over_budget",
            FleetError::NoGateway(_) => "no_gateway",
            FleetError::LinkedElsewhere { .. } => "forwarded",
            FleetError::SessionUnheard { .. } => "owner_unavailable",
            FleetError::Storage(_)
            | FleetError::Interrupted(_)
            | FleetError::Registry(_)
            | FleetError::Record(_)
            | FleetError::Random(_) => "internal",
        }
    }
}

/// A connected gateway able to take one method.
struct Reached {
    name: String,
    version: Option<String>,
    link: GatewayLink,
    /// The gateway process the link reaches, where the release names it.
    boot_id: Option<String>,
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

pub struct Fleet {
    registry: Addr<RegistryActor>,
    /// Every gateway as a call target, read without a trip through the registry's mailbox.
    targets: SharedTargets,
    store: crate::db::Store,
    events: EventBus,
    deadlines: Deadlines,
    counters: FleetCounters,
    /// This instance's id, in a cluster.
    instance: Option<String>,
    /// Spawns this process follows now.
    tracking: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Wakes the operations runner (an operation started here).
    operations_wake: tokio::sync::Notify,
    /// Per-agent daily budgets (US dollars), from `usage.budgets`.
    budgets: std::collections::BTreeMap<String, f64>,
    /// The gateway processes this daemon runs (managed gateways), once they are handed over.
    processes: std::sync::OnceLock<std::sync::Arc<dyn processes::Processes>>,
}

impl Fleet {
    pub fn new(
        registry: Addr<RegistryActor>,
        targets: SharedTargets,
        store: crate::db::Store,
        events: EventBus,
        deadlines: Deadlines,
        counters: FleetCounters,
    ) -> Self {
        Fleet {
            registry,
            targets,
            store,
            events,
            deadlines,
            counters,
            instance: None,
            tracking: std::sync::Mutex::default(),
            operations_wake: tokio::sync::Notify::new(),
            budgets: std::collections::BTreeMap::new(),
            processes: std::sync::OnceLock::new(),
        }
    }

    /// Hands over the gateway processes this daemon runs (at start, once).
    pub fn run_processes_with(&self, processes: std::sync::Arc<dyn processes::Processes>) {
        let _ = self.processes.set(processes);
    }

    /// The gateway processes this daemon runs, when there are any to run.
    fn processes(&self) -> Option<&dyn processes::Processes> {
        self.processes.get().map(|p| &**p)
    }

    /// Per-agent daily budgets: an agent's spawns are refused once it spent this today.
    pub fn with_budgets(mut self, budgets: std::collections::BTreeMap<String, f64>) -> Self {
        self.budgets = budgets;
        self
    }

    /// In a cluster: this instance's id (gateways linked by others are theirs to act on).
    pub fn in_cluster(mut self, instance: Option<String>) -> Self {
        self.instance = instance;
        self
    }

    /// When another instance links gateway `id`: that instance. `None` alone, or when no
    /// other instance holds its lease (it is this one's, or nobody's for the moment).
    async fn linked_elsewhere(&self, id: GatewayId) -> Result<Option<Owner>, FleetError> {
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
    async fn not_here(&self, id: GatewayId, name: String) -> FleetError {
        match self.linked_elsewhere(id).await {
            Ok(Some(owner)) => FleetError::LinkedElsewhere { id, owner },
            Ok(None) => FleetError::NotConnected { name },
            Err(e) => e,
        }
    }

    /// Every gateway as a target, with its link and what it can do (shared, not copied).
    fn targets(&self) -> Vec<std::sync::Arc<GatewayTarget>> {
        self.targets.all()
    }

    /// Gateway `id` as a target, if registered.
    fn target(&self, id: GatewayId) -> Option<std::sync::Arc<GatewayTarget>> {
        self.targets.get(id)
    }

    /// Writes the audit row of an action carried out on a gateway; a storage failure is logged,
    /// not returned (the action itself happened and must not be reported as failed).
    /// Counts an operation carried out elsewhere (a config rollout) as over.
    pub fn operation_finished(
        &self,
        kind: operation::model::OperationKind,
        state: operation::model::OperationState,
    ) {
        self.counters.operation_finished(kind, state);
    }

    async fn audited(
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
    async fn stored<T, F>(&self, call: F) -> Result<T, FleetError>
    where
        T: Send + 'static,
        F: FnOnce(&crate::db::Store) -> Result<T, crate::db::DbError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || call(&store))
            .await
            .map_err(FleetError::Interrupted)?
            .map_err(FleetError::Storage)
    }

    /// Gateway `id`, if it is connected and healthy and offers `method`.
    async fn reach(&self, id: GatewayId, method: &'static str) -> Result<Reached, FleetError> {
        let t = self.target(id).ok_or(FleetError::NotFound(id))?;
        let name = t.candidate.name.clone();
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
    async fn call(
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
    async fn call_fenced(
        &self,
        id: GatewayId,
        method: &'static str,
        params: Value,
        expected_boot_id: Option<&str>,
    ) -> Result<Value, FleetError> {
        let r = self.reach(id, method).await?;
        let process = fenced_process(expected_boot_id, r.boot_id.as_deref())
            .map_err(|_| FleetError::unverifiable(id, &r.name, r.version.as_deref()))?;
        self.send(r, process, method, params).await
    }

    /// The call itself, on the reached gateway's link (only to `process`, when given).
    async fn send(
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

#[cfg(test)]
mod tests {
    use super::fenced_process;

    #[test]
    fn the_caller_s_process_wins_over_the_one_the_link_reaches() {
        assert_eq!(fenced_process(Some("a"), Some("b")), Ok(Some("a".into())));
    }

    #[test]
    fn without_a_condition_the_action_goes_to_the_process_it_was_decided_on() {
        assert_eq!(fenced_process(None, Some("b")), Ok(Some("b".into())));
    }

    #[test]
    fn a_release_without_boot_ids_takes_no_condition_and_needs_none() {
        assert_eq!(fenced_process(Some("a"), None), Err(super::Unverifiable));
        assert_eq!(fenced_process(None, None), Ok(None));
    }

    /// An instance of a cluster hears who was elected a moment after the gateways exist: its
    /// refusal then must not claim that none is registered (it did, in CI).
    #[test]
    fn no_primary_says_none_is_registered_only_when_none_is() {
        let none = super::FleetError::NoPrimary { registered: 0 }.to_string();
        assert_eq!(none, "no gateway is registered");
        let unelected = super::FleetError::NoPrimary { registered: 6 }.to_string();
        assert!(
            unelected.starts_with("none of the 6 registered gateway(s) is the acting primary yet"),
            "{unelected}"
        );
    }
}
