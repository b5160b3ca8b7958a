//! What a Server-Sent Events stream sends, and when it gives a client up (`events.rs` opens
//! the stream; `GET /api/events` and `GET /api/logs?follow=true` are both this).
//!
//! A stream has two bounds. The bus drops a subscriber that falls [`SUBSCRIBER_BUFFER`] events
//! behind — counting every event, also those this stream does not want — and the pipe to the
//! response body holds [`PIPE`] frames. It used to be that the pump stopped reading the bus
//! while it sent the replay (`Last-Event-ID`), and gave a client up as soon as the pipe was
//! full: a client resuming on a busy fleet (status and connection changes of thousands of
//! gateways, which a `?types=gateway.changed` stream never sends) was dropped for events it had
//! not asked for, reconnected, and was dropped again; and a burst of more than 16 wanted events
//! at once (a probe of the fleet) ended a stream whose client was reading, before the body had
//! been polled once (the integration suite's resume test failed so on PostgreSQL, 2026-12-02).
//!
//! Now every frame is sent while the bus is read on: the wanted events that come meanwhile are
//! held, in order, and sent next. A client is given up when it falls [`SUBSCRIBER_BUFFER`]
//! *wanted* events behind (held, not sent), or takes no frame for `patience` (the keep-alive
//! interval, 15 s by default): then a last comment says why, and it resumes with
//! `Last-Event-ID`. The memory a stream can hold is those events, shared with the bus's replay.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use gateway_supervisor_actors::events::{Event, SUBSCRIBER_BUFFER};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc;

/// Frames between the pump and the response body.
pub(super) const PIPE: usize = 16;

pub(super) type Frames = mpsc::Sender<Result<Bytes, actix_web::Error>>;

/// Why a stream ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Ended {
    /// The client went away.
    Gone,
    /// The client fell this many wanted events behind (or the bus dropped it).
    Behind,
    /// The client took no frame for the patience.
    Stalled,
    /// The bus closed (the daemon is stopping).
    Closed,
}

/// Sends frames to one client, reading the bus on while it waits.
pub(super) struct Pump<K> {
    tx: Frames,
    rx: broadcast::Receiver<Arc<Event>>,
    /// Whether this stream sends an event (its types, the key's scope).
    keep: K,
    /// Wanted events that came while a frame was on its way.
    held: VecDeque<Arc<Event>>,
    patience: Duration,
    bus_open: bool,
}

impl<K: Fn(&Event) -> bool> Pump<K> {
    pub(super) fn new(
        tx: Frames,
        rx: broadcast::Receiver<Arc<Event>>,
        keep: K,
        patience: Duration,
    ) -> Self {
        Pump {
            tx,
            rx,
            keep,
            held: VecDeque::new(),
            patience,
            bus_open: true,
        }
    }

    /// Sends `frame`, holding the wanted events that come meanwhile.
    pub(super) async fn send(&mut self, frame: Bytes) -> Result<(), Ended> {
        let Pump {
            tx,
            rx,
            keep,
            held,
            patience,
            bus_open,
        } = self;
        let send = tx.send(Ok(frame));
        tokio::pin!(send);
        let stalled = tokio::time::sleep(*patience);
        tokio::pin!(stalled);
        loop {
            tokio::select! {
                biased;
                sent = &mut send => return sent.map_err(|_| Ended::Gone),
                () = &mut stalled => return Err(Ended::Stalled),
                event = rx.recv(), if *bus_open => hold(held, keep, bus_open, event)?,
            }
        }
    }

    /// The next event to send: one held, else the next wanted one from the bus; `None` when
    /// `quiet` passes first (time for a keep-alive).
    pub(super) async fn next(
        &mut self,
        quiet: tokio::time::Instant,
    ) -> Result<Option<Arc<Event>>, Ended> {
        if let Some(e) = self.held.pop_front() {
            return Ok(Some(e));
        }
        loop {
            if !self.bus_open {
                return Err(Ended::Closed);
            }
            tokio::select! {
                event = self.rx.recv() => {
                    hold(&mut self.held, &self.keep, &mut self.bus_open, event)?;
                    if let Some(e) = self.held.pop_front() {
                        return Ok(Some(e));
                    }
                }
                () = tokio::time::sleep_until(quiet) => return Ok(None),
            }
        }
    }

    /// A last comment, if the pipe has room (the client is leaving or not reading).
    pub(super) fn last_word(&self, comment: String) {
        let _ = self.tx.try_send(Ok(Bytes::from(comment)));
    }
}

