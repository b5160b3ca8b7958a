//! The checker: everything it says comes from the fake gateways (who sent each frame, when, with
//! which fencing token) and from asking again what was acknowledged, never from the daemons'
//! logs or metrics.

use std::collections::BTreeMap;
use std::time::Duration;

use fake_gateway::FakeGateway;

use super::fault::Fault;

/// One fault as it ran, on the fakes' clock (µs).
pub struct Window {
    pub fault: Fault,
    pub start_us: u64,
    pub end_us: u64,
    /// How long after the heal every gateway received frames again (`None`: not within the
    /// bound).
    pub relinked: Option<Duration>,
}

#[derive(Default)]
struct PerFault {
    injected: usize,
    /// Each touched gateway's unowned time in one injection, in ms.
    unowned_ms: Vec<u64>,
    slowest_relink: Duration,
    not_relinked: usize,
}

/// The spawns asked during faults, each under its own `Idempotency-Key` and asked again at
/// the end: how many keys, how many spawns ended `ok`, how many runs the gateways started.
pub struct Spawns {
    pub asked: usize,
    pub ok: usize,
    pub runs: usize,
}

pub struct Summary {
    seed: u64,
    gateways: usize,
    per_fault: BTreeMap<Fault, PerFault>,
    overlaps: Vec<String>,
    fencing: Vec<String>,
    spawns: Spawns,
    lost: Vec<String>,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl Summary {
    pub fn of(
        fakes: &[FakeGateway],
        windows: &[Window],
        seed: u64,
        spawns: Spawns,
        lost: Vec<String>,
    ) -> Summary {
        // Gaps shorter than this are the heartbeats' spacing, not unowned time.
        let min_gap_us = super::world::silence().as_micros() as u64;
        let mut per_fault: BTreeMap<Fault, PerFault> = BTreeMap::new();
        let mut overlaps = Vec::new();
        let mut fencing = Vec::new();
        for (i, f) in fakes.iter().enumerate() {
            let frames = f.dialer_frames();
            let n = fake_gateway::frame_overlaps(&frames);
            if n > 0 {
                overlaps.push(format!("gw{i}: {n} ({frames:?})"));
            }
            fencing.extend(
                fake_gateway::fencing_faults(&f.dialers())
                    .into_iter()
                    .map(|e| format!("gw{i}: {e}")),
            );
            for w in windows {
                let unowned: u64 =
                    fake_gateway::unserved(&frames, w.start_us, w.end_us, min_gap_us)
                        .iter()
                        .map(|(_, len)| len / 1000)
                        .sum();
                if unowned > 0 && std::env::var_os("GS_FAULTS_DEBUG").is_some() {
                    let gaps = fake_gateway::unserved(&frames, w.start_us, w.end_us, min_gap_us);
                    let before: Vec<String> = gaps
                        .iter()
                        .map(|(at, len)| {
                            let by = frames
                                .iter()
                                .filter(|d| d.last_frame_us() <= *at)
                                .max_by_key(|d| d.last_frame_us())
                                .map_or("-", |d| d.instance_id.as_str());
                            format!(
                                "+{}ms {}ms after {by}",
                                (at - w.start_us) / 1000,
                                len / 1000
                            )
                        })
                        .collect();
                    eprintln!("gw{i} {}: {before:?}", w.fault.name());
                }
                if unowned > 0 {
                    per_fault
                        .entry(w.fault)
                        .or_default()
                        .unowned_ms
                        .push(unowned);
                }
            }
        }
        for w in windows {
            let p = per_fault.entry(w.fault).or_default();
            p.injected += 1;
            match w.relinked {
                Some(d) => p.slowest_relink = p.slowest_relink.max(d),
                None => p.not_relinked += 1,
            }
        }
        Summary {
            seed,
            gateways: fakes.len(),
            per_fault,
            overlaps,
            fencing,
            spawns,
            lost,
        }
    }

    pub fn markdown(&self) -> String {
        let mut s = format!(
            "Fault run: {} gateways, 3 instances, {} s leases, {} ms heartbeats, seed {}.\n\n\
             | fault | injected | gateways unowned | unowned p50 | p99 | max | all relinked after the heal (slowest) |\n\
             |---|---|---|---|---|---|---|\n",
            self.gateways,
            super::world::ttl().as_secs(),
            super::world::heartbeat().as_millis(),
            self.seed
        );
        for (fault, p) in &self.per_fault {
            let mut ms = p.unowned_ms.clone();
            ms.sort_unstable();
            let secs = |v: u64| format!("{:.1} s", v as f64 / 1000.0);
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                fault.name(),
                p.injected,
                ms.len(),
                secs(percentile(&ms, 0.5)),
                secs(percentile(&ms, 0.99)),
                secs(ms.last().copied().unwrap_or(0)),
                if p.not_relinked == 0 {
                    format!("{:.1} s", p.slowest_relink.as_secs_f64())
                } else {
                    format!("**{} not within the bound**", p.not_relinked)
                },
            ));
        }
        s.push_str(&format!(
            "\nFrame overlaps (two instances' frames at one gateway at once): {}. \
             Fencing faults (an epoch back, or from two instances): {}. \
             Spawns asked during faults: {} ({} ended ok, the others with an error), runs at the \
             gateways: {} (more than one per key: {}). \
             Acknowledged writes lost across failovers: {}.\n",
            self.overlaps.len(),
            self.fencing.len(),
            self.spawns.asked,
            self.spawns.ok,
            self.spawns.runs,
            self.spawns.runs.saturating_sub(self.spawns.asked),
            self.lost.len(),
        ));
        s
    }

    pub fn assert_held(&self) {
        assert!(
            self.overlaps.is_empty(),
            "frame overlaps: {:#?}",
            self.overlaps
        );
        assert!(
            self.fencing.is_empty(),
            "fencing faults: {:#?}",
            self.fencing
        );
        let s = &self.spawns;
        assert!(
            s.runs <= s.asked,
            "a spawn ran twice: {} runs for {} keys",
            s.runs,
            s.asked
        );
        assert!(
            s.runs >= s.ok,
            "a spawn ended ok without a run: {} runs, {} ok",
            s.runs,
            s.ok
        );
        assert!(
            self.lost.is_empty(),
            "acknowledged writes lost: {:?}",
            self.lost
        );
        for (fault, p) in &self.per_fault {
            assert_eq!(p.not_relinked, 0, "{}: gateways not relinked", fault.name());
        }
    }
}
