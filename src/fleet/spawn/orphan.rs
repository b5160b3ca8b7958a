//! When a `running` spawn is over although nobody saw it end: a run is followed by whichever
//! instance links its gateway, and a link that goes away records nothing (the run goes on at
//! the gateway). That leaves two ways for a spawn to stay `running` forever, each decided here
//! (pure): its gateway was deleted (no instance will ever link it again), or its run's deadline
//! has long passed with no instance able to follow it (the gateway never came back). Either is
//! recorded as over, with its outcome unknown; a tracker that does see the end first wins (the
//! record is written only while the spawn is still `running`).

use std::time::Duration;

use serde_json::Value;

use super::outcome::Finished;
use crate::db::spawns::SpawnRow;
use crate::domain::SpawnStatus;

/// How long past a run's own deadline (its timeout plus the wait for the gateway's answer) a
/// spawn nobody follows is given up on.
pub const GRACE: Duration = Duration::from_secs(60);

/// A run's timeout as its request gave it (`timeout_seconds`), else `default`.
fn timeout_of(row: &SpawnRow, default: Duration) -> Duration {
    serde_json::from_str::<Value>(&row.request)
        .ok()
        .and_then(|r| r.get("timeout_seconds").and_then(Value::as_u64))
        .map_or(default, Duration::from_secs)
}

/// Whether `row` (a `running` spawn nobody here follows) is over, and how it is recorded.
/// `registered`: its gateway still exists. `answer_wait`: how long a gateway may take to answer
/// beyond the run's own timeout; `default_timeout`: a run's timeout when its request named none.
pub fn orphaned(
    row: &SpawnRow,
    registered: bool,
    now: i64,
    answer_wait: Duration,
    default_timeout: Duration,
) -> Option<Finished> {
    if row.status != SpawnStatus::Running {
        return None;
    }
    if !registered {
        return Some(Finished::failed(
            "its gateway was deleted while the run was in progress; the run's outcome is unknown",
        ));
    }
    let deadline = timeout_of(row, default_timeout) + answer_wait + GRACE;
    let age = u64::try_from(now.saturating_sub(row.created_at)).unwrap_or(0);
    (age > deadline.as_secs()).then(|| Finished {
        status: SpawnStatus::Timeout,
        result: None,
        error: Some(format!(
            "no instance could follow the run to its end within {} s (its gateway did not come back); the run's outcome is unknown",
            deadline.as_secs()
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_supervisor_actors::model::GatewayId;

    fn row(request: &str, created_at: i64) -> SpawnRow {
        SpawnRow {
            id: "s".into(),
            gateway_id: Some(GatewayId(1)),
            agent: Some("main".into()),
            method: "agent".into(),
            request: request.into(),
            idempotency_key: None,
            run_id: Some("r".into()),
            session_key: None,
            status: SpawnStatus::Running,
            result: None,
            error: None,
            created_at,
            updated_at: created_at,
            finished_at: None,
        }
    }

    const WAIT: Duration = Duration::from_secs(10);
    const DEFAULT: Duration = Duration::from_secs(300);

    #[test]
    fn a_run_whose_gateway_was_deleted_is_over_at_once() {
        let end = orphaned(&row("{}", 1_000), false, 1_001, WAIT, DEFAULT).unwrap();
        assert_eq!(end.status, SpawnStatus::Error);
        assert!(end.error.unwrap().contains("deleted"));
    }

    #[test]
    fn a_run_is_given_up_only_past_its_own_timeout_the_answer_wait_and_the_grace() {
        let r = row(r#"{"timeout_seconds": 30}"#, 1_000);
        // 30 + 10 + 60 = 100 s.
        assert!(orphaned(&r, true, 1_100, WAIT, DEFAULT).is_none());
        let end = orphaned(&r, true, 1_101, WAIT, DEFAULT).unwrap();
        assert_eq!(end.status, SpawnStatus::Timeout);
        assert!(end.error.unwrap().contains("within 100 s"));
    }

    #[test]
    fn without_a_timeout_in_its_request_a_run_gets_the_default() {
        let r = row("{}", 0);
        assert!(orphaned(&r, true, 370, WAIT, DEFAULT).is_none());
        assert!(orphaned(&r, true, 371, WAIT, DEFAULT).is_some());
    }

    #[test]
    fn only_a_running_spawn_can_be_orphaned() {
        let mut r = row("{}", 0);
        r.status = SpawnStatus::Ok;
        assert!(orphaned(&r, false, 10_000, WAIT, DEFAULT).is_none());
    }
}
