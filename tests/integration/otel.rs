//! Span export: with `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` set, the daemon posts its spans to
//! the collector over OTLP/HTTP (protobuf) in the caller's trace; a setting it cannot honour
//! stops the start with a message naming the variable. (Without the variables no exporter is
//! built at all: `otel::from_env` answers `None`.)

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::fleet::{add, fake, link_daemon, wait_gateway};
use crate::support::{Daemon, Request, contains, online, wait_until};

const GIVEN: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A collector that keeps the raw requests it receives and answers 200.
fn collector() -> (u16, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut raw = Vec::new();
            let mut buf = [0u8; 65536];
            // Read the head, then the body to its Content-Length.
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&buf[..n]);
                if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if raw.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
            keep.lock().unwrap().push(raw);
        }
    });
    (port, seen)
}

#[test]
fn spans_reach_the_collector_in_the_callers_trace() {
    let (port, seen) = collector();
    let endpoint = format!("http://127.0.0.1:{port}/v1/traces");
    let d = Daemon::start_with(&[
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_SERVICE_NAME", "gs-under-test"),
    ]);
    let res = d.send(
        Request::new("GET", "/api/gateways")
            .key(&d.admin_key)
            .header("traceparent", GIVEN),
    );
    assert_eq!(res.status, 200);
    let trace_id: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&GIVEN[3 + 2 * i..5 + 2 * i], 16).unwrap())
        .collect();
    let export = wait_until(
        "an export carrying the caller's trace",
        Duration::from_secs(20),
        || {
            seen.lock()
                .unwrap()
                .iter()
                .find(|r| contains(r, &trace_id))
                .cloned()
        },
    );
    assert!(
        contains(&export, b"POST /v1/traces HTTP/1.1"),
        "{}",
        String::from_utf8_lossy(&export[..80.min(export.len())])
    );
    assert!(contains(&export, b"application/x-protobuf"));
    assert!(
        contains(&export, b"request"),
        "the request span is exported"
    );
    assert!(
        contains(&export, b"gs-under-test"),
        "the service name is the resource's"
    );
    assert!(
        !contains(&export, d.admin_key.as_bytes()),
        "no key in a span"
    );
}

/// A gateway call's `traceparent` names the exported `gateway.call` span as its parent, so the
/// gateway's own spans (2026.9's OpenTelemetry plugin) hang under a span the collector holds.
#[test]
fn a_gateway_call_is_parented_to_its_exported_span() {
    let (port, seen) = collector();
    let endpoint = format!("http://127.0.0.1:{port}/v1/traces");
    let g = fake(|_| {});
    let d = link_daemon(&[
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ]);
    let id = add(&d, "traced", &g, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    let res = d.send(
        Request::new("POST", "/api/spawn")
            .key(&d.admin_key)
            .header("traceparent", GIVEN)
            .json(&serde_json::json!({"agent": "main", "task": "say pong", "gateway_id": id})),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let (_, sent) = wait_until(
        "the traced call at the gateway",
        Duration::from_secs(20),
        || g.traceparents().into_iter().find(|(m, _)| m == "agent"),
    );
    let span = sent.split('-').nth(2).unwrap_or_default().to_owned();
    assert_eq!(span.len(), 16, "{sent}");
    let span_id: Vec<u8> = (0..8)
        .map(|i| u8::from_str_radix(&span[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    wait_until(
        "the gateway.call span with that id exported",
        Duration::from_secs(20),
        || {
            seen.lock()
                .unwrap()
                .iter()
                .any(|r| contains(r, b"gateway.call") && contains(r, &span_id))
                .then_some(())
        },
    );
}

#[test]
fn settings_it_cannot_honour_stop_the_start_naming_the_variable() {
    let d = Daemon::start();
    for (var, value, says) in [
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "https://collector.example:4318",
            "only a plain http://",
        ),
        ("OTEL_TRACES_EXPORTER", "zipkin", "OTEL_TRACES_EXPORTER"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "http/protobuf"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut serve = d.command();
        serve
            .env(var, value)
            .args(["serve", "--state-dir"])
            .arg(dir.path())
            .arg("--database-url")
            .arg(format!("sqlite://{}/x.db", dir.path().display()));
        if var != "OTEL_EXPORTER_OTLP_ENDPOINT" {
            serve.env(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://127.0.0.1:9/v1/traces",
            );
        }
        let out = serve.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{var}={value} started");
        assert!(err.contains(says), "{var}={value}: {err}");
    }
}

/// A collector that takes the connection and never answers must not hold the daemon's exit:
/// the spans still batched get half a second, then are dropped. (It held the exit for the
/// SDK's own 5 s.)
#[test]
fn a_collector_that_never_answers_does_not_hold_the_exit() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}/v1/traces", silent.local_addr().unwrap());
    let mut d = Daemon::start_with(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint.as_str())]);
    let res = d.send(Request::new("GET", "/api/gateways").key(&d.admin_key));
    assert_eq!(res.status, 200, "a span to export");
    let started = std::time::Instant::now();
    let status = d.terminate();
    let took = started.elapsed();
    assert!(status.success(), "{status}");
    assert!(
        took < Duration::from_secs(3),
        "stopped in {took:?} with a collector that never answers"
    );
    drop(silent);
}
