//! A webhook receiver on loopback for the alert tests: it records every request (headers,
//! body) and answers 500 to the very first (so a retry is always exercised), 200 after.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// One request the receiver got: its headers (lower-case names) and body.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A webhook receiver on loopback that answers 500 to its first request and 200 after.
pub fn receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let seen = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let seen = seen.clone();
            // A connection each, so a client holding one idle never blocks the next.
            std::thread::spawn(move || answer(stream, &seen, true));
        }
    });
    (url, got)
}

/// Reads one request from `stream`, records it, answers (500 to the very first when
/// `fail_first`, else 200) and closes.
fn answer(mut stream: std::net::TcpStream, seen: &Mutex<Vec<Received>>, fail_first: bool) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut headers = Vec::new();
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((n, v)) = line.trim_end().split_once(':') {
            headers.push((n.to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let first = {
        let mut all = seen.lock().unwrap();
        all.push(Received { headers, body });
        all.len() == 1
    };
    let status = if first && fail_first {
        "500 Internal Server Error"
    } else {
        "200 OK"
    };
    let _ = stream.write_all(
        format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes(),
    );
}

pub fn delivered(got: &Mutex<Vec<Received>>) -> Vec<Value> {
    got.lock()
        .unwrap()
        .iter()
        .skip(1)
        .map(Received::json)
        .collect()
}

pub fn count(alerts: &[Value], kind: &str, state: &str) -> usize {
    alerts
        .iter()
        .filter(|a| a["kind"] == kind && a["state"] == state)
        .count()
}

/// A webhook receiver that never answers its first request (it holds the connection open)
/// and answers 200 to every other.
pub fn receiver_hanging_first() -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let seen = got.clone();
    let mut first = true;
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            if std::mem::take(&mut first) {
                held.push(stream);
                continue;
            }
            let seen = seen.clone();
            std::thread::spawn(move || answer(stream, &seen, false));
        }
    });
    (url, got)
}

/// `sha256=<hex>`: the signature header a body signed with `secret` carries (HMAC-SHA256, worked
/// out here with the `hmac` crate, not the daemon's code).
pub fn signature(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}
