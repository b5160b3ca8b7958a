//! A rollout stopped: the first failure and the revert that follows, a revert's own ends
//! (put back, refused, out of time), and the operator's cancel in every state, reverting
//! included. The helpers are the parent module's.

use serde_json::json;

use super::*;

#[test]
fn the_first_failure_stops_the_rollout_and_puts_every_written_gateway_back() {
    let mut progress = fleet(5, 1);
    progress[0].step = Step::Done;
    progress[0].written = true;
    progress[1].step = Step::Failed;
    progress[1].written = true;
    progress[1].detail = Some("not healthy".into());
    progress[2].step = writing();
    progress[3].step = Step::Settling {
        healthy_since_ms: Some(NOW),
    };
    progress[3].written = true;
    let (state, detail) = plan(&mut progress, &params(3, 1), &rp(), S::Running, NOW);
    assert_eq!(state, S::Reverting);
    assert!(
        detail
            .unwrap()
            .starts_with("gateway 2 failed: not healthy; putting back 3")
    );
    assert_eq!(
        steps(&progress),
        ["reverting", "reverting", "skipped", "reverting", "skipped"]
    );
    // Put back, the rollout ends reverted.
    for p in progress.iter_mut().filter(|p| p.written) {
        finish(p, Step::Reverted, "put back", NOW);
    }
    assert_eq!(
        plan(&mut progress, &params(3, 1), &rp(), S::Reverting, NOW).0,
        S::Reverted
    );
}

#[test]
fn a_revert_that_fails_ends_the_rollout_failed_naming_the_gateway_not_put_back() {
    let mut progress = fleet(2, 0);
    for p in &mut progress {
        p.written = true;
    }
    progress[0].step = Step::Reverted;
    progress[1].step = Step::Failed;
    let (state, detail) = plan(&mut progress, &params(2, 0), &rp(), S::Reverting, NOW);
    assert_eq!(state, S::Failed);
    assert!(detail.unwrap().contains("gateway(s) 2"));
}

#[test]
fn without_auto_revert_a_failure_leaves_the_changed_gateways_and_ends_failed() {
    let mut progress = fleet(3, 0);
    progress[0].step = Step::Done;
    progress[0].written = true;
    progress[1].step = Step::Failed;
    let keep = RolloutParams {
        auto_revert: false,
        ..rp()
    };
    let (state, _) = plan(&mut progress, &params(1, 0), &keep, S::Running, NOW);
    assert_eq!(state, S::Failed);
    assert_eq!(steps(&progress), ["done", "failed", "skipped"]);
}

#[test]
fn a_cancel_skips_what_was_not_written_and_sees_the_written_through() {
    let mut progress = fleet(3, 0);
    progress[0].step = Step::Settling {
        healthy_since_ms: Some(NOW),
    };
    progress[0].written = true;
    progress[1].step = writing();
    let (state, _) = plan(&mut progress, &params(2, 0), &rp(), S::Cancelling, NOW);
    assert_eq!(state, S::Cancelling);
    assert_eq!(steps(&progress), ["settling", "writing", "skipped"]);
    assert!(matches!(
        next(&progress[1], &here("boot-a"), &rp(), S::Cancelling, NOW),
        Next::Skip { .. }
    ));
    assert_eq!(
        next(
            &progress[0],
            &here("boot-a"),
            &rp(),
            S::Cancelling,
            NOW + 30_000
        ),
        Next::Check
    );
}

#[test]
fn a_revert_is_tried_again_on_a_lost_race_and_says_which_secrets_it_could_not_put_back() {
    let mut p = at(Step::Reverting {
        attempts: 0,
        not_before_ms: NOW,
        since_ms: NOW,
    });
    p.written = true;
    after_revert(&mut p, Err(Refusal::Stale), &[], &rp(), NOW);
    assert!(matches!(p.step, Step::Reverting { attempts: 1, .. }));
    after_revert(
        &mut p,
        Ok(&json!({"ok": true})),
        &["gateway.auth.token".into()],
        &rp(),
        NOW,
    );
    assert_eq!(p.step, Step::Reverted);
    assert!(
        p.detail
            .unwrap()
            .contains("not put back (secrets the gateway never shows): gateway.auth.token")
    );
}

