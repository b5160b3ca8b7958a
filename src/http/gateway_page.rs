//! `GET /api/gateways?limit=&offset=&q=&status=&selector=`: one page of the gateway list, for a client
//! that shows a large fleet a page at a time (the web console at 10,000 gateways) instead of
//! reading all of it. Without any of these parameters the route answers the whole list as
//! before (served from its cache). A page carries what a fleet overview needs beside its rows:
//! how many gateways match, how many there are per status, and the acting primary.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::gateway_json::GatewayJson;
use gateway_supervisor_actors::labels::Selector;
use gateway_supervisor_actors::model::{GatewayStatus, GatewayView};

/// The largest page.
pub const MAX_LIMIT: usize = 1000;
/// A page when only `offset`, `q` or `status` is given.
pub const DEFAULT_LIMIT: usize = 100;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GatewayListQuery {
    /// Rows in the page (1–1000; 100 when another paging parameter is given). Any of `limit`,
    /// `offset`, `q`, `status` asks for a page instead of the whole list.
    #[serde(default, deserialize_with = "super::query::integer")]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Matching gateways skipped before the page.
    #[serde(default, deserialize_with = "super::query::integer")]
    #[param(minimum = 0)]
    pub offset: Option<usize>,
    /// Only gateways whose name contains this text (case-insensitive; up to 128 characters).
    pub q: Option<String>,
    /// Only gateways with this status.
    pub status: Option<String>,
    /// Only gateways whose labels this selector picks (`region=eu,tier!=canary`,
    /// `tier in (a,b)`, `!canary`; Kubernetes' syntax).
    pub selector: Option<String>,
}

/// A validated page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery {
    pub limit: usize,
    pub offset: usize,
    /// Lower-cased.
    pub name_contains: Option<String>,
    pub status: Option<GatewayStatus>,
    pub selector: Option<Selector>,
}

impl GatewayListQuery {
    /// `None`: the whole list was asked for.
    pub fn validate(&self) -> Result<Option<PageQuery>, ApiError> {
        if self.limit.is_none()
            && self.offset.is_none()
            && self.q.is_none()
            && self.status.is_none()
            && self.selector.is_none()
        {
            return Ok(None);
        }
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::field("limit", "limit must be between 1 and 1000"));
        }
        let name_contains = match self.q.as_deref().map(str::trim) {
            Some(q) if q.chars().count() > 128 => {
                return Err(ApiError::field("q", "q is at most 128 characters"));
            }
            Some(q) if !q.is_empty() => Some(q.to_lowercase()),
            _ => None,
        };
        let status = match self.status.as_deref() {
            None => None,
            Some(s) => Some(s.parse::<GatewayStatus>().map_err(|_| {
                ApiError::field(
                    "status",
                    "status must be one of unknown, online, degraded, timeout, offline",
                )
            })?),
        };
        let selector = self
            .selector
            .as_deref()
            .map(|s| super::labels::selector("selector", s))
            .transpose()?;
        Ok(Some(PageQuery {
            limit,
            offset: self.offset.unwrap_or(0),
            name_contains,
            status,
            selector,
        }))
    }
}

/// The acting primary, named.
#[derive(Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct PrimaryRef {
    pub id: i64,
    pub name: String,
}

/// One page of the list.
#[derive(Debug, Serialize, ToSchema)]
pub struct GatewayPage {
    /// The page's gateways, primary first, then by name.
    pub gateways: Vec<GatewayJson>,
    /// Gateways that match `q`, `status` and `selector`.
    pub total: usize,
    pub limit: usize,
    pub offset: usize,
    /// Every gateway (not only the matching ones) per status, each status present.
    #[schema(value_type = Object)]
    pub counts: BTreeMap<&'static str, usize>,
    pub acting_primary: Option<PrimaryRef>,
}

/// The page `q` asks of `views` (in the list's order).
pub fn page(views: &[GatewayView], q: &PageQuery) -> GatewayPage {
    let mut counts: BTreeMap<&'static str, usize> =
        GatewayStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for v in views {
        *counts.entry(v.record.status.as_str()).or_default() += 1;
    }
    let acting_primary = views.iter().find(|v| v.acting_primary).map(|v| PrimaryRef {
        id: v.record.id,
        name: v.record.name.clone(),
    });
    let matching: Vec<&GatewayView> = views
        .iter()
        .filter(|v| q.status.is_none_or(|s| v.record.status == s))
        .filter(|v| {
            q.selector
                .as_ref()
                .is_none_or(|s| s.matches(&v.record.labels))
        })
        .filter(|v| {
            q.name_contains
                .as_deref()
                .is_none_or(|n| v.record.name.to_lowercase().contains(n))
        })
        .collect();
    GatewayPage {
        gateways: matching
            .iter()
            .skip(q.offset)
            .take(q.limit)
            .map(|v| GatewayJson::from(*v))
            .collect(),
        total: matching.len(),
        limit: q.limit,
        offset: q.offset,
        counts,
        acting_primary,
    }
}
