//! The one door: timers and callbacks of a connection that is gone change nothing, frames go
//! where their phase says, and what the shell must resolve or measure comes out as actions.

use super::*;

#[test]
fn a_reconnect_timer_of_an_earlier_connection_does_not_dial() {
    let (mut m, now) = machine(None);
    refused_dials(&mut m, 1, now);
    let stale = m.generation();
    m.begin_connect();
    m.fail(LinkFailure::network("refused"), now, MID);
    let actions = m.input(
        Input::Dial {
            generation: Some(stale),
        },
        now,
        UNIX,
        MID,
    );
    assert!(actions.is_empty(), "{actions:?}");
    let current = Some(m.generation());
    let actions = m.input(
        Input::Dial {
            generation: current,
        },
        now,
        UNIX,
        MID,
    );
    assert!(matches!(
        actions[..],
        [
            Action::Report,
            Action::Dial {
                reconnect: true,
                ..
            }
        ]
    ));
}

#[test]
fn a_handshake_deadline_fails_only_the_handshake_it_was_armed_for() {
    let (mut m, now) = machine(None);
    let (first, _) = m.begin_connect();
    m.socket_opened(now);
    m.fail(LinkFailure::network("reset"), now, MID);
    m.begin_connect();
    m.socket_opened(now);
    let late = m.input(
        Input::HandshakeDeadline { generation: first },
        now,
        UNIX,
        MID,
    );
    assert!(late.is_empty(), "{late:?}");
    let generation = m.generation();
    let due = m.input(Input::HandshakeDeadline { generation }, now, UNIX, MID);
    assert_eq!(m.phase(), LinkPhase::Backoff, "{due:?}");
    assert_eq!(last_error_code(&m, now).as_deref(), Some("TIMEOUT"));
}

#[test]
fn a_heartbeat_of_an_earlier_connection_does_nothing_and_arms_nothing() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let old = m.generation();
    m.fail(LinkFailure::network("reset"), now, MID);
    connect(&mut m, now);
    let actions = m.input(Input::Heartbeat { generation: old }, now, UNIX, MID);
    assert!(actions.is_empty(), "{actions:?}");
}

#[test]
fn a_response_on_a_connected_link_goes_to_its_caller() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let frame = at(&capture("rpc.json"), &["results", "0", "response"]);
    let frame: Frame = serde_json::from_value(frame).expect("the captured health response");
    let actions = m.input(Input::Frame(frame), now, UNIX, MID);
    assert!(
        matches!(
            &actions[..],
            [Action::Resolve {
                ok: true,
                payload: Some(_),
                ..
            }]
        ),
        "{actions:?}"
    );
}

#[test]
fn a_request_from_the_gateway_is_ignored_and_noted_bounded() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let method = "x".repeat(10_000);
    let frame: Frame =
        serde_json::from_value(json!({"type": "req", "id": "1", "method": method})).unwrap();
    let actions = m.input(Input::Frame(frame), now, UNIX, MID);
    match &actions[..] {
        [Action::Log(Note::IgnoredRequest { method })] => assert!(method.len() < 1000),
        other => panic!("{other:?}"),
    }
    assert_eq!(m.phase(), LinkPhase::Connected);
}

#[test]
fn a_pong_to_our_ping_is_measured_and_reported() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let [Action::SendPing(ping)] = &m.heartbeat(now, MID)[..] else {
        panic!("a ping");
    };
    let later = now + Duration::from_millis(7);
    let actions = m.input(Input::Pong(ping.clone()), later, UNIX + 1, MID);
    assert!(matches!(
        actions[..],
        [Action::RoundTrip(rtt), Action::Report] if rtt == Duration::from_millis(7)
    ));
    assert_eq!((m.latency_ms(), m.last_seen()), (Some(7), Some(UNIX + 1)));
}

#[test]
fn what_the_pump_heard_on_a_link_not_connected_changes_nothing() {
    let (mut m, now) = machine(None);
    m.begin_connect();
    m.socket_opened(now);
    let heard = Heard {
        frame_at: Some(now),
        pinged_at: Some(UNIX),
        quiet: 2,
        pinged_since: true,
    };
    assert!(m.heard(heard, now).is_empty());
    assert_eq!(m.last_seen(), None);
    assert_eq!(m.pump_orders(secs(30)), PumpOrders::default());
}

/// 2026.9.6 says a run ended in its `agent` lifecycle and `chat` events (captured from a real
/// run): the session cache hears it at once, since a gateway holding a suspension refuses the
/// `sessions.list` that would tell it later.
#[test]
fn a_run_the_gateway_says_ended_is_passed_on_for_its_session() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let events = at(&capture("run_lifecycle.json"), &["events"]);
    let mut ended = Vec::new();
    for e in events.as_array().expect("the captured events") {
        let frame = frame_of(e).expect("a captured frame");
        for a in m.input(Input::Frame(frame), now, UNIX, MID) {
            if let Action::RunEnded(key) = a {
                ended.push(key);
            }
        }
    }
    let key = "agent:main:dashboard:cd2f2b93-b07a-44a7-9aff-9ab2bfe66498";
    assert!(!ended.is_empty(), "no run end heard");
    assert!(ended.iter().all(|k| k == key), "{ended:?}");
}
