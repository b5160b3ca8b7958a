//! While the database is not there yet (boot order, a PostgreSQL failover), the daemon waits
//! for it instead of exiting, and a stand-in on the API listener answers every request — the
//! health checks included — `503 not_ready` with what it is waiting for, so a load balancer or
//! an operator sees a daemon that is alive and not ready rather than a refused port. The real
//! server takes the same listener once the database answers.
//!
//! Plain threads and `std::net`: nothing of the daemon runs yet. At most [`MAX_CLIENTS`]
//! clients at once, each given [`CLIENT_DEADLINE`] to send its request head (at most
//! [`MAX_HEAD`] bytes) and take the answer; more are closed at once.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

const MAX_CLIENTS: usize = 32;
const CLIENT_DEADLINE: Duration = Duration::from_secs(2);
const MAX_HEAD: usize = 8192;

/// The stand-in server; [`Standby::stop`] hands the listener back to the daemon.
pub struct Standby {
    stop: Arc<AtomicBool>,
    reason: Arc<RwLock<String>>,
    wake: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl Standby {
    /// Starts answering on (a clone of) `listener`.
    pub fn start(listener: &TcpListener, reason: String) -> std::io::Result<Standby> {
        let own = listener.try_clone()?;
        let addr = own.local_addr()?;
        // A wildcard address is reached on loopback.
        let wake = match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
            }
            _ => addr,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let reason = Arc::new(RwLock::new(reason));
        let thread = std::thread::Builder::new().name("standby".into()).spawn({
            let (stop, reason) = (Arc::clone(&stop), Arc::clone(&reason));
            move || serve(&own, &stop, &reason)
        })?;
        Ok(Standby {
            stop,
            reason,
            wake,
            thread: Some(thread),
        })
    }

    /// What the answers say the daemon waits for.
    pub fn set_reason(&self, reason: String) {
        *self.reason.write().unwrap_or_else(|p| p.into_inner()) = reason;
    }

    /// Stops answering: the connections not yet accepted wait in the listener's queue for the
    /// real server.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Release);
        // The accept loop is blocked in accept(): one connection wakes it to see the flag.
        let _ = TcpStream::connect_timeout(&self.wake, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.halt();
        }
    }
}

fn serve(listener: &TcpListener, stop: &AtomicBool, reason: &RwLock<String>) {
    let clients = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let Ok(conn) = conn else { continue };
        if clients.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
            clients.fetch_sub(1, Ordering::AcqRel);
            continue;
        }
        let message = reason.read().unwrap_or_else(|p| p.into_inner()).clone();
        let done = Arc::clone(&clients);
        let spawned = std::thread::Builder::new()
            .name("standby-client".into())
            .spawn(move || {
                answer(conn, &message);
                done.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            // The closure (and its count) went with the failed spawn.
            clients.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Reads the request head (bounded) and answers 503.
fn answer(mut conn: TcpStream, message: &str) {
    let _ = conn.set_read_timeout(Some(CLIENT_DEADLINE));
    let _ = conn.set_write_timeout(Some(CLIENT_DEADLINE));
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while head.len() < MAX_HEAD && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let _ = conn.write_all(&response(message));
}

/// The whole answer: the API's error shape, `Retry-After`, and the connection closed.
pub fn response(message: &str) -> Vec<u8> {
    let body = serde_json::json!({"error": "not_ready", "message": message}).to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 5\r\ncache-control: no-store\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn every_path_is_503_saying_why_until_stopped_and_the_listener_is_handed_back() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let standby = Standby::start(&listener, "waiting for the database".into()).unwrap();
        for path in ["/healthz", "/readyz", "/api/gateways"] {
            let res = get(addr, path);
            assert!(res.starts_with("HTTP/1.1 503 "), "{path}: {res}");
            assert!(res.contains(r#""error":"not_ready""#), "{res}");
            assert!(res.contains("waiting for the database"), "{res}");
        }
        standby.set_reason("still waiting: connection refused".into());
        assert!(get(addr, "/readyz").contains("connection refused"));
        standby.stop();
        // The daemon's own listener still listens: a connection queues for whoever accepts.
        let _queued = TcpStream::connect(addr).unwrap();
        let (_, from) = listener.accept().unwrap();
        assert_eq!(from.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    }

    #[test]
    fn a_client_that_never_sends_its_head_is_let_go() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let _standby = Standby::start(&listener, "waiting".into()).unwrap();
        let mut silent = TcpStream::connect(addr).unwrap();
        silent
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // Others are answered meanwhile.
        assert!(get(addr, "/healthz").starts_with("HTTP/1.1 503 "));
        let mut out = String::new();
        silent.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 503 "), "{out}");
    }
}
