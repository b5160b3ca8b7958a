//! Probes, stale inputs and stopping.

use super::*;

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
            let probe = Input::Probed {
                http: failed(),
                rpc: RpcHealth::NotAsked,
            };
            let actions = m.input(probe, now, UNIX, MID);
            noted(&actions, |n| *n == Note::BreakerOpenedByProbes)
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

#[test]
fn a_failing_http_health_while_the_socket_and_rpc_answer_degrades_without_tripping_the_breaker() {
    // openclaw 2026.3.31 answers every HTTP path with 500 while its WebSocket works.
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    for _ in 0..5 {
        let v = m.probed(
            HttpHealth::Failed {
                timed_out: false,
                message: "HTTP /health answered 500 Internal Server Error".into(),
            },
            RpcHealth::Answered(json!({"ok": true})),
            now,
            UNIX,
        );
        assert!(v.healthy, "the socket and the RPC are the truth");
        assert_eq!(v.status, GatewayStatus::Degraded);
        assert!(v.error.as_deref().unwrap().contains("500"));
    }
    let state = m.state(now);
    assert_eq!(state.breaker.consecutive_failures, 0);
    assert_eq!(state.breaker.state, BreakerState::Closed);
    assert!(state.connection.probe_error.unwrap().contains("500"));
    // HTTP comes back: online, and the probe error is gone.
    let v = m.probed(
        HttpHealth::Answered(Duration::from_millis(3)),
        RpcHealth::Answered(json!({"ok": true})),
        now,
        UNIX,
    );
    assert_eq!(v.status, GatewayStatus::Online);
    assert_eq!(m.state(now).connection.probe_error, None);
}

#[test]
fn an_html_page_for_health_measures_nothing() {
    // Releases before 2026.3 answer /health with their Control UI page.
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let v = m.probed(
        HttpHealth::NoEndpoint,
        RpcHealth::Answered(json!({"ok": true})),
        now,
        UNIX,
    );
    assert!(v.healthy);
    assert_eq!(v.status, GatewayStatus::Online);
    assert_eq!(v.error, None);
}

#[test]
fn a_failing_http_health_of_a_link_that_is_down_still_counts() {
    let (mut m, now) = machine(None);
    m.begin_connect();
    m.fail(LinkFailure::network("refused"), now, MID);
    let v = m.probed(
        HttpHealth::Failed {
            timed_out: false,
            message: "HTTP /health answered 500 Internal Server Error".into(),
        },
        RpcHealth::NotAsked,
        now,
        UNIX,
    );
    assert!(!v.healthy);
    assert!(v.error.unwrap().contains("500"));
}
