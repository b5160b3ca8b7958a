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
mod tests {
    use super::*;

    use crate::protocol::captures::{at, capture};

    fn error_at(file: &str, path: &[&str]) -> ErrorShape {
        let v = at(&capture(file), path);
        let err = if v.get("type").is_some() {
            v["error"].clone()
        } else {
            v
        };
        serde_json::from_value(err).unwrap_or_else(|e| panic!("{file} {path:?}: {e}"))
    }

    const HALT: &str = "halt";
    const RETRY: &str = "retry";
    const PAIRING: &str = "pairing";

    fn kind(f: &LinkFailure) -> &'static str {
        match f.disposition {
            Disposition::Halt => HALT,
            Disposition::Retry { .. } => RETRY,
            Disposition::Pairing { .. } => PAIRING,
        }
    }

    /// Every error frame captured from the real gateway 2026.9.6.
    #[test]
    fn every_captured_error_response_is_classified() {
        let cases: &[(&str, &[&str], &str, &str, Recovery)] = &[
            (
                "wrong_token.json",
                &["connectResponse"],
                "AUTH_TOKEN_MISMATCH",
                HALT,
                Recovery::RetryWithDeviceToken,
            ),
            (
                "wrong_token_burst.json",
                &["0", "error"],
                "AUTH_TOKEN_MISMATCH",
                HALT,
                Recovery::RetryWithDeviceToken,
            ),
            (
                "no_device_wrong_token.json",
                &["connectResponse"],
                "AUTH_TOKEN_MISMATCH",
                HALT,
                Recovery::None,
            ),
            (
                "no_token_with_device.json",
                &["connectResponse"],
                "AUTH_TOKEN_MISSING",
                HALT,
                Recovery::None,
            ),
            (
                "device_token_reconnect.json",
                &["withBogusDeviceToken", "connectResponse"],
                "AUTH_DEVICE_TOKEN_MISMATCH",
                HALT,
                Recovery::DropDeviceToken,
            ),
            (
                "bad_signature.json",
                &["connectResponse"],
                "DEVICE_AUTH_SIGNATURE_INVALID",
                HALT,
                Recovery::SignWithV2,
            ),
            (
                "device_id_mismatch.json",
                &["connectResponse"],
                "DEVICE_AUTH_DEVICE_ID_MISMATCH",
                HALT,
                Recovery::None,
            ),
            (
                "nonce_mismatch.json",
                &["connectResponse"],
                "DEVICE_AUTH_NONCE_MISMATCH",
                HALT,
                Recovery::None,
            ),
            (
                "stale_signed_at.json",
                &["connectResponse"],
                "DEVICE_AUTH_SIGNATURE_EXPIRED",
                HALT,
                Recovery::None,
            ),
            (
                "no_device_no_token.json",
                &["connectResponse"],
                "DEVICE_IDENTITY_REQUIRED",
                HALT,
                Recovery::None,
            ),
            (
                "protocol_mismatch.json",
                &["connectResponse"],
                "PROTOCOL_MISMATCH",
                HALT,
                Recovery::None,
            ),
            (
                "browser_origin.json",
                &["connectResponse"],
                "CONTROL_UI_ORIGIN_NOT_ALLOWED",
                HALT,
                Recovery::None,
            ),
            (
                "invalid_role.json",
                &["connectResponse"],
                "INVALID_REQUEST",
                HALT,
                Recovery::None,
            ),
            (
                "unknown_client_id.json",
                &["connectResponse"],
                "INVALID_REQUEST",
                HALT,
                Recovery::None,
            ),
            (
                "extra_param.json",
                &["connectResponse"],
                "INVALID_REQUEST",
                HALT,
                Recovery::None,
            ),
            (
                "first_frame_not_connect.json",
                &["frames", "1"],
                "INVALID_REQUEST",
                HALT,
                Recovery::None,
            ),
            (
                "pairing.json",
                &["firstConnect", "connectResponse"],
                "PAIRING_REQUIRED",
                PAIRING,
                Recovery::None,
            ),
            (
                "startup_early.json",
                &["distinct", "1", "err"],
                "UNAVAILABLE",
                RETRY,
                Recovery::None,
            ),
        ];
        for (file, path, code, want, recovery) in cases {
            let failure = classify_error(&error_at(file, path));
            assert_eq!(
                (
                    failure.code.to_string().as_str(),
                    kind(&failure),
                    failure.recovery
                ),
                (*code, *want, *recovery),
                "{file}"
            );
            assert!(!failure.message.is_empty());
        }
        let pairing = classify_error(&error_at(
            "pairing.json",
            &["firstConnect", "connectResponse"],
        ));
        assert_eq!(
            pairing.disposition,
            Disposition::Pairing {
                request_id: Some("c18b6f82-e7ff-41a2-8d3d-adda506d4e2f".into())
            }
        );
        let early = classify_error(&error_at("startup_early.json", &["distinct", "1", "err"]));
        assert_eq!(
            early.disposition,
            Disposition::Retry {
                after: Some(Duration::from_millis(500))
            }
        );
    }

    /// Every close captured from the real gateway.
    #[test]
    fn every_captured_close_is_classified() {
        let cases: &[(&str, &[&str], &str, &str, Recovery)] = &[
            (
                "shutdown_sigterm.json",
                &["close"],
                "SERVICE_RESTART",
                RETRY,
                Recovery::None,
            ),
            (
                "restart_watch.json",
                &["close"],
                "SERVICE_RESTART",
                RETRY,
                Recovery::None,
            ),
            (
                "token_rotation_watch.json",
                &["close"],
                "AUTH_CHANGED",
                HALT,
                Recovery::RetryWithDeviceToken,
            ),
            (
                "device_remove_watch.json",
                &["close"],
                "DEVICE_REMOVED",
                HALT,
                Recovery::DropDeviceToken,
            ),
            (
                "handshake_timeout.json",
                &["close"],
                "CLOSE_1000",
                RETRY,
                Recovery::None,
            ),
            (
                "garbage_frame.json",
                &["close"],
                "CLOSE_1000",
                RETRY,
                Recovery::None,
            ),
            (
                "frames.json",
                &["json_not_frame", "close"],
                "CLOSE_1008",
                RETRY,
                Recovery::None,
            ),
            (
                "frames.json",
                &["preauth_oversize", "close"],
                "MESSAGE_TOO_BIG",
                RETRY,
                Recovery::None,
            ),
            (
                "startup_early.json",
                &["distinct", "0", "close"],
                "CLOSE_1006",
                RETRY,
                Recovery::None,
            ),
            (
                "startup_early.json",
                &["distinct", "1", "close"],
                "TRY_AGAIN_LATER",
                RETRY,
                Recovery::None,
            ),
            (
                "protocol_mismatch.json",
                &["close"],
                "PROTOCOL_MISMATCH",
                HALT,
                Recovery::None,
            ),
        ];
        for (file, path, code, want, recovery) in cases {
            let close = at(&capture(file), path);
            let failure = classify_close(
                close["code"].as_u64().unwrap() as u16,
                close["reason"].as_str().unwrap_or(""),
            );
            assert_eq!(
                (
                    failure.code.to_string().as_str(),
                    kind(&failure),
                    failure.recovery
                ),
                (*code, *want, *recovery),
                "{file} {path:?}"
            );
        }
    }
}

