//! The WebSocket of a live link, re-framed with small buffers once the upgrade is done.
//!
//! awc hands over the socket inside an `actix_codec::Framed`, whose read and write buffers
//! are each kept at 8 KiB or more for the life of the connection: 16 KiB per gateway, the
//! larger part of the daemon's memory at 10,000 gateways (heaptrack: 32.8 MB of a 55 MB peak
//! at 2,000). The link reads a few small frames a minute, so here the socket is re-framed with
//! a read buffer that starts small and grows only for large frames and a write buffer that
//! starts small; bytes already read past the upgrade response are kept. The link's pump
//! (`crate::link::pump`) drives the result.
//!
//! Frames are capped by size in two steps: [`HANDSHAKE_MAX_FRAME`] until `hello-ok` (a
//! challenge and a hello are a few kilobytes), then [`LINK_MAX_FRAME`] (the largest frames the
//! link asks for are `sessions.list` of up to 1,000 rows and `chat.history` of 20 messages,
//! whose attachments the gateway caps at 18.6 MiB raw; 16 MiB leaves a megabyte-sized reply
//! room and refuses the rest). After a frame larger than the read buffer's start size, and
//! once a message larger than the write buffer's has been sent, the pump puts a buffer of the
//! start size in place ([`settle`]): one large frame does not pin its allocation for the life of
//! the connection. A `hello-ok` is one (1.5 KB from the fake, more from a real gateway), and
//! before, every link kept the buffer it grew: at 2,000 gateways the read buffers held 2.2 KB a
//! gateway and the write buffers 0.7 KB (heaptrack, allocations live at steady state). Between
//! frames the pump gives both buffers back altogether when they hold nothing
//! (`crate::link::pump`): an idle link keeps no socket buffer at all.

use actix_codec::Decoder;
use awc::BoxedSocket;
use awc::error::WsProtocolError;

use crate::protocol::errors::LinkFailure;
use awc::ws::{Codec, Frame};
use std::collections::VecDeque;

use bytes::BytesMut;

/// Largest frame accepted before `hello-ok`.
pub const HANDSHAKE_MAX_FRAME: usize = 1024 * 1024;
/// Largest frame accepted on a supervised link.
pub const LINK_MAX_FRAME: usize = 16 * 1024 * 1024;
/// Start size of the read buffer: a tick or a pong fits; a `hello-ok` grows it, for a while.
pub const READ_BUFFER_START: usize = 1024;
/// Start size of the write buffer: pings, pongs and most requests fit.
pub const WRITE_BUFFER_START: usize = 256;

