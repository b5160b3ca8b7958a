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
                    .filter(|s| !s.trim().is_empty())
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
