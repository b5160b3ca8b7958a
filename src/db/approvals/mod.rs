//! The approvals inbox as stored: one row per (gateway, approval id), written when the gateway
//! asks and ended once — an end is written only over `pending`, so the first end recorded is
//! the one kept, on every instance of a cluster (docs/design.md, *Approvals*).

use diesel::prelude::*;

use crate::db::schema::approvals;
use crate::db::{DbError, Store, is_unique_violation};

use crate::domain::ApprovalId;
use crate::domain::approval::{Approval, ApprovalStatus, Ending, ResolvedBy};
use gateway_supervisor_actors::model::GatewayId;
use gateway_supervisor_actors::protocol::approvals::{Decision, Requested};

/// Ended approvals are kept this long (the gateway's own history keeps 30 days too).
pub const KEPT_MS: i64 = 30 * 86_400_000;

/// Pending approvals kept per gateway: a gateway asking for more (a hostile one, or a loop)
/// has the rest refused here, and they end on the gateway by its own timeout.
pub const PENDING_PER_GATEWAY: i64 = 1000;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = approvals)]
struct Row {
    gateway_id: GatewayId,
    #[diesel(deserialize_as = String)]
    approval_id: ApprovalId,
    kind: String,
    status: String,
    reason: Option<String>,
    decision: Option<String>,
    command: String,
    warning: Option<String>,
    severity: Option<String>,
    agent_id: Option<String>,
    session_key: Option<String>,
    run_id: Option<String>,
    host: Option<String>,
    boot_id: Option<String>,
    created_at_ms: i64,
    expires_at_ms: i64,
    resolved_at_ms: Option<i64>,
    resolved_by: Option<String>,
    resolver_key_id: Option<i64>,
    resolver_label: Option<String>,
    escalated_at_ms: Option<i64>,
    offered: Option<String>,
    whole: bool,
}

impl TryFrom<Row> for Approval {
    type Error = DbError;
    fn try_from(r: Row) -> Result<Self, DbError> {
        let damaged = || DbError::Damaged("an approval row");
        Ok(Approval {
            gateway_id: r.gateway_id,
            id: r.approval_id,
            kind: r.kind,
            status: ApprovalStatus::parse(&r.status).ok_or_else(damaged)?,
            reason: r.reason,
            decision: r.decision,
            command: r.command,
            warning: r.warning,
            severity: r.severity,
            agent_id: r.agent_id,
            session_key: r.session_key,
            run_id: r.run_id,
            host: r.host,
            created_at_ms: r.created_at_ms,
            expires_at_ms: r.expires_at_ms,
            resolved_at_ms: r.resolved_at_ms,
            resolved_by: match r.resolved_by {
                Some(by) => Some(ResolvedBy::parse(&by).ok_or_else(damaged)?),
                None => None,
            },
            resolver_key_id: r.resolver_key_id,
            resolver_label: r.resolver_label,
            escalated_at_ms: r.escalated_at_ms,
            boot_id: r.boot_id,
            offered_decisions: match r.offered {
                // Words this program wrote; an unknown one is left out, never offered.
                Some(words) => words.split(',').filter_map(Decision::parse).collect(),
                None => Decision::ALL.to_vec(),
            },
            presented_whole: r.whole,
            gateway_reachable: None,
        })
    }
}

/// What a listing asks for.
#[derive(Debug, Clone, Default)]
pub struct ApprovalFilter {
    pub status: Option<ApprovalStatus>,
    pub gateway_id: Option<GatewayId>,
    /// Only these gateways' (those a label selector picked).
    pub gateways: Option<std::collections::BTreeSet<GatewayId>>,
    pub kind: Option<String>,
    pub agent: Option<String>,
    /// After this (created_at_ms, gateway_id, approval_id), newest first.
    pub after: Option<(i64, GatewayId, ApprovalId)>,
}

/// The most gateway ids a list query names (beyond, the list is filtered as it is read).
const IDS_IN_QUERY: usize = 500;
/// Rows read at a time when the list is filtered as it is read.
const SCAN_PAGE: i64 = 1000;

/// What recording a request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    New(Box<Approval>),
    Known,
    /// The gateway has [`PENDING_PER_GATEWAY`] pending already.
    Full,
}

