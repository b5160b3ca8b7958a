//! The gateway side of the handshake: closed-schema validation of `connect` and the device
//! proof, written independently of the supervisor's client (a bug shared by both sides would
//! otherwise pass). Error codes, messages and close codes are the ones captured from the real
//! gateway 2026.9.6.

use base64::Engine;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// A refused handshake: the `res` error and the close that follows.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub error: Value,
    pub close_code: u16,
    pub close_reason: String,
}

fn refuse(code: &str, message: &str, details: Option<Value>, close_code: u16) -> Refusal {
    let mut error = json!({ "code": code, "message": message });
    if let Some(d) = details {
        error["details"] = d;
    }
    Refusal {
        error,
        close_code,
        close_reason: message.to_owned(),
    }
}

pub fn invalid_params(path: &str, what: &str) -> Refusal {
    refuse(
        "INVALID_REQUEST",
        &format!("invalid connect params: at {path}: {what}"),
        None,
        1008,
    )
}

const ROOT_KEYS: [&str; 16] = [
    "minProtocol",
    "maxProtocol",
    "client",
    "role",
    "scopes",
    "caps",
    "commands",
    "permissions",
    "pathEnv",
    "computerUse",
    "workerRuns",
    "modelCatalog",
    "device",
    "auth",
    "locale",
    "userAgent",
];
const CLIENT_KEYS: [&str; 10] = [
    "id",
    "mode",
    "version",
    "platform",
    "displayName",
    "buildId",
    "deviceFamily",
    "modelIdentifier",
    "timeZone",
    "instanceId",
];
const CLIENT_IDS: [&str; 17] = [
    "webchat-ui",
    "openclaw-control-ui",
    "openclaw-browser-copilot",
    "openclaw-tui",
    "webchat",
    "cli",
    "gateway-client",
    "openclaw-macos",
    "openclaw-linux",
    "openclaw-ios",
    "openclaw-watchos",
    "openclaw-android",
    "node-host",
    "openclaw-worker",
    "test",
    "fingerprint",
    "openclaw-probe",
];
const CLIENT_MODES: [&str; 8] = [
    "webchat", "cli", "ui", "backend", "node", "worker", "probe", "test",
];
const DEVICE_KEYS: [&str; 5] = ["id", "publicKey", "signature", "signedAt", "nonce"];
const AUTH_KEYS: [&str; 6] = [
    "token",
    "password",
    "deviceToken",
    "bootstrapToken",
    "approvalRuntimeToken",
    "agentRuntimeIdentityToken",
];
pub const OPERATOR_SCOPES: [&str; 8] = [
    "operator.read",
    "operator.write",
    "operator.admin",
    "operator.approvals",
    "operator.questions",
    "operator.pairing",
    "operator.talk",
    "operator.talk.secrets",
];

fn closed(obj: &Map<String, Value>, allowed: &[&str], path: &str) -> Result<(), Refusal> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(extra) => Err(invalid_params(
            path,
            &format!("unexpected property '{extra}'"),
        )),
        None => Ok(()),
    }
}

fn string<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
    required: bool,
) -> Result<Option<&'a str>, Refusal> {
    match obj.get(key) {
        None if required => Err(invalid_params(
            path,
            &format!("must have required property '{key}'"),
        )),
        None => Ok(None),
        Some(Value::String(s)) if !(required && s.is_empty()) => Ok(Some(s)),
        Some(_) => Err(invalid_params(&format!("{path}/{key}"), "must be string")),
    }
}

/// The parsed, schema-valid parts of `connect` the gateway acts on.
#[derive(Debug, Clone)]
pub struct Connect {
    pub min_protocol: u64,
    pub max_protocol: u64,
    pub client_id: String,
    pub client_mode: String,
    pub platform: String,
    pub device_family: Option<String>,
    pub display_name: Option<String>,
    /// `client.instanceId` (optional, non-empty; a supervisor's `instance:epoch`).
    pub instance_id: Option<String>,
    pub role: String,
    pub scopes: Vec<String>,
    /// What the client asks to be (`caps`, e.g. `approvals`).
    pub caps: Vec<String>,
    pub token: Option<String>,
    pub device_token: Option<String>,
    pub device: Option<DeviceClaim>,
}

