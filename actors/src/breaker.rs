//! Circuit breaker: `threshold` consecutive failures (probe, heartbeat or connect) open it; after
//! `cooldown` one half-open attempt is allowed; a success closes it, a failure re-opens it for
//! another cooldown.

use std::time::{Duration, Instant};

use crate::model::{BreakerInfo, BreakerState};

#[derive(Debug, Clone)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    consecutive_failures: u32,
    opened_at: Option<Instant>,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            consecutive_failures: 0,
            opened_at: None,
        }
    }

    pub fn state(&self, now: Instant) -> BreakerState {
        match self.opened_at {
            None => BreakerState::Closed,
            Some(at) if now.saturating_duration_since(at) >= self.cooldown => {
                BreakerState::HalfOpen
            }
            Some(_) => BreakerState::Open,
        }
    }

    /// Open or half-open: the gateway is out of routing and reads `offline`.
    pub fn is_tripped(&self) -> bool {
        self.opened_at.is_some()
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Whether an attempt may go out now (closed, or the half-open trial).
    pub fn allows_attempt(&self, now: Instant) -> bool {
        self.state(now) != BreakerState::Open
    }

    /// How long until the half-open trial, when open.
    pub fn wait(&self, now: Instant) -> Duration {
        match self.opened_at {
            Some(at) => self
                .cooldown
                .saturating_sub(now.saturating_duration_since(at)),
            None => Duration::ZERO,
        }
    }

    pub fn record_success(&mut self) {
        self.consecutive_failures = 0;
        self.opened_at = None;
    }

    /// Returns true when this failure opened (or re-opened) the breaker.
    pub fn record_failure(&mut self, now: Instant) -> bool {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if self.consecutive_failures >= self.threshold {
            let was_closed = self.opened_at.is_none();
            let trial_failed = self.state(now) == BreakerState::HalfOpen;
            if was_closed || trial_failed {
                self.opened_at = Some(now);
                return true;
            }
        }
        false
    }

    pub fn info(&self, now: Instant) -> BreakerInfo {
        BreakerInfo {
            state: self.state(now),
            consecutive_failures: self.consecutive_failures,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL: Duration = Duration::from_secs(30);

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, COOL);
        assert!(!b.record_failure(t0));
        assert!(!b.record_failure(t0));
        assert_eq!(b.state(t0), BreakerState::Closed);
        assert!(b.allows_attempt(t0));
        assert!(b.record_failure(t0));
        assert_eq!(b.state(t0), BreakerState::Open);
        assert!(b.is_tripped());
        assert!(!b.allows_attempt(t0 + Duration::from_secs(29)));
        assert_eq!(
            b.wait(t0 + Duration::from_secs(10)),
            Duration::from_secs(20)
        );
    }

    #[test]
    fn a_success_resets_the_count() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, COOL);
        b.record_failure(t0);
        b.record_failure(t0);
        b.record_success();
        b.record_failure(t0);
        b.record_failure(t0);
        assert_eq!(b.state(t0), BreakerState::Closed);
        assert_eq!(b.consecutive_failures(), 2);
    }

    #[test]
    fn half_open_after_cooldown_then_closes_or_reopens() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, COOL);
        for _ in 0..3 {
            b.record_failure(t0);
        }
        let t1 = t0 + COOL;
        assert_eq!(b.state(t1), BreakerState::HalfOpen);
        assert!(b.allows_attempt(t1));
        // The trial fails: open again for a full cooldown from now.
        assert!(b.record_failure(t1));
        assert_eq!(b.state(t1 + Duration::from_secs(1)), BreakerState::Open);
        assert_eq!(b.state(t1 + COOL), BreakerState::HalfOpen);
        // The next trial succeeds: closed.
        b.record_success();
        assert_eq!(b.state(t1 + COOL), BreakerState::Closed);
        assert!(!b.is_tripped());
    }

    #[test]
    fn failures_while_open_do_not_extend_the_cooldown() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, COOL);
        assert!(b.record_failure(t0));
        assert!(!b.record_failure(t0 + Duration::from_secs(10)));
        assert_eq!(b.state(t0 + COOL), BreakerState::HalfOpen);
        assert_eq!(b.info(t0).consecutive_failures, 2);
    }
}
