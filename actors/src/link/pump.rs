//! A connected link's socket, driven by a small task of its own beside the gateway actor.
//!
//! At 10,000 gateways nearly every frame a link reads is a gateway's ping (every 25 s, to be
//! answered with a pong) or its tick (every 30 s, which says only that the socket lives).
//! Handled by the actor, each of them woke the actor's whole context: actix polls the mailbox,
//! every spawned future and timer, the stream and the writer at every wake-up, and for a link
//! that last ran 25 s ago all of that is cold memory (the profile: a third of the daemon's
//! steady CPU, most of it cache misses). So the pump owns the socket (one framed socket, no
//! lock between a read half and a write half), answers pings itself, notes in the shared
//! [`Pulse`] what the actor's keepalive needs to know (a frame was heard, the gateway pinged),
//! and passes the actor only the frames that need it: responses, events, pongs, failures.
//! docs/design.md, *Link threads*.
//!
//! The actor stays the one that decides: it takes what the pump heard, in one value, before
//! every decision ([`Pulse::take`]), gives it orders in one value after ([`Pulse::order`]:
//! pass on the gateway's next ping when its round-trip ping is due to ride the pong, and how
//! many heartbeats the pump may take quietly), and the pump writes only
//! what the actor queued and the pongs the protocol owes, and none past the lease. Every
//! buffer is bounded: the actor is at most [`TO_ACTOR`] frames behind the pump, and the pump
//! stops reading a gateway whose unsent writes pass [`WRITE_HIGH`] (it would only owe it more
//! pongs). A pump whose actor let go gets [`CLOSE_GRACE`] to flush what is queued (a close
//! frame), then drops the socket.
//!
//! Pump and actor run on the same link thread and share one small allocation (the pulse and
//! the two queues between them): a fleet holds one per gateway. A queue holds no allocation
//! until used and gives it back each time it is emptied: kept, the room for four frames and
//! four writes was 830 bytes a link at steady state (heaptrack, 10,000 gateways), for queues
//! used a few times a minute.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use awc::BoxedSocket;
use awc::error::WsProtocolError;
use awc::ws::{Codec, Frame, Message};
use bytes::BytesMut;
use futures_util::{Sink, Stream};
use tokio_util::codec::Framed;

use crate::link::LeaseGuard;
use crate::link::machine::{Heard, PumpOrders, is_pulse_only};
use crate::link::messages::LiveStats;
use crate::ws_io::{READ_BUFFER_START, Received, settle};

/// Frames the pump may hand the actor before the actor takes them.
pub const TO_ACTOR: usize = 64;
/// Unsent bytes past which the pump stops reading (and taking the actor's writes).
pub const WRITE_HIGH: usize = 256 * 1024;
/// How long a pump whose actor let go of it may flush before the socket is dropped.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// What the pump saw that the actor's keepalive decides on, between two looks of the actor;
/// and the queues between the two. Shared by a pump and its actor, on one link thread.
pub struct Pulse {
    /// When the last frame (of any kind) arrived, since the actor last looked.
    heard: Cell<Option<Instant>>,
    /// When (Unix seconds) the gateway last pinged, since the actor last looked.
    pinged: Cell<Option<i64>>,
    /// The largest frame the pump reads; raised once, at `hello-ok`.
    cap: Cell<usize>,
    /// The actor wants the gateway's next ping passed on (its round-trip ping rides the pong;
    /// see `LinkMachine::wants_next_ping`).
    want_ping: Cell<bool>,
    /// What the actor queued for the gateway.
    to_pump: RefCell<VecDeque<Message>>,
    /// What the pump passed on, not yet taken.
    to_actor: RefCell<VecDeque<Received>>,
    pump_waker: Cell<Option<Waker>>,
    actor_waker: Cell<Option<Waker>>,
    /// The actor let go of the connection (its handle was dropped).
    actor_gone: Cell<bool>,
    /// The pump ended (the socket closed or failed, or it was let go).
    pump_gone: Cell<bool>,
    /// The gateway pinged since the last heartbeat (taken quietly or by the actor).
    vouched: Cell<bool>,
    /// Heartbeats the machine lets pass without it (see `LinkMachine::pump_orders`),
    /// less those taken since it last looked.
    quiet_left: Cell<u32>,
    /// Heartbeats taken quietly since the actor last looked.
    quiet_taken: Cell<u32>,
    /// The heartbeat rounds hold this pulse (`link/beats.rs`), every `beat_every`.
    beat_armed: Cell<bool>,
    beat_every: Cell<Duration>,
    /// A heartbeat is the actor's to take.
    beat_due: Cell<bool>,
    /// The link's live numbers: the pump notes every frame there, and a quiet heartbeat the
    /// gateway's last ping (as the actor's would).
    live: Arc<LiveStats>,
    /// What the pump's socket buffers held (their capacity, bytes) when it last waited.
    buffered: Cell<usize>,
}

