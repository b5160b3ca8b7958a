//! What the inbox does, decided without I/O: how a gateway's record of an approval's end reads
//! in the inbox, what a (re)connect's pending lists mean for the approvals stored as pending,
//! and which pending approvals are due to be escalated, denied by the daemon or expired
//! (docs/design.md, *Approvals*).

use super::model::{Approval, ApprovalStatus, Ending, ResolvedBy};
use crate::config::ApprovalsConfig;
use crate::domain::ApprovalId;
use crate::fleet::FleetError;
use gateway_supervisor_actors::protocol::CLIENT_DISPLAY_NAME;
use gateway_supervisor_actors::protocol::approvals::{Decision, Outcome, Requested};

/// A pending approval is taken as expired this long after the gateway's `expiresAtMs` if no
/// word of its end came (2026.9.6 announces an expiry, as a deny by nobody, but events are
/// dropped for slow clients and lost while the link is down).
pub const EXPIRY_GRACE_MS: i64 = 2_000;

/// Whether the gateway names this daemon as the one who answered: `ours` are the names it
/// may use — the daemon's device id (2026.9.6 records `resolver: {kind: "device", id}` for a
/// client with a device) and its display name (`resolvedBy` is a client's display name or id).
pub fn answered_by_us(resolved_by: Option<&str>, ours: &[String]) -> bool {
    resolved_by.is_some_and(|by| by == CLIENT_DISPLAY_NAME || ours.iter().any(|o| o == by))
}

/// How the gateway's record of an end reads in the inbox (`None`: the record says it is still
/// pending, or names no end the inbox knows).
pub fn ending_of(o: &Outcome, now_ms: i64, ours: &[String]) -> Option<Ending> {
    let status = ApprovalStatus::parse(&o.status).filter(|s| *s != ApprovalStatus::Pending)?;
    let by = match status {
        ApprovalStatus::Expired => ResolvedBy::Expired,
        ApprovalStatus::Cancelled => ResolvedBy::Gateway,
        // Denied for want of a route, or a broken verdict: the gateway's own doing.
        ApprovalStatus::Denied
            if matches!(
                o.reason.as_deref(),
                Some("no-route" | "malformed-verdict" | "storage-corrupt")
            ) =>
        {
            ResolvedBy::Gateway
        }
        _ if answered_by_us(o.resolved_by.as_deref(), ours) => ResolvedBy::Operator,
        _ => ResolvedBy::Elsewhere,
    };
    Some(Ending {
        status,
        reason: o.reason.clone(),
        decision: o.decision.map(|d| d.as_str().to_owned()),
        by,
        key_id: None,
        label: (by == ResolvedBy::Elsewhere)
            .then(|| o.resolved_by.clone())
            .flatten(),
        at_ms: o.resolved_at_ms.unwrap_or(now_ms),
    })
}

/// Why an operator's decision is not sent to the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unanswerable {
    /// The gateway did not offer this decision (2026.9.6's `allowedDecisions`).
    NotOffered { offered: Vec<Decision> },
    /// An allow of an approval whose presentation the inbox had to cut: nobody may allow what
    /// nobody was shown. A deny is still taken.
    NotShownWhole,
}

/// Whether `decision` may be sent for pending approval `a`. Checked by the inbox before the
/// gateway is called, on whichever instance the answer reaches (the row is the same on all).
pub fn answerable(a: &Approval, decision: Decision) -> Result<(), Unanswerable> {
    if !a.offered_decisions.contains(&decision) {
        return Err(Unanswerable::NotOffered {
            offered: a.offered_decisions.clone(),
        });
    }
    if decision != Decision::Deny && !a.presented_whole {
        return Err(Unanswerable::NotShownWhole);
    }
    Ok(())
}

/// What a (re)connect found: the approvals to record, those to ask the gateway about, and those
/// cancelled by a restart.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Pending on the gateway, not known here.
    pub record: Vec<Requested>,
    /// Pending here, not listed any more by the same process: how they ended is asked
    /// (`approval.get`).
    pub ask: Vec<ApprovalId>,
    /// Pending here, asked by a process that is gone (a new `bootId`): a gateway restart
    /// cancels every pending approval.
    pub restarted: Vec<ApprovalId>,
}

