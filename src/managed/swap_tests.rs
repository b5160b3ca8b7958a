use super::*;

const GATES: Gates = Gates {
    min_healthy_ms: 30_000,
    healthy_deadline_ms: 300_000,
};

/// A swap driven up to the target's start at `t`.
fn started_at(t: i64) -> Swap {
    let mut s = Swap::default();
    assert_eq!(s.begin(), Action::Install);
    assert_eq!(
        s.next(Input::Installed(Ok(())), 0, GATES),
        Action::Preflight
    );
    assert_eq!(s.next(Input::Preflighted(Ok(())), 0, GATES), Action::Stop);
    assert_eq!(s.next(Input::Stopped, 0, GATES), Action::Snapshot);
    assert_eq!(
        s.next(Input::Snapshotted(Ok(())), t, GATES),
        Action::StartTarget
    );
    s
}

#[test]
fn a_target_healthy_for_its_minimum_time_completes_the_swap() {
    let mut s = started_at(1_000);
    assert_eq!(s.next(Input::TargetStarted, 10_000, GATES), Action::Wait);
    assert_eq!(s.step, Step::Settling { since_ms: 10_000 });
    assert_eq!(s.next(Input::Tick, 39_999, GATES), Action::Wait);
    assert!(!s.over());
    assert_eq!(s.next(Input::Tick, 40_000, GATES), Action::Wait);
    assert_eq!(s.step, Step::Done);
    assert!(s.over());
}

#[test]
fn an_install_or_preflight_refusal_fails_without_stopping_anything() {
    let mut s = Swap::default();
    assert_eq!(
        s.next(Input::Installed(Err("E404".into())), 0, GATES),
        Action::Wait
    );
    assert_eq!(
        s.step,
        Step::Failed {
            why: "the target could not be installed: E404".into()
        }
    );
    let mut s = Swap::default();
    s.next(Input::Installed(Ok(())), 0, GATES);
    assert_eq!(
        s.next(Input::Preflighted(Err("schema 19".into())), 0, GATES),
        Action::Wait,
        "no Stop: the gateway keeps serving"
    );
    assert!(matches!(s.step, Step::Failed { .. }));
}

#[test]
fn a_target_refusing_with_78_is_rolled_back_onto_the_snapshot() {
    let mut s = started_at(0);
    assert_eq!(
        s.next(Input::TargetExited(Exit::Code(78)), 5_000, GATES),
        Action::RollBack
    );
    assert_eq!(
        s.next(Input::PreviousRestored(Ok(())), 9_000, GATES),
        Action::Wait
    );
    assert_eq!(
        s.step,
        Step::RolledBack {
            why: "the target refused to start (exit 78)".into()
        }
    );
    assert!(s.over());
}

#[test]
fn a_target_that_crashes_while_settling_is_rolled_back() {
    let mut s = started_at(0);
    s.next(Input::TargetStarted, 10_000, GATES);
    assert_eq!(
        s.next(Input::TargetExited(Exit::Signal(9)), 20_000, GATES),
        Action::RollBack
    );
    assert_eq!(
        s.step,
        Step::RollingBack {
            why: "the target ended (killed by signal 9)".into()
        }
    );
}

#[test]
fn a_target_that_never_starts_is_rolled_back_at_its_deadline() {
    let mut s = started_at(0);
    assert_eq!(s.next(Input::Tick, 300_000, GATES), Action::Wait);
    assert_eq!(s.next(Input::Tick, 300_001, GATES), Action::RollBack);
}

#[test]
fn a_target_started_too_late_to_settle_in_time_is_rolled_back() {
    let mut s = started_at(0);
    s.next(Input::TargetStarted, 290_000, GATES);
    assert_eq!(s.next(Input::Tick, 300_001, GATES), Action::RollBack);
}

#[test]
fn a_failed_snapshot_starts_the_previous_release_again() {
    let mut s = Swap::default();
    s.next(Input::Installed(Ok(())), 0, GATES);
    s.next(Input::Preflighted(Ok(())), 0, GATES);
    s.next(Input::Stopped, 0, GATES);
    assert_eq!(
        s.next(Input::Snapshotted(Err("disk full".into())), 0, GATES),
        Action::RollBack
    );
}

#[test]
fn a_rollback_that_cannot_finish_says_both_reasons() {
    let mut s = started_at(0);
    s.next(Input::TargetExited(Exit::Code(78)), 1, GATES);
    s.next(
        Input::PreviousRestored(Err("exit 78 again".into())),
        2,
        GATES,
    );
    assert_eq!(
        s.step,
        Step::Failed {
            why: "the target refused to start (exit 78); and the previous release could not be put back: exit 78 again".into()
        }
    );
}

#[test]
fn late_or_out_of_order_reports_change_nothing() {
    let mut s = started_at(0);
    let before = s.clone();
    for input in [
        Input::Installed(Ok(())),
        Input::Stopped,
        Input::PreviousRestored(Ok(())),
        Input::Snapshotted(Ok(())),
    ] {
        assert_eq!(s.next(input, 1, GATES), Action::Wait);
        assert_eq!(s, before);
    }
    let mut done = started_at(0);
    done.next(Input::TargetStarted, 0, GATES);
    done.next(Input::Tick, 30_000, GATES);
    assert_eq!(done.step, Step::Done);
    assert_eq!(
        done.next(Input::TargetExited(Exit::Code(1)), 40_000, GATES),
        Action::Wait
    );
    assert_eq!(done.step, Step::Done, "a later crash is the crash policy's");
}
