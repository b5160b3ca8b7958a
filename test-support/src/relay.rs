//! A TCP relay the tests put in front of a server: every connection it accepts is piped to the
//! server, byte for byte, both ways. The test can cut it (every relayed connection closed, new
//! ones refused until restored: a database restarting, for the daemons behind it) and can tap
//! it (each direction of each connection shows its bytes to the test as they pass: the
//! WebSocket frames a real gateway and the daemon exchange, before they go on: a tap that
//! blocks holds them back).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// Which way bytes are going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the connecting client to the server.
    ToServer,
    /// From the server back to the client.
    ToClient,
}

/// What sees one direction of one connection's bytes.
pub type Tap = Box<dyn FnMut(&[u8]) + Send>;

pub struct Relay {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    /// Relays to `server`, untapped.
    pub fn start(server: SocketAddr) -> Relay {
        Relay::tapped(server, |_| Box::new(|_: &[u8]| {}))
    }

    /// Relays to `server`; `tap` makes, for each direction of each connection, what sees its
    /// bytes.
    pub fn tapped(server: SocketAddr, tap: impl Fn(Direction) -> Tap + Send + 'static) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (u, o) = (up.clone(), open.clone());
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !u.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(upstream) = TcpStream::connect(server) else {
                    continue;
                };
                {
                    let mut open = o.lock().unwrap();
                    open.push(client.try_clone().unwrap());
                    open.push(upstream.try_clone().unwrap());
                }
                pipe(
                    client.try_clone().unwrap(),
                    upstream.try_clone().unwrap(),
                    tap(Direction::ToServer),
                );
                pipe(upstream, client, tap(Direction::ToClient));
            }
        });
        Relay { addr, up, open }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Closes every relayed connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, mut tap: Tap) {
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    // The tap sees the bytes before they go on: it may hold them back.
                    tap(&buf[..n]);
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}
