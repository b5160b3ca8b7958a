//! Fleet operations: `POST /api/fleet/restart` (a rolling restart), `POST /api/fleet/upgrade`
//! (canary first), `POST /api/fleet/update-hold`, `POST /api/gateways/{id}/drain`, `GET /api/operations[/{id}]`. An operation is accepted (202,
//! with its id and a `Location`) and goes on in the background; its progress is read back or
//! followed as `operation.progress` events (docs/design.md, *Fleet operations*).

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::json::JsonBody;
pub use super::operation_json::{
    GatewayProgressSchema, OperationEnvelope, OperationJson, OperationList, StepName, accepted,
};
use super::principal::Authenticated;
use super::visible::Visible;
use crate::domain::OperationId;
use crate::fleet::operation::model::{
    DrainParams, DrainTimeoutPolicy, KindParams, ManagedRelease, OperationKind, OperationParams,
    OperationState, UpgradeParams,
};
use crate::fleet::operation::{AbortAsked, OperationOrder};
use gateway_supervisor_actors::labels::Selector as LabelSelector;
use gateway_supervisor_actors::model::GatewayId;

/// Bounds of the request's numbers.
const MAX_GATEWAYS: usize = 10_000;
const MAX_UNAVAILABLE: u32 = 1_000;
const SECONDS: std::ops::RangeInclusive<u64> = 1..=3600;
const DEFAULT_WAIT_READY: u64 = 60;
const DEFAULT_DRAIN_TIMEOUT: u64 = 300;
/// An update installs a release and restarts: longer than a restart.
const DEFAULT_UPDATE_WAIT: u64 = 900;
const DEFAULT_CANARY_BAKE: u64 = 60;

/// Which gateways, when not listed by id: a label selector (`"region=eu,tier!=canary"`,
/// Kubernetes' syntax; `""` picks every gateway), or `{"all": true}` (every gateway). Either
/// way in id order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Selector {
    Labels(String),
    All(AllGateways),
}

/// `{"all": true}`: every gateway.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllGateways {
    pub all: bool,
}