impl Store {
    /// Records an approval gateway `gateway_id` asked for (process `boot_id`); known already:
    /// nothing changes.
    pub fn record_approval(
        &self,
        gateway_id: GatewayId,
        r: &Requested,
        boot_id: Option<&str>,
        now_ms: i64,
    ) -> Result<Recorded, DbError> {
        let mut conn = self.conn()?;
        let key = (gateway_id, r.id.as_str());
        let known = approvals::table
            .find(key)
            .count()
            .get_result::<i64>(&mut conn)?;
        if known > 0 {
            return Ok(Recorded::Known);
        }
        let pending = approvals::table
            .filter(approvals::gateway_id.eq(gateway_id))
            .filter(approvals::status.eq(ApprovalStatus::Pending.as_str()))
            .count()
            .get_result::<i64>(&mut conn)?;
        if pending >= PENDING_PER_GATEWAY {
            return Ok(Recorded::Full);
        }
        let inserted = diesel::insert_into(approvals::table)
            .values((
                approvals::gateway_id.eq(gateway_id),
                approvals::approval_id.eq(&r.id),
                approvals::kind.eq(r.kind.as_str()),
                approvals::status.eq(ApprovalStatus::Pending.as_str()),
                approvals::command.eq(&r.command),
                approvals::warning.eq(&r.warning),
                approvals::severity.eq(&r.severity),
                approvals::agent_id.eq(&r.agent_id),
                approvals::session_key.eq(&r.session_key),
                approvals::run_id.eq(&r.run_id),
                approvals::host.eq(&r.host),
                approvals::boot_id.eq(boot_id),
                approvals::created_at_ms.eq(r.created_at_ms),
                approvals::expires_at_ms.eq(r.expires_at_ms),
                approvals::seen_at_ms.eq(now_ms),
                approvals::offered.eq(r
                    .offered
                    .as_ref()
                    .map(|o| o.iter().map(|d| d.as_str()).collect::<Vec<_>>().join(","))),
                approvals::whole.eq(r.whole),
            ))
            .execute(&mut conn);
        match inserted {
            Ok(_) => {}
            // Another instance (or a reconcile racing an event) recorded it first.
            Err(e) if is_unique_violation(&e) => return Ok(Recorded::Known),
            Err(e) => return Err(e.into()),
        }
        drop(conn);
        self.approval(gateway_id, &ApprovalId::from(r.id.as_str()))?
            .map(|a| Recorded::New(Box::new(a)))
            .ok_or(DbError::Damaged("an approval row just written"))
    }

    /// Ends approval `id` of gateway `gateway_id` as `ending` says, if it is still pending:
    /// the approval as ended, or `None` when it was not pending (ended already, or unknown).
    pub fn end_approval(
        &self,
        gateway_id: GatewayId,
        id: &ApprovalId,
        ending: &Ending,
    ) -> Result<Option<Approval>, DbError> {
        let mut conn = self.conn()?;
        let written = diesel::update(
            approvals::table
                .find((gateway_id, id.as_str()))
                .filter(approvals::status.eq(ApprovalStatus::Pending.as_str())),
        )
        .set((
            approvals::status.eq(ending.status.as_str()),
            approvals::reason.eq(&ending.reason),
            approvals::decision.eq(&ending.decision),
            approvals::resolved_by.eq(ending.by.as_str()),
            approvals::resolver_key_id.eq(ending.key_id),
            approvals::resolver_label.eq(&ending.label),
            approvals::resolved_at_ms.eq(ending.at_ms),
        ))
        .execute(&mut conn)?;
        drop(conn);
        if written == 0 {
            return Ok(None);
        }
        self.approval(gateway_id, id)
    }

    /// Notes that this pending approval is escalated; `false` when it was already (by another
    /// instance), or is no longer pending: one escalation each, fleet-wide.
    pub fn approval_escalated(
        &self,
        gateway_id: GatewayId,
        id: &ApprovalId,
        at_ms: i64,
    ) -> Result<bool, DbError> {
        let mut conn = self.conn()?;
        let written = diesel::update(
            approvals::table
                .find((gateway_id, id.as_str()))
                .filter(approvals::status.eq(ApprovalStatus::Pending.as_str()))
                .filter(approvals::escalated_at_ms.is_null()),
        )
        .set(approvals::escalated_at_ms.eq(at_ms))
        .execute(&mut conn)?;
        Ok(written == 1)
    }

    pub fn approval(
        &self,
        gateway_id: GatewayId,
        id: &ApprovalId,
    ) -> Result<Option<Approval>, DbError> {
        let mut conn = self.conn()?;
        approvals::table
            .find((gateway_id, id.as_str()))
            .select(Row::as_select())
            .first(&mut conn)
            .optional()?
            .map(Approval::try_from)
            .transpose()
    }

