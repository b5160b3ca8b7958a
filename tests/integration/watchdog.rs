//! The stuck-session watchdog against fake gateways that answer as 2026.9.6 does: a run that
//! stops making progress is reported, aborted and verified; an abort answered `aborted` that
//! leaves the lane held is `ineffective` and the reset that follows frees it; when nothing
//! frees it the gateway reads `degraded` and a signed alert goes out, resolved once the
//! session is free; with `watchdog.restart` the gateway is restarted past the wedged run that
//! holds its drain, which frees it; a run inside a long tool call is left alone; a dry run
//! changes nothing.

use std::sync::atomic::Ordering;
use std::time::Duration;

use fake_gateway::{FakeGateway, Faults, Wedge};
use serde_json::{Value, json};

use crate::support::fleet::{
    add, audit_actions, fake, gateway, link_daemon, start_run, wait_gateway, wait_operation,
};
use crate::support::sse::Sse;
use crate::support::webhook::{count, delivered, receiver};
use crate::support::{Daemon, control, metric, online, wait_for, wait_until};

const DEADLINE: Duration = Duration::from_secs(30);

/// A daemon whose watchdog looks every 200 ms, calls a run stalled after 1 s without a sign of
/// life, and verifies a remedy 1 s later; `extra` on top (the dry run is turned off here).
fn watching_daemon(extra: &[(&str, &str)]) -> Daemon {
    let mut env = vec![
        ("GATEWAY_SUPERVISOR__WATCHDOG__INTERVAL", "200ms"),
        ("GATEWAY_SUPERVISOR__WATCHDOG__STALL_AFTER", "1s"),
        ("GATEWAY_SUPERVISOR__WATCHDOG__VERIFY_AFTER", "1s"),
        ("GATEWAY_SUPERVISOR__WATCHDOG__DRY_RUN", "false"),
    ];
    env.extend_from_slice(extra);
    link_daemon(&env)
}

/// A watched gateway (with `faults`) and a run on it: the daemon, the fake, the gateway's id,
/// the `session.watchdog` events from before the run, and the run's session key.
struct Watched {
    d: Daemon,
    f: FakeGateway,
    id: i64,
    events: Sse,
    key: String,
}

fn watched(faults: Faults, extra: &[(&str, &str)], task: &str) -> Watched {
    let f = fake(|_| {});
    f.set_faults(faults);
    let d = watching_daemon(extra);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    let events = Sse::open(d.addr, &d.admin_key, None, "?types=session.watchdog");
    let key = start_run(&d, id, &f, task);
    Watched {
        d,
        f,
        id,
        events,
        key,
    }
}

/// One watchdog step as its event says: (step, outcome, session key).
type StepSeen = (String, String, String);

fn step_of(e: &Value) -> StepSeen {
    let p = &e["payload"];
    let s = |k: &str| p[k].as_str().unwrap_or("?").to_owned();
    (s("step"), s("outcome"), s("session_key"))
}

/// Reads `session.watchdog` events until the steps seen so far satisfy `done`; returns them
/// with their payloads.
fn steps_until(events: &mut Sse, what: &str, done: impl Fn(&[StepSeen]) -> bool) -> Vec<Value> {
    let until = std::time::Instant::now() + DEADLINE;
    let mut seen: Vec<Value> = Vec::new();
    while std::time::Instant::now() < until {
        let steps: Vec<StepSeen> = seen.iter().map(step_of).collect();
        if done(&steps) {
            return seen;
        }
        if let Some(e) = events.next(until.saturating_duration_since(std::time::Instant::now())) {
            seen.push(e.data);
        }
    }
    let steps: Vec<StepSeen> = seen.iter().map(step_of).collect();
    panic!("{what}: not within {DEADLINE:?}; saw {steps:#?}");
}

