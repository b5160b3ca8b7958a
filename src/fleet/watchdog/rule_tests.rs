//! A test per rule of the ladder.

use std::time::Duration;

use super::*;

const MIN: i64 = 60_000;

fn ladder() -> Ladder {
    Ladder {
        verify_after: Duration::from_secs(60),
        dry_run: false,
        abort: true,
        reset: true,
        restart: true,
        restart_drain_timeout: Duration::from_secs(120),
        offers_abort: true,
        offers_reset: true,
    }
}

fn seen(updated_at: i64, runs: &[&str]) -> Seen {
    Seen {
        active: !runs.is_empty(),
        fingerprint: Fingerprint {
            updated_at: Some(updated_at),
            total_tokens: 10,
            run_ids: runs.iter().map(|r| r.to_string()).collect(),
        },
        last_event_ms: None,
        in_tool_call: false,
        stall_after: Duration::from_secs(600),
        waiting_on_approval: None,
    }
}

/// Rounds of the same sighting at the given times; every decision in order.
fn rounds(
    mut w: Option<Watched>,
    s: &Seen,
    l: &Ladder,
    times: &[i64],
) -> (Option<Watched>, Vec<Decision>) {
    let mut all = Vec::new();
    for t in times {
        let (next, d) = step(w.as_ref(), Some(s), l, *t);
        w = next;
        all.extend(d);
    }
    (w, all)
}

#[test]
fn an_active_run_without_progress_for_stall_after_is_stalled_and_aborted() {
    let s = seen(1, &["r1"]);
    let (w, d) = rounds(None, &s, &ladder(), &[0, 9 * MIN, 10 * MIN]);
    assert_eq!(
        d,
        vec![
            Decision::Stalled {
                idle_ms: 10 * MIN,
                would: vec![]
            },
            Decision::Take(Remedy::Abort)
        ]
    );
    let w = w.unwrap();
    assert_eq!(w.stalled_runs, vec!["r1".to_string()]);
    assert!(matches!(
        w.stage,
        Stage::Verifying {
            remedy: Remedy::Abort,
            ..
        }
    ));
}

#[test]
fn any_sign_of_life_restarts_the_clock() {
    let l = ladder();
    let (w, _) = rounds(None, &seen(1, &["r1"]), &l, &[0, 9 * MIN]);
    // The row changed (updatedAt): progress at 9 min, so not stalled at 10 or 18.
    let (w, d) = rounds(w, &seen(2, &["r1"]), &l, &[9 * MIN + 1, 18 * MIN]);
    assert!(d.is_empty(), "{d:?}");
    // A run event heard at 17 min counts too.
    let mut s = seen(2, &["r1"]);
    s.last_event_ms = Some(17 * MIN);
    let (w, d) = rounds(w, &s, &l, &[20 * MIN]);
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(w.unwrap().progress_ms, 20 * MIN);
}

#[test]
fn a_session_inside_an_open_tool_call_is_never_stalled() {
    let mut s = seen(1, &["r1"]);
    s.in_tool_call = true;
    let (w, d) = rounds(None, &s, &ladder(), &[0, 30 * MIN, 600 * MIN]);
    assert!(d.is_empty(), "{d:?}");
    // The clock starts when the call ends.
    s.in_tool_call = false;
    let (_, d) = rounds(w, &s, &ladder(), &[605 * MIN, 610 * MIN]);
    assert!(matches!(d[0], Decision::Stalled { idle_ms, .. } if idle_ms == 10 * MIN));
}

#[test]
fn a_run_waiting_on_an_approval_is_reported_waiting_once_and_never_stalled() {
    let mut s = seen(1, &["r1"]);
    s.waiting_on_approval = Some("a-1".into());
    let (w, d) = rounds(None, &s, &ladder(), &[0, 30 * MIN, 600 * MIN]);
    assert_eq!(
        d,
        vec![Decision::WaitingOnApproval {
            approval_id: "a-1".into()
        }],
        "reported once, with the approval's id; no stall however long"
    );
    // Another approval asked by the same run: reported too.
    s.waiting_on_approval = Some("a-2".into());
    let (w, d) = rounds(w, &s, &ladder(), &[601 * MIN]);
    assert_eq!(
        d,
        vec![Decision::WaitingOnApproval {
            approval_id: "a-2".into()
        }]
    );
    // Answered: the clock starts then.
    s.waiting_on_approval = None;
    let (_, d) = rounds(w, &s, &ladder(), &[605 * MIN, 611 * MIN]);
    assert!(
        matches!(d[0], Decision::Stalled { idle_ms, .. } if idle_ms == 10 * MIN),
        "{d:?}"
    );
}

#[test]
fn the_threshold_is_the_sessions_own() {
    let mut s = seen(1, &["r1"]);
    s.stall_after = Duration::from_secs(3600);
    let (_, d) = rounds(None, &s, &ladder(), &[0, 30 * MIN, 59 * MIN]);
    assert!(d.is_empty());
}

