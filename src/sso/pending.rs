//! A sign-in in progress, kept by the browser that started it: the cookie `gs_sso` holds the
//! `state`, the `nonce` and the PKCE verifier the callback needs, under a MAC keyed from the
//! master key. Nothing is kept on the server, so the callback may reach any instance of a
//! cluster; the cookie lives ten minutes, for `/console/sso` only, and is cleared by the
//! callback whatever it decides.
//!
//! The cookie is `SameSite=Lax`: the provider's redirect back is a cross-site top-level GET,
//! which `Strict` would strip it from. It carries no authority of its own — a code from the
//! provider is needed too, and the provider takes each code once.

use subtle::ConstantTimeEq;

use crate::secrets::hmac_sha256;

/// The cookie's name.
pub const COOKIE: &str = "gs_sso";
/// Where the browser sends it.
pub const PATH: &str = "/console/sso";
/// How long a sign-in may take at the provider.
pub const LIFETIME_S: i64 = 600;

/// What the callback needs of the sign-in that the browser started.
#[derive(Debug, PartialEq, Eq)]
pub struct Pending {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

pub struct PendingSigner {
    key: [u8; 32],
}

impl PendingSigner {
    pub fn new(derived: &[u8]) -> Self {
        PendingSigner {
            key: hmac_sha256(derived, &[b"gateway-supervisor sso pending v1"]),
        }
    }

    fn mac(&self, body: &str) -> [u8; 32] {
        hmac_sha256(&self.key, &[body.as_bytes()])
    }

    /// `p1.<expires>.<state>.<nonce>.<verifier>.<MAC>`: the three are base64url from the
    /// OpenID library's random generators, so no `.` is among them.
    pub fn issue(&self, p: &Pending, now: i64) -> String {
        let body = format!(
            "p1.{}.{}.{}.{}",
            now + LIFETIME_S,
            p.state,
            p.nonce,
            p.verifier
        );
        let mac = hex::encode(self.mac(&body));
        format!("{body}.{mac}")
    }

    /// The sign-in a cookie holds, if this daemon's cluster issued it and it has not expired.
    pub fn verify(&self, value: &str, now: i64) -> Option<Pending> {
        let (body, mac) = value.rsplit_once('.')?;
        let mac: [u8; 32] = hex::decode(mac).ok()?.try_into().ok()?;
        if !bool::from(self.mac(body).ct_eq(&mac)) {
            return None;
        }
        let mut parts = body.split('.');
        let (Some("p1"), Some(expires), Some(state), Some(nonce), Some(verifier), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let expires: i64 = expires.parse().ok()?;
        (now < expires && expires - now <= LIFETIME_S).then(|| Pending {
            state: state.to_owned(),
            nonce: nonce.to_owned(),
            verifier: verifier.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn pending() -> Pending {
        Pending {
            state: "c3RhdGU".into(),
            nonce: "bm9uY2U".into(),
            verifier: "dmVyaWZpZXI-_x".into(),
        }
    }

    #[test]
    fn a_sign_in_reads_back_until_it_expires_and_only_as_issued() {
        let s = PendingSigner::new(&[1; 32]);
        let cookie = s.issue(&pending(), NOW);
        assert_eq!(s.verify(&cookie, NOW + 1), Some(pending()));
        assert_eq!(s.verify(&cookie, NOW + LIFETIME_S), None, "expired");
        let other_state = cookie.replace("c3RhdGU", "b3RoZXI");
        assert_eq!(s.verify(&other_state, NOW), None);
        assert_eq!(PendingSigner::new(&[2; 32]).verify(&cookie, NOW), None);
        for bad in ["", "p1", "p1.1.a.b.c.zz", &cookie[..cookie.len() - 2]] {
            assert_eq!(s.verify(bad, NOW), None, "{bad}");
        }
    }
}
