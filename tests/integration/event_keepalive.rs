//! Event streams paced by `server.stream_keepalive`: a quiet stream still asks its credential
//! again, a WebSocket peer that answers nothing is let go, and a filtered stream on a busy bus
//! still gets its keep-alive.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tungstenite::protocol::frame::coding::CloseCode;

use crate::support::fleet::link_daemon;
use crate::support::sse::{Comment, Sse};
use crate::support::{open_ws, wait_until};

const DEADLINE: Duration = Duration::from_secs(20);
const CREDENTIAL_ENDED: &str =
    "the key that opened this stream was revoked, or its console session ended";

fn daemon(keepalive: &str) -> crate::support::Daemon {
    link_daemon(&[
        ("GATEWAY_SUPERVISOR__SERVER__STREAM_KEEPALIVE", keepalive),
        ("GATEWAY_SUPERVISOR__AUTH__KEY_REFRESH_INTERVAL", "100ms"),
    ])
}

#[test]
fn a_websocket_client_that_answers_its_pings_stays_open_past_three_keep_alives() {
    let d = daemon("1s");
    let mut ws = open_ws(d.addr, &d.admin_key, "?types=gateway.changed", DEADLINE);
    // Five pings read, each answered by tungstenite at the next read: more than the three
    // keep-alives an unanswering client gets.
    for ping in 1..=5 {
        match ws.read() {
            Ok(tungstenite::Message::Ping(_)) => {}
            other => panic!("ping {ping}: {other:?}"),
        }
    }
    d.create_gateway("after-the-pings", 1, None);
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Ping(_)) => continue,
            Ok(tungstenite::Message::Text(t)) => {
                assert!(t.contains("after-the-pings"), "{t}");
                break;
            }
            other => panic!("the event after the pings: {other:?}"),
        }
    }
}

#[test]
fn a_quiet_websocket_is_closed_once_its_key_is_revoked_though_no_event_comes() {
    // Three keep-alives (9 s) leave the unread socket room for a slow `keys revoke`.
    let d = daemon("3s");
    let viewer = d.create_key("viewer", "wall");
    // A type nothing here raises: the socket carries no event at all.
    let mut ws = open_ws(d.addr, &viewer, "?types=spawn.result", DEADLINE);
    let out = d.cli(&["keys", "revoke", &viewer[..12]]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let close = loop {
        match ws.read() {
            Ok(tungstenite::Message::Ping(_)) => continue,
            Ok(tungstenite::Message::Close(Some(frame))) => break frame,
            other => panic!("the quiet WebSocket after the revocation: {other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::Policy);
    assert_eq!(close.reason.as_str(), CREDENTIAL_ENDED);
}

#[test]
fn a_websocket_client_that_answers_no_ping_is_closed_after_three_keep_alives() {
    let d = daemon("1s");
    let mut s = std::net::TcpStream::connect(d.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    write!(
        s,
        "GET /api/ws HTTP/1.1\r\nhost: {}\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\
         sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         x-api-key: {}\r\n\r\n",
        d.addr, d.admin_key
    )
    .unwrap();
    // Everything the daemon sends, read but never answered (no pong, no frame).
    let reason = b"no answer to pings for 3 s";
    let mut got = Vec::new();
    let until = Instant::now() + DEADLINE;
    while !got.windows(reason.len()).any(|w| w == reason) {
        assert!(
            Instant::now() < until,
            "still open after {DEADLINE:?}: {:?}",
            String::from_utf8_lossy(&got)
        );
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(0) => panic!(
                "closed without a reason: {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(
        got.starts_with(b"HTTP/1.1 101"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    let frames = &got[head_end..];
    // Server frames are unmasked: a ping is 0x89 0x00, the close 0x88, its code 1008.
    let ping = frames.windows(2).position(|w| w == [0x89, 0x00]);
    let close = frames
        .windows(4)
        .position(|w| w[0] == 0x88 && w[2..] == [0x03, 0xf0]);
    assert!(
        matches!((ping, close), (Some(p), Some(c)) if p < c),
        "pings, then a close frame with code 1008: {frames:?}"
    );
}

#[test]
fn a_filtered_event_stream_gets_its_keep_alive_while_other_events_stream_past() {
    let d = daemon("1s");
    let id = d.create_gateway("busy", 1, None)["id"].clone();
    let labels = format!("/api/gateways/{id}/labels");
    let busy = AtomicBool::new(true);
    let changes = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        // Events the stream below does not want, back to back: one gateway relabelled again
        // and again (`gateway.changed`), until the stream has had its say.
        scope.spawn(|| {
            while busy.load(Ordering::Relaxed) {
                let n = changes.fetch_add(1, Ordering::Relaxed);
                let res = d.call("PATCH", &labels, &d.admin_key, &json!({"n": n.to_string()}));
                assert_eq!(res.status, 200, "{}", res.text());
            }
        });
        wait_until("the bus to be busy", DEADLINE, || {
            (changes.load(Ordering::Relaxed) > 0).then_some(())
        });
        let mut filtered = Sse::open(d.addr, &d.admin_key, None, "?types=spawn.result");
        assert_eq!(filtered.comment(DEADLINE), Some(Comment::Connected));
        let keep_alive = filtered.comment(Duration::from_secs(5));
        busy.store(false, Ordering::Relaxed);
        assert_eq!(
            keep_alive,
            Some(Comment::KeepAlive),
            "no keep-alive within 5 s of a 1 s keep-alive while other events flowed"
        );
    });
}