impl Pulse {
    fn new(cap: usize, live: Arc<LiveStats>) -> Pulse {
        Pulse {
            heard: Cell::default(),
            pinged: Cell::default(),
            cap: Cell::new(cap),
            want_ping: Cell::default(),
            to_pump: RefCell::default(),
            to_actor: RefCell::default(),
            pump_waker: Cell::default(),
            actor_waker: Cell::default(),
            actor_gone: Cell::default(),
            pump_gone: Cell::default(),
            vouched: Cell::default(),
            quiet_left: Cell::default(),
            quiet_taken: Cell::default(),
            beat_armed: Cell::default(),
            beat_every: Cell::default(),
            beat_due: Cell::default(),
            live,
            buffered: Cell::default(),
        }
    }

    /// The bytes the pump's socket buffers held when it last waited: none on a link with
    /// nothing half read or unsent (see [`Pump::rest`]).
    pub fn buffered(&self) -> usize {
        self.buffered.get()
    }

    /// The bytes the two queues between pump and actor hold while empty: none once each was
    /// emptied (see [`FromPump`] and `Pump::take_writes`).
    pub fn queues_held(&self) -> usize {
        self.to_actor.borrow().capacity() * std::mem::size_of::<Received>()
            + self.to_pump.borrow().capacity() * std::mem::size_of::<Message>()
    }

    /// What the pump noticed since the machine last looked, in one piece (the machine's
    /// `Input::Heard`): the last frame heard, the gateway's last ping, the heartbeats taken
    /// quietly, and whether the gateway pinged after the last of them.
    pub fn take(&self) -> Heard {
        Heard {
            frame_at: self.heard.take(),
            pinged_at: self.pinged.take(),
            quiet: self.quiet_taken.take(),
            pinged_since: self.vouched.get(),
        }
    }

    /// What the machine asks of the pump until it next looks (`LinkMachine::pump_orders`):
    /// whether the gateway's next ping goes to the actor, and how many heartbeats may pass
    /// without it (less those taken since it last looked).
    pub fn order(&self, orders: PumpOrders) {
        self.want_ping.set(orders.want_ping);
        self.quiet_left
            .set(orders.quiet.saturating_sub(self.quiet_taken.get()));
    }

    pub fn set_cap(&self, limit: usize) {
        self.cap.set(limit);
    }

    /// The actor took a heartbeat itself: the next one needs a ping of its own.
    pub fn heartbeat_taken(&self) {
        self.vouched.set(false);
    }

    /// A heartbeat is due. Taken here (`true`) when the gateway pinged since the last one and
    /// the machine allowed one more; else it is the actor's (`false`), which is woken for it.
    pub(crate) fn beat(&self) -> bool {
        let quiet = self.vouched.get() && self.quiet_left.get() > 0;
        if quiet {
            self.vouched.set(false);
            self.quiet_left.set(self.quiet_left.get() - 1);
            self.quiet_taken.set(self.quiet_taken.get() + 1);
            if let Some(unix) = self.pinged.get() {
                self.live.seen(unix);
            }
        } else {
            self.beat_armed.set(false);
            self.beat_due.set(true);
            self.wake_actor();
        }
        quiet
    }

