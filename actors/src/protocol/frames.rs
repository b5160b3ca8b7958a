//! Wire frames. The three frame types are closed objects (unknown keys are a protocol error, as
//! on the gateway); payloads are parsed leniently, taking only what the supervisor uses.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Frame {
    Req {
        id: String,
        method: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        params: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        traceparent: Option<String>,
        #[serde(
            default,
            rename = "expectedProfileId",
            skip_serializing_if = "Option::is_none"
        )]
        expected_profile_id: Option<Value>,
    },
    Res {
        id: String,
        ok: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<ErrorShape>,
    },
    Event {
        event: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        #[serde(
            default,
            rename = "stateVersion",
            skip_serializing_if = "Option::is_none"
        )]
        state_version: Option<Value>,
        #[serde(
            default,
            rename = "recipientProfileId",
            skip_serializing_if = "Option::is_none"
        )]
        recipient_profile_id: Option<Value>,
    },
}

impl Frame {
    pub fn request(
        id: impl Into<String>,
        method: impl Into<String>,
        params: Option<Value>,
    ) -> Frame {
        Frame::Req {
            id: id.into(),
            method: method.into(),
            params,
            traceparent: None,
            expected_profile_id: None,
        }
    }

    /// A request with a W3C trace context (ignored for other frames).
    pub fn with_traceparent(mut self, value: Option<String>) -> Frame {
        if let Frame::Req { traceparent, .. } = &mut self {
            *traceparent = value;
        }
        self
    }

    pub fn parse(text: &str) -> Result<Frame, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// `error` of a failed response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorShape {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ErrorShape {
    /// What an `ok: false` without an error object is taken for.
    pub fn unknown(message: &str) -> Self {
        ErrorShape {
            code: "UNKNOWN".into(),
            message: message.into(),
            details: None,
            retryable: None,
            retry_after_ms: None,
        }
    }

    pub fn detail_str(&self, key: &str) -> Option<&str> {
        self.details.as_ref()?.get(key)?.as_str()
    }

    pub fn detail_u64(&self, key: &str) -> Option<u64> {
        self.details.as_ref()?.get(key)?.as_u64()
    }

    pub fn detail_bool(&self, key: &str) -> Option<bool> {
        self.details.as_ref()?.get(key)?.as_bool()
    }
}

/// `connect.challenge` payload.
#[derive(Debug, Clone, Deserialize)]
pub struct Challenge {
    pub nonce: String,
    pub ts: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientInfo {
    pub id: &'static str,
    pub mode: &'static str,
    pub version: String,
    pub platform: &'static str,
    pub display_name: &'static str,
    /// In a cluster, `instance:epoch`: which instance dials, under the gateway's fencing epoch
    /// (every release from 2026.2.25 takes an optional non-empty `client.instanceId`, for its
    /// presence list; it is not covered by the device signature).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
}

#[derive(Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_token: Option<String>,
}

impl std::fmt::Debug for AuthParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthParams")
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field(
                "device_token",
                &self.device_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceProof {
    pub id: String,
    pub public_key: String,
    pub signature: String,
    pub signed_at: u64,
    pub nonce: String,
}

/// `connect` params: a closed object on the gateway, so nothing beyond these keys is sent.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectParams {
    pub min_protocol: u32,
    pub max_protocol: u32,
    pub client: ClientInfo,
    pub role: &'static str,
    pub scopes: Vec<&'static str>,
    /// `["approvals"]` makes the client an approval client; sent only when not empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<&'static str>,
    pub auth: AuthParams,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceProof>,
    pub user_agent: String,
}

