//! The handshake: dial, upgrade, challenge, `hello-ok`.

use super::*;

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
    assert_eq!(plan.request_id, "connect-1");
    // A response under another id is not the answer to it.
    let other = Frame::Res {
        id: "r1".into(),
        ok: true,
        payload: Some(real_hello()),
        error: None,
    };
    let actions = m.input(Input::Frame(other), now, UNIX, MID);
    assert!(
        matches!(&actions[..], [Action::Log(Note::UnexpectedFrame { .. })]),
        "{actions:?}"
    );
    assert_eq!(m.phase(), LinkPhase::Handshaking);
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
    for payload in [Some(json!({"ts": 1})), None] {
        let (mut m, now) = machine(None);
        m.begin_connect();
        m.socket_opened(now);
        let err = m.challenge(payload).unwrap_err();
        assert_eq!(err.code, "PROTOCOL_ERROR");
        assert_eq!(m.phase(), LinkPhase::Backoff);
    }
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
fn calls_fenced_to_a_process_go_only_to_the_one_the_real_hello_named() {
    let (mut m, now) = machine(None);
    // Before a handshake there is no process to act on.
    assert!(matches!(
        m.fence(Some("22fc61c4-c7fb-4c05-99b0-34aebd6d091f")),
        Err(CallError::NotConnected)
    ));
    connect(&mut m, now);
    // The real 2026.9.6 hello names its process.
    assert_eq!(m.boot_id(), Some("22fc61c4-c7fb-4c05-99b0-34aebd6d091f"));
    assert_eq!(
        m.state(now).connection.build_id.as_deref(),
        Some("2026.9.6-release-eb377ac59e6c-2026-09-23T16-33-12.144Z")
    );
    assert!(
        m.fence(Some("22fc61c4-c7fb-4c05-99b0-34aebd6d091f"))
            .is_ok()
    );
    assert!(m.fence(None).is_ok(), "no condition");
    match m.fence(Some("another-boot")) {
        Err(CallError::AnotherProcess { expected, now }) => {
            assert_eq!(expected, "another-boot");
            assert_eq!(now.as_deref(), Some("22fc61c4-c7fb-4c05-99b0-34aebd6d091f"));
        }
        other => panic!("{other:?}"),
    }
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
            Action::ArmHeartbeat { first: true } => "heartbeat",
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

#[test]
fn a_link_answering_approvals_asks_for_the_approvals_cap_and_one_that_does_not_asks_for_none() {
    let identity = crate::protocol::device::DeviceIdentity::from_seed([3; 32]);
    let creds = crate::handshake::Credentials {
        token: None,
        device_token: None,
        dialer: None,
    };
    let connect = |answering: bool| -> Value {
        let (mut m, now) = machine(None);
        m.answering_approvals(answering);
        m.begin_connect();
        m.socket_opened(now);
        let plan = m
            .challenge(Some(real_challenge()))
            .expect("a real challenge");
        let text = plan.request(&identity, &creds, "0.1.0").unwrap();
        let frame: Value = serde_json::from_str(&text).unwrap();
        frame["params"].clone()
    };
    let asking = connect(true);
    assert_eq!(asking["caps"], json!(["approvals"]), "{asking}");
    let not = connect(false);
    assert!(not.get("caps").is_none(), "no caps sent: {not}");
    // The capability is not part of what the device signs: the same signature either way.
    assert_eq!(asking["device"]["signature"], not["device"]["signature"]);
}
