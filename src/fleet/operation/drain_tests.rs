//! The drain's part of the rules: asking again until ready, the timeout and its policy,
//! the runs that hold it and aborting them, another client's suspension.

use serde_json::json;

use super::*;
use crate::fleet::operation::drain::AfterDrain;
use crate::fleet::operation::model::{BlockingRun, DrainParams, KindParams};
use crate::fleet::operation::test_builder as builder;

#[test]
fn draining_asks_again_until_ready_then_restarts_the_noted_process() {
    let mut p = at(draining(NOW));
    assert_eq!(
        next(RR, &p, &here("boot-a"), &params(1, true), false, NOW),
        Next::Prepare {
            request_id: "r".into()
        }
    );
    let busy = json!({"status": "draining", "suspensionId": "s", "activeCount": 2,
        "blockers": [{"kind": "embedded-run", "count": 1}, {"kind": "queue", "count": 1}]});
    p.after_prepare(AfterDrain::Restart, Ok(&busy), NOW);
    assert_eq!(
        p.detail.as_deref(),
        Some("waiting for 2 active: embedded-run ×1, queue ×1")
    );
    assert!(matches!(p.step, Step::Draining { .. }));
    p.after_prepare(
        AfterDrain::Restart,
        Ok(&json!({"status": "ready", "suspensionId": "s"})),
        NOW,
    );
    assert_eq!(p.step, restarting());
    assert_eq!(
        next(RR, &p, &here("boot-a"), &params(1, true), false, NOW),
        Next::Restart {
            boot_id: "boot-a".into(),
            release: Some("s".into()),
            forced: false,
        },
        "the suspension is released first: a suspended 2026.9 gateway refuses the restart"
    );
}

#[test]
fn a_drain_alone_is_done_when_ready() {
    let mut p = at(draining(NOW));
    p.after_prepare(
        AfterDrain::Stop,
        Ok(&json!({"status": "ready", "suspensionId": "s"})),
        NOW,
    );
    assert_eq!(p.step, Step::Done);
}

