//! A connected link: keepalive, requests, events, and what the registry is told.

use super::*;
use crate::events::EventKind;

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

/// A gateway that pings (2026.9 every 25 s) keeps the socket checked itself: heartbeats send
/// nothing, and the round trip is measured at once and then once per [`RTT_EVERY_HEARTBEATS`]
/// heartbeats, by a ping that leaves with the pong to the gateway's next ping.
#[test]
fn a_gateway_that_pings_gets_our_ping_only_for_the_round_trip() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    // One cycle: the gateway pings (the shell answers), and our ping goes out behind the
    // pong if it is due, answered at once; then our heartbeat, which sends nothing.
    let cycle = |m: &mut LinkMachine| {
        let with_pong = m.gateway_pinged(now, UNIX + 5);
        let ours = match &with_pong[..] {
            [] => None,
            [Action::SendPing(_)] => {
                m.pong(&1u64.to_be_bytes(), now, UNIX + 6);
                Some(())
            }
            other => panic!("{other:?}"),
        };
        let heartbeat = m.heartbeat(now, MID);
        assert!(heartbeat.is_empty(), "{heartbeat:?}");
        ours
    };
    let pinged: Vec<usize> = (0..25).filter(|_| cycle(&mut m).is_some()).collect();
    // The gateway's first ping carries it; then every tenth.
    assert_eq!(pinged, [0, 10, 20]);
    // The gateway's last ping (cycle 24) is the latest sign of life.
    assert_eq!(m.last_seen(), Some(UNIX + 5));
    assert_eq!(m.latency_ms(), Some(0));
    // A heartbeat with no gateway ping since the last one pings at once.
    assert!(matches!(m.heartbeat(now, MID)[..], [Action::SendPing(_)]));
}

/// A new link's round trip is measured at once, so its latency is known within the gateway's
/// ping interval or a heartbeat, whichever is first: it rides the pong to the gateway's first
/// ping, or goes out at the first heartbeat if the gateway has not pinged by then.
#[test]
fn a_new_link_measures_the_round_trip_at_the_first_chance() {
    for gateway_first in [true, false] {
        let (mut m, now) = machine(None);
        connect(&mut m, now);
        let actions = if gateway_first {
            m.gateway_pinged(now, UNIX)
        } else {
            m.heartbeat(now, MID)
        };
        assert!(
            matches!(actions[..], [Action::SendPing(_)]),
            "{gateway_first}: {actions:?}"
        );
    }
}

/// A connected machine whose first round trip rode the gateway's first ping and was answered.
fn with_round_trip_measured() -> (LinkMachine, Instant) {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    assert!(matches!(
        m.gateway_pinged(now, UNIX)[..],
        [Action::SendPing(_)]
    ));
    m.pong(&1u64.to_be_bytes(), now, UNIX);
    (m, now)
}

/// A round trip that fell due is not held back when the gateway stops pinging: the next
/// heartbeat without a gateway ping sends it.
#[test]
fn a_due_round_trip_goes_out_at_the_next_heartbeat_if_the_gateway_stops_pinging() {
    let (mut m, now) = with_round_trip_measured();
    for _ in 0..RTT_EVERY_HEARTBEATS {
        assert!(m.gateway_pinged(now, UNIX).is_empty());
        assert!(m.heartbeat(now, MID).is_empty());
    }
    // Due now, waiting for a pong to ride; the gateway does not ping again.
    assert!(matches!(m.heartbeat(now, MID)[..], [Action::SendPing(_)]));
}

#[test]
fn a_gateway_ping_counts_as_being_seen() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    m.gateway_pinged(now, UNIX + 30);
    assert_eq!(m.last_seen(), Some(UNIX + 30));
}

/// Our unanswered ping is counted as missed whether or not the gateway pings: it answers
/// pings by itself, so a missing pong means the socket or the process is wedged.
#[test]
fn an_outstanding_ping_is_repeated_and_counted_though_the_gateway_pings() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    m.heartbeat(now, MID);
    for _ in 0..2 {
        m.gateway_pinged(now, UNIX);
        assert!(matches!(m.heartbeat(now, MID)[..], [Action::SendPing(_)]));
    }
    m.gateway_pinged(now, UNIX);
    let actions = m.heartbeat(now, MID);
    assert!(noted(&actions, |n| *n == Note::NoPong { missed: 3 }));
}

