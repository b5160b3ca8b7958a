//! The web console's session: an API key, presented once at login, becomes a cookie the
//! browser sends instead (pages cannot set headers on event streams or links).
//!
//! The cookie is `v1.<key id>.<expires, unix s>.<MAC>`: HMAC-SHA256 under a key derived from the
//! master key (so every instance of a cluster accepts what another issued, and nothing is kept
//! per session), over the version, the key id, the expiry and the key's own hash — a cookie
//! stands for that key only, and dies with it: each request finds the key among the active
//! ones, so revoking the key ends its sessions within `auth.key_refresh_interval`. Lifetime is
//! bounded ([`LIFETIME`]); the browser is told to forget it then too.
//!
//! Logout ends a session on the server as well: the cookie's MAC is kept as ended until the
//! cookie would have expired anyway (`console_logouts`, read with the keys, so every instance
//! of a cluster refuses it within `auth.key_refresh_interval`, the one that logged it out at
//! once). A copied cookie does not outlive the logout that the operator saw.
//!
//! Over HTTPS the cookie is `__Host-gs_session`: the browser keeps it only if it is `Secure`,
//! for `/`, with no `Domain`, so a sibling subdomain can neither set nor shadow it. Over plain
//! HTTP browsers refuse that prefix, and it is `gs_session`.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The cookie's name over plain HTTP.
pub const COOKIE: &str = "gs_session";
/// The cookie's name over HTTPS.
pub const HOST_COOKIE: &str = "__Host-gs_session";
/// Where a request's session cookie is looked for, the stricter first.
pub const COOKIE_NAMES: [&str; 2] = [HOST_COOKIE, COOKIE];
/// How long a console session lasts after login.
pub const LIFETIME: Duration = Duration::from_secs(8 * 3600);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the console session cookie is malformed")]
    Malformed,
    #[error("the console session has expired; log in again")]
    Expired,
    #[error("the console session is not valid (its key was revoked, or it was not issued here)")]
    Invalid,
}

/// Issues and checks session cookies.
pub struct SessionSigner {
    key: [u8; 32],
}

impl SessionSigner {
    /// `derived` is the master key's derived secret (shared by a cluster's instances).
    pub fn new(derived: &[u8]) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(derived).expect("any key length");
        mac.update(b"gateway-supervisor console session v1");
        SessionSigner {
            key: mac.finalize().into_bytes().into(),
        }
    }

    fn mac(&self, key_id: i64, expires: i64, key_hash: &[u8; 32]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(format!("v1.{key_id}.{expires}.").as_bytes());
        mac.update(key_hash);
        mac.finalize().into_bytes().into()
    }

    /// The cookie value for key `key_id` (whose stored hash is `key_hash`), issued at `now`.
    pub fn issue(&self, key_id: i64, key_hash: &[u8; 32], now: i64) -> String {
        let expires = now + LIFETIME.as_secs() as i64;
        let mac = self.mac(key_id, expires, key_hash);
        format!("v1.{key_id}.{expires}.{}", hex::encode(mac))
    }

    /// The key id a cookie stands for, checked at `now`; `hash_of` finds an active key's hash
    /// by id (`None`: no such active key).
    pub fn verify(
        &self,
        value: &str,
        now: i64,
        hash_of: impl FnOnce(i64) -> Option<[u8; 32]>,
    ) -> Result<i64, SessionError> {
        let Parsed { id, expires, mac } = Parsed::of(value).ok_or(SessionError::Malformed)?;
        if now >= expires {
            return Err(SessionError::Expired);
        }
        // An expiry further out than a session lasts was not issued by this code.
        if expires - now > LIFETIME.as_secs() as i64 {
            return Err(SessionError::Invalid);
        }
        let hash = hash_of(id).ok_or(SessionError::Invalid)?;
        if bool::from(self.mac(id, expires, &hash).ct_eq(&mac)) {
            Ok(id)
        } else {
            Err(SessionError::Invalid)
        }
    }
}

