//! The inbox's metrics. Every label value comes from a fixed set: `kind` from
//! [`ApprovalKind`], `decision` from [`Decision`] (or `none`), `by` from [`ResolvedBy`].

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use super::model::{Approval, ResolvedBy};
use gateway_supervisor_actors::protocol::approvals::{ApprovalKind, Decision};

#[derive(Clone)]
pub struct ApprovalMetrics {
    pending: IntGaugeVec,
    resolved: IntCounterVec,
    oldest: IntGauge,
}

impl ApprovalMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        Ok(ApprovalMetrics {
            pending: IntGaugeVec::new(
                Opts::new(
                    "approvals_pending",
                    "Approvals waiting for an answer in the fleet's inbox, by kind (exec, plugin, system-agent). The same on every instance of a cluster (read from the shared database).",
                ),
                &["kind"],
            )?,
            resolved: IntCounterVec::new(
                Opts::new(
                    "approvals_resolved_total",
                    "Approvals ended, by kind, decision (allow-once, allow-always, deny, none) and by (operator: answered through this daemon; elsewhere: another client answered first; auto: denied by the daemon after approvals.auto_deny_after; expired; gateway: cancelled by a restart or an aborted run). Counted by the instance that recorded the end.",
                ),
                &["kind", "decision", "by"],
            )?,
            oldest: IntGauge::new(
                "approvals_oldest_pending_age_seconds",
                "Age of the oldest approval waiting for an answer (0 when none waits).",
            )?,
        })
    }

    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.pending.clone()))?;
        registry.register(Box::new(self.resolved.clone()))?;
        registry.register(Box::new(self.oldest.clone()))
    }

    /// The pending gauges from every pending approval, at `now_ms`.
    pub fn set_pending(&self, pending: &[Approval], now_ms: i64) {
        for kind in ApprovalKind::ALL {
            let n = pending.iter().filter(|a| a.kind == kind.as_str()).count();
            self.pending
                .with_label_values(&[kind.as_str()])
                .set(n as i64);
        }
        let oldest = pending.iter().map(|a| a.created_at_ms).min();
        self.oldest
            .set(oldest.map_or(0, |at| now_ms.saturating_sub(at).max(0) / 1000));
    }

    /// An approval ended (as recorded).
    pub fn ended(&self, a: &Approval) {
        let Some(kind) = ApprovalKind::parse(&a.kind) else {
            return;
        };
        let decision = a
            .decision
            .as_deref()
            .and_then(Decision::parse)
            .map_or("none", Decision::as_str);
        let by = a.resolved_by.unwrap_or(ResolvedBy::Gateway).as_str();
        self.resolved
            .with_label_values(&[kind.as_str(), decision, by])
            .inc();
    }
}
