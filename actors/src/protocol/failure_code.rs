//! A link failure's code, typed. Its text is what operators already see — `last_error.code` in
//! the API, the logs, the `handshake_failures` label — and does not change: the supervisor's
//! own names (`NETWORK`, `TIMEOUT`, …), the names of meaningful close codes, `CLOSE_{n}` for
//! the rest, and the gateway's own codes as it sent them (escaped and bounded). It is a
//! separate vocabulary from the API's error codes (`http/error.rs`), which say what the API
//! refused, not what a gateway link met.

use std::borrow::Cow;
use std::fmt;

use crate::bounded;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FailureCode {
    /// The socket could not be opened or broke under us.
    Network,
    /// The connect or the handshake passed its deadline.
    Timeout,
    /// Requests left unanswered past their deadline, several in a row.
    RpcTimeout,
    /// No pong and no frame from the gateway in time.
    HeartbeatTimeout,
    /// A frame that is not the protocol (binary, not UTF-8, not a frame).
    ProtocolError,
    /// A frame over the link's cap, or the gateway's close 1009.
    MessageTooBig,
    /// Close 1002: the gateway does not speak our protocol window.
    ProtocolMismatch,
    /// Close 1012: the gateway is restarting.
    ServiceRestart,
    /// Close 1013: the gateway asks to come back later.
    TryAgainLater,
    /// Close 4001 "gateway auth changed": the shared token was rotated.
    AuthChanged,
    /// Close 4001 "device removed": the device token is void.
    DeviceRemoved,
    /// Close 4001 for any other reason.
    ClientInvalidated,
    /// A close code without a meaning of its own (`CLOSE_{n}`).
    Close(u16),
    /// The gateway's own code (`details.code`, else `error.code`), e.g. `AUTH_TOKEN_MISMATCH`.
    Gateway(String),
}

/// Codes the real gateway (2026.9.6) sends that a metric label may carry; any other gateway
/// code is counted as `OTHER` (each new label value would be a new time series).
const KNOWN_GATEWAY_CODES: [&str; 19] = [
    "UNKNOWN",
    "AUTH_TOKEN_MISMATCH",
    "AUTH_TOKEN_MISSING",
    "AUTH_DEVICE_TOKEN_MISMATCH",
    "DEVICE_AUTH_SIGNATURE_INVALID",
    "DEVICE_AUTH_SIGNATURE_EXPIRED",
    "DEVICE_AUTH_NONCE_MISMATCH",
    "DEVICE_AUTH_DEVICE_ID_MISMATCH",
    "DEVICE_IDENTITY_REQUIRED",
    "PAIRING_REQUIRED",
    "NOT_PAIRED",
    "CLIENT_VERSION_MISMATCH",
    "CONTROL_UI_ORIGIN_NOT_ALLOWED",
    "INVALID_REQUEST",
    "UNAVAILABLE",
    "PROTOCOL_MISMATCH",
    "SERVICE_RESTART",
    "TRY_AGAIN_LATER",
    "MESSAGE_TOO_BIG",
];

/// Close codes common enough to keep as their own label.
const LABELLED_CLOSES: [(u16, &str); 6] = [
    (1000, "CLOSE_1000"),
    (1001, "CLOSE_1001"),
    (1005, "CLOSE_1005"),
    (1006, "CLOSE_1006"),
    (1008, "CLOSE_1008"),
    (1011, "CLOSE_1011"),
];

impl FailureCode {
    /// The gateway's code, escaped and bounded; a name of our own when it is one.
    pub fn from_gateway(code: &str) -> Self {
        let named = [
            FailureCode::ProtocolMismatch,
            FailureCode::MessageTooBig,
            FailureCode::ServiceRestart,
            FailureCode::TryAgainLater,
        ];
        named
            .into_iter()
            .find(|n| n.as_str() == code)
            .unwrap_or_else(|| FailureCode::Gateway(bounded::text(code, bounded::SHORT)))
    }

