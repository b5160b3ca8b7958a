//! /healthz, /readyz, /metrics, OpenAPI, the audit log, SIGHUP reload, graceful SIGTERM.

use std::time::Duration;

use serde_json::json;

use crate::support::{Daemon, Request, wait_until};

#[test]
fn health_readiness_metrics_and_openapi() {
    let d = Daemon::start();
    d.create_gateway("a", 1, None);
    d.create_gateway("b", 2, None);
    assert_eq!(d.get("/healthz", "").json()["status"], "ok");
    let ready = d.get("/readyz", "");
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["database"], "ok");

    d.get("/api/gateways", &d.admin_key);
    let metrics = d.get("/metrics", "");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text();
    // Both point at closed ports: whatever their status by now, the fleet totals add up.
    let total: i64 = text
        .lines()
        .filter(|l| l.starts_with("gateway_supervisor_gateways{status="))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(total, 2, "{text}");
    assert!(text.contains("gateway_supervisor_gateway_up{gateway_id=\"1\"} 0"));
    // The process itself, the acting primary, and each gateway's id (and, once it said hello,
    // its release and protocol).
    assert!(
        text.contains("gateway_supervisor_events_lost_total 0"),
        "{text}"
    );
    for name in [
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing: {text}"
        );
    }
    // Neither answers, so the stand-in may be either (on PostgreSQL it moves as the leases
    // are taken): exactly one of them acts.
    let acting: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("gateway_supervisor_acting_primary{") && l.ends_with(" 1"))
        .collect();
    assert!(
        acting.len() == 1
            && (acting[0].contains("gateway_id=\"1\"") || acting[0].contains("gateway_id=\"2\"")),
        "{text}"
    );
    assert!(
        text.contains(",gateway_id=\"2\",labels=\"\",name=\"b\""),
        "{text}"
    );
    assert!(text.contains("gateway_supervisor_gateways{status=\"online\"} 0"));
    assert!(text.contains(r#"gateway_supervisor_http_requests_total{method="GET",route="/api/gateways",status="200"}"#), "{text}");
    assert!(text.contains("gateway_supervisor_http_request_duration_seconds_bucket"));

    // Alone on SQLite; on PostgreSQL, an instance of a cluster of one.
    let cluster = d.get("/api/cluster", &d.admin_key).json();
    let on_postgres = d.database_url().starts_with("postgres");
    assert_eq!(cluster["clustered"], on_postgres, "{cluster}");
    if on_postgres {
        assert_eq!(
            cluster["instances"].as_array().unwrap().len(),
            1,
            "{cluster}"
        );
    }

    let doc = d.get("/api/openapi.json", "").json();
    for path in [
        "/api/gateways/health",
        "/api/gateways/health/history",
        "/api/gateways/{id}/suspend",
        "/api/gateways/{id}/resume",
        "/api/gateways/{id}/restart",
        "/api/sessions",
        "/api/sessions/{key}/control",
        "/api/spawn",
        "/api/spawn/{id}",
        "/api/agents",
        "/api/agents/{id}",
        "/api/agents/sync",
        "/api/agents/{id}/heartbeat",
        "/api/connect",
        "/api/events",
        "/api/ws",
        "/api/logs",
        "/api/v1/gateways",
        "/api/v1/gateways/{id}",
        "/api/gateways",
        "/api/gateways/{id}",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/audit",
    ] {
        assert!(doc["paths"].get(path).is_some(), "OpenAPI lacks {path}");
    }
    for method in ["get", "post", "put", "delete"] {
        assert!(
            doc["paths"]["/api/gateways"].get(method).is_some(),
            "OpenAPI lacks {method} /api/gateways"
        );
    }
    let ui = d.get("/api/docs/", "");
    assert_eq!(ui.status, 200);
    assert!(
        ui.text().contains("swagger"),
        "vendored Swagger UI is served"
    );
    // Without the slash: sent to the viewer, not refused for want of a key.
    let bare = d.get("/api/docs", "");
    assert_eq!(bare.status, 308, "{}", bare.text());
    assert_eq!(bare.header("location"), Some("/api/docs/"));

    let res = d.get("/no/such/route", "");
    assert_eq!(
        (res.status, res.json()["error"].as_str()),
        (404, Some("not_found"))
    );
}

#[test]
fn every_gateway_mutation_is_audited() {
    let d = Daemon::start();
    let a = d.create_gateway("a", 1, Some("secret-in-audit?"));
    let b = d.create_gateway("b", 2, None);
    d.call(
        "PUT",
        "/api/gateways",
        &d.admin_key,
        &json!({"id": b["id"], "is_primary": true, "token": "another-secret"}),
    );
    d.call(
        "DELETE",
        "/api/gateways",
        &d.admin_key,
        &json!({"id": a["id"]}),
    );
    let res = d.get("/api/audit?limit=10", &d.admin_key);
    assert_eq!(res.status, 200);
    assert!(!res.text().contains("secret-in-audit") && !res.text().contains("another-secret"));
    // The daemon's own decisions (a new acting primary, in a cluster a lease adopted) are
    // audited too, whenever they happen; here only the admin's mutations are checked.
    let entries: Vec<serde_json::Value> = res.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "api_key:initial-admin")
        .cloned()
        .collect();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions[..4],
        [
            "gateway.delete",
            "gateway.update",
            "gateway.create",
            "gateway.create"
        ]
    );
    for e in &entries[..4] {
        assert_eq!(e["actor"], "api_key:initial-admin");
        assert!(e["ts"].as_i64().unwrap() > 1_700_000_000);
        assert_eq!(e["target_type"], "gateway");
    }
    let update: serde_json::Value =
        serde_json::from_str(entries[1]["details"].as_str().unwrap()).unwrap();
    assert_eq!(update["token"], "changed");
    assert_eq!(update["is_primary"], true);
}