fn steps(seen: &[Value], key: &str) -> Vec<(String, String)> {
    seen.iter()
        .map(step_of)
        .filter(|(_, _, k)| k == key)
        .map(|(s, o, _)| (s, o))
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn aborts(f: &FakeGateway) -> u64 {
    f.counters().aborts.load(Ordering::Relaxed)
}

fn resets(f: &FakeGateway) -> u64 {
    f.counters().resets.load(Ordering::Relaxed)
}

#[test]
fn a_stalled_run_is_reported_aborted_and_the_abort_verified() {
    let Watched {
        d,
        f,
        id,
        mut events,
        key,
    } = watched(Faults::default(), &[], "SLOW");
    let seen = steps_until(&mut events, "the stalled run recovered", |s| {
        s.iter().any(|(st, _, _)| st == "recovered")
    });
    assert_eq!(
        steps(&seen, &key),
        pairs(&[
            ("stalled", "detected"),
            ("abort", "taken"),
            ("recovered", "effective")
        ])
    );
    let stalled = &seen[0]["payload"];
    assert_eq!(stalled["dry_run"], false);
    assert!(stalled["idle_seconds"].as_i64().unwrap() >= 1, "{stalled}");
    assert_eq!(seen[0]["gateway_id"], id);
    assert_eq!(seen[2]["payload"]["after"], "abort");
    assert_eq!((aborts(&f), resets(&f)), (1, 0));
    let actions = audit_actions(&d);
    for a in ["watchdog.stalled", "watchdog.abort", "watchdog.recovered"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
    wait_until("the metrics counted", DEADLINE, || {
        (metric(
            &d,
            "watchdog_steps_total{outcome=\"effective\",step=\"abort\"}",
        ) == 1.0
            && metric(&d, "sessions_stalled") == 0.0)
            .then_some(())
    });
    assert_eq!(gateway(&d, id)["status"], "online");
}

#[test]
fn an_abort_that_leaves_the_lane_held_is_ineffective_and_the_reset_frees_it() {
    let wedged = Faults {
        wedged: Some(Wedge::AbortIgnored),
        ..Faults::default()
    };
    // The daemon is held to the end of the test (dropping it stops it).
    let Watched {
        d: _daemon,
        f,
        mut events,
        key,
        ..
    } = watched(wedged, &[], "SLOW");
    let seen = steps_until(&mut events, "the reset freed the lane", |s| {
        s.iter().any(|(st, _, _)| st == "recovered")
    });
    assert_eq!(
        steps(&seen, &key),
        pairs(&[
            ("stalled", "detected"),
            ("abort", "taken"),
            ("abort", "ineffective"),
            ("reset", "taken"),
            ("recovered", "effective"),
        ])
    );
    // The gateway answered the abort as a success; the watchdog did not believe it.
    assert_eq!(seen[1]["payload"]["answer"]["status"], "aborted");
    assert_eq!(seen[2]["payload"]["recovery"], "ineffective");
    assert_eq!(seen[4]["payload"]["after"], "reset");
    assert_eq!((aborts(&f), resets(&f)), (1, 1));
}

#[test]
fn when_nothing_frees_the_lane_the_gateway_is_degraded_and_alerted_until_it_is_free() {
    let (url, got) = receiver();
    let wedged = Faults {
        wedged: Some(Wedge::Stuck),
        ..Faults::default()
    };
    let alerts = [
        ("GATEWAY_SUPERVISOR__ALERTS__WEBHOOK_URL", url.as_str()),
        (
            "GATEWAY_SUPERVISOR__ALERTS__SECRET",
            "webhook-secret-0123456789",
        ),
    ];
    let Watched {
        d,
        f,
        id,
        mut events,
        key,
    } = watched(wedged, &alerts, "SLOW");
    let seen = steps_until(&mut events, "the ladder's end", |s| {
        s.iter().any(|(st, _, _)| st == "unrecovered")
    });
    assert_eq!(
        steps(&seen, &key),
        pairs(&[
            ("stalled", "detected"),
            ("abort", "taken"),
            ("abort", "ineffective"),
            ("reset", "taken"),
            ("reset", "ineffective"),
            ("unrecovered", "reported"),
        ])
    );
    // Restart is off by default: the gateway is degraded, not restarted.
    assert!(seen.last().unwrap()["payload"].get("restart").is_none());
    assert_eq!(f.counters().restart_requests.load(Ordering::Relaxed), 0);
    wait_gateway(&d, id, "degraded", |g| g["status"] == "degraded");
    let alerts = wait_for("the stalled-session alert", DEADLINE, || {
        let a = delivered(&got);
        if count(&a, "session_stalled", "firing") == 1 {
            Ok(a)
        } else {
            Err(format!("{a:#?}"))
        }
    });
    let alert = alerts
        .iter()
        .find(|a| a["kind"] == "session_stalled")
        .unwrap();
    assert_eq!(alert["gateway_id"], id);
    assert_eq!(alert["details"]["session_key"], key.as_str());
    wait_until("the stalled session counted", DEADLINE, || {
        (metric(&d, "sessions_stalled") == 1.0).then_some(())
    });

    // An operator frees it (the gateway un-wedged, the session killed): recovered, the
    // gateway online again, the alert resolved.
    f.set_faults(Faults::default());
    let res = control(&d, &key, "kill");
    assert_eq!(res.status, 200, "{}", res.text());
    steps_until(&mut events, "the session recovered", |s| {
        s.iter().any(|(st, _, _)| st == "recovered")
    });
    wait_gateway(&d, id, "online again", online);
    wait_for("the alert resolved", DEADLINE, || {
        let a = delivered(&got);
        if count(&a, "session_stalled", "resolved") == 1 {
            Ok(())
        } else {
            Err(format!("{a:#?}"))
        }
    });
}

#[test]
fn a_wedge_nothing_else_frees_is_cleared_by_a_restart_forced_past_its_drain() {
    let wedged = Faults {
        wedged: Some(Wedge::Stuck),
        ..Faults::default()
    };
    let Watched {
        d,
        f,
        id,
        mut events,
        key,
    } = watched(
        wedged,
        &[
            ("GATEWAY_SUPERVISOR__WATCHDOG__RESTART", "true"),
            ("GATEWAY_SUPERVISOR__WATCHDOG__RESTART_DRAIN_TIMEOUT", "1s"),
        ],
        "SLOW",
    );
    let before = f.boot_id();
    let seen = steps_until(&mut events, "the ladder's end", |s| {
        s.iter().any(|(st, _, _)| st == "unrecovered")
    });
    let op = seen.last().unwrap()["payload"]["restart"]["operation_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a restart started: {seen:#?}"))
        .to_owned();
    // The wedged run holds the drain; past its timeout the restart is asked anyway.
    let done = wait_operation(&d, &op, "the watchdog's restart over", |o| {
        o["state"] != "running"
    });
    assert_eq!(done["state"], "succeeded", "{done:#}");
    let p = &done["gateways"][0];
    assert_eq!(p["boot_id_before"], before.as_str());
    assert_ne!(p["boot_id_after"], before.as_str(), "{p:#}");
    let audit = d.get("/api/audit?limit=50", &d.admin_key).json();
    let restart = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "gateway.restart")
        .unwrap_or_else(|| panic!("a gateway.restart row: {audit:#}"));
    let details: Value = serde_json::from_str(restart["details"].as_str().unwrap()).unwrap();
    assert_eq!(
        details["forced"], true,
        "asked past the active work: {details}"
    );
    // The new process has no run: the session is free, recovered, the gateway back in service.
    steps_until(&mut events, "the session recovered", |s| {
        s.iter().any(|(st, _, k)| st == "recovered" && *k == key)
    });
    let g = wait_gateway(&d, id, "online again", online);
    assert_eq!(g["cordoned"], false, "{g:#}");
}

