use serde_json::json;

use super::*;
use crate::fleet::operation::model::{KindParams, OperationState as S};
use crate::fleet_config::rollout::answers::*;
use gateway_supervisor_actors::model::GatewayId;
use gateway_supervisor_actors::protocol::frames::ErrorShape;

use crate::fleet::operation::test_builder::{self as builder, NOW, here};

fn rp() -> RolloutParams {
    RolloutParams {
        min_healthy_time_s: 30,
        healthy_deadline_s: 300,
        auto_revert: true,
        auto_promote: true,
        promoted: false,
        max_attempts: 3,
    }
}

fn params(max_parallel: u32, canary: u32) -> OperationParams {
    OperationParams {
        max_unavailable: max_parallel,
        wait_ready_s: 300,
        canary,
        of: KindParams::Rollout(rp()),
        ..builder::params()
    }
}

/// Started at `NOW`.
fn at(step: Step) -> GatewayProgress {
    GatewayProgress {
        started_at: Some(NOW),
        ..builder::at(step)
    }
}

fn writing() -> Step {
    Step::Writing {
        attempts: 0,
        not_before_ms: NOW,
    }
}

/// Being put back since `NOW`.
fn reverting() -> Step {
    Step::Reverting {
        attempts: 0,
        not_before_ms: NOW,
        since_ms: NOW,
    }
}

fn fleet(n: i64, canary: usize) -> Vec<GatewayProgress> {
    (1..=n)
        .map(|id| GatewayProgress {
            canary: usize::try_from(id).unwrap() <= canary,
            ..GatewayProgress::pending(GatewayId(id))
        })
        .collect()
}

fn steps(progress: &[GatewayProgress]) -> Vec<&'static str> {
    progress.iter().map(|p| p.step.name()).collect()
}

#[test]
fn a_started_gateway_notes_its_process_and_goes_on_to_the_write() {
    let p = at(Step::Admitted);
    let n = next(&p, &here("boot-a"), &rp(), S::Running, NOW);
    assert_eq!(
        n,
        Next::Begin {
            boot_id: Some("boot-a".into())
        }
    );
    let mut p = p;
    apply(&mut p, &n, NOW);
    assert_eq!(p.step, writing());
}

#[test]
fn a_release_without_config_patch_fails_naming_it() {
    let facts = Facts {
        offers_config: false,
        version: Some("2026.8.1".into()),
        ..here("boot-a")
    };
    let Next::Fail { reason } = next(&at(Step::Admitted), &facts, &rp(), S::Running, NOW) else {
        panic!("not failed");
    };
    assert!(reason.contains("2026.8.1"), "{reason}");
}

#[test]
fn a_gateway_not_connected_is_waited_for_until_its_deadline_then_failed_unwritten() {
    let down = Facts {
        connected: false,
        ..here("boot-a")
    };
    assert_eq!(
        next(&at(writing()), &down, &rp(), S::Running, NOW + 1_000),
        Next::Wait
    );
    let late = next(&at(writing()), &down, &rp(), S::Running, NOW + 301_000);
    assert!(
        matches!(late, Next::Fail { reason } if reason == "not written within 300s of its start: not connected")
    );
}

#[test]
fn another_instance_s_gateway_is_left_to_it() {
    let elsewhere = Facts {
        elsewhere: true,
        ..here("boot-a")
    };
    assert_eq!(
        next(&at(writing()), &elsewhere, &rp(), S::Running, NOW),
        Next::Wait
    );
}

#[test]
fn a_hot_write_settles_and_a_restarting_one_waits_for_another_process() {
    let mut p = at(writing());
    let hot = json!({"ok": true, "changedPaths": ["gateway.http.endpoints"],
                     "sentinel": {"payload": {"stats": {"requiresRestart": false}}}});
    after_write(&mut p, Ok(&hot), &rp(), NOW);
    assert_eq!(
        p.step,
        Step::Settling {
            healthy_since_ms: Some(NOW)
        }
    );
    assert!(p.written);
    assert_eq!(p.changed_paths, ["gateway.http.endpoints"]);

    let mut p = at(writing());
    let restart = json!({"ok": true, "changedPaths": ["gateway.controlUi.basePath"],
                         "sentinel": {"payload": {"stats": {"requiresRestart": true}}}});
    after_write(&mut p, Ok(&restart), &rp(), NOW);
    assert_eq!(p.step, Step::Applying { since_ms: NOW });
    assert_eq!(
        next(&p, &here("boot-a"), &rp(), S::Running, NOW + 500),
        Next::Wait
    );
    let back = next(&p, &here("boot-b"), &rp(), S::Running, NOW + 2_000);
    assert_eq!(
        back,
        Next::Back {
            boot_id: Some("boot-b".into())
        }
    );
    apply(&mut p, &back, NOW + 2_000);
    assert_eq!(
        p.step,
        Step::Settling {
            healthy_since_ms: Some(NOW + 2_000)
        }
    );
    assert_eq!(p.boot_id_after.as_deref(), Some("boot-b"));
    // The new process is the one to stay healthy.
    assert_eq!(
        next(&p, &here("boot-b"), &rp(), S::Running, NOW + 3_000),
        Next::Wait
    );
}

