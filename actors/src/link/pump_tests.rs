//! The pump against a peer speaking WebSocket from the server's side, over an in-memory
//! socket: what it answers itself, what it passes to the actor, what it never writes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use awc::BoxedSocket;
use awc::ws::{CloseCode, Codec, Frame, Message};
use futures_util::{FutureExt, SinkExt, Stream, StreamExt};
use tokio::io::DuplexStream;
use tokio_util::codec::Framed;

use super::pump::{self, FromPump, PumpContext, PumpHandle};
use crate::link::LeaseGuard;
use crate::link::machine::PumpOrders;
use crate::link::messages::LiveStats;
use crate::ws_io::Received;

const WAIT: Duration = Duration::from_secs(10);

type Peer = Framed<DuplexStream, Codec>;

/// A pump on one end of an in-memory socket; the gateway's end, server-side framing.
fn pair(lease: Option<LeaseGuard>) -> (PumpHandle, FromPump, Peer) {
    pair_with(lease, Arc::new(LiveStats::default()))
}

fn pair_with(lease: Option<LeaseGuard>, live: Arc<LiveStats>) -> (PumpHandle, FromPump, Peer) {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let socket: BoxedSocket = Box::new(ours);
    let framed = Framed::new(socket, Codec::new().client_mode());
    let (handle, frames) = pump::start(
        framed,
        Default::default(),
        crate::ws_io::LINK_MAX_FRAME,
        PumpContext { lease, live },
    );
    (handle, frames, Framed::new(theirs, Codec::new()))
}

fn run<F: std::future::Future<Output = ()>>(test: F) {
    actix::System::new().block_on(async move {
        tokio::time::timeout(Duration::from_secs(30), test)
            .await
            .expect("the test finished in time");
    });
}

async fn next<S: Stream + Unpin>(s: &mut S, what: &str) -> S::Item {
    tokio::time::timeout(WAIT, s.next())
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {WAIT:?}"))
        .unwrap_or_else(|| panic!("{what}: the stream ended"))
}

/// Lets the pump (on this thread) run until `cond` holds, for at most [`WAIT`].
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        tokio::task::yield_now().await;
    }
}

/// The next frame the actor gets (no heartbeat is armed in these tests).
async fn frame(frames: &mut FromPump, what: &str) -> Received {
    match next(frames, what).await {
        pump::Up::Frame(received) => received,
        pump::Up::Heartbeat => panic!("{what}: a heartbeat instead"),
    }
}

/// What the peer reads until the pump drops the socket.
async fn until_the_end(peer: Peer) -> Vec<Result<Frame, awc::error::WsProtocolError>> {
    tokio::time::timeout(WAIT, peer.collect::<Vec<_>>())
        .await
        .expect("the socket ended")
}

fn text(json: &str) -> Message {
    Message::Text(json.to_owned().into())
}

const TICK: &str = r#"{"type":"event","event":"tick","payload":{"ts":1}}"#;
const RES: &str = r#"{"type":"res","id":"r1","ok":true,"payload":{}}"#;

/// The gateway's ping is answered by the pump at once and never reaches the actor, nor does a
/// bare tick; the actor finds both in the pulse, and gets the response.
#[test]
fn pings_are_answered_here_and_only_noted_for_the_actor() {
    run(async {
        let (handle, mut frames, mut peer) = pair(None);
        let pulse = handle.pulse();
        peer.send(Message::Ping("p1".into())).await.unwrap();
        assert_eq!(
            next(&mut peer, "the pong").await.unwrap(),
            Frame::Pong("p1".into())
        );
        peer.send(text(TICK)).await.unwrap();
        peer.send(text(RES)).await.unwrap();
        match frame(&mut frames, "the response").await {
            Received::Frame(crate::protocol::frames::Frame::Res { id, .. }) => {
                assert_eq!(id, "r1")
            }
            other => panic!("the actor got {other:?} first"),
        }
        let heard = pulse.take();
        assert!(
            heard.pinged_at.is_some() && heard.frame_at.is_some(),
            "{heard:?}"
        );
        // Read once.
        assert!(pulse.take().is_empty());
    });
}