#[test]
fn a_run_inside_a_long_tool_call_is_left_alone_while_a_stalled_one_is_not() {
    // The tool call starts first and outlasts the stalled run's whole ladder.
    let Watched {
        d,
        f,
        id,
        mut events,
        key: tool,
    } = watched(Faults::default(), &[], "TOOL");
    let slow = start_run(&d, id, &f, "SLOW");
    let seen = steps_until(&mut events, "the stalled run recovered", |s| {
        s.iter().any(|(st, _, k)| st == "recovered" && *k == slow)
    });
    assert!(
        steps(&seen, &tool).is_empty(),
        "the tool call was not touched: {seen:#?}"
    );
    assert_eq!(aborts(&f), 1, "only the stalled run was aborted");
    let sessions = d.get("/api/sessions", &d.admin_key).json();
    let tool_row = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == tool.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{sessions:#}"));
    assert_eq!(tool_row["running"], true, "{tool_row}");
}

#[test]
fn a_dry_run_reports_and_changes_nothing() {
    let dry_run = [("GATEWAY_SUPERVISOR__WATCHDOG__DRY_RUN", "true")];
    let Watched {
        d,
        f,
        mut events,
        key,
        ..
    } = watched(Faults::default(), &dry_run, "SLOW");
    let seen = steps_until(&mut events, "the dry run's report", |s| {
        s.iter().any(|(st, _, _)| st == "unrecovered")
    });
    assert_eq!(
        steps(&seen, &key),
        pairs(&[("stalled", "detected"), ("unrecovered", "reported")])
    );
    assert_eq!(seen[0]["payload"]["dry_run"], true);
    assert_eq!(seen[0]["payload"]["would"], json!(["abort", "reset"]));
    assert_eq!((aborts(&f), resets(&f)), (0, 0));
    assert!(
        f.sessions().iter().any(|(k, _)| *k == key),
        "the session is still there"
    );
    let res = d.get("/api/sessions", &d.admin_key).json();
    let row = res["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key.as_str())
        .cloned()
        .unwrap();
    assert_eq!(row["running"], true, "the run goes on: {row}");
}

/// A run waiting on an approval is waiting, not stalled: reported once with the approval's id,
/// left alone however long nobody answers; once answered, its clock starts again.
#[test]
fn a_run_waiting_on_an_approval_is_reported_waiting_not_stalled() {
    let Watched {
        d,
        f,
        id,
        mut events,
        key,
    } = watched(
        Faults::default(),
        &[("GATEWAY_SUPERVISOR__APPROVALS__ENABLED", "true")],
        "SLOW",
    );
    let approval = f.request_raw_approval(
        json!({"agentId": "main", "allowedDecisions": ["allow-once", "allow-always", "deny"],
               "command": "printf smoke", "host": "gateway", "sessionKey": key, "runId": null}),
        Duration::from_secs(120),
    );
    let seen = steps_until(&mut events, "reported waiting", |s| {
        s.iter()
            .any(|(st, _, k)| st == "waiting_on_approval" && *k == key)
    });
    let waiting = seen
        .iter()
        .find(|e| e["payload"]["step"] == "waiting_on_approval")
        .unwrap();
    assert_eq!(
        waiting["payload"]["approval_id"],
        json!(approval),
        "{waiting:#}"
    );
    // For five stall thresholds (25 watchdog rounds) no other step comes for it.
    let window = std::time::Instant::now() + Duration::from_secs(5);
    while let Some(e) = events.next(window.saturating_duration_since(std::time::Instant::now())) {
        let (step, _, k) = step_of(&e.data);
        assert!(
            k != key,
            "nothing but waiting while it waits: {step} {:#}",
            e.data
        );
    }
    assert_eq!(aborts(&f), 0);
    // Answered: no longer waiting; the run (still silent) is stalled a threshold later.
    let res = d.call(
        "POST",
        &format!("/api/approvals/{id}/{approval}/resolve"),
        &d.admin_key,
        &json!({"decision": "deny"}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    steps_until(&mut events, "stalled after the answer", |s| {
        s.iter().any(|(st, _, k)| st == "stalled" && *k == key)
    });
}
