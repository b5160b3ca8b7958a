//! The fleet: use cases that reach gateways, one call each for the HTTP handlers — spawns and
//! their tracking, session control, gateway operations (suspend, resume, restart) and agent
//! sync. Which gateway takes a call, whether it can, how long it may take (from
//! configuration: [`Deadlines`]) and what its answer means are decided here, once; the
//! handlers only validate their input and shape the envelope (docs/design.md,
//! *Architecture*).

pub mod agents;
pub mod budget;
mod context;
mod counters;
mod gateway_ops;
pub use gateway_ops::Rotated;
pub mod log_tail;
pub mod operation;
pub mod processes;
pub mod sessions;
pub mod spawn;
pub mod usage;
pub mod versions;
pub mod watchdog;

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use serde_json::Value;

use gateway_supervisor_actors::RegistryActor;
use gateway_supervisor_actors::events::EventBus;
use gateway_supervisor_actors::messages::CallError;
use gateway_supervisor_actors::model::GatewayId;

pub use agents::Agents;
pub use budget::Budgets;
pub use context::{FleetContext, Unverifiable, fenced_process};
pub use counters::FleetCounters;
pub use gateway_ops::GatewayOps;
pub use log_tail::LogTail;
pub use operation::Operations;
pub use sessions::SessionControl;
pub use spawn::Spawns;
pub use usage::Usage;
pub use watchdog::Watchdog;

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
    #[error("storage failed: {0}")]
    Storage(#[source] crate::db::DbError),
    #[error("the registry is unavailable: {0}")]
    Registry(#[source] actix::MailboxError),
    /// The registry refused or failed to record what the gateway did.
    #[error("recording it failed: {0}")]
    Record(#[source] gateway_supervisor_actors::messages::RegistryError),
    #[error("no randomness for a request id: {0}")]
    Random(#[source] crate::secrets::SecretsError),
    /// Another instance of the cluster links the gateway: the action is its to carry out.
    #[error("gateway {id} is linked by instance `{}`", .owner.instance)]
    LinkedElsewhere { id: GatewayId, owner: Owner },
}

impl From<crate::gateway_reads::ReadError> for FleetError {
    fn from(err: crate::gateway_reads::ReadError) -> Self {
        match err {
            crate::gateway_reads::ReadError::Registry(e) => FleetError::Registry(e),
            crate::gateway_reads::ReadError::Store(e) => FleetError::Storage(e),
        }
    }
}

/// What every service's error can say: a fixed word for what went wrong (the `outcome` label
/// of the fleet's counters), and whether the gateway is another instance's to act on (the
/// request is forwarded there, `http/relay.rs`) — which only the shared error it carries says.
pub trait ServiceError {
    fn outcome(&self) -> &'static str;
    /// The shared error it carries, if that is what it is.
    fn shared(&self) -> Option<&FleetError>;
    /// Another instance links gateway `id`: the request goes to `owner`.
    fn elsewhere(&self) -> Option<(GatewayId, &Owner)> {
        match self.shared()? {
            FleetError::LinkedElsewhere { id, owner } => Some((*id, owner)),
            _ => None,
        }
    }
}

impl ServiceError for FleetError {
    fn outcome(&self) -> &'static str {
        FleetError::outcome(self)
    }

    fn shared(&self) -> Option<&FleetError> {
        Some(self)
    }
}

/// Why there is no acting primary, by how many gateways are registered.
pub(crate) fn no_primary(registered: usize) -> String {
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
    pub fn held(gateway_id: GatewayId, operation_id: &str) -> Self {
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
            FleetError::NotFound(_) => "not_found",
            FleetError::NotConnected { .. } => "not_connected",
            FleetError::Unsupported { .. } | FleetError::ProcessUnverifiable { .. } => {
                "unsupported"
            }
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
            FleetError::LinkedElsewhere { .. } => "forwarded",
            FleetError::Storage(_)
            | FleetError::Registry(_)
            | FleetError::Record(_)
            | FleetError::Random(_) => "internal",
        }
    }
}

/// The fleet's services on their one shared context (docs/design.md, *Architecture*). Each
/// service owns its state and is cheap to clone (its parts are shared); a service that needs
/// another holds it (operations take gateways out of service through `GatewayOps`, the
/// watchdog starts operations, a spawn is checked against `Usage`'s budgets).
pub struct Fleet {
    pub ctx: Arc<FleetContext>,
    pub spawns: Spawns,
    pub sessions: SessionControl,
    pub gateway_ops: GatewayOps,
    pub budgets: Budgets,
    pub operations: Operations,
    pub watchdog: Watchdog,
    pub log_tail: LogTail,
    pub usage: Usage,
    pub agents: Agents,
}

/// What the fleet is built from.
pub struct FleetParts {
    pub registry: Addr<RegistryActor>,
    pub targets: crate::gateway_reads::CallTargets,
    pub store: crate::db::Store,
    pub events: EventBus,
    pub deadlines: Deadlines,
    pub counters: FleetCounters,
    /// This instance's id, in a cluster (gateways linked by others are theirs to act on).
    pub instance: Option<String>,
    /// Per-agent daily budgets (US dollars), from `usage.budgets`.
    pub agent_budgets: std::collections::BTreeMap<String, f64>,
}

impl Fleet {
    pub fn new(parts: FleetParts) -> Self {
        let ledger = crate::spend::Ledger::new(parts.store.clone());
        let ctx = FleetContext::new(
            parts.registry,
            parts.targets,
            parts.store,
            parts.events,
            parts.deadlines,
            parts.counters,
            parts.instance,
        );
        let usage = Usage::new(ctx.clone(), parts.agent_budgets);
        let budgets = Budgets::new(ctx.clone());
        let gateway_ops = GatewayOps::new(ctx.clone(), budgets.clone());
        let operations = Operations::new(ctx.clone(), gateway_ops.clone(), budgets.clone());
        Fleet {
            spawns: Spawns::new(ctx.clone(), usage.clone(), ledger),
            sessions: SessionControl::new(ctx.clone()),
            watchdog: Watchdog::new(ctx.clone(), operations.clone()),
            log_tail: LogTail::new(ctx.clone()),
            agents: Agents::new(ctx.clone()),
            gateway_ops,
            budgets,
            operations,
            usage,
            ctx,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fenced_process;
    use gateway_supervisor_actors::model::GatewayId;

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

    /// A request for a gateway another instance links is forwarded whichever service refused
    /// it; a service's own refusal is not.
    #[test]
    fn every_service_error_hands_on_a_gateway_linked_elsewhere_and_only_that() {
        use super::agents::AgentsError;
        use super::sessions::SessionError;
        use super::spawn::SpawnError;
        use super::{FleetError, Owner, ServiceError};
        let linked = || FleetError::LinkedElsewhere {
            id: GatewayId(7),
            owner: Owner {
                instance: "b".into(),
                url: None,
            },
        };
        assert!(matches!(linked().elsewhere(), Some((GatewayId(7), o)) if o.instance == "b"));
        assert!(matches!(
            SessionError::from(linked()).elsewhere(),
            Some((GatewayId(7), _))
        ));
        assert!(matches!(
            SpawnError::from(linked()).elsewhere(),
            Some((GatewayId(7), _))
        ));
        assert!(matches!(
            AgentsError::from(linked()).elsewhere(),
            Some((GatewayId(7), _))
        ));
        assert!(SessionError::NotFound("k".into()).elsewhere().is_none());
        assert!(FleetError::NotFound(GatewayId(7)).elsewhere().is_none());
    }

    /// The counters' outcome label: a service's own word for its refusals, the shared one for
    /// what it carries.
    #[test]
    fn a_service_error_counts_under_its_own_outcome_or_the_shared_one() {
        use super::agents::AgentsError;
        use super::sessions::SessionError;
        use super::spawn::SpawnError;
        use super::{FleetError, ServiceError};
        let ambiguous = SessionError::Ambiguous {
            key: "k".into(),
            gateways: vec![],
        };
        assert_eq!(ambiguous.outcome(), "ambiguous");
        let reused = SpawnError::IdempotencyKeyReused {
            spawn_id: "s".into(),
        };
        assert_eq!(reused.outcome(), "idempotency_key_reused");
        assert_eq!(
            SpawnError::from(FleetError::NotFound(GatewayId(3))).outcome(),
            "not_found"
        );
        assert_eq!(
            AgentsError::NoPrimary { registered: 0 }.outcome(),
            "not_connected"
        );
        let busy = SessionError::from(FleetError::held(GatewayId(3), "op_1"));
        assert_eq!(busy.outcome(), "busy");
    }

    /// An instance of a cluster hears who was elected a moment after the gateways exist: its
    /// refusal then must not claim that none is registered (it did, in CI).
    #[test]
    fn no_primary_says_none_is_registered_only_when_none_is() {
        use super::agents::AgentsError;
        let none = AgentsError::NoPrimary { registered: 0 }.to_string();
        assert_eq!(none, "no gateway is registered");
        let unelected = AgentsError::NoPrimary { registered: 6 }.to_string();
        assert!(
            unelected.starts_with("none of the 6 registered gateway(s) is the acting primary yet"),
            "{unelected}"
        );
    }
}
