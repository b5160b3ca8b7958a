use super::*;

const T: Thresholds = Thresholds {
    offline_after: Duration::from_secs(60),
    all_down_after: Duration::from_secs(30),
    damping: Duration::from_secs(600),
};

fn gw(id: GatewayId, status: GatewayStatus) -> GatewayFact {
    GatewayFact {
        id,
        name: format!("g{id}"),
        status,
        connected: status == GatewayStatus::Online,
        breaker_open: false,
        maintenance: false,
    }
}

fn kinds(alerts: &[Alert]) -> Vec<(AlertKind, AlertState, Option<GatewayId>)> {
    alerts
        .iter()
        .map(|a| (a.kind, a.state, a.gateway_id))
        .collect()
}

use AlertKind::*;
use AlertState::*;
use GatewayStatus::{Offline, Online};

#[test]
fn a_gateway_offline_longer_than_offline_after_fires_once_then_resolves() {
    let mut w = Watch::default();
    let t0 = Instant::now();
    let fleet = |s| vec![gw(GatewayId(1), s), gw(GatewayId(2), Online)];
    assert!(
        w.observe(t0, &fleet(Online), Some(GatewayId(2)), &T)
            .is_empty()
    );
    assert!(
        w.observe(
            t0 + Duration::from_secs(1),
            &fleet(Offline),
            Some(GatewayId(2)),
            &T
        )
        .is_empty()
    );
    assert!(
        w.observe(
            t0 + Duration::from_secs(50),
            &fleet(Offline),
            Some(GatewayId(2)),
            &T
        )
        .is_empty(),
        "not yet offline_after"
    );
    let fired = w.observe(
        t0 + Duration::from_secs(62),
        &fleet(Offline),
        Some(GatewayId(2)),
        &T,
    );
    assert_eq!(
        kinds(&fired),
        [(GatewayOffline, Firing, Some(GatewayId(1)))]
    );
    assert!(
        fired[0].summary.contains("offline for 1m"),
        "{}",
        fired[0].summary
    );
    assert!(
        w.observe(
            t0 + Duration::from_secs(90),
            &fleet(Offline),
            Some(GatewayId(2)),
            &T
        )
        .is_empty(),
        "once"
    );
    let back = w.observe(
        t0 + Duration::from_secs(100),
        &fleet(Online),
        Some(GatewayId(2)),
        &T,
    );
    assert_eq!(
        kinds(&back),
        [(GatewayOffline, Resolved, Some(GatewayId(1)))]
    );
}

#[test]
fn a_bouncing_gateway_sends_one_alert_until_it_stays_down_past_the_window() {
    let mut w = Watch::default();
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let fleet = |s| vec![gw(GatewayId(1), s), gw(GatewayId(2), Online)];
    let mut sent = Vec::new();
    // Down 2 min, up, down 2 min, up, ... within the damping window.
    for (start, status) in [
        (0, Offline),
        (120, Online),
        (130, Offline),
        (250, Online),
        (260, Offline),
        (380, Online),
    ] {
        for s in (start..start + 10).step_by(5) {
            sent.extend(w.observe(at(s), &fleet(status), Some(GatewayId(2)), &T));
        }
        if status == Offline {
            sent.extend(w.observe(at(start + 70), &fleet(status), Some(GatewayId(2)), &T));
        }
    }
    assert_eq!(
        kinds(&sent),
        [
            (GatewayOffline, Firing, Some(GatewayId(1))),
            (GatewayOffline, Resolved, Some(GatewayId(1)))
        ],
        "one alert (and its resolve) for the whole bouncing"
    );
    assert_eq!(w.suppressed, 2);
    // Down for good: once the window has passed, it fires again.
    sent.clear();
    for s in (700..800).step_by(10) {
        sent.extend(w.observe(at(s), &fleet(Offline), Some(GatewayId(2)), &T));
    }
    assert_eq!(kinds(&sent), [(GatewayOffline, Firing, Some(GatewayId(1)))]);
}

