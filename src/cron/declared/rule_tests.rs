use super::*;

fn facts(connected: bool) -> Facts {
    Facts {
        exists: true,
        connected,
        ..Facts::default()
    }
}

fn admitted() -> GatewayProgress {
    GatewayProgress {
        step: Step::Admitted,
        started_at: Some(1_000),
        ..GatewayProgress::pending(GatewayId(1))
    }
}

fn writing(not_before_ms: i64) -> GatewayProgress {
    GatewayProgress {
        step: Step::Writing {
            attempts: 0,
            not_before_ms,
        },
        ..admitted()
    }
}

#[test]
fn a_gateway_is_written_when_connected_and_skipped_for_the_keeper_when_not() {
    assert_eq!(
        next(&admitted(), &facts(true), 60, false, 2_000),
        Next::Begin
    );
    let down = next(&admitted(), &facts(false), 60, false, 2_000);
    assert!(
        matches!(&down, Next::Skip(why) if why.contains("when it links again")),
        "{down:?}"
    );
    let elsewhere = Facts {
        elsewhere: true,
        ..facts(false)
    };
    assert_eq!(next(&admitted(), &elsewhere, 60, false, 2_000), Next::Wait);
    assert_eq!(
        next(&writing(5_000), &facts(true), 60, false, 2_000),
        Next::Wait,
        "paced"
    );
    assert_eq!(
        next(&writing(2_000), &facts(true), 60, false, 2_000),
        Next::Write
    );
    let gone = Facts::default();
    assert!(matches!(
        next(&writing(0), &gone, 60, false, 2_000),
        Next::Fail(_)
    ));
}

#[test]
fn a_cancel_skips_what_is_not_written_and_a_deadline_ends_a_write_that_never_lands() {
    assert!(matches!(
        next(&writing(0), &facts(true), 60, true, 2_000),
        Next::Skip(_)
    ));
    let mut p = writing(0);
    p.detail = Some("cron.add failed: timed out".into());
    let late = next(&p, &facts(true), 60, false, 61_001);
    assert_eq!(
        late,
        Next::Fail("not written within 60s of its start: cron.add failed: timed out".into())
    );
    let over = GatewayProgress {
        step: Step::Done,
        ..admitted()
    };
    assert_eq!(next(&over, &facts(true), 60, true, 2_000), Next::Wait);
}

#[test]
fn the_gateway_s_answer_ends_the_step_or_sets_its_next_try() {
    let mut p = writing(0);
    apply(&mut p, &Next::Begin, 3_000);
    assert_eq!(p.started_at, Some(3_000));
    after(
        &mut p,
        Outcome::Again {
            after_ms: 4_000,
            why: "paced".into(),
        },
        3_000,
    );
    assert_eq!(
        p.step,
        Step::Writing {
            attempts: 1,
            not_before_ms: 7_000
        }
    );
    let mut done = p.clone();
    after(
        &mut done,
        Outcome::Put {
            enabled: false,
            drift: vec![],
        },
        8_000,
    );
    assert_eq!(done.step, Step::Done);
    assert!(done.detail.unwrap().contains("disabled"));
    let mut kept = p.clone();
    after(
        &mut kept,
        Outcome::Put {
            enabled: true,
            drift: vec!["job.payload.message".into()],
        },
        8_000,
    );
    assert_eq!(kept.step, Step::Failed);
    assert!(kept.detail.unwrap().contains("job.payload.message"));
    let mut refused = p;
    after(
        &mut refused,
        Outcome::Refused(
            "invalid cron.add params: CronPattern: Invalid value for minute: 61".into(),
        ),
        8_000,
    );
    assert_eq!(refused.step, Step::Failed);
    assert!(!refused.written, "a refusal wrote nothing");
    assert!(refused.detail.unwrap().ends_with("minute: 61"));
}

