//! The WebSocket of a live link, re-framed with small buffers once the upgrade is done.
//!
//! awc hands over the socket inside an `actix_codec::Framed`, whose read and write buffers
//! are each kept at 8 KiB or more for the life of the connection: 16 KiB per gateway, the
//! larger part of the daemon's memory at 10,000 gateways (heaptrack: 32.8 MB of a 55 MB peak
//! at 2,000). The link reads a few small frames a minute, so here the socket is split into
//! a reader whose buffer starts small and grows only for large frames, and a writer whose
//! buffer starts small; bytes already read past the upgrade response are kept.
//!
//! Frames are capped by size in two steps: [`HANDSHAKE_MAX_FRAME`] until `hello-ok` (a
//! challenge and a hello are a few kilobytes), then [`LINK_MAX_FRAME`] (the largest frames the
//! link asks for are `sessions.list` of up to 1,000 rows and `chat.history` of 20 messages,
//! whose attachments the gateway caps at 18.6 MiB raw; 16 MiB leaves a megabyte-sized reply
//! room and refuses the rest). After a frame larger than [`SHRINK_AFTER`] the read buffer is
//! replaced by a small one, so one large frame does not pin its allocation for the life of
//! the connection.

use actix_codec::Decoder;
use awc::BoxedSocket;
use awc::error::WsProtocolError;

use crate::protocol::errors::LinkFailure;
use awc::ws::{Codec, Frame};
use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures_util::stream::{self, Stream, StreamExt};
use tokio::io::{ReadHalf, WriteHalf};
use tokio_util::codec::{FramedRead, FramedWrite};

/// Largest frame accepted before `hello-ok`.
pub const HANDSHAKE_MAX_FRAME: usize = 1024 * 1024;
/// Largest frame accepted on a supervised link.
pub const LINK_MAX_FRAME: usize = 16 * 1024 * 1024;
/// A frame larger than this makes the reader drop its grown buffer afterwards.
pub const SHRINK_AFTER: usize = 64 * 1024;

/// Start size of the read buffer: a tick or a pong fits; a `hello-ok` grows it once.
const READ_BUFFER_START: usize = 1024;
/// Start size of the write buffer: pings, pongs and requests are small.
const WRITE_BUFFER_START: usize = 256;

pub type WsWriter = FramedWrite<WriteHalf<BoxedSocket>, Codec>;

/// The frame size limit of one reader, changed by the link after the handshake.
#[derive(Clone)]
pub struct FrameCap(Rc<Cell<usize>>);

impl FrameCap {
    pub fn new(limit: usize) -> Self {
        FrameCap(Rc::new(Cell::new(limit)))
    }

    pub fn set(&self, limit: usize) {
        self.0.set(limit);
    }

    pub fn get(&self) -> usize {
        self.0.get()
    }
}

/// What a read error means for the link: a frame over the cap is `MESSAGE_TOO_BIG`, anything
/// else a protocol error; both name the cap or the cause.
pub fn read_failure(err: &WsProtocolError, cap: usize) -> LinkFailure {
    match err {
        WsProtocolError::Overflow => LinkFailure::too_big(format!(
            "the gateway sent a frame over the {} KiB limit",
            cap / 1024
        )),
        other => LinkFailure::protocol(format!("WebSocket protocol error: {other}")),
    }
}

/// What one WebSocket frame from a gateway is to a link.
#[derive(Debug)]
pub enum Received {
    Frame(crate::protocol::frames::Frame),
    Ping(bytes::Bytes),
    Pong(bytes::Bytes),
    /// The frame ends the link: a close (classified by its code), binary data, or text that
    /// is not a protocol frame.
    Failed(LinkFailure),
}

pub fn receive(frame: Frame) -> Received {
    use crate::protocol::errors::classify_close;
    match frame {
        Frame::Text(bytes) => {
            let parsed = std::str::from_utf8(&bytes)
                .map_err(|_| "a text frame that is not UTF-8".to_owned())
                .and_then(|t| {
                    crate::protocol::frames::Frame::parse(t)
                        .map_err(|e| format!("an unreadable frame ({e})"))
                });
            match parsed {
                Ok(frame) => Received::Frame(frame),
                Err(what) => {
                    Received::Failed(LinkFailure::protocol(format!("the gateway sent {what}")))
                }
            }
        }
        Frame::Ping(payload) => Received::Ping(payload),
        Frame::Pong(payload) => Received::Pong(payload),
        Frame::Close(reason) => {
            let (code, text) = reason
                .map(|r| (u16::from(r.code), r.description.unwrap_or_default()))
                .unwrap_or((1005, String::new()));
            Received::Failed(classify_close(code, &text))
        }
        Frame::Binary(_) | Frame::Continuation(_) => {
            Received::Failed(LinkFailure::protocol("the gateway sent a binary frame"))
        }
    }
}