    /// The approvals `filter` asks for, newest first, at most `limit`.
    pub fn approvals(&self, filter: &ApprovalFilter, limit: i64) -> Result<Vec<Approval>, DbError> {
        match &filter.gateways {
            // A few gateways: named in the query.
            Some(set) if set.len() <= IDS_IN_QUERY => self.approvals_page(filter, Some(set), limit),
            // Many (a selector over a large fleet): more than a query may name; pages of the
            // rest of the filter are read in order and kept when their gateway is in the set.
            Some(set) => {
                let mut found = Vec::new();
                let mut page = ApprovalFilter {
                    gateways: None,
                    ..filter.clone()
                };
                loop {
                    let rows = self.approvals_page(&page, None, SCAN_PAGE)?;
                    let last = rows
                        .last()
                        .map(|a| (a.created_at_ms, a.gateway_id, a.id.clone()));
                    let full = rows.len() as i64 == SCAN_PAGE;
                    found.extend(rows.into_iter().filter(|a| set.contains(&a.gateway_id)));
                    if found.len() as i64 >= limit || !full {
                        found.truncate(usize::try_from(limit).unwrap_or(0));
                        return Ok(found);
                    }
                    page.after = last;
                }
            }
            None => self.approvals_page(filter, None, limit),
        }
    }

    fn approvals_page(
        &self,
        filter: &ApprovalFilter,
        gateways: Option<&std::collections::BTreeSet<GatewayId>>,
        limit: i64,
    ) -> Result<Vec<Approval>, DbError> {
        let mut conn = self.conn()?;
        let mut q = approvals::table.into_boxed();
        if let Some(set) = gateways {
            q = q.filter(approvals::gateway_id.eq_any(set.iter().copied().collect::<Vec<_>>()));
        }
        if let Some(status) = filter.status {
            q = q.filter(approvals::status.eq(status.as_str()));
        }
        if let Some(g) = filter.gateway_id {
            q = q.filter(approvals::gateway_id.eq(g));
        }
        if let Some(kind) = &filter.kind {
            q = q.filter(approvals::kind.eq(kind.clone()));
        }
        if let Some(agent) = &filter.agent {
            q = q.filter(approvals::agent_id.eq(agent.clone()));
        }
        if let Some((at, g, id)) = &filter.after {
            q = q.filter(
                approvals::created_at_ms
                    .lt(*at)
                    .or(approvals::created_at_ms.eq(*at).and(
                        approvals::gateway_id.gt(*g).or(approvals::gateway_id
                            .eq(*g)
                            .and(approvals::approval_id.gt(id.as_str()))),
                    )),
            );
        }
        q.order((
            approvals::created_at_ms.desc(),
            approvals::gateway_id.asc(),
            approvals::approval_id.asc(),
        ))
        .limit(limit)
        .select(Row::as_select())
        .load(&mut conn)?
        .into_iter()
        .map(Approval::try_from)
        .collect()
    }

    /// Ends the pending approvals of gateways that are no longer registered (`cancelled`,
    /// `gateway-deleted`): nobody can answer them here any more. The approvals so ended.
    pub fn cancel_approvals_of_deleted_gateways(
        &self,
        now_ms: i64,
    ) -> Result<Vec<Approval>, DbError> {
        use crate::db::schema::gateways;
        let mut conn = self.conn()?;
        let orphans: Vec<(GatewayId, String)> = approvals::table
            .filter(approvals::status.eq(ApprovalStatus::Pending.as_str()))
            .filter(diesel::dsl::not(
                approvals::gateway_id.eq_any(gateways::table.select(gateways::id)),
            ))
            .select((approvals::gateway_id, approvals::approval_id))
            .load(&mut conn)?;
        drop(conn);
        let ending = Ending {
            status: ApprovalStatus::Cancelled,
            reason: Some("gateway-deleted".into()),
            decision: None,
            by: ResolvedBy::Gateway,
            key_id: None,
            label: None,
            at_ms: now_ms,
        };
        let mut ended = Vec::new();
        for (gateway_id, id) in orphans {
            ended.extend(self.end_approval(gateway_id, &ApprovalId::from(id), &ending)?);
        }
        Ok(ended)
    }

    /// Forgets approvals that ended before `before_ms`; how many.
    pub fn prune_approvals(&self, before_ms: i64) -> Result<usize, DbError> {
        let mut conn = self.conn()?;
        Ok(diesel::delete(
            approvals::table
                .filter(approvals::status.ne(ApprovalStatus::Pending.as_str()))
                .filter(approvals::resolved_at_ms.lt(before_ms)),
        )
        .execute(&mut conn)?)
    }