    /// Arms the heartbeat rounds for this pulse, unless they hold it already; `false` then.
    pub(crate) fn arm_beat(&self, every: Duration) -> bool {
        self.beat_every.set(every);
        !self.beat_armed.replace(true)
    }

    pub(crate) fn beat_every(&self) -> Duration {
        self.beat_every.get()
    }

    fn wake_pump(&self) {
        if let Some(waker) = self.pump_waker.take() {
            waker.wake();
        }
    }

    fn wake_actor(&self) {
        if let Some(waker) = self.actor_waker.take() {
            waker.wake();
        }
    }
}

/// Keeps `task`'s waker in `slot` (cloned only when it changed).
fn register(slot: &Cell<Option<Waker>>, task: &Context<'_>) {
    let waker = match slot.take() {
        Some(w) if w.will_wake(task.waker()) => w,
        _ => task.waker().clone(),
    };
    slot.set(Some(waker));
}

/// The actor's end of a pump: what to write, the pulse, and (dropped) the end of the
/// connection.
pub struct PumpHandle {
    shared: Rc<Pulse>,
}

impl PumpHandle {
    /// Queues a message for the gateway; `false` once the pump has ended.
    pub fn write(&self, message: Message) -> bool {
        if self.shared.pump_gone.get() {
            return false;
        }
        self.shared.to_pump.borrow_mut().push_back(message);
        self.shared.wake_pump();
        true
    }

    pub fn pulse(&self) -> &Rc<Pulse> {
        &self.shared
    }
}

impl Drop for PumpHandle {
    fn drop(&mut self) {
        self.shared.actor_gone.set(true);
        self.shared.wake_pump();
    }
}

/// What the actor hears from its pump.
#[derive(Debug)]
pub enum Up {
    /// A frame for the actor, in order.
    Frame(Received),
    /// A heartbeat the rounds did not take quietly.
    Heartbeat,
}

/// The frames the pump passes on, in order, and the heartbeats that are the actor's; ends
/// when the pump does.
pub struct FromPump {
    shared: Rc<Pulse>,
}

impl Stream for FromPump {
    type Item = Up;

    fn poll_next(self: Pin<&mut Self>, task: &mut Context<'_>) -> Poll<Option<Up>> {
        let shared = &self.shared;
        let mut queue = shared.to_actor.borrow_mut();
        match queue.pop_front() {
            Some(item) => {
                if queue.len() + 1 == TO_ACTOR {
                    shared.wake_pump(); // it waits for room
                }
                if queue.is_empty() {
                    *queue = VecDeque::new(); // emptied: its allocation goes
                }
                Poll::Ready(Some(Up::Frame(item)))
            }
            None if shared.pump_gone.get() => Poll::Ready(None),
            None if shared.beat_due.replace(false) => Poll::Ready(Some(Up::Heartbeat)),
            None => {
                register(&shared.actor_waker, task);
                Poll::Pending
            }
        }
    }
}

/// Where the pump is allowed to write: only while the lease lasts (see [`LeaseGuard`]).
pub struct PumpContext {
    pub lease: Option<LeaseGuard>,
    pub live: Arc<LiveStats>,
}

/// Starts the pump of an upgraded socket on this thread, reading frames up to `cap` bytes.
pub fn start(
    framed: Framed<BoxedSocket, Codec>,
    early: VecDeque<Result<Frame, WsProtocolError>>,
    cap: usize,
    cx: PumpContext,
) -> (PumpHandle, FromPump) {
    let shared = Rc::new(Pulse::new(cap, cx.live));
    let pump = Pump {
        framed,
        early,
        shared: shared.clone(),
        lease: cx.lease,
        applied: cap,
        reading: true,
        closed: false,
        ending: None,
    };
    actix::spawn(pump);
    (
        PumpHandle {
            shared: shared.clone(),
        },
        FromPump { shared },
    )
}

