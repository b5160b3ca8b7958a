//! One handshake and nothing more: connect, answer the challenge, read `hello-ok`, close with
//! 1000. For checks before a gateway is registered (the v1 API's create). Must run on an actix
//! arbiter (the HTTP client is per thread).

use std::time::Duration;

use awc::ws::{CloseCode, Frame as WsFrame, Message as WsMessage};
use futures_util::{SinkExt, StreamExt};
use secrecy::SecretString;
use serde_json::Value;

use crate::handshake::{AuthChoice, Credentials, connect_params};
use crate::protocol::device::{DeviceIdentity, SignatureVersion};
use crate::protocol::errors::{LinkFailure, classify_close, classify_error};
use crate::protocol::frames::{Challenge, ErrorShape, Frame, HelloOk};

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

async fn attempt(
    target: &Target<'_>,
    identity: &DeviceIdentity,
    client_version: &str,
    timeout: Duration,
) -> Result<Reached, LinkFailure> {
    let client = crate::link::http::client(target.insecure_tls, timeout, timeout);
    let (_, mut framed) = client
        .ws(target.url)
        .max_frame_size(crate::ws_io::HANDSHAKE_MAX_FRAME)
        .connect()
        .await
        .map_err(|e| crate::ws_io::connect_failure(&e, target.url))?;
    let id = "connect-oneshot";
    loop {
        let frame = framed
            .next()
            .await
            .ok_or_else(|| classify_close(1006, "connection lost"))?
            .map_err(|e| crate::ws_io::read_failure(&e, crate::ws_io::HANDSHAKE_MAX_FRAME))?;
        let text = match frame {
            WsFrame::Text(t) => t,
            WsFrame::Ping(p) => {
                let _ = framed.send(WsMessage::Pong(p)).await;
                continue;
            }
            WsFrame::Close(reason) => {
                let (code, text) = reason
                    .map(|r| (u16::from(r.code), r.description.unwrap_or_default()))
                    .unwrap_or((1005, String::new()));
                return Err(classify_close(code, &text));
            }
            _ => continue,
        };
        let frame = std::str::from_utf8(&text)
            .ok()
            .and_then(|t| Frame::parse(t).ok())
            .ok_or_else(|| LinkFailure::protocol("the gateway sent an unreadable frame"))?;
        match frame {
            Frame::Event { event, payload, .. } if event == "connect.challenge" => {
                let challenge: Challenge = payload
                    .and_then(|p| serde_json::from_value(p).ok())
                    .ok_or_else(|| LinkFailure::protocol("connect.challenge without a nonce"))?;
                let params = connect_params(
                    identity,
                    &Credentials {
                        token: target.token,
                        device_token: None,
                    },
                    AuthChoice::SharedTokenFirst,
                    &challenge,
                    SignatureVersion::V3,
                    client_version,
                );
                let params = serde_json::to_value(&params)
                    .map_err(|e| LinkFailure::protocol(e.to_string()))?;
                let text = serde_json::to_string(&Frame::request(id, "connect", Some(params)))
                    .map_err(|e| LinkFailure::protocol(e.to_string()))?;
                framed
                    .send(WsMessage::Text(text.into()))
                    .await
                    .map_err(|e| LinkFailure::network(format!("write failed: {e}")))?;
            }
            Frame::Res {
                id: rid,
                ok,
                payload,
                error,
            } if rid == id => {
                let result = if ok {
                    let hello: HelloOk = payload
                        .and_then(|p| serde_json::from_value(p).ok())
                        .ok_or_else(|| LinkFailure::protocol("unreadable hello-ok"))?;
                    let snapshot = hello.snapshot.unwrap_or(Value::Null);
                    let default_agent = snapshot
                        .pointer("/sessionDefaults/defaultAgentId")
                        .or_else(|| snapshot.pointer("/health/defaultAgentId"))
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    Ok(Reached {
                        protocol: hello.protocol,
                        version: crate::bounded::text(&hello.server.version, crate::bounded::SHORT),
                        default_agent,
                    })
                } else {
                    Err(classify_error(&error.unwrap_or_else(|| {
                        ErrorShape::unknown("connect refused without an error")
                    })))
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

/// CalVer `YYYY.M.D[-rev]` (zero padding allowed) → comparable tuple; `None` when not CalVer.
pub fn calver(version: &str) -> Option<(u32, u32, u32, u32)> {
    let (main, rev) = match version.trim().split_once('-') {
        Some((m, r)) => (m, r.parse().ok()?),
        None => (version.trim(), 0),
    };
    let mut parts = main.split('.').map(|p| p.parse::<u32>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    if parts.next().is_some() || y < 2000 || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some((y, m, d, rev))
}

#[cfg(test)]
mod tests {
    use super::calver;

    #[test]
    fn calver_parses_and_orders() {
        assert_eq!(calver("2026.9.6"), Some((2026, 9, 6, 0)));
        assert_eq!(calver("2026.02.9"), Some((2026, 2, 9, 0)));
        assert_eq!(calver("2026.2.9-3"), Some((2026, 2, 9, 3)));
        assert!(calver("2026.9.6") > calver("2026.02.9"));
        assert!(calver("2026.1.30") < calver("2026.2.9"));
        for bad in ["dev", "1.2", "2026.13.1", "2026.1.1.1", "", "v2026.1.1"] {
            assert_eq!(calver(bad), None, "{bad}");
        }
    }
}