/// A daemon started again on its state directory with `--config` a file holding `toml`, and
/// that file's path (to rewrite before a SIGHUP).
fn on_config_file(toml: &str) -> (Daemon, std::path::PathBuf) {
    let mut d = Daemon::start();
    d.kill9();
    let config = d.state_dir().join("config.toml");
    std::fs::write(&config, toml).unwrap();
    let path = config.clone();
    d.launch_with(|cmd| {
        cmd.arg("--config").arg(&path);
    });
    (d, config)
}

#[test]
fn sighup_reloads_limits_and_sigterm_stops_cleanly() {
    let (mut d, config) = on_config_file("[limits]\ngateway_ops_per_minute = 100\n");
    for _ in 0..3 {
        assert_eq!(d.get("/api/gateways", &d.admin_key).status, 200);
    }
    std::fs::write(&config, "[limits]\ngateway_ops_per_minute = 2\n").unwrap();
    d.signal("HUP");
    wait_until(
        "the reloaded limit to apply",
        Duration::from_secs(10),
        || (d.get("/api/gateways", &d.admin_key).status == 429).then_some(()),
    );
    // A broken config on reload keeps the running one.
    std::fs::write(&config, "[limits]\nno_such_key = 1\n").unwrap();
    d.signal("HUP");
    wait_until(
        "the reload error to be logged",
        Duration::from_secs(10),
        || {
            String::from_utf8_lossy(&d.logs())
                .contains("reload failed")
                .then_some(())
        },
    );
    assert_eq!(d.get("/healthz", "").status, 200);

    // In-flight requests finish, then the process exits 0.
    let addr = d.addr;
    let key = d.admin_key.clone();
    let inflight = std::thread::spawn(move || Request::new("GET", "/readyz").key(&key).send(addr));
    let status = d.terminate();
    assert!(status.success(), "{status}");
    let _ = inflight.join();
    assert!(String::from_utf8_lossy(&d.logs()).contains("stopped"));
}

#[test]
fn a_reload_names_every_setting_that_waits_for_a_restart_at_every_reload() {
    let (d, config) = on_config_file("[gateways]\nheartbeat_interval = \"30s\"\n");
    std::fs::write(
        &config,
        "[gateways]\nheartbeat_interval = \"10s\"\n[server]\nstream_keepalive = \"5s\"\n\
         [limits]\ngateway_ops_per_minute = 100\n",
    )
    .unwrap();
    let named = |d: &Daemon, key: &str| {
        String::from_utf8_lossy(&d.logs())
            .lines()
            .filter(|l| l.contains("changes only on restart") && l.contains(key))
            .count()
    };
    for reload in 1..=2 {
        d.signal("HUP");
        wait_until(
            "the reload to name what waits for a restart",
            Duration::from_secs(10),
            || {
                (named(&d, "gateways.heartbeat_interval") == reload
                    && named(&d, "server.stream_keepalive") == reload)
                    .then_some(())
            },
        );
    }
    // What a reload applies is not said to wait.
    assert_eq!(named(&d, "limits.gateway_ops_per_minute"), 0);
    assert_eq!(d.get("/healthz", "").status, 200);
}

