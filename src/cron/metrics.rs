//! The cron inventory's and watchdog's metrics: jobs by whose they are and whether enabled,
//! duplicated copies (gauges, set from the store each look: the fleet's, whichever instance
//! links a gateway), missed fires by cause, forced runs by outcome, list reads by outcome.
//! Every label value comes from a closed set.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use super::Cron;
use super::inventory::Read;
use crate::domain::{CronMissCause, CronRecovery};

#[derive(Clone)]
pub struct CronMetrics {
    jobs: IntGaugeVec,
    duplicates: IntGauge,
    missed: IntCounterVec,
    recovered: IntCounterVec,
    reads: IntCounterVec,
    last_success_age: IntGaugeVec,
    /// The newest successful run seen of each declaration (a job whose last run failed no
    /// longer shows the one before in the inventory).
    last_ok: Arc<Mutex<HashMap<String, i64>>>,
}

impl CronMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        Ok(CronMetrics {
            jobs: IntGaugeVec::new(
                Opts::new(
                    "cron_jobs",
                    "Cron jobs across the fleet's gateways, as their last cron.list said: by whose (fleet: declared by a person or this daemon; gateway: the gateway's own heartbeat, memory and skill jobs) and whether enabled.",
                ),
                &["owner", "enabled"],
            )?,
            duplicates: IntGauge::new(
                "cron_duplicate_jobs",
                "Enabled extra copies of a cron job on its gateway (same name, schedule and payload as an older one).",
            )?,
            missed: IntCounterVec::new(
                Opts::new(
                    "cron_missed_fires_total",
                    "Expected cron fires with no run, by cause: missed (the gateway was linked and skipped it) or unreachable (this instance had no link to it over the slot).",
                ),
                &["cause"],
            )?,
            recovered: IntCounterVec::new(
                Opts::new(
                    "cron_forced_runs_total",
                    "Missed cron fires run again once with cron.run force ([cron] recover = \"force\"), by outcome: forced, failed, or late (the gateway had fired it after the grace: nothing sent).",
                ),
                &["outcome"],
            )?,
            reads: IntCounterVec::new(
                Opts::new(
                    "cron_list_reads_total",
                    "Reads of a gateway's cron.list, by outcome: unchanged (its snapshotRevision was the one stored), stored, gone (the gateway was deleted), failed.",
                ),
                &["outcome"],
            )?,
            last_success_age: IntGaugeVec::new(
                Opts::new(
                    "cron_last_success_age_seconds",
                    "Seconds since a run of a declared cron job last succeeded on any gateway (since it was declared, when none has), by declaration (at most 100, each an operator's PUT /api/cron/declarations/{name}).",
                ),
                &["declaration"],
            )?,
            last_ok: Arc::default(),
        })
    }

    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        // Every series from the start, at 0: a rate over a counter that appears at its first
        // increment misses that increment.
        for cause in CronMissCause::ALL {
            self.missed.with_label_values(&[cause.as_str()]);
        }
        for outcome in CronRecovery::ALL {
            if outcome != CronRecovery::Forcing {
                self.recovered.with_label_values(&[outcome.as_str()]);
            }
        }
        for outcome in ["unchanged", "stored", "gone", "failed"] {
            self.reads.with_label_values(&[outcome]);
        }
        registry.register(Box::new(self.jobs.clone()))?;
        registry.register(Box::new(self.duplicates.clone()))?;
        registry.register(Box::new(self.missed.clone()))?;
        registry.register(Box::new(self.recovered.clone()))?;
        registry.register(Box::new(self.reads.clone()))?;
        registry.register(Box::new(self.last_success_age.clone()))
    }

    pub(super) fn missed(&self, cause: CronMissCause) {
        self.missed.with_label_values(&[cause.as_str()]).inc();
    }

    pub(super) fn recovered(&self, outcome: CronRecovery) {
        self.recovered.with_label_values(&[outcome.as_str()]).inc();
    }

    pub(super) fn read(&self, read: Read) {
        let outcome = match read {
            Read::Unchanged => "unchanged",
            Read::Stored => "stored",
            Read::Gone => "gone",
        };
        self.reads.with_label_values(&[outcome]).inc();
    }

    pub(super) fn read_failed(&self) {
        self.reads.with_label_values(&["failed"]).inc();
    }
}

impl Cron {
    /// Sets the gauges from the store.
    pub(super) async fn count(&self) {
        let counts = match self.stored(|s| s.cron_counts()).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(%e, "cron gauges not set this look");
                return;
            }
        };
        for owner in ["fleet", "gateway"] {
            for enabled in [true, false] {
                let n = counts
                    .jobs
                    .iter()
                    .find(|(own, en, _)| *own == (owner == "gateway") && *en == enabled)
                    .map_or(0, |(_, _, n)| *n);
                self.metrics
                    .jobs
                    .with_label_values(&[owner, if enabled { "true" } else { "false" }])
                    .set(n);
            }
        }
        self.metrics.duplicates.set(counts.duplicates);
        self.count_declared().await;
    }

    /// `cron_last_success_age_seconds`: one series per declaration there is now.
    async fn count_declared(&self) {
        let owner = super::job::FLEET_OWNER;
        let read = self
            .stored(move |s| {
                let declared = s.cron_declarations(false)?;
                // None declared: no scan of every gateway's jobs for their last success.
                let last_ok = if declared.is_empty() {
                    Vec::new()
                } else {
                    s.cron_declared_last_ok(owner)?
                };
                Ok((declared, last_ok))
            })
            .await;
        let Ok((declared, last_ok)) = read else {
            return;
        };
        let now = gateway_supervisor_actors::unix_now_ms();
        let m = &self.metrics;
        let mut seen = m.last_ok.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|name, _| declared.iter().any(|d| d.name == *name));
        m.last_success_age.reset();
        for d in &declared {
            let key = format!("{owner}:{}", d.name);
            let ok = last_ok.iter().find(|(k, _)| *k == key).map(|(_, t)| *t);
            let newest = seen.get(&d.name).copied().into_iter().chain(ok).max();
            if let Some(t) = newest {
                seen.insert(d.name.clone(), t);
            }
            let since = newest.unwrap_or(d.updated_at_ms);
            m.last_success_age
                .with_label_values(&[d.name.as_str()])
                .set((now - since).max(0) / 1000);
        }
    }
}