    pub fn as_str(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            FailureCode::Network => "NETWORK",
            FailureCode::Timeout => "TIMEOUT",
            FailureCode::RpcTimeout => "RPC_TIMEOUT",
            FailureCode::HeartbeatTimeout => "HEARTBEAT_TIMEOUT",
            FailureCode::ProtocolError => "PROTOCOL_ERROR",
            FailureCode::MessageTooBig => "MESSAGE_TOO_BIG",
            FailureCode::ProtocolMismatch => "PROTOCOL_MISMATCH",
            FailureCode::ServiceRestart => "SERVICE_RESTART",
            FailureCode::TryAgainLater => "TRY_AGAIN_LATER",
            FailureCode::AuthChanged => "AUTH_CHANGED",
            FailureCode::DeviceRemoved => "DEVICE_REMOVED",
            FailureCode::ClientInvalidated => "CLIENT_INVALIDATED",
            FailureCode::Close(n) => return Cow::Owned(format!("CLOSE_{n}")),
            FailureCode::Gateway(code) => return Cow::Owned(code.clone()),
        })
    }

    /// The code as a metric label: one of a fixed set, `OTHER` for anything else.
    pub fn label(&self) -> &'static str {
        match self {
            FailureCode::Close(n) => LABELLED_CLOSES
                .iter()
                .find(|(c, _)| c == n)
                .map_or("OTHER", |(_, label)| label),
            FailureCode::Gateway(code) => KNOWN_GATEWAY_CODES
                .iter()
                .find(|c| **c == code.as_str())
                .copied()
                .unwrap_or("OTHER"),
            named => match named.as_str() {
                Cow::Borrowed(name) => name,
                Cow::Owned(_) => "OTHER",
            },
        }
    }

    /// Whether the gateway could not be reached at all (as opposed to refusing us): no socket,
    /// no answer in time, or a socket lost without a close frame.
    pub fn unreachable(&self) -> bool {
        matches!(
            self,
            FailureCode::Network | FailureCode::Timeout | FailureCode::Close(1006)
        )
    }

    /// Whether this is the gateway's code `code`.
    pub fn is_gateway(&self, code: &str) -> bool {
        matches!(self, FailureCode::Gateway(c) if c == code)
    }
}

impl fmt::Display for FailureCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

/// Tests and logs compare codes with their text.
impl PartialEq<&str> for FailureCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_as_before() {
        assert_eq!(FailureCode::Network.to_string(), "NETWORK");
        assert_eq!(FailureCode::Close(1006).to_string(), "CLOSE_1006");
        assert_eq!(FailureCode::AuthChanged.to_string(), "AUTH_CHANGED");
        assert_eq!(
            FailureCode::from_gateway("AUTH_TOKEN_MISMATCH").to_string(),
            "AUTH_TOKEN_MISMATCH"
        );
    }

    #[test]
    fn a_gateway_code_that_names_one_of_ours_is_ours() {
        assert_eq!(
            FailureCode::from_gateway("PROTOCOL_MISMATCH"),
            FailureCode::ProtocolMismatch
        );
        assert!(FailureCode::from_gateway("NOT_PAIRED").is_gateway("NOT_PAIRED"));
    }

    #[test]
    fn labels_come_from_a_fixed_set() {
        assert_eq!(FailureCode::RpcTimeout.label(), "RPC_TIMEOUT");
        assert_eq!(FailureCode::Close(1011).label(), "CLOSE_1011");
        assert_eq!(FailureCode::Close(4999).label(), "OTHER");
        assert_eq!(
            FailureCode::from_gateway("NOT_PAIRED").label(),
            "NOT_PAIRED"
        );
        assert_eq!(
            FailureCode::from_gateway("MADE_UP_BY_A_PEER").label(),
            "OTHER"
        );
    }

    #[test]
    fn a_hostile_code_is_escaped_and_bounded() {
        let code = FailureCode::from_gateway(&format!("X\n{}", "Y".repeat(10_000)));
        assert!(!code.to_string().contains('\n'));
        assert!(code.to_string().len() <= bounded::SHORT + 24, "{code}");
    }

    #[test]
    fn unreachable_is_no_socket_no_answer_or_a_lost_socket() {
        assert!(FailureCode::Network.unreachable());
        assert!(FailureCode::Timeout.unreachable());
        assert!(FailureCode::Close(1006).unreachable());
        assert!(!FailureCode::Close(1008).unreachable());
        assert!(!FailureCode::from_gateway("AUTH_TOKEN_MISMATCH").unreachable());
    }
}
