//! What a failure leads to: backoff, recoveries, halts, pairing, and the breaker.

use super::*;

// ---- what a failure leads to ----------------------------------------------------------------

#[test]
fn backoff_doubles_from_one_second_with_each_failure() {
    let now = Instant::now();
    let mut s = settings();
    s.breaker_threshold = 1000;
    let mut m = LinkMachine::new(s, None, false, true, now);
    let delays: Vec<Duration> = (0..4)
        .map(|_| {
            m.begin_connect();
            delay(&m.fail(LinkFailure::network("refused"), now, MID))
        })
        .collect();
    assert_eq!(delays, [secs(1), secs(2), secs(4), secs(8)]);
}

#[test]
fn backoff_never_exceeds_its_ceiling() {
    let now = Instant::now();
    let mut s = settings();
    s.breaker_threshold = 1000;
    let mut m = LinkMachine::new(s, None, false, true, now);
    let mut last = Duration::ZERO;
    for _ in 0..10 {
        m.begin_connect();
        last = delay(&m.fail(LinkFailure::network("refused"), now, 0.99));
    }
    assert_eq!(last, secs(30));
}

#[test]
fn the_backoff_starts_again_only_after_a_link_stayed_up_ten_seconds() {
    let t0 = Instant::now();
    let mut s = settings();
    // The schedule alone: a link that fails within ten seconds counts toward the breaker too
    // (`a_gateway_that_fails_right_after_every_hello_opens_the_breaker`).
    s.breaker_threshold = 1000;
    let mut m = LinkMachine::new(s, None, false, true, t0);
    refused_dials(&mut m, 3, t0);
    // Up for one second, then lost: the schedule goes on (8 s), no storm.
    connect(&mut m, t0);
    let short = delay(&m.fail(classify_close(1006, ""), t0 + secs(1), MID));
    assert_eq!(short, secs(8));
    // Up for eleven seconds, then lost: one second again.
    connect(&mut m, t0 + secs(20));
    let long = delay(&m.fail(classify_close(1006, ""), t0 + secs(31), MID));
    assert_eq!(long, secs(1));
}

#[test]
fn a_failure_before_the_upgrade_asks_readiness_while_backing_off() {
    let (mut m, now) = machine(None);
    m.begin_connect();
    let actions = m.fail(LinkFailure::network("refused"), now, MID);
    assert_eq!(reconnect(&actions), Some((secs(1), true)));
}

#[test]
fn a_socket_broken_after_the_upgrade_waits_its_backoff_without_readiness_polls() {
    let (mut m, now) = machine(None);
    m.begin_connect();
    m.socket_opened(now);
    let actions = m.fail(LinkFailure::protocol("binary frame"), now, MID);
    assert_eq!(reconnect(&actions), Some((secs(1), false)));
}

#[test]
fn a_failed_handshake_is_counted_under_its_code_and_a_lost_link_is_not() {
    let (mut m, now) = machine(None);
    m.begin_connect();
    m.socket_opened(now);
    let actions = m.fail(LinkFailure::timeout("handshake"), now, MID);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::CountHandshakeFailure(c) if *c == "TIMEOUT"))
    );
    connect(&mut m, now);
    let actions = m.fail(classify_close(1006, ""), now, MID);
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::CountHandshakeFailure(_)))
    );
}

#[test]
fn a_lost_connection_leaves_backoff_state_and_last_error_for_the_registry() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let actions = m.fail(classify_close(1006, "connection lost"), now, MID);
    assert!(matches!(actions[0], Action::Teardown));
    assert!(actions.iter().any(|a| matches!(a, Action::Report)));
    assert_eq!(m.phase(), LinkPhase::Backoff);
    assert_eq!(m.status(), GatewayStatus::Degraded);
    assert_eq!(m.state(now).connection.state, Some(LinkPhase::Backoff));
}

#[test]
fn a_gateway_never_reached_is_offline_with_its_reason_not_degraded() {
    let (mut m, now) = machine(None);
    assert_eq!(m.status(), GatewayStatus::Unknown, "not tried yet");
    m.begin_connect();
    m.fail(classify_close(1006, "connection refused"), now, MID);
    assert_eq!(
        m.status(),
        GatewayStatus::Offline,
        "failing below the breaker's threshold"
    );
    let state = m.state(now);
    assert!(
        state.connection.last_error.is_some(),
        "the reason is shown: {:?}",
        state.connection
    );
    // Once reached, a failure below the threshold is a problem of a gateway that was up.
    connect(&mut m, now);
    m.fail(classify_close(1006, "connection lost"), now, MID);
    assert_eq!(m.status(), GatewayStatus::Degraded);
}

