//! A blocking Server-Sent Events reader for tests.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Sse {
    reader: BufReader<TcpStream>,
}

/// A comment line the daemon sends on a stream.
#[derive(Debug, PartialEq)]
pub enum Comment {
    /// `: connected`, first on every stream.
    Connected,
    /// `: keep-alive`, after `server.stream_keepalive` without a frame.
    KeepAlive,
    /// Any other (why the stream ended, say).
    Other(String),
}

impl Comment {
    fn of(text: &str) -> Comment {
        match text {
            "connected" => Comment::Connected,
            "keep-alive" => Comment::KeepAlive,
            other => Comment::Other(other.to_owned()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: u64,
    pub data: Value,
}

impl Sse {
    pub fn open(addr: SocketAddr, key: &str, last_event_id: Option<u64>, query: &str) -> Sse {
        Self::open_path(addr, key, last_event_id, &format!("/api/events{query}"))
    }

    /// A stream at another path (`/api/logs?follow=true`).
    pub fn open_path(addr: SocketAddr, key: &str, last_event_id: Option<u64>, path: &str) -> Sse {
        Self::open_as(addr, &format!("x-api-key: {key}"), last_event_id, path)
    }

    /// A stream opened with the credential header `credential` (`cookie: gs_session=…`).
    pub fn open_as(
        addr: SocketAddr,
        credential: &str,
        last_event_id: Option<u64>,
        path: &str,
    ) -> Sse {
        let mut s = TcpStream::connect(addr).expect("connect");
        let mut head = format!(
            "GET {path} HTTP/1.1\r\nhost: {addr}\r\n{credential}\r\naccept: text/event-stream\r\n"
        );
        if let Some(id) = last_event_id {
            head.push_str(&format!("last-event-id: {id}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        let mut reader = BufReader::new(s);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.contains(" 200 "), "SSE status line: {line}");
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
        }
        Sse { reader }
    }

    /// The next line, without its end, read before `until`: `Ok(None)` at the end of the
    /// stream, an error at the deadline.
    fn read_line(&mut self, until: Instant) -> std::io::Result<Option<String>> {
        let left = until
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        self.reader.get_ref().set_read_timeout(Some(left))?;
        let mut line = String::new();
        Ok((self.reader.read_line(&mut line)? > 0)
            .then(|| line.trim_end_matches(['\r', '\n']).to_owned()))
    }

    /// [`Sse::read_line`], `None` at the end of the stream or the deadline.
    fn line(&mut self, until: Instant) -> Option<String> {
        self.read_line(until).ok().flatten()
    }

    /// The next event (skipping comments and chunk framing) within `deadline`.
    pub fn next(&mut self, deadline: Duration) -> Option<SseEvent> {
        let until = Instant::now() + deadline;
        let (mut id, mut data) = (None, None);
        while Instant::now() < until {
            let line = self.line(until)?;
            let l = line.as_str();
            if let Some(v) = l.strip_prefix("id: ") {
                id = v.parse().ok();
            } else if let Some(v) = l.strip_prefix("data: ") {
                data = serde_json::from_str(v).ok();
            } else if l.is_empty()
                && let (Some(id), Some(data)) = (id.take(), data.take())
            {
                return Some(SseEvent { id, data });
            }
        }
        None
    }

    /// The next `event: reset` frame's data (what a resuming client is told when it missed
    /// events), if one comes before an ordinary event or `deadline`.
    pub fn reset(&mut self, deadline: Duration) -> Option<Value> {
        let until = Instant::now() + deadline;
        let mut is_reset = false;
        while Instant::now() < until {
            let line = self.line(until)?;
            let l = line.as_str();
            if l == "event: reset" {
                is_reset = true;
            } else if let Some(v) = l.strip_prefix("data: ") {
                if is_reset {
                    return serde_json::from_str(v).ok();
                }
                return None;
            }
        }
        None
    }

    /// The next comment line, skipping events, within `deadline`; `None` at the end of the
    /// stream or the deadline.
    pub fn comment(&mut self, deadline: Duration) -> Option<Comment> {
        let until = Instant::now() + deadline;
        while Instant::now() < until {
            if let Some(c) = self.line(until)?.strip_prefix(": ") {
                return Some(Comment::of(c));
            }
        }
        None
    }

    /// How the stream ended within `deadline`: its last comment (`: …`, or empty when it had
    /// none). Panics on an event, or when the stream is still open at the deadline.
    pub fn ends(&mut self, deadline: Duration) -> String {
        let until = Instant::now() + deadline;
        let mut last_comment = String::new();
        loop {
            let line = match self.read_line(until) {
                Ok(Some(line)) => line,
                Ok(None) => return last_comment,
                Err(e) => panic!("the stream was still open after {deadline:?} ({e})"),
            };
            assert!(
                !line.starts_with("data: "),
                "an event after the end: {line}"
            );
            if let Some(c) = line.strip_prefix(": ") {
                last_comment = c.to_owned();
            }
        }
    }

    /// Reads until an event satisfies `pred`.
    pub fn until(&mut self, deadline: Duration, pred: impl Fn(&SseEvent) -> bool) -> SseEvent {
        let until = Instant::now() + deadline;
        while Instant::now() < until {
            if let Some(e) = self.next(until.saturating_duration_since(Instant::now()))
                && pred(&e)
            {
                return e;
            }
        }
        panic!("no matching event within {deadline:?}");
    }
}
