//! The link machine, one behaviour per test, driven with frames captured from a real gateway
//! (openclaw 2026.9.6, `testdata/openclaw-captures/`) and a clock the test moves by hand.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::machine::*;
use crate::handshake::AuthChoice;
use crate::model::{BreakerState, GatewayStatus};
use crate::protocol::captures::{at, capture};
use crate::protocol::device::SignatureVersion;
use crate::protocol::errors::{LinkFailure, classify_close, classify_error};
use crate::protocol::frames::ErrorShape;

const UNIX: i64 = 1_795_238_987;
/// The middle of the jitter range: every backoff delay is exactly its base.
const MID: f64 = 0.5;

/// The failure a captured `ok: false` connect response means.
fn captured_failure(file: &str, path: &[&str]) -> LinkFailure {
    let shape: ErrorShape = serde_json::from_value(at(&capture(file), path)["error"].clone())
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    classify_error(&shape)
}

fn real_hello() -> Value {
    at(&capture("ok_v3.json"), &["connectResponse", "payload"])
}

fn real_challenge() -> Value {
    at(&capture("ok_v3.json"), &["challenge", "payload"])
}

fn settings() -> MachineSettings {
    MachineSettings {
        missed_pongs: 3,
        handshake_timeout: Duration::from_secs(10),
        breaker_threshold: 3,
        breaker_cooldown: Duration::from_secs(60),
        degraded_latency_ms: 500,
        backoff_max: Duration::from_secs(30),
        pairing_retry: Duration::from_secs(5),
    }
}

fn machine(device_token: Option<&str>) -> (LinkMachine, Instant) {
    let now = Instant::now();
    let token = device_token.map(|t| SecretString::from(t.to_owned()));
    (LinkMachine::new(settings(), token, false, true, now), now)
}

/// Dial, upgrade, challenge: the plan for the `connect` request.
fn handshake(m: &mut LinkMachine, now: Instant) -> ConnectPlan {
    m.begin_connect();
    m.socket_opened(now);
    m.challenge(Some(real_challenge()))
        .expect("a real challenge")
}

/// A whole handshake with the real `hello-ok`.
fn connect(m: &mut LinkMachine, now: Instant) -> Vec<Action> {
    handshake(m, now);
    m.hello(Some(real_hello()), now, UNIX, MID)
}

fn reconnect(actions: &[Action]) -> Option<(Duration, bool)> {
    actions.iter().find_map(|a| match a {
        Action::ReconnectAfter {
            delay,
            poll_readiness,
        } => Some((*delay, *poll_readiness)),
        _ => None,
    })
}

fn delay(actions: &[Action]) -> Duration {
    reconnect(actions).expect("a reconnect is scheduled").0
}

fn noted(actions: &[Action], pred: impl Fn(&Note) -> bool) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Log(n) if pred(n)))
}

fn last_error_code(m: &LinkMachine, now: Instant) -> Option<String> {
    m.state(now).connection.last_error.map(|e| e.code)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

// ---- before and during the handshake ------------------------------------------------------

#[test]
fn a_new_link_is_connecting_and_its_status_unknown() {
    let (m, now) = machine(None);
    assert_eq!(m.phase(), LinkPhase::Connecting);
    assert_eq!(m.status(), GatewayStatus::Unknown);
    assert_eq!(m.state(now).connection.state, Some(LinkPhase::Connecting));
}

#[test]
fn only_dials_after_the_first_count_as_reconnects() {
    let (mut m, _) = machine(None);
    assert_eq!(m.begin_connect(), (1, false));
    assert_eq!(m.begin_connect(), (2, true));
}

#[test]
fn an_upgraded_socket_starts_the_handshake_under_its_timeout() {
    let (mut m, now) = machine(None);
    m.begin_connect();
    let actions = m.socket_opened(now);
    assert_eq!(m.phase(), LinkPhase::Handshaking);
    assert!(matches!(actions[0], Action::ArmHandshakeTimeout(d) if d == secs(10)));
}

#[test]
fn a_real_challenge_is_answered_with_a_v3_signature_and_the_preferred_credentials() {
    let (mut m, now) = machine(None);
    let plan = handshake(&mut m, now);
    assert_eq!(plan.signature, SignatureVersion::V3);
    assert_eq!(plan.auth, AuthChoice::Preferred);
    assert_eq!(plan.challenge.nonce, "f87e67c5-26bd-4532-ae91-d9db022cf665");
    assert!(m.is_connect_response(&plan.request_id));
    assert!(!m.is_connect_response("r1"));
}

#[test]
fn a_changed_shared_token_is_proved_on_the_first_handshake() {
    let now = Instant::now();
    let token = Some(SecretString::from("dt".to_owned()));
    let mut m = LinkMachine::new(settings(), token, true, true, now);
    assert_eq!(handshake(&mut m, now).auth, AuthChoice::SharedTokenFirst);
}

#[test]
fn a_challenge_without_a_nonce_is_a_protocol_error() {
    let (mut m, _) = machine(None);
    m.begin_connect();
    let err = m.challenge(Some(json!({"ts": 1}))).unwrap_err();
    assert_eq!(err.code, "PROTOCOL_ERROR");
    assert!(m.challenge(None).is_err());
}

#[test]
fn the_real_hello_connects_the_link_and_it_is_online() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    assert_eq!(m.phase(), LinkPhase::Connected);
    assert_eq!(m.status(), GatewayStatus::Online);
    let state = m.state(now);
    assert_eq!(state.connection.protocol, Some(4));
    assert_eq!(state.connection.server_version.as_deref(), Some("2026.9.6"));
    assert_eq!(state.last_seen, Some(UNIX));
}

