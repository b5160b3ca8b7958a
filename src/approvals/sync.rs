//! Carrying the gateways' approval news into the inbox: each request recorded (then announced),
//! each end recorded over `pending` once, every (re)connect reconciled with the gateway's own
//! pending lists, and every second what [`rule::due`] says done — escalated once, denied by the
//! daemon, or expired.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc::Receiver;

use super::Inbox;
use super::model::{Approval, Ending, ResolvedBy};
use super::rule::{self, Due};
use crate::db::approvals::Recorded;
use crate::domain::ApprovalId;
use crate::fleet::FleetError;
use gateway_supervisor_actors::events::EventKind;
use gateway_supervisor_actors::link::messages::ApprovalReport;
use gateway_supervisor_actors::model::{Caller, GatewayId};
use gateway_supervisor_actors::protocol::approvals::{
    self as wire, ApprovalKind, ApprovalNews, Decision, Requested,
};
use gateway_supervisor_actors::unix_now_ms;

/// How often pending approvals are looked at (escalation, automatic deny, expiry).
const TICK: Duration = Duration::from_secs(1);
/// Pending approvals read per list call (2026.9.6 keeps them all in memory; the inbox keeps at
/// most [`crate::db::approvals::PENDING_PER_GATEWAY`] per gateway).
const LIST_MAX: usize = 1000;
/// How often every gateway answered for here is reconciled even without a reconnect (news
/// dropped because the queue was full is found then), and ended approvals older than 30 days
/// are forgotten.
const RECONCILE_EVERY: Duration = Duration::from_secs(60);

