//! Traces: an API request's W3C trace context (the caller's `traceparent`, or one the daemon
//! starts) reaches the gateway calls it causes, as the request frame's `traceparent`, on
//! releases whose frame has the field; the access log names the trace.

use std::time::Duration;

use fake_gateway::Release;
use serde_json::json;

use crate::support::fleet::{add, fake, imitating, link_daemon, wait_gateway};
use crate::support::{Request, contains, online, wait_until};

const DEADLINE: Duration = Duration::from_secs(20);
const GIVEN: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[test]
fn a_spawn_carries_the_callers_trace_to_gateways_that_take_it() {
    let (new, old) = (fake(|_| {}), imitating(Release::R2026_3_31));
    let d = link_daemon(&[]);
    let (n, o) = (
        add(&d, "current", &new, Some("fake-token")),
        add(&d, "older", &old, Some("fake-token")),
    );
    for id in [n, o] {
        wait_gateway(&d, id, "online", online);
    }
    let spawn = |gateway: i64, traceparent: Option<&str>| {
        let mut req = Request::new("POST", "/api/spawn")
            .key(&d.admin_key)
            .json(&json!({"agent": "main", "task": "say pong", "gateway_id": gateway}));
        if let Some(tp) = traceparent {
            req = req.header("traceparent", tp);
        }
        let res = d.send(req);
        assert_eq!(res.status, 202, "{}", res.text());
    };

    // 2026.9.6: the caller's trace, a span of the call's own.
    spawn(n, Some(GIVEN));
    let (method, sent) = wait_until("a traced request at 2026.9.6", DEADLINE, || {
        new.traceparents().into_iter().find(|(m, _)| m == "agent")
    });
    assert_eq!(method, "agent");
    let fields: Vec<&str> = sent.split('-').collect();
    assert_eq!(fields.len(), 4, "{sent}");
    assert_eq!(
        (fields[0], fields[1], fields[3]),
        ("00", "4bf92f3577b34da6a3ce929d0e0e4736", "01")
    );
    assert_ne!(
        fields[2], "00f067aa0ba902b7",
        "the call is a span of its own"
    );
    // The log is written by its own thread: the line may land a moment after the answer.
    wait_until("the access line names the trace", DEADLINE, || {
        let logs = d.logs();
        (contains(&logs, b"trace_id=4bf92f3577b34da6a3ce929d0e0e4736")
            || contains(&logs, b"\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\""))
        .then_some(())
    });

    // Without a traceparent (or with a malformed one) the daemon starts a trace.
    spawn(n, Some("00-not-a-trace-01"));
    let started = wait_until("a second traced request", DEADLINE, || {
        let all = new.traceparents();
        (all.len() >= 2).then(|| all[1].1.clone())
    });
    assert!(
        !started.contains("4bf92f3577b34da6a3ce929d0e0e4736"),
        "{started}"
    );
    assert_eq!(started.len(), 55, "{started}");

    // 2026.3.31's request frame has no traceparent (a closed object): none is sent.
    spawn(o, Some(GIVEN));
    wait_until("the older gateway's run", DEADLINE, || {
        (old.runs_started() == 1).then_some(())
    });
    assert_eq!(old.traceparents(), Vec::new());
}