struct Pump {
    framed: Framed<BoxedSocket, Codec>,
    /// Frames that arrived with the upgrade response, read first.
    early: VecDeque<Result<Frame, WsProtocolError>>,
    shared: Rc<Pulse>,
    /// Where the pump may write (see [`PumpContext`]).
    lease: Option<LeaseGuard>,
    /// The frame cap the codec has now.
    applied: usize,
    /// Cleared by a frame that ends the link: the actor tears down, nothing after it is read.
    reading: bool,
    /// A close frame was queued: nothing after it is written.
    closed: bool,
    /// Once the actor let go (or queued a close): until when the pump may flush.
    ending: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// What the pump does with one frame read.
enum Hearing {
    /// Answered or noted here; the actor hears of it through the pulse.
    Kept,
    /// For the actor.
    Pass(Received),
}

/// The socket failed or closed: the pump ends.
struct Ended;

impl Pump {
    /// The pump's side of one frame: pings are answered, bare ticks noted, the rest passed on.
    /// Past the lease nothing is answered: every frame goes to the actor, which stops.
    fn hear(&mut self, item: Result<Frame, WsProtocolError>) -> Result<Hearing, Ended> {
        let (now, unix_ms) = (Instant::now(), crate::unix_now_ms());
        self.shared.heard.set(Some(now));
        self.shared.live.frame_heard(unix_ms);
        let frame = match item {
            Ok(frame) => frame,
            Err(err) => {
                let failure = crate::ws_io::read_failure(&err, self.applied);
                return Ok(Hearing::Pass(Received::Failed(failure)));
            }
        };
        settle(
            self.framed.read_buffer_mut(),
            frame_len(&frame),
            READ_BUFFER_START,
        );
        let received = crate::ws_io::receive(frame);
        if matches!(received, Received::Ping(_)) {
            self.shared.vouched.set(true);
        }
        if !LeaseGuard::permits(self.lease.as_ref(), now) {
            return Ok(Hearing::Pass(received));
        }
        match received {
            Received::Ping(payload) if !self.shared.want_ping.replace(false) => {
                Pin::new(&mut self.framed)
                    .start_send(Message::Pong(payload))
                    .map_err(|_| Ended)?;
                self.shared.pinged.set(Some(unix_ms.div_euclid(1000)));
                Ok(Hearing::Kept)
            }
            Received::Frame(frame) if is_pulse_only(&frame) => Ok(Hearing::Kept),
            other => Ok(Hearing::Pass(other)),
        }
    }

    fn apply_cap(&mut self) {
        let limit = self.shared.cap.get();
        if limit != self.applied {
            let codec = self.framed.codec().clone().max_size(limit);
            *self.framed.codec_mut() = codec;
            self.applied = limit;
        }
    }

    fn backed_up(&self) -> bool {
        self.framed.write_buffer().len() >= WRITE_HIGH
    }

    /// Takes the actor's writes into the socket's buffer, up to a close frame. The queue,
    /// once emptied, gives its allocation back, as the frames' queue does.
    fn take_writes(&mut self) -> Result<(), Ended> {
        while !self.closed && !self.backed_up() {
            let Some(message) = self.shared.to_pump.borrow_mut().pop_front() else {
                break;
            };
            self.closed = matches!(message, Message::Close(_));
            Pin::new(&mut self.framed)
                .start_send(message)
                .map_err(|_| Ended)?;
        }
        let mut queue = self.shared.to_pump.borrow_mut();
        if queue.is_empty() && queue.capacity() > 0 {
            *queue = VecDeque::new();
        }
        drop(queue);
        // Let go of, the pump only flushes, and for no longer than the grace: a gateway that
        // stopped reading cannot keep the socket (or what is queued for it).
        if self.closed || self.shared.actor_gone.get() {
            self.end();
        }
        Ok(())
    }

