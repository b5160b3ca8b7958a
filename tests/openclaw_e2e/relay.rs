//! A TCP relay in front of a real gateway that counts the WebSocket control frames each way
//! (RFC 6455 §5.2: the opcode is in the first byte, unmasked; only the header is read) and the
//! WebSocket sessions it carried (connections the gateway answered `101`). It is how the e2e
//! sees the keepalive as the real gateway does: its pings, our pongs, our pings.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// What crossed the relay.
#[derive(Default)]
pub struct Counts {
    /// Connections the gateway upgraded to a WebSocket.
    pub sessions: AtomicUsize,
    pub gateway_pings: AtomicUsize,
    pub gateway_pongs: AtomicUsize,
    pub client_pings: AtomicUsize,
    pub client_pongs: AtomicUsize,
}

impl Counts {
    pub fn get(c: &AtomicUsize) -> usize {
        c.load(Relaxed)
    }
}

pub struct Relay {
    pub port: u16,
    pub counts: Arc<Counts>,
}

impl Relay {
    /// Listens on 127.0.0.1 (an ephemeral port) and relays every connection to `upstream`.
    pub fn start(upstream: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("relay listens");
        let port = listener.local_addr().unwrap().port();
        let counts = Arc::new(Counts::default());
        let c = counts.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (c1, c2) = (c.clone(), c.clone());
                let (client2, server2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pump(client, server, Side::Client, &c1));
                std::thread::spawn(move || pump(server2, client2, Side::Gateway, &c2));
            }
        });
        Relay { port, counts }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Client,
    Gateway,
}

/// Copies `from` → `to`, counting the frames that pass once the HTTP upgrade is through.
fn pump(mut from: TcpStream, mut to: TcpStream, side: Side, counts: &Counts) {
    let mut parser = Frames::default();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        for opcode in parser.feed(&buf[..n], side, counts) {
            let counter = match (side, opcode) {
                (Side::Client, 0x9) => &counts.client_pings,
                (Side::Client, 0xA) => &counts.client_pongs,
                (Side::Gateway, 0x9) => &counts.gateway_pings,
                (Side::Gateway, 0xA) => &counts.gateway_pongs,
                _ => continue,
            };
            counter.fetch_add(1, Relaxed);
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// The bytes of one direction: the HTTP head, then frames.
#[derive(Default)]
struct Frames {
    upgraded: bool,
    pending: Vec<u8>,
}

impl Frames {
    /// The opcodes of the frames completed by `bytes`.
    fn feed(&mut self, bytes: &[u8], side: Side, counts: &Counts) -> Vec<u8> {
        self.pending.extend_from_slice(bytes);
        if !self.upgraded {
            let Some(end) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                return Vec::new();
            };
            if side == Side::Gateway && self.pending.starts_with(b"HTTP/1.1 101") {
                counts.sessions.fetch_add(1, Relaxed);
            }
            self.pending.drain(..end + 4);
            self.upgraded = true;
        }
        let mut opcodes = Vec::new();
        while let Some((opcode, len)) = frame(&self.pending) {
            opcodes.push(opcode);
            self.pending.drain(..len);
        }
        opcodes
    }
}

/// The opcode and whole length of the frame at the start of `b`, when all of it is there.
fn frame(b: &[u8]) -> Option<(u8, usize)> {
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
        let counts = Counts::default();
        let mut f = Frames {
            upgraded: true,
            ..Frames::default()
        };
        assert_eq!(f.feed(&bytes[..20], Side::Client, &counts), vec![0x9]);
        assert_eq!(f.feed(&bytes[20..], Side::Client, &counts), vec![0x1]);
        assert!(f.pending.is_empty());
    }
}