/// What a logout keeps of a cookie: its MAC (it names the session; alone it authenticates
/// nothing) and when the cookie expires (nothing needs keeping after). `None` for a value that
/// is not a cookie's shape.
pub fn ended_session(value: &str) -> Option<(String, i64)> {
    Parsed::of(value).map(|p| (hex::encode(p.mac), p.expires))
}

/// A cookie value's parts, if it has a cookie's shape (`v1.<id>.<expires>.<hex MAC>`).
struct Parsed {
    id: i64,
    expires: i64,
    mac: [u8; 32],
}

impl Parsed {
    fn of(value: &str) -> Option<Parsed> {
        let mut parts = value.split('.');
        let (Some("v1"), Some(id), Some(expires), Some(mac), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        Some(Parsed {
            id: id.parse().ok()?,
            expires: expires.parse().ok()?,
            mac: hex::decode(mac).ok()?.try_into().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const HASH: [u8; 32] = [7; 32];

    fn signer() -> SessionSigner {
        SessionSigner::new(&[1; 32])
    }

    #[test]
    fn a_cookie_stands_for_its_key_until_it_expires() {
        let s = signer();
        let cookie = s.issue(42, &HASH, NOW);
        assert_eq!(
            s.verify(&cookie, NOW + 60, |id| (id == 42).then_some(HASH)),
            Ok(42)
        );
        let later = NOW + LIFETIME.as_secs() as i64;
        assert_eq!(
            s.verify(&cookie, later, |_| Some(HASH)),
            Err(SessionError::Expired)
        );
    }

    #[test]
    fn a_revoked_or_replaced_key_ends_its_sessions() {
        let s = signer();
        let cookie = s.issue(42, &HASH, NOW);
        assert_eq!(s.verify(&cookie, NOW, |_| None), Err(SessionError::Invalid));
        assert_eq!(
            s.verify(&cookie, NOW, |_| Some([8; 32])),
            Err(SessionError::Invalid)
        );
    }

    #[test]
    fn tampering_and_other_masters_are_refused() {
        let s = signer();
        let cookie = s.issue(42, &HASH, NOW);
        let other_id = cookie.replacen("v1.42.", "v1.43.", 1);
        assert_eq!(
            s.verify(&other_id, NOW, |_| Some(HASH)),
            Err(SessionError::Invalid)
        );
        let exp: i64 = cookie.split('.').nth(2).unwrap().parse().unwrap();
        let extended = cookie.replacen(&exp.to_string(), &(exp + 3600).to_string(), 1);
        assert_eq!(
            s.verify(&extended, NOW, |_| Some(HASH)),
            Err(SessionError::Invalid)
        );
        let elsewhere = SessionSigner::new(&[2; 32]);
        assert_eq!(
            elsewhere.verify(&cookie, NOW, |_| Some(HASH)),
            Err(SessionError::Invalid)
        );
        for bad in [
            "",
            "v1",
            "v2.42.1.00",
            "v1.x.1.00",
            "v1.42.1.zz",
            "v1.42.1.00.extra",
        ] {
            assert_eq!(
                s.verify(bad, NOW, |_| Some(HASH)),
                Err(SessionError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_logout_keeps_the_sessions_mac_until_it_expires() {
        let s = signer();
        let cookie = s.issue(42, &HASH, NOW);
        let (mac, expires) = ended_session(&cookie).unwrap();
        assert_eq!(expires, NOW + LIFETIME.as_secs() as i64);
        assert_eq!(cookie.rsplit('.').next(), Some(mac.as_str()));
        assert!(!mac.contains('.') && mac.len() == 64);
        for bad in ["", "v1.42.1.00", "v1.42.x.".repeat(2).as_str(), "v2.1.2.aa"] {
            assert_eq!(ended_session(bad), None, "{bad}");
        }
    }
}