#[test]
fn hello_keeps_what_the_gateway_can_do() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    assert!(m.supports("health"));
    assert!(m.supports("sessions.list"));
    assert!(!m.supports("no.such.method"));
}

#[test]
fn hello_ends_the_handshake_then_starts_the_keepalive_subscribes_and_counts() {
    let (mut m, now) = machine(None);
    let actions = connect(&mut m, now);
    let kinds: Vec<&str> = actions
        .iter()
        .map(|a| match a {
            Action::HandshakeDone => "done",
            Action::PersistDeviceToken(_) => "token",
            Action::Log(_) => "log",
            Action::StartHeartbeat => "heartbeat",
            Action::Report => "report",
            Action::SubscribeSessions => "subscribe",
            Action::RefreshCounts => "counts",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "done",
            "token",
            "log",
            "heartbeat",
            "report",
            "subscribe",
            "counts"
        ]
    );
}

#[test]
fn a_device_token_from_hello_is_stored_once_and_used_next_time() {
    let (mut m, now) = machine(None);
    let first = connect(&mut m, now);
    let stored: Vec<&Option<SecretString>> = first
        .iter()
        .filter_map(|a| match a {
            Action::PersistDeviceToken(t) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(stored.len(), 1);
    let token = stored[0].as_ref().unwrap().expose_secret().to_owned();
    assert_eq!(m.device_token().unwrap().expose_secret(), token);
    // The same token again: nothing to store.
    m.fail(classify_close(1006, ""), now, MID);
    let again = connect(&mut m, now);
    assert!(
        !again
            .iter()
            .any(|a| matches!(a, Action::PersistDeviceToken(_)))
    );
}

#[test]
fn an_unreadable_hello_fails_the_link_as_a_protocol_error() {
    let (mut m, now) = machine(None);
    handshake(&mut m, now);
    let actions = m.hello(Some(json!({"protocol": "four"})), now, UNIX, MID);
    assert!(matches!(actions[0], Action::Teardown));
    assert_eq!(m.phase(), LinkPhase::Backoff);
    assert_eq!(last_error_code(&m, now).as_deref(), Some("PROTOCOL_ERROR"));
    handshake(&mut m, now);
    m.hello(None, now, UNIX, MID);
    assert_eq!(m.phase(), LinkPhase::Backoff);
}

#[test]
fn a_hostile_version_is_kept_bounded_and_printable() {
    let (mut m, now) = machine(None);
    handshake(&mut m, now);
    let mut hello = real_hello();
    hello["server"]["version"] = json!(format!("1\n{}\u{1b}[31m", "9".repeat(70_000)));
    m.hello(Some(hello), now, UNIX, MID);
    let version = m.server_version().unwrap();
    assert!(version.len() <= 160, "{} bytes", version.len());
    assert!(!version.chars().any(char::is_control));
}

#[test]
fn a_hostile_method_list_is_cut_to_plausible_names() {
    let (mut m, now) = machine(None);
    handshake(&mut m, now);
    let mut hello = real_hello();
    let mut methods: Vec<String> = (0..5000).map(|i| format!("m.{i}")).collect();
    methods.insert(0, "bad\nname".into());
    hello["features"]["methods"] = json!(methods);
    m.hello(Some(hello), now, UNIX, MID);
    let state = m.state(now);
    assert_eq!(state.methods.len(), 1024);
    assert!(!m.supports("bad\nname"));
}

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
    let (mut m, t0) = machine(None);
    for _ in 0..3 {
        m.begin_connect();
        m.fail(LinkFailure::network("refused"), t0, MID);
    }
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

// ---- the breaker ----------------------------------------------------------------------------

#[test]
fn three_failures_in_a_row_open_the_breaker_and_the_next_dial_waits_the_cooldown() {
    let (mut m, now) = machine(None);
    let mut actions = Vec::new();
    for _ in 0..3 {
        m.begin_connect();
        actions = m.fail(LinkFailure::network("refused"), now, MID);
    }
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
    for _ in 0..3 {
        m.begin_connect();
        m.fail(LinkFailure::network("refused"), now, MID);
    }
    assert_eq!(
        m.state(now + secs(61)).breaker.state,
        BreakerState::HalfOpen
    );
}

#[test]
fn a_good_handshake_closes_the_breaker() {
    let (mut m, now) = machine(None);
    for _ in 0..3 {
        m.begin_connect();
        m.fail(LinkFailure::network("refused"), now, MID);
    }
    connect(&mut m, now + secs(61));
    assert_eq!(m.state(now).breaker.state, BreakerState::Closed);
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

// ---- keepalive ------------------------------------------------------------------------------

#[test]
fn a_heartbeat_sends_a_numbered_eight_byte_ping() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let actions = m.heartbeat(now, MID);
    assert!(matches!(&actions[..], [Action::SendPing(p)] if p == &1u64.to_be_bytes()));
    let actions = m.heartbeat(now, MID);
    assert!(matches!(&actions[..], [Action::SendPing(p)] if p == &2u64.to_be_bytes()));
}

#[test]
fn three_missed_pongs_take_the_link_down() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    m.heartbeat(now, MID);
    m.ping_sent(now);
    assert!(matches!(m.heartbeat(now, MID)[..], [Action::SendPing(_)]));
    assert!(matches!(m.heartbeat(now, MID)[..], [Action::SendPing(_)]));
    let actions = m.heartbeat(now, MID);
    assert!(noted(&actions, |n| *n == Note::NoPong { missed: 3 }));
    assert_eq!(
        last_error_code(&m, now).as_deref(),
        Some("HEARTBEAT_TIMEOUT")
    );
}

#[test]
fn a_pong_measures_the_round_trip_and_clears_the_misses() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    m.heartbeat(now, MID);
    m.ping_sent(now);
    m.heartbeat(now, MID);
    let rtt = m.pong(
        &1u64.to_be_bytes(),
        now + Duration::from_millis(42),
        UNIX + 1,
    );
    assert_eq!(rtt, Some(Duration::from_millis(42)));
    assert_eq!(m.latency_ms(), Some(42));
    assert_eq!(m.last_seen(), Some(UNIX + 1));
    // Two more misses are not three.
    m.heartbeat(now, MID);
    m.ping_sent(now);
    m.heartbeat(now, MID);
    assert_eq!(m.phase(), LinkPhase::Connected);
}

