//! `/api/managed`: gateways this daemon runs on its host (docs/design.md, *Managed gateways*).
//! Admins declare, restart and delete them; viewers read them. A declared gateway is also a
//! gateway like any other (`/api/gateways/{id}`, same id).

use actix_web::{HttpRequest, HttpResponse, web};
use gateway_supervisor_actors::model::GatewayId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::json::JsonBody;
use super::principal::Authenticated;
use super::relay::{Here, or_host};
use crate::db::managed::ManagedRecord;
use crate::managed::ManagedError;
use crate::managed::declare::DeclareRequest;
use crate::managed::state::{Desired, ProcessState};

/// A managed gateway: what it was asked for and what its host's daemon last saw.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ManagedView {
    pub gateway_id: GatewayId,
    /// Its gateway's name.
    pub name: String,
    /// The host whose daemon runs it.
    pub host_id: String,
    pub version: String,
    pub source: String,
    pub port: u16,
    pub desired: Desired,
    pub state: ProcessState,
    /// The gateway's pid on its host, while it runs.
    pub pid: Option<i64>,
    /// Starts after the first: requested ones (the handoff) and crashes.
    pub restarts: i32,
    pub crashes: i32,
    /// How the last process ended (`exit 0`, `killed by signal 9`, …).
    pub last_exit: Option<String>,
    /// Why it is in its state (a crash's delay, why it was given up, an install's failure).
    pub detail: Option<String>,
    pub started_at_ms: Option<i64>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// The live instances of each host, in a cluster (`None`: this daemon alone).
pub(super) type LiveHosts = Option<std::collections::BTreeMap<String, Vec<String>>>;

impl ManagedView {
    /// As stored — unless, in a cluster, no instance of its host is up: then nobody watches
    /// its process (left running) and it is `unsupervised`, its last state in `detail`.
    pub(super) fn of(r: ManagedRecord, name: String, live: &LiveHosts) -> Self {
        let unsupervised = live.as_ref().is_some_and(|l| !l.contains_key(&r.host_id));
        let (state, detail) = if unsupervised {
            (
                ProcessState::Unsupervised,
                Some(format!(
                    "no daemon of host `{}` is up: its process was left {} and is adopted when one returns",
                    r.host_id, r.state
                )),
            )
        } else {
            (
                ProcessState::parse(&r.state).unwrap_or(ProcessState::Failed),
                r.detail,
            )
        };
        ManagedView {
            gateway_id: r.gateway_id,
            name,
            host_id: r.host_id,
            version: r.version,
            source: r.source,
            port: u16::try_from(r.port).unwrap_or_default(),
            desired: Desired::parse(&r.desired).unwrap_or(Desired::Running),
            state,
            pid: r.pid,
            restarts: r.restarts,
            crashes: r.crashes,
            last_exit: r.last_exit,
            detail,
            started_at_ms: r.started_at_ms,
            created_at_ms: r.created_at_ms,
            updated_at_ms: r.updated_at_ms,
        }
    }
}

/// `records` with their gateways' names, judged against `live` (the hosts' live instances,
/// read once by the caller).
pub(super) async fn named(
    state: &AppState,
    records: Vec<ManagedRecord>,
    live: &LiveHosts,
) -> Result<Vec<ManagedView>, ApiError> {
    let store = state.store.clone();
    let mut names = super::blocking(move || store.gateway_names()).await?;
    Ok(records
        .into_iter()
        .map(|r| {
            let name = names.remove(&r.gateway_id).unwrap_or_default();
            ManagedView::of(r, name, live)
        })
        .collect())
}

async fn envelope(state: &AppState, record: ManagedRecord) -> Result<ManagedEnvelope, ApiError> {
    let live = state.managed.live_hosts().await?;
    let managed = named(state, vec![record], &live)
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal("a managed gateway went missing".into()))?;
    Ok(ManagedEnvelope { managed })
}

#[derive(Serialize, ToSchema)]
pub struct ManagedEnvelope {
    pub managed: ManagedView,
}

#[derive(Serialize, ToSchema)]
pub struct ManagedList {
    /// By gateway id.
    pub managed: Vec<ManagedView>,
}

#[derive(Serialize, ToSchema)]
pub struct ManagedDeleted {
    pub deleted: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// Also remove its folder: state, config and output (kept by default).
    pub purge: Option<bool>,
}

impl From<ManagedError> for ApiError {
    fn from(err: ManagedError) -> Self {
        match err {
            ManagedError::Invalid { field, message } => ApiError::field(field, message),
            ManagedError::NotFound(id) => ApiError::ManagedNotFound(id),
            e @ (ManagedError::PortTaken(_) | ManagedError::NoFreePort) => {
                ApiError::PortUnavailable(e.to_string())
            }
            ManagedError::OtherHost { id, host } => ApiError::UnsupportedAction {
                message: format!(
                    "managed gateway {id} runs on host `{host}`: ask a daemon on that host"
                ),
                details: serde_json::json!({"host_id": host}),
            },
            ManagedError::Storage(e) => ApiError::storage(e.to_string()),
            ManagedError::Registry(e) => e.into(),
            ManagedError::Internal(e) => ApiError::Internal(e),
        }
    }
}

#[utoipa::path(post, path = "/api/managed", tag = "managed",
    description = "Declares a gateway this daemon runs on its host: installs the release (side by side, one folder per version), writes its state folder and config, generates its token, starts it as OpenClaw's external-supervisor contract says, and registers it as a gateway. Answers at once; `state` goes `installing` → `starting` → `running`.",
    request_body = DeclareRequest,
    responses((status = 201, body = ManagedEnvelope), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`duplicate_name`, `duplicate_address`, or `port_unavailable`: the port is taken on this host (or none is free)"),
        (status = 403, body = ErrorBody)))]
