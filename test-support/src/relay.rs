//! A TCP relay the tests put in front of a server: every connection it accepts is piped to the
//! server, byte for byte, both ways. The test can cut it (every relayed connection closed, new
//! ones refused until restored: a database restarting, for the daemons behind it) and can tap
//! it (each direction of each connection shows its bytes to the test as they pass: the
//! WebSocket frames a real gateway and the daemon exchange, before they go on: a tap that
//! blocks holds them back). It can slow its connections too (each chunk of bytes held for a
//! random 200 ± 100 ms, say, in order: a slow link; the fault harness's delay, as this kernel
//! has no `netem`), and be pointed at another server for the connections to come.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

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

/// How long each chunk is held: `base` plus or minus up to `jitter`.
#[derive(Debug, Clone, Copy)]
pub struct Delay {
    pub base: Duration,
    pub jitter: Duration,
}

pub struct Relay {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    server: Arc<Mutex<SocketAddr>>,
    delay: Arc<Mutex<Option<Delay>>>,
}

impl Relay {
    /// Relays to `server`, untapped.
    pub fn start(server: SocketAddr) -> Relay {
        Relay::tapped(server, |_| Box::new(|_: &[u8]| {}))
    }

    /// Relays to `server`; `tap` makes, for each direction of each connection, what sees its
    /// bytes.
    pub fn tapped(server: SocketAddr, tap: impl Fn(Direction) -> Tap + Send + 'static) -> Relay {
        Relay::listening(IpAddr::V4(Ipv4Addr::LOCALHOST), server, tap)
    }

    /// Relays to `server`, untapped, listening on `ip` (an address of this machine).
    pub fn start_at(ip: IpAddr, server: SocketAddr) -> Relay {
        Relay::listening(ip, server, |_| Box::new(|_: &[u8]| {}))
    }

    fn listening(
        ip: IpAddr,
        server: SocketAddr,
        tap: impl Fn(Direction) -> Tap + Send + 'static,
    ) -> Relay {
        let listener = TcpListener::bind((ip, 0)).expect("bind the relay");
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let server = Arc::new(Mutex::new(server));
        let delay: Arc<Mutex<Option<Delay>>> = Arc::default();
        let (u, o, to, slow) = (up.clone(), open.clone(), server.clone(), delay.clone());
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !u.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let target = *to.lock().unwrap();
                let Ok(upstream) = TcpStream::connect_timeout(&target, Duration::from_secs(2))
                else {
                    let _ = client.shutdown(Shutdown::Both);
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
                    slow.clone(),
                );
                pipe(upstream, client, tap(Direction::ToClient), slow.clone());
            }
        });
        Relay {
            addr,
            up,
            open,
            server,
            delay,
        }
    }

    /// The connections to come go to `server` (those open stay where they are).
    pub fn retarget(&self, server: SocketAddr) {
        *self.server.lock().unwrap() = server;
    }

    /// Every chunk from now on, both ways, is held `delay` (in order), until [`Relay::unslow`].
    pub fn slow(&self, delay: Delay) {
        *self.delay.lock().unwrap() = Some(delay);
    }

    pub fn unslow(&self) {
        *self.delay.lock().unwrap() = None;
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

/// One direction: a reader that taps each chunk and stamps when it may go on, and a writer
/// that sends it then, in order. At most 64 chunks of 16 KiB wait between them (1 MiB): a
/// slowed link pushes back on its sender as a slow network does.
fn pipe(mut from: TcpStream, mut to: TcpStream, mut tap: Tap, delay: Arc<Mutex<Option<Delay>>>) {
    let (chunks, waiting) = std::sync::mpsc::sync_channel::<(Instant, Vec<u8>)>(64);
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        let mut last = Instant::now();
        let mut seed = u64::from(from.local_addr().map_or(1, |a| a.port())) | 1;
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    // The tap sees the bytes before they go on: it may hold them back.
                    tap(&buf[..n]);
                    let held = delay.lock().unwrap().map_or(Duration::ZERO, |d| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        let span = 2 * d.jitter.as_micros() as u64 + 1;
                        (d.base + Duration::from_micros(seed % span)).saturating_sub(d.jitter)
                    });
                    last = last.max(Instant::now() + held);
                    if chunks.send((last, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    });
    thread::spawn(move || {
        for (at, bytes) in waiting {
            thread::sleep(at.saturating_duration_since(Instant::now()));
            if to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}