    /// Every pending approval (of one gateway, or of all), oldest first.
    pub fn pending_approvals(
        &self,
        gateway_id: Option<GatewayId>,
    ) -> Result<Vec<Approval>, DbError> {
        let mut conn = self.conn()?;
        let mut q = approvals::table
            .filter(approvals::status.eq(ApprovalStatus::Pending.as_str()))
            .into_boxed();
        if let Some(g) = gateway_id {
            q = q.filter(approvals::gateway_id.eq(g));
        }
        q.order(approvals::created_at_ms.asc())
            .select(Row::as_select())
            .load(&mut conn)?
            .into_iter()
            .map(Approval::try_from)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_support::sqlite_store;
    use gateway_supervisor_actors::protocol::approvals::ApprovalKind;

    fn asked(id: &str) -> Requested {
        Requested {
            id: id.into(),
            kind: ApprovalKind::Exec,
            command: "printf smoke".into(),
            warning: None,
            whole: true,
            offered: None,
            severity: None,
            agent_id: None,
            session_key: None,
            run_id: None,
            host: None,
            created_at_ms: 1,
            expires_at_ms: 2,
        }
    }

    fn ended(at_ms: i64) -> Ending {
        Ending {
            status: ApprovalStatus::Denied,
            reason: None,
            decision: Some("deny".into()),
            by: ResolvedBy::Elsewhere,
            key_id: None,
            label: None,
            at_ms,
        }
    }

    #[test]
    fn an_end_is_written_once_over_pending_and_the_first_one_stays() {
        let (store, _dir) = sqlite_store();
        assert!(matches!(
            store
                .record_approval(GatewayId(1), &asked("a"), None, 5)
                .unwrap(),
            Recorded::New(_)
        ));
        assert_eq!(
            store
                .record_approval(GatewayId(1), &asked("a"), None, 6)
                .unwrap(),
            Recorded::Known
        );
        let first = store
            .end_approval(GatewayId(1), &ApprovalId::from("a"), &ended(10))
            .unwrap()
            .unwrap();
        assert_eq!(first.resolved_at_ms, Some(10));
        let mut later = ended(20);
        later.status = ApprovalStatus::Allowed;
        assert_eq!(
            store
                .end_approval(GatewayId(1), &ApprovalId::from("a"), &later)
                .unwrap(),
            None,
            "not pending any more"
        );
        assert_eq!(
            store
                .approval(GatewayId(1), &ApprovalId::from("a"))
                .unwrap()
                .unwrap()
                .status,
            ApprovalStatus::Denied
        );
        assert!(
            !store
                .approval_escalated(GatewayId(1), &ApprovalId::from("a"), 30)
                .unwrap(),
            "an ended one is not escalated"
        );
    }

    #[test]
    fn the_pending_approvals_of_a_deleted_gateway_are_cancelled() {
        let (store, _dir) = sqlite_store();
        store
            .record_approval(GatewayId(77), &asked("orphan"), None, 1)
            .unwrap();
        let ended = store.cancel_approvals_of_deleted_gateways(9).unwrap();
        assert_eq!(ended.len(), 1);
        assert_eq!(
            (ended[0].status, ended[0].reason.as_deref()),
            (ApprovalStatus::Cancelled, Some("gateway-deleted"))
        );
        assert!(
            store
                .cancel_approvals_of_deleted_gateways(10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn ended_approvals_older_than_kept_are_forgotten_and_pending_ones_never() {
        let (store, _dir) = sqlite_store();
        for id in ["old", "new", "waiting"] {
            store
                .record_approval(GatewayId(1), &asked(id), None, 1)
                .unwrap();
        }
        store
            .end_approval(GatewayId(1), &ApprovalId::from("old"), &ended(100))
            .unwrap();
        store
            .end_approval(GatewayId(1), &ApprovalId::from("new"), &ended(300))
            .unwrap();
        assert_eq!(store.prune_approvals(200).unwrap(), 1);
        let left: Vec<String> = store
            .approvals(&ApprovalFilter::default(), 10)
            .unwrap()
            .into_iter()
            .map(|a| a.id.to_string())
            .collect();
        assert_eq!(left.len(), 2);
        assert!(left.contains(&"new".to_owned()) && left.contains(&"waiting".to_owned()));
    }
}