/// Between frames an idle link holds no socket buffer: after a ping answered, a tick and a
/// response, and after a large frame, the pump waits with both buffers given back; a frame
/// that arrives in two pieces keeps its first piece until the second comes. The queues between
/// pump and actor keep no room once emptied either.
#[test]
fn an_idle_link_holds_no_socket_buffer() {
    run(async {
        let (handle, mut frames, mut peer) = pair(None);
        let pulse = handle.pulse();
        peer.send(Message::Ping("p1".into())).await.unwrap();
        next(&mut peer, "the pong").await.unwrap();
        assert_eq!(pulse.buffered(), 0, "after the pong");
        let large = format!(
            r#"{{"type":"res","id":"r1","ok":true,"payload":{{"pad":"{}"}}}}"#,
            "x".repeat(20_000)
        );
        peer.send(text(TICK)).await.unwrap();
        peer.send(text(&large)).await.unwrap();
        frame(&mut frames, "the large response").await;
        assert_eq!(pulse.buffered(), 0, "after a tick and a large response");
        // Half a frame: its bytes wait in the read buffer for the rest.
        let mut whole = bytes::BytesMut::new();
        tokio_util::codec::Encoder::encode(&mut Codec::new(), text(RES), &mut whole).unwrap();
        let (first, second) = whole.split_at(whole.len() / 2);
        let io = peer.get_mut();
        tokio::io::AsyncWriteExt::write_all(io, first)
            .await
            .unwrap();
        until("the half frame held", || pulse.buffered() > 0).await;
        tokio::io::AsyncWriteExt::write_all(io, second)
            .await
            .unwrap();
        frame(&mut frames, "the response in two pieces").await;
        assert_eq!(pulse.buffered(), 0, "after the second piece");
        assert_eq!(pulse.queues_held(), 0, "the frames' queue, emptied");
        // A write of the actor's: queued, taken by the pump, and its queue gives its room back.
        assert!(handle.write(text(RES)));
        assert!(pulse.queues_held() > 0, "queued");
        next(&mut peer, "the write").await.unwrap();
        until("the writes' queue emptied", || pulse.queues_held() == 0).await;
    });
}

