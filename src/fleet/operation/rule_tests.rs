use serde_json::json;

use super::*;
use crate::fleet::operation::kinds::next;
use crate::fleet::operation::model::DrainTimeoutPolicy;

use crate::fleet::operation::test_builder::{NOW, at, here};

fn params(max_unavailable: u32, abort_on_failure: bool) -> OperationParams {
    OperationParams {
        max_unavailable,
        abort_on_failure,
        ..crate::fleet::operation::test_builder::params()
    }
}

fn draining(since_ms: i64) -> Step {
    Step::Draining {
        request_id: "r".into(),
        suspension_id: Some("s".into()),
        since_ms,
    }
}

fn restarting() -> Step {
    Step::Restarting {
        suspension_id: Some("s".into()),
        since_ms: NOW,
        forced: false,
    }
}

const RR: OperationKind = OperationKind::RollingRestart;

#[test]
fn gateways_are_admitted_in_order_up_to_max_unavailable() {
    let mut p: Vec<_> = (1..=5)
        .map(GatewayId)
        .map(GatewayProgress::pending)
        .collect();
    let (admitted, verdict) = plan(&mut p, &params(2, true), false, NOW);
    assert_eq!(admitted, vec![GatewayId(1), GatewayId(2)]);
    assert_eq!(verdict, None);
    let (admitted, _) = plan(&mut p, &params(2, true), false, NOW);
    assert!(admitted.is_empty(), "two in flight already");
    p[0].step = Step::Done;
    assert_eq!(
        plan(&mut p, &params(2, true), false, NOW).0,
        vec![GatewayId(3)]
    );
}

#[test]
fn a_failure_with_abort_on_failure_leaves_the_rest_untouched() {
    let mut p: Vec<_> = (1..=5)
        .map(GatewayId)
        .map(GatewayProgress::pending)
        .collect();
    plan(&mut p, &params(1, true), false, NOW);
    p[0].step = Step::Done;
    plan(&mut p, &params(1, true), false, NOW);
    p[1].fail("did not come back", NOW);
    let (admitted, verdict) = plan(&mut p, &params(1, true), false, NOW);
    assert!(admitted.is_empty());
    assert_eq!(verdict, Some(OperationState::Failed));
    assert!(p[2..].iter().all(|g| g.step == Step::Skipped));
    assert_eq!(
        p[2].detail.as_deref(),
        Some("left untouched: gateway 2 failed")
    );
}

#[test]
fn without_abort_on_failure_the_others_go_on() {
    let mut p: Vec<_> = (1..=3)
        .map(GatewayId)
        .map(GatewayProgress::pending)
        .collect();
    plan(&mut p, &params(1, false), false, NOW);
    p[0].fail("x", NOW);
    assert_eq!(
        plan(&mut p, &params(1, false), false, NOW).0,
        vec![GatewayId(2)]
    );
    p[1].step = Step::Done;
    plan(&mut p, &params(1, false), false, NOW);
    p[2].step = Step::Done;
    assert_eq!(
        plan(&mut p, &params(1, false), false, NOW).1,
        Some(OperationState::Failed),
        "one failed: the operation failed, though the others were done"
    );
}

#[test]
fn every_gateway_done_is_success() {
    let mut ok: Vec<_> = vec![GatewayProgress::pending(GatewayId(1))];
    plan(&mut ok, &params(1, true), false, NOW);
    assert_eq!(ok[0].step, Step::Admitted);
    ok[0].step = Step::Done;
    assert_eq!(
        plan(&mut ok, &params(1, true), false, NOW).1,
        Some(OperationState::Succeeded)
    );
}

