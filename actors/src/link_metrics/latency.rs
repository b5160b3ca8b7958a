//! The ping histogram of each gateway at full detail: a count per bucket and a sum, atomics a
//! link writes with one add, written as exposition text at each scrape.
//!
//! A prometheus histogram is ~1 KB a series (its own description and label pairs, two shards
//! of 13 buckets for consistent reads) and a scrape copies it again into a protobuf family:
//! with one a gateway it was the largest per-link metric left (docs/performance.md, what a
//! scrape costs an instance). Here it is 15 counters and the table's entry. The counts are
//! kept per bucket, not cumulated: a scrape adds them up, so `_count` is always the `+Inf`
//! bucket, whatever an observation in flight does; the sum may be one observation behind.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::model::GatewayId;

/// Upper bounds, seconds (the fleet-wide histogram's too).
pub const BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

pub const NAME: &str = "gateway_latency_seconds";
pub const HELP: &str = "WebSocket ping round trip to the gateways.";

/// One gateway's histogram.
#[derive(Debug, Default)]
pub struct Latency {
    /// Observations per bucket, the last past every bound.
    counts: [AtomicU64; BUCKETS.len() + 1],
    /// The sum of the observations, an `f64`'s bits.
    sum: AtomicU64,
}

impl Latency {
    pub fn observe(&self, seconds: f64) {
        let bucket = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + seconds).to_bits())
            });
    }

    /// The `_bucket`, `_sum` and `_count` lines of gateway `id`.
    fn write(&self, out: &mut String, name: &str, id: GatewayId) {
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let _ = match BUCKETS.get(i) {
                Some(le) => writeln!(
                    out,
                    "{name}_bucket{{gateway_id=\"{id}\",le=\"{le}\"}} {cumulative}"
                ),
                None => writeln!(
                    out,
                    "{name}_bucket{{gateway_id=\"{id}\",le=\"+Inf\"}} {cumulative}"
                ),
            };
        }
        let sum = f64::from_bits(self.sum.load(Ordering::Relaxed));
        let _ = writeln!(out, "{name}_sum{{gateway_id=\"{id}\"}} {sum}");
        let _ = writeln!(out, "{name}_count{{gateway_id=\"{id}\"}} {cumulative}");
    }
}

/// Every linked gateway's histogram. A clone shares the table.
#[derive(Debug, Clone, Default)]
pub struct GatewayLatency {
    table: Arc<Mutex<BTreeMap<GatewayId, Arc<Latency>>>>,
}

impl GatewayLatency {
    fn table(&self) -> std::sync::MutexGuard<'_, BTreeMap<GatewayId, Arc<Latency>>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Gateway `id`'s histogram, made on first use, for its link to keep.
    pub fn series(&self, id: GatewayId) -> Arc<Latency> {
        self.table().entry(id).or_default().clone()
    }

    /// Its series go; a link's handle kept past this writes into nothing exported.
    pub fn forget(&self, id: GatewayId) {
        self.table().remove(&id);
    }

    /// The family as exposition text, `prefix` before its name; nothing without a series.
    pub fn write(&self, out: &mut String, prefix: &str) {
        let series: Vec<(GatewayId, Arc<Latency>)> = self
            .table()
            .iter()
            .map(|(id, l)| (*id, l.clone()))
            .collect();
        if series.is_empty() {
            return;
        }
        let name = format!("{prefix}{NAME}");
        let _ = write!(out, "# HELP {name} {HELP}\n# TYPE {name} histogram\n");
        for (id, latency) in series {
            latency.write(out, &name, id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket_and_every_bound_above_it() {
        let table = GatewayLatency::default();
        let l = table.series(GatewayId(4));
        l.observe(0.002);
        l.observe(0.002);
        l.observe(7.0);
        let mut out = String::new();
        table.write(&mut out, "p_");
        for line in [
            "# TYPE p_gateway_latency_seconds histogram\n",
            "p_gateway_latency_seconds_bucket{gateway_id=\"4\",le=\"0.001\"} 0\n",
            "p_gateway_latency_seconds_bucket{gateway_id=\"4\",le=\"0.0025\"} 2\n",
            "p_gateway_latency_seconds_bucket{gateway_id=\"4\",le=\"5\"} 2\n",
            "p_gateway_latency_seconds_bucket{gateway_id=\"4\",le=\"+Inf\"} 3\n",
            "p_gateway_latency_seconds_sum{gateway_id=\"4\"} 7.004\n",
            "p_gateway_latency_seconds_count{gateway_id=\"4\"} 3\n",
        ] {
            assert!(out.contains(line), "{line} missing from\n{out}");
        }
        table.forget(GatewayId(4));
        l.observe(0.1);
        let mut out = String::new();
        table.write(&mut out, "p_");
        assert!(out.is_empty(), "{out}");
    }
}