#[test]
fn a_breaker_open_fires_at_once_and_resolves_when_it_closes() {
    let mut w = Watch::default();
    let t0 = Instant::now();
    let mut g = gw(GatewayId(1), Offline);
    g.breaker_open = true;
    let fired = w.observe(t0, &[g.clone()], Some(GatewayId(1)), &T);
    assert_eq!(kinds(&fired), [(BreakerOpen, Firing, Some(GatewayId(1)))]);
    g.breaker_open = false;
    g.status = Online;
    g.connected = true;
    assert_eq!(
        kinds(&w.observe(t0 + Duration::from_secs(5), &[g], Some(GatewayId(1)), &T)),
        [(BreakerOpen, Resolved, Some(GatewayId(1)))]
    );
}

#[test]
fn all_gateways_down_fires_after_its_grace_and_not_for_an_empty_fleet() {
    let mut w = Watch::default();
    let t0 = Instant::now();
    assert!(w.observe(t0, &[], None, &T).is_empty());
    let down = [
        gw(GatewayId(1), Offline),
        gw(GatewayId(2), GatewayStatus::Unknown),
    ];
    assert!(
        w.observe(t0, &down, None, &T).is_empty(),
        "a starting daemon: not yet"
    );
    let fired = w.observe(t0 + Duration::from_secs(31), &down, None, &T);
    assert_eq!(kinds(&fired), [(AllGatewaysDown, Firing, None)]);
    let back = w.observe(
        t0 + Duration::from_secs(40),
        &[gw(GatewayId(1), Online), gw(GatewayId(2), Offline)],
        Some(GatewayId(1)),
        &T,
    );
    assert!(
        kinds(&back).contains(&(AllGatewaysDown, Resolved, None)),
        "{back:?}"
    );
}

#[test]
fn a_new_acting_primary_is_announced_and_a_flapping_role_once() {
    let mut w = Watch::default();
    let t0 = Instant::now();
    let fleet = [gw(GatewayId(1), Online), gw(GatewayId(2), Online)];
    assert!(
        w.observe(t0, &fleet, Some(GatewayId(1)), &T).is_empty(),
        "the first look is the baseline"
    );
    let moved = w.observe(t0 + Duration::from_secs(1), &fleet, Some(GatewayId(2)), &T);
    assert_eq!(kinds(&moved), [(PrimaryChanged, Firing, None)]);
    assert!(
        moved[0].summary.contains("`g1` → `g2`"),
        "{}",
        moved[0].summary
    );
    assert!(
        w.observe(t0 + Duration::from_secs(2), &fleet, Some(GatewayId(1)), &T)
            .is_empty(),
        "damped"
    );
    let later = w.observe(
        t0 + Duration::from_secs(700),
        &fleet,
        Some(GatewayId(2)),
        &T,
    );
    assert_eq!(kinds(&later), [(PrimaryChanged, Firing, None)]);
}

#[test]
fn a_deleted_gateway_s_alert_is_resolved() {
    let mut w = Watch::default();
    let t0 = Instant::now();
    w.observe(
        t0,
        &[gw(GatewayId(1), Offline), gw(GatewayId(2), Online)],
        Some(GatewayId(2)),
        &T,
    );
    let fired = w.observe(
        t0 + Duration::from_secs(61),
        &[gw(GatewayId(1), Offline), gw(GatewayId(2), Online)],
        Some(GatewayId(2)),
        &T,
    );
    assert_eq!(fired.len(), 1);
    let gone = w.observe(
        t0 + Duration::from_secs(62),
        &[gw(GatewayId(2), Online)],
        Some(GatewayId(2)),
        &T,
    );
    assert_eq!(
        kinds(&gone),
        [(GatewayOffline, Resolved, Some(GatewayId(1)))]
    );
}

#[test]
fn an_unrecovered_session_alerts_once_and_its_recovery_resolves_it() {
    let mut w = Watch::default();
    let g: GatewayId = GatewayId(7);
    let fired = w.session(g, "agent:main:main", true, json!({}));
    assert_eq!(
        fired.map(|a| (a.kind, a.state)),
        Some((SessionStalled, Firing))
    );
    // Said again: nothing more.
    assert!(w.session(g, "agent:main:main", true, json!({})).is_none());
    // A session recovered before it was ever alerted resolves nothing.
    assert!(w.session(g, "agent:main:other", false, json!({})).is_none());
    let resolved = w.session(g, "agent:main:main", false, json!({}));
    assert_eq!(
        resolved.map(|a| (a.kind, a.state)),
        Some((SessionStalled, Resolved))
    );
}