#[derive(Debug, Clone)]
pub struct DeviceClaim {
    pub id: String,
    pub public_key: String,
    pub signature: String,
    pub signed_at: u64,
    pub nonce: String,
}

pub fn parse_connect(params: &Value) -> Result<Connect, Refusal> {
    let root = params
        .as_object()
        .ok_or_else(|| invalid_params("root", "must be object"))?;
    closed(root, &ROOT_KEYS, "root")?;
    let int = |key: &str| -> Result<u64, Refusal> {
        match root.get(key) {
            Some(v) => v
                .as_u64()
                .filter(|n| *n >= 1)
                .ok_or_else(|| invalid_params(&format!("/{key}"), "must be integer >= 1")),
            None => Err(invalid_params(
                "root",
                &format!("must have required property '{key}'"),
            )),
        }
    };
    let (min_protocol, max_protocol) = (int("minProtocol")?, int("maxProtocol")?);
    let client = root
        .get("client")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid_params("root", "must have required property 'client'"))?;
    closed(client, &CLIENT_KEYS, "/client")?;
    let client_id = string(client, "id", "/client", true)?.unwrap_or_default();
    if !CLIENT_IDS.contains(&client_id) {
        return Err(invalid_params(
            "/client/id",
            "must be equal to one of the allowed values",
        ));
    }
    let client_mode = string(client, "mode", "/client", true)?.unwrap_or_default();
    if !CLIENT_MODES.contains(&client_mode) {
        return Err(invalid_params(
            "/client/mode",
            "must be equal to one of the allowed values",
        ));
    }
    string(client, "version", "/client", true)?;
    let platform = string(client, "platform", "/client", true)?
        .unwrap_or_default()
        .to_owned();
    let device_family = string(client, "deviceFamily", "/client", false)?.map(str::to_owned);
    let display_name = string(client, "displayName", "/client", false)?.map(str::to_owned);
    let instance_id = string(client, "instanceId", "/client", false)?.map(str::to_owned);
    let role = match root.get("role") {
        None => "operator".to_owned(),
        Some(Value::String(r)) => r.clone(),
        Some(_) => return Err(invalid_params("/role", "must be string")),
    };
    let scopes = match root.get("scopes") {
        None => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid_params("/scopes", "must be string"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid_params("/scopes", "must be array")),
    };
    let (mut token, mut device_token) = (None, None);
    if let Some(auth) = root.get("auth") {
        let auth = auth
            .as_object()
            .ok_or_else(|| invalid_params("/auth", "must be object"))?;
        closed(auth, &AUTH_KEYS, "/auth")?;
        for key in AUTH_KEYS {
            string(auth, key, "/auth", false)?;
        }
        token = string(auth, "token", "/auth", false)?.map(str::to_owned);
        device_token = string(auth, "deviceToken", "/auth", false)?.map(str::to_owned);
    }
    let device = match root.get("device") {
        None => None,
        Some(d) => {
            let d = d
                .as_object()
                .ok_or_else(|| invalid_params("/device", "must be object"))?;
            closed(d, &DEVICE_KEYS, "/device")?;
            let get =
                |k: &str| string(d, k, "/device", true).map(|v| v.unwrap_or_default().to_owned());
            let signed_at = d
                .get("signedAt")
                .and_then(Value::as_u64)
                .ok_or_else(|| invalid_params("/device/signedAt", "must be integer >= 0"))?;
            Some(DeviceClaim {
                id: get("id")?,
                public_key: get("publicKey")?,
                signature: get("signature")?,
                signed_at,
                nonce: get("nonce")?,
            })
        }
    };
    let caps = root
        .get("caps")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(Connect {
        caps,
        min_protocol,
        max_protocol,
        client_id: client_id.to_owned(),
        client_mode: client_mode.to_owned(),
        platform,
        device_family,
        display_name,
        instance_id,
        role,
        scopes,
        token,
        device_token,
        device,
    })
}

pub fn check_protocol(c: &Connect, server_protocol: u64) -> Result<(), Refusal> {
    if c.max_protocol >= server_protocol && c.min_protocol <= server_protocol {
        return Ok(());
    }
    let details = json!({
        "code": "PROTOCOL_MISMATCH", "clientMinProtocol": c.min_protocol, "clientMaxProtocol": c.max_protocol,
        "expectedProtocol": server_protocol, "minimumProbeProtocol": 3,
    });
    Err(refuse(
        "INVALID_REQUEST",
        "protocol mismatch",
        Some(details),
        1002,
    ))
}

