//! What a failure means for the link: retry (with backoff, honouring the gateway's hints), halt
//! until an operator changes the gateway, or wait for a pairing approval. Keyed on the structured
//! `details.code` first, then `error.code`, then close codes; never on English text except for
//! the two documented 4001 reasons.

use std::time::Duration;

use super::failure_code::FailureCode;
use super::frames::ErrorShape;
use crate::bounded;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Reconnect with backoff; `after` is the gateway's minimum wait, if it gave one.
    Retry { after: Option<Duration> },
    /// Stop until an admin changes the gateway (host, port or token).
    Halt,
    /// The device awaits approval on the gateway; retry slowly.
    Pairing { request_id: Option<String> },
}

/// One corrective attempt the gateway itself recommends before halting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    None,
    /// The shared token was refused but a device token is accepted: reconnect once with the
    /// cached device token alone.
    RetryWithDeviceToken,
    /// The cached device token is no longer valid (device removed, token rotated): drop it and
    /// re-pair once with the shared token.
    DropDeviceToken,
    /// The device signature was refused: sign the v2 payload instead, once. Releases before
    /// 2026.2.26 verify only v2 and refuse a v3 proof in their own words (see
    /// [`signature_refused`]).
    SignWithV2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkFailure {
    /// A stable machine code (the gateway's `details.code` where it gave one).
    pub code: FailureCode,
    pub message: String,
    pub disposition: Disposition,
    pub recovery: Recovery,
}

impl Recovery {
    /// The name logs show.
    pub fn as_str(self) -> &'static str {
        match self {
            Recovery::None => "none",
            Recovery::RetryWithDeviceToken => "retry_with_device_token",
            Recovery::DropDeviceToken => "drop_device_token",
            Recovery::SignWithV2 => "sign_with_v2",
        }
    }
}

impl LinkFailure {
    fn new(code: FailureCode, message: impl Into<String>, disposition: Disposition) -> Self {
        // Messages (and the gateway's codes, in `FailureCode::from_gateway`) come from the
        // gateway: escaped and bounded before anything logs, stores or shows them.
        LinkFailure {
            code,
            message: bounded::text(&message.into(), bounded::MESSAGE),
            disposition,
            recovery: Recovery::None,
        }
    }

    pub fn retryable(&self) -> bool {
        !matches!(self.disposition, Disposition::Halt)
    }

    pub fn network(message: impl Into<String>) -> Self {
        Self::new(
            FailureCode::Network,
            message,
            Disposition::Retry { after: None },
        )
    }

    pub fn timeout(what: &str) -> Self {
        Self::new(
            FailureCode::Timeout,
            format!("{what} timed out"),
            Disposition::Retry { after: None },
        )
    }

    /// Requests the gateway left unanswered past their deadline, `n` in a row.
    pub fn unanswered(n: u32) -> Self {
        Self::new(
            FailureCode::RpcTimeout,
            format!("{n} requests in a row got no answer in time"),
            Disposition::Retry { after: None },
        )
    }

    pub fn heartbeat() -> Self {
        Self::new(
            FailureCode::HeartbeatTimeout,
            "no pong or frame from the gateway in time",
            Disposition::Retry { after: None },
        )
    }

    /// A frame over the link's size cap (what the gateway's own close code 1009 says when a
    /// client sends it one).
    pub fn too_big(message: impl Into<String>) -> Self {
        Self::new(
            FailureCode::MessageTooBig,
            message,
            Disposition::Retry { after: None },
        )
    }

    pub fn protocol(message: impl Into<String>) -> Self {
        Self::new(
            FailureCode::ProtocolError,
            message,
            Disposition::Retry { after: None },
        )
    }
}

impl LinkFailure {
    /// The gateway's own word that it is not taking links now: it is shutting down or
    /// restarting (close 1012, after the `shutdown` event) or still starting (`UNAVAILABLE`
    /// "gateway starting" to `connect`, close 1013).
    pub fn says_not_now(&self) -> bool {
        matches!(
            self.code,
            FailureCode::ServiceRestart | FailureCode::TryAgainLater
        ) || self.code.as_str() == "UNAVAILABLE"
    }

    /// The code as a metric label: one of a fixed set ([`FailureCode::label`]).
    pub fn label(&self) -> &'static str {
        self.code.label()
    }
}

const HALT_PREFIXES: [&str; 3] = ["AUTH_", "DEVICE_AUTH_", "CONTROL_UI_"];
const HALT_CODES: [&str; 3] = [
    "DEVICE_IDENTITY_REQUIRED",
    "PROTOCOL_MISMATCH",
    "CLIENT_VERSION_MISMATCH",
];