#[test]
fn three_missed_pongs_take_the_link_down() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    m.heartbeat(now, MID);
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
    m.heartbeat(now, MID);
    assert_eq!(m.phase(), LinkPhase::Connected);
}

#[test]
fn a_pong_that_is_not_ours_is_ignored() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    assert_eq!(m.pong(&1u64.to_be_bytes(), now, UNIX), None);
    m.heartbeat(now, MID);
    assert_eq!(m.pong(b"short", now, UNIX), None);
}

#[test]
fn a_slow_pong_makes_the_gateway_degraded() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    m.heartbeat(now, MID);
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

// ---- what the registry is told --------------------------------------------------------------

#[test]
fn the_report_key_changes_with_what_the_registry_shows_and_not_with_latency() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let before = m.report_key();
    m.heartbeat(now, MID);
    m.pong(&1u64.to_be_bytes(), now + Duration::from_millis(5), UNIX);
    assert_eq!(m.report_key(), before);
    m.sessions_listed(json!({"sessions": [], "totalCount": 3}));
    assert_ne!(m.report_key(), before);
}

#[test]
fn health_events_update_the_counts() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    m.event(
        "health",
        Some(json!({"ok": true, "sessions": {"count": 4}, "agents": [{"id": "main"}]})),
    );
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
        [Action::Publish { kind: EventKind::AgentStatus, payload }, Action::RefreshSessionsSoon]
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

/// The frames the socket's pump keeps from the machine are exactly those the machine would do
/// nothing with: a real gateway's tick (captured), with or without a payload. A seed tick
/// with sessions, and every other event, reach the machine.
#[test]
fn only_a_tick_that_does_nothing_is_kept_from_the_machine() {
    use crate::protocol::frames::Frame;
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let event = |event: &str, payload: Option<Value>| {
        let frame = json!({"type": "event", "event": event, "payload": payload});
        Frame::parse(&frame.to_string()).unwrap()
    };
    let tick = capture("tick_and_ping.json");
    let real = at(&tick, &["ticks", "0", "payload"]);
    for payload in [Some(real), None] {
        assert!(is_pulse_only(&event("tick", payload.clone())));
        assert!(m.event("tick", payload).is_empty());
    }
    let seed = Some(json!({"sessions": []}));
    assert!(!is_pulse_only(&event("tick", seed.clone())));
    assert!(!m.event("tick", seed).is_empty());
    for other in ["health", "agent.status", "shutdown", "log"] {
        assert!(!is_pulse_only(&event(other, Some(json!({})))), "{other}");
    }
    let res = Frame::parse(r#"{"type":"res","id":"1","ok":true}"#).unwrap();
    assert!(!is_pulse_only(&res));
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
        [Action::Publish {
            kind: EventKind::Log,
            ..
        }]
    ));
    assert!(matches!(
        m.event("spawn_result", None)[..],
        [Action::Publish {
            kind: EventKind::GatewaySpawnResult,
            ..
        }]
    ));
    assert!(m.event("presence", Some(json!({}))).is_empty());
}

// ---- heartbeats passed without the machine (link/beats.rs) --------------------------------

const S30: Duration = Duration::from_secs(30);

/// The heartbeats the rounds take quietly keep the round trip on every tenth: the machine
/// allows all but the last before it, and the one after them is its own.
#[test]
fn quiet_heartbeats_keep_the_round_trip_on_every_tenth() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    assert!(matches!(
        m.gateway_pinged(now, UNIX)[..],
        [Action::SendPing(_)]
    ));
    assert_eq!(
        m.quiet_heartbeats(S30),
        0,
        "a ping of ours waits for its pong"
    );
    m.pong(&1u64.to_be_bytes(), now, UNIX);
    let quiet = m.quiet_heartbeats(S30);
    assert_eq!(quiet, RTT_EVERY_HEARTBEATS - 1);
    m.heartbeats_passed(quiet, true);
    assert_eq!(m.quiet_heartbeats(S30), 0, "the last one is the machine's");
    assert!(
        m.heartbeat(now, MID).is_empty(),
        "vouched for by the ping after them"
    );
    assert!(
        matches!(m.gateway_pinged(now, UNIX + 300)[..], [Action::SendPing(_)]),
        "the round trip rides the next gateway ping, as without quiet heartbeats"
    );
}

