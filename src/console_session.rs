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

use subtle::ConstantTimeEq;

use crate::secrets::hmac_sha256;

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
        SessionSigner {
            key: hmac_sha256(derived, &[b"gateway-supervisor console session v1"]),
        }
    }

    fn mac(&self, key_id: i64, expires: i64, key_hash: &[u8; 32]) -> [u8; 32] {
        let head = format!("v1.{key_id}.{expires}.");
        hmac_sha256(&self.key, &[head.as_bytes(), key_hash])
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

/// Who a single sign-on session stands for (docs/design.md, *Single sign-on*): the user as the
/// provider names them, and the `[[sso.groups]]` entry that admitted them — read again from the
/// configuration at every request, so a mapping changed or removed applies to sessions already
/// open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoUser {
    /// The provider's `sub` (with its issuer, unique and stable).
    pub subject: String,
    /// What the console shows: the e-mail or name the provider gave, else the subject.
    pub name: String,
    /// The group whose mapping admitted them.
    pub group: String,
}

impl SessionSigner {
    fn sso_mac(&self, expires: i64, parts: &str) -> [u8; 32] {
        hmac_sha256(&self.key, &[format!("s1.{expires}.{parts}").as_bytes()])
    }

    /// The cookie value for a single sign-on user, issued at `now`:
    /// `s1.<expires>.<subject>.<name>.<group>.<MAC>`, the three texts base64url.
    pub fn issue_sso(&self, user: &SsoUser, now: i64) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let expires = now + LIFETIME.as_secs() as i64;
        let parts = format!(
            "{}.{}.{}",
            b64.encode(&user.subject),
            b64.encode(&user.name),
            b64.encode(&user.group)
        );
        let mac = self.sso_mac(expires, &parts);
        format!("s1.{expires}.{parts}.{}", hex::encode(mac))
    }

    /// The user a single sign-on cookie stands for, checked at `now`.
    pub fn verify_sso(&self, value: &str, now: i64) -> Result<SsoUser, SessionError> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let rest = value.strip_prefix("s1.").ok_or(SessionError::Malformed)?;
        let (expires, rest) = rest.split_once('.').ok_or(SessionError::Malformed)?;
        let expires: i64 = expires.parse().map_err(|_| SessionError::Malformed)?;
        let (parts, mac) = rest.rsplit_once('.').ok_or(SessionError::Malformed)?;
        let mac: [u8; 32] = hex::decode(mac)
            .ok()
            .and_then(|m| m.try_into().ok())
            .ok_or(SessionError::Malformed)?;
        let text = |p: Option<&str>| {
            p.and_then(|p| b64.decode(p).ok())
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or(SessionError::Malformed)
        };
        let mut split = parts.split('.');
        let (subject, name, group) = (
            text(split.next())?,
            text(split.next())?,
            text(split.next())?,
        );
        if split.next().is_some() {
            return Err(SessionError::Malformed);
        }
        if now >= expires {
            return Err(SessionError::Expired);
        }
        if expires - now > LIFETIME.as_secs() as i64
            || !bool::from(self.sso_mac(expires, parts).ct_eq(&mac))
        {
            return Err(SessionError::Invalid);
        }
        Ok(SsoUser {
            subject,
            name,
            group,
        })
    }
}

/// Whether a cookie value is a single sign-on session's (else an API key's).
pub fn is_sso(value: &str) -> bool {
    value.starts_with("s1.")
}

/// What a logout keeps of a cookie: its MAC (it names the session; alone it authenticates
/// nothing) and when the cookie expires (nothing needs keeping after). `None` for a value that
/// is not a cookie's shape.
pub fn ended_session(value: &str) -> Option<(String, i64)> {
    if let Some(rest) = value.strip_prefix("s1.") {
        let (expires, rest) = rest.split_once('.')?;
        let mac = rest.rsplit_once('.')?.1;
        let mac: [u8; 32] = hex::decode(mac).ok()?.try_into().ok()?;
        return Some((hex::encode(mac), expires.parse().ok()?));
    }
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
    fn a_single_sign_on_cookie_stands_for_its_user_and_group_only() {
        let s = signer();
        let user = SsoUser {
            subject: "248289761001".into(),
            name: "ana@team-a.example".into(),
            group: "team-a-operators".into(),
        };
        let cookie = s.issue_sso(&user, NOW);
        assert!(is_sso(&cookie) && !is_sso(&s.issue(42, &HASH, NOW)));
        assert_eq!(s.verify_sso(&cookie, NOW + 60), Ok(user.clone()));
        let later = NOW + LIFETIME.as_secs() as i64;
        assert_eq!(s.verify_sso(&cookie, later), Err(SessionError::Expired));
        // Another group, another subject, a longer life, another master: refused.
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let admins = cookie.replace(
            &b64.encode("team-a-operators"),
            &b64.encode("platform-admins"),
        );
        assert_eq!(s.verify_sso(&admins, NOW), Err(SessionError::Invalid));
        let other = cookie.replace(&b64.encode("248289761001"), &b64.encode("1"));
        assert_eq!(s.verify_sso(&other, NOW), Err(SessionError::Invalid));
        let exp = (NOW + LIFETIME.as_secs() as i64).to_string();
        let extended = cookie.replacen(&exp, &(NOW + 2 * LIFETIME.as_secs() as i64).to_string(), 1);
        assert_eq!(s.verify_sso(&extended, NOW), Err(SessionError::Invalid));
        assert_eq!(
            SessionSigner::new(&[2; 32]).verify_sso(&cookie, NOW),
            Err(SessionError::Invalid)
        );
        for bad in [
            "s1.",
            "s1.5.a.b.c",
            "s1.x.YQ.YQ.YQ.00",
            "s1.1.YQ.YQ.YQ.YQ.00",
        ] {
            assert_eq!(
                s.verify_sso(bad, NOW),
                Err(SessionError::Malformed),
                "{bad}"
            );
        }
        // A key's session check refuses it, and a logout keeps its MAC.
        assert_eq!(
            s.verify(&cookie, NOW, |_| Some(HASH)),
            Err(SessionError::Malformed)
        );
        let (mac, expires) = ended_session(&cookie).unwrap();
        assert_eq!(cookie.rsplit('.').next(), Some(mac.as_str()));
        assert_eq!(expires, NOW + LIFETIME.as_secs() as i64);
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
