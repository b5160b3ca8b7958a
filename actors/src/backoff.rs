//! Reconnect schedule: 1, 2, 4, 8, 16 s, then the ceiling (30 s by default), each spread by
//! ±25 % jitter so a fleet that lost its gateways together does not reconnect in step. A
//! gateway's own hint (`retryAfterMs`, `restartExpectedMs`) is a floor.

use std::time::Duration;

const BASE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct Backoff {
    attempt: u32,
    max: Duration,
}

impl Backoff {
    pub fn new(max: Duration) -> Self {
        Backoff {
            attempt: 0,
            max: max.max(BASE),
        }
    }

    /// The un-jittered delay of the next attempt.
    pub fn base_delay(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(16)).unwrap_or(u32::MAX);
        BASE.saturating_mul(factor).min(self.max)
    }

    /// The un-jittered delay of the next attempt, counting it (a retry of one call on one
    /// link has no fleet to spread out).
    pub fn next_base_delay(&mut self) -> Duration {
        let base = self.base_delay();
        self.attempt = self.attempt.saturating_add(1);
        base
    }

    /// The delay before the next attempt; `jitter` is uniform in [0, 1).
    pub fn next_delay(&mut self, jitter: f64, hint: Option<Duration>) -> Duration {
        let base = self.base_delay();
        self.attempt = self.attempt.saturating_add(1);
        let spread = base
            .mul_f64(0.75 + 0.5 * jitter.clamp(0.0, 1.0))
            .min(self.max);
        match hint {
            // The gateway said when it will be back: wait that long, plus a little spread.
            Some(h) => spread.max(h + h.mul_f64(0.2 * jitter.clamp(0.0, 1.0))),
            None => spread,
        }
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// A small per-actor random source for jitter (splitmix64), seeded from the OS.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    pub fn from_os() -> Self {
        let mut seed = [0u8; 8];
        // A failed OS RNG only makes the jitter predictable, never wrong.
        let _ = getrandom::getrandom(&mut seed);
        Jitter(u64::from_le_bytes(seed))
    }

    pub fn with_seed(seed: u64) -> Self {
        Jitter(seed)
    }

    /// Uniform in [0, 1).
    pub fn sample(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A link up this long has proved stable: its next failure starts the schedule afresh.
pub const STABLE_LINK: Duration = Duration::from_secs(10);

/// Whether a link that was up for `connected_for` (None: never got to `hello-ok`) earned a
/// fresh schedule. Resetting on every `hello-ok` re-dialled a gateway that closes right after
/// the handshake about once a second, forever.
pub fn stable_link(connected_for: Option<Duration>) -> bool {
    connected_for.is_some_and(|d| d >= STABLE_LINK)
}

/// How many of the gateway's own "not now" answers (see [`taken_at_its_word`]) are taken at
/// their word between two stable links. A real restart says it a few times: the announced
/// shutdown, then "gateway starting" to each dial while its start-up finishes (~3 s observed on
/// 2 vCPUs).
pub const WORDS_TAKEN: u32 = 8;

/// Whether a failure that is the gateway's own word that it is not taking links now (it is
/// shutting down or restarting, or still starting) is taken at its word: not a failure for
/// the circuit breaker, and answered by watching its `/readyz` (503 while it drains or starts).
/// `words` counts such answers since the last stable link, this one included: a gateway that
/// says it at every dial is failing like any other once it has said it `WORDS_TAKEN` times.
pub fn taken_at_its_word(says_not_now: bool, words: u32) -> bool {
    says_not_now && words <= WORDS_TAKEN
}

/// Whether a backing-off link may reconnect as soon as the gateway's `/readyz` answers 200.
/// When the last failure came before the WebSocket upgrade (refused, unreachable, timed out),
/// or was the gateway's own word that it was not taking links yet, taken at its word: a
/// gateway whose HTTP side is ready but whose WebSocket is broken (oversize, binary, unreadable
/// hello) was otherwise re-dialled every second with the breaker open.
/// Never while waiting for a pairing approval (no readiness signal for that).
pub fn readiness_shortcut(
    failed_before_upgrade: bool,
    taken_at_its_word: bool,
    waiting_for_pairing: bool,
) -> bool {
    (failed_before_upgrade || taken_at_its_word) && !waiting_for_pairing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_link_up_for_a_while_earns_a_fresh_schedule() {
        assert!(!stable_link(None));
        assert!(!stable_link(Some(Duration::from_millis(50))));
        assert!(!stable_link(Some(STABLE_LINK - Duration::from_millis(1))));
        assert!(stable_link(Some(STABLE_LINK)));
    }

    #[test]
    fn readiness_shortcuts_failures_before_the_upgrade_and_the_gateways_own_word() {
        assert!(readiness_shortcut(true, false, false));
        assert!(
            readiness_shortcut(false, true, false),
            "shutting down or starting: /readyz says when"
        );
        assert!(
            !readiness_shortcut(false, false, false),
            "broken WebSocket: the breaker decides"
        );
        assert!(
            !readiness_shortcut(true, false, true),
            "pairing has no readiness signal"
        );
    }

    #[test]
    fn the_gateways_word_is_taken_a_bounded_number_of_times() {
        assert!(taken_at_its_word(true, 1));
        assert!(taken_at_its_word(true, WORDS_TAKEN));
        assert!(
            !taken_at_its_word(true, WORDS_TAKEN + 1),
            "said at every dial: a failure like any other"
        );
        assert!(!taken_at_its_word(false, 1));
    }

    #[test]
    fn schedule_doubles_to_the_ceiling() {
        let mut b = Backoff::new(Duration::from_secs(30));
        let delays: Vec<u64> = (0..8).map(|_| b.next_delay(0.5, None).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 30, 30, 30]);
        b.reset();
        assert_eq!(b.next_delay(0.5, None), Duration::from_secs(1));
    }

    #[test]
    fn jitter_spreads_within_a_quarter_and_never_exceeds_the_ceiling() {
        let mut lo = Backoff::new(Duration::from_secs(30));
        let mut hi = Backoff::new(Duration::from_secs(30));
        assert_eq!(lo.next_delay(0.0, None), Duration::from_millis(750));
        assert_eq!(hi.next_delay(0.999_999, None).as_millis(), 1249);
        for _ in 0..10 {
            assert!(hi.next_delay(0.999_999, None) <= Duration::from_secs(30));
        }
    }

    #[test]
    fn gateway_hints_are_a_floor() {
        let mut b = Backoff::new(Duration::from_secs(30));
        assert_eq!(
            b.next_delay(0.0, Some(Duration::from_millis(1500))),
            Duration::from_millis(1500)
        );
        let d = b.next_delay(0.5, Some(Duration::from_millis(500)));
        assert_eq!(
            d,
            Duration::from_secs(2),
            "a short hint does not shorten the schedule"
        );
    }

    #[test]
    fn a_small_ceiling_is_respected() {
        let mut b = Backoff::new(Duration::from_secs(5));
        let delays: Vec<u64> = (0..5).map(|_| b.next_delay(0.5, None).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 5, 5]);
    }

    #[test]
    fn jitter_is_uniform_enough() {
        let mut j = Jitter::with_seed(42);
        let samples: Vec<f64> = (0..10_000).map(|_| j.sample()).collect();
        assert!(samples.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!((0.47..0.53).contains(&mean), "{mean}");
        let low = samples.iter().filter(|x| **x < 0.1).count();
        assert!((800..1200).contains(&low), "{low}");
    }
}
