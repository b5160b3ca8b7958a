//! The audit log beyond the database: its lines as they leave ([`encode`]: the export and the
//! sink write the same), the sink that delivers every row to the company's collector
//! ([`sink`]), and the sweep that keeps each tenant's rows as long as its retention says
//! ([`retention`] decides, [`sweep`] carries out) — docs/design.md, *Audit trail*.
//!
//! Neither loop stands between an action and its row: the row is written in the action's own
//! transaction, as before; the sink reads rows after they are committed, from a cursor kept in
//! the database, so a collector that is down, slow or refusing holds nothing up and loses
//! nothing (the rows wait in the database, and the sweep keeps every row the sink has not
//! delivered). Only the instance that decides for the fleet runs them, so a cluster delivers
//! each batch once (twice at most across a change of decider: each row carries its id).

pub mod encode;
pub mod retention;
pub mod sink;
pub mod sweep;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// `audit_sink_rows_total{outcome}`, `audit_sink_pending_rows`, `audit_pruned_rows_total`.
#[derive(Clone)]
pub struct AuditMetrics {
    sink_rows: IntCounterVec,
    pending: IntGauge,
    pruned: IntCounter,
}

impl AuditMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        Ok(AuditMetrics {
            sink_rows: IntCounterVec::new(
                Opts::new(
                    "audit_sink_rows_total",
                    "Audit rows sent to audit.sink_url, by outcome (delivered: the collector answered 2xx; failed: the batch is tried again).",
                ),
                &["outcome"],
            )?,
            pending: IntGauge::new(
                "audit_sink_pending_rows",
                "Audit rows written and not yet delivered to audit.sink_url (0 when caught up or no sink; ids after the delivered one, so a write rolled back may count until the next row).",
            )?,
            pruned: IntCounter::new(
                "audit_pruned_rows_total",
                "Audit rows deleted for being older than their tenant's retention (audit.retention, audit.retention_by_tenant).",
            )?,
        })
    }

    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        // Both outcomes exported from the start, at 0: a rule's `increase` needs the series.
        for outcome in ["delivered", "failed"] {
            self.sink_rows.with_label_values(&[outcome]);
        }
        registry.register(Box::new(self.sink_rows.clone()))?;
        registry.register(Box::new(self.pending.clone()))?;
        registry.register(Box::new(self.pruned.clone()))
    }

    fn sent(&self, delivered: bool, rows: usize) {
        let outcome = if delivered { "delivered" } else { "failed" };
        self.sink_rows
            .with_label_values(&[outcome])
            .inc_by(rows as u64);
    }
}