/// After a frame of `frame_len` bytes went through a buffer that starts at `start`: a frame
/// larger than `start` may have grown it, so it is replaced by one of `start` bytes (or of
/// what it still holds, the start of the next frame, if that is more), which it keeps.
/// A frame that fit leaves it as it is: a tick or a pong costs no allocation.
pub fn settle(buf: &mut BytesMut, frame_len: usize, start: usize) {
    if frame_len <= start {
        return;
    }
    let rest = buf.split();
    let mut fresh = BytesMut::with_capacity(start.max(rest.len()));
    fresh.extend_from_slice(&rest);
    *buf = fresh;
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
///
/// Said as an operator can act on it: a refused TLS certificate names what is wrong with it and
/// what to do (rustls' own text read `InvalidCertificate(Other(CaUsedAsEndEntity))`), and a
/// `wss://` dial that times out says the port may not speak TLS (a plain port waits for more of
/// what it reads as an HTTP request, so the TLS greeting just hangs).
pub fn connect_failure(err: &awc::error::WsClientError, url: &str) -> LinkFailure {
    use awc::error::{ConnectError, SendRequestError, WsClientError};
    match err {
        WsClientError::SendRequest(
            SendRequestError::Timeout | SendRequestError::Connect(ConnectError::Timeout),
        ) if url.starts_with("wss://") => LinkFailure::timeout(&format!(
            "the TLS handshake and WebSocket upgrade of {url} (if the gateway's port speaks plain \
             HTTP, register it with `tls: false`, i.e. ws://)"
        )),
        WsClientError::SendRequest(
            SendRequestError::Timeout | SendRequestError::Connect(ConnectError::Timeout),
        ) => LinkFailure::timeout(&format!("the WebSocket upgrade of {url}")),
        WsClientError::SendRequest(SendRequestError::Connect(ConnectError::Io(io))) => {
            match tls_refusal(io) {
                Some(why) => {
                    LinkFailure::network(format!("the TLS handshake with {url} failed: {why}"))
                }
                None => LinkFailure::network(format!("cannot connect to {url}: {io}")),
            }
        }
        other => LinkFailure::network(format!("cannot connect to {url}: {other}")),
    }
}

/// What a TLS failure inside `io` means and what to do, if it is one.
fn tls_refusal(io: &std::io::Error) -> Option<String> {
    use rustls::{CertificateError, Error as Tls};
    let tls = io.get_ref()?.downcast_ref::<Tls>()?;
    const INSECURE: &str = "or, for a gateway you trust on a private network, register it with \
                            `allow_insecure_tls: true` (no verification: development only)";
    Some(match tls {
        Tls::InvalidCertificate(cert) => {
            let what = match cert {
                CertificateError::UnknownIssuer => {
                    "is signed by an authority this daemon does not trust (self-signed, or a \
                     private CA)"
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    "has expired"
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    "is not valid yet (check both machines' clocks)"
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    "is not valid for the host name the gateway is registered with"
                }
                CertificateError::Revoked => "is revoked",
                CertificateError::BadSignature => "has a bad signature",
                _ if format!("{cert:?}").contains("CaUsedAsEndEntity") => {
                    "is a CA certificate used as the server's own (serve a leaf certificate \
                     that CA signed)"
                }
                _ => "was refused",
            };
            format!(
                "the gateway's certificate {what}; give the gateway a certificate a public CA \
                 signed for its host name, {INSECURE}"
            )
        }
        Tls::InvalidMessage(_) | Tls::InappropriateMessage { .. } => {
            "the port did not answer in TLS (a plain ws:// gateway? register it with `tls: \
             false`)"
                .to_owned()
        }
        Tls::AlertReceived(alert) => format!(
            "the gateway refused the TLS handshake ({})",
            crate::bounded::text(&format!("{alert:?}"), 64)
        ),
        other => format!(
            "{} ({INSECURE})",
            crate::bounded::text(&other.to_string(), 200)
        ),
    })
}

/// An upgraded socket re-framed with small buffers, and the frames that arrived with the
/// upgrade response (the challenge may), to be read first. Frames larger than `cap` are refused.
pub fn reframe(
    framed: actix_codec::Framed<BoxedSocket, Codec>,
    cap: usize,
) -> (
    VecDeque<Result<Frame, WsProtocolError>>,
    tokio_util::codec::Framed<BoxedSocket, Codec>,
) {
    let parts = framed.into_parts();
    let mut codec = parts.codec.max_size(cap);
    let mut early_bytes = parts.read_buf;
    let mut early = VecDeque::new();
    loop {
        match codec.decode(&mut early_bytes) {
            Ok(Some(frame)) => early.push_back(Ok(frame)),
            Ok(None) => break,
            Err(e) => {
                early.push_back(Err(e));
                early_bytes.clear();
                break;
            }
        }
    }
    let mut framed = tokio_util::codec::Framed::with_capacity(parts.io, codec, READ_BUFFER_START);
    // The start of a frame whose rest is still in flight.
    framed.read_buffer_mut().extend_from_slice(&early_bytes);
    // The write buffer starts at 8 KiB otherwise.
    *framed.write_buffer_mut() = BytesMut::with_capacity(WRITE_BUFFER_START);
    (early, framed)
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
        // A TLS dial that hangs: the port may be plain HTTP.
        let f = connect_failure(
            &WsClientError::SendRequest(SendRequestError::Timeout),
            "wss://g:1/",
        );
        assert!(f.message.contains("tls: false"), "{}", f.message);
    }

    fn tls_failure(err: rustls::Error) -> LinkFailure {
        use awc::error::{ConnectError, SendRequestError, WsClientError};
        connect_failure(
            &WsClientError::SendRequest(SendRequestError::Connect(ConnectError::Io(
                std::io::Error::new(std::io::ErrorKind::InvalidData, err),
            ))),
            "wss://gw.internal:18789/",
        )
    }

    #[test]
    fn a_refused_certificate_says_what_is_wrong_and_what_to_do() {
        use rustls::{CertificateError, Error, OtherError};
        // As rustls-webpki reports it (an `OtherError` whose Debug names the webpki error).
        #[derive(Debug)]
        struct CaUsedAsEndEntity;
        impl std::fmt::Display for CaUsedAsEndEntity {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("CaUsedAsEndEntity")
            }
        }
        impl std::error::Error for CaUsedAsEndEntity {}
        let ca = tls_failure(Error::InvalidCertificate(CertificateError::Other(
            OtherError(std::sync::Arc::new(CaUsedAsEndEntity)),
        )));
        assert!(
            ca.message
                .contains("CA certificate used as the server's own"),
            "{}",
            ca.message
        );
        for f in [
            ca,
            tls_failure(Error::InvalidCertificate(CertificateError::UnknownIssuer)),
            tls_failure(Error::InvalidCertificate(CertificateError::Expired)),
        ] {
            assert!(f.message.contains("allow_insecure_tls"), "{}", f.message);
            assert!(!f.message.contains("InvalidCertificate"), "{}", f.message);
        }
        let plain = tls_failure(Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        ));
        assert!(plain.message.contains("tls: false"), "{}", plain.message);
    }
}