pub async fn declare_managed(
    state: web::Data<AppState>,
    who: Authenticated,
    body: JsonBody<DeclareRequest>,
) -> Result<HttpResponse, ApiError> {
    let decl = body.0.validate()?;
    let name = decl.name.clone();
    let record = state.managed.declare(decl, who.0.caller()).await?;
    Ok(HttpResponse::Created().json(ManagedEnvelope {
        managed: ManagedView::of(record, name, &None),
    }))
}

#[utoipa::path(get, path = "/api/managed", tag = "managed",
    description = "Every managed gateway, by id, with its host, release, process state, pid, restarts and last exit.",
    responses((status = 200, body = ManagedList)))]
pub async fn list_managed(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let live = state.managed.live_hosts().await?;
    let managed = named(&state, state.managed.list().await?, &live).await?;
    Ok(HttpResponse::Ok().json(ManagedList { managed }))
}

#[utoipa::path(get, path = "/api/managed/{id}", tag = "managed",
    params(("id" = i64, Path, minimum = 1, description = "Gateway id")),
    responses((status = 200, body = ManagedEnvelope), (status = 404, body = ErrorBody)))]
pub async fn get_managed(
    state: web::Data<AppState>,
    id: web::Path<GatewayId>,
) -> Result<HttpResponse, ApiError> {
    let record = state.managed.get(id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(envelope(&state, record).await?))
}

/// How long a managed gateway's restart or stop through the API counts as a disruption (a
/// restart through the handoff takes seconds; a stopped one counts by its own status after).
const MANAGED_HOLD: std::time::Duration = std::time::Duration::from_secs(30);

/// A running managed gateway is taken out of service (restarted, or stopped to be deleted)
/// only within the disruption budgets that cover it, as every other voluntary disruption is:
/// 429 `disruption_budget` naming the budget otherwise. One that is not running is not
/// disrupted by it.
async fn within_budgets(
    state: &AppState,
    who: &Authenticated,
    id: GatewayId,
) -> Result<(), ApiError> {
    let running = state
        .managed
        .get(id)
        .await
        .is_ok_and(|m| m.state == ProcessState::Running.as_str());
    if running {
        state
            .fleet
            .budgets
            .admit_disruption(
                id,
                crate::fleet::budget::DisruptionKind::Restart,
                None,
                &who.0.caller(),
                MANAGED_HOLD,
            )
            .await?;
    }
    Ok(())
}

#[utoipa::path(post, path = "/api/managed/{id}/restart", tag = "managed",
    description = "Restarts the gateway: SIGUSR2, so it restarts through OpenClaw's handoff (not counted as a crash); one that is down (exited, failed, given up) is started again with its crash count reset. A running one is restarted only within the disruption budgets that cover it (429 `disruption_budget` otherwise).",
    params(("id" = i64, Path, minimum = 1, description = "Gateway id")),
    responses((status = 202, body = ManagedEnvelope), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`unsupported_action`: its process runs on another host and this daemon is not in a cluster"),
        (status = 429, body = ErrorBody, description = "`disruption_budget`: restarting it would break a budget"),
        (status = 503, body = ErrorBody, description = "`owner_unavailable`: its process runs on another host where no daemon is up (in a cluster the request goes to a daemon of that host)")))]
pub async fn restart_managed(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    id: web::Path<GatewayId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    within_budgets(&state, &who, id).await?;
    let result = state.managed.restart(id).await;
    match or_host(&state, &req, None, result).await? {
        Here::Done(record) => Ok(HttpResponse::Accepted().json(envelope(&state, record).await?)),
        Here::Relayed(res) => Ok(res),
    }
}

#[utoipa::path(delete, path = "/api/managed/{id}", tag = "managed",
    description = "Stops the gateway (SIGTERM, its own drain, SIGKILL after `managed_runtime.stop_timeout`) and removes it and its gateway. Its folder (state, config, output) is kept unless `purge=true`. A running one is stopped only within the disruption budgets that cover it (429 `disruption_budget` otherwise); one whose process failed can always go, and the primary role moves off it (or goes with the last gateway).",
    params(("id" = i64, Path, minimum = 1, description = "Gateway id"), DeleteQuery),
    responses((status = 200, body = ManagedDeleted), (status = 400, body = ErrorBody, description = "`primary_gateway`: the primary cannot be deleted (make another gateway primary first)"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`gateway_busy`: a running operation holds the gateway, or it is suspended through this daemon; `unsupported_action`: its process runs on another host and this daemon is not in a cluster"),
        (status = 429, body = ErrorBody, description = "`disruption_budget`: stopping it would break a budget"),
        (status = 503, body = ErrorBody, description = "`owner_unavailable`: its process runs on another host where no daemon is up (in a cluster the request goes to a daemon of that host)")))]
pub async fn delete_managed(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    id: web::Path<GatewayId>,
    query: web::Query<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    state.fleet.operations.may_delete(id).await?;
    within_budgets(&state, &who, id).await?;
    let result = state
        .managed
        .delete(id, query.purge.unwrap_or(false), who.0.caller())
        .await;
    match or_host(&state, &req, None, result).await? {
        Here::Done(()) => Ok(HttpResponse::Ok().json(ManagedDeleted { deleted: true })),
        Here::Relayed(res) => Ok(res),
    }
}