#[test]
fn a_wrong_shared_token_is_retried_once_with_the_cached_device_token() {
    let (mut m, now) = machine(Some("cached-device-token"));
    handshake(&mut m, now);
    let failure = captured_failure("wrong_token.json", &["connectResponse"]);
    let actions = m.fail(failure, now, MID);
    assert_eq!(reconnect(&actions), Some((RECOVERY_DELAY, false)));
    assert!(noted(&actions, |n| matches!(n, Note::Recovering { .. })));
    assert_eq!(handshake(&mut m, now).auth, AuthChoice::DeviceTokenOnly);
}

#[test]
fn a_wrong_shared_token_without_a_device_token_halts_the_link() {
    let (mut m, now) = machine(None);
    handshake(&mut m, now);
    let failure = captured_failure("wrong_token.json", &["connectResponse"]);
    let actions = m.fail(failure, now, MID);
    assert_eq!(reconnect(&actions), None);
    assert_eq!(m.phase(), LinkPhase::Halted);
    assert_eq!(m.status(), GatewayStatus::Offline);
    assert_eq!(
        last_error_code(&m, now).as_deref(),
        Some("AUTH_TOKEN_MISMATCH")
    );
}

#[test]
fn a_rejected_device_token_is_forgotten_and_the_shared_token_tried() {
    let (mut m, now) = machine(Some("stale-device-token"));
    handshake(&mut m, now);
    let failure = captured_failure(
        "device_token_reconnect.json",
        &["withBogusDeviceToken", "connectResponse"],
    );
    let actions = m.fail(failure, now, MID);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::PersistDeviceToken(None)))
    );
    assert!(m.device_token().is_none());
    assert_eq!(handshake(&mut m, now).auth, AuthChoice::SharedTokenFirst);
}

#[test]
fn recovery_steps_stop_after_two_until_a_handshake_succeeds() {
    let (mut m, now) = machine(Some("cached"));
    let wrong = || captured_failure("wrong_token.json", &["connectResponse"]);
    for _ in 0..2 {
        handshake(&mut m, now);
        assert!(reconnect(&m.fail(wrong(), now, MID)).is_some());
    }
    handshake(&mut m, now);
    m.fail(wrong(), now, MID);
    assert_eq!(m.phase(), LinkPhase::Halted);
}

#[test]
fn a_good_handshake_restores_the_recovery_steps() {
    let (mut m, now) = machine(Some("cached"));
    let wrong = || captured_failure("wrong_token.json", &["connectResponse"]);
    for _ in 0..2 {
        handshake(&mut m, now);
        m.fail(wrong(), now, MID);
    }
    connect(&mut m, now);
    m.fail(classify_close(1006, ""), now, MID);
    handshake(&mut m, now);
    assert!(reconnect(&m.fail(wrong(), now, MID)).is_some());
}

#[test]
fn recovery_attempts_do_not_count_toward_the_breaker() {
    let (mut m, now) = machine(Some("cached"));
    handshake(&mut m, now);
    m.fail(
        captured_failure("wrong_token.json", &["connectResponse"]),
        now,
        MID,
    );
    assert_eq!(m.state(now).breaker.consecutive_failures, 0);
}

#[test]
fn a_rejected_v3_signature_is_retried_once_as_v2_then_halts() {
    let (mut m, now) = machine(None);
    let bad = || captured_failure("bad_signature.json", &["connectResponse"]);
    handshake(&mut m, now);
    let actions = m.fail(bad(), now, MID);
    assert!(noted(&actions, |n| *n == Note::V2Fallback));
    assert_eq!(reconnect(&actions), Some((RECOVERY_DELAY, false)));
    assert_eq!(handshake(&mut m, now).signature, SignatureVersion::V2);
    m.fail(bad(), now, MID);
    assert_eq!(m.phase(), LinkPhase::Halted);
}

#[test]
fn pairing_required_retries_on_its_own_schedule_and_shows_the_request() {
    let (mut m, now) = machine(None);
    handshake(&mut m, now);
    let failure = captured_failure("pairing.json", &["firstConnect", "connectResponse"]);
    let actions = m.fail(failure, now, MID);
    assert_eq!(reconnect(&actions), Some((secs(5), false)));
    assert_eq!(
        m.state(now).connection.pairing_request_id.as_deref(),
        Some("c18b6f82-e7ff-41a2-8d3d-adda506d4e2f")
    );
    // Approved: the request id is gone.
    connect(&mut m, now);
    assert_eq!(m.state(now).connection.pairing_request_id, None);
}

#[test]
fn a_protocol_mismatch_halts_the_link() {
    let (mut m, now) = machine(None);
    handshake(&mut m, now);
    m.fail(
        captured_failure("protocol_mismatch.json", &["connectResponse"]),
        now,
        MID,
    );
    assert_eq!(m.phase(), LinkPhase::Halted);
    assert_eq!(
        last_error_code(&m, now).as_deref(),
        Some("PROTOCOL_MISMATCH")
    );
}