#[test]
fn a_pong_that_is_not_ours_is_ignored() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    assert_eq!(m.pong(&1u64.to_be_bytes(), now, UNIX), None);
    m.heartbeat(now, MID);
    m.ping_sent(now);
    assert_eq!(m.pong(b"short", now, UNIX), None);
}

#[test]
fn a_slow_pong_makes_the_gateway_degraded() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    m.heartbeat(now, MID);
    m.ping_sent(now);
    m.pong(&1u64.to_be_bytes(), now + Duration::from_millis(600), UNIX);
    assert_eq!(m.status(), GatewayStatus::Degraded);
}

#[test]
fn silence_for_twice_the_tick_interval_takes_the_link_down() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    // The real gateway ticks every 30 s.
    m.frame_seen(now + secs(30));
    assert!(matches!(
        m.heartbeat(now + secs(89), MID)[..],
        [Action::SendPing(_)]
    ));
    let actions = m.heartbeat(now + secs(91), MID);
    assert!(noted(&actions, |n| matches!(n, Note::Silent { .. })));
    assert_eq!(m.phase(), LinkPhase::Backoff);
}

#[test]
fn a_tick_interval_below_a_second_is_taken_as_one_second() {
    let (mut m, now) = machine(None);
    handshake(&mut m, now);
    let mut hello = real_hello();
    hello["policy"]["tickIntervalMs"] = json!(0);
    m.hello(Some(hello), now, UNIX, MID);
    assert!(matches!(
        m.heartbeat(now + Duration::from_millis(1900), MID)[..],
        [Action::SendPing(_)]
    ));
    m.heartbeat(now + Duration::from_millis(2100), MID);
    assert_eq!(m.phase(), LinkPhase::Backoff);
}

