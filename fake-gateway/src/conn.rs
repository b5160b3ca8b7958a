//! One connection: HTTP or WebSocket upgrade on the same port, the handshake in the real
//! gateway's order of checks, then requests, events, ticks and pings, with faults applied live.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};

use crate::auth::{self, Refusal};
use crate::hostile::Hostile;
use crate::{ConnCtl, Ctl, Shared, lock, methods, now_ms, random_id};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
const PREAUTH_MAX_FRAME: usize = 64 * 1024;
const MAX_PAYLOAD: usize = 25 * 1024 * 1024;
/// The read buffer a connection starts with: most frames fit (a `connect` is ~1 KiB).
const READ_BUFFER: usize = 4 * 1024;

type Ws = WebSocketStream<TcpStream>;

async fn black_hole() {
    // Hold the socket open and say nothing.
    tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
}

pub(crate) async fn serve(shared: Arc<Shared>, mut stream: TcpStream) {
    shared.counters.accepts.fetch_add(1, Ordering::Relaxed);
    let hang = lock(&shared.faults).hang;
    if hang {
        return black_hole().await;
    }
    let Some((path, headers)) = read_head(&mut stream).await else {
        return;
    };
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let upgrade = header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !upgrade {
        return http(&shared, &mut stream, &path).await;
    }
    shared
        .counters
        .upgrade_requests
        .fetch_add(1, Ordering::Relaxed);
    let refuse_upgrade = lock(&shared.faults).refuse_upgrade;
    if let Some(status) = refuse_upgrade {
        let _ = stream
            .write_all(
                format!(
                    "HTTP/1.1 {status} Refused\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                )
                .as_bytes(),
            )
            .await;
        return;
    }
    let Some(key) = header("sec-websocket-key") else {
        return;
    };
    let accept = derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {accept}\r\n\r\n"
    );
    let hostile = lock(&shared.faults).hostile.clone();
    if let Some(Hostile::Drip(every)) = hostile {
        for byte in response.as_bytes() {
            if stream.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(every).await;
        }
        // Finished after all: never say more.
        return black_hole().await;
    }
    if stream.write_all(response.as_bytes()).await.is_err() {
        return;
    }
    // tungstenite zeroes its whole read buffer before every read (`FrameCodec::read_in`), and
    // its default is 128 KiB: at 10,000 connections that memset and its allocation were a
    // quarter of the fake fleet's CPU while the daemon linked them, on the same two cores.
    // Frames larger than this still arrive whole (the buffer grows to the frame).
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(MAX_PAYLOAD))
        .max_frame_size(Some(MAX_PAYLOAD));
    let ws = WebSocketStream::from_raw_socket(stream, Role::Server, Some(config)).await;
    shared.counters.upgrades.fetch_add(1, Ordering::Relaxed);
    shared.counters.active.fetch_add(1, Ordering::Relaxed);
    session(&shared, ws).await;
    shared.counters.active.fetch_sub(1, Ordering::Relaxed);
}