#[test]
fn a_starting_gateway_is_retried_no_sooner_than_it_asked() {
    let (mut m, now) = machine(None);
    handshake(&mut m, now);
    let shape: ErrorShape = serde_json::from_value(json!({
        "code": "UNAVAILABLE", "message": "gateway starting; retry shortly",
        "retryable": true, "retryAfterMs": 4000
    }))
    .unwrap();
    let d = delay(&m.fail(classify_error(&shape), now, MID));
    assert!(d >= secs(4), "{d:?}");
}

#[test]
fn a_restart_announced_by_shutdown_sets_the_floor_of_the_next_reconnect_once() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let note = m.shutting_down(Some(&json!({"restartExpectedMs": 20_000})));
    assert_eq!(
        note,
        Note::ShuttingDown {
            restart_expected: Some(secs(20))
        }
    );
    let first = delay(&m.fail(classify_close(1012, "service restart"), now, MID));
    assert!(first >= secs(20), "{first:?}");
    m.begin_connect();
    let second = delay(&m.fail(LinkFailure::network("refused"), now, MID));
    assert!(second < secs(20), "{second:?}");
}

#[test]
fn the_real_shutdown_event_without_a_restart_time_sets_no_floor() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let event = at(
        &capture("shutdown_sigterm.json"),
        &["events", "1", "payload"],
    );
    m.shutting_down(Some(&event));
    let d = delay(&m.fail(classify_close(1012, "service restart"), now, MID));
    assert_eq!(d, secs(1));
}

/// The real gateway's start-up answer to `connect` (`UNAVAILABLE` "gateway starting").
fn starting() -> LinkFailure {
    let shape: ErrorShape = serde_json::from_value(at(
        &capture("startup_early.json"),
        &["distinct", "1", "err"],
    ))
    .unwrap();
    classify_error(&shape)
}

/// The real gateway stopping: its `shutdown` event, then close 1012.
fn stopped(m: &mut LinkMachine, now: Instant) -> Vec<Action> {
    let event = at(
        &capture("shutdown_sigterm.json"),
        &["events", "1", "payload"],
    );
    m.shutting_down(Some(&event));
    m.fail(classify_close(1012, "service restart"), now, MID)
}

#[test]
fn a_gateway_that_stops_is_watched_for_readiness_and_not_counted_by_the_breaker() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let actions = stopped(&mut m, now + secs(60));
    assert_eq!(reconnect(&actions), Some((secs(1), true)));
    assert_eq!(m.state(now).breaker.consecutive_failures, 0);
}

#[test]
fn a_starting_gateway_is_watched_for_readiness_and_not_counted_by_the_breaker() {
    let (mut m, now) = machine(None);
    handshake(&mut m, now);
    let (_, polls) = reconnect(&m.fail(starting(), now, MID)).unwrap();
    assert!(polls, "its /readyz says when it can take the link");
    assert_eq!(m.state(now).breaker.consecutive_failures, 0);
}

#[test]
fn a_restart_on_a_slow_machine_does_not_open_the_breaker() {
    // Seen on 2 vCPUs: the shutdown, a refused dial, then "gateway starting" to three dials.
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    stopped(&mut m, now + secs(60));
    m.begin_connect();
    m.fail(LinkFailure::network("refused"), now + secs(61), MID);
    for _ in 0..3 {
        handshake(&mut m, now + secs(62));
        m.fail(starting(), now + secs(62), MID);
    }
    assert_eq!(m.state(now).breaker.state, BreakerState::Closed);
    connect(&mut m, now + secs(63));
    assert_eq!(m.status(), GatewayStatus::Online);
}

#[test]
fn a_gateway_that_says_not_now_at_every_dial_is_failing_like_any_other() {
    let (mut m, now) = machine(None);
    let mut last = Vec::new();
    for _ in 0..crate::backoff::WORDS_TAKEN + 1 {
        handshake(&mut m, now);
        last = m.fail(starting(), now, MID);
    }
    let (_, polls) = reconnect(&last).unwrap();
    assert!(!polls, "no longer re-dialled at its /readyz's word");
    assert_eq!(m.state(now).breaker.consecutive_failures, 1);
    // Nor does a link that closes within seconds of its handshake earn new words.
    connect(&mut m, now);
    let (_, polls) = reconnect(&stopped(&mut m, now + secs(1))).unwrap();
    assert!(!polls);
    // A link that stayed up does.
    connect(&mut m, now + secs(10));
    let (_, polls) = reconnect(&stopped(&mut m, now + secs(30))).unwrap();
    assert!(polls);
}

// ---- the breaker ----------------------------------------------------------------------------

