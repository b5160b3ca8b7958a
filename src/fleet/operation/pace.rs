//! Pacing writes under a gateway's own limit: 2026.9.6 takes at most 30 control-plane writes
//! (`config.patch`, `cron.add`, `cron.update`, `cron.remove`, `cron.run`) per 60 s from one
//! client, failed writes included, and refuses the 31st with `retryAfterMs` (captured). The
//! daemon is one client per gateway, so every playbook and service that writes takes its turn
//! here: each gateway's writes of the last minute are kept, a write is held back until the
//! oldest leaves the window rather than spend one on a refusal, and writes to one gateway are
//! at least [`GAP_MS`] apart (the limit's own average: a burst of thirty in a second would
//! leave the gateway's operator no write of their own for a minute). Pure: time is an input.

use std::collections::{HashMap, VecDeque};

use gateway_supervisor_actors::model::GatewayId;

/// 2026.9.6's limit: writes per window.
pub const LIMIT: usize = 30;
/// Its window.
pub const WINDOW_MS: i64 = 60_000;
/// The least time between two writes to one gateway.
pub const GAP_MS: i64 = 2_000;

#[derive(Debug, Default)]
pub struct Pacer {
    writes: HashMap<GatewayId, VecDeque<i64>>,
    /// When the map was last pruned: at most once a second, not at every write (a rollout to
    /// 1,000 gateways would walk the map 1,000 times).
    pruned_at_ms: i64,
}

impl Pacer {
    /// Takes a write to gateway `id` at `now_ms`: `Ok(())` (counted), or `Err(ms)` to wait
    /// before the window has room.
    pub fn take(&mut self, id: GatewayId, now_ms: i64) -> Result<(), i64> {
        if now_ms - self.pruned_at_ms >= 1_000 {
            self.prune(now_ms);
        }
        let q = self.writes.entry(id).or_default();
        while q.front().is_some_and(|t| now_ms - t >= WINDOW_MS) {
            q.pop_front();
        }
        if q.len() >= LIMIT {
            let oldest = q.front().copied().unwrap_or(now_ms);
            return Err((oldest + WINDOW_MS - now_ms).max(1));
        }
        if let Some(last) = q.back()
            && now_ms - last < GAP_MS
        {
            return Err((last + GAP_MS - now_ms).max(1));
        }
        q.push_back(now_ms);
        Ok(())
    }

    /// Forgets gateways with no write in the window (bounds the map by the gateways written
    /// to in the last minute).
    fn prune(&mut self, now_ms: i64) {
        self.pruned_at_ms = now_ms;
        self.writes
            .retain(|_, q| q.back().is_some_and(|t| now_ms - t < WINDOW_MS));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_to_a_gateway_are_two_seconds_apart() {
        let mut p = Pacer::default();
        assert_eq!(p.take(GatewayId(7), 1_000), Ok(()));
        assert_eq!(p.take(GatewayId(7), 1_500), Err(1_500));
        assert_eq!(p.take(GatewayId(7), 2_999), Err(1));
        assert_eq!(p.take(GatewayId(7), 3_000), Ok(()));
    }

    #[test]
    fn thirty_writes_in_a_minute_go_and_the_thirty_first_waits_for_the_first_to_leave() {
        let mut p = Pacer::default();
        for i in 0..30 {
            assert_eq!(p.take(GatewayId(7), 1_000 + i * 2_000), Ok(()), "write {i}");
        }
        // The window is full until the first write (at 1 s) leaves it at 61 s.
        assert_eq!(p.take(GatewayId(7), 60_000), Err(1_000));
        assert_eq!(
            p.take(GatewayId(7), 61_000),
            Ok(()),
            "the first left the window"
        );
    }

    #[test]
    fn each_gateway_has_its_own_window() {
        let mut p = Pacer::default();
        p.take(GatewayId(1), 0).unwrap();
        assert!(p.take(GatewayId(1), 100).is_err());
        assert_eq!(p.take(GatewayId(2), 100), Ok(()));
    }

    #[test]
    fn a_quiet_gateway_is_forgotten() {
        let mut p = Pacer::default();
        p.take(GatewayId(1), 0).unwrap();
        p.take(GatewayId(2), 50_000).unwrap();
        p.prune(60_000);
        assert_eq!(p.writes.len(), 1);
        assert!(p.writes.contains_key(&GatewayId(2)));
    }
}
