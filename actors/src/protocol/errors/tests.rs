//! Classification against frames captured from real gateways (2026.9.6, and the older
//! releases whose refusals differ), and the bounded metric labels.

mod captured {
    use super::super::*;

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

mod releases {
    #[test]
    fn a_protocol_mismatch_says_which_side_to_upgrade() {
        use super::super::*;
        use crate::protocol::captures::{at, capture};
        let err: ErrorShape = serde_json::from_value(at(
            &capture("protocol_mismatch.json"),
            &["connectResponse", "error"],
        ))
        .unwrap();
        let failure = classify_error(&err);
        assert_eq!(failure.code, "PROTOCOL_MISMATCH");
        assert_eq!(failure.disposition, Disposition::Halt);
        // The capture's client offered 3–3 to a gateway that speaks 4.
        assert_eq!(
            failure.message,
            "the gateway speaks protocol 4, newer than this supervisor's 3–3: upgrade gateway-supervisor"
        );
        let older = ErrorShape {
            details: Some(serde_json::json!({"code": "PROTOCOL_MISMATCH", "expectedProtocol": 2})),
            ..err
        };
        assert!(
            classify_error(&older)
                .message
                .contains("upgrade the gateway")
        );
    }

    use super::super::*;
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

mod labels {
    use super::super::*;

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