/// The parts of `hello-ok` the supervisor keeps.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelloOk {
    pub protocol: u32,
    pub server: ServerInfo,
    #[serde(default)]
    pub features: Features,
    #[serde(default)]
    pub snapshot: Option<Value>,
    #[serde(default)]
    pub auth: Option<HelloAuth>,
    #[serde(default)]
    pub policy: Policy,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerInfo {
    pub version: String,
    /// The gateway process (2026.9: a new one at every start); releases before have none.
    #[serde(default, rename = "bootId")]
    pub boot_id: Option<String>,
    /// The build (2026.9: `2026.9.6-release-<commit>-<time>`).
    #[serde(default, rename = "buildId")]
    pub build_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Features {
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub events: Vec<String>,
    /// Named behaviours beyond the method list (2026.9: 21, e.g.
    /// `gateway-restart-target-safe-v1`); older releases send none.
    #[serde(default)]
    pub capabilities: Vec<String>,
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelloAuth {
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub device_token: Option<String>,
}

impl std::fmt::Debug for HelloAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HelloAuth")
            .field("method", &self.method)
            .field("scopes", &self.scopes)
            .field(
                "device_token",
                &self.device_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    #[serde(default = "default_tick")]
    pub tick_interval_ms: u64,
    #[serde(default)]
    pub max_payload: Option<u64>,
}

fn default_tick() -> u64 {
    30_000
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            tick_interval_ms: default_tick(),
            max_payload: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::captures::{capture, frame_of};

    #[test]
    fn parses_a_real_hello_ok() {
        let ok = capture("ok_v3.json");
        let Frame::Res {
            ok: true,
            payload: Some(payload),
            ..
        } = serde_json::from_value(ok["connectResponse"].clone()).unwrap()
        else {
            panic!("not a successful res")
        };
        let hello: HelloOk = serde_json::from_value(payload).unwrap();
        assert_eq!(hello.protocol, 4);
        assert_eq!(hello.server.version, "2026.9.6");
        assert_eq!(hello.policy.tick_interval_ms, 30_000);
        assert!(hello.features.methods.iter().any(|m| m == "sessions.abort"));
        let auth = hello.auth.unwrap();
        assert!(auth.device_token.is_some());
        assert!(!format!("{auth:?}").contains(auth.device_token.as_deref().unwrap()));
    }

    #[test]
    fn every_captured_frame_parses_and_unknown_keys_do_not() {
        for name in [
            "rpc.json",
            "run_lifecycle.json",
            "runs.json",
            "first_frame_not_connect.json",
            "ok_v3.json",
            "restart_watch.json",
        ] {
            let v = capture(name);
            let mut n = 0;
            walk(&v, &mut |f| {
                if f.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| ["req", "res", "event"].contains(&t))
                    && f.get("payload") != Some(&Value::String("(omitted)".into()))
                {
                    frame_of(f).unwrap_or_else(|e| panic!("{name}: {e}: {f}"));
                    n += 1;
                }
            });
            assert!(n > 0, "{name} has frames");
        }
        let err = Frame::parse(r#"{"type":"event","event":"tick","bogus":1}"#).unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
        assert!(Frame::parse(r#"{"type":"nope"}"#).is_err());
        assert!(Frame::parse("not json").is_err());
    }

    fn walk(v: &Value, f: &mut impl FnMut(&Value)) {
        f(v);
        match v {
            Value::Array(a) => a.iter().for_each(|x| walk(x, f)),
            Value::Object(o) => o.values().for_each(|x| walk(x, f)),
            _ => {}
        }
    }

    #[test]
    fn connect_params_match_the_gateway_schema_and_hide_tokens_in_debug() {
        let p = ConnectParams {
            min_protocol: 3,
            max_protocol: 4,
            client: ClientInfo {
                id: "gateway-client",
                mode: "backend",
                version: "0.1.0".into(),
                platform: "linux",
                display_name: "gateway-supervisor",
                instance_id: None,
            },
            role: "operator",
            scopes: vec!["operator.read"],
            caps: Vec::new(),
            auth: AuthParams {
                token: Some("sekrit".into()),
                device_token: None,
            },
            device: None,
            user_agent: "gateway-supervisor/0.1.0".into(),
        };
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["minProtocol"], 3);
        assert_eq!(json["client"]["displayName"], "gateway-supervisor");
        assert_eq!(json["auth"], serde_json::json!({"token": "sekrit"}));
        assert!(json.get("device").is_none());
        assert!(!format!("{p:?}").contains("sekrit"));
    }
}
