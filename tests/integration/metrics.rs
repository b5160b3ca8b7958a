//! `/metrics` as an operator's Prometheus sees it: per-gateway series labelled by id (a rename
//! keeps them, the name is in `gateway_info`), gone with their gateway, as many per gateway as
//! `metrics.gateway_detail` says, and what spawns and session actions did.

use std::time::Duration;

use serde_json::json;

use crate::support::fleet::{add, fake, link_daemon, wait_gateway};
use crate::support::{Daemon, Request, control, online, sessions, wait_until};

const DEADLINE: Duration = Duration::from_secs(20);

fn scrape(d: &Daemon) -> String {
    let res = d.get("/metrics", "");
    assert_eq!(res.status, 200);
    res.text()
}

/// The series (lines that are not comments) that mention `needle`.
fn series_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains(needle))
        .collect()
}

fn promtool_accepts(text: &str) {
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect(
            "promtool must be installed (Debian package prometheus; scripts/test.sh installs it)",
        );
    std::io::Write::write_all(promtool.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn gateway_series_follow_the_id_through_a_rename_and_go_with_the_gateway() {
    let (fa, fb) = (fake(|c| c.sessions = 1), fake(|_| {}));
    let d = link_daemon(&[]);
    // Bravo is the primary: alpha, the one renamed and deleted, is not.
    let b = add(&d, "bravo", &fb, Some("fake-token"));
    let a = add(&d, "alpha", &fa, Some("fake-token"));
    for id in [a, b] {
        wait_gateway(&d, id, "online with latency", |g| {
            online(g) && !g["latency"].is_null()
        });
    }
    let (ia, ib) = (format!("gateway_id=\"{a}\""), format!("gateway_id=\"{b}\""));
    let text = scrape(&d);
    for needle in [
        format!("gateway_supervisor_gateway_up{{{ia}}} 1"),
        format!("gateway_supervisor_gateway_status{{{ia},status=\"online\"}} 1"),
        format!("gateway_supervisor_gateway_breaker_state{{{ia},state=\"closed\"}} 1"),
        format!("gateway_supervisor_gateway_consecutive_failures{{{ia}}} 0"),
        format!("gateway_supervisor_gateway_latency_seconds_bucket{{{ia}"),
        format!(
            "gateway_supervisor_gateway_rpc_calls_total{{{ia},method=\"sessions.list\",outcome=\"ok\"}}"
        ),
        format!(
            "gateway_supervisor_gateway_info{{build=\"2026.9.6-fake\",{ia},labels=\"\",name=\"alpha\",protocol=\"4\",version=\"2026.9.6\"}} 1"
        ),
        format!("gateway_supervisor_acting_primary{{{ib}}} 1"),
        "gateway_supervisor_gateways_connected 2".to_owned(),
    ] {
        assert!(text.contains(&needle), "missing {needle}\n{text}");
    }
    // Only the acting primary has an acting_primary series; names are never labels but one.
    assert_eq!(series_with(&text, "acting_primary{").len(), 1, "{text}");
    assert!(
        series_with(&text, "alpha")
            .iter()
            .all(|l| l.starts_with("gateway_supervisor_gateway_info{")),
        "{text}"
    );
    promtool_accepts(&text);

    // What a session action did is counted; route labels are the documented paths.
    let key = wait_until("a session", DEADLINE, || {
        sessions(&d, "")
            .first()
            .map(|s| s["key"].as_str().unwrap().to_owned())
    });
    assert_eq!(control(&d, &key, "pause").status, 409);
    assert_eq!(control(&d, &key, "kill").status, 200);
    assert_eq!(
        d.get(&format!("/api/gateways/{a}"), &d.admin_key).status,
        200
    );

    // A rename keeps every series under the same id; the name moves in gateway_info only.
    let res = d.call(
        "PUT",
        &format!("/api/gateways/{a}"),
        &d.admin_key,
        &json!({"name": "alpha-renamed"}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let text = scrape(&d);
    for needle in [
        r#"gateway_supervisor_session_controls_total{action="pause",outcome="unsupported"} 1"#,
        r#"gateway_supervisor_session_controls_total{action="kill",outcome="ok"} 1"#,
        r#"gateway_supervisor_http_requests_total{method="GET",route="/api/gateways/{id}",status="200"}"#,
    ] {
        assert!(text.contains(needle), "missing {needle}\n{text}");
    }
    assert!(
        !text.contains(r"\d+"),
        "a route label carries a regex\n{text}"
    );
    assert!(
        text.contains(&format!(",{ia},labels=\"\",name=\"alpha-renamed\"")),
        "{text}"
    );
    assert!(!text.contains("name=\"alpha\""), "{text}");
    assert!(
        series_with(&text, &ia)
            .iter()
            .any(|l| l.starts_with("gateway_supervisor_gateway_rpc_calls_total")),
        "the rename reset the gateway's counters\n{text}"
    );

    // A deleted gateway leaves no series at all: gauges, counters and histogram.
    let res = d.call(
        "DELETE",
        &format!("/api/gateways/{a}"),
        &d.admin_key,
        &json!({}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let text = scrape(&d);
    assert_eq!(series_with(&text, &ia), Vec::<&str>::new(), "{text}");
    assert!(
        text.contains(&format!("gateway_supervisor_gateway_up{{{ib}}} 1")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "gateway_supervisor_gateway_latency_seconds_count{{{ib}}}"
        )),
        "the other gateway's series went too\n{text}"
    );
    // Its link, stopping, records nothing more for it.
    wait_gateway(&d, b, "still online", online);
    assert_eq!(series_with(&scrape(&d), &ia), Vec::<&str>::new());
}

#[test]
fn the_detail_knob_bounds_the_series_per_gateway() {
    let f = fake(|_| {});
    let per_gateway = |detail: &str| {
        let d = link_daemon(&[("GATEWAY_SUPERVISOR__METRICS__GATEWAY_DETAIL", detail)]);
        let id = add(&d, "gw", &f, Some("fake-token"));
        wait_gateway(&d, id, "online with latency", |g| {
            online(g) && !g["latency"].is_null()
        });
        let text = scrape(&d);
        promtool_accepts(&text);
        let tagged = series_with(&text, &format!("gateway_id=\"{id}\"")).len();
        (tagged, text)
    };
    let (full, text) = per_gateway("full");
    assert!(full >= 30, "{full} series with full detail\n{text}");
    let (basic, text) = per_gateway("basic");
    // up, the current status, info, and the acting primary.
    assert_eq!(basic, 4, "{text}");
    assert!(
        text.contains("gateway_supervisor_gateway_latency_seconds_count 1"),
        "{text}"
    );
    let (none, text) = per_gateway("none");
    assert_eq!(none, 1, "only the acting primary's series\n{text}");
    assert!(
        text.contains("gateway_supervisor_gateways_connected 1"),
        "{text}"
    );
}

#[test]
fn every_request_is_counted_under_its_route_s_documented_path_or_one_label_for_strays() {
    let d = Daemon::start();
    let key = d.admin_key.clone();
    // Each twice: a route's label is worked out on its first request and kept after.
    for _ in 0..2 {
        for (method, path, key, status) in [
            ("DELETE", "/healthz", "", 405),
            ("PATCH", "/api/sessions", key.as_str(), 405),
            ("GET", "/api/gateways/99999", key.as_str(), 404),
            ("GET", "/api/gateways/99998", key.as_str(), 404),
            ("GET", "/api/docs/index.css", "", 200),
            ("GET", "/api/nope", key.as_str(), 404),
            ("GET", "/api/nope", "", 401),
            ("GET", "/nope", "", 404),
        ] {
            let res = d.send(Request::new(method, path).key(key));
            assert_eq!(res.status, status, "{method} {path}: {}", res.text());
        }
    }
    let text = scrape(&d);
    for (labels, count) in [
        (r#"method="DELETE",route="/healthz",status="405""#, 2),
        (r#"method="PATCH",route="/api/sessions",status="405""#, 2),
        (r#"method="GET",route="/api/gateways/{id}",status="404""#, 4),
        (r#"method="GET",route="/api/docs/{_}",status="200""#, 2),
        (r#"method="GET",route="unmatched",status="404""#, 4),
        (r#"method="GET",route="unmatched",status="401""#, 2),
    ] {
        let line = format!("gateway_supervisor_http_requests_total{{{labels}}} {count}");
        assert!(text.contains(&line), "missing {line}\n{text}");
    }
}