#[test]
fn a_gateway_to_put_back_that_stays_away_fails_its_revert_at_the_deadline() {
    let p = at(Step::Reverting {
        attempts: 0,
        not_before_ms: NOW,
        since_ms: NOW,
    });
    let down = Facts {
        connected: false,
        ..here("boot-a")
    };
    assert_eq!(
        next(&p, &down, &rp(), S::Reverting, NOW + 299_000),
        Next::Wait
    );
    assert!(matches!(
        next(&p, &down, &rp(), S::Reverting, NOW + 301_000),
        Next::Fail { .. }
    ));
    assert_eq!(
        next(&p, &here("boot-b"), &rp(), S::Reverting, NOW + 1_000),
        Next::Revert
    );
}

#[test]
fn a_revert_whose_calls_keep_failing_ends_at_the_deadline_though_the_link_looks_up() {
    // The link says connected, yet every `config.get` fails (a gateway stopped under a link
    // that has not noticed yet): the revert must still end by `healthy_deadline`.
    let mut p = at(reverting());
    p.written = true;
    p.detail = Some("config.get failed: the call timed out".into());
    let looks_up = here("boot-a");
    assert_eq!(
        next(&p, &looks_up, &rp(), S::Reverting, NOW + 299_000),
        Next::Revert
    );
    match next(&p, &looks_up, &rp(), S::Reverting, NOW + 301_000) {
        Next::Fail { reason } => assert!(
            reason.contains("could not be put back within 300s")
                && reason.contains("the call timed out"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_down_gateway_is_waited_for_at_most_healthy_deadline_to_be_put_back() {
    let short = RolloutParams {
        healthy_deadline_s: 20,
        ..rp()
    };
    let p = at(reverting());
    let down = Facts {
        connected: false,
        ..here("boot-a")
    };
    assert_eq!(
        next(&p, &down, &short, S::Reverting, NOW + 19_000),
        Next::Wait
    );
    assert!(matches!(
        next(&p, &down, &short, S::Reverting, NOW + 21_000),
        Next::Fail { .. }
    ));
}

#[test]
fn a_write_that_keeps_failing_on_a_connected_gateway_fails_at_the_deadline() {
    let mut p = at(writing());
    p.detail = Some("config.get failed: the call timed out".into());
    assert_eq!(
        next(&p, &here("boot-a"), &rp(), S::Running, NOW + 1_000),
        Next::Write
    );
    match next(&p, &here("boot-a"), &rp(), S::Running, NOW + 301_000) {
        Next::Fail { reason } => assert!(reason.starts_with("not written within 300s"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_cancel_while_reverting_stops_the_revert_and_names_what_was_not_put_back() {
    let mut progress = fleet(3, 0);
    for p in &mut progress {
        p.written = true;
    }
    progress[0].step = Step::Reverted;
    progress[1].step = reverting();
    progress[2].step = reverting();
    // Down or not, in a cluster's other instance or here: the cancel decides without it.
    let away = Facts {
        connected: false,
        elsewhere: true,
        ..here("boot-a")
    };
    for p in progress.iter_mut().skip(1) {
        let n = next(p, &away, &rp(), S::Cancelling, NOW + 1_000);
        assert!(
            matches!(&n, Next::Fail { reason } if reason.contains("cancelled")),
            "{n:?}"
        );
        apply(p, &n, NOW + 1_000);
    }
    let (state, detail) = plan(
        &mut progress,
        &params(3, 0),
        &rp(),
        S::Cancelling,
        NOW + 1_000,
    );
    assert_eq!(state, S::Cancelled);
    assert_eq!(
        detail.as_deref(),
        Some("cancelled; gateway(s) 2, 3 keep the rollout's values (not put back)")
    );
}

#[test]
fn every_live_state_but_cancelling_can_be_cancelled() {
    for s in S::ALL {
        let cancellable = S::CANCELLABLE.contains(&s.as_str());
        assert_eq!(
            cancellable,
            s.is_live() && s != S::Cancelling,
            "{}",
            s.as_str()
        );
    }
}
