//! Drift metrics, from the stored judgements (the same on every instance of a cluster):
//! `gateways_config_drifted` and `gateways_config{state}`, each state of [`DriftState`]
//! present (zero included).

use prometheus::{IntGauge, IntGaugeVec, Opts, Registry};

use super::drift::DriftState;

#[derive(Clone)]
pub struct DriftMetrics {
    drifted: IntGauge,
    by_state: IntGaugeVec,
}

const STATES: [DriftState; 4] = [
    DriftState::InSync,
    DriftState::Drifted,
    DriftState::SavedNotApplied,
    DriftState::Unknown,
];

impl DriftMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        Ok(DriftMetrics {
            drifted: IntGauge::new(
                "gateways_config_drifted",
                "Gateways whose configuration differs from what their config profiles set (read back with config.get). The same on every instance of a cluster.",
            )?,
            by_state: IntGaugeVec::new(
                Opts::new(
                    "gateways_config",
                    "Gateways a config profile picks, by drift state: in_sync, drifted, saved_not_applied (waiting for a restart), unknown (not read: offline, not offered, failed).",
                ),
                &["state"],
            )?,
        })
    }

    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.drifted.clone()))?;
        registry.register(Box::new(self.by_state.clone()))
    }

    /// The gauges from every gateway's stored state.
    pub fn set(&self, states: &[DriftState]) {
        for s in STATES {
            let n = states.iter().filter(|x| **x == s).count();
            self.by_state
                .with_label_values(&[s.as_str()])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        let drifted = states.iter().filter(|s| **s == DriftState::Drifted).count();
        self.drifted.set(i64::try_from(drifted).unwrap_or(i64::MAX));
    }
}