#[test]
fn admission_notes_the_process_or_refuses_what_cannot_be_verified() {
    let p = at(Step::Admitted);
    assert_eq!(
        next(RR, &p, &here("boot-a"), &params(1, true), false, NOW),
        Next::Admit {
            boot_id: Some("boot-a".into())
        }
    );
    let off = Facts {
        connected: false,
        ..here("boot-a")
    };
    assert!(matches!(
        next(RR, &p, &off, &params(1, true), false, NOW),
        Next::Fail { .. }
    ));
    let old = Facts {
        boot_id: None,
        version: Some("2026.2.25".into()),
        ..here("x")
    };
    match next(RR, &p, &old, &params(1, true), false, NOW) {
        Next::Fail { reason, .. } => assert!(reason.contains("2026.2.25"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // A drain needs no process identity.
    assert_eq!(
        next(OperationKind::Drain, &p, &old, &params(1, true), false, NOW),
        Next::Admit { boot_id: None }
    );
}

#[test]
fn another_instance_s_gateway_is_left_to_it() {
    let elsewhere = Facts {
        elsewhere: true,
        connected: false,
        ..here("boot-a")
    };
    for step in [Step::Admitted, draining(NOW), restarting()] {
        assert_eq!(
            next(RR, &at(step), &elsewhere, &params(1, true), false, NOW),
            Next::Wait
        );
    }
}

#[test]
fn a_gateway_back_as_another_process_is_checked_then_done() {
    let mut p = at(Step::Returning { since_ms: NOW });
    assert_eq!(
        next(RR, &p, &here("boot-a"), &params(1, true), false, NOW),
        Next::Wait,
        "the same process: not back yet"
    );
    assert_eq!(
        next(RR, &p, &here("boot-b"), &params(1, true), false, NOW),
        Next::CheckBack
    );
    p.back(Some("boot-b".into()), NOW);
    assert_eq!(p.step, Step::Done);
    assert_eq!(p.boot_id_after.as_deref(), Some("boot-b"));
}

#[test]
fn a_gateway_that_never_comes_back_fails_after_wait_ready() {
    let mut p = at(Step::Returning { since_ms: NOW });
    p.not_back("`/readyz` did not answer 2xx");
    let off = Facts {
        connected: false,
        ..here("boot-a")
    };
    assert_eq!(
        next(RR, &p, &off, &params(1, true), false, NOW + 59_000),
        Next::Wait
    );
    match next(RR, &p, &off, &params(1, true), false, NOW + 61_000) {
        Next::Fail { reason, .. } => {
            assert!(reason.contains("within 60s"), "{reason}");
            assert!(reason.contains("readyz"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_restart_already_done_by_someone_else_moves_on_to_waiting() {
    let p = at(restarting());
    assert!(matches!(
        next(RR, &p, &here("boot-b"), &params(1, true), false, NOW),
        Next::Advance(Step::Returning { .. })
    ));
    let mut p = at(restarting());
    p.after_restart(Err(None), NOW);
    assert!(matches!(p.step, Step::Returning { .. }));
    let mut refused = at(restarting());
    refused.after_restart(Ok(&json!({"ok": false})), NOW);
    assert_eq!(refused.step, Step::Failed);
}

#[test]
fn a_deleted_gateway_fails_its_step() {
    let gone = Facts::default();
    assert!(matches!(
        next(RR, &at(restarting()), &gone, &params(1, true), false, NOW),
        Next::Fail { .. }
    ));
    assert_eq!(
        next(RR, &at(Step::Pending), &gone, &params(1, true), false, NOW),
        Next::Wait,
        "not started: plan( false,) starts it"
    );
}

#[test]
fn a_restart_never_accepted_fails_after_wait_ready_and_releases_the_suspension() {
    let mut p = at(restarting());
    p.release_failed("the call timed out");
    match next(
        RR,
        &p,
        &here("boot-a"),
        &params(1, true),
        false,
        NOW + 61_000,
    ) {
        Next::Fail { reason, release } => {
            assert!(reason.contains("not accepted within 60s"), "{reason}");
            assert!(reason.contains("timed out"), "{reason}");
            assert_eq!(release.as_deref(), Some("s"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_update_hold_calls_update_hold_where_offered_and_skips_where_not() {
    const UH: OperationKind = OperationKind::UpdateHold;
    let p = at(Step::Admitted);
    assert_eq!(
        next(UH, &p, &here("boot-a"), &params(3, false), false, NOW),
        Next::Hold
    );
    let old = Facts {
        offers_hold: false,
        version: Some("2026.3.31".into()),
        ..here("boot-a")
    };
    match next(UH, &p, &old, &params(3, false), false, NOW) {
        Next::Skip { reason } => assert!(reason.contains("2026.3.31"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // Held, nothing to hold, or the call failed.
    let mut held = at(Step::Admitted);
    held.after_hold(Ok(&json!({"ok": true})), NOW);
    assert_eq!(
        (held.step, held.detail.as_deref()),
        (Step::Done, Some("update held"))
    );
    let mut none = at(Step::Admitted);
    none.after_hold(Ok(&json!({"ok": false})), NOW);
    assert_eq!(none.step, Step::Done);
    let mut failed = at(Step::Admitted);
    failed.after_hold(Err("timeout".into()), NOW);
    assert_eq!(failed.step, Step::Failed);
}

#[test]
fn a_cancel_stops_what_has_not_begun_releases_a_drain_and_sees_a_sent_restart_through() {
    let mut p = vec![
        at(Step::Returning { since_ms: NOW }),
        at(draining(NOW)),
        at(Step::Admitted),
        GatewayProgress::pending(GatewayId(4)),
    ];
    let (admitted, verdict) = plan(&mut p, &params(4, true), true, NOW);
    assert!(admitted.is_empty());
    assert_eq!(verdict, None, "two still in flight");
    assert_eq!(
        (p[2].step.clone(), p[3].step.clone()),
        (Step::Skipped, Step::Skipped)
    );
    assert!(p[3].detail.as_deref().unwrap().contains("cancelled"));
    // The drain is let go; the restart already sent goes on.
    assert_eq!(
        next(RR, &p[1], &here("boot-a"), &params(4, true), true, NOW),
        Next::Abandon {
            release: Some("s".into())
        }
    );
    assert_eq!(
        next(RR, &p[0], &here("boot-b"), &params(4, true), true, NOW),
        Next::CheckBack
    );
    // Over: cancelled, whatever each gateway's end.
    p[0].step = Step::Done;
    p[1].step = Step::Skipped;
    assert_eq!(
        plan(&mut p, &params(4, true), true, NOW).1,
        Some(OperationState::Cancelled)
    );
}

const UP: OperationKind = OperationKind::Upgrade;

fn canary_plan(canary: usize, n: i64) -> Vec<GatewayProgress> {
    (1..=n)
        .map(|g| GatewayProgress {
            canary: usize::try_from(g).unwrap() <= canary,
            ..GatewayProgress::pending(GatewayId(g))
        })
        .collect()
}

#[test]
fn an_upgrade_admits_only_its_canaries_until_they_are_over() {
    let params = params(3, true);
    let mut p = canary_plan(1, 4);
    assert_eq!(plan(&mut p, &params, false, NOW).0, vec![GatewayId(1)]);
    assert!(
        plan(&mut p, &params, false, NOW).0.is_empty(),
        "room for three, but the canary is not over"
    );
    p[0].step = Step::Baking { until_ms: NOW + 1 };
    assert!(
        plan(&mut p, &params, false, NOW).0.is_empty(),
        "baking is not over"
    );
    p[0].step = Step::Done;
    assert_eq!(
        plan(&mut p, &params, false, NOW).0,
        vec![GatewayId(2), GatewayId(3), GatewayId(4)]
    );
}

#[test]
fn a_failed_canary_stops_the_rest_even_without_abort_on_failure() {
    let params = params(1, false);
    let mut p = canary_plan(1, 3);
    plan(&mut p, &params, false, NOW);
    p[0].fail("the update was rolled back", NOW);
    let (admitted, verdict) = plan(&mut p, &params, false, NOW);
    assert!(admitted.is_empty());
    assert_eq!(verdict, Some(OperationState::Failed));
    assert_eq!(
        p[1].detail.as_deref(),
        Some("left untouched: canary gateway 1 failed")
    );
}

#[test]
fn canaries_all_skipped_prove_nothing_and_the_rest_are_left() {
    let params = params(1, true);
    let mut p = canary_plan(1, 2);
    plan(&mut p, &params, false, NOW);
    p[0].skip("OpenClaw 2026.3.31 does not offer update.run", NOW);
    let (admitted, verdict) = plan(&mut p, &params, false, NOW);
    assert!(admitted.is_empty());
    assert_eq!(verdict, Some(OperationState::Succeeded));
    assert_eq!(
        p[1].detail.as_deref(),
        Some("left untouched: no canary was upgraded, so nothing is proven")
    );
}

#[test]
fn an_upgrade_asks_the_noted_process_then_follows_its_run() {
    let params = params(1, true);
    let mut old = here("boot-a");
    old.offers_update = false;
    old.version = Some("2026.3.31".into());
    assert!(matches!(
        next(UP, &at(Step::Admitted), &old, &params, false, NOW),
        Next::Skip { reason } if reason.contains("2026.3.31 does not offer update.run")
    ));
    assert_eq!(
        next(
            UP,
            &at(Step::Admitted),
            &here("boot-a"),
            &params,
            false,
            NOW
        ),
        Next::AdmitUpdate {
            boot_id: Some("boot-a".into())
        }
    );
    let asked = at(Step::Updating {
        run_id: None,
        since_ms: NOW,
    });
    assert_eq!(
        next(UP, &asked, &here("boot-a"), &params, false, NOW),
        Next::RequestUpdate {
            boot_id: "boot-a".into()
        }
    );
    assert!(matches!(
        next(UP, &asked, &here("boot-b"), &params, false, NOW),
        Next::Fail { reason, .. } if reason.contains("restarted before the update was asked")
    ));
    let following = at(Step::Updating {
        run_id: Some("r-1".into()),
        since_ms: NOW,
    });
    assert_eq!(
        next(UP, &following, &here("boot-a"), &params, false, NOW),
        Next::FollowRun {
            run_id: "r-1".into(),
            another: false
        }
    );
    assert_eq!(
        next(UP, &following, &here("boot-b"), &params, false, NOW),
        Next::FollowRun {
            run_id: "r-1".into(),
            another: true
        }
    );
    let mut gone = here("boot-a");
    gone.connected = false;
    assert_eq!(
        next(UP, &following, &gone, &params, false, NOW),
        Next::Wait,
        "restarting: not connected for a while"
    );
    assert!(matches!(
        next(UP, &following, &gone, &params, false, NOW + 61_000),
        Next::Fail { reason, .. } if reason.starts_with("the update was not over within 60s")
    ));
}

#[test]
fn a_canary_that_restarts_or_drops_during_its_bake_fails_and_one_that_stays_is_checked() {
    let params = params(1, true);
    let baking = GatewayProgress {
        boot_id_after: Some("boot-b".into()),
        ..at(Step::Baking {
            until_ms: NOW + 10_000,
        })
    };
    assert_eq!(
        next(UP, &baking, &here("boot-b"), &params, false, NOW),
        Next::Wait
    );
    assert_eq!(
        next(UP, &baking, &here("boot-b"), &params, false, NOW + 10_000),
        Next::CheckBack
    );
    assert!(matches!(
        next(UP, &baking, &here("boot-c"), &params, false, NOW),
        Next::Fail { reason, .. } if reason == "the canary did not stay up through its bake: it restarted (another process answers)"
    ));
    let mut dropped = here("boot-b");
    dropped.connected = false;
    assert!(matches!(
        next(UP, &baking, &dropped, &params, false, NOW),
        Next::Fail { reason, .. } if reason.ends_with("it is not connected")
    ));
}

#[test]
fn a_cancel_drops_an_update_not_yet_asked_and_sees_an_asked_one_through() {
    let params = params(1, true);
    let asked = at(Step::Updating {
        run_id: None,
        since_ms: NOW,
    });
    assert_eq!(
        next(UP, &asked, &here("boot-a"), &params, true, NOW),
        Next::Abandon { release: None }
    );
    let following = at(Step::Updating {
        run_id: Some("r-1".into()),
        since_ms: NOW,
    });
    assert!(matches!(
        next(UP, &following, &here("boot-a"), &params, true, NOW),
        Next::FollowRun { .. }
    ));
}

#[path = "drain_tests.rs"]
mod drain;
