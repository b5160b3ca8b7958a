//! `GET /api/usage`: the usage and cost the gateways reported (`usage.cost`, rolled up per
//! gateway, agent and day), summed over a range of days and grouped as asked. The rows are in
//! the database every instance shares, so any instance answers for the whole cluster.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::fleet::usage::rollup::{self, Group, GroupBy, Totals};
use crate::fleet::usage::{days_ago, today};
use gateway_supervisor_actors::model::GatewayId;

/// Rows read for one answer; past it the answer says `truncated`.
const MAX_ROWS: i64 = 200_000;
/// Days one answer may span.
const MAX_DAYS: usize = 366;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// First day, `YYYY-MM-DD` (default: 29 days before today, UTC).
    #[param(format = Date)]
    pub since: Option<String>,
    /// Last day, `YYYY-MM-DD` (default: today, UTC); at most 366 days after `since`.
    #[param(format = Date)]
    pub until: Option<String>,
    /// Comma-separated: `gateway`, `agent`, `day` (default `gateway,agent`; empty: one total).
    #[param(pattern = "^((gateway|agent|day)(,(gateway|agent|day))*)?$")]
    pub group_by: Option<String>,
}

/// A validated question.
struct UsageRequest {
    since: String,
    until: String,
    group_by: Vec<GroupBy>,
}