/// A gateway ping the quiet heartbeats already counted does not vouch for the machine's next
/// one: a gateway that stopped pinging gets our ping at once.
#[test]
fn a_ping_spent_on_a_quiet_heartbeat_does_not_vouch_again() {
    let (mut m, now) = with_round_trip_measured();
    // The shell's order: the latest ping, then the heartbeats that passed.
    m.gateway_pinged(now, UNIX + 25);
    m.heartbeats_passed(1, false);
    assert_eq!(m.last_seen(), Some(UNIX + 25));
    assert!(matches!(m.heartbeat(now, MID)[..], [Action::SendPing(_)]));
}

/// No heartbeat passes without the machine unless a gateway ping proves as much as it would:
/// not before the link is up, not while our ping waits, not when the heartbeat comes less
/// often than the silence it fails on (twice the gateway's tick, 30 s from the real hello).
#[test]
fn no_quiet_heartbeats_where_one_could_decide_something() {
    let (m, _) = machine(None);
    assert_eq!(m.quiet_heartbeats(S30), 0, "not connected");
    let (mut m, now) = with_round_trip_measured();
    assert_eq!(m.quiet_heartbeats(Duration::from_secs(60)), 9);
    assert_eq!(m.quiet_heartbeats(Duration::from_secs(61)), 0);
    assert!(
        m.heartbeat(now, MID).is_empty(),
        "vouched for by the gateway's ping"
    );
    assert!(
        matches!(m.heartbeat(now, MID)[..], [Action::SendPing(_)]),
        "not vouched: pings"
    );
    assert_eq!(m.quiet_heartbeats(S30), 0, "our ping waits for its pong");
    m.stop();
    assert_eq!(m.quiet_heartbeats(S30), 0, "stopped");
}

/// A held suspension refuses `sessions.list`; the run it started meanwhile would stay out of
/// the cache for good. The list is asked again, 1 s after the first failure, doubling to 30 s,
/// afresh after a list arrives and on every new connection.
#[test]
fn a_failed_session_list_is_asked_again_with_backoff_until_one_arrives() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let delays: Vec<u64> = (0..8)
        .map(|_| m.sessions_list_failed().unwrap().as_secs())
        .collect();
    assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
    m.sessions_listed(json!({"sessions": []}));
    assert_eq!(m.sessions_list_failed(), Some(Duration::from_secs(1)));
    m.sessions_list_failed();
    m.stop();
    connect(&mut m, now);
    assert_eq!(
        m.sessions_list_failed(),
        Some(Duration::from_secs(1)),
        "a new connection starts afresh"
    );
}

#[test]
fn the_gateway_s_own_suspension_phase_is_shown_from_its_hello_and_its_events() {
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    // The captured 2026.9.6 hello says `snapshot.suspension.phase: accepting`.
    assert_eq!(m.state(now).connection.suspension, Some("accepting"));
    let before = m.report_key();
    let actions = m.event("gateway.suspension", Some(json!({"phase": "draining"})));
    assert!(
        actions.iter().any(|a| matches!(a, Action::Report)),
        "{actions:?}"
    );
    assert_eq!(m.state(now).connection.suspension, Some("draining"));
    assert_ne!(m.report_key(), before, "the registry is told");
    assert!(
        m.event("gateway.suspension", Some(json!({"phase": "draining"})))
            .is_empty(),
        "the same phase again changes nothing"
    );
    assert!(
        m.event("gateway.suspension", Some(json!({"phase": "sideways"})))
            .is_empty(),
        "a phase it does not know is not shown"
    );
    let back = m.event("gateway.suspension", Some(json!({"phase": "accepting"})));
    assert!(
        back.iter()
            .any(|a| matches!(a, Action::RefreshSessionsSoon)),
        "the list it refused while suspended is read again: {back:?}"
    );
}

fn approval_client(answering: bool) -> (LinkMachine, Vec<Action>) {
    let (mut m, now) = machine(None);
    m.answering_approvals(answering);
    let actions = connect(&mut m, now);
    (m, actions)
}