#[test]
fn json_logs_are_one_object_per_line() {
    let d = Daemon::start_with(&[
        ("GATEWAY_SUPERVISOR__LOG__FORMAT", "json"),
        ("GATEWAY_SUPERVISOR__LOG__LEVEL", "debug"),
    ]);
    d.create_gateway("a", 1, Some("json-log-token"));
    wait_until("a request log line", Duration::from_secs(10), || {
        String::from_utf8_lossy(&d.logs())
            .contains("\"request\"")
            .then_some(())
    });
    let logs = String::from_utf8_lossy(&d.logs()).into_owned();
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() > 5, "{logs}");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v.get("timestamp").is_some() && v.get("level").is_some(),
            "{line}"
        );
    }
    assert!(!logs.contains("json-log-token"));
}

/// Open event streams do not hold a graceful stop for `server.shutdown_timeout` (main waited
/// the whole timeout whenever an SSE or WebSocket client was connected).
#[test]
fn sigterm_ends_open_event_streams_at_once() {
    let mut d = Daemon::start_with(&[("GATEWAY_SUPERVISOR__SERVER__SHUTDOWN_TIMEOUT", "5m")]);
    let mut sse = crate::support::sse::Sse::open(d.addr, &d.admin_key, None, "");
    let mut ws = crate::support::open_ws(d.addr, &d.admin_key, "", Duration::from_secs(30));

    // `terminate` allows 30 s; the stop would take the 5-minute shutdown timeout otherwise.
    let status = d.terminate();
    assert!(status.success(), "{status:?}");
    // The WebSocket client was told why (1001 going away), the SSE stream ended.
    match ws.read() {
        Ok(tungstenite::Message::Close(Some(frame))) => {
            assert_eq!(u16::from(frame.code), 1001, "{frame:?}")
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    assert!(sse.next(Duration::from_secs(5)).is_none());
}

/// Two daemons on one state directory would both write `http.addr` and the database: the second
/// refuses to start and names the first one's pid; once the first stops, a new one starts.
#[test]
fn a_second_daemon_on_the_same_state_directory_refuses_to_start() {
    let mut d = Daemon::start();
    let out = d
        .command()
        .arg("serve")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run a second daemon");
    assert!(!out.status.success(), "the second daemon must not run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("pid {}", d.pid())) && stderr.contains("state directory"),
        "{stderr}"
    );
    assert_eq!(
        d.get("/healthz", "").status,
        200,
        "the first one is untouched"
    );
    assert!(d.terminate().success());
    d.launch();
    assert_eq!(
        d.get("/healthz", "").status,
        200,
        "the lock went with its holder"
    );
}

/// Every request gets an id (the client's when it is a plain token), echoed in the response and
/// written in one access line with the route pattern, the status and the key that asked.
#[test]
fn each_request_has_an_id_and_an_access_line() {
    let d = Daemon::start_with(&[("GATEWAY_SUPERVISOR__LOG__FORMAT", "json")]);
    let given = d.send(
        Request::new("GET", "/api/gateways/4242")
            .key(&d.admin_key)
            .header("X-Request-Id", "trace-abc.123"),
    );
    assert_eq!(given.status, 404);
    assert_eq!(given.header("x-request-id"), Some("trace-abc.123"));
    // A hostile id is replaced, not echoed or logged.
    let hostile = d.send(
        Request::new("GET", "/api/gateways")
            .key(&d.admin_key)
            .header("X-Request-Id", "evil id\" level=\"error"),
    );
    let made = hostile.header("x-request-id").unwrap().to_owned();
    assert!(
        made.len() == 32 && made.chars().all(|c| c.is_ascii_hexdigit()),
        "{made}"
    );
    let line = wait_until("the access line", Duration::from_secs(10), || {
        String::from_utf8_lossy(&d.logs())
            .lines()
            .find(|l| l.contains("trace-abc.123"))
            .map(str::to_owned)
    });
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["target"], "access", "{line}");
    let f = &v["fields"];
    assert_eq!(f["method"], "GET", "{line}");
    assert_eq!(f["status"], 404, "{line}");
    assert!(
        f["route"]
            .as_str()
            .unwrap()
            .starts_with("/api/gateways/{id"),
        "{line}"
    );
    assert!(
        f["key_id"].as_str().unwrap().parse::<i64>().is_ok(),
        "{line}"
    );
    assert!(f["elapsed_ms"].is_number(), "{line}");
    // Lines are written off the serving threads: wait for the second request's.
    let logs = wait_until("the generated id logged", Duration::from_secs(10), || {
        let logs = String::from_utf8_lossy(&d.logs()).into_owned();
        logs.contains(&made).then_some(logs)
    });
    assert!(!logs.contains("evil"), "the hostile id is not logged");
}