    /// Reads frames while the actor has room for them.
    fn read(&mut self, task: &mut Context<'_>) -> Result<(), Ended> {
        while self.reading
            && self.ending.is_none()
            && !self.backed_up()
            && self.shared.to_actor.borrow().len() < TO_ACTOR
        {
            self.apply_cap();
            // Room to read a tick or a ping in one go; an idle link holds none (`rest`).
            let buf = self.framed.read_buffer_mut();
            if buf.capacity() == 0 {
                buf.reserve(READ_BUFFER_START);
            }
            let item = match self.early.pop_front() {
                Some(item) => item,
                None => match Pin::new(&mut self.framed).poll_next(task) {
                    Poll::Ready(Some(item)) => item,
                    Poll::Ready(None) => return Err(Ended),
                    Poll::Pending => return Ok(()),
                },
            };
            if let Hearing::Pass(received) = self.hear(item)? {
                self.reading = !matches!(received, Received::Failed(_));
                self.shared.to_actor.borrow_mut().push_back(received);
                self.shared.wake_actor();
            }
        }
        Ok(())
    }

    fn end(&mut self) {
        if self.ending.is_none() {
            self.ending = Some(Box::pin(tokio::time::sleep(CLOSE_GRACE)));
        }
    }

    fn turn(&mut self, task: &mut Context<'_>) -> Result<Poll<()>, Ended> {
        self.take_writes()?;
        // The pongs join the actor's writes; the actor cannot queue more meanwhile (it runs on
        // this thread), so one flush sends all of them.
        self.read(task)?;
        // The last look at the lease before bytes reach the socket: what the actor queued
        // while the lease lasted, but was not flushed before the process was paused past it,
        // must not go out on resume (the fault run saw such frames reach gateways another
        // instance had taken meanwhile). The socket is dropped unwritten.
        if !LeaseGuard::permits(self.lease.as_ref(), Instant::now()) {
            return Err(Ended);
        }
        let flushed = match Pin::new(&mut self.framed).poll_flush(task) {
            Poll::Ready(Ok(())) => true,
            Poll::Ready(Err(_)) => return Err(Ended),
            Poll::Pending => false,
        };
        if let Some(grace) = &mut self.ending
            && (flushed || grace.as_mut().poll(task).is_ready())
        {
            let _ = Pin::new(&mut self.framed).poll_close(task);
            return Ok(Poll::Ready(()));
        }
        self.rest(flushed);
        // Woken by the actor (a write, room in its queue, letting go) or by the socket.
        register(&self.shared.pump_waker, task);
        Ok(Poll::Pending)
    }

    /// Before the pump waits: a buffer with nothing in it (nothing half read, all sent) gives
    /// its allocation back. A link reads a ping or a tick every 25–30 s and writes a pong; the
    /// 1.25 KiB its two buffers kept between them were 24 MB at 19,000 gateways, about a tenth
    /// of the daemon (docs/performance.md). Taking a buffer again for the next frame is one
    /// allocation of a size the thread's cache holds, beside the read and the write it serves.
    fn rest(&mut self, flushed: bool) {
        if self.framed.read_buffer().is_empty() {
            *self.framed.read_buffer_mut() = BytesMut::new();
        }
        if flushed {
            *self.framed.write_buffer_mut() = BytesMut::new();
        }
        let held = self.framed.read_buffer().capacity() + self.framed.write_buffer().capacity();
        self.shared.buffered.set(held);
    }
}

impl Future for Pump {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, task: &mut Context<'_>) -> Poll<()> {
        self.turn(task).unwrap_or(Poll::Ready(()))
    }
}

impl Drop for Pump {
    fn drop(&mut self) {
        self.shared.pump_gone.set(true);
        self.shared.wake_actor();
    }
}

fn frame_len(frame: &Frame) -> usize {
    match frame {
        Frame::Text(b) | Frame::Binary(b) | Frame::Ping(b) | Frame::Pong(b) => b.len(),
        // The gateway sends no fragmented frames; their pieces are small anyway.
        Frame::Continuation(_) | Frame::Close(_) => 0,
    }
}