#[test]
fn the_documented_restart_field_also_says_it_restarts() {
    assert!(restarts(
        &json!({"restart": {"delayMs": 0, "coalesced": false}})
    ));
    assert!(!restarts(&json!({"restart": null})));
}

#[test]
fn an_identical_patch_is_done_without_being_written() {
    let mut p = at(writing());
    after_write(
        &mut p,
        Ok(&json!({"ok": true, "noop": true, "changedPaths": []})),
        &rp(),
        NOW,
    );
    assert_eq!(p.step, Step::Done);
    assert!(!p.written, "nothing to put back");
}

#[test]
fn a_lost_race_is_read_again_until_the_attempts_run_out() {
    let mut p = at(writing());
    after_write(&mut p, Err(Refusal::Stale), &rp(), NOW);
    assert_eq!(
        p.step,
        Step::Writing {
            attempts: 1,
            not_before_ms: NOW
        }
    );
    assert_eq!(
        next(&p, &here("boot-a"), &rp(), S::Running, NOW),
        Next::Write
    );
    after_write(&mut p, Err(Refusal::Stale), &rp(), NOW);
    after_write(&mut p, Err(Refusal::Stale), &rp(), NOW);
    assert_eq!(p.step, Step::Failed);
    assert!(
        p.detail.as_deref().unwrap().contains("3 times"),
        "{:?}",
        p.detail
    );
    assert!(!p.written);
}

#[test]
fn the_gateway_s_write_limit_holds_the_write_back_as_long_as_it_says() {
    let mut p = at(writing());
    after_write(
        &mut p,
        Err(Refusal::Limited {
            retry_after_ms: 47_546,
        }),
        &rp(),
        NOW,
    );
    assert_eq!(
        p.step,
        Step::Writing {
            attempts: 0,
            not_before_ms: NOW + 47_546
        }
    );
    assert_eq!(
        next(&p, &here("boot-a"), &rp(), S::Running, NOW + 47_000),
        Next::Wait
    );
    assert_eq!(
        next(&p, &here("boot-a"), &rp(), S::Running, NOW + 47_546),
        Next::Write
    );
}

#[test]
fn a_write_lost_on_the_way_counts_as_written_and_is_tried_again() {
    let mut p = at(writing());
    after_write(&mut p, Err(Refusal::Lost("timed out".into())), &rp(), NOW);
    assert!(
        p.written,
        "it may have been applied: a revert must put it back"
    );
    assert_eq!(p.step, writing());
    // Cancelled now, it is not skipped as unwritten.
    assert_eq!(
        next(&p, &here("boot-a"), &rp(), S::Cancelling, NOW),
        Next::Write
    );
}

#[test]
fn the_gateway_s_refusal_fails_it_with_its_words() {
    let shape = ErrorShape {
        code: "INVALID_REQUEST".into(),
        message: "config.patch would remove entries from array path(s): a".into(),
        details: None,
        retryable: None,
        retry_after_ms: None,
    };
    let mut p = at(writing());
    after_write(&mut p, Err(Refusal::of(&shape)), &rp(), NOW);
    assert_eq!(p.step, Step::Failed);
    assert!(p.detail.unwrap().contains("would remove entries"));
}

#[test]
fn captured_refusals_are_told_apart() {
    let stale = ErrorShape {
        code: "INVALID_REQUEST".into(),
        message: "config changed since last load; re-run config.get and retry".into(),
        details: None,
        retryable: None,
        retry_after_ms: None,
    };
    assert_eq!(Refusal::of(&stale), Refusal::Stale);
    let limited = ErrorShape {
        code: "UNAVAILABLE".into(),
        message: "rate limit exceeded for config.patch; retry after 48s".into(),
        details: Some(json!({"limit": "30 per 60s", "method": "config.patch"})),
        retryable: Some(true),
        retry_after_ms: Some(47_546),
    };
    assert_eq!(
        Refusal::of(&limited),
        Refusal::Limited {
            retry_after_ms: 47_546
        }
    );
}

#[test]
fn a_settling_gateway_is_read_back_after_min_healthy_time_and_its_clock_restarts_when_it_drops() {
    let p = at(Step::Settling {
        healthy_since_ms: Some(NOW),
    });
    assert_eq!(
        next(&p, &here("boot-a"), &rp(), S::Running, NOW + 29_999),
        Next::Wait
    );
    assert_eq!(
        next(&p, &here("boot-a"), &rp(), S::Running, NOW + 30_000),
        Next::Check
    );
    let down = Facts {
        connected: false,
        ..here("boot-a")
    };
    let dropped = next(&p, &down, &rp(), S::Running, NOW + 10_000);
    assert!(matches!(dropped, Next::Health { since_ms: None, .. }));
    let mut p = p;
    apply(&mut p, &dropped, NOW + 10_000);
    let back = next(&p, &here("boot-a"), &rp(), S::Running, NOW + 20_000);
    assert_eq!(
        back,
        Next::Health {
            since_ms: Some(NOW + 20_000),
            why: None
        }
    );
}