#[test]
fn an_abort_counts_only_once_the_lane_is_free() {
    let l = ladder();
    let (w, _) = rounds(None, &seen(1, &["r1"]), &l, &[0, 10 * MIN]);
    // Answered "aborted", the row even changed — but r1 still holds the lane: not recovered.
    let (w, d) = rounds(w, &seen(5, &["r1"]), &l, &[10 * MIN + 1000]);
    assert!(d.is_empty(), "{d:?}");
    // Past verify_after: ineffective, and the next rung.
    let (w, d) = rounds(w, &seen(5, &["r1"]), &l, &[11 * MIN]);
    assert_eq!(
        d,
        vec![
            Decision::Ineffective(Remedy::Abort),
            Decision::Take(Remedy::Reset)
        ]
    );
    // The reset freed it (no active run any more): recovered after the reset, forgotten.
    let (w, d) = step(w.as_ref(), Some(&seen(6, &[])), &l, 11 * MIN + 500);
    assert_eq!(
        d,
        vec![Decision::Recovered {
            after: Some(Remedy::Reset)
        }]
    );
    assert!(w.is_none());
}

#[test]
fn another_run_in_the_lane_means_the_stalled_one_is_gone() {
    let l = ladder();
    let (w, _) = rounds(None, &seen(1, &["r1"]), &l, &[0, 10 * MIN]);
    let (w, d) = rounds(w, &seen(2, &["r2"]), &l, &[10 * MIN + 100]);
    assert_eq!(
        d,
        vec![Decision::Recovered {
            after: Some(Remedy::Abort)
        }]
    );
    assert_eq!(w.unwrap().stage, Stage::Watching);
}

#[test]
fn when_nothing_works_the_gateway_is_degraded_alerted_and_restarted() {
    let l = ladder();
    let s = seen(1, &["r1"]);
    let (w, d) = rounds(None, &s, &l, &[0, 10 * MIN, 11 * MIN, 12 * MIN]);
    assert_eq!(
        d,
        vec![
            Decision::Stalled {
                idle_ms: 10 * MIN,
                would: vec![]
            },
            Decision::Take(Remedy::Abort),
            Decision::Ineffective(Remedy::Abort),
            Decision::Take(Remedy::Reset),
            Decision::Ineffective(Remedy::Reset),
            Decision::Unrecovered { restart: true },
        ]
    );
    let w = w.unwrap();
    assert!(w.unrecovered());
    // Nothing more is decided while it stays so.
    let (_, d) = rounds(Some(w), &s, &l, &[13 * MIN, 60 * MIN]);
    assert!(d.is_empty());
}

#[test]
fn a_step_not_advertised_or_not_allowed_is_passed_over() {
    let l = Ladder {
        offers_reset: false,
        restart: false,
        ..ladder()
    };
    let (_, d) = rounds(None, &seen(1, &["r1"]), &l, &[0, 10 * MIN, 11 * MIN]);
    assert_eq!(
        d[1..],
        [
            Decision::Take(Remedy::Abort),
            Decision::Ineffective(Remedy::Abort),
            Decision::Unrecovered { restart: false },
        ]
    );
    let l = Ladder {
        abort: false,
        ..ladder()
    };
    let (_, d) = rounds(None, &seen(1, &["r1"]), &l, &[0, 10 * MIN]);
    assert_eq!(d[1], Decision::Take(Remedy::Reset));
}

#[test]
fn a_dry_run_names_the_remedies_and_takes_none() {
    let l = Ladder {
        dry_run: true,
        ..ladder()
    };
    let (w, d) = rounds(None, &seen(1, &["r1"]), &l, &[0, 10 * MIN, 20 * MIN]);
    assert_eq!(
        d,
        vec![
            Decision::Stalled {
                idle_ms: 10 * MIN,
                would: vec!["abort", "reset", "restart"]
            },
            Decision::Unrecovered { restart: false },
        ]
    );
    assert!(w.unwrap().unrecovered());
}

#[test]
fn an_unrecovered_session_that_moves_or_ends_is_recovered() {
    let l = Ladder {
        dry_run: true,
        ..ladder()
    };
    let (w, _) = rounds(None, &seen(1, &["r1"]), &l, &[0, 10 * MIN]);
    let (w2, d) = rounds(w.clone(), &seen(2, &["r1"]), &l, &[11 * MIN]);
    assert_eq!(d, vec![Decision::Recovered { after: None }]);
    assert_eq!(w2.unwrap().stage, Stage::Watching);
    let (w3, d) = step(w.as_ref(), None, &l, 11 * MIN);
    assert_eq!(d, vec![Decision::Recovered { after: None }]);
    assert!(w3.is_none());
}

#[test]
fn an_idle_session_is_not_watched() {
    let (w, d) = step(None, Some(&seen(1, &[])), &ladder(), 0);
    assert!(w.is_none() && d.is_empty());
}

fn known(running_cached: Option<usize>, following: usize, since: u64) -> Known {
    Known {
        running_cached,
        following,
        since_last_look: Duration::from_secs(since),
    }
}

#[test]
fn a_gateway_with_a_run_in_progress_or_a_followed_session_is_looked_at_every_round() {
    let stall = Duration::from_secs(600);
    assert!(worth_a_look(known(Some(1), 0, 1), stall));
    assert!(worth_a_look(known(Some(0), 1, 1), stall));
    // No list cached yet: nothing is known, so it is asked.
    assert!(worth_a_look(known(None, 0, 0), stall));
}

#[test]
fn an_idle_gateway_is_looked_at_once_per_stall_threshold() {
    let stall = Duration::from_secs(600);
    assert!(!worth_a_look(known(Some(0), 0, 30), stall));
    assert!(!worth_a_look(known(Some(0), 0, 599), stall));
    assert!(worth_a_look(known(Some(0), 0, 600), stall));
    // First seen just now: the list cached when its link connected stands for a first look
    // (a fleet that just came up is not asked whole at the first round).
    assert!(!worth_a_look(known(Some(0), 0, 0), stall));
}