impl UsageQuery {
    fn validate(self) -> Result<UsageRequest, ApiError> {
        let day = |field: &str, v: Option<String>, default: String| match v {
            None => Ok(default),
            Some(d) if rollup::is_day(&d) => Ok(d),
            Some(_) => Err(ApiError::field(
                field,
                format!("{field} must be a day, YYYY-MM-DD"),
            )),
        };
        let since = day("since", self.since, days_ago(29))?;
        let until = day("until", self.until, today())?;
        // Each a day, together contradictory: 422, not 400.
        if since > until {
            return Err(ApiError::Unprocessable(format!(
                "since ({since}) must not be after until ({until})"
            )));
        }
        let span = rollup::day_number(&until)
            .zip(rollup::day_number(&since))
            .map(|(u, s)| u - s)
            .unwrap_or(0);
        if span >= MAX_DAYS as i64 {
            return Err(ApiError::Unprocessable(format!(
                "since..until covers at most {MAX_DAYS} days ({since}..{until} is longer)"
            )));
        }
        let group_by = match self.group_by.as_deref() {
            None => vec![GroupBy::Gateway, GroupBy::Agent],
            Some(list) => {
                let mut by = list
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::parse)
                    .collect::<Result<Vec<GroupBy>, String>>()
                    .map_err(|e| ApiError::field("group_by", e))?;
                by.sort_unstable();
                by.dedup();
                by
            }
        };
        Ok(UsageRequest {
            since,
            until,
            group_by,
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct UsageReport {
    pub since: String,
    pub until: String,
    #[schema(value_type = Vec<String>)]
    pub group_by: Vec<GroupBy>,
    /// In key order.
    pub groups: Vec<Group>,
    pub totals: Totals,
    /// More rows than one answer reads: the sums are partial (narrow the range).
    pub truncated: bool,
}

#[utoipa::path(get, path = "/api/usage", tag = "usage", params(UsageQuery),
    description = "Tokens and cost the gateways reported through `usage.cost` (OpenClaw 2026.9; read every `usage.interval`), per gateway, agent and day as each gateway counts its days, summed over `since..=until` (at most 366 days) and grouped by `group_by`. 2026.9.6 reports no per-model breakdown, so there is none.",
    responses((status = 200, body = UsageReport), (status = 400, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "`unprocessable`: `since` after `until`, or more than 366 days apart")))]
pub async fn report(
    state: web::Data<AppState>,
    visible: super::visible::Visible,
    query: web::Query<UsageQuery>,
) -> Result<HttpResponse, ApiError> {
    let req = query.into_inner().validate()?;
    let (since, until) = (req.since.clone(), req.until.clone());
    let within: Option<Vec<GatewayId>> = visible.ids().map(|ids| ids.into_iter().collect());
    let store = state.store.clone();
    let rows = super::blocking(move || {
        store.usage_between(&since, &until, within.as_deref(), MAX_ROWS + 1)
    })
    .await?;
    let truncated = rows.len() as i64 > MAX_ROWS;
    let (groups, totals) = rollup::group(&rows[..rows.len().min(MAX_ROWS as usize)], &req.group_by);
    Ok(HttpResponse::Ok().json(UsageReport {
        since: req.since,
        until: req.until,
        group_by: req.group_by,
        groups,
        totals,
        truncated,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SpendQuery {
    /// First day, `YYYY-MM-DD` (default: 29 days before today, UTC).
    #[param(format = Date)]
    pub since: Option<String>,
    /// Last day, `YYYY-MM-DD` (default: today, UTC); at most 366 days after `since`.
    #[param(format = Date)]
    pub until: Option<String>,
    /// Comma-separated: `key`, `tenant`, `agent`, `gateway`, `day` (default `key`; empty: one
    /// total).
    #[param(pattern = "^((key|tenant|agent|gateway|day)(,(key|tenant|agent|gateway|day))*)?$")]
    pub group_by: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SpendReport {
    pub since: String,
    pub until: String,
    #[schema(value_type = Vec<String>)]
    pub group_by: Vec<crate::spend::report::SpendBy>,
    /// In key order.
    pub groups: Vec<crate::spend::report::SpendGroup>,
    pub totals: crate::spend::report::SpendTotals,
    /// What the same gateways reported themselves for the same days (`usage.cost`, as
    /// `GET /api/usage`): all their work, runs no key started (cron, channels) included.
    pub gateway_reported_usd: f64,
    /// Of that, what no spawn through this daemon accounts for (0 when the spawns' settled
    /// costs are more, e.g. a day the gateways have not reported yet).
    pub unattributed_usd: f64,
    /// More spawns than one answer reads: the sums are partial (narrow the range).
    pub truncated: bool,
}

#[utoipa::path(get, path = "/api/usage/spend", tag = "usage", params(SpendQuery),
    description = "Cost per key: every spawn's cost (settled at what its gateway said the run cost, or its estimate while it goes or where the gateway gave none: `estimated_runs`) attributed to the API key and the tenant that made it, summed over `since..=until` (UTC days the spawns were made) and grouped by `group_by`; beside it the gateways' own totals for the same days and what no spawn accounts for (cron, channels). A key scoped to a tenant sees its tenant's gateways only.",
    responses((status = 200, body = SpendReport), (status = 400, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "`unprocessable`: `since` after `until`, or more than 366 days apart")))]
pub async fn spend(
    state: web::Data<AppState>,
    visible: super::visible::Visible,
    query: web::Query<SpendQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let days = UsageQuery {
        since: q.since,
        until: q.until,
        group_by: Some(String::new()),
    }
    .validate()?;
    let by = match q.group_by.as_deref() {
        None => vec![crate::spend::report::SpendBy::Key],
        Some(list) => {
            let mut by = list
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::parse)
                .collect::<Result<Vec<_>, String>>()
                .map_err(|e| ApiError::field("group_by", e))?;
            by.sort_unstable();
            by.dedup();
            by
        }
    };
    let day_start = |d: &str| rollup::day_number(d).unwrap_or(0).saturating_mul(86_400);
    let (from, to) = (day_start(&days.since), day_start(&days.until) + 86_400);
    let within: Option<Vec<GatewayId>> = visible.ids().map(|ids| ids.into_iter().collect());
    let store = state.store.clone();
    let (since, until) = (days.since.clone(), days.until.clone());
    let (entries, reported) = super::blocking(move || {
        let entries = store.spend_entries(from, to, within.as_deref(), MAX_ROWS + 1)?;
        let reported = store.usage_between(&since, &until, within.as_deref(), MAX_ROWS)?;
        Ok((entries, reported))
    })
    .await?;
    let truncated = entries.len() as i64 > MAX_ROWS;
    let read = &entries[..entries.len().min(MAX_ROWS as usize)];
    let (groups, totals) = crate::spend::report::group(read, &by);
    let (_, gateway_totals) = rollup::group(&reported, &[]);
    let reported_usd = gateway_totals.cost_usd;
    Ok(HttpResponse::Ok().json(SpendReport {
        since: days.since,
        until: days.until,
        group_by: by,
        groups,
        unattributed_usd: (reported_usd - totals.cost_usd).max(0.0),
        gateway_reported_usd: reported_usd,
        totals,
        truncated,
    }))
}
