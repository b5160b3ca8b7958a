//! Spawns: choose the gateway (`selection::select`, once), record the spawn before the gateway
//! is asked (a crash never loses a started run), ask it, and follow the run in the background
//! to `ok | error | aborted | timeout` ([`track`]). A client's idempotency key never starts two
//! runs (and is refused for a different request); the run's own idempotency key is the spawn
//! id, so a retried call never runs twice.

mod cost;
mod orphan;
mod outcome;
mod track;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::FleetError;
use crate::db::spawns::{NewSpawn, SpawnInsert, SpawnRow, SpawnUpdate};
use crate::db::spend::SpendAsk;
use crate::domain::{SpawnId, SpawnStatus};
use crate::fleet::context::FleetContext;
use crate::fleet::usage::{Usage, UsageError};
use crate::secrets::{SecretsError, random_hex};
use crate::spend::{Ledger, SpendError};
use gateway_supervisor_actors::events::EventKind;
use gateway_supervisor_actors::labels::Selector;
use gateway_supervisor_actors::messages::GatewayTarget;
use gateway_supervisor_actors::model::{Caller, GatewayId};
use gateway_supervisor_actors::selection::NoGateway;
use gateway_supervisor_actors::selection::{self, Candidate, Choice};
use outcome::Finished;
pub use outcome::run_outcome;

/// An agent run's timeout when its request names none (`timeout_seconds`).
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// What to run, validated.
pub enum SpawnForm {
    /// OpenClaw `agent`: `params` (message, agentId, timeout, …), waited for up to `timeout`.
    Agent { params: Value, timeout: Duration },
    /// The seed protocol's `spawn`: a process, reported by a `spawn_result` event.
    Process { params: Value },
}

impl SpawnForm {
    /// The gateway method that starts it.
    pub fn method(&self) -> &'static str {
        match self {
            SpawnForm::Agent { .. } => "agent",
            SpawnForm::Process { .. } => "spawn",
        }
    }
}

/// A spawn to start.
pub struct SpawnOrder {
    pub form: SpawnForm,
    /// The agent to run; its `gateway_config.preferred_gateway` is honoured.
    pub agent: Option<String>,
    /// An explicit gateway.
    pub gateway_id: Option<GatewayId>,
    /// Only gateways whose labels this picks.
    pub selector: Option<Selector>,
    /// Gateways whose labels this picks first.
    pub prefer: Option<Selector>,
    /// The request as given, without environment values: recorded with the spawn.
    pub recorded: String,
    /// The client's `Idempotency-Key`, scoped to its API key ([`scoped_idempotency_key`]).
    pub idempotency_key: Option<String>,
    /// Who asked (audited).
    pub by: Caller,
    /// Only the gateways the caller's key sees (`None`: any; docs/design.md, *Tenancy*).
    pub within: Option<gateway_supervisor_actors::messages::Within>,
}

/// An `Idempotency-Key` as it is stored: the caller's API key id before it, so that two keys
/// choosing the same string never get each other's spawn (an operator's retry got the admin's
/// spawn back when keys were shared).
pub fn scoped_idempotency_key(by: &Caller, key: &str) -> String {
    match by.api_key_id {
        Some(id) => format!("{id}:{key}"),
        None => format!("-:{key}"),
    }
}

/// A spawn id: 128 random bits as a UUID-shaped string.
fn spawn_id() -> Result<SpawnId, SecretsError> {
    let h = random_hex::<16>()?;
    Ok(SpawnId::from(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )))
}

/// The gateway an agent's `preferred_gateway` names (by id or by name), if it is registered.
fn preferred_id(preferred: Option<Value>, candidates: &[Candidate]) -> Option<GatewayId> {
    match preferred? {
        Value::Number(n) => n.as_i64().map(GatewayId),
        Value::String(name) => candidates.iter().find(|c| *c.name == *name).map(|c| c.id),
        _ => None,
    }
}

/// The answer to a request whose idempotency key recorded `first`: the same request gets the
/// first spawn (nothing new started); another request under the same key is a client bug, not
/// a retry (IETF draft-ietf-httpapi-idempotency-key-header: 422, naming the first spawn).
#[allow(clippy::result_large_err)] // as large as the FleetError it carries; this path is rare
fn retried(first: SpawnRow, asked: &str) -> Result<SpawnRow, SpawnError> {
    if first.request == asked {
        return Ok(first);
    }
    Err(SpawnError::IdempotencyKeyReused { spawn_id: first.id })
}

