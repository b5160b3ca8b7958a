//! `GET /api/gateways?limit=&cursor=&q=&status=&version=&selector=`: one page of the gateway
//! list, for a client that shows a large fleet a page at a time (the web console at 10,000
//! gateways, a script walking 100,000) instead of reading all of it. Without any of these
//! parameters the route answers the whole list as before (served from its cache). A page
//! carries what a fleet overview needs beside its rows: how many gateways match, how many there
//! are per status, and the acting primary.
//!
//! Pages follow one stable order — the designated primary first, then by name, then by id —
//! and `next_cursor` names the last row's place in it: the next page starts after that place,
//! so a gateway added or removed meanwhile neither repeats a row nor skips one, as an `offset`
//! would (kept for the console's page numbers).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::gateway_json::GatewayJson;
use gateway_supervisor_actors::labels::Selector;
use gateway_supervisor_actors::model::{GatewayId, GatewayStatus, GatewayView};

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
    /// Matching gateways skipped before the page (not with `cursor`).
    #[serde(default, deserialize_with = "super::query::integer")]
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub offset: Option<usize>,
    /// The page after the one that gave this `next_cursor` (opaque; not with `offset`).
    #[param(max_length = 512)]
    pub cursor: Option<String>,
    /// Only gateways whose name contains this text (case-insensitive; up to 128 characters).
    pub q: Option<String>,
    /// Only gateways with this status.
    pub status: Option<String>,
    /// Only gateways whose handshake reported this release (`2026.9.6`).
    #[param(max_length = 64)]
    pub version: Option<String>,
    /// Only gateways whose labels this selector picks (`region=eu,tier!=canary`,
    /// `tier in (a,b)`, `!canary`; Kubernetes' syntax).
    pub selector: Option<String>,
}

/// A place in the list's order: the designated primary first, then by name, then by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    not_primary: bool,
    name: String,
    id: GatewayId,
}

impl Place {
    pub fn of(v: &GatewayView) -> Place {
        Place {
            not_primary: !v.record.is_primary,
            name: v.record.name.clone(),
            id: v.record.id,
        }
    }

    /// Whether `v` comes after this place in the list's order (compared in place: no copy of
    /// its name per step of the search).
    fn precedes(&self, v: &GatewayView) -> bool {
        let r = &v.record;
        (self.not_primary, self.name.as_str(), self.id) < (!r.is_primary, r.name.as_str(), r.id)
    }

    /// As a cursor: opaque to clients, base64url of `p:id:name`.
    pub fn cursor(&self) -> String {
        let p = u8::from(!self.not_primary);
        URL_SAFE_NO_PAD.encode(format!("{p}:{}:{}", self.id, self.name))
    }

    fn parse(cursor: &str) -> Option<Place> {
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
        let mut parts = text.splitn(3, ':');
        let primary = match parts.next()? {
            "1" => true,
            "0" => false,
            _ => return None,
        };
        let id = parts.next()?.parse().ok()?;
        Some(Place {
            not_primary: !primary,
            id,
            name: parts.next()?.to_owned(),
        })
    }
}

/// A validated page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery {
    pub limit: usize,
    pub offset: usize,
    /// Only rows after this place (a cursor).
    pub after: Option<Place>,
    /// Only gateways on this release.
    pub version: Option<String>,
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
            && self.cursor.is_none()
            && self.q.is_none()
            && self.status.is_none()
            && self.version.is_none()
            && self.selector.is_none()
        {
            return Ok(None);
        }
        if self.offset.is_some() && self.cursor.is_some() {
            return Err(ApiError::field(
                "cursor",
                "give either cursor or offset, not both",
            ));
        }
        let after = match self.cursor.as_deref() {
            None => None,
            Some(c) if c.len() > 512 => {
                return Err(ApiError::field(
                    "cursor",
                    "cursor is at most 512 characters",
                ));
            }
            Some(c) => Some(Place::parse(c).ok_or_else(|| {
                ApiError::field(
                    "cursor",
                    "cursor is not one this daemon gave (use a page's next_cursor as it is)",
                )
            })?),
        };
        let version = match self.version.as_deref().map(str::trim) {
            Some(v) if v.chars().count() > 64 => {
                return Err(ApiError::field(
                    "version",
                    "version is at most 64 characters",
                ));
            }
            Some(v) if !v.is_empty() => Some(v.to_owned()),
            _ => None,
        };
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
            after,
            version,
            name_contains,
            status,
            selector,
        }))
    }
}

/// The acting primary, named.
#[derive(Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct PrimaryRef {
    pub id: GatewayId,
    pub name: String,
}

/// One page of the list.
#[derive(Debug, Serialize, ToSchema)]
pub struct GatewayPage {
    /// The page's gateways, primary first, then by name.
    pub gateways: Vec<GatewayJson>,
    /// Gateways that match `q`, `status`, `version` and `selector` (on every page, not only
    /// after the cursor).
    pub total: usize,
    pub limit: usize,
    pub offset: usize,
    /// Where the next page starts (`cursor=`); `null` on the last page.
    pub next_cursor: Option<String>,
    /// Every gateway (not only the matching ones) per status, each status present.
    #[schema(value_type = Object)]
    pub counts: BTreeMap<&'static str, usize>,
    pub acting_primary: Option<PrimaryRef>,
}

/// The page `q` asks of `views` (in the list's order).
pub fn page(views: &[std::sync::Arc<GatewayView>], q: &PageQuery) -> GatewayPage {
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
        .map(|v| &**v)
        .filter(|v| q.status.is_none_or(|s| v.record.status == s))
        .filter(|v| {
            q.version
                .as_deref()
                .is_none_or(|want| v.connection.server_version.as_deref() == Some(want))
        })
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
    // `views` is in the list's order, so the rows after a place start where it would be.
    let start = match &q.after {
        Some(after) => matching.partition_point(|v| !after.precedes(v)),
        None => q.offset.min(matching.len()),
    };
    let rows = &matching[start..matching.len().min(start.saturating_add(q.limit))];
    let next_cursor = (start + rows.len() < matching.len())
        .then(|| rows.last().map(|v| Place::of(v).cursor()))
        .flatten();
    GatewayPage {
        gateways: rows.iter().map(|v| GatewayJson::from(*v)).collect(),
        total: matching.len(),
        limit: q.limit,
        offset: start,
        next_cursor,
        counts,
        acting_primary,
    }
}
