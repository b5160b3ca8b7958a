//! Building the `connect` request from the challenge, the credentials and the device identity.
//! Pure: the gateway actor decides which credentials to offer, this builds and signs them.

use secrecy::{ExposeSecret, SecretString};

use crate::protocol::device::{
    DeviceIdentity, SignatureInput, SignatureVersion, signature_payload,
};
use crate::protocol::errors::LinkFailure;
use crate::protocol::frames::{
    AuthParams, Challenge, ClientInfo, ConnectParams, DeviceProof, Frame,
};
use crate::protocol::{
    CLIENT_DISPLAY_NAME, CLIENT_ID, CLIENT_MODE, CLIENT_PLATFORM, MAX_PROTOCOL, MIN_PROTOCOL, ROLE,
    SCOPES,
};

/// Which credential the next connect offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthChoice {
    /// The cached device token when there is one (it survives a rotation of the shared
    /// token), else the shared token.
    Preferred,
    /// The shared token when there is one: used right after an admin changed it, to prove it.
    SharedTokenFirst,
    /// The cached device token alone (the gateway's `retry_with_device_token`).
    DeviceTokenOnly,
}

/// How to answer a challenge (the link machine decides it).
#[derive(Debug, Clone)]
pub struct ConnectPlan {
    pub request_id: String,
    pub challenge: Challenge,
    pub auth: AuthChoice,
    pub signature: SignatureVersion,
    /// What the client asks to be (`caps`; not covered by the signature).
    pub caps: Vec<&'static str>,
}

impl ConnectPlan {
    /// The `connect` request frame, signed, as text.
    pub fn request(
        &self,
        identity: &DeviceIdentity,
        creds: &Credentials<'_>,
        client_version: &str,
    ) -> Result<String, LinkFailure> {
        let params = connect_params(
            identity,
            creds,
            self.auth,
            &self.challenge,
            self.signature,
            client_version,
            &self.caps,
        );
        let params = serde_json::to_value(&params)
            .map_err(|e| LinkFailure::protocol(format!("cannot encode connect: {e}")))?;
        serde_json::to_string(&Frame::request(
            self.request_id.clone(),
            "connect",
            Some(params),
        ))
        .map_err(|e| LinkFailure::protocol(format!("cannot encode connect: {e}")))
    }
}

pub struct Credentials<'a> {
    pub token: Option<&'a SecretString>,
    pub device_token: Option<&'a SecretString>,
    /// Who dials, in a cluster (`instance:epoch`, sent as `client.instanceId`).
    pub dialer: Option<&'a str>,
}