impl Inbox {
    /// Takes the links' news and the clock until the daemon stops.
    pub async fn run(self: Arc<Self>, mut news: Receiver<ApprovalReport>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reconcile = tokio::time::interval(RECONCILE_EVERY);
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        reconcile.tick().await;
        loop {
            tokio::select! {
                report = news.recv() => match report {
                    Some(report) => self.heard(report).await,
                    None => return,
                },
                _ = tick.tick() => {
                    self.reconcile_again().await;
                    self.tick().await;
                }
                _ = reconcile.tick() => {
                    let before = unix_now_ms() - crate::db::approvals::KEPT_MS;
                    match self.stored(move |s| s.prune_approvals(before)).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(approvals = n, "ended approvals older than 30 days forgotten"),
                        Err(e) => tracing::warn!(%e, "could not prune old approvals"),
                    }
                    let now = unix_now_ms();
                    match self.stored(move |s| s.cancel_approvals_of_deleted_gateways(now)).await {
                        Ok(ended) => {
                            for a in ended {
                                tracing::info!(gateway_id = a.gateway_id.get(), approval = %a.id, "approval of a deleted gateway cancelled");
                                self.metrics.ended(&a);
                                self.announce(EventKind::ApprovalResolved, &a);
                            }
                        }
                        Err(e) => tracing::warn!(%e, "could not end the approvals of deleted gateways"),
                    }
                    let known: Vec<(GatewayId, Option<String>)> = self
                        .boots
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .iter()
                        .map(|(g, b)| (*g, b.clone()))
                        .collect();
                    for (gateway_id, boot_id) in known {
                        self.reconcile(gateway_id, boot_id.as_deref()).await;
                    }
                }
            }
        }
    }

    async fn heard(&self, report: ApprovalReport) {
        let gateway_id = report.gateway_id;
        match report.news {
            ApprovalNews::Connected { boot_id } => {
                self.boots
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(gateway_id, boot_id.clone());
                self.reconcile(gateway_id, boot_id.as_deref()).await;
            }
            ApprovalNews::Requested(r) => self.record(gateway_id, r).await,
            // Answered through this daemon: the answer's own path records it, with its key.
            ApprovalNews::Resolved(o)
                if rule::answered_by_us(o.resolved_by.as_deref(), &self.ours) => {}
            ApprovalNews::Resolved(o) => {
                let id = ApprovalId::from(o.id.as_str());
                match rule::ending_of(&o, unix_now_ms(), &self.ours) {
                    Some(ending) => self.log_end(gateway_id, &id, ending).await,
                    None => self.settle(gateway_id, &id).await,
                }
            }
            // Over without saying how (an expiry reads like a deny by nobody): asked.
            ApprovalNews::Ended { id } => self.settle(gateway_id, &ApprovalId::from(id)).await,
        }
    }

    async fn record(&self, gateway_id: GatewayId, r: Requested) {
        let boot_id = self.boot_of(gateway_id);
        let id = r.id.clone();
        let recorded = self
            .stored(move |s| s.record_approval(gateway_id, &r, boot_id.as_deref(), unix_now_ms()))
            .await;
        match recorded {
            Ok(Recorded::New(a)) => {
                tracing::info!(gateway_id = gateway_id.get(), approval = %a.id, kind = %a.kind, "approval requested");
                self.announce(EventKind::ApprovalRequested, &a);
            }
            Ok(Recorded::Known) => {}
            Ok(Recorded::Full) => {
                tracing::warn!(gateway_id = gateway_id.get(), approval = %id, "approval not kept: the gateway has too many pending");
            }
            Err(e) => {
                tracing::warn!(gateway_id = gateway_id.get(), approval = %id, %e, "could not record an approval")
            }
        }
    }

    /// Records `ending` and says so in the log (the storage failure too).
    async fn log_end(&self, gateway_id: GatewayId, id: &ApprovalId, ending: Ending) {
        let by = ending.by;
        match self.end(gateway_id, id, ending).await {
            Ok(Some(a)) => {
                tracing::info!(gateway_id = gateway_id.get(), approval = %a.id, status = a.status.as_str(), by = by.as_str(), "approval ended");
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(gateway_id = gateway_id.get(), approval = %id, %e, "could not record an approval's end")
            }
        }
    }

    /// Asks the gateway how approval `id` ended (`approval.get`) and records it; an approval
    /// the gateway no longer knows is recorded cancelled.
    pub(super) async fn settle(&self, gateway_id: GatewayId, id: &ApprovalId) {
        let now = unix_now_ms();
        let got = self
            .gateways
            .call_gateway(gateway_id, "approval.get", json!({"id": id}))
            .await;
        let ending = match got {
            Ok(answer) => {
                match wire::outcome(&answer).and_then(|o| rule::ending_of(&o, now, &self.ours)) {
                    Some(ending) => ending,
                    None => return, // still pending there
                }
            }
            Err(e) if e.refusal().is_some_and(wire::not_found) => Ending {
                status: super::model::ApprovalStatus::Cancelled,
                reason: Some("unknown-to-gateway".into()),
                decision: None,
                by: ResolvedBy::Gateway,
                key_id: None,
                label: None,
                at_ms: now,
            },
            Err(e) => {
                tracing::debug!(gateway_id = gateway_id.get(), approval = %id, %e, "an approval's end could not be asked");
                return;
            }
        };
        self.log_end(gateway_id, id, ending).await;
    }

    /// The reconciles that could not list, tried again (with the process last connected).
    async fn reconcile_again(&self) {
        let due: Vec<GatewayId> =
            std::mem::take(&mut *self.unreconciled.lock().unwrap_or_else(|p| p.into_inner()))
                .into_iter()
                .filter(|g| self.boots_has(*g))
                .collect();
        for gateway_id in due {
            let boot_id = self.boot_of(gateway_id);
            self.reconcile(gateway_id, boot_id.as_deref()).await;
        }
    }

    /// Compares what is stored as pending for gateway `gateway_id` with what it lists; when it
    /// cannot list, [`rule::unlisted`] says when to try again.
    async fn reconcile(&self, gateway_id: GatewayId, boot_id: Option<&str>) {
        let mut listed = Vec::new();
        for (method, kind) in [
            ("exec.approval.list", ApprovalKind::Exec),
            ("plugin.approval.list", ApprovalKind::Plugin),
        ] {
            match self
                .gateways
                .call_gateway(gateway_id, method, json!({}))
                .await
            {
                Ok(answer) => listed.extend(wire::list(&answer, kind, LIST_MAX)),
                Err(e) => {
                    tracing::debug!(gateway_id = gateway_id.get(), method, %e, "approvals not listed");
                    match rule::unlisted(&e) {
                        rule::Unlisted::Forget => {
                            self.boots
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .remove(&gateway_id);
                        }
                        rule::Unlisted::AtNextConnect => {}
                        rule::Unlisted::NextTick => {
                            self.unreconciled
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert(gateway_id);
                        }
                    }
                    return;
                }
            }
        }
        let stored = match self
            .stored(move |s| s.pending_approvals(Some(gateway_id)))
            .await
        {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(gateway_id = gateway_id.get(), %e, "could not read the pending approvals");
                return;
            }
        };
        let found = rule::reconcile(&stored, &listed, boot_id);
        for r in found.record {
            self.record(gateway_id, r).await;
        }
        for id in found.restarted {
            self.log_end(gateway_id, &id, rule::restarted(unix_now_ms()))
                .await;
        }
        for id in found.ask {
            self.settle(gateway_id, &id).await;
        }
    }

    /// Every pending approval: the gauges, and what is due.
    async fn tick(&self) {
        let pending = match self.stored(|s| s.pending_approvals(None)).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(%e, "could not read the pending approvals");
                return;
            }
        };
        let now = unix_now_ms();
        self.metrics.set_pending(&pending, now);
        for a in pending {
            match rule::due(&a, &self.cfg, now) {
                None => {}
                Some(Due::Expire) => self.log_end(a.gateway_id, &a.id, rule::expired(now)).await,
                // Only where the gateway is linked: the instance that can answer for it.
                Some(_) if !self.boots_has(a.gateway_id) => {}
                Some(Due::Escalate) => self.escalate(&a, now).await,
                Some(Due::AutoDeny { reason }) => self.auto_deny(&a, &reason).await,
            }
        }
    }

    async fn escalate(&self, a: &Approval, now: i64) {
        let (gateway_id, id) = (a.gateway_id, a.id.clone());
        match self
            .stored(move |s| s.approval_escalated(gateway_id, &id, now))
            .await
        {
            Ok(true) => {
                let mut a = a.clone();
                a.escalated_at_ms = Some(now);
                tracing::warn!(gateway_id = gateway_id.get(), approval = %a.id, "approval unanswered: escalated");
                self.announce(EventKind::ApprovalEscalated, &a);
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(gateway_id = gateway_id.get(), %e, "could not escalate an approval")
            }
        }
    }

    /// Denies `a` on the daemon's side, saying why; recorded as the daemon's own decision.
    async fn auto_deny(&self, a: &Approval, reason: &str) {
        let by = Caller {
            api_key_id: None,
            label: "gateway-supervisor (approvals.auto_deny_after)".into(),
            tenant: None,
        };
        let answered = self
            .gateways
            .call_gateway(
                a.gateway_id,
                "approval.resolve",
                json!({"id": a.id, "kind": a.kind, "decision": Decision::Deny.as_str()}),
            )
            .await;
        let now = unix_now_ms();
        let ending = match answered {
            Ok(answer) if wire::applied(&answer) => Ending {
                status: super::model::ApprovalStatus::Denied,
                reason: Some(reason.to_owned()),
                decision: Some(Decision::Deny.as_str().into()),
                by: ResolvedBy::Auto,
                key_id: None,
                label: Some(by.label.clone()),
                at_ms: now,
            },
            Ok(answer) => {
                match wire::outcome(&answer).and_then(|o| rule::ending_of(&o, now, &self.ours)) {
                    Some(ending) => ending,
                    None => return,
                }
            }
            Err(e) if e.refusal().is_some_and(wire::not_found) => {
                return self.settle(a.gateway_id, &a.id).await;
            }
            // Not linked here any more: its next connect (here or on another instance) says
            // which instance answers for it.
            Err(FleetError::NotConnected { .. } | FleetError::LinkedElsewhere { .. }) => {
                self.boots
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&a.gateway_id);
                return;
            }
            Err(e) => {
                tracing::warn!(gateway_id = a.gateway_id.get(), approval = %a.id, %e, "could not deny an unanswered approval");
                return;
            }
        };
        let auto = ending.by == ResolvedBy::Auto;
        self.log_end(a.gateway_id, &a.id, ending).await;
        if auto {
            self.audit(
                &by,
                "approval.auto_deny",
                a.gateway_id,
                &a.id,
                json!({"reason": reason}),
            )
            .await;
        }
    }

    fn boot_of(&self, gateway_id: GatewayId) -> Option<String> {
        self.boots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&gateway_id)
            .cloned()
            .flatten()
    }

    fn boots_has(&self, gateway_id: GatewayId) -> bool {
        self.boots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&gateway_id)
    }
}
