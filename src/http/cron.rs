//! The fleet's cron jobs: `GET /api/cron/jobs` (every gateway's, as their last `cron.list`
//! said — from the store, so any instance answers — filtered, by cursor) and
//! `GET /api/cron/jobs/{gateway_id}/{job_id}` (one job, its missed fires, and its recent runs
//! read from its gateway: through the instance linking it, in a cluster). The gateways' own
//! jobs (heartbeat, memory promotion, skill review) are left out unless `system=true`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::cron::runs::CronRun;
use crate::db::cron::{CronJobFilter, CronJobRow, CronMissRow};
use crate::domain::{CronJobStatus, CronMissCause};
use gateway_supervisor_actors::bounded;
use gateway_supervisor_actors::model::GatewayId;

/// Longest job id taken in a path or a cursor.
const ID_MAX: usize = 128;
/// Missed fires shown with a job.
const MISSES_SHOWN: i64 = 20;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CronJobsQuery {
    /// Only the jobs of gateways whose labels this selector picks (`region=eu`).
    pub selector: Option<String>,
    #[serde(default, deserialize_with = "super::query::id")]
    pub gateway_id: Option<GatewayId>,
    /// The agent that runs the job (`effectiveAgentId`).
    #[param(min_length = 1, max_length = 128)]
    pub agent: Option<String>,
    /// A part of the job's name, case aside.
    #[param(min_length = 1, max_length = 128)]
    pub q: Option<String>,
    /// enabled | disabled | failing | duplicate | missed
    #[param(pattern = "^(enabled|disabled|failing|duplicate|missed)$")]
    pub status: Option<String>,
    /// The gateways' own jobs too (heartbeat, memory promotion, skill review).
    #[serde(default)]
    pub system: Option<bool>,
    /// 1–1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    #[serde(default, deserialize_with = "super::query::integer")]
    pub limit: Option<i64>,
    /// The `next_cursor` of the page before.
    #[param(pattern = "^[0-9]{1,18}_[!-~]{1,128}$")]
    pub cursor: Option<String>,
}

/// A job as the fleet view shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CronJobView {
    #[schema(value_type = i64)]
    pub gateway_id: GatewayId,
    pub job_id: String,
    pub name: String,
    pub declaration_key: Option<String>,
    /// The agent that runs it.
    pub agent: Option<String>,
    pub enabled: bool,
    /// The gateway's own job (heartbeat, memory promotion, skill review).
    pub system: bool,
    /// As the gateway reports it: `{kind: "cron", expr, tz?, staggerMs?}`, `{kind: "every",
    /// everyMs, anchorMs?}`, `{kind: "at", …}`, …
    #[schema(value_type = Object)]
    pub schedule: Value,
    pub next_run_at_ms: Option<i64>,
    pub last_run_at_ms: Option<i64>,
    /// ok | error | skipped, as the gateway says.
    pub last_run_status: Option<String>,
    /// When this job is an enabled extra copy of another on its gateway: that job's id.
    pub duplicate_of: Option<String>,
    /// When its gateway's list was last read with it in it (Unix ms).
    pub seen_at_ms: i64,
}

