//! When the link dials again: the backoff, the breaker, the gateway's own hints (a restart
//! announced by `shutdown`, a "not now"), and whether its `/readyz` may cut the wait short.
//! The rules are `crate::backoff` and `crate::breaker`; this is the link's memory of them.

use std::time::{Duration, Instant};

use super::Note;
use crate::backoff::Backoff;
use crate::breaker::{Breaker, Opening};
use crate::protocol::errors::LinkFailure;

/// What a scheduled reconnect follows, for the breaker and the `/readyz` shortcut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RetryKind {
    /// A corrective step the gateway recommended (a v2 proof, the device token): no failure,
    /// no readiness polls.
    Recovery,
    /// A failure: counted by the breaker.
    Failure,
    /// The gateway's own word that it is not taking links now, taken at its word
    /// ([`crate::backoff::taken_at_its_word`]): not counted, its `/readyz` watched.
    NotNow,
}

/// A reconnect, decided.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Scheduled {
    pub delay: Duration,
    pub poll_readiness: bool,
    /// What the breaker said of it (an outage begins, or a trial failed).
    pub note: Option<Note>,
}

#[derive(Debug)]
pub(super) struct Retry {
    backoff: Backoff,
    pub(super) breaker: Breaker,
    /// How soon the gateway said it would be back (`shutdown`'s `restartExpectedMs`).
    restart_hint: Option<Duration>,
    attempts: u64,
    /// Whether the last failure came before the WebSocket upgrade (see `backoff`).
    failed_before_upgrade: bool,
    /// The gateway's "not now" answers since the last stable link.
    words_not_now: u32,
}

impl Retry {
    pub(super) fn new(backoff_max: Duration, threshold: u32, cooldown: Duration) -> Self {
        Retry {
            backoff: Backoff::new(backoff_max),
            breaker: Breaker::new(threshold, cooldown),
            restart_hint: None,
            attempts: 0,
            failed_before_upgrade: false,
            words_not_now: 0,
        }
    }

    /// A dial starts: whether it is a reconnect.
    pub(super) fn dial(&mut self) -> bool {
        self.attempts += 1;
        self.attempts > 1
    }

    /// The gateway announced it is going, and how soon it expects to be back.
    pub(super) fn restart_expected(&mut self, hint: Option<Duration>) {
        self.restart_hint = hint;
    }

    /// A handshake went through: the hint is spent. Whether the breaker had been open (an
    /// outage ends). The backoff and the breaker's count are reset only once the link has
    /// proved stable ([`Retry::link_ended`]): a gateway that closes right after every
    /// handshake must not be re-dialled every second, and must open the breaker like any
    /// failing gateway.
    pub(super) fn handshake_ok(&mut self) -> bool {
        self.restart_hint = None;
        self.breaker.handshake_ok()
    }

    /// A link ended after `connected_for` (`None`: it never connected); `before_upgrade`:
    /// the failure came before the WebSocket upgrade.
    pub(super) fn link_ended(&mut self, connected_for: Option<Duration>, before_upgrade: bool) {
        self.failed_before_upgrade = before_upgrade;
        if crate::backoff::stable_link(connected_for) {
            self.backoff.reset();
            self.words_not_now = 0;
            self.breaker.record_success();
        }
    }

    /// The backoff's next delay, no shorter than the gateway's own hint.
    pub(super) fn next_delay(&mut self, after: Option<Duration>, jitter: f64) -> Duration {
        let hint = after.or(self.restart_hint.take());
        self.backoff.next_delay(jitter, hint)
    }

    /// A failure the backoff retries: the gateway's "not now", counted among its words and
    /// taken at its word while they last, or a failure.
    pub(super) fn kind_of(&mut self, failure: &LinkFailure) -> RetryKind {
        let not_now = failure.says_not_now();
        if not_now {
            self.words_not_now = self.words_not_now.saturating_add(1);
        }
        if crate::backoff::taken_at_its_word(not_now, self.words_not_now) {
            RetryKind::NotNow
        } else {
            RetryKind::Failure
        }
    }

    /// The reconnect after `delay` (never before the breaker allows one). A pairing approval
    /// gives no readiness signal; a WebSocket that broke after the upgrade is not mended by a
    /// ready HTTP side (the breaker decides); a gateway that was unreachable, or said it was
    /// going away or starting, may come back early.
    pub(super) fn schedule(
        &mut self,
        delay: Duration,
        kind: RetryKind,
        pairing: bool,
        now: Instant,
    ) -> Scheduled {
        let mut note = None;
        if kind == RetryKind::Failure {
            let failures = self.breaker.consecutive_failures() + 1;
            note = match self.breaker.record_failure(now) {
                Opening::Opened => Some(Note::BreakerOpened { failures }),
                Opening::Reopened => Some(Note::BreakerReopened { failures }),
                Opening::No => None,
            };
        }
        let poll_readiness = kind != RetryKind::Recovery
            && crate::backoff::readiness_shortcut(
                self.failed_before_upgrade,
                kind == RetryKind::NotNow,
                pairing,
            );
        Scheduled {
            delay: delay.max(self.breaker.wait(now)),
            poll_readiness,
            note,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MID: f64 = 0.5;

    fn retry() -> Retry {
        Retry::new(Duration::from_secs(30), 3, Duration::from_secs(60))
    }

    #[test]
    fn the_first_dial_is_no_reconnect_and_every_later_one_is() {
        let mut r = retry();
        assert!(!r.dial());
        assert!(r.dial());
        assert!(r.dial());
    }

    #[test]
    fn the_third_failure_opens_the_breaker_and_holds_the_next_dial_for_its_cooldown() {
        let mut r = retry();
        let now = Instant::now();
        for _ in 0..2 {
            let s = r.schedule(Duration::from_secs(1), RetryKind::Failure, false, now);
            assert_eq!(s.note, None);
        }
        let s = r.schedule(Duration::from_secs(1), RetryKind::Failure, false, now);
        assert_eq!(s.note, Some(Note::BreakerOpened { failures: 3 }));
        assert_eq!(s.delay, Duration::from_secs(60));
    }

    #[test]
    fn recoveries_are_not_failures_and_do_not_poll_readiness() {
        let mut r = retry();
        let now = Instant::now();
        r.link_ended(None, true);
        for _ in 0..5 {
            let s = r.schedule(Duration::from_millis(100), RetryKind::Recovery, false, now);
            assert_eq!((s.note, s.poll_readiness), (None, false));
        }
        assert_eq!(r.breaker.consecutive_failures(), 0);
        let s = r.schedule(Duration::from_secs(1), RetryKind::Failure, false, now);
        assert!(
            s.poll_readiness,
            "unreachable before the upgrade: /readyz may say back"
        );
    }

    #[test]
    fn an_announced_restart_sets_the_floor_of_the_next_delay_once() {
        let mut r = retry();
        r.restart_expected(Some(Duration::from_secs(20)));
        assert!(r.next_delay(None, MID) >= Duration::from_secs(20));
        assert!(r.next_delay(None, MID) < Duration::from_secs(20), "spent");
    }

    #[test]
    fn only_a_link_that_lasted_resets_the_backoff() {
        let mut r = retry();
        let first = r.next_delay(None, MID);
        let second = r.next_delay(None, MID);
        assert!(second > first);
        r.link_ended(Some(Duration::from_secs(1)), false);
        assert!(
            r.next_delay(None, MID) > second,
            "a short link proves nothing"
        );
        r.link_ended(Some(Duration::from_secs(3600)), false);
        assert_eq!(r.next_delay(None, MID), first);
    }
}