/// What a failed dial means for the link: a peer that did not finish the TCP connect or the
/// upgrade in time (one that drips its answer, say) is `TIMEOUT`; the rest is `NETWORK`.
pub fn connect_failure(err: &awc::error::WsClientError, url: &str) -> LinkFailure {
    use awc::error::{ConnectError, SendRequestError, WsClientError};
    match err {
        WsClientError::SendRequest(
            SendRequestError::Timeout | SendRequestError::Connect(ConnectError::Timeout),
        ) => LinkFailure::timeout(&format!("the WebSocket upgrade of {url}")),
        other => LinkFailure::network(format!("cannot connect to {url}: {other}")),
    }
}

/// Reads frames with the current cap and gives back the memory of large ones.
struct Reader {
    inner: FramedRead<ReadHalf<BoxedSocket>, Codec>,
    cap: FrameCap,
    applied: usize,
}

impl Stream for Reader {
    type Item = Result<Frame, WsProtocolError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let limit = this.cap.get();
        if limit != this.applied {
            let codec = this.inner.decoder().clone().max_size(limit);
            *this.inner.decoder_mut() = codec;
            this.applied = limit;
        }
        let item = Pin::new(&mut this.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(frame))) = &item
            && frame_len(frame) > SHRINK_AFTER
        {
            let buf = this.inner.read_buffer_mut();
            let rest = buf.split();
            let mut fresh = BytesMut::with_capacity(READ_BUFFER_START.max(rest.len()));
            fresh.extend_from_slice(&rest);
            *buf = fresh;
        }
        item
    }
}

fn frame_len(frame: &Frame) -> usize {
    match frame {
        Frame::Text(b) | Frame::Binary(b) | Frame::Ping(b) | Frame::Pong(b) => b.len(),
        // The gateway sends no fragmented frames; their pieces are small anyway.
        Frame::Continuation(_) | Frame::Close(_) => 0,
    }
}

/// Splits an upgraded socket into a frame stream and a frame sink with small buffers. The
/// stream refuses frames larger than `cap` (read again before every frame).
pub fn split(
    framed: actix_codec::Framed<BoxedSocket, Codec>,
    cap: FrameCap,
) -> (
    impl Stream<Item = Result<Frame, WsProtocolError>> + Unpin + 'static,
    WsWriter,
) {
    let parts = framed.into_parts();
    let mut codec = parts.codec.max_size(cap.get());
    let mut early_bytes = parts.read_buf;
    // Frames that arrived with the upgrade response (the challenge may) come first.
    let mut early = Vec::new();
    loop {
        match codec.decode(&mut early_bytes) {
            Ok(Some(frame)) => early.push(Ok(frame)),
            Ok(None) => break,
            Err(e) => {
                early.push(Err(e));
                early_bytes.clear();
                break;
            }
        }
    }
    let (read, write) = tokio::io::split(parts.io);
    let mut reader = FramedRead::with_capacity(read, codec.clone(), READ_BUFFER_START);
    // The start of a frame whose rest is still in flight.
    reader.read_buffer_mut().extend_from_slice(&early_bytes);
    let mut writer = FramedWrite::new(write, codec);
    *writer.write_buffer_mut() = BytesMut::with_capacity(WRITE_BUFFER_START);
    let applied = cap.get();
    let reader = Reader {
        inner: reader,
        cap,
        applied,
    };
    (stream::iter(early).chain(reader), writer)
}

#[cfg(test)]
mod read_failure_tests {
    use super::*;

    #[test]
    fn a_frame_over_the_cap_is_message_too_big_naming_the_cap() {
        let f = read_failure(&WsProtocolError::Overflow, 16 * 1024 * 1024);
        assert_eq!(f.code, "MESSAGE_TOO_BIG");
        assert!(f.message.contains("16384 KiB"), "{}", f.message);
        assert!(f.retryable());
        let f = read_failure(&WsProtocolError::BadOpCode, 1024);
        assert_eq!(f.code, "PROTOCOL_ERROR");
    }

    #[test]
    fn a_dial_that_runs_out_of_time_is_a_timeout() {
        use awc::error::{ConnectError, SendRequestError, WsClientError};
        let f = connect_failure(
            &WsClientError::SendRequest(SendRequestError::Timeout),
            "ws://g:1/",
        );
        assert_eq!(
            (f.code.to_string().as_str(), f.message.as_str()),
            ("TIMEOUT", "the WebSocket upgrade of ws://g:1/ timed out")
        );
        let f = connect_failure(
            &WsClientError::SendRequest(SendRequestError::Connect(ConnectError::Timeout)),
            "ws://g:1/",
        );
        assert_eq!(f.code, "TIMEOUT");
        let f = connect_failure(
            &WsClientError::InvalidResponseStatus(awc::http::StatusCode::FORBIDDEN),
            "ws://g:1/",
        );
        assert_eq!(f.code, "NETWORK");
    }
}