/// Why a spawn was not started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// A client idempotency key already used for a different request.
    #[error(
        "this Idempotency-Key was already used for spawn {spawn_id} with a different request; send a new key for a new request"
    )]
    IdempotencyKeyReused { spawn_id: SpawnId },
    /// No gateway can take the spawn (`selection::select`'s reason).
    #[error("{0}")]
    NoGateway(#[source] NoGateway),
    /// The agent's budget refuses it (or usage could not be read).
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// A spend budget of the key or the tenant refuses it (or its ledger cannot be read).
    #[error(transparent)]
    Spend(#[from] SpendError),
    /// Reaching, calling or recording failed (or another instance links the gateway).
    #[error(transparent)]
    Fleet(#[from] FleetError),
}

impl super::ServiceError for SpawnError {
    fn outcome(&self) -> &'static str {
        match self {
            SpawnError::IdempotencyKeyReused { .. } => "idempotency_key_reused",
            SpawnError::NoGateway(_) => "no_gateway",
            SpawnError::Usage(e) => e.outcome(),
            SpawnError::Spend(SpendError::OverBudget(_)) => "over_budget",
            SpawnError::Spend(SpendError::Unavailable(_)) => "storage",
            SpawnError::Fleet(e) => e.outcome(),
        }
    }

    fn shared(&self) -> Option<&FleetError> {
        match self {
            SpawnError::Fleet(e) => Some(e),
            _ => None,
        }
    }
}

/// Agent spawns: the gateway chosen, the run started and followed to its end, the runs still
/// running adopted after a restart. Owns which spawns this process follows now.
#[derive(Clone)]
pub struct Spawns {
    ctx: Arc<FleetContext>,
    usage: Usage,
    /// Spend budgets: each spawn reserved before it starts, settled when it ends.
    ledger: Ledger,
    tracking: Arc<std::sync::Mutex<std::collections::HashSet<SpawnId>>>,
}

impl Spawns {
    pub fn new(ctx: Arc<FleetContext>, usage: Usage, ledger: Ledger) -> Self {
        Spawns {
            ctx,
            usage,
            ledger,
            tracking: Arc::default(),
        }
    }
    /// Starts a spawn and returns it as recorded (`running`, with the gateway's run id), or the
    /// first spawn made with the same idempotency key (nothing new is started).
    #[tracing::instrument(name = "spawn", skip_all, fields(gateway_id = ?order.gateway_id))]
    pub async fn spawn(&self, order: SpawnOrder) -> Result<SpawnRow, SpawnError> {
        let result = self.spawn_now(order).await;
        self.ctx.counters.spawn(&result);
        result
    }

    async fn spawn_now(&self, order: SpawnOrder) -> Result<SpawnRow, SpawnError> {
        // A retry is answered from the record before anything else is asked: right after a
        // restart, before any gateway is linked again, a retry of an acknowledged spawn got 503.
        if let Some(key) = order.idempotency_key.clone() {
            let first = self
                .ctx
                .stored(move |store| store.spawn_by_idempotency_key(&key))
                .await?;
            if let Some(first) = first {
                return retried(first, &order.recorded);
            }
        }
        self.usage.check_budget(order.agent.as_deref()).await?;
        let method = order.form.method();
        let (target, choice) = self.choose(&order).await?;
        let gateway_id = target.candidate.id;
        let name = target.candidate.name.to_string();
        // Chosen here, linked by another instance: the spawn is that instance's to start.
        let Some(link) = target.link.clone() else {
            return Err(self.ctx.not_here(gateway_id, name).await.into());
        };

        let id = spawn_id().map_err(FleetError::Random)?;
        let priced = cost::answers_timeseries(
            target.version.as_deref(),
            target.offers("sessions.usage.timeseries"),
        );
        // Admitted against the key's and the tenant's budgets before anything is recorded or
        // sent: the reservation and the check are one transaction (docs/design.md, *Spend*).
        let tenant = crate::tenancy::tenant_of(&target.candidate.labels).to_owned();
        let admitted = self
            .ledger
            .admit(SpendAsk {
                spawn_id: id.to_string(),
                key_id: order.by.api_key_id,
                tenant: tenant.clone(),
                agent: order.agent.clone(),
                gateway_id,
                now: crate::db::unix_now(),
            })
            .await;
        if !matches!(admitted, Err(SpendError::Unavailable(_))) {
            self.ctx.counters.spend_admission(&tenant, admitted.is_ok());
        }
        let soft = admitted?;
        for budget in soft {
            let said = crate::domain::spend::SoftLimitEvent {
                budget,
                spawn_id: id.to_string(),
            };
            self.ctx.events.publish(
                EventKind::SpendSoftLimit,
                Some(gateway_id),
                serde_json::to_value(said).unwrap_or_default(),
            );
        }
        let dispatched_ms = crate::db::unix_now().saturating_mul(1000);
        let spawn_key = id.to_string();
        let SpawnOrder {
            form,
            agent,
            recorded,
            idempotency_key,
            by,
            ..
        } = order;
        let audited_agent = agent.clone();
        let asked = recorded.clone();
        let inserted = self
            .ctx
            .stored(move |store| {
                store.insert_spawn(&NewSpawn {
                    id: &id,
                    gateway_id,
                    agent: agent.as_deref(),
                    method,
                    request: &recorded,
                    idempotency_key: idempotency_key.as_deref(),
                })
            })
            .await?;
        let mut row = match inserted {
            SpawnInsert::Created(row) => row,
            // A concurrent request with the same key recorded its spawn first.
            SpawnInsert::Existing(first) => {
                self.ledger.release(spawn_key).await;
                return retried(first, &asked);
            }
        };

        let (params, wait) = match form {
            SpawnForm::Agent {
                mut params,
                timeout,
            } => {
                params["idempotencyKey"] = json!(row.id);
                (params, Some(timeout))
            }
            SpawnForm::Process { params } => (params, None),
        };
        // Subscribed before the call: a process's `spawn_result` may come back at once.
        let results = self.ctx.events.subscribe_after(None).1;
        let payload = match link
            .call(method, Some(params), self.ctx.deadlines.call)
            .await
        {
            Ok(payload) => payload,
            Err(source) => {
                self.record_end(&row.id, Finished::failed(source.to_string()))
                    .await;
                self.ledger.release(row.id.to_string()).await;
                return Err(FleetError::Call { name, source }.into());
            }
        };
        let (run_id, session_key) = outcome::started(&payload);
        let (sid, update) = (
            row.id.clone(),
            SpawnUpdate {
                run_id: run_id.clone(),
                session_key: session_key.clone(),
                status: Some(SpawnStatus::Running),
                ..SpawnUpdate::default()
            },
        );
        self.ctx
            .stored(move |store| store.update_spawn(&sid, update))
            .await?;
        tracing::info!(spawn_id = %row.id, gateway = %name, selected_by = choice.as_str(), method, "spawn started");
        self.ctx
            .audited(
                &by,
                "spawn.create",
                ("spawn", row.id.to_string()),
                json!({"gateway_id": gateway_id, "method": method, "agent": audited_agent,
                   "selected_by": choice.as_str(), "run_id": run_id}),
            )
            .await;
        let tracked = track::Tracked {
            spawn_id: row.id.clone(),
            gateway_id,
            link,
            run_id: run_id.clone(),
            session_key: session_key.clone(),
            wait,
            priced,
            dispatched_ms,
            tenant,
        };
        // Followed from now on (before a sweep could pick it up as nobody's).
        self.tracking_mut().insert(row.id.clone());
        actix::spawn(self.clone().track(tracked, results));
        row.run_id = run_id;
        row.session_key = session_key;
        row.status = SpawnStatus::Running;
        Ok(row)
    }

    /// The gateway that takes the spawn, and why it was chosen.
    async fn choose(&self, order: &SpawnOrder) -> Result<(Arc<GatewayTarget>, Choice), SpawnError> {
        let method = order.form.method();
        let preferred = match order.agent.clone() {
            Some(agent) => self
                .ctx
                .stored(move |store| store.agent_config(&agent))
                .await?
                .and_then(|c| c.pointer("/gateway_config/preferred_gateway").cloned()),
            None => None,
        };
        // Every gateway's candidate, in one walk: a gateway linked elsewhere is met as its
        // candidate alone, and only the one chosen is built into a full target.
        let mut candidates: Vec<Candidate> = Vec::new();
        self.ctx.targets().each(|t| {
            let c = t.candidate();
            if order.within.as_ref().is_none_or(|w| w.holds(c.id)) {
                candidates.push(Candidate {
                    // Another instance's gateway: every OpenClaw release runs `agent`; the
                    // seed's process form stays with gateways whose methods this instance knows.
                    capable: if t.elsewhere() {
                        method == "agent"
                    } else {
                        t.offers(method)
                    },
                    ..c.clone()
                });
            }
        });
        // An explicit gateway linked by another instance: the spawn is that instance's.
        if let Some(id) = order.gateway_id
            && candidates.iter().any(|c| c.id == id)
            && self.ctx.target(id).is_some_and(|t| t.link.is_none())
            && let Some(owner) = self.ctx.linked_elsewhere(id).await?
        {
            return Err(FleetError::LinkedElsewhere { id, owner }.into());
        }
        let preferred = preferred_id(preferred, &candidates);
        let ask = selection::Ask {
            explicit: order.gateway_id,
            preferred,
            method,
            selector: order.selector.as_ref(),
            prefer: order.prefer.as_ref(),
        };
        let (id, choice) = selection::select(&candidates, ask).map_err(SpawnError::NoGateway)?;
        let chosen = self.ctx.target(id).ok_or(FleetError::NotFound(id))?;
        Ok((chosen, choice))
    }
}