#[test]
fn a_heartbeat_for_a_link_no_longer_connected_does_nothing() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    m.fail(classify_close(1006, ""), now, MID);
    assert!(m.heartbeat(now, MID).is_empty());
}

// ---- requests -------------------------------------------------------------------------------

#[test]
fn three_unanswered_requests_in_a_row_take_the_link_down() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    assert!(m.unanswered(now, MID).is_empty());
    assert!(m.unanswered(now, MID).is_empty());
    let actions = m.unanswered(now, MID);
    assert!(matches!(actions[0], Action::Teardown));
    assert_eq!(last_error_code(&m, now).as_deref(), Some("RPC_TIMEOUT"));
}

#[test]
fn an_answer_resets_the_unanswered_count() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    m.unanswered(now, MID);
    m.unanswered(now, MID);
    m.answered();
    m.unanswered(now, MID);
    m.unanswered(now, MID);
    assert_eq!(m.phase(), LinkPhase::Connected);
}

// ---- stale inputs and stopping --------------------------------------------------------------

#[test]
fn timers_of_an_earlier_connection_are_recognised_as_stale() {
    let (mut m, now) = machine(None);
    let (first, _) = m.begin_connect();
    m.socket_opened(now);
    assert!(m.is_current(first, LinkPhase::Handshaking));
    m.fail(LinkFailure::timeout("handshake"), now, MID);
    m.begin_connect();
    m.socket_opened(now);
    assert!(!m.is_current(first, LinkPhase::Handshaking));
}

#[test]
fn stopping_halts_the_link_and_invalidates_every_timer() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let generation = m.generation();
    let actions = m.stop();
    assert!(matches!(actions[..], [Action::Teardown]));
    assert_eq!(m.phase(), LinkPhase::Halted);
    assert!(!m.is_current(generation, LinkPhase::Connected));
    assert!(m.heartbeat(now, MID).is_empty());
}

// ---- probes ---------------------------------------------------------------------------------

#[test]
fn a_healthy_probe_of_a_connected_link_is_healthy_with_its_latency() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let v = m.probed(
        HttpHealth::Answered(Duration::from_millis(7)),
        RpcHealth::Answered(json!({"ok": true})),
        now,
        UNIX + 5,
    );
    assert!(v.healthy);
    assert_eq!((v.outcome, v.status), ("healthy", GatewayStatus::Online));
    assert_eq!(v.latency_ms, Some(7));
    assert_eq!(m.last_seen(), Some(UNIX + 5));
}

#[test]
fn a_probe_that_runs_out_of_time_marks_the_gateway_timeout() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let v = m.probed(
        HttpHealth::Answered(Duration::from_millis(7)),
        RpcHealth::TimedOut,
        now,
        UNIX,
    );
    assert!(!v.healthy);
    assert_eq!((v.outcome, v.status), ("timeout", GatewayStatus::Timeout));
    assert_eq!(v.error.as_deref(), Some("health RPC timed out"));
}

#[test]
fn a_probe_of_a_disconnected_link_says_why_it_is_not_connected() {
    let (mut m, now) = machine(None);
    m.begin_connect();
    m.fail(LinkFailure::network("connection refused"), now, MID);
    let v = m.probed(
        HttpHealth::Answered(Duration::from_millis(3)),
        RpcHealth::NotAsked,
        now,
        UNIX,
    );
    assert!(!v.healthy && !v.connected);
    assert_eq!(
        v.error.as_deref(),
        Some("not connected: connection refused")
    );
}