#[test]
fn a_gateway_not_healthy_by_its_deadline_fails() {
    let p = at(Step::Settling {
        healthy_since_ms: None,
    });
    let down = Facts {
        connected: false,
        ..here("boot-a")
    };
    let n = next(&p, &down, &rp(), S::Running, NOW + 300_001);
    assert!(matches!(n, Next::Fail { reason } if reason.contains("not connected")));
}

#[test]
fn a_gateway_that_restarts_while_it_settles_fails_at_once() {
    let p = at(Step::Settling {
        healthy_since_ms: Some(NOW),
    });
    let n = next(&p, &here("boot-z"), &rp(), S::Running, NOW + 1_000);
    assert!(matches!(n, Next::Fail { reason } if reason.contains("restarted")));
}

#[test]
fn the_read_back_decides_done_or_failed() {
    let mut p = at(Step::Settling {
        healthy_since_ms: Some(NOW),
    });
    after_check(&mut p, Ok(()), &rp(), NOW);
    assert_eq!(p.step, Step::Done);
    let mut p = at(Step::Settling {
        healthy_since_ms: Some(NOW),
    });
    after_check(&mut p, Err("a.b is false, not true".into()), &rp(), NOW);
    assert_eq!(p.step, Step::Failed);
    assert_eq!(
        p.detail.as_deref(),
        Some("read back: a.b is false, not true")
    );
}

#[test]
fn canaries_go_first_then_max_parallel_at_a_time() {
    let mut progress = fleet(5, 1);
    let p = params(2, 1);
    assert_eq!(
        plan(&mut progress, &p, &rp(), S::Running, NOW),
        (S::Running, None)
    );
    assert_eq!(
        steps(&progress),
        ["admitted", "pending", "pending", "pending", "pending"]
    );
    progress[0].step = Step::Done;
    plan(&mut progress, &p, &rp(), S::Running, NOW);
    assert_eq!(
        steps(&progress),
        ["done", "admitted", "admitted", "pending", "pending"]
    );
    plan(&mut progress, &p, &rp(), S::Running, NOW);
    assert_eq!(
        steps(&progress)[3],
        "pending",
        "no more than max_parallel in flight"
    );
}

#[test]
fn without_auto_promote_the_rest_wait_for_an_operator_s_promote() {
    let mut progress = fleet(3, 1);
    let p = params(5, 1);
    let manual = RolloutParams {
        auto_promote: false,
        ..rp()
    };
    plan(&mut progress, &p, &manual, S::Running, NOW);
    progress[0].step = Step::Done;
    let (state, detail) = plan(&mut progress, &p, &manual, S::Running, NOW);
    assert_eq!(state, S::AwaitingPromotion);
    assert!(detail.unwrap().contains("promote"));
    assert_eq!(steps(&progress), ["done", "pending", "pending"]);
    let promoted = RolloutParams {
        promoted: true,
        ..manual
    };
    assert_eq!(
        plan(&mut progress, &p, &promoted, S::Running, NOW).0,
        S::Running
    );
    assert_eq!(steps(&progress), ["done", "admitted", "admitted"]);
}

#[test]
fn a_paused_rollout_starts_no_gateway_and_lets_the_started_go_on() {
    let mut progress = fleet(3, 0);
    progress[0].step = Step::Settling {
        healthy_since_ms: Some(NOW),
    };
    let (state, _) = plan(&mut progress, &params(3, 0), &rp(), S::Paused, NOW);
    assert_eq!(state, S::Paused);
    assert_eq!(steps(&progress), ["settling", "pending", "pending"]);
}

#[test]
fn a_write_that_will_restart_the_gateway_is_known_before_it_is_sent() {
    let restarts = |v: serde_json::Value| will_restart(v.as_object().unwrap());
    assert!(restarts(
        json!({"gateway": {"controlUi": {"basePath": "/ui"}}})
    ));
    assert!(restarts(json!({"gateway": {"port": 19000}})));
    assert!(restarts(
        json!({"secrets": {"egressProxy": {"url": "http://p"}}})
    ));
    assert!(!restarts(
        json!({"gateway": {"http": {"endpoints": {"chatCompletions": {"enabled": true}}}}})
    ));
    assert!(!restarts(
        json!({"gateway": {"controlUi": {"enabled": false}}})
    ));
    assert!(!restarts(
        json!({"agents": {"defaults": {"maxConcurrent": 2}}})
    ));
}

#[path = "revert_tests.rs"]
mod revert;