impl From<CronJobRow> for CronJobView {
    fn from(r: CronJobRow) -> Self {
        CronJobView {
            schedule: serde_json::from_str(&r.schedule).unwrap_or(Value::Null),
            gateway_id: r.gateway_id,
            job_id: r.job_id,
            name: r.name,
            declaration_key: r.declaration_key,
            agent: r.agent,
            enabled: r.enabled,
            system: r.gateway_own,
            next_run_at_ms: r.next_run_at_ms,
            last_run_at_ms: r.last_run_at_ms,
            last_run_status: r.last_run_status,
            duplicate_of: r.duplicate_of,
            seen_at_ms: r.seen_at_ms,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CronJobList {
    pub jobs: Vec<CronJobView>,
    /// For the next page (`cursor=`); absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// An expected fire with no run.
#[derive(Debug, Serialize, ToSchema)]
pub struct CronMissView {
    /// The expected fire (Unix ms).
    pub slot_ms: i64,
    /// missed: the gateway was linked and skipped it; unreachable: not linked over the slot.
    pub cause: CronMissCause,
    pub found_at_ms: i64,
    /// forcing | forced | failed; absent: not run again.
    pub recovery: Option<String>,
    /// The forced run's id, or why it was refused.
    pub recovery_detail: Option<String>,
}

impl From<CronMissRow> for CronMissView {
    fn from(m: CronMissRow) -> Self {
        CronMissView {
            slot_ms: m.slot_ms,
            cause: m.cause,
            found_at_ms: m.found_at_ms,
            recovery: m.recovery,
            recovery_detail: m.recovery_detail,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CronJobEnvelope {
    pub job: CronJobView,
    /// Its last runs, newest first, from its gateway; absent when the gateway could not be
    /// asked (`runs_unavailable` says why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runs: Option<Vec<CronRun>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runs_unavailable: Option<String>,
    /// Its missed fires on record, newest first.
    pub misses: Vec<CronMissView>,
}

#[utoipa::path(get, path = "/api/cron/jobs", tag = "cron", params(CronJobsQuery),
    description = "Every gateway's cron jobs, as each gateway's last `cron.list` said (read at link, on its `cron` event and by a sweep every `[cron] sweep_interval`), by gateway and job id. The gateways' own jobs only with `system=true`.",
    responses((status = 200, body = CronJobList), (status = 400, body = ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    visible: super::visible::Visible,
    query: web::Query<CronJobsQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    if let Some(id) = q.gateway_id {
        visible.one(id)?;
    }
    let limit = super::query::limit(q.limit, 100)?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            s.parse::<CronJobStatus>().map_err(|_| {
                ApiError::field(
                    "status",
                    format!(
                        "status must be enabled, disabled, failing, duplicate or missed (got `{}`)",
                        bounded::text(s, 64)
                    ),
                )
            })
        })
        .transpose()?;
    for (field, value) in [("agent", &q.agent), ("q", &q.q)] {
        if value
            .as_deref()
            .is_some_and(|v| v.is_empty() || v.chars().count() > 128)
        {
            return Err(ApiError::field(
                field,
                format!("{field} must be 1–128 characters"),
            ));
        }
    }
    let after = q.cursor.as_deref().map(cursor).transpose()?;
    let picked = super::labels::picked(&state, q.selector.as_deref()).await?;
    let picked = match (picked, q.gateway_id) {
        (Some(set), Some(id)) => Some(
            std::collections::BTreeSet::from([id])
                .intersection(&set)
                .copied()
                .collect(),
        ),
        (None, Some(id)) => Some(std::collections::BTreeSet::from([id])),
        (set, None) => set,
    };
    let filter = CronJobFilter {
        gateways: visible.narrow(picked),
        agent: q.agent,
        q: q.q,
        status,
        system: q.system.unwrap_or(false),
        after,
    };
    let mut jobs = super::blocking({
        let store = state.store.clone();
        move || store.cron_jobs(&filter, limit + 1)
    })
    .await?;
    let more = jobs.len() as i64 > limit;
    jobs.truncate(limit as usize);
    let next_cursor = more
        .then(|| jobs.last())
        .flatten()
        .map(|j| format!("{}_{}", j.gateway_id, j.job_id));
    Ok(HttpResponse::Ok().json(CronJobList {
        jobs: jobs.into_iter().map(CronJobView::from).collect(),
        next_cursor,
    }))
}

#[utoipa::path(get, path = "/api/cron/jobs/{gateway_id}/{job_id}", tag = "cron",
    params(("gateway_id" = i64, Path, minimum = 1), ("job_id" = String, Path, min_length = 1, max_length = 128, pattern = "^[!-~]+$")),
    description = "One cron job as its gateway's last `cron.list` said, its missed fires on record, and its last runs read from the gateway now (`cron.runs`: status, times, model, tokens; the gateway reports no cost).",
    responses((status = 200, body = CronJobEnvelope), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`cron_job_not_found`")))]
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (gateway_id, job_id) = ids(path.into_inner())?;
    let (row, misses) = super::blocking({
        let (store, job_id) = (state.store.clone(), job_id.clone());
        move || {
            let row = store.cron_job(gateway_id, &job_id)?;
            let misses = store.cron_misses(gateway_id, Some(&job_id), MISSES_SHOWN)?;
            Ok((row, misses))
        }
    })
    .await?;
    let row = row.ok_or_else(|| ApiError::CronJobNotFound {
        gateway_id,
        job_id: job_id.clone(),
    })?;
    let (runs, runs_unavailable) = match state.cron.runs(gateway_id, &job_id).await {
        Ok(runs) => (Some(runs), None),
        Err(e) => match super::relay::if_elsewhere(&state, &req, None, &e).await {
            Some(relayed) => return relayed,
            // Not reachable here for another reason: the job as stored, and why no runs.
            None => (None, Some(bounded::text(&e.to_string(), 300))),
        },
    };
    Ok(HttpResponse::Ok().json(CronJobEnvelope {
        job: row.into(),
        runs,
        runs_unavailable,
        misses: misses.into_iter().map(CronMissView::from).collect(),
    }))
}

#[utoipa::path(post, path = "/api/cron/gateways/{gateway_id}/remove-duplicates", tag = "cron",
    params(("gateway_id" = i64, Path, minimum = 1)),
    description = "Removes the gateway's enabled extra copies of its jobs (same name, schedule and payload as an older job: `GET /api/cron/jobs?status=duplicate`) with `cron.remove`, keeping the oldest of each set, in one audited action. The gateway's list is read first, so only copies it has now are removed.",
    responses((status = 200, body = crate::cron::cleanup::Removed), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`unsupported_action`: the gateway's release has no cron"),
        (status = 502, body = ErrorBody, description = "the gateway refused or answered out of protocol"),
        (status = 503, body = ErrorBody, description = "`gateway_unavailable`: the gateway is not connected; `owner_unavailable`: the instance linking it does not answer"),
        (status = 504, body = ErrorBody, description = "`gateway_timeout`: the gateway did not answer in time")))]
pub async fn remove_duplicates(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: super::principal::Authenticated,
    path: web::Path<GatewayId>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let result = state
        .cron
        .remove_duplicates(id, &who.0.caller())
        .await
        .map_err(crate::cron::CronError::into_fleet);
    match super::relay::or_owner(&state, &req, None, result).await? {
        super::relay::Here::Done(done) => Ok(HttpResponse::Ok().json(done)),
        super::relay::Here::Relayed(res) => Ok(res),
    }
}

/// The path's gateway id and job id, checked.
fn ids((gateway_id, job_id): (String, String)) -> Result<(GatewayId, String), ApiError> {
    let gateway_id = gateway_id
        .parse::<GatewayId>()
        .map_err(|_| ApiError::field("gateway_id", "gateway_id must be a positive integer"))?;
    if job_id.is_empty() || job_id.len() > ID_MAX || !job_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::field(
            "job_id",
            format!("job_id must be 1–{ID_MAX} printable characters without spaces"),
        ));
    }
    Ok((gateway_id, job_id))
}

/// A `next_cursor`: `<gateway_id>_<job_id>`.
fn cursor(c: &str) -> Result<(GatewayId, String), ApiError> {
    let bad = || ApiError::field("cursor", "cursor must be a next_cursor this API returned");
    let (g, id) = c.split_once('_').ok_or_else(bad)?;
    let g = g.parse::<GatewayId>().map_err(|_| bad())?;
    if id.is_empty() || id.len() > ID_MAX {
        return Err(bad());
    }
    Ok((g, id.to_owned()))
}
