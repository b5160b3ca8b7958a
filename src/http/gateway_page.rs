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

use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::gateway_json::GatewayJson;
use crate::gateway_reads::list_order;
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

impl PageQuery {
    /// `limit` gateways after the first `offset`, every gateway matching.
    pub fn window(limit: usize, offset: usize) -> PageQuery {
        PageQuery {
            limit,
            offset,
            after: None,
            version: None,
            name_contains: None,
            status: None,
            selector: None,
        }
    }
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

/// A page of the list made while the gateways are met one at a time, in any order
/// (`GatewayReads::walk`): it keeps the counts, the acting primary and the `offset + limit`
/// first matching gateways in the list's order — not the fleet. Cost per gateway met: a count,
/// the filters, and for a matching one a comparison with the last kept (a heap's push and pop
/// when it comes before it).
pub struct Pager<'q> {
    q: &'q PageQuery,
    counts: BTreeMap<&'static str, usize>,
    acting_primary: Option<PrimaryRef>,
    /// Matching gateways met.
    total: usize,
    /// Matching gateways at or before the cursor's place.
    before: usize,
    /// The first `keep` matching gateways after the cursor, the last in the order on top.
    kept: BinaryHeap<Listed>,
    keep: usize,
}

/// A gateway ordered as the list orders it.
struct Listed(Arc<GatewayView>);

impl Listed {
    fn key(&self) -> (bool, &str, GatewayId) {
        list_order(&self.0)
    }
}

impl PartialEq for Listed {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Listed {}
impl PartialOrd for Listed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Listed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl<'q> Pager<'q> {
    pub fn new(q: &'q PageQuery) -> Pager<'q> {
        let keep = match q.after {
            Some(_) => q.limit,
            None => q.offset.saturating_add(q.limit),
        };
        Pager {
            q,
            counts: GatewayStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect(),
            acting_primary: None,
            total: 0,
            before: 0,
            kept: BinaryHeap::new(),
            keep,
        }
    }

    /// Meets one gateway (each once).
    pub fn meet(&mut self, v: &Arc<GatewayView>) {
        *self.counts.entry(v.record.status.as_str()).or_default() += 1;
        if v.acting_primary {
            self.acting_primary = Some(PrimaryRef {
                id: v.record.id,
                name: v.record.name.clone(),
            });
        }
        if !self.matches(v) {
            return;
        }
        self.total += 1;
        if self
            .q
            .after
            .as_ref()
            .is_some_and(|after| !after.precedes(v))
        {
            self.before += 1;
            return;
        }
        // Compared before it is kept: no pointer copied for a gateway past the page.
        if self.kept.len() < self.keep {
            self.kept.push(Listed(v.clone()));
        } else if self
            .kept
            .peek()
            .is_some_and(|last| list_order(v) < last.key())
        {
            self.kept.pop();
            self.kept.push(Listed(v.clone()));
        }
    }

    fn matches(&self, v: &GatewayView) -> bool {
        let q = self.q;
        q.status.is_none_or(|s| v.record.status == s)
            && q.version
                .as_deref()
                .is_none_or(|want| v.connection.server_version.as_deref() == Some(want))
            && q.selector
                .as_ref()
                .is_none_or(|s| s.matches(&v.record.labels))
            && q.name_contains
                .as_deref()
                .is_none_or(|n| v.record.name.to_lowercase().contains(n))
    }

    /// The page's gateways in the list's order, the matching total and where the page starts
    /// among them.
    pub fn rows(self) -> (Vec<Arc<GatewayView>>, usize, usize) {
        let q = self.q;
        let mut kept: Vec<Arc<GatewayView>> = self
            .kept
            .into_sorted_vec()
            .into_iter()
            .map(|l| l.0)
            .collect();
        let start = match q.after {
            Some(_) => self.before,
            None => {
                kept.drain(..q.offset.min(kept.len()));
                q.offset.min(self.total)
            }
        };
        (kept, self.total, start)
    }

    /// The page.
    pub fn finish(mut self) -> GatewayPage {
        let counts = std::mem::take(&mut self.counts);
        let acting_primary = self.acting_primary.take();
        let limit = self.q.limit;
        let (rows, total, start) = self.rows();
        let next_cursor = (start + rows.len() < total)
            .then(|| rows.last().map(|v| Place::of(v).cursor()))
            .flatten();
        GatewayPage {
            gateways: rows.iter().map(|v| GatewayJson::from(&**v)).collect(),
            total,
            limit,
            offset: start,
            next_cursor,
            counts,
            acting_primary,
        }
    }
}

#[cfg(test)]
mod tests {
    use gateway_supervisor_actors::model::{
        BreakerInfo, ConnectionInfo, GatewayRecord, LiveReadings,
    };