fn seen(id: i64, matches: bool, up: bool, written: Option<(i64, bool, bool)>) -> Seen {
    Seen {
        candidate: Candidate {
            id: GatewayId(id),
            up,
            acting_primary: false,
        },
        matches,
        carries: written.is_some(),
        written,
    }
}

fn every(revision: i64) -> Held {
    Held {
        revision,
        deleted: false,
        single: None,
        owner: None,
    }
}

#[test]
fn the_keeper_writes_what_came_to_match_and_removes_what_stopped() {
    let fleet = [
        seen(1, true, true, Some((2, true, false))), // as declared
        seen(2, true, true, None),                   // came to match
        seen(3, false, true, Some((2, true, false))), // stopped matching
        seen(4, true, true, Some((1, true, false))), // an older revision
        seen(5, true, true, Some((2, false, true))), // refused this revision
        seen(6, true, false, None),                  // down: when it is back
        seen(7, false, true, None),                  // neither
    ];
    let kept = keep(&every(2), &fleet);
    assert_eq!(kept.write, [GatewayId(2), GatewayId(3), GatewayId(4)]);
    assert_eq!(kept.moved_to, None);
    let gone = Held {
        deleted: true,
        ..every(3)
    };
    assert_eq!(
        keep(&gone, &fleet).write,
        [GatewayId(1), GatewayId(3), GatewayId(4), GatewayId(5)],
        "a deleted declaration is removed from every gateway up that carries it"
    );
}

#[test]
fn a_single_firing_job_moves_off_a_gateway_that_went_down_in_its_policy_s_order() {
    let single = |how| Held {
        revision: 1,
        deleted: false,
        single: Some(how),
        owner: Some(GatewayId(1)),
    };
    let fleet = [
        seen(1, true, false, Some((1, true, false))), // fired it, now down
        seen(2, true, true, Some((1, false, false))),
        seen(3, true, true, Some((1, false, false))),
    ];
    let kept = keep(&single(CronMove::Overlap), &fleet);
    assert_eq!(kept.moved_to, Some(GatewayId(2)));
    assert_eq!(
        kept.write,
        [GatewayId(2)],
        "the old one is written when it is back"
    );
    // Back: it is disabled (and the new one keeps firing).
    let back = [
        seen(1, true, true, Some((1, true, false))),
        seen(2, true, true, Some((1, true, false))),
    ];
    let moved = Held {
        owner: Some(GatewayId(2)),
        ..single(CronMove::Gap)
    };
    let kept = keep(&moved, &back);
    assert_eq!((kept.moved_to, kept.write), (None, vec![GatewayId(1)]));
    // Both up and both to change: enable first (overlap) or disable first (gap).
    let both = [
        seen(1, true, true, Some((1, false, false))),
        seen(2, true, true, Some((1, true, false))),
        seen(3, false, true, None),
    ];
    let to_one = Held {
        owner: None,
        ..single(CronMove::Overlap)
    };
    let kept = keep(&to_one, &both);
    assert_eq!(
        kept.moved_to,
        Some(GatewayId(1)),
        "the lowest up, none being primary"
    );
    assert_eq!(kept.write, [GatewayId(1), GatewayId(2)]);
    let gap = Held {
        owner: None,
        ..single(CronMove::Gap)
    };
    assert_eq!(keep(&gap, &both).write, [GatewayId(2), GatewayId(1)]);
}

#[test]
fn what_a_gateway_should_carry() {
    let d = Held {
        revision: 1,
        deleted: false,
        single: Some(CronMove::Overlap),
        owner: Some(GatewayId(2)),
    };
    assert_eq!(want(&d, GatewayId(2), true), Want::Put { enabled: true });
    assert_eq!(want(&d, GatewayId(3), true), Want::Put { enabled: false });
    assert_eq!(want(&d, GatewayId(2), false), Want::Remove);
    assert_eq!(
        want(&every(1), GatewayId(3), true),
        Want::Put { enabled: true }
    );
}