#[test]
fn three_failures_in_a_row_open_the_breaker_and_the_next_dial_waits_the_cooldown() {
    let (mut m, now) = machine(None);
    let actions = refused_dials(&mut m, 3, now);
    assert!(noted(&actions, |n| matches!(
        n,
        Note::BreakerOpened { failures: 3 }
    )));
    assert_eq!(delay(&actions), secs(60));
    assert_eq!(m.status(), GatewayStatus::Offline);
    assert_eq!(m.state(now).breaker.state, BreakerState::Open);
}

#[test]
fn after_the_cooldown_the_breaker_allows_one_trial() {
    let (mut m, now) = machine(None);
    refused_dials(&mut m, 3, now);
    assert_eq!(
        m.state(now + secs(61)).breaker.state,
        BreakerState::HalfOpen
    );
}

#[test]
fn a_good_handshake_closes_the_breaker() {
    let (mut m, now) = machine(None);
    refused_dials(&mut m, 3, now);
    connect(&mut m, now + secs(61));
    assert_eq!(m.state(now).breaker.state, BreakerState::Closed);
    assert_eq!(m.status(), GatewayStatus::Online);
}

/// A gateway that closes the socket right after every hello: each hello used to reset the
/// breaker, so it never opened — `degraded` for good, never offline, no alert. Now the count
/// survives a hello until the link lasts, and the breaker opens at the threshold.
#[test]
fn a_gateway_that_fails_right_after_every_hello_opens_the_breaker() {
    let (mut m, mut now) = machine(None);
    let mut notes = Vec::new();
    for _ in 0..3 {
        notes.extend(connect(&mut m, now));
        now += secs(1);
        notes.extend(m.fail(classify_close(1011, "internal error"), now, MID));
        now += secs(1);
    }
    assert_eq!(m.status(), GatewayStatus::Offline);
    assert_eq!(m.state(now).breaker.state, BreakerState::Open);
    assert!(noted(&notes, |n| matches!(
        n,
        Note::BreakerOpened { failures: 3 }
    )));
    // A link that lasts ends the outage's count.
    now += secs(61);
    connect(&mut m, now);
    m.fail(classify_close(1011, "internal error"), now + secs(11), MID);
    assert_eq!(m.state(now).breaker.consecutive_failures, 1);
}

/// One WARN when a gateway goes offline and one when it is reachable again — not one every
/// cooldown while the trials fail.
#[test]
fn an_outage_is_said_once_when_it_begins_and_once_when_it_ends() {
    let (mut m, mut now) = machine(None);
    let mut notes = refused_dials(&mut m, 3, now);
    for _ in 0..5 {
        now += secs(61);
        m.begin_connect();
        notes.extend(m.fail(LinkFailure::network("refused"), now, MID));
    }
    let count = |notes: &[Action], pred: fn(&Note) -> bool| {
        notes
            .iter()
            .filter(|a| matches!(a, Action::Log(n) if pred(n)))
            .count()
    };
    assert_eq!(
        count(&notes, |n| matches!(n, Note::BreakerOpened { .. })),
        1
    );
    assert_eq!(
        count(&notes, |n| matches!(n, Note::BreakerReopened { .. })),
        5
    );
    now += secs(61);
    let back = connect(&mut m, now);
    assert_eq!(
        count(&back, |n| matches!(n, Note::BackAfterOutage { .. })),
        1
    );
    assert_eq!(m.status(), GatewayStatus::Online);
}

#[test]
fn pairing_waits_count_toward_the_breaker() {
    let (mut m, now) = machine(None);
    handshake(&mut m, now);
    m.fail(
        captured_failure("pairing.json", &["firstConnect", "connectResponse"]),
        now,
        MID,
    );
    assert_eq!(m.state(now).breaker.consecutive_failures, 1);
}

#[test]
fn a_release_that_verifies_only_v2_gets_a_v2_proof_and_connects() {
    let capture = capture_of("2026.2.25", "v3_refused_v2_accepted.json");
    let refusal: ErrorShape =
        serde_json::from_value(at(&capture, &["v3Refused", "connectResponse", "error"])).unwrap();
    let (mut m, now) = machine(None);
    handshake(&mut m, now);
    let actions = m.fail(classify_error(&refusal), now, MID);
    assert!(noted(&actions, |n| *n == Note::V2Fallback));
    assert_eq!(handshake(&mut m, now).signature, SignatureVersion::V2);
    let hello = at(&capture, &["v2Accepted", "connectResponse", "payload"]);
    m.hello(Some(hello), now, UNIX, MID);
    let state = m.state(now);
    assert_eq!(state.connection.state, Some(LinkPhase::Connected));
    assert_eq!(state.connection.protocol, Some(3));
    assert_eq!(state.connection.server_version.as_deref(), Some("dev"));
}