impl Selector {
    fn labels(&self) -> Result<LabelSelector, ApiError> {
        match self {
            Selector::Labels(text) => super::labels::selector("selector", text),
            Selector::All(AllGateways { all: true }) => Ok(LabelSelector::everything()),
            Selector::All(AllGateways { all: false }) => Err(ApiError::field(
                "selector",
                "a selector is a label selector (\"region=eu\") or {\"all\": true}",
            )),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollingRestartRequest {
    /// The gateways, restarted in this order (or give `selector`, not both).
    pub gateway_ids: Option<Vec<GatewayId>>,
    pub selector: Option<Selector>,
    /// How many gateways may be out of service at once: 1–1000, default 1.
    pub max_unavailable: Option<u32>,
    /// How long a restarted gateway has to be back (another process, `health` answering,
    /// `/readyz` 2xx): 1–3600 s, default 60.
    pub wait_ready_seconds: Option<u64>,
    /// How long a gateway's drain may wait for its work to finish: 1–3600 s, default 300.
    pub drain_timeout_seconds: Option<u64>,
    /// When a drain times out, restart anyway, past the work still running (the gateway's
    /// `skipDeferral`: for a run that will never finish), instead of failing the gateway
    /// (default false).
    pub force_after_drain_timeout: Option<bool>,
    /// What a drain that times out does when it does not restart past the work: `release`
    /// (give up: the gateway fails, its suspension released) or `abort_runs` (abort the runs
    /// still going, then wait up to `wait_ready_seconds` more). Default `release`.
    pub on_drain_timeout: Option<DrainTimeoutPolicy>,
    /// Stop at the first gateway that fails, leaving the rest untouched (default true).
    pub abort_on_failure: Option<bool>,
}

fn seconds(field: &str, value: Option<u64>, default: u64) -> Result<u64, ApiError> {
    let v = value.unwrap_or(default);
    if SECONDS.contains(&v) {
        Ok(v)
    } else {
        Err(ApiError::field(
            field,
            format!("{field} must be between 1 and 3600"),
        ))
    }
}

/// How many gateways may be out of service at once: 1–1000, default 1.
fn max_unavailable(value: Option<u32>) -> Result<u32, ApiError> {
    let v = value.unwrap_or(1);
    if (1..=MAX_UNAVAILABLE).contains(&v) {
        Ok(v)
    } else {
        Err(ApiError::field(
            "max_unavailable",
            format!("max_unavailable must be between 1 and {MAX_UNAVAILABLE}"),
        ))
    }
}

/// The gateways a fleet request names: `gateway_ids` in order, or those its `selector` picks
/// (`picked`, in id order); 1–10,000 of them, no duplicates.
fn gateways_of(
    ids: &Option<Vec<GatewayId>>,
    selector: &Option<Selector>,
    picked: impl FnOnce() -> Picked,
) -> Result<Vec<GatewayId>, ApiError> {
    let gateways = match (ids, selector) {
        (Some(ids), None) => ids.clone(),
        (None, Some(_)) => match picked() {
            Picked::Some(ids) if ids.is_empty() => {
                return Err(ApiError::field("selector", "the selector picks no gateway"));
            }
            Picked::Some(ids) => ids,
            Picked::Invalid(e) => return Err(e),
        },
        _ => {
            return Err(ApiError::field(
                "gateway_ids",
                "give either gateway_ids or selector, not both",
            ));
        }
    };
    if gateways.is_empty() || gateways.len() > MAX_GATEWAYS {
        return Err(ApiError::field(
            "gateway_ids",
            format!("between 1 and {MAX_GATEWAYS} gateways"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = gateways.iter().find(|id| !seen.insert(**id)) {
        return Err(ApiError::field(
            "gateway_ids",
            format!("gateway {dup} is listed twice"),
        ));
    }
    Ok(gateways)
}

impl RollingRestartRequest {
    fn validate(&self, all: impl FnOnce() -> Picked) -> Result<OperationOrder, ApiError> {
        let gateways = gateways_of(&self.gateway_ids, &self.selector, all)?;
        let max_unavailable = max_unavailable(self.max_unavailable)?;
        Ok(OperationOrder {
            kind: OperationKind::RollingRestart,
            gateways,
            params: OperationParams {
                max_unavailable,
                wait_ready_s: seconds(
                    "wait_ready_seconds",
                    self.wait_ready_seconds,
                    DEFAULT_WAIT_READY,
                )?,
                abort_on_failure: self.abort_on_failure.unwrap_or(true),
                canary: 0,
                of: KindParams::Drain(DrainParams {
                    drain_timeout_s: seconds(
                        "drain_timeout_seconds",
                        self.drain_timeout_seconds,
                        DEFAULT_DRAIN_TIMEOUT,
                    )?,
                    force_after_drain: self.force_after_drain_timeout.unwrap_or(false),
                    on_drain_timeout: self.on_drain_timeout.unwrap_or_default(),
                }),
            },
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpgradeRequest {
    /// The gateways, upgraded in this order, canaries first (or give `selector`, not both).
    pub gateway_ids: Option<Vec<GatewayId>>,
    pub selector: Option<Selector>,
    /// How many of the first gateways are canaries: 0 to the number of gateways, default 1.
    /// The others wait until every canary is done and has baked; a failed canary stops them.
    pub canary: Option<u32>,
    /// How long an upgraded canary must stay up (the same process, connected, healthy) before
    /// the others start: 0–3600 s, default 60.
    pub canary_bake_seconds: Option<u64>,
    /// How many gateways may be updating at once: 1–1000, default 1.
    pub max_unavailable: Option<u32>,
    /// How long a gateway's update has to be over and the gateway back healthy: 1–3600 s,
    /// default 900.
    pub wait_ready_seconds: Option<u64>,
    /// Stop at the first gateway that fails, leaving the rest untouched (default true).
    pub abort_on_failure: Option<bool>,
    /// The release managed gateways are swapped to (required when the gateways include
    /// managed ones; observer-mode gateways update to their channel's newest).
    pub version: Option<String>,
    /// Where the managed gateways' target comes from: `npm` (default) or the absolute path of
    /// a package tarball on their host.
    pub source: Option<String>,
    /// How long a managed gateway's target must keep running once started before its swap is
    /// done; an exit before then puts the previous release back: 0–3600 s, default 10.
    pub min_healthy_seconds: Option<u64>,
}

/// Default `min_healthy_seconds` of a managed gateway's swap.
const DEFAULT_MIN_HEALTHY: u64 = 10;

impl UpgradeRequest {
    /// The managed gateways' target, when a version is given.
    fn release(&self) -> Result<Option<ManagedRelease>, ApiError> {
        let min_healthy_s = self.min_healthy_seconds.unwrap_or(DEFAULT_MIN_HEALTHY);
        if min_healthy_s > *SECONDS.end() {
            return Err(ApiError::field(
                "min_healthy_seconds",
                "min_healthy_seconds must be between 0 and 3600",
            ));
        }
        let Some(version) = self.version.as_deref() else {
            if self.source.is_some() {
                return Err(ApiError::field("source", "`source` goes with a `version`"));
            }
            return Ok(None);
        };
        Ok(Some(ManagedRelease {
            version: crate::managed::declare::version(version)?,
            source: crate::managed::declare::source(self.source.as_deref())?.as_stored(),
            min_healthy_s,
        }))
    }

    fn validate(&self, all: impl FnOnce() -> Picked) -> Result<OperationOrder, ApiError> {
        let gateways = gateways_of(&self.gateway_ids, &self.selector, all)?;
        let max_unavailable = max_unavailable(self.max_unavailable)?;
        let canary = self.canary.unwrap_or(1);
        if usize::try_from(canary).map_or(true, |c| c > gateways.len()) {
            return Err(ApiError::field(
                "canary",
                format!(
                    "canary must be between 0 and the number of gateways ({})",
                    gateways.len()
                ),
            ));
        }
        let release = self.release()?;
        let canary_bake_s = self.canary_bake_seconds.unwrap_or(DEFAULT_CANARY_BAKE);
        if canary_bake_s > *SECONDS.end() {
            return Err(ApiError::field(
                "canary_bake_seconds",
                "canary_bake_seconds must be between 0 and 3600",
            ));
        }
        Ok(OperationOrder {
            kind: OperationKind::Upgrade,
            gateways,
            params: OperationParams {
                max_unavailable,
                wait_ready_s: seconds(
                    "wait_ready_seconds",
                    self.wait_ready_seconds,
                    DEFAULT_UPDATE_WAIT,
                )?,
                abort_on_failure: self.abort_on_failure.unwrap_or(true),
                canary,
                of: KindParams::Upgrade(UpgradeParams {
                    canary_bake_s,
                    release,
                }),
            },
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateHoldRequest {
    /// The gateways to hold (or give `selector`, not both).
    pub gateway_ids: Option<Vec<GatewayId>>,
    pub selector: Option<Selector>,
}

impl UpdateHoldRequest {
    fn validate(&self, all: impl FnOnce() -> Picked) -> Result<OperationOrder, ApiError> {
        let gateways = gateways_of(&self.gateway_ids, &self.selector, all)?;
        Ok(OperationOrder {
            kind: OperationKind::UpdateHold,
            params: OperationParams {
                // All at once: a hold takes nothing out of service.
                max_unavailable: u32::try_from(gateways.len()).unwrap_or(u32::MAX),
                wait_ready_s: DEFAULT_WAIT_READY,
                abort_on_failure: false,
                canary: 0,
                of: KindParams::Hold,
            },
            gateways,
        })
    }
}

/// What a request's selector picks, read before the request is checked (which is synchronous).
enum Picked {
    Some(Vec<GatewayId>),
    Invalid(ApiError),
}

/// The ids of the gateways the request's selector picks.
async fn picked(state: &AppState, selector: Option<&Selector>) -> Result<Picked, ApiError> {
    let Some(selector) = selector else {
        return Ok(Picked::Some(Vec::new()));
    };
    Ok(match selector.labels() {
        Ok(s) => Picked::Some(state.fleet.operations.gateway_ids(&s).await?),
        Err(e) => Picked::Invalid(e),
    })
}

/// Records the operation (it goes on in the background) and answers 202 with it.
async fn start(
    state: &AppState,
    who: &Authenticated,
    visible: &Visible,
    order: OperationOrder,
) -> Result<HttpResponse, ApiError> {
    visible.reach(&order.gateways)?;
    let op = state
        .fleet
        .operations
        .start_operation(order, &who.0.caller())
        .await?;
    Ok(accepted(op))
}

#[utoipa::path(post, path = "/api/fleet/update-hold", tag = "operations",
    description = "Holds the pending automatic update of every gateway named (`update.hold`, OpenClaw 2026.8 and later), all at once, as an operation: each gateway is `done` (`update held`, or nothing to hold: no campaign, already held or applying — the gateway does not say which), `skipped` (its release has no `update.hold`) or `failed` (not connected, or the call failed). Answered at once; follow it with `GET /api/operations/{id}`.",
    request_body = UpdateHoldRequest,
    responses((status = 202, body = OperationEnvelope), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`gateway_busy`: a gateway is already in a running operation")))]
pub async fn update_hold(
    state: web::Data<AppState>,
    who: Authenticated,
    visible: Visible,
    body: JsonBody<UpdateHoldRequest>,
) -> Result<HttpResponse, ApiError> {
    let all = picked(&state, body.0.selector.as_ref()).await?;
    let order = body.0.validate(|| all)?;
    start(&state, &who, &visible, order).await
}

#[utoipa::path(post, path = "/api/fleet/restart", tag = "operations",
    description = "Starts a rolling restart: for each gateway in turn (`max_unavailable` at once), cordon, drain (`gateway.suspend.prepare {drain: true}`, asked again until the gateway is idle or `drain_timeout_seconds`), restart the process noted at the start and only it (its bootId), wait until another process answers, its `health` RPC succeeds and its `/readyz` answers 2xx (`wait_ready_seconds`), uncordon, next. A drain that times out fails the gateway — or, with `force_after_drain_timeout`, the restart is asked anyway, past the work still running (`skipDeferral`). The first gateway that does not come back healthy fails the operation and, with `abort_on_failure`, the rest are left untouched (the failed one stays cordoned). Every gateway must report a bootId (OpenClaw 2026.9 or later). Answered at once with the operation; follow it with `GET /api/operations/{id}` or `operation.progress` events. A daemon restart resumes it.",
    request_body = RollingRestartRequest,
    responses((status = 202, body = OperationEnvelope), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`gateway_busy`: a gateway is already in a running operation")))]
pub async fn rolling_restart(
    state: web::Data<AppState>,
    who: Authenticated,
    visible: Visible,
    body: JsonBody<RollingRestartRequest>,
) -> Result<HttpResponse, ApiError> {
    let all = picked(&state, body.0.selector.as_ref()).await?;
    let order = body.0.validate(|| all)?;
    start(&state, &who, &visible, order).await
}

#[utoipa::path(post, path = "/api/fleet/upgrade", tag = "operations",
    description = "Starts a canary-first upgrade to each gateway's newest release on its update channel (`update.run`, OpenClaw 2026.9 and later): for each gateway in turn, canaries first, cordon, note its process (bootId) and release, read its `update.status` (a run already active there is followed, not doubled; once the canaries are done, a gateway that would go to another release than theirs is failed untouched), ask that process and only it to update, follow the gateway's own run record (`update.runs.get`) until it is over — `succeeded` (or installed but unconfirmed) then another process, its `health` RPC and `/readyz` 2xx; `failed`, `rolled-back` or a refusal (`ok: false`, the gateway's reason shown) fail the gateway, which stays cordoned — then uncordon. A canary then bakes for `canary_bake_seconds` (it must stay the same process, connected and healthy); the others start only when every canary is done, never after a failed canary, and must come back on the canaries' release. A gateway whose release has no `update.run` is `skipped`. The whole by `wait_ready_seconds` per gateway. Managed gateways (`POST /api/managed`) are not asked to update themselves: the daemon on their host swaps them to `version` (from `source`) — installs it beside the current release, has it preflight a consistent copy of the state (`openclaw database preflight`; a refusal, e.g. a downgrade, leaves the gateway running untouched), stops the gateway (its drain), snapshots its state, starts the target on it, which must keep running for `min_healthy_seconds`; a target that exits (exit 78 included) or does not start in time is stopped, the snapshot put back and the previous release started again: the gateway is `failed` with `rolled_back: true` and uncordoned, and the operation ends `reverted`. Then the new process is checked back like any upgraded gateway (another bootId, `health`, `/readyz`, the canary's bake). Answered at once; follow it with `GET /api/operations/{id}`. A daemon restart resumes it.",
    request_body = UpgradeRequest,
    responses((status = 202, body = OperationEnvelope), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`gateway_busy`: a gateway is already in a running operation")))]
pub async fn upgrade(
    state: web::Data<AppState>,
    who: Authenticated,
    visible: Visible,
    body: JsonBody<UpgradeRequest>,
) -> Result<HttpResponse, ApiError> {
    let all = picked(&state, body.0.selector.as_ref()).await?;
    let order = body.0.validate(|| all)?;
    start(&state, &who, &visible, order).await
}

/// An operation id from the path, and how it is shown in a "not found" (ids are 27
/// characters; anything longer than 64 is no operation's).
pub(super) fn operation_id(id: String) -> Result<(OperationId, String), ApiError> {
    let shown = gateway_supervisor_actors::bounded::text(&id, 64);
    if id.len() > 64 {
        return Err(ApiError::OperationNotFound(shown));
    }
    Ok((OperationId::from(id), shown))
}

#[utoipa::path(post, path = "/api/operations/{id}/cancel", tag = "operations", params(("id" = String, Path)),
    description = "Cancels an operation in any state that is not over (`running`, `paused`, `awaiting_promotion`, `reverting`): no gateway is started any more (those not begun are `skipped`), a gateway being drained has its suspension released and is uncordoned (`skipped`), a restart already sent is seen through, and a config rollout's revert stops where it is (each gateway not put back yet is `failed`, and the operation's `detail` names them); the operation is `cancelling`, then `cancelled`. Answered at once with the operation.",
    responses((status = 202, body = OperationEnvelope), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`operation_over`: the operation is over, or already cancelling (its state says which)")))]
pub async fn cancel(
    state: web::Data<AppState>,
    who: Authenticated,
    visible: Visible,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (id, shown) = operation_id(id.into_inner())?;
    seen(&state, &visible, &id, &shown).await?;
    let op = state
        .fleet
        .operations
        .cancel_operation(id, &who.0.caller())
        .await?
        .ok_or(ApiError::OperationNotFound(shown))?;
    match op.state {
        OperationState::Cancelling => Ok(accepted(op)),
        over => Err(ApiError::OperationOver(format!(
            "operation {} is {}: there is nothing to cancel",
            op.id,
            over.as_str()
        ))),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DrainQuery {
    /// How long to wait for the gateway's work to finish: 1–3600 s, default 300.
    #[param(minimum = 1, maximum = 3600)]
    #[serde(default, deserialize_with = "super::query::integer")]
    pub timeout_seconds: Option<u64>,
    /// What the drain does at its timeout with work still running: `release` (give up: the
    /// suspension is released, the gateway stays cordoned, the operation fails) or
    /// `abort_runs` (abort the runs still going, then wait up to 60 s more for the gateway to
    /// be idle). Default `release`.
    #[param(value_type = Option<DrainTimeoutPolicy>)]
    pub on_timeout: Option<String>,
}

#[utoipa::path(post, path = "/api/gateways/{id}/drain", tag = "operations", params(("id" = i64, Path, minimum = 1), DrainQuery),
    description = "Drains the gateway: cordons it (no new spawn), suspends it with `drain` (work in progress goes on, nothing new starts) and asks again, reporting the blockers as `operation.progress` events, until it is idle (then it is suspended through this daemon: `POST …/resume` and `…/uncordon` bring it back) or the timeout (`on_timeout`: released and failed, or its runs aborted). While it waits, each gateway's progress names the runs holding it (`blocking_runs`), and `POST /api/operations/{id}/abort-runs` aborts them at once. Answered at once with the operation.",
    responses((status = 202, body = OperationEnvelope), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`gateway_busy`: the gateway is already in a running operation")))]
pub async fn drain(
    state: web::Data<AppState>,
    who: Authenticated,
    visible: Visible,
    id: web::Path<GatewayId>,
    query: web::Query<DrainQuery>,
) -> Result<HttpResponse, ApiError> {
    let order = OperationOrder {
        kind: OperationKind::Drain,
        gateways: vec![id.into_inner()],
        params: OperationParams {
            max_unavailable: 1,
            wait_ready_s: DEFAULT_WAIT_READY,
            abort_on_failure: true,
            canary: 0,
            of: KindParams::Drain(DrainParams {
                drain_timeout_s: seconds(
                    "timeout_seconds",
                    query.timeout_seconds,
                    DEFAULT_DRAIN_TIMEOUT,
                )?,
                force_after_drain: false,
                on_drain_timeout: match query.on_timeout.as_deref() {
                    None => DrainTimeoutPolicy::Release,
                    Some(word) => word.parse().map_err(|_| {
                        ApiError::field(
                            "on_timeout",
                            format!(
                                "`{}` is not a drain timeout policy: use `release` or `abort_runs`",
                                gateway_supervisor_actors::bounded::text(word, 40)
                            ),
                        )
                    })?,
                },
            }),
        },
    };
    start(&state, &who, &visible, order).await
}

#[utoipa::path(post, path = "/api/operations/{id}/abort-runs", tag = "operations", params(("id" = String, Path)),
    description = "Aborts the runs that hold the operation's drains now, on every gateway of it that is draining. A 2026.9 gateway refuses `sessions.abort` while suspended, so each is done in the order it accepts: the suspension released, each active run aborted (`sessions.abort`), the gateway suspended again (it stays cordoned throughout). The progress says which runs were aborted; the drain then waits up to `wait_ready` more for the gateway to be idle. Answered at once with the operation.",
    responses((status = 202, body = OperationEnvelope), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`operation_over`: the operation is not running; `gateway_busy`: none of its gateways is draining")))]
pub async fn abort_runs(
    state: web::Data<AppState>,
    who: Authenticated,
    visible: Visible,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (id, shown) = operation_id(id.into_inner())?;
    seen(&state, &visible, &id, &shown).await?;
    let asked = state
        .fleet
        .operations
        .abort_operation_runs(id, &who.0.caller())
        .await?
        .ok_or(ApiError::OperationNotFound(shown))?;
    match asked {
        AbortAsked::Asked(op) => Ok(accepted(op)),
        AbortAsked::Over(op) => Err(ApiError::OperationOver(format!(
            "operation {} is {}, not running: there is nothing to abort",
            op.id,
            op.state.as_str()
        ))),
        AbortAsked::NothingDraining(op) => Err(ApiError::GatewayBusy {
            message: format!(
                "no gateway of operation {} is draining now: there is no run holding a drain to abort",
                op.id
            ),
            details: serde_json::json!({"operation_id": op.id,
                "steps": op.progress.iter().map(|p| serde_json::json!({"gateway_id": p.gateway_id, "step": p.step.name()})).collect::<Vec<_>>()}),
        }),
    }
}

#[utoipa::path(get, path = "/api/operations/{id}", tag = "operations", params(("id" = String, Path)),
    description = "One operation with each gateway's step.",
    responses((status = 200, body = OperationEnvelope), (status = 404, body = ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    visible: Visible,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (id, shown) = operation_id(id.into_inner())?;
    let op = seen(&state, &visible, &id, &shown).await?;
    Ok(HttpResponse::Ok().json(OperationEnvelope {
        operation: op.into(),
    }))
}

/// Operation `id` if the caller sees it — all its gateways in scope — else its not-found.
pub(super) async fn seen(
    state: &AppState,
    visible: &Visible,
    id: &OperationId,
    shown: &str,
) -> Result<crate::db::operations::Operation, ApiError> {
    state
        .fleet
        .operations
        .operation(id.clone())
        .await?
        .filter(|op| visible.all(op.progress.iter().map(|p| p.gateway_id)))
        .ok_or_else(|| ApiError::OperationNotFound(shown.to_owned()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OperationsQuery {
    /// 1–1000, default 50.
    #[param(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "super::query::integer")]
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/operations", tag = "operations", params(OperationsQuery),
    description = "Operations, newest first.",
    responses((status = 200, body = OperationList), (status = 400, body = ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    visible: Visible,
    query: web::Query<OperationsQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = super::query::limit(query.limit, 50)?;
    // A scoped key's are among the newest 1,000 (the store keeps no tenant per operation: an
    // operation is seen when all its gateways are).
    let read = if visible.sees_all() {
        limit
    } else {
        MAX_SCOPED_READ
    };
    let mut ops = state.fleet.operations.operations(read).await?;
    ops.retain(|op| visible.all(op.progress.iter().map(|p| p.gateway_id)));
    ops.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(HttpResponse::Ok().json(OperationList {
        operations: ops.into_iter().map(OperationJson::from).collect(),
    }))
}

/// The most operations read to find a scoped key's page.
const MAX_SCOPED_READ: i64 = 1000;
