//! Live events: `GET /api/events` (Server-Sent Events, `Last-Event-ID` resumption, keep-alive
//! comments) and `GET /api/ws` (WebSocket, optional `?types=a,b`, pings). A consumer that falls
//! more than the bus's buffer behind is disconnected; it never slows the bus or other consumers.
//!
//! Every stream is paced by `server.stream_keepalive` (15 s): an SSE stream silent that long
//! sends a comment, and a WebSocket is pinged that often (so a proxy's idle timeout, 60 s in
//! nginx and most load balancers, never cuts it), and each asks its credential again then (so a
//! revoked key's stream ends even when no event comes). An SSE stream's silence is counted from
//! the last frame *sent*, not received: a filtered stream on a busy bus sends nothing for its
//! unwanted events, and must still keep its proxy awake. A WebSocket whose client answers
//! nothing — not a pong, not a frame — for three keep-alives is a dead peer and is closed.
//!
//! Each stream holds a slot ([`super::stream_slots`]) while it is open: one more than
//! `server.streams_per_key` for its key, or `server.streams_max` in all, is refused 429.

use std::collections::HashSet;
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::middleware::Credential;
use super::sse_pump::{Ended, PIPE, Pump};
use gateway_supervisor_actors::events::{Event, ResumeGap};

/// Keep-alives a WebSocket client may leave unanswered before it is taken for gone.
const UNANSWERED_PINGS: u32 = 3;

/// Why the daemon closes a WebSocket, said in its close frame.
enum Ending {
    /// The daemon is stopping (1001).
    Stopping,
    /// The key or console session that opened it no longer admits its caller (1008).
    CredentialEnded,
    /// The client answered nothing, not even a pong, for this long: three keep-alives (1008).
    Silent(Duration),
    /// The client fell more than the bus's buffer behind (1008).
    TooSlow,
}

impl Ending {
    fn reason(self) -> actix_ws::CloseReason {
        let (code, why) = match self {
            Ending::Stopping => (
                actix_ws::CloseCode::Away,
                "the supervisor is stopping".into(),
            ),
            Ending::CredentialEnded => (actix_ws::CloseCode::Policy, CREDENTIAL_ENDED.into()),
            Ending::Silent(d) => (
                actix_ws::CloseCode::Policy,
                format!("no answer to pings for {} s", d.as_secs()),
            ),
            Ending::TooSlow => (
                actix_ws::CloseCode::Policy,
                "too slow; events were dropped".into(),
            ),
        };
        actix_ws::CloseReason {
            code,
            description: Some(why),
        }
    }
}

/// Whether a frame was handed to the socket within a second: a client that cannot take one
/// that fast is too slow, and its socket is dropped.
async fn sent(write: impl std::future::Future<Output = Result<(), actix_ws::Closed>>) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(1), write).await,
        Ok(Ok(()))
    )
}

/// Why a stream ended under its caller: said in the SSE stream's last comment and the
/// WebSocket's close reason.
const CREDENTIAL_ENDED: &str =
    "the key that opened this stream was revoked, or its console session ended";

/// The credential that opened a stream, asked again before each frame it sends: a stream is
/// one request that lasts for hours, and a key revoked or a console session logged out must
/// not go on receiving the fleet's events. Asked from memory (a digest, or a cookie's MAC and
/// the logged-out set), a few microseconds against a frame's serialization.
///
/// It also holds what the key sees (docs/design.md, *Tenancy*): a scoped key's stream carries
/// the events of gateways in its scope as they are when each event is sent, and no event of
/// none (the fleet's own), so every stream — SSE, WebSocket, `logs?follow` — is filtered here.
struct Recheck {
    credential: Option<Credential>,
    app: web::Data<AppState>,
    /// `None`: a platform key, which sees every event.
    visible: Option<super::visible::Visible>,
}

impl Recheck {
    fn new(app: &web::Data<AppState>, req: &HttpRequest) -> Recheck {
        let visible = req
            .extensions()
            .get::<crate::auth::Principal>()
            .map(|p| app.scopes.of(p))
            .filter(|v| !v.sees_all());
        Recheck {
            credential: Credential::of(req),
            app: app.clone(),
            visible,
        }
    }

    /// Whether the key sees event `e`.
    fn shows(&self, e: &Event) -> bool {
        self.visible
            .as_ref()
            .is_none_or(|v| e.gateway_id.is_some_and(|g| v.gateway(g)))
    }