    use super::*;

    /// Gateways `gw00`…, the 4th the designated and acting primary, every 3rd online, met in a
    /// shuffled order (as a cluster's rows come, by id, not by name).
    fn fleet(n: i64) -> Vec<Arc<GatewayView>> {
        let mut views: Vec<Arc<GatewayView>> = (1..=n)
            .map(|id| {
                let mut record = GatewayRecord::new(
                    GatewayId(id),
                    format!("gw{:02}", (id * 7) % n),
                    "h".into(),
                    1,
                );
                record.is_primary = id == 4;
                if id % 3 == 0 {
                    record.status = GatewayStatus::Online;
                }
                Arc::new(GatewayView {
                    record,
                    acting_primary: id == 4,
                    connection: Arc::new(ConnectionInfo::default()),
                    breaker: BreakerInfo::default(),
                    live: LiveReadings::default(),
                    vouched: Default::default(),
                })
            })
            .collect();
        views.reverse();
        views.swap(0, 5);
        views
    }

    fn query(limit: usize) -> PageQuery {
        GatewayListQuery {
            limit: Some(limit),
            ..Default::default()
        }
        .validate()
        .unwrap()
        .unwrap()
    }

    fn page(views: &[Arc<GatewayView>], q: &PageQuery) -> GatewayPage {
        let mut pager = Pager::new(q);
        views.iter().for_each(|v| pager.meet(v));
        pager.finish()
    }

    fn names(p: &GatewayPage) -> Vec<String> {
        p.gateways.iter().map(|g| g.name.clone()).collect()
    }

    /// Walking the pages by cursor meets every gateway once, the primary first and then by
    /// name, whatever order the gateways were met in; each page counts the whole fleet.
    #[test]
    fn cursor_pages_list_each_gateway_once_in_the_list_s_order() {
        let views = fleet(20);
        let mut expected: Vec<&GatewayView> = views.iter().map(|v| &**v).collect();
        expected.sort_by_key(|v| (!v.record.is_primary, v.record.name.clone()));
        let expected: Vec<String> = expected.iter().map(|v| v.record.name.clone()).collect();
        let mut seen = Vec::new();
        let mut q = query(6);
        loop {
            let p = page(&views, &q);
            assert_eq!(p.total, 20);
            assert_eq!(p.offset, seen.len());
            assert_eq!(p.counts["online"], 6);
            assert_eq!(p.acting_primary.as_ref().map(|a| a.id), Some(GatewayId(4)));
            seen.extend(names(&p));
            let Some(next) = p.next_cursor else { break };
            q.after = Place::parse(&next);
        }
        assert_eq!(seen, expected);
        assert_eq!(seen[0], "gw08", "the primary first");
    }

    /// An offset skips that many matching gateways; past the end it answers no rows and no
    /// cursor; a filter counts only what matches, the per-status counts still every gateway.
    #[test]
    fn offsets_and_filters_page_the_matching_gateways() {
        let views = fleet(20);
        let all = names(&page(&views, &query(20)));
        let mut q = query(5);
        q.offset = 7;
        let p = page(&views, &q);
        assert_eq!(names(&p), all[7..12]);
        assert!(p.next_cursor.is_some());
        q.offset = 25;
        let p = page(&views, &q);
        assert!(p.gateways.is_empty());
        assert_eq!((p.offset, p.next_cursor), (20, None));
        let mut q = query(1);
        q.status = Some(GatewayStatus::Online);
        let p = page(&views, &q);
        assert_eq!((p.total, p.gateways.len()), (6, 1));
        assert_eq!(p.counts["unknown"], 14);
        assert_eq!(p.gateways[0].status, "online");
    }
}
