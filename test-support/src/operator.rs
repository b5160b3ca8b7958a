//! A plain operator client of a real gateway, for the tests that need a second client beside
//! the daemon: one persistent WebSocket connection made as OpenClaw's own CLI makes it (`cli` /
//! `cli`, the shared token, no device; 2026.9.6 keeps a device-less CLI's scopes), optionally
//! with `caps` (`["approvals"]` makes it an approval client). What it asks is filtered as this
//! one connection's (an approval it raised is visible to it, not to the next CLI call), and it
//! hears the events sent to it. Every wait has a deadline.
//!
//! The gateway pings every client every 25 s and terminates one whose pong is 25 s late
//! (research/openclaw-protocol.md); tungstenite answers a ping only while it reads. A test that
//! holds a connection for its events and reads them at the end went quiet for longer than that
//! under CI's load, and the gateway reset it. So between the test's own reads a keeper thread
//! reads what came (keeping it, in order, for the test) and answers the pings.

use std::net::TcpStream;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

const SCOPES: [&str; 5] = [
    "operator.read",
    "operator.write",
    "operator.admin",
    "operator.approvals",
    "operator.pairing",
];

/// How often the keeper reads between the test's own reads: well inside the gateway's 25 s.
const KEEP_EVERY: Duration = Duration::from_secs(1);

pub struct Operator {
    conn: Arc<Mutex<Conn>>,
    /// Dropped to stop the keeper (it wakes at once).
    stop: Option<mpsc::Sender<()>>,
    keeper: Option<JoinHandle<()>>,
    /// The gateway's `hello-ok` payload.
    pub hello: Value,
}

struct Conn {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Frames read while waiting for something else (events, other answers), oldest first.
    pending: Vec<Value>,
    /// Why the keeper found the connection broken; the test's next read panics with it.
    broken: Option<String>,
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(keeper) = self.keeper.take() {
            let _ = keeper.join();
        }
    }
}

impl Operator {
    /// Connects to the gateway on `127.0.0.1:port` with the shared `token` and `caps`; a
    /// gateway still starting (a retryable refusal) is asked again until `deadline`.
    pub fn connect(port: u16, token: &str, caps: &[&str], deadline: Duration) -> Operator {
        crate::daemon::wait_for("the gateway to take a connect", deadline, || {
            match Self::try_connect(port, token, caps, deadline) {
                Ok(op) => Ok(op),
                Err(e) if e["retryable"] == true => Err(e.to_string()),
                Err(e) => panic!("the gateway refused the connect: {e}"),
            }
        })
    }

    /// One connect: the operator, or the gateway's refusal.
    pub fn try_connect(
        port: u16,
        token: &str,
        caps: &[&str],
        deadline: Duration,
    ) -> Result<Operator, Value> {
        let (ws, _) = tungstenite::connect(format!("ws://127.0.0.1:{port}"))
            .unwrap_or_else(|e| panic!("connect to the gateway on {port}: {e}"));
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
        }
        let mut conn = Conn {
            ws,
            next_id: 0,
            pending: Vec::new(),
            broken: None,
        };
        conn.wait_event("connect.challenge", deadline);
        let hello = conn.call(
            "connect",
            json!({"minProtocol": 3, "maxProtocol": 4,
                   "client": {"id": "cli", "mode": "cli", "platform": "linux", "version": "0.0.1"},
                   "role": "operator", "scopes": SCOPES, "caps": caps, "auth": {"token": token}}),
            deadline,
        )?;
        let conn = Arc::new(Mutex::new(conn));
        let (stop, stopped) = mpsc::channel::<()>();
        let keeper = {
            let conn = conn.clone();
            std::thread::spawn(move || {
                // Every KEEP_EVERY until the operator is dropped.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(KEEP_EVERY) {
                    // Busy: the test is reading, and answering the pings itself.
                    let Ok(mut c) = conn.try_lock() else { continue };
                    if c.broken.is_some() {
                        break;
                    }
                    c.keep_up();
                }
            })
        };
        Ok(Operator {
            conn,
            stop: Some(stop),
            keeper: Some(keeper),
            hello,
        })
    }

    fn conn(&self) -> MutexGuard<'_, Conn> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends a request; its id.
    pub fn send(&mut self, method: &str, params: Value) -> String {
        self.conn().send(method, params)
    }

    /// The answer to request `id`: its payload, or its error object.
    pub fn answer(&mut self, id: &str, deadline: Duration) -> Result<Value, Value> {
        self.conn().answer(id, deadline)
    }

    pub fn call(
        &mut self,
        method: &str,
        params: Value,
        deadline: Duration,
    ) -> Result<Value, Value> {
        self.conn().call(method, params, deadline)
    }

    /// The next event named `name` (the whole frame).
    pub fn wait_event(&mut self, name: &str, deadline: Duration) -> Value {
        self.conn().wait_event(name, deadline)
    }

    /// Every event named `name` heard so far and until the connection has been quiet for
    /// `quiet` (at most `deadline`), oldest first (whole frames).
    pub fn events(&mut self, name: &str, quiet: Duration, deadline: Duration) -> Vec<Value> {
        self.conn().events(name, quiet, deadline)
    }
}

