//! The fake's handshake checks against frames captured from real gateways.

use super::*;

fn capture(name: &str) -> Value {
    let path = format!(
        "{}/../testdata/openclaw-captures/2026.9.6/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const BOTH: Signatures = Signatures::V3OrV2;

/// The fake accepts exactly what the real gateway accepted, and refuses what it refused,
/// with the same codes.
#[test]
fn agrees_with_the_real_gateway_on_captured_connects() {
    for (file, want) in [
        ("ok_v3.json", None),
        ("ok_v2.json", None),
        ("bad_signature.json", Some("DEVICE_AUTH_SIGNATURE_INVALID")),
        ("nonce_mismatch.json", Some("DEVICE_AUTH_NONCE_MISMATCH")),
        (
            "device_id_mismatch.json",
            Some("DEVICE_AUTH_DEVICE_ID_MISMATCH"),
        ),
    ] {
        let cap = capture(file);
        let params = &cap["connectFrame"]["params"];
        let c = parse_connect(params).unwrap();
        let nonce = cap["challenge"]["payload"]["nonce"].as_str().unwrap();
        let now = cap["challenge"]["payload"]["ts"].as_u64().unwrap();
        let got = verify_device(&c, c.device.as_ref().unwrap(), nonce, now, BOTH).err();
        let code = got
            .as_ref()
            .map(|r| r.error["details"]["code"].as_str().unwrap().to_owned());
        assert_eq!(code.as_deref(), want, "{file}");
        if let Some(r) = got {
            assert_eq!(
                r.error, cap["connectResponse"]["error"],
                "{file}: same error as the real gateway"
            );
            assert_eq!(r.close_code, cap["close"]["code"].as_u64().unwrap() as u16);
        }
    }
}

#[test]
fn stale_signatures_and_v2_only_gateways() {
    let cap = capture("ok_v3.json");
    let c = parse_connect(&cap["connectFrame"]["params"]).unwrap();
    let d = c.device.clone().unwrap();
    let nonce = cap["challenge"]["payload"]["nonce"].as_str().unwrap();
    let err = verify_device(&c, &d, nonce, d.signed_at + 600_000, BOTH).unwrap_err();
    assert_eq!(
        err.error["details"]["code"],
        "DEVICE_AUTH_SIGNATURE_EXPIRED"
    );
    let err = verify_device(&c, &d, nonce, d.signed_at, BOTH);
    assert!(err.is_ok(), "a v3 proof verifies on 2026.9.6");
}

/// A v3 proof on a release that verifies only v2: that release's own refusal frame.
#[test]
fn v2_only_releases_refuse_a_v3_proof_in_their_own_words() {
    let cap = capture("ok_v3.json");
    let c = parse_connect(&cap["connectFrame"]["params"]).unwrap();
    let d = c.device.clone().unwrap();
    let nonce = cap["challenge"]["payload"]["nonce"].as_str().unwrap();
    let older = |release: &str| -> Value {
        let path = format!(
            "{}/../testdata/openclaw-captures/{release}/v3_refused_v2_accepted.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    for (mode, release) in [
        (Signatures::V2Only2026_2, "2026.2.25"),
        (Signatures::V2Only2026_1, "2026.1.30"),
    ] {
        let real = older(release);
        let err = verify_device(&c, &d, nonce, d.signed_at, mode).unwrap_err();
        assert_eq!(
            err.error, real["v3Refused"]["connectResponse"]["error"],
            "{release}"
        );
        assert_eq!(
            err.close_code,
            real["v3Refused"]["close"]["code"].as_u64().unwrap() as u16,
            "{release}"
        );
    }
}

#[test]
fn schema_is_closed_like_the_real_gateway() {
    for (file, fragment) in [
        ("extra_param.json", "unexpected property"),
        ("unknown_client_id.json", "/client/id"),
    ] {
        let cap = capture(file);
        let err = parse_connect(&cap["connectFrame"]["params"]).unwrap_err();
        assert!(
            err.error["message"].as_str().unwrap().contains(fragment),
            "{file}: {}",
            err.error
        );
        assert_eq!(
            err.error["message"], cap["connectResponse"]["error"]["message"],
            "{file}"
        );
    }
    let cap = capture("invalid_role.json");
    let c = parse_connect(&cap["connectFrame"]["params"]).unwrap();
    assert_eq!(
        check_role(&c).unwrap_err().error,
        cap["connectResponse"]["error"]
    );
    let cap = capture("protocol_mismatch.json");
    let c = parse_connect(&cap["connectFrame"]["params"]).unwrap();
    let err = check_protocol(&c, 4).unwrap_err();
    assert_eq!(err.error, cap["connectResponse"]["error"]);
    assert_eq!(err.close_code, 1002);
}

#[test]
fn auth_errors_match_the_captures() {
    assert_eq!(
        token_mismatch(true).error,
        capture("wrong_token.json")["connectResponse"]["error"]
    );
    assert_eq!(
        token_mismatch(false).error,
        capture("no_device_wrong_token.json")["connectResponse"]["error"]
    );
    assert_eq!(
        device_identity_required().error,
        capture("no_device_no_token.json")["connectResponse"]["error"]
    );
    assert_eq!(
        device_token_mismatch().error,
        capture("device_token_reconnect.json")["withBogusDeviceToken"]["connectResponse"]["error"]
    );
    assert_eq!(
        token_missing().error,
        capture("no_token_with_device.json")["connectResponse"]["error"]
    );
    let early = capture("startup_early.json");
    assert_eq!(unavailable_starting().error, early["distinct"][1]["err"]);
}