/// Compares what is stored as pending for a gateway with what it lists as pending now, from
/// the process `boot_id`.
pub fn reconcile(stored: &[Approval], listed: &[Requested], boot_id: Option<&str>) -> Reconciled {
    let mut out = Reconciled {
        record: listed
            .iter()
            .filter(|r| !stored.iter().any(|a| a.id.as_str() == r.id))
            .cloned()
            .collect(),
        ..Reconciled::default()
    };
    for a in stored.iter().filter(|a| a.is_pending()) {
        if listed.iter().any(|r| r.id == a.id.as_str()) {
            continue;
        }
        let restarted =
            matches!((a.boot_id.as_deref(), boot_id), (Some(then), Some(now)) if then != now);
        if restarted {
            out.restarted.push(a.id.clone());
        } else {
            out.ask.push(a.id.clone());
        }
    }
    out
}

/// The ending of an approval cancelled by its gateway's restart.
pub fn restarted(now_ms: i64) -> Ending {
    Ending {
        status: ApprovalStatus::Cancelled,
        reason: Some("gateway-restart".into()),
        decision: None,
        by: ResolvedBy::Gateway,
        key_id: None,
        label: None,
        at_ms: now_ms,
    }
}

/// What is due for a pending approval now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Unanswered past `escalate_after`: one alert.
    Escalate,
    /// Unanswered past `auto_deny_after`: the daemon denies it, saying why.
    AutoDeny { reason: String },
    /// Past its own expiry with no word from the gateway.
    Expire,
}

/// What is due for `a` at `now_ms` (at most one thing: the most final).
pub fn due(a: &Approval, cfg: &ApprovalsConfig, now_ms: i64) -> Option<Due> {
    if !a.is_pending() {
        return None;
    }
    if now_ms > a.expires_at_ms.saturating_add(EXPIRY_GRACE_MS) {
        return Some(Due::Expire);
    }
    let t = cfg.timings(&a.kind);
    let age = now_ms.saturating_sub(a.created_at_ms);
    if let Some(after) = t.auto_deny_after
        && age >= after.as_millis() as i64
    {
        return Some(Due::AutoDeny {
            reason: format!(
                "no operator answered within {}",
                humantime::format_duration(after)
            ),
        });
    }
    (a.escalated_at_ms.is_none() && age >= t.escalate_after.as_millis() as i64)
        .then_some(Due::Escalate)
}

/// The ending of an approval past its expiry.
pub fn expired(now_ms: i64) -> Ending {
    Ending {
        status: ApprovalStatus::Expired,
        reason: Some("timeout".into()),
        decision: None,
        by: ResolvedBy::Expired,
        key_id: None,
        label: None,
        at_ms: now_ms,
    }
}

/// What to do about a gateway whose pending approvals could not be listed (`reconcile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlisted {
    /// It is gone from the fleet: nothing to reconcile, its process is forgotten (its pending
    /// approvals are cancelled by the round that ends a deleted gateway's).
    Forget,
    /// Its release lists no approvals: a new release connecting reconciles it. Asked again
    /// every second, a fleet of 10,000 such gateways was 10,000 calls a second refused before
    /// they were sent.
    AtNextConnect,
    /// Asked again at the next tick: a timeout, a refusal, or not connected — the link says
    /// it is connected a moment before the fleet's shared view does, and a list asked in that
    /// moment fails so.
    NextTick,
}

pub fn unlisted(err: &FleetError) -> Unlisted {
    match err {
        FleetError::NotFound(_) => Unlisted::Forget,
        FleetError::Unsupported { .. } => Unlisted::AtNextConnect,
        _ => Unlisted::NextTick,
    }
}

#[cfg(test)]
#[path = "rule_tests.rs"]
mod tests;
