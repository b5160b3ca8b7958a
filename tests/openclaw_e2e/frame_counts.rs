//! The WebSocket control frames that cross a tapped [`Relay`] each way (RFC 6455 §5.2: the
//! opcode is in the first byte, unmasked; only headers are read) and the WebSocket sessions it
//! carried (connections the server answered `101`). It is how the e2e sees the keepalive as
//! the real gateway does: its pings, our pongs, our pings.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use gs_test_support::relay::{Direction, Relay, Tap};

/// What crossed the relay.
#[derive(Default)]
pub struct FrameCounts {
    /// Connections the gateway upgraded to a WebSocket.
    pub sessions: AtomicUsize,
    pub gateway_pings: AtomicUsize,
    pub client_pings: AtomicUsize,
    pub client_pongs: AtomicUsize,
}

impl FrameCounts {
    pub fn get(c: &AtomicUsize) -> usize {
        c.load(Relaxed)
    }
}

/// A relay on 127.0.0.1 in front of the gateway on `port`, counting.
pub fn relay(port: u16) -> (Relay, Arc<FrameCounts>) {
    let counts = Arc::new(FrameCounts::default());
    let c = counts.clone();
    let relay = Relay::tapped(([127, 0, 0, 1], port).into(), move |direction| {
        let counts = c.clone();
        let mut frames = Frames::default();
        let tap: Tap = Box::new(move |bytes: &[u8]| frames.feed(bytes, direction, &counts));
        tap
    });
    (relay, counts)
}

/// The bytes of one direction: the HTTP head, then frames — only on a WebSocket: a plain
/// HTTP exchange through the relay (the daemon asking `/readyz` while it waits for the gateway)
/// carries a body, not frames.
#[derive(Default)]
struct Frames {
    /// `None` until the head is read; then whether the connection is a WebSocket.
    websocket: Option<bool>,
    pending: Vec<u8>,
}

impl Frames {
    /// Counts the frames `bytes` complete.
    fn feed(&mut self, bytes: &[u8], direction: Direction, counts: &FrameCounts) {
        if self.websocket == Some(false) {
            return;
        }
        self.pending.extend_from_slice(bytes);
        if self.websocket.is_none() {
            let Some(end) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                return;
            };
            let head = String::from_utf8_lossy(&self.pending[..end]).to_ascii_lowercase();
            let websocket = match direction {
                Direction::ToClient => head.starts_with("http/1.1 101"),
                Direction::ToServer => head.contains("upgrade: websocket"),
            };
            if websocket && direction == Direction::ToClient {
                counts.sessions.fetch_add(1, Relaxed);
            }
            self.websocket = Some(websocket);
            if !websocket {
                self.pending = Vec::new();
                return;
            }
            self.pending.drain(..end + 4);
        }
        while let Some((opcode, len)) = frame(&self.pending) {
            self.pending.drain(..len);
            let counter = match (direction, opcode) {
                (Direction::ToServer, 0x9) => &counts.client_pings,
                (Direction::ToServer, 0xA) => &counts.client_pongs,
                (Direction::ToClient, 0x9) => &counts.gateway_pings,
                _ => continue,
            };
            counter.fetch_add(1, Relaxed);
        }
    }
}

/// The opcode and whole length of the frame at the start of `b`, when all of it is there.
pub(super) fn frame(b: &[u8]) -> Option<(u8, usize)> {
    let (&b0, &b1) = (b.first()?, b.get(1)?);
    let masked = b1 & 0x80 != 0;
    let (payload, mut header): (usize, usize) = match b1 & 0x7F {
        126 => (
            u16::from_be_bytes(b.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            usize::try_from(u64::from_be_bytes(b.get(2..10)?.try_into().ok()?)).ok()?,
            10,
        ),
        n => (n as usize, 2),
    };
    if masked {
        header += 4;
    }
    let len = header.checked_add(payload)?;
    (b.len() >= len).then_some((b0 & 0x0F, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_split_by_their_headers() {
        // A masked client ping with 8 bytes, then an unmasked 130-byte text frame in two parts.
        let mut bytes = vec![0x89, 0x88, 1, 2, 3, 4];
        bytes.extend([0u8; 8]);
        bytes.extend([0x81, 126, 0, 130]);
        bytes.extend([b'x'; 130]);
        let counts = FrameCounts::default();
        let mut f = Frames {
            websocket: Some(true),
            ..Frames::default()
        };
        f.feed(&bytes[..20], Direction::ToServer, &counts);
        assert_eq!(FrameCounts::get(&counts.client_pings), 1);
        assert_eq!(f.pending.len(), 6, "the text frame's first part waits");
        f.feed(&bytes[20..], Direction::ToServer, &counts);
        assert!(f.pending.is_empty());
    }

    /// One connection through the relay: the client's bytes, then the server's, each a head
    /// and then what follows it.
    fn exchange(client: &[&[u8]], server: &[&[u8]]) -> FrameCounts {
        let counts = FrameCounts::default();
        let (mut request, mut response) = (Frames::default(), Frames::default());
        request.feed(&client.concat(), Direction::ToServer, &counts);
        response.feed(&server.concat(), Direction::ToClient, &counts);
        counts
    }

    const PING: &[u8] = &[0x89, 0x00];

    #[test]
    fn a_plain_http_exchange_carries_no_frames() {
        // `/readyz` answered through the relay: its body starts with bytes that read as a ping.
        let counts = exchange(
            &[b"GET /readyz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"],
            &[b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n", PING],
        );
        assert_eq!(FrameCounts::get(&counts.gateway_pings), 0);
        assert_eq!(FrameCounts::get(&counts.sessions), 0);
    }

    #[test]
    fn an_upgraded_connection_is_counted_and_its_frames_read() {
        let counts = exchange(
            &[
                b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                &[0x8A, 0x80, 1, 2, 3, 4],
            ],
            &[b"HTTP/1.1 101 Switching Protocols\r\n\r\n", PING],
        );
        assert_eq!(FrameCounts::get(&counts.sessions), 1);
        assert_eq!(FrameCounts::get(&counts.gateway_pings), 1);
        assert_eq!(FrameCounts::get(&counts.client_pongs), 1);
    }
}
