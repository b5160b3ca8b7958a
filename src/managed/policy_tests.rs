use std::time::Duration;

use super::*;

fn accepted() -> Handoff {
    Handoff::Accepted {
        intent_id: "6dc7c860".into(),
    }
}

const MIN: i64 = 60_000;

#[test]
fn a_clean_exit_with_an_accepted_handoff_restarts_at_once_and_is_not_a_crash() {
    let mut h = CrashHistory::default();
    let d = after_exit(
        &CrashPolicy::default(),
        &mut h,
        Exit::Code(0),
        Some(&accepted()),
        0,
    );
    assert_eq!(d, AfterExit::RestartNow);
    assert_eq!(h, CrashHistory::default());
}

#[test]
fn a_clean_exit_without_a_handoff_stays_down() {
    for handoff in [
        None,
        Some(Handoff::NotAccepted {
            reason: "none: missing".into(),
        }),
        Some(Handoff::Failed {
            reason: "consume exited 1".into(),
        }),
    ] {
        let mut h = CrashHistory::default();
        let d = after_exit(
            &CrashPolicy::default(),
            &mut h,
            Exit::Code(0),
            handoff.as_ref(),
            0,
        );
        assert_eq!(d, AfterExit::GiveUp(GiveUp::Clean), "{handoff:?}");
    }
}

#[test]
fn only_a_clean_exit_asks_the_handoff() {
    assert!(asks_handoff(Exit::Code(0)));
    for exit in [
        Exit::Code(1),
        Exit::Code(78),
        Exit::Signal(9),
        Exit::Unknown,
    ] {
        assert!(!asks_handoff(exit), "{exit:?}");
    }
}

#[test]
fn a_handoff_cannot_turn_a_crash_into_a_requested_restart() {
    let mut h = CrashHistory::default();
    let d = after_exit(
        &CrashPolicy::default(),
        &mut h,
        Exit::Signal(9),
        Some(&accepted()),
        0,
    );
    assert!(matches!(d, AfterExit::RestartAfter { .. }), "{d:?}");
    assert_eq!(h.in_a_row, 1);
}

#[test]
fn exit_78_is_a_refusal_and_never_retried() {
    let mut h = CrashHistory::default();
    let d = after_exit(&CrashPolicy::default(), &mut h, Exit::Code(78), None, 0);
    assert_eq!(d, AfterExit::GiveUp(GiveUp::Refused));
    assert!(GiveUp::Refused.describe().contains("78"));
}

#[test]
fn a_kill_or_a_failing_exit_restarts_after_a_delay_that_doubles() {
    let policy = CrashPolicy::default();
    let mut h = CrashHistory::default();
    let delays: Vec<Duration> = [
        Exit::Signal(9),
        Exit::Code(1),
        Exit::Unknown,
        Exit::Signal(6),
    ]
    .into_iter()
    .enumerate()
    .map(
        |(i, exit)| match after_exit(&policy, &mut h, exit, None, i as i64 * MIN) {
            AfterExit::RestartAfter { delay, .. } => delay,
            other => panic!("{exit:?}: {other:?}"),
        },
    )
    .collect();
    assert_eq!(
        delays,
        [1, 2, 4, 8].map(Duration::from_secs),
        "one second, doubled per crash in a row"
    );
}

#[test]
fn the_delay_never_exceeds_the_maximum() {
    let policy = CrashPolicy {
        burst: 1000,
        ..CrashPolicy::default()
    };
    let mut h = CrashHistory::default();
    let mut last = AfterExit::RestartNow;
    for i in 0..40 {
        last = after_exit(&policy, &mut h, Exit::Code(1), None, i * MIN);
    }
    assert_eq!(
        last,
        AfterExit::RestartAfter {
            delay: policy.max_delay,
            crashes_in_a_row: 40
        }
    );
}

#[test]
fn five_crashes_within_the_interval_give_up() {
    let policy = CrashPolicy::default();
    let mut h = CrashHistory::default();
    for i in 0..4 {
        let d = after_exit(&policy, &mut h, Exit::Signal(9), None, i * MIN);
        assert!(
            matches!(d, AfterExit::RestartAfter { .. }),
            "crash {i}: {d:?}"
        );
    }
    let d = after_exit(&policy, &mut h, Exit::Signal(9), None, 4 * MIN);
    assert_eq!(
        d,
        AfterExit::GiveUp(GiveUp::StartLimit {
            crashes: 5,
            within: Duration::from_secs(600)
        })
    );
    assert_eq!(
        GiveUp::StartLimit {
            crashes: 5,
            within: Duration::from_secs(600)
        }
        .describe(),
        "gave up after 5 crashes within 10m"
    );
}

#[test]
fn crashes_older_than_the_interval_do_not_count_toward_the_limit() {
    let policy = CrashPolicy::default();
    let mut h = CrashHistory::default();
    // One crash every three minutes: never five within ten minutes.
    for i in 0..20 {
        let d = after_exit(&policy, &mut h, Exit::Code(1), None, i * 3 * MIN);
        assert!(
            matches!(d, AfterExit::RestartAfter { .. }),
            "crash {i}: {d:?}"
        );
    }
    assert!(h.recent_ms.len() <= 4);
}

#[test]
fn a_start_that_stayed_up_resets_the_delay_but_not_the_limit() {
    let policy = CrashPolicy::default();
    let mut h = CrashHistory::default();
    after_exit(&policy, &mut h, Exit::Code(1), None, 0);
    after_exit(&policy, &mut h, Exit::Code(1), None, MIN);
    h.stayed_up();
    let d = after_exit(&policy, &mut h, Exit::Code(1), None, 2 * MIN);
    assert_eq!(
        d,
        AfterExit::RestartAfter {
            delay: Duration::from_secs(1),
            crashes_in_a_row: 1
        }
    );
    assert_eq!(h.recent_ms.len(), 3);
}

#[test]
fn sigterm_and_its_kin_are_clean_like_systemd_says() {
    for s in [1, 2, 13, 15] {
        let mut h = CrashHistory::default();
        let d = after_exit(&CrashPolicy::default(), &mut h, Exit::Signal(s), None, 0);
        assert_eq!(d, AfterExit::GiveUp(GiveUp::Clean), "signal {s}");
    }
}