pub fn check_role(c: &Connect) -> Result<(), Refusal> {
    if c.role == "operator" || c.role == "node" {
        Ok(())
    } else {
        Err(refuse("INVALID_REQUEST", "invalid role", None, 1008))
    }
}

pub fn token_mismatch(device_present: bool) -> Refusal {
    let details = if device_present {
        json!({"code": "AUTH_TOKEN_MISMATCH", "authReason": "token_mismatch", "canRetryWithDeviceToken": true, "recommendedNextStep": "retry_with_device_token"})
    } else {
        json!({"code": "AUTH_TOKEN_MISMATCH", "authReason": "token_mismatch", "canRetryWithDeviceToken": false, "recommendedNextStep": "update_auth_credentials"})
    };
    refuse(
        "INVALID_REQUEST",
        "unauthorized: gateway token mismatch (use this gateway's gateway.auth.token or pair the device)",
        Some(details),
        1008,
    )
}

pub fn token_missing() -> Refusal {
    refuse(
        "INVALID_REQUEST",
        "unauthorized: gateway token missing (use this gateway's gateway.auth.token or pair the device)",
        Some(
            json!({"code": "AUTH_TOKEN_MISSING", "authReason": "token_missing", "canRetryWithDeviceToken": false, "recommendedNextStep": "update_auth_configuration"}),
        ),
        1008,
    )
}

pub fn device_token_mismatch() -> Refusal {
    refuse(
        "INVALID_REQUEST",
        "unauthorized: device token mismatch (rotate/reissue device token)",
        Some(
            json!({"code": "AUTH_DEVICE_TOKEN_MISMATCH", "authReason": "device_token_mismatch", "canRetryWithDeviceToken": false, "recommendedNextStep": "update_auth_credentials"}),
        ),
        1008,
    )
}

pub fn device_identity_required() -> Refusal {
    refuse(
        "NOT_PAIRED",
        "device identity required",
        Some(json!({"code": "DEVICE_IDENTITY_REQUIRED"})),
        1008,
    )
}

pub fn pairing_required(request_id: &str, device_id: &str, scopes: &[String]) -> Refusal {
    let details = json!({
        "code": "PAIRING_REQUIRED", "reason": "not-paired", "requestId": request_id,
        "remediationHint": "Approve this device from the pending pairing requests.",
        "deviceId": device_id, "requestedRole": "operator", "requestedScopes": scopes,
    });
    let mut r = refuse(
        "NOT_PAIRED",
        "pairing required: device is not approved yet",
        Some(details),
        1008,
    );
    r.close_reason =
        format!("pairing required: device is not approved yet (requestId: {request_id})");
    r
}

pub fn unavailable_starting() -> Refusal {
    let mut r = refuse(
        "UNAVAILABLE",
        "gateway starting; retry shortly",
        Some(json!({"reason": "startup-sidecars"})),
        1013,
    );
    r.error["retryable"] = json!(true);
    r.error["retryAfterMs"] = json!(500);
    r.close_reason = "gateway starting".into();
    r
}

/// Canonical form of one v3 payload field: trimmed, ASCII A–Z lowered.
fn canonical(field: &str) -> String {
    field
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_uppercase() {
                c.to_ascii_lowercase()
            } else {
                c
            }
        })
        .collect()
}

/// Which release's device-signature check the fake imitates; each mode answers with that
/// release's exact frames (captured in `testdata/openclaw-captures/<release>/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Signatures {
    /// 2026.2.26 and later (2026.9.6 captured): the v3 or the v2 payload verifies; a proof that
    /// verifies under neither is `INVALID_REQUEST` "device signature invalid" with
    /// `details {code: DEVICE_AUTH_SIGNATURE_INVALID, reason: device-signature}`, close 1008.
    #[default]
    V3OrV2,
    /// 2026.2.22 – 2026.2.25 (2026.2.25 captured): only v2 verifies; a v3 proof is
    /// `INVALID_REQUEST` "device signature invalid" with
    /// `details {code: DEVICE_AUTH_INVALID, reason: device-signature}`, close 1008.
    V2Only2026_2,
    /// 2026.1.x – 2026.2.19 (2026.1.30 captured): only v2 verifies; a v3 proof is
    /// `INVALID_REQUEST` "device signature invalid" with no `details`, close 1008.
    V2Only2026_1,
}