#[cfg(test)]
mod settle_tests {
    use super::*;

    /// What a `hello-ok` does to a link's read buffer: the decoder grows it to hold the frame,
    /// splits the frame off, and the frame is dropped once read.
    fn grown_by(frame: usize, next: &[u8]) -> BytesMut {
        let mut buf = BytesMut::with_capacity(READ_BUFFER_START);
        buf.extend_from_slice(&vec![b'x'; frame]);
        drop(buf.split_to(frame));
        buf.extend_from_slice(next);
        buf
    }

    /// The room the buffer has once it takes back what the read frames left: the whole of
    /// its allocation (a `BytesMut` that is its allocation's only owner reclaims the front).
    fn room(buf: &mut BytesMut) -> usize {
        buf.reserve(1);
        buf.capacity()
    }

    #[test]
    fn a_buffer_a_large_frame_grew_goes_back_to_its_start_size() {
        let mut buf = grown_by(6 * 1024, b"");
        settle(&mut buf, 6 * 1024, READ_BUFFER_START);
        assert!(room(&mut buf) <= READ_BUFFER_START, "{}", room(&mut buf));
    }

    #[test]
    fn the_start_of_the_next_frame_is_kept_when_the_buffer_is_replaced() {
        let mut buf = grown_by(6 * 1024, &[0x81, 0x05, b'h']);
        settle(&mut buf, 6 * 1024, READ_BUFFER_START);
        assert_eq!(&buf[..], &[0x81, 0x05, b'h']);
        assert!(room(&mut buf) <= READ_BUFFER_START, "{}", room(&mut buf));
    }

    #[test]
    fn a_frame_that_fit_leaves_the_buffer_and_what_it_holds_alone() {
        let mut buf = BytesMut::with_capacity(READ_BUFFER_START);
        buf.extend_from_slice(b"next");
        let before = buf.as_ptr();
        settle(&mut buf, 40, READ_BUFFER_START);
        assert_eq!(buf.as_ptr(), before, "no new allocation for a small frame");
        assert_eq!(&buf[..], b"next");
    }
}

#[cfg(test)]
mod reframe_tests {
    use super::*;

    /// awc's framing holds 8 KiB each way for the life of a connection, and so does
    /// `tokio_util`'s `from_parts`: at 10,000 gateways that was 10 KB a gateway more
    /// (`gs-bench fleet`). The re-framed socket starts small, and keeps the bytes that came
    /// with the upgrade: whole frames to be read first, the start of the next in its buffer.
    #[test]
    fn a_reframed_socket_starts_with_small_buffers_and_keeps_early_bytes() {
        let (ours, _theirs) = tokio::io::duplex(1024);
        let socket: BoxedSocket = Box::new(ours);
        // A whole ping, then the first two bytes of a text frame.
        let early = BytesMut::from(&[0x89, 0x02, b'h', b'i', 0x81, 0x05][..]);
        let upgraded = actix_codec::Framed::from_parts(actix_codec::FramedParts::with_read_buf(
            socket,
            Codec::new().client_mode(),
            early,
        ));
        let (early, framed) = reframe(upgraded, HANDSHAKE_MAX_FRAME);
        assert!(
            matches!(&early.iter().collect::<Vec<_>>()[..], [Ok(Frame::Ping(p))] if &p[..] == b"hi")
        );
        assert_eq!(&framed.read_buffer()[..], &[0x81, 0x05]);
        assert!(framed.read_buffer().capacity() <= READ_BUFFER_START);
        assert!(framed.write_buffer().capacity() <= WRITE_BUFFER_START);
    }
}