/// Takes `event` off the bus: held if the stream wants it, unless [`SUBSCRIBER_BUFFER`] are
/// held already.
fn hold(
    held: &mut VecDeque<Arc<Event>>,
    keep: &impl Fn(&Event) -> bool,
    bus_open: &mut bool,
    event: Result<Arc<Event>, RecvError>,
) -> Result<(), Ended> {
    match event {
        Ok(e) if keep(&e) => {
            if held.len() >= SUBSCRIBER_BUFFER {
                return Err(Ended::Behind);
            }
            held.push_back(e);
        }
        Ok(_) => {}
        Err(RecvError::Lagged(_)) => return Err(Ended::Behind),
        Err(RecvError::Closed) => *bus_open = false,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_supervisor_actors::events::{EventBus, EventKind};

    fn wanted(e: &Event) -> bool {
        e.kind == EventKind::GatewayChanged
    }

    /// The pump as `events.rs` runs it: the frames of the wanted events, then `None` once the
    /// stream ends.
    fn run(bus: &EventBus, patience: Duration) -> mpsc::Receiver<Result<Bytes, actix_web::Error>> {
        let (tx, out) = mpsc::channel(PIPE);
        let (_, rx) = bus.subscribe_after(None);
        let mut pump = Pump::new(tx, rx, wanted, patience);
        actix_web::rt::spawn(async move {
            loop {
                let quiet = tokio::time::Instant::now() + patience;
                let Ok(Some(e)) = pump.next(quiet).await else {
                    return;
                };
                let frame = Bytes::from(format!("{}\n", e.id));
                if pump.send(frame).await.is_err() {
                    return;
                }
            }
        });
        out
    }

    fn ids(frames: &[Result<Bytes, actix_web::Error>]) -> Vec<u64> {
        frames
            .iter()
            .map(|f| {
                let text = String::from_utf8_lossy(f.as_ref().unwrap()).into_owned();
                text.trim().parse().unwrap()
            })
            .collect()
    }

    async fn take(
        out: &mut mpsc::Receiver<Result<Bytes, actix_web::Error>>,
        n: usize,
    ) -> Vec<Result<Bytes, actix_web::Error>> {
        let mut got = Vec::new();
        while got.len() < n {
            let next = tokio::time::timeout(Duration::from_secs(5), out.recv()).await;
            match next {
                Ok(Some(frame)) => got.push(frame),
                _ => break,
            }
        }
        got
    }

    /// A burst of wanted events larger than the pipe, published before the body is polled
    /// once (one thread: nothing runs between the publishes): every one arrives, in order.
    #[actix_web::test]
    async fn a_burst_larger_than_the_pipe_reaches_a_reading_client_whole() {
        let bus = EventBus::new();
        let mut out = run(&bus, Duration::from_secs(15));
        let published: Vec<u64> = (0..100)
            .map(|i| bus.publish(EventKind::GatewayChanged, None, serde_json::json!({"i": i})))
            .collect();
        let got = take(&mut out, 100).await;
        assert_eq!(ids(&got), published);
    }

    /// Events the stream does not want, many more than the bus lets a subscriber fall behind
    /// by, while the client takes its frames slowly: the client is not dropped for them and
    /// gets every wanted one.
    #[actix_web::test]
    async fn events_a_stream_does_not_want_never_drop_its_client() {
        let bus = EventBus::new();
        let mut out = run(&bus, Duration::from_secs(15));
        let mut published = Vec::new();
        for i in 0..20 {
            published.push(bus.publish(
                EventKind::GatewayChanged,
                None,
                serde_json::json!({"i": i}),
            ));
            // 60 of the fleet's status changes, 1,200 in all against the bus's 256.
            for _ in 0..60 {
                bus.publish(EventKind::GatewayStatus, None, serde_json::json!({}));
            }
            tokio::task::yield_now().await;
        }
        let got = take(&mut out, 20).await;
        assert_eq!(ids(&got), published);
    }

    type Client = mpsc::Receiver<Result<Bytes, actix_web::Error>>;

    /// A pump whose pipe (of one frame) a client that takes nothing has let fill, and that
    /// client.
    async fn full(bus: &EventBus, patience: Duration) -> (Pump<fn(&Event) -> bool>, Client) {
        let (tx, out) = mpsc::channel(1);
        let (_, rx) = bus.subscribe_after(None);
        let mut pump = Pump::new(tx, rx, wanted as fn(&Event) -> bool, patience);
        pump.send(Bytes::from_static(b"fills the pipe"))
            .await
            .unwrap();
        (pump, out)
    }

    /// A client that takes nothing is given up at the patience, and one that falls more than
    /// the bus's buffer of wanted events behind at once.
    #[actix_web::test]
    async fn a_client_that_takes_nothing_is_given_up() {
        let bus = EventBus::new();
        let (mut pump, _client) = full(&bus, Duration::from_millis(200)).await;
        assert_eq!(
            pump.send(Bytes::from_static(b"x")).await,
            Err(Ended::Stalled)
        );

        let (mut pump, _client) = full(&bus, Duration::from_secs(15)).await;
        for i in 0..=SUBSCRIBER_BUFFER {
            bus.publish(EventKind::GatewayChanged, None, serde_json::json!({"i": i}));
        }
        assert_eq!(
            pump.send(Bytes::from_static(b"x")).await,
            Err(Ended::Behind)
        );
    }
}