#[test]
fn an_escalated_approval_fires_once_with_what_to_answer_and_resolves_when_it_ends() {
    let approval = approval_event(json!({"id": "a1", "gateway_id": 3, "kind": "exec",
        "agent_id": "main", "command": "rm -rf /srv/cache", "status": "pending",
        "escalated_at_ms": 5}));
    let fired = Watch::approval(true, &approval).unwrap();
    assert_eq!(
        (fired.kind, fired.state, fired.gateway_id),
        (ApprovalUnanswered, Firing, Some(GatewayId(3)))
    );
    assert!(
        fired.summary.contains("rm -rf /srv/cache"),
        "{}",
        fired.summary
    );
    assert_eq!(
        fired.details["console"],
        "/console/#/approvals?gateway_id=3"
    );
    let mut ended = approval.clone();
    ended.status = crate::domain::approval::ApprovalStatus::Denied;
    let resolved = Watch::approval(false, &ended).unwrap();
    assert_eq!(resolved.state, Resolved);
    // One never escalated ends without an alert.
    ended.escalated_at_ms = None;
    assert_eq!(Watch::approval(false, &ended), None);
}

#[test]
fn a_gateway_in_maintenance_is_not_alerted_about_and_its_downtime_counts_from_the_window_s_end() {
    let mut w = Watch::default();
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let resting = |status| GatewayFact {
        maintenance: true,
        ..gw(GatewayId(1), status)
    };
    assert!(
        w.observe(
            at(0),
            &[resting(Offline), gw(GatewayId(2), Online)],
            Some(GatewayId(2)),
            &T
        )
        .is_empty()
    );
    assert!(
        w.observe(
            at(600),
            &[resting(Offline), gw(GatewayId(2), Online)],
            Some(GatewayId(2)),
            &T
        )
        .is_empty(),
        "offline for 10 minutes in maintenance: nothing"
    );
    let open = GatewayFact {
        breaker_open: true,
        ..resting(Offline)
    };
    assert!(
        w.observe(
            at(601),
            &[open, gw(GatewayId(2), Online)],
            Some(GatewayId(2)),
            &T
        )
        .is_empty(),
        "nor its breaker"
    );
    // The window ends with the gateway still down: offline_after counts from now.
    assert!(
        w.observe(
            at(602),
            &[gw(GatewayId(1), Offline), gw(GatewayId(2), Online)],
            Some(GatewayId(2)),
            &T
        )
        .is_empty()
    );
    let fired = w.observe(
        at(663),
        &[gw(GatewayId(1), Offline), gw(GatewayId(2), Online)],
        Some(GatewayId(2)),
        &T,
    );
    assert_eq!(
        kinds(&fired),
        [(GatewayOffline, Firing, Some(GatewayId(1)))]
    );
}

#[test]
fn gateways_in_maintenance_do_not_make_all_gateways_down() {
    let mut w = Watch::default();
    let t0 = Instant::now();
    let resting = GatewayFact {
        maintenance: true,
        ..gw(GatewayId(1), Online)
    };
    let fleet = [resting, gw(GatewayId(2), Offline)];
    w.observe(t0, &fleet, None, &T);
    let fired = w.observe(t0 + Duration::from_secs(600), &fleet, None, &T);
    let all: Vec<_> = kinds(&fired)
        .into_iter()
        .filter(|k| k.0 == AllGatewaysDown)
        .collect();
    assert_eq!(
        all,
        [(AllGatewaysDown, Firing, None)],
        "the one watched is down: {fired:?}"
    );
    let only_resting = [GatewayFact {
        maintenance: true,
        ..gw(GatewayId(1), Offline)
    }];
    let mut w = Watch::default();
    w.observe(t0, &only_resting, None, &T);
    assert!(
        w.observe(t0 + Duration::from_secs(600), &only_resting, None, &T)
            .is_empty()
    );
}