/// Classifies an `ok: false` response (to `connect`, or to any call).
pub fn classify_error(err: &ErrorShape) -> LinkFailure {
    let detail = err.detail_str("code");
    let code = detail.unwrap_or(&err.code);
    let after = err.retry_after_ms.map(Duration::from_millis);
    let typed = FailureCode::from_gateway(code);
    let mut failure = if code == "PAIRING_REQUIRED" {
        LinkFailure::new(
            typed,
            &err.message,
            Disposition::Pairing {
                // The gateway's words: escaped and bounded before they are logged or shown.
                request_id: err
                    .detail_str("requestId")
                    .map(|id| bounded::text(id, bounded::IDENTIFIER)),
            },
        )
    } else if HALT_CODES.contains(&code) || HALT_PREFIXES.iter().any(|p| code.starts_with(p)) {
        LinkFailure::new(typed.clone(), &err.message, Disposition::Halt)
    } else if err.code == "UNAVAILABLE" || err.retryable == Some(true) {
        LinkFailure::new(typed.clone(), &err.message, Disposition::Retry { after })
    } else if err.code == "INVALID_REQUEST" || err.code == "NOT_PAIRED" {
        // Malformed connect params, an invalid role, a refused handshake: retrying the same
        // request cannot succeed.
        LinkFailure::new(typed.clone(), &err.message, Disposition::Halt)
    } else {
        LinkFailure::new(typed.clone(), &err.message, Disposition::Retry { after })
    };
    if code == "PROTOCOL_MISMATCH" {
        failure.message = bounded::text(&protocol_mismatch(err), bounded::MESSAGE);
    }
    failure.recovery = match code {
        "AUTH_TOKEN_MISMATCH" if err.detail_bool("canRetryWithDeviceToken") == Some(true) => {
            Recovery::RetryWithDeviceToken
        }
        "AUTH_DEVICE_TOKEN_MISMATCH" => Recovery::DropDeviceToken,
        _ if signature_refused(err) => Recovery::SignWithV2,
        _ => Recovery::None,
    };
    failure
}

/// A protocol mismatch in plain words: which protocol the gateway speaks, which we offered, and
/// which side to upgrade.
fn protocol_mismatch(err: &ErrorShape) -> String {
    let offered = (
        err.detail_u64("clientMinProtocol")
            .unwrap_or(u64::from(super::MIN_PROTOCOL)),
        err.detail_u64("clientMaxProtocol")
            .unwrap_or(u64::from(super::MAX_PROTOCOL)),
    );
    match err.detail_u64("expectedProtocol") {
        Some(theirs) if theirs > offered.1 => format!(
            "the gateway speaks protocol {theirs}, newer than this supervisor's {}–{}: upgrade gateway-supervisor",
            offered.0, offered.1
        ),
        Some(theirs) => format!(
            "the gateway speaks protocol {theirs}, older than this supervisor's {}–{}: upgrade the gateway (OpenClaw 2026.1.29 or later speaks protocol 3)",
            offered.0, offered.1
        ),
        None => format!(
            "the gateway does not speak this supervisor's protocols {}–{} ({}): upgrade whichever is older",
            offered.0, offered.1, err.message
        ),
    }
}

/// Whether the gateway refused the device signature itself (not the key, the nonce or the
/// time), as each release words it:
/// - 2026.2.26 and later: `details.code` `DEVICE_AUTH_SIGNATURE_INVALID`;
/// - 2026.2.22 – 2026.2.25: `details` `{code: "DEVICE_AUTH_INVALID", reason: "device-signature"}`;
/// - 2026.1.x – 2026.2.19: `INVALID_REQUEST` "device signature invalid" with no `details` — the
///   one refusal recognised by its English text, as those releases give nothing else.
pub fn signature_refused(err: &ErrorShape) -> bool {
    match (err.detail_str("code"), err.detail_str("reason")) {
        (Some("DEVICE_AUTH_SIGNATURE_INVALID"), _) => true,
        (Some("DEVICE_AUTH_INVALID"), Some("device-signature")) => true,
        (None, _) => err.code == "INVALID_REQUEST" && err.message == "device signature invalid",
        _ => false,
    }
}

/// Classifies a close that was not preceded by an error response.
pub fn classify_close(code: u16, reason: &str) -> LinkFailure {
    let message = if reason.is_empty() {
        format!("connection closed with code {code}")
    } else {
        format!("connection closed with code {code}: {reason}")
    };
    let retry = Disposition::Retry { after: None };
    match code {
        1002 => LinkFailure::new(FailureCode::ProtocolMismatch, message, Disposition::Halt),
        1009 => LinkFailure::new(FailureCode::MessageTooBig, message, retry),
        1012 => LinkFailure::new(FailureCode::ServiceRestart, message, retry),
        1013 => LinkFailure::new(FailureCode::TryAgainLater, message, retry),
        4001 if reason == "gateway auth changed" => LinkFailure {
            recovery: Recovery::RetryWithDeviceToken,
            ..LinkFailure::new(FailureCode::AuthChanged, message, Disposition::Halt)
        },
        4001 if reason == "device removed" => LinkFailure {
            recovery: Recovery::DropDeviceToken,
            ..LinkFailure::new(FailureCode::DeviceRemoved, message, Disposition::Halt)
        },
        4001 => LinkFailure::new(FailureCode::ClientInvalidated, message, Disposition::Halt),
        _ => LinkFailure::new(FailureCode::Close(code), message, retry),
    }
}

#[cfg(test)]
mod tests;
