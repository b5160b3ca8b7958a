//! When a link sends its keepalive ping: on a process-wide grid, not at "connect time + n ×
//! interval". Each gateway gets a slot (one-second steps within the interval, by id), so the
//! pings of a large fleet leave in a few bursts per second instead of one at a time: every
//! burst is one thread wake-up (timers due in the same millisecond fire together) and the
//! pongs come back together, while no slot holds more than 1/30 of the fleet (default 30 s).

use std::time::Duration;

/// Width of a slot; shorter intervals use one slot of the interval's length.
const SLOT: Duration = Duration::from_secs(1);

/// Time from `now` (measured from the shared grid origin) to gateway `id`'s next ping.
/// Always in `(0, interval]`.
pub fn next_ping_in(now: Duration, interval: Duration, id: i64) -> Duration {
    let cycle = interval.as_nanos().max(1);
    let slot = SLOT.min(interval).as_nanos().max(1);
    let slots = (cycle / slot).max(1);
    let offset = (id.rem_euclid(i64::try_from(slots).unwrap_or(i64::MAX)) as u128) * slot;
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
pub fn first_ping_in(now: Duration, interval: Duration, id: i64) -> Duration {
    interval + next_ping_in(now + interval, interval, id)
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
        assert_eq!(next_ping_in(at(0.0), S30, 7), at(7.0));
        assert_eq!(next_ping_in(at(6.5), S30, 7), at(0.5));
        assert_eq!(
            next_ping_in(at(7.0), S30, 7),
            S30,
            "never zero: the next cycle"
        );
        assert_eq!(next_ping_in(at(7.25), S30, 7), at(29.75));
        assert_eq!(next_ping_in(at(65.0), S30, 37), at(2.0), "37 shares slot 7");
    }

    #[test]
    fn pings_stay_on_the_grid_and_one_interval_apart() {
        let mut now = at(123.456);
        let mut fires = Vec::new();
        for _ in 0..5 {
            now += next_ping_in(now, S30, 3);
            fires.push(now);
        }
        for w in fires.windows(2) {
            assert_eq!(w[1] - w[0], S30);
        }
        assert_eq!(fires[0].as_nanos() % S30.as_nanos(), at(3.0).as_nanos());
    }

    #[test]
    fn the_first_ping_waits_a_whole_interval_then_joins_the_grid() {
        let first = next_ping_in(at(10.2), S30, 7);
        assert_eq!(first, at(26.8));
        let first = first_ping_in(at(10.2), S30, 7);
        assert_eq!(first, at(56.8));
        assert_eq!(
            (at(10.2) + first).as_nanos() % S30.as_nanos(),
            at(7.0).as_nanos()
        );
        assert!(first_ping_in(at(6.9), S30, 7) > S30);
    }

    #[test]
    fn short_intervals_and_odd_ids() {
        let i = Duration::from_millis(200);
        let d = next_ping_in(at(1.05), i, 42);
        assert_eq!(d, Duration::from_millis(150));
        assert!(next_ping_in(at(0.0), S30, -1) <= S30);
        assert!(next_ping_in(at(5.0), Duration::ZERO, 1) > Duration::ZERO);
    }
}