/// With a round trip due, the actor asked for the next ping: that one goes to the actor
/// unanswered (the actor answers it, its own ping behind the pong); the one after is the
/// pump's again.
#[test]
fn the_ping_the_actor_asked_for_is_passed_on_unanswered() {
    run(async {
        let (handle, mut frames, mut peer) = pair(None);
        handle.pulse().order(PumpOrders {
            want_ping: true,
            quiet: 0,
        });
        peer.send(Message::Ping("first".into())).await.unwrap();
        peer.send(Message::Ping("second".into())).await.unwrap();
        match frame(&mut frames, "the first ping").await {
            Received::Ping(p) => assert_eq!(&p[..], b"first"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            next(&mut peer, "a pong").await.unwrap(),
            Frame::Pong("second".into())
        );
        // The actor's answer goes out through the handle.
        assert!(handle.write(Message::Pong("first".into())));
        assert_eq!(
            next(&mut peer, "the actor's pong").await.unwrap(),
            Frame::Pong("first".into())
        );
    });
}

/// Past the lease the pump writes nothing: the ping goes to the actor (which stops).
#[test]
fn past_the_lease_nothing_is_answered() {
    run(async {
        let lease = LeaseGuard::until(Instant::now());
        let (handle, mut frames, mut peer) = pair(Some(lease));
        peer.send(Message::Ping("p".into())).await.unwrap();
        assert!(matches!(
            frame(&mut frames, "the ping").await,
            Received::Ping(_)
        ));
        drop((handle, frames));
        // The pump ends; the peer saw no pong before the end of the socket.
        let seen = until_the_end(peer).await;
        assert!(seen.is_empty(), "{seen:?}");
    });
}

/// A close the actor queued goes out before the pump lets the socket go.
#[test]
fn a_queued_close_is_flushed_when_the_actor_lets_go() {
    run(async {
        let (handle, frames, mut peer) = pair(None);
        assert!(handle.write(Message::Close(Some(CloseCode::Normal.into()))));
        drop((handle, frames));
        match next(&mut peer, "the close").await.unwrap() {
            Frame::Close(Some(reason)) => assert_eq!(reason.code, CloseCode::Normal),
            other => panic!("{other:?}"),
        }
        let rest = until_the_end(peer).await;
        assert!(rest.is_empty(), "{rest:?}");
    });
}

/// More frames than the actor's queue holds, sent before the actor reads any: the pump waits
/// for room and none is lost or reordered.
#[test]
fn an_actor_behind_loses_nothing() {
    run(async {
        let (_handle, mut frames, mut peer) = pair(None);
        let n = pump::TO_ACTOR * 3;
        for i in 0..n {
            let res = format!(r#"{{"type":"res","id":"r{i}","ok":true}}"#);
            peer.send(text(&res)).await.unwrap();
        }
        for i in 0..n {
            match frame(&mut frames, "a response").await {
                Received::Frame(crate::protocol::frames::Frame::Res { id, .. }) => {
                    assert_eq!(id, format!("r{i}"))
                }
                other => panic!("{other:?}"),
            }
        }
    });
}

/// A frame that ends the link is the last thing the actor hears from the pump.
#[test]
fn nothing_is_read_after_a_frame_that_ends_the_link() {
    run(async {
        let (_handle, mut frames, mut peer) = pair(None);
        peer.send(Message::Binary("x".into())).await.unwrap();
        peer.send(text(RES)).await.unwrap();
        assert!(matches!(
            frame(&mut frames, "the failure").await,
            Received::Failed(f) if f.code == "PROTOCOL_ERROR"
        ));
        // The response behind it stays unread until the actor lets go.
        assert!(matches!(frames.next().now_or_never(), None | Some(None)));
    });
}

/// A gateway that stopped reading cannot keep a pump its actor let go of: with more queued
/// than the socket takes, the pump flushes for the grace and then drops the socket.
#[test]
fn a_gateway_that_stopped_reading_cannot_keep_a_let_go_pump() {
    run(async {
        let (handle, mut frames, _peer) = pair(None);
        let big = "x".repeat(64 * 1024);
        for _ in 0..(pump::WRITE_HIGH / big.len() + 4) {
            assert!(handle.write(text(&big)));
        }
        drop(handle);
        // The actor's end of the pump ends once the pump has gone: nothing was read.
        let end = tokio::time::timeout(pump::CLOSE_GRACE + WAIT, frames.next()).await;
        assert!(matches!(end, Ok(None)), "the pump still holds the socket");
    });
}

// ---- the heartbeat rounds (link/beats.rs) -------------------------------------------------

const EVERY: Duration = Duration::from_secs(30);

/// A test on a clock that moves only when the test moves it or everything waits for a timer.
fn run_paused<F: std::future::Future<Output = ()>>(test: F) {
    actix::System::new().block_on(async move {
        tokio::time::pause();
        tokio::time::timeout(100 * EVERY, test)
            .await
            .expect("the test finished in time");
    });
}

/// The test's clock reads `at`, within the timer's millisecond.
fn assert_now(at: tokio::time::Instant, what: &str) {
    let now = tokio::time::Instant::now();
    assert!(
        now >= at && now - at <= Duration::from_millis(1),
        "{what}: {:?} after the start, not {:?}",
        now - (at - EVERY),
        EVERY
    );
}

/// The next heartbeat the actor gets, waiting on the test's clock.
async fn heartbeat(frames: &mut FromPump, what: &str) {
    match tokio::time::timeout(10 * EVERY, frames.next()).await {
        Ok(Some(pump::Up::Heartbeat)) => {}
        other => panic!("{what}: {other:?}"),
    }
}

/// The gateway pings and the pump's pong is read: the heartbeat after it is vouched for.
async fn gateway_pings(peer: &mut Peer) {
    peer.send(Message::Ping("p".into())).await.unwrap();
    assert_eq!(
        next(peer, "the pong").await.unwrap(),
        Frame::Pong("p".into())
    );
}

/// The heartbeat's instants, on a clock the test moves: the first one an interval from now.
fn arm(handle: &PumpHandle) -> tokio::time::Instant {
    let first = tokio::time::Instant::now() + EVERY;
    crate::link::beats::arm(handle.pulse(), first, EVERY);
    first
}

/// A pump whose machine allows `quiet` heartbeats, armed: when the first is due.
fn armed(quiet: u32) -> (PumpHandle, FromPump, Peer, tokio::time::Instant) {
    let (handle, frames, peer) = pair(None);
    handle.pulse().order(PumpOrders {
        want_ping: false,
        quiet,
    });
    let first = arm(&handle);
    (handle, frames, peer, first)
}

/// A heartbeat the gateway pinged before is taken by the rounds, as many as the machine
/// allows; the next is the actor's, which then hears how many passed without it.
#[test]
fn heartbeats_the_gateway_vouched_for_pass_quietly_while_the_machine_allows() {
    run_paused(async {
        let (handle, mut frames, mut peer, first) = armed(2);
        for beat in [first, first + EVERY] {
            gateway_pings(&mut peer).await;
            tokio::time::sleep_until(beat + Duration::from_millis(5)).await;
        }
        gateway_pings(&mut peer).await;
        heartbeat(&mut frames, "the third heartbeat").await;
        assert_now(first + 2 * EVERY, "the third heartbeat");
        // Two quiet; the gateway's third ping is still unspent (the actor's heartbeat uses it).
        let heard = handle.pulse().take();
        assert_eq!((heard.quiet, heard.pinged_since), (2, true));
        let heard = handle.pulse().take();
        assert_eq!((heard.quiet, heard.pinged_since), (0, true), "counted once");
    });
}

/// A heartbeat with no gateway ping since the last one is the actor's, whatever the allowance:
/// it pings, or finds the socket silent.
#[test]
fn a_heartbeat_with_no_gateway_ping_since_the_last_wakes_the_actor() {
    run_paused(async {
        let (handle, mut frames, mut peer, first) = armed(5);
        gateway_pings(&mut peer).await;
        // The first heartbeat spends that ping; none comes before the second.
        heartbeat(&mut frames, "the second heartbeat").await;
        assert_now(first + EVERY, "the second heartbeat");
        let heard = handle.pulse().take();
        assert_eq!((heard.quiet, heard.pinged_since), (1, false));
    });
}

/// A quiet heartbeat moves the gateway's last-seen as the actor's would have.
#[test]
fn a_quiet_heartbeat_publishes_the_gateway_last_ping() {
    run_paused(async {
        let live = Arc::new(LiveStats::default());
        let (handle, mut frames, mut peer) = pair_with(None, live.clone());
        handle.pulse().order(PumpOrders {
            want_ping: false,
            quiet: 1,
        });
        arm(&handle);
        gateway_pings(&mut peer).await;
        assert_eq!(
            live.last_seen(),
            None,
            "published by the heartbeat, not the ping"
        );
        // The first heartbeat is quiet; the second, not vouched for, is the actor's.
        heartbeat(&mut frames, "the second heartbeat").await;
        let heard = handle.pulse().take();
        assert_eq!(heard.quiet, 1);
        let unix = heard.pinged_at.expect("the ping is the actor's to absorb");
        assert_eq!(live.last_seen(), Some(unix));
    });
}

/// A link the rounds already hold is not armed twice: one heartbeat a slot.
#[test]
fn the_rounds_hold_a_link_once() {
    run_paused(async {
        let (handle, mut frames, _peer) = pair(None);
        let first = arm(&handle);
        crate::link::beats::arm(handle.pulse(), first - Duration::from_secs(10), EVERY);
        heartbeat(&mut frames, "the heartbeat").await;
        assert_now(first, "the first arming holds");
    });
}
