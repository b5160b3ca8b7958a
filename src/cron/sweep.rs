//! When each gateway's jobs are read again in full (besides at link and on the `cron` event):
//! once per `interval`, at a phase of its own — a hash of its id — so a fleet is swept evenly
//! across the interval instead of all at once (100,000 gateways every 15 minutes is ~111 reads
//! a second, not 100,000 in the first one). A gateway whose `snapshotRevision` did not move
//! costs one page. Pure; checked by its unit tests, asked by the inventory each tick.

use gateway_supervisor_actors::model::GatewayId;

/// A gateway's phase within the interval (ms), the same on every instance of a cluster.
pub fn phase(gateway: GatewayId, interval_ms: i64) -> i64 {
    // SplitMix64's finalizer: consecutive ids land far apart.
    let mut x = gateway.get() as u64;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x % interval_ms.max(1) as u64) as i64
}

/// The first sweep of `gateway` after `after` (Unix ms).
pub fn next_after(gateway: GatewayId, after: i64, interval_ms: i64) -> i64 {
    let interval_ms = interval_ms.max(1);
    let phase = phase(gateway, interval_ms);
    let k = (after - phase).div_euclid(interval_ms) + 1;
    phase + k * interval_ms
}

/// Whether `gateway` is due in `(last_tick, now]`.
pub fn due(gateway: GatewayId, last_tick: i64, now: i64, interval_ms: i64) -> bool {
    next_after(gateway, last_tick, interval_ms) <= now
}

/// The gateways of a sweep ordered by their phase, so that a tick finds those due in
/// `(last_tick, now]` by two binary searches instead of asking [`due`] of every gateway: at
/// 19,000 gateways the walk at every one-second tick was about 4 % of the idle daemon's CPU.
/// Built when the gateways change (a sort), asked at every tick (O(log n + due)).
#[derive(Debug, Default)]
pub struct Phases {
    interval_ms: i64,
    /// `(phase, gateway)`, ascending.
    by_phase: Vec<(i64, GatewayId)>,
}

impl Phases {
    pub fn new(gateways: &[GatewayId], interval_ms: i64) -> Phases {
        let interval_ms = interval_ms.max(1);
        let mut by_phase: Vec<(i64, GatewayId)> = gateways
            .iter()
            .map(|g| (phase(*g, interval_ms), *g))
            .collect();
        by_phase.sort_unstable();
        Phases {
            interval_ms,
            by_phase,
        }
    }

    /// The gateways due in `(last_tick, now]` — exactly those [`due`] names, in phase order.
    pub fn due(&self, last_tick: i64, now: i64) -> Vec<GatewayId> {
        let i = self.interval_ms;
        if now <= last_tick {
            return Vec::new();
        }
        if now - last_tick >= i {
            return self.by_phase.iter().map(|(_, g)| *g).collect();
        }
        let (from, to) = (last_tick.rem_euclid(i), now.rem_euclid(i));
        // Phases in (from, to], around the end of the interval when to < from.
        let after = |p: i64| self.by_phase.partition_point(|(q, _)| *q <= p);
        let ids = |range: std::ops::Range<usize>| self.by_phase[range].iter().map(|(_, g)| *g);
        if from < to {
            ids(after(from)..after(to)).collect()
        } else {
            ids(after(from)..self.by_phase.len())
                .chain(ids(0..after(to)))
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_name_the_gateways_due_names_whatever_the_window() {
        let fleet: Vec<GatewayId> = (1..=3_000).map(id).collect();
        for interval in [1_000, 7_000, MIN15] {
            let phases = Phases::new(&fleet, interval);
            // Windows of every kind: short, across the interval's end, a whole interval and
            // more, empty and backwards (a clock stepped back).
            let mut t = T0;
            for width in [
                1, 999, 1_000, 1_001, 3_333, 6_999, 7_000, 20_000, MIN15, 0, -5,
            ] {
                for start in [t, t + interval - 1, t + interval / 2] {
                    let mut got = phases.due(start, start + width);
                    got.sort_unstable();
                    let want: Vec<GatewayId> = fleet
                        .iter()
                        .copied()
                        .filter(|g| width > 0 && due(*g, start, start + width, interval))
                        .collect();
                    assert_eq!(
                        got,
                        want,
                        "interval {interval}, ({start}, {}]",
                        start + width
                    );
                }
                t += 12_345;
            }
        }
    }

    const MIN15: i64 = 15 * 60 * 1000;
    const T0: i64 = 1_795_910_400_000;

    fn id(n: i64) -> GatewayId {
        GatewayId(n)
    }

    #[test]
    fn each_gateway_is_due_once_an_interval() {
        for n in [1, 2, 999, 123_456] {
            let mut seen = 0;
            let mut t = T0;
            while t < T0 + 3 * MIN15 {
                if due(id(n), t, t + 1000, MIN15) {
                    seen += 1;
                }
                t += 1000;
            }
            assert_eq!(seen, 3, "gateway {n}");
        }
    }

    #[test]
    fn a_fleet_is_swept_evenly_not_at_once() {
        // 10,000 gateways, 15 minutes: 11.1 a second on average.
        let fleet: Vec<GatewayId> = (1..=10_000).map(id).collect();
        let mut busiest = 0;
        let mut total = 0;
        let mut t = T0;
        while t < T0 + MIN15 {
            let n = fleet
                .iter()
                .filter(|g| due(**g, t, t + 1000, MIN15))
                .count();
            busiest = busiest.max(n);
            total += n;
            t += 1000;
        }
        assert_eq!(total, 10_000, "each once");
        assert!(busiest <= 30, "at most {busiest} in one second");
    }

    #[test]
    fn the_next_sweep_is_within_one_interval() {
        for n in 1..200 {
            let next = next_after(id(n), T0, MIN15);
            assert!(next > T0 && next <= T0 + MIN15, "{n}: {next}");
            assert_eq!(next_after(id(n), next, MIN15), next + MIN15);
        }
    }
}
