//! What a run cost, as its gateway says. Read after the run ends from
//! `sessions.usage.timeseries {key}` — one point per model call of the session, each with its
//! `timestamp` and `cost` (USD, from the gateway's own price table: an estimate, OpenClaw says)
//! — summed over the run's time. Not `sessions.usage {key}`'s `totals.totalCost`: a spawn's run
//! goes to the agent's shared session (`agent:main:main`), whose totals are every run's, and
//! 2026.9.6 answers them from a cache that said `fresh` while it still lacked the run just
//! ended (captured: `testdata/openclaw-captures/2026.9.6/sessions_usage_timeseries.json`). Both
//! methods answer on 2026.9 without being advertised; a gateway that does not answer leaves the
//! run at its estimate.

use std::time::Duration;

use serde_json::{Value, json};

use crate::domain::spend::rule::Micros;
use gateway_supervisor_actors::messages::GatewayLink;

/// A model call's point may be written a moment after the run's end is reported.
const AFTER_END_MS: i64 = 5_000;
/// Asked this many times, a second apart, while the run's points are not there yet (or the
/// gateway refuses for now).
const TRIES: usize = 3;
/// The most one run is believed to cost (US dollars): a larger sum is a peer's nonsense.
const MAX_RUN_USD: f64 = 1_000_000.0;

/// Whether `release` answers the usage time series (2026.9 and later, not advertised).
pub(super) fn answers_timeseries(release: Option<&str>, offered: bool) -> bool {
    offered
        || release
            .and_then(gateway_supervisor_actors::protocol::version::calver)
            .is_some_and(|v| v >= (2026, 9, 0, 0))
}

/// The cost of the run in session `key` from `from_ms` to `to_ms` (Unix ms), in millionths of
/// a dollar; `None` when the gateway does not say.
pub(super) async fn run_cost(
    link: &GatewayLink,
    key: &str,
    from_ms: i64,
    to_ms: i64,
    deadline: Duration,
) -> Option<Micros> {
    let mut last = None;
    for attempt in 0..TRIES {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        // A refusal (the session's transcript not written yet) is asked again, as is an
        // answer without the run's points.
        let Ok(answer) = link
            .call(
                "sessions.usage.timeseries",
                Some(json!({"key": key})),
                deadline,
            )
            .await
        else {
            continue;
        };
        let sum = in_window(&answer, from_ms, to_ms.saturating_add(AFTER_END_MS))?;
        if sum.1 > 0 {
            return Some(sum.0);
        }
        last = Some(sum.0);
    }
    last
}

/// The cost of the points in `[from, to]` (micros) and how many there were; `None` for an
/// answer that is not a time series.
fn in_window(answer: &Value, from: i64, to: i64) -> Option<(Micros, usize)> {
    let points = answer.get("points")?.as_array()?;
    let mut total = 0.0_f64;
    let mut n = 0;
    for p in points {
        let (Some(ts), Some(cost)) = (
            p.get("timestamp").and_then(Value::as_i64),
            p.get("cost").and_then(Value::as_f64),
        ) else {
            continue;
        };
        if (from..=to).contains(&ts) && cost.is_finite() && cost >= 0.0 {
            total += cost;
            n += 1;
        }
    }
    (total <= MAX_RUN_USD).then(|| ((total * 1e6).round() as Micros, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_costs_its_points_in_its_time_as_2026_9_6_wrote_them() {
        let captured: Value = serde_json::from_str(include_str!(
            "../../../testdata/openclaw-captures/2026.9.6/sessions_usage_timeseries.json"
        ))
        .unwrap();
        let answer = &captured["answer"];
        let run = &captured["second_run"];
        let (from, to) = (
            run["startedAt"].as_i64().unwrap(),
            run["endedAt"].as_i64().unwrap(),
        );
        // The second run's one model call, not the session's two.
        assert_eq!(in_window(answer, from, to + AFTER_END_MS), Some((45, 1)));
        assert_eq!(in_window(answer, 0, i64::MAX), Some((90, 2)));
        assert_eq!(in_window(&json!({"points": "x"}), 0, 1), None);
        let absurd =
            json!({"points": [{"timestamp": 1, "cost": 1e12}, {"timestamp": 1, "cost": -5}]});
        assert_eq!(in_window(&absurd, 0, 2), None);
        assert!(answers_timeseries(Some("2026.9.6"), false));
        assert!(!answers_timeseries(Some("2026.3.31"), false));
        assert!(answers_timeseries(None, true));
    }
}