impl Signatures {
    fn v3(self) -> bool {
        self == Signatures::V3OrV2
    }

    /// The refusal of a proof that does not verify.
    fn refusal(self) -> Refusal {
        let details = match self {
            Signatures::V3OrV2 => {
                Some(json!({"code": "DEVICE_AUTH_SIGNATURE_INVALID", "reason": "device-signature"}))
            }
            Signatures::V2Only2026_2 => {
                Some(json!({"code": "DEVICE_AUTH_INVALID", "reason": "device-signature"}))
            }
            Signatures::V2Only2026_1 => None,
        };
        refuse("INVALID_REQUEST", "device signature invalid", details, 1008)
    }
}

/// Verifies the device proof for a socket whose challenge was `nonce` at `now_ms`.
pub fn verify_device(
    c: &Connect,
    d: &DeviceClaim,
    nonce: &str,
    now_ms: u64,
    forms: Signatures,
) -> Result<(), Refusal> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(d.public_key.trim_end_matches('='))
        .ok()
        .filter(|k| k.len() == 32);
    let Some(raw) = raw else {
        return Err(refuse(
            "INVALID_REQUEST",
            "device public key invalid",
            Some(json!({"code": "DEVICE_AUTH_PUBLIC_KEY_INVALID", "reason": "device-public-key"})),
            1008,
        ));
    };
    let expected_id: String = Sha256::digest(&raw)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if expected_id != d.id {
        return Err(refuse(
            "INVALID_REQUEST",
            "device identity mismatch",
            Some(json!({"code": "DEVICE_AUTH_DEVICE_ID_MISMATCH", "reason": "device-id-mismatch"})),
            1008,
        ));
    }
    if now_ms.abs_diff(d.signed_at) > 120_000 {
        return Err(refuse(
            "INVALID_REQUEST",
            "device signature expired",
            Some(
                json!({"code": "DEVICE_AUTH_SIGNATURE_EXPIRED", "reason": "device-signature-stale"}),
            ),
            1008,
        ));
    }
    if d.nonce.is_empty() {
        return Err(refuse(
            "INVALID_REQUEST",
            "device nonce required",
            Some(json!({"code": "DEVICE_AUTH_NONCE_REQUIRED"})),
            1008,
        ));
    }
    if d.nonce != nonce {
        return Err(refuse(
            "INVALID_REQUEST",
            "device nonce mismatch",
            Some(json!({"code": "DEVICE_AUTH_NONCE_MISMATCH", "reason": "device-nonce-mismatch"})),
            1008,
        ));
    }
    let invalid = || forms.refusal();
    let key_bytes: [u8; 32] = raw.as_slice().try_into().map_err(|_| invalid())?;
    let key = VerifyingKey::from_bytes(&key_bytes).map_err(|_| invalid())?;
    let sig_bytes: [u8; 64] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(d.signature.trim_end_matches('='))
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or_else(invalid)?;
    let signature = Signature::from_bytes(&sig_bytes);
    // The signed token: auth.token, else auth.deviceToken, else empty.
    let token = c
        .token
        .as_deref()
        .or(c.device_token.as_deref())
        .unwrap_or("");
    let common = [
        d.id.as_str(),
        c.client_id.as_str(),
        c.client_mode.as_str(),
        c.role.as_str(),
        &c.scopes.join(","),
        &d.signed_at.to_string(),
        token,
        d.nonce.as_str(),
    ]
    .join("|");
    let v3 = format!(
        "v3|{common}|{}|{}",
        canonical(&c.platform),
        canonical(c.device_family.as_deref().unwrap_or(""))
    );
    let v2 = format!("v2|{common}");
    let ok = (forms.v3() && key.verify(v3.as_bytes(), &signature).is_ok())
        || key.verify(v2.as_bytes(), &signature).is_ok();
    if ok { Ok(()) } else { Err(invalid()) }
}

#[cfg(test)]
mod tests;
