//! When a link sends its keepalive ping: on a process-wide grid, not at "connect time + n ×
//! interval". Each gateway gets a slot (one-second steps within the interval, by id), so the
//! pings of a large fleet leave in a few bursts per second instead of one at a time: every
//! burst is one thread wake-up (timers due in the same millisecond fire together) and the
//! pongs come back together, while no slot holds more than 1/30 of the fleet (default 30 s).
//! The periodic health probes use the same grid on their own interval (default 300 s): a fleet
//! of 10,000 probes ~33 gateways a second, each an RPC and an HTTP request on a new
//! connection, and one wake-up for the 33 costs less than 33.

use crate::model::GatewayId;
use std::time::{Duration, Instant};

/// Width of a slot; shorter intervals use one slot of the interval's length.
const SLOT: Duration = Duration::from_secs(1);

/// The grid's origin: the first call in this process.
fn origin() -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Time since the grid's origin.
pub fn on_grid() -> Duration {
    origin().elapsed()
}

/// When gateway `id`'s slot next comes by `when` (one of the rules below), as an instant: the
/// same instant for every gateway of a slot, so their timers can be one.
pub fn grid_instant(
    when: fn(Duration, Duration, GatewayId) -> Duration,
    interval: Duration,
    id: GatewayId,
) -> Instant {
    let now = on_grid();
    origin() + now + when(now, interval, id)
}

/// Time from `now` (measured from the shared grid origin) to gateway `id`'s next ping.
/// Always in `(0, interval]`.
pub fn next_ping_in(now: Duration, interval: Duration, id: GatewayId) -> Duration {
    let cycle = interval.as_nanos().max(1);
    let slot = SLOT.min(interval).as_nanos().max(1);
    let slots = (cycle / slot).max(1);
    let offset = (id
        .get()
        .rem_euclid(i64::try_from(slots).unwrap_or(i64::MAX)) as u128)
        * slot;
    let now = now.as_nanos();
    let mut next = now / cycle * cycle + offset;
    if next <= now {
        next += cycle;
    }
    Duration::from_nanos(u64::try_from(next - now).unwrap_or(u64::MAX))
}

/// The first ping after a handshake: the first slot at least one interval later, as if the
/// link had always been on the grid. Not sooner: a fleet connects in a burst, and a round trip
/// measured inside that burst is the daemon's own queueing, which would read as "degraded".
/// In `(interval, 2 × interval]`.
pub fn first_ping_in(now: Duration, interval: Duration, id: GatewayId) -> Duration {
    interval + next_ping_in(now + interval, interval, id)
}

/// The first periodic probe of a link started at `now`: the first slot at least half an
/// interval away, so in `(interval / 2, 1.5 × interval]` — one interval on average, as a plain
/// timer started with the link would be, but on the grid.
pub fn first_probe_in(now: Duration, interval: Duration, id: GatewayId) -> Duration {
    let half = interval / 2;
    half + next_ping_in(now + half, interval, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S30: Duration = Duration::from_secs(30);

    fn at(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    #[test]
    fn each_gateway_pings_in_its_own_second_of_the_interval() {
        // id 7 owns second 7 of every 30 s cycle.
        assert_eq!(next_ping_in(at(0.0), S30, GatewayId(7)), at(7.0));
        assert_eq!(next_ping_in(at(6.5), S30, GatewayId(7)), at(0.5));
        assert_eq!(
            next_ping_in(at(7.0), S30, GatewayId(7)),
            S30,
            "never zero: the next cycle"
        );
        assert_eq!(next_ping_in(at(7.25), S30, GatewayId(7)), at(29.75));
        assert_eq!(
            next_ping_in(at(65.0), S30, GatewayId(37)),
            at(2.0),
            "37 shares slot 7"
        );
    }

    #[test]
    fn pings_stay_on_the_grid_and_one_interval_apart() {
        let mut now = at(123.456);
        let mut fires = Vec::new();
        for _ in 0..5 {
            now += next_ping_in(now, S30, GatewayId(3));
            fires.push(now);
        }
        for w in fires.windows(2) {
            assert_eq!(w[1] - w[0], S30);
        }
        assert_eq!(fires[0].as_nanos() % S30.as_nanos(), at(3.0).as_nanos());
    }

    #[test]
    fn the_first_ping_waits_a_whole_interval_then_joins_the_grid() {
        let first = next_ping_in(at(10.2), S30, GatewayId(7));
        assert_eq!(first, at(26.8));
        let first = first_ping_in(at(10.2), S30, GatewayId(7));
        assert_eq!(first, at(56.8));
        assert_eq!(
            (at(10.2) + first).as_nanos() % S30.as_nanos(),
            at(7.0).as_nanos()
        );
        assert!(first_ping_in(at(6.9), S30, GatewayId(7)) > S30);
    }

    #[test]
    fn the_first_probe_comes_within_half_an_interval_of_one_interval_then_on_the_grid() {
        let s300 = Duration::from_secs(300);
        for (now, id) in [
            (at(0.0), 1),
            (at(10.2), 7),
            (at(149.9), 299),
            (at(1000.0), 12_345),
        ] {
            let first = first_probe_in(now, s300, GatewayId(id));
            assert!(first > s300 / 2 && first <= s300 * 3 / 2, "{first:?}");
            assert_eq!(
                (now + first).as_nanos() % s300.as_nanos(),
                at((id % 300) as f64).as_nanos(),
                "in the gateway's own second"
            );
        }
    }

    #[test]
    fn a_fleet_linked_at_once_is_probed_a_slot_at_a_time_not_all_together() {
        // 10,000 links started in the same instant (a daemon starting): at most 1/300 of
        // them probe in any one second, where timers started with each link fired together.
        let s300 = Duration::from_secs(300);
        let now = at(42.0);
        let mut per_second = std::collections::HashMap::<u128, usize>::new();
        for id in 1..=10_000 {
            let fires = now + first_probe_in(now, s300, GatewayId(id));
            *per_second
                .entry(fires.as_nanos() / 1_000_000_000)
                .or_default() += 1;
        }
        assert_eq!(per_second.len(), 300);
        assert!(per_second.values().all(|n| *n <= 34), "{per_second:?}");
    }

    #[test]
    fn short_intervals_and_odd_ids() {
        let i = Duration::from_millis(200);
        let d = next_ping_in(at(1.05), i, GatewayId(42));
        assert_eq!(d, Duration::from_millis(150));
        assert!(next_ping_in(at(0.0), S30, GatewayId(-1)) <= S30);
        assert!(next_ping_in(at(5.0), Duration::ZERO, GatewayId(1)) > Duration::ZERO);
    }
}