pub fn connect_params(
    identity: &DeviceIdentity,
    creds: &Credentials<'_>,
    choice: AuthChoice,
    challenge: &Challenge,
    version: SignatureVersion,
    client_version: &str,
    caps: &[&'static str],
) -> ConnectParams {
    let (token, device_token) = match (choice, creds.token, creds.device_token) {
        (AuthChoice::DeviceTokenOnly, _, device) => (None, device),
        (AuthChoice::Preferred, _, Some(device)) => (None, Some(device)),
        (AuthChoice::Preferred | AuthChoice::SharedTokenFirst, Some(shared), _) => {
            (Some(shared), None)
        }
        (_, None, device) => (None, device),
    };
    let token = token.map(|t| t.expose_secret().to_owned());
    let device_token = device_token.map(|t| t.expose_secret().to_owned());
    // The signature covers auth.token, else auth.deviceToken, else nothing.
    let signed_token = token.as_deref().or(device_token.as_deref()).unwrap_or("");
    let device_id = identity.device_id();
    // signedAt is the challenge's timestamp: the gateway checks it against its own clock
    // (±120 s), so a skewed local clock cannot break the handshake.
    let payload = signature_payload(
        version,
        &SignatureInput {
            device_id: &device_id,
            client_id: CLIENT_ID,
            client_mode: CLIENT_MODE,
            role: ROLE,
            scopes: &SCOPES,
            signed_at_ms: challenge.ts,
            token: signed_token,
            nonce: &challenge.nonce,
            platform: CLIENT_PLATFORM,
            device_family: None,
        },
    );
    ConnectParams {
        min_protocol: MIN_PROTOCOL,
        max_protocol: MAX_PROTOCOL,
        client: ClientInfo {
            id: CLIENT_ID,
            mode: CLIENT_MODE,
            version: client_version.to_owned(),
            platform: CLIENT_PLATFORM,
            display_name: CLIENT_DISPLAY_NAME,
            instance_id: creds.dialer.map(str::to_owned),
        },
        role: ROLE,
        scopes: SCOPES.to_vec(),
        caps: caps.to_vec(),
        auth: AuthParams {
            token,
            device_token,
        },
        device: Some(DeviceProof {
            id: device_id,
            public_key: identity.public_key_base64url(),
            signature: identity.sign(&payload),
            signed_at: challenge.ts,
            nonce: challenge.nonce.clone(),
        }),
        user_agent: format!("gateway-supervisor/{client_version}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};

    fn challenge() -> Challenge {
        Challenge {
            nonce: "n-1".into(),
            ts: 1_795_238_987_694,
        }
    }

    fn verify(identity: &DeviceIdentity, params: &ConnectParams, token: &str) {
        let device = params.device.as_ref().unwrap();
        let payload = format!(
            "v3|{}|gateway-client|backend|operator|{}|{}|{token}|n-1|linux|",
            device.id,
            SCOPES.join(","),
            device.signed_at
        );
        let key = VerifyingKey::from_bytes(
            &B64URL
                .decode(&device.public_key)
                .unwrap()
                .try_into()
                .unwrap(),
        )
        .unwrap();
        let sig = Signature::from_bytes(
            &B64URL
                .decode(&device.signature)
                .unwrap()
                .try_into()
                .unwrap(),
        );
        key.verify(payload.as_bytes(), &sig)
            .expect("signature verifies");
        assert_eq!(device.id, identity.device_id());
    }

    /// A v3 connect for `id` with these credentials and this auth choice.
    fn v3_params(
        id: &DeviceIdentity,
        token: Option<&str>,
        device_token: Option<&str>,
        choice: AuthChoice,
    ) -> ConnectParams {
        let token = token.map(SecretString::from);
        let device_token = device_token.map(SecretString::from);
        let creds = Credentials {
            token: token.as_ref(),
            device_token: device_token.as_ref(),
            dialer: None,
        };
        connect_params(
            id,
            &creds,
            choice,
            &challenge(),
            SignatureVersion::V3,
            "0.1.0",
            &[],
        )
    }

    fn auth(p: &ConnectParams) -> (Option<&str>, Option<&str>) {
        (p.auth.token.as_deref(), p.auth.device_token.as_deref())
    }

    #[test]
    fn shared_token_first_after_a_change_and_signed() {
        let id = DeviceIdentity::from_seed([7; 32]);
        let p = v3_params(
            &id,
            Some("shared"),
            Some("dev"),
            AuthChoice::SharedTokenFirst,
        );
        assert_eq!(p.auth.token.as_deref(), Some("shared"));
        assert_eq!(p.auth.device_token, None);
        assert_eq!((p.min_protocol, p.max_protocol), (3, 4));
        verify(&id, &p, "shared");
    }

    #[test]
    fn cached_device_token_preferred_then_shared_token() {
        let id = DeviceIdentity::from_seed([7; 32]);
        let p = v3_params(&id, Some("shared"), Some("dev"), AuthChoice::Preferred);
        assert_eq!(auth(&p), (None, Some("dev")));
        verify(&id, &p, "dev");
        let p = v3_params(&id, Some("shared"), None, AuthChoice::Preferred);
        assert_eq!(auth(&p), (Some("shared"), None));
    }

    #[test]
    fn device_token_when_asked_or_when_no_shared_token() {
        let id = DeviceIdentity::from_seed([7; 32]);
        let p = v3_params(
            &id,
            Some("shared"),
            Some("dev"),
            AuthChoice::DeviceTokenOnly,
        );
        assert_eq!(auth(&p), (None, Some("dev")));
        verify(&id, &p, "dev");
        let p = v3_params(&id, None, Some("dev"), AuthChoice::Preferred);
        assert_eq!(p.auth.device_token.as_deref(), Some("dev"));
        let p = v3_params(&id, None, None, AuthChoice::Preferred);
        assert_eq!(auth(&p), (None, None));
        verify(&id, &p, "");
    }
}