#[cfg(test)]
mod release_tests {
    use super::*;
    use crate::protocol::captures::{at, capture_of};

    fn refusal(release: &str, file: &str, path: &[&str]) -> ErrorShape {
        let v = at(&capture_of(release, file), path);
        serde_json::from_value(v["error"].clone()).unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    #[test]
    fn a_2026_2_release_refusing_a_v3_proof_asks_for_v2() {
        let err = refusal(
            "2026.2.25",
            "v3_refused_v2_accepted.json",
            &["v3Refused", "connectResponse"],
        );
        assert!(signature_refused(&err));
        let failure = classify_error(&err);
        assert_eq!(failure.recovery, Recovery::SignWithV2);
        assert_eq!(failure.code, "DEVICE_AUTH_INVALID");
    }

    #[test]
    fn a_2026_1_release_refusing_a_v3_proof_asks_for_v2() {
        let err = refusal(
            "2026.1.30",
            "v3_refused_v2_accepted.json",
            &["v3Refused", "connectResponse"],
        );
        assert_eq!(err.details, None);
        let failure = classify_error(&err);
        assert_eq!(failure.recovery, Recovery::SignWithV2);
        assert_eq!(failure.code, "INVALID_REQUEST");
    }

    #[test]
    fn other_device_refusals_are_not_signature_refusals() {
        let other = |code: &str, details: Option<serde_json::Value>, message: &str| ErrorShape {
            code: code.into(),
            message: message.into(),
            details,
            retryable: None,
            retry_after_ms: None,
        };
        let nonce = serde_json::json!({"code": "DEVICE_AUTH_NONCE_MISMATCH"});
        assert!(!signature_refused(&other(
            "INVALID_REQUEST",
            Some(nonce),
            "device nonce mismatch"
        )));
        let key = serde_json::json!({"code": "DEVICE_AUTH_INVALID", "reason": "device-public-key"});
        assert!(!signature_refused(&other(
            "INVALID_REQUEST",
            Some(key),
            "device public key invalid"
        )));
        assert!(!signature_refused(&other(
            "INVALID_REQUEST",
            None,
            "invalid connect params"
        )));
        // 2026.1.x words it only in its message.
        assert!(signature_refused(&other(
            "INVALID_REQUEST",
            None,
            "device signature invalid"
        )));
    }
}

#[cfg(test)]
mod label_tests {
    use super::*;

    #[test]
    fn a_gateway_cannot_mint_metric_labels_with_invented_codes() {
        let invented = |code: &str| {
            classify_error(&ErrorShape {
                code: code.into(),
                message: "m".into(),
                details: None,
                retryable: None,
                retry_after_ms: None,
            })
        };
        assert_eq!(
            invented("AUTH_TOKEN_MISMATCH").label(),
            "AUTH_TOKEN_MISMATCH"
        );
        let labels: std::collections::HashSet<&str> = (0..1000)
            .map(|i| invented(&format!("MADE_UP_{i}")).label())
            .collect();
        assert_eq!(labels.into_iter().collect::<Vec<_>>(), ["OTHER"]);
        assert_eq!(classify_close(4999, "x").label(), "OTHER");
        assert_eq!(LinkFailure::timeout("connect").label(), "TIMEOUT");
    }
}
