//! Hostile gateways: what a broken or malicious peer at a gateway's address can send. No
//! OpenClaw release does any of this; the daemon must survive each with its memory bounded,
//! its status truthful and its other gateways untouched. Each mode is a fault
//! ([`crate::Faults::hostile`]) that stays in effect for every connection until cleared.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

#[derive(Debug, Clone)]
pub enum Hostile {
    /// Right after `hello-ok`, a binary frame (the protocol is JSON text only).
    BinaryAfterHello,
    /// Right after `hello-ok`, a text frame whose bytes are not UTF-8.
    InvalidUtf8AfterHello,
    /// Right after `hello-ok`, a text frame that is not JSON.
    GarbageAfterHello,
    /// Right after `hello-ok`, one huge event frame ([`Hostile::oversize`]).
    OversizeAfterHello(Message),
    /// Right after `hello-ok`, many small events as fast as the socket takes them
    /// ([`Hostile::flood`]).
    FloodAfterHello(Arc<[Message]>),
    /// This frame instead of `connect.challenge` (no nonce, wrong types, not an event).
    Challenge(Value),
    /// These fields over `hello-ok`'s payload (absurd versions, protocols, policies, method
    /// lists), merged one level deep.
    Hello(Value),
    /// The `101 Switching Protocols` head one byte at a time, this far apart: a peer that
    /// never goes quiet and never finishes.
    Drip(Duration),
}

impl Hostile {
    /// An event frame of about `bytes` bytes, built once (not on the fake's runtime, where
    /// building it would stall the other fakes of a test).
    pub fn oversize(bytes: usize) -> Hostile {
        let frame =
            json!({"type": "event", "event": "tick", "payload": {"pad": "x".repeat(bytes)}});
        Hostile::OversizeAfterHello(Message::Text(frame.to_string().into()))
    }

    /// `n` small events, built once: ticks, and every tenth a `log` line `flood <i>` (the
    /// last one is `flood <n-1>`, so a test can see the whole flood arrived).
    pub fn flood(n: usize) -> Hostile {
        Hostile::FloodAfterHello(
            (0..n)
                .map(|i| {
                    let frame = if i % 10 == 9 || i + 1 == n {
                        json!({"type": "event", "event": "log", "seq": i + 1, "payload": {"level": "info", "message": format!("flood {i}")}})
                    } else {
                        json!({"type": "event", "event": "tick", "seq": i + 1, "payload": {"ts": i}})
                    };
                    Message::Text(frame.to_string().into())
                })
                .collect(),
        )
    }

    /// The frames to send right after `hello-ok`, if this mode sends any.
    pub(crate) fn after_hello(&self) -> Vec<Message> {
        match self {
            Hostile::BinaryAfterHello => vec![Message::Binary(vec![0u8, 159, 146, 150].into())],
            Hostile::InvalidUtf8AfterHello => {
                let bytes: &[u8] =
                    b"{\"type\":\"event\",\"event\":\"tick\",\"payload\":\"\xff\xfe\xc0\"}";
                vec![Message::Frame(Frame::message(
                    bytes.to_vec(),
                    OpCode::Data(Data::Text),
                    true,
                ))]
            }
            Hostile::GarbageAfterHello => vec![Message::Text("}{ not json \u{1F4A5}".into())],
            Hostile::OversizeAfterHello(frame) => vec![frame.clone()],
            Hostile::FloodAfterHello(frames) => frames.to_vec(),
            Hostile::Challenge(_) | Hostile::Hello(_) | Hostile::Drip(_) => Vec::new(),
        }
    }

    /// `hello-ok`'s payload with this mode's fields over it.
    pub(crate) fn hello(&self, mut payload: Value) -> Value {
        if let (Hostile::Hello(over), Some(fields)) = (self, payload.as_object_mut()) {
            for (key, value) in over.as_object().into_iter().flatten() {
                match (fields.get_mut(key), value) {
                    (Some(Value::Object(inner)), Value::Object(patch)) => {
                        for (k, v) in patch {
                            inner.insert(k.clone(), v.clone());
                        }
                    }
                    _ => {
                        fields.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        payload
    }
}
