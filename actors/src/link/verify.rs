//! One handshake and nothing more, for checks before a gateway is registered (the v1 API's
//! create and update): dial, answer the challenge, read `hello-ok`, close with 1000. The
//! decisions are the link machine's (challenge, hello, classification), the frame reading is
//! the link's own (`ws_io::receive`), so this is a second driver of one handshake, not a second
//! handshake. Must run on an actix arbiter (the HTTP client is per thread).

use std::time::{Duration, Instant};

use awc::ws::{CloseCode, Message as WsMessage};
use futures_util::{SinkExt, StreamExt};
use secrecy::SecretString;
use serde_json::Value;

use super::machine::{Action, Input, LinkMachine, MachineSettings, Now};
use crate::handshake::Credentials;
use crate::protocol::device::DeviceIdentity;
use crate::protocol::errors::{LinkFailure, classify_close};
use crate::protocol::frames::Frame;
use crate::ws_io::{Received, receive};

/// What a successful handshake told us.
#[derive(Debug, Clone)]
pub struct Reached {
    pub protocol: u32,
    pub version: String,
    /// The gateway's default ("main") agent, from the hello snapshot.
    pub default_agent: Option<String>,
}

pub struct Target<'a> {
    /// `ws://host:port/` or `wss://…`; never carries a token.
    pub url: &'a str,
    pub insecure_tls: bool,
    pub token: Option<&'a SecretString>,
}

pub async fn handshake_once(
    target: &Target<'_>,
    identity: &DeviceIdentity,
    client_version: &str,
    timeout: Duration,
) -> Result<Reached, LinkFailure> {
    match tokio::time::timeout(timeout, attempt(target, identity, client_version, timeout)).await {
        Ok(result) => result,
        Err(_) => Err(LinkFailure::timeout("handshake")),
    }
}

/// A machine for one attempt: the shared token proved first, no cached device token.
fn one_shot_machine(has_token: bool, timeout: Duration) -> LinkMachine {
    let settings = MachineSettings {
        missed_pongs: 1,
        handshake_timeout: timeout,
        breaker_threshold: 1,
        breaker_cooldown: timeout,
        degraded_latency_ms: u64::MAX,
        backoff_max: timeout,
        pairing_retry: timeout,
    };
    LinkMachine::new(settings, None, true, has_token, Instant::now())
}

/// The hello snapshot's default agent.
fn default_agent(hello: Option<&Value>) -> Option<String> {
    let snapshot = hello?.get("snapshot")?;
    snapshot
        .pointer("/sessionDefaults/defaultAgentId")
        .or_else(|| snapshot.pointer("/health/defaultAgentId"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

async fn attempt(
    target: &Target<'_>,
    identity: &DeviceIdentity,
    client_version: &str,
    timeout: Duration,
) -> Result<Reached, LinkFailure> {
    let client = super::http::client(target.insecure_tls, timeout, timeout);
    let (_, mut framed) = client
        .ws(target.url)
        .max_frame_size(crate::ws_io::HANDSHAKE_MAX_FRAME)
        .connect()
        .await
        .map_err(|e| crate::ws_io::connect_failure(&e, target.url))?;
    let mut machine = one_shot_machine(target.token.is_some(), timeout);
    let at = |machine: &mut LinkMachine, input| machine.handle(input, Now::system(), 0.5);
    at(&mut machine, Input::Dial { generation: None });
    at(&mut machine, Input::SocketOpened);
    loop {
        let frame = framed
            .next()
            .await
            .ok_or_else(|| classify_close(1006, "connection lost"))?
            .map_err(|e| crate::ws_io::read_failure(&e, crate::ws_io::HANDSHAKE_MAX_FRAME))?;
        let frame = match receive(frame) {
            Received::Frame(frame) => frame,
            Received::Ping(p) => {
                let _ = framed.send(WsMessage::Pong(p)).await;
                continue;
            }
            Received::Pong(_) => continue,
            Received::Failed(failure) => return Err(failure),
        };
        // The hello snapshot is the machine's to read, but its default agent is this check's.
        let agent = match &frame {
            Frame::Res { payload, .. } => default_agent(payload.as_ref()),
            _ => None,
        };
        for action in at(&mut machine, Input::Frame(frame)) {
            match action {
                Action::SendConnect(plan) => {
                    let creds = Credentials {
                        token: target.token,
                        device_token: None,
                        dialer: None,
                    };
                    let text = plan.request(identity, &creds, client_version)?;
                    framed
                        .send(WsMessage::Text(text.into()))
                        .await
                        .map_err(|e| LinkFailure::network(format!("write failed: {e}")))?;
                }
                // The handshake went through, or failed (the machine tears the socket down).
                Action::HandshakeDone | Action::Teardown => {
                    let result = match (machine.protocol(), machine.server_version()) {
                        (Some(protocol), Some(version)) if machine.connected() => Ok(Reached {
                            protocol,
                            version: version.to_owned(),
                            default_agent: agent,
                        }),
                        _ => Err(machine
                            .last_failure()
                            .cloned()
                            .unwrap_or_else(|| LinkFailure::protocol("unreadable hello-ok"))),
                    };
                    let _ = framed
                        .send(WsMessage::Close(Some(CloseCode::Normal.into())))
                        .await;
                    return result;
                }
                _ => {}
            }
        }
    }
}
