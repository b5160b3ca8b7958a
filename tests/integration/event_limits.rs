//! Open event streams are bounded per API key and in all (`server.streams_per_key`,
//! `server.streams_max`): one more is refused 429 before anything is subscribed, and a stream
//! that closes gives its place back. One key held 3,000 idle streams before: 3,045 of the
//! process's open files.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::support::fleet::link_daemon;
use crate::support::sse::Sse;
use crate::support::{metric, wait_until};

const DEADLINE: Duration = Duration::from_secs(20);

/// The status line and body of a stream's opening, read with a short timeout (a stream that
/// was let in would never end).
fn opened(addr: SocketAddr, key: &str, path: &str, upgrade: bool) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let ws = if upgrade {
        "connection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    } else {
        "accept: text/event-stream\r\n"
    };
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nx-api-key: {key}\r\n{ws}\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(s);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if let Some(n) = line.to_lowercase().strip_prefix("content-length:") {
            length = n.trim().parse().unwrap();
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn a_key_holds_at_most_its_share_of_open_streams_and_the_daemon_its_total() {
    let d = link_daemon(&[
        ("GATEWAY_SUPERVISOR__SERVER__STREAMS_PER_KEY", "3"),
        ("GATEWAY_SUPERVISOR__SERVER__STREAMS_MAX", "5"),
        ("GATEWAY_SUPERVISOR__SERVER__STREAM_KEEPALIVE", "1s"),
    ]);
    let mut admin: Vec<Sse> = (0..3)
        .map(|_| Sse::open(d.addr, &d.admin_key, None, ""))
        .collect();
    for (path, upgrade) in [
        ("/api/events", false),
        ("/api/ws", true),
        ("/api/logs?follow=true", false),
    ] {
        let (status, body) = opened(d.addr, &d.admin_key, path, upgrade);
        assert!(status.contains(" 429 "), "{path}: {status}");
        assert!(
            body.contains("\"rate_limited\"") && body.contains("server.streams_per_key"),
            "{path}: {body}"
        );
    }
    // Another key has its own share, up to the daemon's total.
    let viewer = d.create_key("viewer", "wall");
    let _viewer: Vec<Sse> = (0..2)
        .map(|_| Sse::open(d.addr, &viewer, None, ""))
        .collect();
    let (status, body) = opened(d.addr, &viewer, "/api/events", false);
    assert!(status.contains(" 429 "), "{status}");
    assert!(body.contains("server.streams_max"), "{body}");
    assert!(metric(&d, "rate_limited_total{limit=\"event_streams\"}") >= 4.0);

    // A stream closed by its client gives its place back (noticed at its next keep-alive).
    drop(admin.pop());
    wait_until("the closed stream's place given back", DEADLINE, || {
        let (status, _) = opened(d.addr, &d.admin_key, "/api/events", false);
        (!status.contains(" 429 ")).then_some(())
    });
}
