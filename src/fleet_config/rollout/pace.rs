//! Pacing config writes under a gateway's own limit: 2026.9.6 takes at most 30 `config.patch`
//! per 60 s from one client (failed writes included) and refuses the 31st with `retryAfterMs`
//! (captured). The daemon is one client per gateway, so it keeps each gateway's writes of the
//! last minute and holds a write back until the oldest leaves the window, rather than spend
//! one on a refusal. Pure: time is an input.

use std::collections::{HashMap, VecDeque};

use gateway_supervisor_actors::model::GatewayId;

/// 2026.9.6's limit: writes per window.
pub const LIMIT: usize = 30;
/// Its window.
pub const WINDOW_MS: i64 = 60_000;

#[derive(Debug, Default)]
pub struct Pacer {
    writes: HashMap<GatewayId, VecDeque<i64>>,
}

impl Pacer {
    /// Takes a write to gateway `id` at `now_ms`: `Ok(())` (counted), or `Err(ms)` to wait
    /// before the window has room.
    pub fn take(&mut self, id: GatewayId, now_ms: i64) -> Result<(), i64> {
        let q = self.writes.entry(id).or_default();
        while q.front().is_some_and(|t| now_ms - t >= WINDOW_MS) {
            q.pop_front();
        }
        if q.len() >= LIMIT {
            let oldest = q.front().copied().unwrap_or(now_ms);
            return Err((oldest + WINDOW_MS - now_ms).max(1));
        }
        q.push_back(now_ms);
        Ok(())
    }

    /// Forgets gateways with no write in the window (bounds the map by the gateways written
    /// to in the last minute).
    pub fn prune(&mut self, now_ms: i64) {
        self.writes
            .retain(|_, q| q.back().is_some_and(|t| now_ms - t < WINDOW_MS));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirty_writes_in_a_minute_go_and_the_thirty_first_waits_for_the_first_to_leave() {
        let mut p = Pacer::default();
        for i in 0..30 {
            assert_eq!(p.take(GatewayId(7), 1_000 + i * 100), Ok(()), "write {i}");
        }
        assert_eq!(p.take(GatewayId(7), 5_000), Err(56_000));
        assert_eq!(p.take(GatewayId(7), 60_999), Err(1));
        assert_eq!(
            p.take(GatewayId(7), 61_000),
            Ok(()),
            "the first left the window"
        );
    }

    #[test]
    fn each_gateway_has_its_own_window() {
        let mut p = Pacer::default();
        for i in 0..30 {
            p.take(GatewayId(1), i).unwrap();
        }
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
