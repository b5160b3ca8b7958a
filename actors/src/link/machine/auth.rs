//! How the link proves itself: which credential and which signature its `connect` carries,
//! the device token the gateway hands out, and the recovery steps a refusal recommends (the
//! v2 signature once, the device token alone, or dropping it to re-pair), at most
//! [`RECOVERIES`] between two good handshakes. docs/design.md, *The link state machine*.

use secrecy::{ExposeSecret, SecretString};

use crate::bounded;
use crate::handshake::{AuthChoice, ConnectPlan};
use crate::protocol::APPROVALS_CAP;
use crate::protocol::device::SignatureVersion;
use crate::protocol::errors::{Disposition, LinkFailure, Recovery};
use crate::protocol::frames::Challenge;

/// Recommended recovery steps (device token, re-pair) allowed between two good handshakes.
const RECOVERIES: u8 = 2;

/// A recovery step taken after a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// The next `connect` signs the v2 form (a release before 2026.2.26 verifies only v2).
    SignV2,
    /// The gateway recommended this; `forget_token`: the stored device token is dropped.
    Recover { forget_token: bool },
}

#[derive(Debug)]
pub(super) struct Auth {
    device_token: Option<SecretString>,
    choice: AuthChoice,
    signature: SignatureVersion,
    v2_fallback_used: bool,
    recoveries_left: u8,
    /// The id of this connection's `connect` request.
    request_id: Option<String>,
}

impl Auth {
    /// `prove_shared_token`: an admin just changed the shared token, so the first handshake
    /// proves it (rather than riding on a cached device token).
    pub(super) fn new(device_token: Option<SecretString>, prove_shared_token: bool) -> Self {
        Auth {
            device_token,
            choice: if prove_shared_token {
                AuthChoice::SharedTokenFirst
            } else {
                AuthChoice::Preferred
            },
            signature: SignatureVersion::V3,
            v2_fallback_used: false,
            recoveries_left: RECOVERIES,
            request_id: None,
        }
    }

    pub(super) fn device_token(&self) -> Option<&SecretString> {
        self.device_token.as_ref()
    }

    /// How to answer the challenge of connection `generation`.
    pub(super) fn plan(
        &mut self,
        challenge: Challenge,
        generation: u64,
        approvals: bool,
    ) -> ConnectPlan {
        let request_id = format!("connect-{generation}");
        self.request_id = Some(request_id.clone());
        ConnectPlan {
            request_id,
            challenge,
            auth: self.choice,
            signature: self.signature,
            caps: if approvals {
                vec![APPROVALS_CAP]
            } else {
                Vec::new()
            },
        }
    }

    pub(super) fn is_connect_response(&self, id: &str) -> bool {
        self.request_id.as_deref() == Some(id)
    }

    /// A good handshake: the recovery steps are allowed again, and from now on the cached
    /// device token (which outlives a shared-token rotation) is preferred. Returns the device
    /// token to store when the `hello-ok` handed out a new one.
    pub(super) fn accepted(&mut self, token: Option<&str>) -> Option<SecretString> {
        self.recoveries_left = RECOVERIES;
        self.choice = AuthChoice::Preferred;
        let token = token.filter(|t| bounded::identifier(t).is_some())?;
        let changed = self
            .device_token
            .as_ref()
            .is_none_or(|old| old.expose_secret() != token);
        changed.then(|| {
            let token = SecretString::from(token.to_owned());
            self.device_token = Some(token.clone());
            token
        })
    }

    /// The step a refusal recommends, if one is left to take.
    pub(super) fn recover(&mut self, failure: &LinkFailure) -> Option<Step> {
        if failure.recovery == Recovery::SignWithV2 && !self.v2_fallback_used {
            self.v2_fallback_used = true;
            self.signature = SignatureVersion::V2;
            return Some(Step::SignV2);
        }
        if failure.disposition != Disposition::Halt || self.recoveries_left == 0 {
            return None;
        }
        let step = match failure.recovery {
            Recovery::RetryWithDeviceToken if self.device_token.is_some() => {
                self.choice = AuthChoice::DeviceTokenOnly;
                Step::Recover {
                    forget_token: false,
                }
            }
            Recovery::DropDeviceToken if self.device_token.is_some() => {
                self.device_token = None;
                self.choice = AuthChoice::SharedTokenFirst;
                Step::Recover { forget_token: true }
            }
            _ => return None,
        };
        self.recoveries_left -= 1;
        Some(step)
    }

    /// The connection is going: its `connect` request with it.
    pub(super) fn forget(&mut self) {
        self.request_id = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::captures::captured_failure;

    fn challenge() -> Challenge {
        serde_json::from_value(serde_json::json!({"nonce": "n", "ts": 1})).unwrap()
    }

    #[test]
    fn a_new_device_token_is_kept_once_and_the_same_one_is_not_stored_again() {
        let mut auth = Auth::new(None, false);
        let stored = auth.accepted(Some("tok-1")).expect("new");
        assert_eq!(stored.expose_secret(), "tok-1");
        assert!(auth.accepted(Some("tok-1")).is_none());
        assert!(auth.accepted(Some("not an identifier\n")).is_none());
        assert_eq!(auth.device_token().unwrap().expose_secret(), "tok-1");
    }

    #[test]
    fn a_proved_shared_token_gives_way_to_the_device_token_after_a_good_handshake() {
        let mut auth = Auth::new(Some(SecretString::from("d".to_owned())), true);
        assert_eq!(
            auth.plan(challenge(), 1, false).auth,
            AuthChoice::SharedTokenFirst
        );
        auth.accepted(None);
        let plan = auth.plan(challenge(), 2, true);
        assert_eq!(plan.auth, AuthChoice::Preferred);
        assert_eq!(plan.request_id, "connect-2");
        assert_eq!(plan.caps, [APPROVALS_CAP]);
        assert!(auth.is_connect_response("connect-2"));
        auth.forget();
        assert!(!auth.is_connect_response("connect-2"));
    }

    #[test]
    fn a_refused_v3_signature_falls_back_to_v2_once() {
        let mut auth = Auth::new(None, false);
        let refused = captured_failure("bad_signature.json", &["connectResponse"]);
        assert_eq!(auth.recover(&refused), Some(Step::SignV2));
        assert_eq!(
            auth.plan(challenge(), 1, false).signature,
            SignatureVersion::V2
        );
        assert_eq!(auth.recover(&refused), None);
    }

    #[test]
    fn a_refused_device_token_is_dropped_to_pair_again() {
        let mut auth = Auth::new(Some(SecretString::from("d".to_owned())), false);
        let refused = captured_failure(
            "device_token_reconnect.json",
            &["withBogusDeviceToken", "connectResponse"],
        );
        assert_eq!(
            auth.recover(&refused),
            Some(Step::Recover { forget_token: true })
        );
        assert!(auth.device_token().is_none());
        assert_eq!(
            auth.plan(challenge(), 1, false).auth,
            AuthChoice::SharedTokenFirst
        );
        assert_eq!(auth.recover(&refused), None, "no token left to drop");
    }

    #[test]
    fn recovery_steps_run_out_until_a_handshake_succeeds() {
        let mut auth = Auth::new(Some(SecretString::from("d".to_owned())), false);
        let mismatch = captured_failure("wrong_token.json", &["connectResponse"]);
        assert_eq!(
            auth.recover(&mismatch),
            Some(Step::Recover {
                forget_token: false
            })
        );
        assert!(auth.recover(&mismatch).is_some());
        assert_eq!(auth.recover(&mismatch), None, "two between good handshakes");
        auth.accepted(None);
        assert!(auth.recover(&mismatch).is_some());
    }
}
