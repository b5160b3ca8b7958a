//! Per-key rate limits (GCRA via `governor`): N requests per minute with bursts up to N.
//! Reconfigurable at run time (SIGHUP) without a restart.

use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub struct KeyedLimiter<K: std::hash::Hash + Eq + Clone = i64> {
    /// Shown in errors and metrics.
    pub name: &'static str,
    inner: RwLock<Option<Arc<DefaultKeyedRateLimiter<K>>>>,
}

impl<K: std::hash::Hash + Eq + Clone> KeyedLimiter<K> {
    /// `per_minute = 0` disables the limit.
    pub fn per_minute(name: &'static str, per_minute: u32) -> Self {
        KeyedLimiter {
            name,
            inner: RwLock::new(Self::build(per_minute)),
        }
    }

    /// One request per `period` (no burst); a zero period disables the limit.
    pub fn per_period(name: &'static str, period: Duration) -> Self {
        KeyedLimiter {
            name,
            inner: RwLock::new(Self::build_period(period)),
        }
    }

    fn build(per_minute: u32) -> Option<Arc<DefaultKeyedRateLimiter<K>>> {
        NonZeroU32::new(per_minute).map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n))))
    }

    fn build_period(period: Duration) -> Option<Arc<DefaultKeyedRateLimiter<K>>> {
        Quota::with_period(period).map(|q| Arc::new(RateLimiter::keyed(q)))
    }

    pub fn reconfigure(&self, per_minute: u32) {
        *self.inner.write().unwrap_or_else(|p| p.into_inner()) = Self::build(per_minute);
    }

    pub fn reconfigure_period(&self, period: Duration) {
        *self.inner.write().unwrap_or_else(|p| p.into_inner()) = Self::build_period(period);
    }

    /// `Err(seconds)` when over the limit: how long until the next request is allowed
    /// (rounded up, at least 1).
    pub fn check(&self, key: K) -> Result<(), u64> {
        let limiter = self.inner.read().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(limiter) = limiter else {
            return Ok(());
        };
        limiter.check_key(&key).map_err(|not_until| {
            let wait: Duration = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_quota_then_refuses_with_a_wait() {
        let limiter: KeyedLimiter = KeyedLimiter::per_minute("test", 3);
        for _ in 0..3 {
            assert!(limiter.check(1).is_ok());
        }
        let wait = limiter.check(1).unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        // Keys are independent.
        assert!(limiter.check(2).is_ok());
        limiter.reconfigure(0);
        assert!(limiter.check(1).is_ok());
    }

    #[test]
    fn one_per_period() {
        let limiter: KeyedLimiter = KeyedLimiter::per_period("manual", Duration::from_secs(10));
        assert!(limiter.check(1).is_ok());
        let wait = limiter.check(1).unwrap_err();
        assert!((9..=10).contains(&wait), "{wait}");
        assert!(limiter.check(2).is_ok());
    }
}
