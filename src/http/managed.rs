//! `/api/managed`: gateways this daemon runs on its host (docs/design.md, *Managed gateways*).
//! Admins declare, restart and delete them; viewers read them. A declared gateway is also a
//! gateway like any other (`/api/gateways/{id}`, same id).

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::json::JsonBody;
use super::principal::Authenticated;
use super::relay::{Here, or_host};
use crate::db::managed::ManagedRecord;
use crate::managed::install::Source;
use crate::managed::state::{Desired, ProcessState};
use crate::managed::{Declaration, ManagedError};
use gateway_supervisor_actors::labels::Labels;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclareRequest {
    /// The gateway's name, also its folder under the state directory: 1-63 of
    /// `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
    pub name: String,
    /// The OpenClaw release, e.g. `2026.9.6`.
    pub version: String,
    /// `npm` (the registry, the default) or the path of a package tarball on this host.
    pub source: Option<String>,
    /// A JSON merge patch over the safe default (`gateway.mode: local`, loopback, a generated
    /// token, no update check on start). `gateway.port`, `.bind` and `.auth` are the daemon's.
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
    pub labels: Option<BTreeMap<String, String>>,
    /// Unset: the first free port of `managed_runtime.port_range_start..port_range_end`.
    #[schema(minimum = 1024, maximum = 65535)]
    pub port: Option<i64>,
}

/// A managed gateway: what it was asked for and what its host's daemon last saw.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ManagedView {
    pub gateway_id: i64,
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

/// `records` with their gateways' names.
pub(super) async fn named(
    state: &AppState,
    records: Vec<ManagedRecord>,
) -> Result<Vec<ManagedView>, ApiError> {
    let store = state.store.clone();
    let mut names = super::blocking(move || store.gateway_names()).await?;
    let live = state.managed.live_hosts().await?;
    Ok(records
        .into_iter()
        .map(|r| {
            let name = names.remove(&r.gateway_id).unwrap_or_default();
            ManagedView::of(r, name, &live)
        })
        .collect())
}

async fn envelope(state: &AppState, record: ManagedRecord) -> Result<ManagedEnvelope, ApiError> {
    let managed = named(state, vec![record])
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
            ManagedError::Storage(e) => ApiError::Storage(e.to_string()),
            ManagedError::Registry(e) => e.into(),
            ManagedError::Internal(e) => ApiError::Internal(e),
        }
    }
}

pub(super) fn version(raw: &str) -> Result<String, ApiError> {
    let ok = (1..=64).contains(&raw.len())
        && raw.starts_with(|c: char| c.is_ascii_digit())
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'));
    ok.then(|| raw.to_owned()).ok_or_else(|| {
        ApiError::field(
            "version",
            "a release version such as `2026.9.6` (1-64 of 0-9 A-Z a-z . - +)",
        )
    })
}

/// Where a release comes from: `npm` (the default) or a tarball's absolute path.
pub(super) fn source(raw: Option<&str>) -> Result<Source, ApiError> {
    match raw {
        None | Some("npm") => Ok(Source::Registry),
        Some(path) if path.starts_with('/') && path.len() <= 4096 => Ok(Source::parse(path)),
        Some(_) => Err(ApiError::field(
            "source",
            "`npm`, or the absolute path of a package tarball",
        )),
    }
}

impl DeclareRequest {
    fn validate(self) -> Result<Declaration, ApiError> {
        let name =
            crate::validate::name(&self.name).map_err(|e| ApiError::field("name", e.message))?;
        // Also its folder's name on the host.
        let folder_safe = name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !folder_safe {
            return Err(ApiError::field(
                "name",
                "a managed gateway's name is also its folder: 1-63 of A-Z a-z 0-9 . _ -, starting with a letter or digit",
            ));
        }
        let config = match self.config {
            None => serde_json::Map::new(),
            Some(serde_json::Value::Object(m)) => m,
            Some(_) => return Err(ApiError::field("config", "a JSON object (a merge patch)")),
        };
        let port = self
            .port
            .map(|p| {
                u16::try_from(p)
                    .ok()
                    .filter(|p| *p >= 1024)
                    .ok_or_else(|| ApiError::field("port", "between 1024 and 65535"))
            })
            .transpose()?;
        let source = source(self.source.as_deref())?;
        let labels = self
            .labels
            .map(Labels::new)
            .transpose()
            .map_err(|e| ApiError::field("labels", e.to_string()))?
            .unwrap_or_default();
        Ok(Declaration {
            name,
            version: version(&self.version)?,
            source,
            config,
            labels,
            port,
        })
    }
}