#[test]
fn a_managed_gateway_given_up_fires_once_and_resolves_when_it_runs_again() {
    let mut w = Watch::default();
    let failed =
        managed_event(json!({"state": "failed", "detail": "gave up after 5 crashes within 10m"}));
    let running = managed_event(json!({"state": "running", "detail": null}));
    assert_eq!(
        w.managed_gateway(Some(GatewayId(7)), &running),
        None,
        "running before failing is no news"
    );
    let fired = w
        .managed_gateway(Some(GatewayId(7)), &failed)
        .expect("fired");
    assert_eq!(fired.kind, AlertKind::ManagedGatewayFailed);
    assert_eq!(fired.state, AlertState::Firing);
    assert_eq!(
        fired.summary,
        "managed gateway 7 is not started again: gave up after 5 crashes within 10m"
    );
    assert_eq!(w.managed_gateway(Some(GatewayId(7)), &failed), None, "once");
    for other in ["starting", "backoff", "installing"] {
        assert_eq!(
            w.managed_gateway(Some(GatewayId(7)), &managed_event(json!({"state": other}))),
            None
        );
    }
    let resolved = w
        .managed_gateway(Some(GatewayId(7)), &running)
        .expect("resolved");
    assert_eq!(resolved.state, AlertState::Resolved);
    assert_eq!(w.managed_gateway(Some(GatewayId(7)), &running), None);
}

/// An `approval.*` event's payload as the inbox publishes it (the approval as the API shows
/// it), with `fields` over a pending exec approval, read back as the alerts read it.
fn approval_event(fields: serde_json::Value) -> crate::domain::approval::Approval {
    let mut payload = json!({"gateway_id": 1, "id": "a0", "kind": "exec", "status": "pending",
        "reason": null, "decision": null, "command": "", "warning": null, "severity": null,
        "agent_id": null, "session_key": null, "run_id": null, "host": null,
        "created_at_ms": 1, "expires_at_ms": 2, "resolved_at_ms": null, "resolved_by": null,
        "resolver_key_id": null, "resolver_label": null, "escalated_at_ms": null,
        "offered_decisions": ["allow-once", "allow-always", "deny"], "presented_whole": true});
    for (k, v) in fields.as_object().unwrap() {
        payload[k] = v.clone();
    }
    serde_json::from_value(payload).expect("an approval event reads back")
}

/// A `gateway.managed` event's payload with `fields` over a fresh process's.
fn managed_event(fields: serde_json::Value) -> crate::managed::state::ManagedEvent {
    let mut payload = json!({"state": "running", "detail": null, "pid": 42, "restarts": 0,
        "crashes": 0, "last_exit": null});
    for (k, v) in fields.as_object().unwrap() {
        payload[k] = v.clone();
    }
    serde_json::from_value(payload).expect("a managed event reads back")
}

/// What a publisher writes is what the alerts read: an approval, a managed gateway's move and
/// a watchdog step each serialize and read back the same (the in-process contract the
/// compiler now checks on both sides).
#[test]
fn every_event_the_alerts_read_reads_back_as_it_was_published() {
    let approval = approval_event(json!({"command": "ls", "escalated_at_ms": 9}));
    let published = serde_json::to_value(&approval).unwrap();
    assert_eq!(
        serde_json::from_value::<crate::domain::approval::Approval>(published).unwrap(),
        approval
    );
    let managed = managed_event(json!({"state": "failed", "detail": "gave up"}));
    let published = serde_json::to_value(&managed).unwrap();
    assert_eq!(published["state"], "failed");
    assert_eq!(
        serde_json::from_value::<crate::managed::state::ManagedEvent>(published).unwrap(),
        managed
    );
    let step = crate::fleet::watchdog::WatchdogEvent {
        step: crate::fleet::watchdog::WatchdogStep::Unrecovered,
        session_key: "agent:main:main".into(),
        details: json!({"outcome": "reported"}).as_object().unwrap().clone(),
    };
    let published = serde_json::to_value(&step).unwrap();
    assert_eq!(published["step"], "unrecovered");
    assert_eq!(published["outcome"], "reported");
    assert_eq!(
        serde_json::from_value::<crate::fleet::watchdog::WatchdogEvent>(published).unwrap(),
        step
    );
}
