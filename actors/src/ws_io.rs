//! The WebSocket of a live link, re-framed with small buffers once the upgrade is done.
//!
//! awc hands over the socket inside an `actix_codec::Framed`, whose read and write buffers
//! are each kept at 8 KiB or more for the life of the connection: 16 KiB per gateway, the
//! larger part of the daemon's memory at 10,000 gateways (heaptrack: 32.8 MB of a 55 MB peak
//! at 2,000). The link reads a few small frames a minute, so here the socket is split into
//! a reader whose buffer starts small and grows only for large frames, and a writer whose
//! buffer starts small; bytes already read past the upgrade response are kept.

use actix_codec::Decoder;
use awc::BoxedSocket;
use awc::error::WsProtocolError;
use awc::ws::{Codec, Frame};
use bytes::BytesMut;
use futures_util::stream::{self, Stream, StreamExt};
use tokio::io::WriteHalf;
use tokio_util::codec::{FramedRead, FramedWrite};

/// Start size of the read buffer: a tick or a pong fits; a `hello-ok` grows it once.
const READ_BUFFER_START: usize = 1024;
/// Start size of the write buffer: pings, pongs and requests are small.
const WRITE_BUFFER_START: usize = 256;

pub type WsWriter = FramedWrite<WriteHalf<BoxedSocket>, Codec>;

/// Splits an upgraded socket into a frame stream and a frame sink with small buffers.
pub fn split(
    framed: actix_codec::Framed<BoxedSocket, Codec>,
) -> (
    impl Stream<Item = Result<Frame, WsProtocolError>> + Unpin + 'static,
    WsWriter,
) {
    let parts = framed.into_parts();
    let mut codec = parts.codec;
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
    (stream::iter(early).chain(reader), writer)
}