    /// Whether the stream may go on. A request let in without a credential it presented (none
    /// reaches `/api` today) has nothing to ask again.
    fn admits(&self) -> bool {
        self.credential
            .as_ref()
            .is_none_or(|c| c.still_admits(&self.app))
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Comma-separated event types to receive (default: all).
    pub types: Option<String>,
}

fn type_filter(q: &EventQuery) -> Option<HashSet<String>> {
    q.types.as_deref().map(|t| {
        t.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

fn wanted(filter: &Option<HashSet<String>>, e: &Event) -> bool {
    filter.as_ref().is_none_or(|f| f.contains(e.kind.as_str()))
}

fn sse_frame(e: &Event) -> Bytes {
    let data = serde_json::to_string(e).unwrap_or_else(|_| "{}".into());
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {data}\n\n",
        e.id,
        e.kind.as_str()
    ))
}

/// One event as the stream frames it (the document's schema for `text/event-stream` applies to
/// each event).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // the stream writes these fields as text
pub struct SseEvent {
    /// The event's id; send the last one seen as `Last-Event-ID` to resume.
    id: String,
    /// The event's type, e.g. `gateway.status`.
    event: String,
    /// `{id, type, gateway_id?, ts, payload}` as JSON.
    data: String,
}

#[utoipa::path(get, path = "/api/events", tag = "events",
    description = "Server-Sent Events: `{id, type, gateway_id?, ts, payload}` for gateway.status, gateway.primary, connection.changed, and later session/spawn/log events. Send `Last-Event-ID` to resume (the last 1,024 events are kept); a client that missed events it cannot be given (too far behind, or an id from before a restart) first gets an `event: reset` frame saying why. In a cluster every instance's stream carries every instance's events under the same ids. A comment line after 15 s without a frame (`server.stream_keepalive`) keeps proxies from closing the stream. The stream ends, after a last comment saying why, once the key that opened it is revoked or its console session ends.",
    params(EventQuery),
    responses((status = 200, content_type = "text/event-stream", body = SseEvent,
        description = "a stream of events, each `id`, `event` (its type) and `data` (the event as JSON)"),
        (status = 429, body = ErrorBody, description = "`rate_limited`: the key holds `server.streams_per_key` streams open already, or the daemon `server.streams_max`; close one (`Retry-After`)")))]
pub async fn sse(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<EventQuery>,
) -> Result<HttpResponse, ApiError> {
    let last_id = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let filter = type_filter(&query);
    stream(&state, &req, last_id, move |e| wanted(&filter, e))
}