#[test]
fn a_drain_past_its_timeout_fails_and_releases_its_suspension() {
    let mut p = at(draining(NOW));
    p.detail = Some("waiting for 1 active: embedded-run ×1".into());
    let late = NOW + 301_000;
    match next(RR, &p, &here("boot-a"), &params(1, true), false, late) {
        Next::Fail { reason, release } => {
            assert!(reason.contains("embedded-run"), "{reason}");
            assert_eq!(release.as_deref(), Some("s"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_drain_past_its_timeout_forces_the_restart_where_the_operation_says_so() {
    let forcing = OperationParams {
        of: KindParams::Drain(DrainParams {
            force_after_drain: true,
            ..builder::drain()
        }),
        ..params(1, true)
    };
    let mut p = at(draining(NOW));
    p.detail = Some("waiting for 1 active: embedded-run ×1".into());
    let late = NOW + 301_000;
    assert_eq!(
        next(RR, &p, &here("boot-a"), &forcing, false, NOW + 299_000),
        Next::Prepare {
            request_id: "r".into()
        },
        "before the timeout, the drain goes on"
    );
    assert_eq!(
        next(RR, &p, &here("boot-a"), &forcing, false, late),
        Next::Force {
            suspension_id: Some("s".into())
        }
    );
    p.forced(Some("s".into()), 300, late);
    assert_eq!(
        p.step,
        Step::Restarting {
            suspension_id: Some("s".into()),
            since_ms: late,
            forced: true
        }
    );
    assert_eq!(
        p.detail.as_deref(),
        Some(
            "still busy after the drain timeout (300s: waiting for 1 active: embedded-run ×1): restarting past the active work"
        )
    );
    assert_eq!(
        next(RR, &p, &here("boot-a"), &forcing, false, late),
        Next::Restart {
            boot_id: "boot-a".into(),
            release: Some("s".into()),
            forced: true
        }
    );
    // Another instance's gateway is forced by that instance; past the grace, failed by anyone.
    let mut elsewhere = here("boot-a");
    elsewhere.elsewhere = true;
    let q = at(draining(NOW));
    assert_eq!(next(RR, &q, &elsewhere, &forcing, false, late), Next::Wait);
    assert!(matches!(
        next(RR, &q, &elsewhere, &forcing, false, NOW + 361_000),
        Next::Fail { reason, .. } if reason.starts_with("still busy and not reachable to force a restart")
    ));
}

#[test]
fn a_conflicting_suspension_fails_the_gateway() {
    let mut p = at(draining(NOW));
    p.after_prepare(
        AfterDrain::Restart,
        Ok(&json!({"status": "conflict", "expiresAtMs": 1})),
        NOW,
    );
    assert_eq!(p.step, Step::Failed);
}

const DRAIN: OperationKind = OperationKind::Drain;

/// What a drain's gateway, linked here as the process noted, does next at `now`.
fn drain_next(p: &GatewayProgress, params: &OperationParams, now: i64) -> Next {
    next(DRAIN, p, &here("boot-a"), params, false, now)
}

fn aborting() -> OperationParams {
    OperationParams {
        of: KindParams::Drain(DrainParams {
            on_drain_timeout: DrainTimeoutPolicy::AbortRuns,
            ..builder::drain()
        }),
        ..params(1, true)
    }
}

#[test]
fn an_operator_asking_to_abort_the_runs_has_the_suspension_released_and_the_runs_aborted() {
    let mut p = at(draining(NOW));
    p.abort_runs_asked_at = Some(NOW + 5_000);
    assert_eq!(
        drain_next(&p, &params(1, true), NOW + 6_000),
        Next::AbortRuns {
            release: Some("s".into())
        }
    );
}

#[test]
fn runs_once_aborted_are_not_aborted_again_until_the_operator_asks_again() {
    let mut p = at(draining(NOW));
    p.abort_runs_asked_at = Some(NOW + 5_000);
    p.runs_aborted("r2".into(), &["agent:main:main".into()], &[], NOW + 6_000);
    assert_eq!(
        drain_next(&p, &params(1, true), NOW + 7_000),
        Next::Prepare {
            request_id: "r2".into()
        },
        "drained again under a new request"
    );
    p.abort_runs_asked_at = Some(NOW + 8_000);
    assert_eq!(
        drain_next(&p, &params(1, true), NOW + 9_000),
        Next::AbortRuns { release: None },
        "asked again: aborted again (no suspension held yet under the new request)"
    );
}

#[test]
fn aborted_runs_are_named_and_the_drain_keeps_its_start_under_a_new_request() {
    let mut p = at(draining(NOW));
    p.runs_aborted(
        "r2".into(),
        &["agent:main:main".into(), "agent:main:b".into()],
        &["agent:main:c: the gateway refused".into()],
        NOW + 6_000,
    );
    assert_eq!(
        p.step,
        Step::Draining {
            request_id: "r2".into(),
            suspension_id: None,
            since_ms: NOW
        }
    );
    assert_eq!(p.runs_aborted_at, Some(NOW + 6_000));
    let detail = p.detail.unwrap();
    assert!(
        detail.contains("aborted 2 run(s): agent:main:main, agent:main:b")
            && detail.contains("not aborted: agent:main:c: the gateway refused")
            && detail.ends_with("draining again"),
        "{detail}"
    );
}

#[test]
fn at_the_timeout_under_abort_runs_the_runs_are_aborted_once_then_it_waits_wait_ready_more() {
    let mut p = at(draining(NOW));
    let timeout = NOW + 300_000;
    assert_eq!(
        drain_next(&p, &aborting(), timeout - 1_000),
        Next::Prepare {
            request_id: "r".into()
        }
    );
    assert_eq!(
        drain_next(&p, &aborting(), timeout + 1_000),
        Next::AbortRuns {
            release: Some("s".into())
        }
    );
    p.runs_aborted("r2".into(), &["k".into()], &[], timeout + 1_000);
    assert_eq!(
        drain_next(&p, &aborting(), timeout + 60_000),
        Next::Prepare {
            request_id: "r2".into()
        },
        "within wait_ready of the abort, the drain goes on"
    );
    match drain_next(&p, &aborting(), timeout + 62_000) {
        Next::Fail { reason, .. } => {
            assert!(
                reason.contains("still busy 60s after its runs were aborted"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn at_the_timeout_under_release_the_drain_gives_up_and_releases_its_suspension() {
    let p = at(draining(NOW));
    match drain_next(&p, &params(1, true), NOW + 301_000) {
        Next::Fail { reason, release } => {
            assert!(
                reason.contains("after the drain timeout (300s)"),
                "{reason}"
            );
            assert_eq!(release.as_deref(), Some("s"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn runs_on_a_gateway_another_instance_links_are_left_to_that_instance() {
    let mut p = at(draining(NOW));
    p.abort_runs_asked_at = Some(NOW + 5_000);
    let elsewhere = Facts {
        elsewhere: true,
        ..here("boot-a")
    };
    assert_eq!(
        next(DRAIN, &p, &elsewhere, &params(1, true), false, NOW + 6_000),
        Next::Wait
    );
}

#[test]
fn a_drained_gateway_names_no_blocking_run() {
    let mut p = at(draining(NOW));
    p.blocked_by(vec![BlockingRun {
        session_key: "agent:main:main".into(),
        run_id: None,
        spawn_id: None,
    }]);
    p.after_prepare(
        AfterDrain::Stop,
        Ok(&json!({"status": "ready", "suspensionId": "s"})),
        NOW + 1_000,
    );
    assert_eq!(p.step, Step::Done);
    assert!(p.blocking_runs.is_empty());
}

#[test]
fn a_gateway_over_names_no_blocking_run_whatever_ended_it() {
    let run = BlockingRun {
        session_key: "agent:main:main".into(),
        run_id: None,
        spawn_id: None,
    };
    let mut skipped = at(draining(NOW));
    skipped.blocked_by(vec![run.clone()]);
    skipped.skip("cancelled", NOW);
    let mut failed = at(draining(NOW));
    failed.blocked_by(vec![run]);
    failed.fail("still busy", NOW);
    assert!(skipped.blocking_runs.is_empty() && failed.blocking_runs.is_empty());
}