fn approval_news(actions: &[Action]) -> Vec<crate::protocol::approvals::ApprovalNews> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Approvals(news) => Some(news.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn an_approval_client_tells_the_inbox_which_process_it_reached() {
    use crate::protocol::approvals::ApprovalNews;
    let (_, actions) = approval_client(true);
    let boot_id = real_hello()["server"]["bootId"].as_str().map(str::to_owned);
    assert_eq!(
        approval_news(&actions),
        vec![ApprovalNews::Connected { boot_id }]
    );
    let (_, actions) = approval_client(false);
    assert!(approval_news(&actions).is_empty());
}

#[test]
fn approval_events_reach_the_inbox_only_on_a_link_that_answers_approvals() {
    let events = capture("approvals_events.json");
    for name in [
        "exec.approval.requested",
        "exec.approval.resolved",
        "plugin.approval.requested",
        "plugin.approval.resolved",
    ] {
        let frame = at(&events, &[&format!("{name} (approval client)")]);
        let (mut m, _) = approval_client(true);
        let heard = m.event(name, Some(frame["payload"].clone()));
        assert_eq!(approval_news(&heard).len(), 1, "{name}: {heard:?}");
        let (mut m, _) = approval_client(false);
        assert!(
            m.event(name, Some(frame["payload"].clone())).is_empty(),
            "{name}"
        );
    }
}

#[test]
fn a_config_change_the_gateway_announces_is_passed_on_without_the_file_s_path() {
    let text = include_str!("../../../../testdata/openclaw-captures/2026.9.6/config_patch.json");
    let capture: Value = serde_json::from_str(text).unwrap();
    let frame = capture["results"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|r| r.get("event").filter(|e| e["event"] == "config.changed"))
        .expect("a captured config.changed")
        .clone();
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let actions = m.event("config.changed", Some(frame["payload"].clone()));
    let [Action::Publish { kind, payload }] = &actions[..] else {
        panic!("{actions:?}");
    };
    assert_eq!(*kind, EventKind::GatewayConfigChanged);
    assert_eq!(
        *payload,
        json!({"hash": frame["payload"]["hash"], "ts": frame["payload"]["ts"]})
    );
}

#[test]
fn a_cron_change_is_passed_on_as_its_job_action_and_times_only() {
    let text = include_str!("../../../../testdata/openclaw-captures/2026.9.6/cron_events.json");
    let capture: Value = serde_json::from_str(text).unwrap();
    let events = capture["events"].as_array().unwrap();
    let finished = events
        .iter()
        .find(|e| e["payload"]["action"] == "finished")
        .expect("a captured finished run");
    let (mut m, now) = machine(None);
    connect(&mut m, now);
    let actions = m.event("cron", Some(finished["payload"].clone()));
    let [Action::Publish { kind, payload }] = &actions[..] else {
        panic!("{actions:?}");
    };
    assert_eq!(*kind, EventKind::GatewayCron);
    let p = &finished["payload"];
    assert_eq!(
        *payload,
        json!({"job_id": p["jobId"], "action": "finished", "status": p["status"],
               "run_at_ms": p["runAtMs"], "duration_ms": p["durationMs"],
               "next_run_at_ms": p["nextRunAtMs"]})
    );
    // Every captured event: its job's definition (its prompt) never passed on.
    for e in events {
        let actions = m.event("cron", Some(e["payload"].clone()));
        let [Action::Publish { payload, .. }] = &actions[..] else {
            panic!("{actions:?}");
        };
        assert!(!payload.to_string().contains("say pong"), "{payload}");
        assert_eq!(payload["job_id"], e["payload"]["jobId"]);
    }
    // A hostile status is bounded and escaped.
    let actions = m.event(
        "cron",
        Some(json!({"jobId": "j1", "action": "finished",
                    "status": format!("ok\u{1b}[2J{}", "x".repeat(5000))})),
    );
    let [Action::Publish { payload, .. }] = &actions[..] else {
        panic!("{actions:?}");
    };
    let status = payload["status"].as_str().unwrap();
    assert!(status.len() < 100 && !status.contains('\u{1b}'), "{status}");
    // An action it does not know, an id that is no id: said as such.
    let actions = m.event("cron", Some(json!({"jobId": "a\nb", "action": "exploded"})));
    let [Action::Publish { payload, .. }] = &actions[..] else {
        panic!("{actions:?}");
    };
    assert_eq!(payload["action"], "other");
    assert!(payload["job_id"].is_null());
}