/// A Server-Sent Events stream of the events `wanted` lets through, from after `last_id` (the
/// replay) or from now. To `HEAD`, the stream's headers alone: a stream has no end, and one
/// whose body the server drops would be held open for nothing.
pub(super) fn stream(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    last_id: Option<u64>,
    wanted: impl Fn(&Event) -> bool + Send + 'static,
) -> Result<HttpResponse, ApiError> {
    if req.method() == actix_web::http::Method::HEAD {
        return Ok(HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "text/event-stream"))
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .finish());
    }
    let slot = state.stream_slot(req)?;
    // Missed events it cannot be given: said first, never silence.
    let reset = last_id.and_then(|last| state.events.resume_gap(last).map(|gap| (last, gap)));
    let (backlog, rx) = state.events.subscribe_after(last_id);
    let events = state.events.clone();
    let mut shutdown = state.shutdown.subscribe();
    let recheck = Recheck::new(state, req);
    let keepalive = state.stream_keepalive;
    let (tx, out) = tokio::sync::mpsc::channel::<Result<Bytes, actix_web::Error>>(PIPE);
    actix_web::rt::spawn(async move {
        // Held while the stream is open: given back when this task ends.
        let _slot = slot;
        let keep = |e: &Event| wanted(e) && recheck.shows(e);
        let mut pump = Pump::new(tx, rx, keep, keepalive);
        // Opening comment: clients see the stream is live before the first event.
        if pump
            .send(Bytes::from_static(b": connected\n\n"))
            .await
            .is_err()
        {
            return;
        }
        let ended = async {
            if let Some((last, gap)) = reset {
                let data = match gap {
                    ResumeGap::TooFarBehind { oldest_kept } => serde_json::json!({
                        "reason": "too_far_behind", "last_event_id": last, "oldest_kept": oldest_kept,
                    }),
                    ResumeGap::UnknownId { next } => serde_json::json!({
                        "reason": "unknown_event_id", "last_event_id": last, "next_id": next,
                    }),
                };
                let frame = format!("event: reset\ndata: {data}\n\n");
                pump.send(Bytes::from(frame)).await?;
            }
            for e in &backlog {
                if keep(e) {
                    pump.send(sse_frame(e)).await?;
                }
            }
            loop {
                let quiet = tokio::time::Instant::now() + keepalive;
                let frame = tokio::select! {
                    next = pump.next(quiet) => match next? {
                        Some(e) => sse_frame(&e),
                        None => Bytes::from_static(b": keep-alive\n\n"),
                    },
                    _ = shutdown.wait_for(|stopping| *stopping) => return Ok(()),
                };
                if !recheck.admits() {
                    pump.last_word(format!(": {CREDENTIAL_ENDED}\n\n"));
                    return Ok(());
                }
                pump.send(frame).await?;
            }
        }
        .await;
        if let Err(Ended::Behind | Ended::Stalled) = ended {
            events.note_dropped();
            pump.last_word(
                ": dropped: too far behind; reconnect with Last-Event-ID\n\n".to_owned(),
            );
        }
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(tokio_stream_from(out)))
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, actix_web::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, actix_web::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[utoipa::path(get, path = "/api/ws", tag = "events",
    description = "The same events over a WebSocket (text frames, one JSON event each); `?types=` filters. The daemon pings every 15 s (`server.stream_keepalive`) and closes a client that answers nothing for three of them. Closed with code 1008 once the key that opened it is revoked or its console session ends (asked before every event and every ping).",
    params(EventQuery),
    responses((status = 101, description = "switching to WebSocket"),
        (status = 429, body = ErrorBody, description = "`rate_limited`: the key holds `server.streams_per_key` streams open already, or the daemon `server.streams_max`"),
        (status = 426, body = ErrorBody, description = "`upgrade_required`: not a WebSocket handshake (`Connection: Upgrade`, `Upgrade: websocket`, `Sec-WebSocket-Version: 13`, `Sec-WebSocket-Key`); `GET /api/events` serves the same events over plain HTTP")))]
pub async fn ws(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
    query: web::Query<EventQuery>,
) -> Result<HttpResponse, actix_web::Error> {
    let slot = state.stream_slot(&req)?;
    let (response, mut session, mut incoming) =
        actix_ws::handle(&req, body).map_err(|e| ApiError::UpgradeRequired(e.to_string()))?;
    let filter = type_filter(&query);
    let (_, mut rx) = state.events.subscribe_after(None);
    let events = state.events.clone();
    let mut shutdown = state.shutdown.subscribe();
    let recheck = Recheck::new(&state, &req);
    let keepalive = state.stream_keepalive;
    actix_web::rt::spawn(async move {
        // Held while the socket is open: given back when this task ends.
        let _slot = slot;
        let mut pings =
            tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
        pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut heard = tokio::time::Instant::now();
        let ending = loop {
            tokio::select! {
                _ = shutdown.wait_for(|stopping| *stopping) => break Some(Ending::Stopping),
                _ = pings.tick() => {
                    if !recheck.admits() {
                        break Some(Ending::CredentialEnded);
                    }
                    let limit = keepalive * UNANSWERED_PINGS;
                    if heard.elapsed() >= limit {
                        break Some(Ending::Silent(limit));
                    }
                    if !sent(session.ping(b"")).await {
                        return;
                    }
                }
                msg = incoming.next() => {
                    heard = tokio::time::Instant::now();
                    match msg {
                        Some(Ok(actix_ws::Message::Ping(p))) => {
                            if !sent(session.pong(&p)).await {
                                return;
                            }
                        }
                        Some(Ok(actix_ws::Message::Close(_))) | None | Some(Err(_)) => break None,
                        Some(Ok(_)) => {}
                    }
                },
                event = rx.recv() => match event {
                    Ok(e) if wanted(&filter, &e) && recheck.shows(&e) => {
                        if !recheck.admits() {
                            break Some(Ending::CredentialEnded);
                        }
                        let text = serde_json::to_string(&*e).unwrap_or_default();
                        if !sent(session.text(text)).await {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => {
                        events.note_dropped();
                        break Some(Ending::TooSlow);
                    }
                    Err(RecvError::Closed) => break None,
                },
            }
        };
        let _ = session.close(ending.map(Ending::reason)).await;
    });
    Ok(response)
}