/// Reads the request head; returns the path and headers.
async fn read_head(stream: &mut TcpStream) -> Option<(String, Vec<(String, String)>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let read = async {
        loop {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                return Some(());
            }
            if buf.len() > 16 * 1024 {
                return None;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .ok()??;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.split("\r\n");
    let path = lines.next()?.split_whitespace().nth(1)?.to_owned();
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Some((path, headers))
}

async fn http(shared: &Shared, stream: &mut TcpStream, path: &str) {
    let starting = lock(&shared.faults).starting;
    let endpoints = lock(&shared.cfg).http;
    let (status, content_type, body) = match endpoints {
        crate::HttpEndpoints::Health => {
            let (status, body) = health_endpoints(shared, starting, path);
            (status, "application/json", body.to_string())
        }
        crate::HttpEndpoints::ControlUiPage => (
            "200 OK",
            "text/html; charset=utf-8",
            CONTROL_UI_PAGE.to_owned(),
        ),
        crate::HttpEndpoints::Broken => (
            "500 Internal Server Error",
            "text/plain; charset=utf-8",
            "Internal Server Error".to_owned(),
        ),
    };
    let _ = stream
        .write_all(
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await;
}

/// What releases before 2026.3 serve on every HTTP path: the Control UI's page (shortened).
const CONTROL_UI_PAGE: &str = "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"UTF-8\" /><title>OpenClaw Control</title></head>\n<body><openclaw-app></openclaw-app></body>\n</html>\n";

fn health_endpoints(shared: &Shared, starting: bool, path: &str) -> (&'static str, Value) {
    match path {
        "/health" | "/healthz" => ("200 OK", json!({"ok": true, "status": "live"})),
        "/ready" | "/readyz" if starting => (
            "503 Service Unavailable",
            json!({"ready": false, "failing": ["startup"]}),
        ),
        "/ready" | "/readyz" => (
            "200 OK",
            json!({"ready": true, "failing": [], "uptimeMs": shared.started.elapsed().as_millis() as u64}),
        ),
        _ => ("404 Not Found", json!({"error": "not found"})),
    }
}

async fn close(ws: &mut Ws, code: u16, reason: &str) {
    // A close reason is at most 123 bytes.
    let mut reason = reason.to_owned();
    while reason.len() > 123 {
        reason.pop();
    }
    let _ = ws
        .send(Message::Close(Some(CloseFrame {
            code: code.into(),
            reason: reason.into(),
        })))
        .await;
    let _ = ws.close(None).await;
}

async fn refuse(shared: &Shared, ws: &mut Ws, id: &str, r: Refusal) {
    shared.counters.refusals.fetch_add(1, Ordering::Relaxed);
    let res = json!({"type": "res", "id": id, "ok": false, "error": r.error});
    let _ = ws.send(Message::Text(res.to_string().into())).await;
    close(ws, r.close_code, &r.close_reason).await;
}

/// What a successful handshake established.
struct Hello {
    /// Who sent the connect; every later frame on the socket is stamped on it.
    dialer: Arc<crate::Dialer>,
    device_id: Option<String>,
    shared_token: bool,
    approval_client: bool,
    client: crate::approvals::Client,
}

async fn session(shared: &Arc<Shared>, mut ws: Ws) {
    let slow = lock(&shared.faults).slow_handshake;
    if let Some(delay) = slow {
        tokio::time::sleep(delay).await;
    }
    let nonce = random_id();
    let ts = now_ms();
    let mut challenge = json!({"type": "event", "event": "connect.challenge", "payload": {"nonce": nonce, "ts": ts, "capabilities": []}});
    if let Some(Hostile::Challenge(frame)) = lock(&shared.faults).hostile.clone() {
        challenge = frame;
    }
    if ws
        .send(Message::Text(challenge.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let close_now = lock(&shared.faults).close_after_challenge.clone();
    if let Some((code, reason)) = close_now {
        return close(&mut ws, code, &reason).await;
    }
    let Some(hello) = handshake(shared, &mut ws, &nonce).await else {
        return;
    };
    run(shared, ws, hello).await;
}

/// A socket past its handshake, already reachable through `Shared::conns`.
struct Registered {
    id: u64,
    dialer: Arc<crate::Dialer>,
    tx: mpsc::UnboundedSender<Ctl>,
    rx: mpsc::UnboundedReceiver<Ctl>,
}

async fn handshake(shared: &Arc<Shared>, ws: &mut Ws, nonce: &str) -> Option<Registered> {
    let first = match tokio::time::timeout(HANDSHAKE_TIMEOUT, ws.next()).await {
        Err(_) => {
            close(ws, 1000, "").await;
            return None;
        }
        Ok(None) | Ok(Some(Err(_))) => return None,
        Ok(Some(Ok(m))) => m,
    };
    let text = match first {
        Message::Text(t) if t.len() > PREAUTH_MAX_FRAME => {
            close(ws, 1009, "").await;
            return None;
        }
        Message::Text(t) => t,
        Message::Close(_) => return None,
        _ => {
            close(ws, 1008, "invalid request frame").await;
            return None;
        }
    };
    let Ok(frame) = serde_json::from_str::<Value>(&text) else {
        close(ws, 1000, "").await;
        return None;
    };
    let id = frame
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if frame.get("type").and_then(Value::as_str) != Some("req") || id.is_empty() {
        close(ws, 1008, "invalid request frame").await;
        return None;
    }
    if frame.get("method").and_then(Value::as_str) != Some("connect") {
        let r = Refusal {
            error: json!({"code": "INVALID_REQUEST", "message": "invalid handshake: first request must be connect"}),
            close_code: 1008,
            close_reason: "invalid handshake: first request must be connect".into(),
        };
        refuse(shared, ws, &id, r).await;
        return None;
    }
    match admit(shared, frame.get("params").unwrap_or(&Value::Null), nonce) {
        Ok((payload, hello)) => {
            // Registered before hello-ok goes out: a fault injected the moment the client
            // sees it (close, rotate, remove) must reach this socket.
            let conn_id = shared.next();
            let (tx, rx) = mpsc::unbounded_channel::<Ctl>();
            lock(&shared.conns).insert(
                conn_id,
                ConnCtl {
                    tx: tx.clone(),
                    device_id: hello.device_id,
                    shared_token: hello.shared_token,
                    approval_client: hello.approval_client,
                    client: hello.client,
                },
            );
            let hostile = lock(&shared.faults).hostile.clone();
            let payload = match &hostile {
                Some(h) => h.hello(payload),
                None => payload,
            };
            let res = json!({"type": "res", "id": id, "ok": true, "payload": payload});
            if ws
                .send(Message::Text(res.to_string().into()))
                .await
                .is_err()
            {
                lock(&shared.conns).remove(&conn_id);
                return None;
            }
            shared.counters.hellos.fetch_add(1, Ordering::Relaxed);
            for frame in hostile.iter().flat_map(Hostile::after_hello) {
                let _ = tx.send(Ctl::Raw(frame));
            }
            if let Some((code, reason)) = lock(&shared.faults).close_after_hello.clone() {
                let _ = tx.send(Ctl::Close(code, reason));
            }
            Some(Registered {
                id: conn_id,
                dialer: hello.dialer,
                tx,
                rx,
            })
        }
        Err(r) => {
            refuse(shared, ws, &id, r).await;
            None
        }
    }
}

/// The real gateway's order: params → starting → protocol → role → shared secret → device
/// proof → pairing → hello.
fn admit(shared: &Shared, params: &Value, nonce: &str) -> Result<(Value, Hello), Refusal> {
    let c = auth::parse_connect(params)?;
    if lock(&shared.faults).starting {
        return Err(auth::unavailable_starting());
    }
    let (protocol, token, version, tick) = {
        let cfg = lock(&shared.cfg);
        (
            cfg.protocol,
            cfg.token.clone(),
            cfg.version.clone(),
            cfg.tick_interval,
        )
    };
    auth::check_protocol(&c, protocol)?;
    auth::check_role(&c)?;
    let device_id = c.device.as_ref().map(|d| d.id.clone());
    let mut method = "none";
    if let Some(expected) = &token {
        match (&c.token, &c.device_token) {
            (Some(t), _) if t != expected => return Err(auth::token_mismatch(c.device.is_some())),
            (Some(_), _) => method = "token",
            (None, Some(dt)) => {
                if !shared.device_token_ok(device_id.as_deref(), dt) {
                    return Err(auth::device_token_mismatch());
                }
                method = "device-token";
            }
            (None, None) if c.device.is_some() => return Err(auth::token_missing()),
            (None, None) => return Err(auth::device_identity_required()),
        }
    }
    *lock(&shared.connect_caps) = c.caps.clone();
    let silence = lock(&shared.cfg).silence;
    let dialer = Arc::new(crate::Dialer::new(
        c.instance_id.clone().unwrap_or_default(),
        crate::dialer::clock_us(),
        u64::try_from(silence.as_micros()).unwrap_or(u64::MAX),
    ));
    {
        let mut dialers = lock(&shared.dialers);
        if dialers.len() >= crate::DIALERS_KEPT {
            dialers.pop_front();
        }
        dialers.push_back(dialer.clone());
    }
    let mut scopes = c.scopes.clone();
    let mut device_token = None;
    match &c.device {
        Some(d) => {
            auth::verify_device(&c, d, nonce, now_ms(), shared.signatures())?;
            match shared.pair(&d.id) {
                Ok(t) => device_token = Some(t),
                Err(request_id) => {
                    return Err(auth::pairing_required(&request_id, &d.id, &c.scopes));
                }
            }
        }
        None if token.is_none() => return Err(auth::device_identity_required()),
        None => {
            // Device-less clients keep their scopes only as gateway-client/backend or cli/cli.
            let keeps = matches!(
                (c.client_id.as_str(), c.client_mode.as_str()),
                ("gateway-client", "backend") | ("cli", "cli")
            );
            if !keeps {
                scopes.clear();
            }
        }
    }
    scopes.retain(|s| auth::OPERATOR_SCOPES.contains(&s.as_str()));
    shared.set_last_auth(method);
    let mut auth_block =
        json!({"method": method, "role": "operator", "scopes": scopes, "issuedAtMs": now_ms()});
    if let Some(t) = &device_token {
        auth_block["deviceToken"] = json!(t);
    }
    // 2026.9 (protocol 4) names the process (`bootId`); the captured 2026.2.25 does not.
    let mut server = json!({"version": version, "connId": random_id()});
    if protocol >= 4 {
        server["bootId"] = json!(*lock(&shared.boot_id));
        server["buildId"] = json!(format!("{version}-fake"));
    }
    let payload = json!({
        "type": "hello-ok",
        "protocol": protocol,
        "server": server,
        "features": {"methods": methods::advertised(shared), "events": methods::EVENTS,
                     "capabilities": if protocol >= 4 { CAPABILITIES_2026_9_6.as_slice() } else { &[] }},
        "snapshot": {
            "health": shared.health_payload(),
            "uptimeMs": shared.started.elapsed().as_millis() as u64,
            "suspension": {"phase": crate::lifecycle::held(shared)
                .map_or("accepting", |s| s.phase(crate::lifecycle::active_runs(shared)))},
        },
        "auth": auth_block,
        "policy": {"maxPayload": MAX_PAYLOAD, "maxBufferedBytes": 52_428_800, "tickIntervalMs": tick.as_millis() as u64},
    });
    Ok((
        payload,
        Hello {
            dialer,
            device_id,
            shared_token: method == "token",
            approval_client: c.caps.iter().any(|cap| cap == "approvals"),
            client: crate::approvals::Client {
                name: c
                    .display_name
                    .clone()
                    .unwrap_or_else(|| c.client_id.clone()),
                device_id: c.device.as_ref().map(|d| d.id.clone()),
            },
        },
    ))
}

async fn run(shared: &Arc<Shared>, ws: Ws, conn: Registered) {
    let Registered {
        id,
        dialer,
        tx,
        mut rx,
    } = conn;
    let (tick_every, ping_every, health_every) = {
        let cfg = lock(&shared.cfg);
        (
            cfg.tick_interval,
            cfg.ping_interval,
            cfg.health_event_interval,
        )
    };
    let (mut sink, mut stream) = ws.split();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + tick_every, tick_every);
    let never = Duration::from_secs(365 * 24 * 3600);
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + ping_every.unwrap_or(never),
        ping_every.unwrap_or(never),
    );
    let mut health = tokio::time::interval_at(
        tokio::time::Instant::now() + health_every.unwrap_or(never),
        health_every.unwrap_or(never),
    );
    let mut seq: u64 = 0;
    loop {
        let (hang, drop_pongs, delay) = {
            let f = lock(&shared.faults);
            (f.hang, f.drop_pongs, f.delay_pongs)
        };
        let reading = !hang && !drop_pongs;
        tokio::select! {
            ctl = rx.recv() => match ctl {
                Some(Ctl::Frame(mut v)) if !hang => {
                    if v.get("type").and_then(Value::as_str) == Some("event") {
                        seq += 1;
                        v["seq"] = json!(seq);
                    }
                    if v.get("type").and_then(Value::as_str) == Some("res") && lock(&shared.faults).wrong_ids {
                        v["id"] = json!(format!("not-{}", v["id"].as_str().unwrap_or_default()));
                    }
                    if sink.send(Message::Text(v.to_string().into())).await.is_err() { break; }
                }
                Some(Ctl::Frame(_)) => {}
                Some(Ctl::Raw(m)) => { if sink.send(m).await.is_err() { break; } }
                Some(Ctl::Close(code, reason)) => {
                    let _ = sink.send(Message::Close(Some(CloseFrame { code: code.into(), reason: reason.into() }))).await;
                    let _ = sink.close().await;
                    break;
                }
                None => break,
            },
            msg = stream.next(), if reading => {
                if let Some(Ok(_)) = &msg {
                    dialer.frame(crate::dialer::clock_us());
                }
                if let Some(d) = delay {
                    tokio::time::sleep(d).await;
                }
                match msg {
                    Some(Ok(Message::Text(t))) => {
                        // Like the real gateway, requests run concurrently (a long
                        // `agent.wait` must not stall the socket); responses may come out of order.
                        let (shared, tx) = (shared.clone(), tx.clone());
                        let client = lock(&shared.conns).get(&id).map(|c| c.client.clone()).unwrap_or_default();
                        tokio::spawn(async move {
                            if let Some(reply) = methods::handle(&shared, &t, &tx, &client).await {
                                let _ = tx.send(Ctl::Frame(reply));
                            }
                        });
                    }
                    Some(Ok(Message::Ping(_))) => {
                        shared.counters.pings_received.fetch_add(1, Ordering::Relaxed);
                        // tungstenite queued the pong; flush it out now.
                        if sink.flush().await.is_err() { break; }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                }
            }
            _ = tick.tick(), if !hang => {
                seq += 1;
                let f = json!({"type": "event", "event": "tick", "payload": {"ts": now_ms()}, "seq": seq});
                if sink.send(Message::Text(f.to_string().into())).await.is_err() { break; }
            }
            _ = ping.tick(), if !hang => {
                if sink.send(Message::Ping(Vec::from(now_ms().to_be_bytes()).into())).await.is_err() { break; }
            }
            _ = health.tick(), if !hang => {
                seq += 1;
                let f = json!({"type": "event", "event": "health", "payload": shared.health_payload(), "seq": seq});
                if sink.send(Message::Text(f.to_string().into())).await.is_err() { break; }
            }
            // Re-check faults that pause the read side.
            _ = tokio::time::sleep(Duration::from_millis(200)), if !reading => {}
        }
    }
    lock(&shared.conns).remove(&id);
}

/// `hello-ok.features.capabilities` of 2026.9.6 (captured); releases before 2026.9 send none.
const CAPABILITIES_2026_9_6: [&str; 21] = [
    "board-widget-put-canvas-doc",
    "chat-send-routing-contract",
    "gateway-restart-target-safe-v1",
    "model-catalog-snapshot",
    "node-worker-bundle-retention-v1",
    "node-worker-bundle-status-v1",
    "node-worker-captured-exec-policy",
    "node-worker-environment-session-v1",
    "node-worker-portal-stream-v1",
    "profile-binding-v1",
    "published-model-catalog",
    "progress-card-agent-scope-v1",
    "session-scoped-chat-metadata",
    "session-scoped-model-catalog",
    "session-unread-ack-contract",
    "session-goal-start-v1",
    "session-settings-contract",
    "session-settings-cas-v1",
    "openclaw-chat-wizard-cancel",
    "openclaw-setup-model-ref",
    "taskSuggestions.acceptModes",
];
