//! Circuit breaker: `threshold` consecutive failures (probe, heartbeat or connect) open it; after
//! `cooldown` one half-open attempt is allowed; a success closes it, a failure re-opens it for
//! another cooldown.
//!
//! An *outage* runs from the first opening to the next real success (a healthy probe, or a link
//! that stayed up [`crate::backoff::STABLE_LINK`]): the opening that starts it is said once
//! ([`Opening::Opened`]), the trials that fail within it are not ([`Opening::Reopened`]) —
//! a WARN every cooldown told the operator nothing new. A handshake ends the open state (the
//! gateway is reachable: [`Breaker::handshake_ok`]) but not the count: a gateway that fails
//! right after every hello reaches the threshold like any other, instead of being reset at each
//! hello and never opening.

use std::time::{Duration, Instant};

use crate::model::{BreakerInfo, BreakerState};

#[derive(Debug, Clone)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    consecutive_failures: u32,
    opened_at: Option<Instant>,
    /// Opened since the last real success (see the module's opening).
    in_outage: bool,
    /// This outage's first handshake happened (the one [`Breaker::handshake_ok`] reports).
    back_said: bool,
}

/// What a failure did to the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// Nothing changed state (below the threshold, or already open).
    No,
    /// Opened: an outage begins.
    Opened,
    /// Opened again within the same outage (a failed trial, or a failure after a handshake
    /// that did not last).
    Reopened,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            consecutive_failures: 0,
            opened_at: None,
            in_outage: false,
            back_said: false,
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

    /// A real success: the count starts afresh and an outage is over. Returns whether one was.
    pub fn record_success(&mut self) -> bool {
        self.consecutive_failures = 0;
        self.opened_at = None;
        std::mem::replace(&mut self.in_outage, false)
    }

    /// A handshake went through: the gateway is reachable, so the breaker is closed, but the
    /// failures in a row are not forgotten until the link proves stable. Returns whether this
    /// is the first handshake since an outage began (the gateway is back: said once).
    pub fn handshake_ok(&mut self) -> bool {
        let was_open = self.opened_at.take().is_some();
        was_open && !std::mem::replace(&mut self.back_said, true)
    }

    /// Counts a failure; says whether it opened the breaker, and if so whether an outage
    /// begins or goes on.
    pub fn record_failure(&mut self, now: Instant) -> Opening {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if self.consecutive_failures >= self.threshold {
            let was_closed = self.opened_at.is_none();
            let trial_failed = self.state(now) == BreakerState::HalfOpen;
            if was_closed || trial_failed {
                self.opened_at = Some(now);
                return if std::mem::replace(&mut self.in_outage, true) {
                    Opening::Reopened
                } else {
                    self.back_said = false;
                    Opening::Opened
                };
            }
        }
        Opening::No
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
        assert_eq!(b.record_failure(t0), Opening::No);
        assert_eq!(b.record_failure(t0), Opening::No);
        assert_eq!(b.state(t0), BreakerState::Closed);
        assert!(b.allows_attempt(t0));
        assert_eq!(b.record_failure(t0), Opening::Opened);
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
        // The trial fails: open again for a full cooldown from now, the same outage.
        assert_eq!(b.record_failure(t1), Opening::Reopened);
        assert_eq!(b.state(t1 + Duration::from_secs(1)), BreakerState::Open);
        assert_eq!(b.state(t1 + COOL), BreakerState::HalfOpen);
        // The next trial succeeds: closed, and the outage is over.
        assert!(b.record_success());
        assert_eq!(b.state(t1 + COOL), BreakerState::Closed);
        assert!(!b.is_tripped());
        assert!(!b.record_success(), "no outage any more");
    }

    #[test]
    fn failures_while_open_do_not_extend_the_cooldown() {
        let t0 = Instant::now();
        let mut b = Breaker::new(1, COOL);
        assert_eq!(b.record_failure(t0), Opening::Opened);
        assert_eq!(b.record_failure(t0 + Duration::from_secs(10)), Opening::No);
        assert_eq!(b.state(t0 + COOL), BreakerState::HalfOpen);
        assert_eq!(b.info(t0).consecutive_failures, 2);
    }

    #[test]
    fn a_handshake_closes_the_breaker_but_keeps_the_count_until_the_link_lasts() {
        let t0 = Instant::now();
        let mut b = Breaker::new(3, COOL);
        b.record_failure(t0);
        b.record_failure(t0);
        assert!(!b.handshake_ok(), "it was closed");
        assert_eq!(b.consecutive_failures(), 2);
        assert_eq!(b.record_failure(t0), Opening::Opened);
        assert!(b.handshake_ok(), "it was open");
        assert_eq!(b.state(t0), BreakerState::Closed);
        assert_eq!(b.record_failure(t0), Opening::Reopened);
        assert!(b.record_success());
        assert_eq!(b.consecutive_failures(), 0);
    }
}