impl Conn {
    /// What came since the last read, kept in order; the pings among it answered (tungstenite
    /// queues the pong and writes it at the next read). A broken connection is noted.
    fn keep_up(&mut self) {
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => self
                    .pending
                    .push(serde_json::from_str(&t).unwrap_or(Value::Null)),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return;
                }
                Err(e) => {
                    self.broken = Some(e.to_string());
                    return;
                }
            }
        }
    }

    fn send(&mut self, method: &str, params: Value) -> String {
        self.next_id += 1;
        let id = format!("t{}", self.next_id);
        let frame = json!({"type": "req", "id": id, "method": method, "params": params});
        self.ws
            .send(Message::Text(frame.to_string().into()))
            .unwrap_or_else(|e| panic!("send {method}: {e}"));
        id
    }

    fn answer(&mut self, id: &str, deadline: Duration) -> Result<Value, Value> {
        let frame = self.wait_for(&format!("the answer to {id}"), deadline, |f| {
            f["type"] == "res" && f["id"] == id
        });
        if frame["ok"] == true {
            Ok(frame["payload"].clone())
        } else {
            Err(frame["error"].clone())
        }
    }

    fn call(&mut self, method: &str, params: Value, deadline: Duration) -> Result<Value, Value> {
        let id = self.send(method, params);
        self.answer(&id, deadline)
    }

    fn wait_event(&mut self, name: &str, deadline: Duration) -> Value {
        self.wait_for(&format!("the event {name}"), deadline, |f| {
            f["type"] == "event" && f["event"] == name
        })
    }

    fn events(&mut self, name: &str, quiet: Duration, deadline: Duration) -> Vec<Value> {
        let started = Instant::now();
        let mut last = Instant::now();
        while last.elapsed() < quiet && started.elapsed() < deadline {
            if let Some(frame) = self.read_frame(&format!("events {name}")) {
                self.pending.push(frame);
                last = Instant::now();
            }
        }
        let (matched, rest): (Vec<Value>, Vec<Value>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|f| f["type"] == "event" && f["event"] == name);
        self.pending = rest;
        matched
    }

    fn wait_for(&mut self, what: &str, deadline: Duration, want: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.pending.iter().position(&want) {
            return self.pending.remove(i);
        }
        let started = Instant::now();
        loop {
            assert!(
                started.elapsed() < deadline,
                "{what}: not within {deadline:?}"
            );
            if let Some(frame) = self.read_frame(what) {
                if want(&frame) {
                    return frame;
                }
                self.pending.push(frame);
            }
        }
    }

    /// The next text frame, or `None` when none came within the read timeout (200 ms) or it
    /// was not text; a broken connection panics naming `what` was awaited.
    fn read_frame(&mut self, what: &str) -> Option<Value> {
        if let Some(e) = &self.broken {
            panic!("{what}: the connection failed: {e}");
        }
        match self.ws.read() {
            Ok(Message::Text(t)) => Some(serde_json::from_str(&t).unwrap_or(Value::Null)),
            Ok(_) => None,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("{what}: the connection failed: {e}"),
        }
    }
}