#[test]
fn failed_probes_open_the_breaker() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let failed = || HttpHealth::Failed {
        timed_out: false,
        message: "HTTP /health answered 500".into(),
    };
    let opened: Vec<bool> = (0..3)
        .map(|_| {
            m.probed(failed(), RpcHealth::NotAsked, now, UNIX)
                .breaker_opened
        })
        .collect();
    assert_eq!(opened, [false, false, true]);
    assert_eq!(m.status(), GatewayStatus::Offline);
}

#[test]
fn a_gateway_that_reports_itself_unhealthy_is_degraded() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let v = m.probed(
        HttpHealth::Answered(Duration::from_millis(3)),
        RpcHealth::Answered(json!({"ok": false})),
        now,
        UNIX,
    );
    assert!(!v.healthy);
    assert_eq!(v.status, GatewayStatus::Degraded);
}

#[test]
fn the_probe_reports_uptime_from_the_hello_snapshot_onwards() {
    let (mut m, now) = machine(None);
    handshake(&mut m, now);
    let mut hello = real_hello();
    hello["snapshot"]["uptimeMs"] = json!(1000);
    m.hello(Some(hello), now, UNIX, MID);
    let v = m.probed(
        HttpHealth::Answered(Duration::from_millis(3)),
        RpcHealth::NotAsked,
        now + secs(2),
        UNIX,
    );
    assert_eq!(v.uptime_ms, Some(3000));
}

// ---- what the registry is told --------------------------------------------------------------

#[test]
fn the_report_key_changes_with_what_the_registry_shows_and_not_with_latency() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let before = m.report_key();
    m.heartbeat(now, MID);
    m.ping_sent(now);
    m.pong(&1u64.to_be_bytes(), now + Duration::from_millis(5), UNIX);
    assert_eq!(m.report_key(), before);
    m.set_sessions_count(3);
    assert_ne!(m.report_key(), before);
}

#[test]
fn health_events_update_the_counts() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    m.apply_health(&json!({"ok": true, "sessions": {"count": 4}, "agents": [{"id": "main"}]}));
    let state = m.state(now);
    assert_eq!(
        (state.sessions_count, state.agents_count),
        (Some(4), Some(1))
    );
}

// ---- events ---------------------------------------------------------------------------------

#[test]
fn agent_status_is_passed_on_and_refreshes_the_session_cache() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let actions = m.event("agent.status", Some(json!({"agent": "main"})));
    assert!(matches!(
        &actions[..],
        [Action::Publish { kind: "agent.status", payload }, Action::RefreshSessionsSoon]
            if payload["agent"] == "main"
    ));
}

#[test]
fn session_changes_refresh_only_gateways_that_can_list_sessions() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    assert!(matches!(
        m.event("sessions.changed", None)[..],
        [Action::RefreshSessionsSoon]
    ));
    let (mut seed, now) = machine(None);
    handshake(&mut seed, now);
    let mut hello = real_hello();
    hello["features"]["methods"] = json!(["health", "spawn"]);
    seed.hello(Some(hello), now, UNIX, MID);
    assert!(seed.event("sessions.changed", None).is_empty());
}

#[test]
fn a_seed_tick_with_sessions_is_a_session_snapshot_and_a_plain_tick_is_nothing() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let tick = capture("tick_and_ping.json");
    let plain = at(&tick, &["ticks", "0", "payload"]);
    assert!(m.event("tick", Some(plain)).is_empty());
    let actions = m.event("tick", Some(json!({"sessions": []})));
    assert!(matches!(&actions[..], [Action::PublishSessions(_)]));
}

#[test]
fn a_health_event_updates_the_counts_and_is_reported() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let actions = m.event(
        "health",
        Some(json!({"ok": true, "sessions": {"count": 2}})),
    );
    assert!(matches!(actions[..], [Action::Report]));
    assert_eq!(m.state(now).sessions_count, Some(2));
}

#[test]
fn logs_and_spawn_results_are_passed_on_and_unknown_events_ignored() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    assert!(matches!(
        m.event("log", Some(json!({"message": "hi"})))[..],
        [Action::Publish { kind: "log", .. }]
    ));
    assert!(matches!(
        m.event("spawn_result", None)[..],
        [Action::Publish {
            kind: "gateway.spawn_result",
            ..
        }]
    ));
    assert!(m.event("presence", Some(json!({}))).is_empty());
}