#[utoipa::path(post, path = "/api/managed", tag = "managed",
    description = "Declares a gateway this daemon runs on its host: installs the release (side by side, one folder per version), writes its state folder and config, generates its token, starts it as OpenClaw's external-supervisor contract says, and registers it as a gateway. Answers at once; `state` goes `installing` → `starting` → `running`.",
    request_body = DeclareRequest,
    responses((status = 201, body = ManagedEnvelope), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`duplicate_name`, `duplicate_address`, or `port_unavailable`: the port is taken on this host (or none is free)"),
        (status = 403, body = ErrorBody)),
    security(("api_key" = ["admin"]), ("bearer" = ["admin"])))]
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
    responses((status = 200, body = ManagedList)),
    security(("api_key" = ["viewer"]), ("bearer" = ["viewer"])))]
pub async fn list_managed(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let managed = named(&state, state.managed.list().await?).await?;
    Ok(HttpResponse::Ok().json(ManagedList { managed }))
}

#[utoipa::path(get, path = "/api/managed/{id}", tag = "managed",
    params(("id" = i64, Path, minimum = 1, description = "Gateway id")),
    responses((status = 200, body = ManagedEnvelope), (status = 404, body = ErrorBody)),
    security(("api_key" = ["viewer"]), ("bearer" = ["viewer"])))]
pub async fn get_managed(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let record = state.managed.get(id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(envelope(&state, record).await?))
}

#[utoipa::path(post, path = "/api/managed/{id}/restart", tag = "managed",
    description = "Restarts the gateway: SIGUSR2, so it restarts through OpenClaw's handoff (not counted as a crash); one that is down (exited, failed, given up) is started again with its crash count reset.",
    params(("id" = i64, Path, minimum = 1, description = "Gateway id")),
    responses((status = 202, body = ManagedEnvelope), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`unsupported_action`: its process runs on another host and this daemon is not in a cluster"),
        (status = 503, body = ErrorBody, description = "`owner_unavailable`: its process runs on another host where no daemon is up (in a cluster the request goes to a daemon of that host)")),
    security(("api_key" = ["admin"]), ("bearer" = ["admin"])))]
pub async fn restart_managed(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let result = state.managed.restart(id.into_inner()).await;
    match or_host(&state, &req, None, result).await? {
        Here::Done(record) => Ok(HttpResponse::Accepted().json(envelope(&state, record).await?)),
        Here::Relayed(res) => Ok(res),
    }
}

#[utoipa::path(delete, path = "/api/managed/{id}", tag = "managed",
    description = "Stops the gateway (SIGTERM, its own drain, SIGKILL after `managed_runtime.stop_timeout`) and removes it and its gateway. Its folder (state, config, output) is kept unless `purge=true`.",
    params(("id" = i64, Path, minimum = 1, description = "Gateway id"), DeleteQuery),
    responses((status = 200, body = ManagedDeleted), (status = 400, body = ErrorBody, description = "`primary_gateway`: the primary cannot be deleted (make another gateway primary first)"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`gateway_busy`: a running operation holds the gateway, or it is suspended through this daemon; `unsupported_action`: its process runs on another host and this daemon is not in a cluster"),
        (status = 503, body = ErrorBody, description = "`owner_unavailable`: its process runs on another host where no daemon is up (in a cluster the request goes to a daemon of that host)")),
    security(("api_key" = ["admin"]), ("bearer" = ["admin"])))]
pub async fn delete_managed(
    state: web::Data<AppState>,
    who: Authenticated,
    req: HttpRequest,
    id: web::Path<i64>,
    query: web::Query<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    state.fleet.may_delete(id).await?;
    let result = state
        .managed
        .delete(id, query.purge.unwrap_or(false), who.0.caller())
        .await;
    match or_host(&state, &req, None, result).await? {
        Here::Done(()) => Ok(HttpResponse::Ok().json(ManagedDeleted { deleted: true })),
        Here::Relayed(res) => Ok(res),
    }
}
