//! The web console's session: an API key, presented once at login, becomes a cookie the
//! browser sends instead (pages cannot set headers on event streams or links).
//!
//! The cookie is `v2.<key id>.<expires, unix s>.<nonce>.<MAC>`: HMAC-SHA256 under a key derived
//! from the master key (so every instance of a cluster accepts what another issued, and nothing
//! is kept per session), over the version, the key id, the expiry, the nonce and the key's own
//! hash. The nonce (8 random bytes) makes every login its own session: without it two logins of
//! one key in the same second were one cookie, and a logout of the first refused the second (a
//! user who logs out and straight back in; the browser tests in CI, 2026-11-30). Cookies of the
//! previous shape, `v1.<key id>.<expires>.<MAC>`, are still accepted until they expire. A cookie
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

    /// The MAC of a key's cookie: over its text up to and with the dot before the MAC, then the
    /// key's hash.
    fn mac(&self, signed: &str, key_hash: &[u8; 32]) -> [u8; 32] {
        hmac_sha256(&self.key, &[signed.as_bytes(), key_hash])
    }

    /// The cookie value for key `key_id` (whose stored hash is `key_hash`), issued at `now`.
    pub fn issue(&self, key_id: i64, key_hash: &[u8; 32], now: i64) -> String {
        let expires = now + LIFETIME.as_secs() as i64;
        let signed = format!("v2.{key_id}.{expires}.{}.", nonce());
        let mac = self.mac(&signed, key_hash);
        format!("{signed}{}", hex::encode(mac))
    }

    /// The key id a cookie stands for, checked at `now`; `hash_of` finds an active key's hash
    /// by id (`None`: no such active key).
    pub fn verify(
        &self,
        value: &str,
        now: i64,
        hash_of: impl FnOnce(i64) -> Option<[u8; 32]>,
    ) -> Result<i64, SessionError> {
        let Parsed {
            id,
            expires,
            mac,
            signed,
        } = Parsed::of(value).ok_or(SessionError::Malformed)?;
        if now >= expires {
            return Err(SessionError::Expired);
        }
        // An expiry further out than a session lasts was not issued by this code.
        if expires - now > LIFETIME.as_secs() as i64 {
            return Err(SessionError::Invalid);
        }
        let hash = hash_of(id).ok_or(SessionError::Invalid)?;
        if bool::from(self.mac(signed, &hash).ct_eq(&mac)) {
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
    /// The cookie value for a single sign-on user, issued at `now`:
    /// `s2.<expires>.<nonce>.<subject>.<name>.<group>.<MAC>`, the three texts base64url, the
    /// MAC over all before it (`s1.` cookies, without the nonce, are still accepted).
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
        let signed = format!("s2.{expires}.{}.{parts}", nonce());
        let mac = hmac_sha256(&self.key, &[signed.as_bytes()]);
        format!("{signed}.{}", hex::encode(mac))
    }

    /// The user a single sign-on cookie stands for, checked at `now`.
    pub fn verify_sso(&self, value: &str, now: i64) -> Result<SsoUser, SessionError> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (signed, mac) = value.rsplit_once('.').ok_or(SessionError::Malformed)?;
        let (version, rest) = signed.split_once('.').ok_or(SessionError::Malformed)?;
        let (expires, rest) = rest.split_once('.').ok_or(SessionError::Malformed)?;
        let expires: i64 = expires.parse().map_err(|_| SessionError::Malformed)?;
        let parts = match version {
            "s1" => rest,
            "s2" => match rest.split_once('.') {
                Some((nonce, parts)) if is_nonce(nonce) => parts,
                _ => return Err(SessionError::Malformed),
            },
            _ => return Err(SessionError::Malformed),
        };
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
            || !bool::from(hmac_sha256(&self.key, &[signed.as_bytes()]).ct_eq(&mac))
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
    value.starts_with("s2.") || value.starts_with("s1.")
}

/// A session's own part: 8 random bytes as hex. It only has to differ from one login to the
/// next (the MAC makes the cookie unforgeable), so should the system's random source fail, the
/// clock's nanoseconds and a count stand in.
fn nonce() -> String {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    crate::secrets::random_hex::<8>().unwrap_or_else(|_| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let count = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{:016x}", nanos ^ count.rotate_left(48))
    })
}

fn is_nonce(text: &str) -> bool {
    text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What a logout keeps of a cookie: its MAC (it names the session; alone it authenticates
/// nothing) and when the cookie expires (nothing needs keeping after). `None` for a value that
/// is not a cookie's shape.
pub fn ended_session(value: &str) -> Option<(String, i64)> {
    if is_sso(value) {
        let (signed, mac) = value.rsplit_once('.')?;
        let expires = signed.split('.').nth(1)?;
        let mac: [u8; 32] = hex::decode(mac).ok()?.try_into().ok()?;
        return Some((hex::encode(mac), expires.parse().ok()?));
    }
    Parsed::of(value).map(|p| (hex::encode(p.mac), p.expires))
}

/// A key cookie's parts, if it has a cookie's shape: `v2.<id>.<expires>.<nonce>.<hex MAC>`, or
/// the older `v1.<id>.<expires>.<hex MAC>`.
struct Parsed<'a> {
    id: i64,
    expires: i64,
    mac: [u8; 32],
    /// What the MAC is over: the text before it, with the dot.
    signed: &'a str,
}

impl Parsed<'_> {
    fn of(value: &str) -> Option<Parsed<'_>> {
        let (head, mac) = value.rsplit_once('.')?;
        let signed = &value[..=head.len()];
        let mut parts = head.split('.');
        let (version, id, expires) = (parts.next()?, parts.next()?, parts.next()?);
        match (version, parts.next(), parts.next()) {
            ("v1", None, _) => {}
            ("v2", Some(nonce), None) if is_nonce(nonce) => {}
            _ => return None,
        }
        Some(Parsed {
            id: id.parse().ok()?,
            expires: expires.parse().ok()?,
            mac: hex::decode(mac).ok()?.try_into().ok()?,
            signed,
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
        let other_id = cookie.replacen("v2.42.", "v2.43.", 1);
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
            "v2.42.1.0123456789abcdeg.00",
            "v2.42.1.0123456789abcdef.00.extra",
            "v3.42.1.0123456789abcdef.00",
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

    /// A user who logs out and straight back in, in the same second, holds a new session: the
    /// logout ends the first cookie (by its MAC), and the second is another.
    #[test]
    fn every_login_is_its_own_session_even_within_a_second() {
        let s = signer();
        let (a, b) = (s.issue(42, &HASH, NOW), s.issue(42, &HASH, NOW));
        assert_ne!(a, b);
        assert_ne!(ended_session(&a), ended_session(&b));
        for cookie in [&a, &b] {
            assert_eq!(s.verify(cookie, NOW, |_| Some(HASH)), Ok(42));
        }
        let user = SsoUser {
            subject: "1".into(),
            name: "ana".into(),
            group: "ops".into(),
        };
        let (a, b) = (s.issue_sso(&user, NOW), s.issue_sso(&user, NOW));
        assert_ne!(ended_session(&a), ended_session(&b));
        assert_eq!(s.verify_sso(&b, NOW), Ok(user));
    }

    /// Cookies issued before the nonce (an instance of the previous version, a session opened
    /// before the upgrade) stand until they expire.
    #[test]
    fn cookies_of_the_previous_shape_are_still_accepted() {
        let s = signer();
        let expires = NOW + 60;
        let signed = format!("v1.42.{expires}.");
        let v1 = format!("{signed}{}", hex::encode(s.mac(&signed, &HASH)));
        assert_eq!(s.verify(&v1, NOW, |_| Some(HASH)), Ok(42));
        assert_eq!(ended_session(&v1).map(|(_, e)| e), Some(expires));
        let user = SsoUser {
            subject: "1".into(),
            name: "ana".into(),
            group: "ops".into(),
        };
        let signed = format!("s1.{expires}.MQ.YW5h.b3Bz");
        let s1 = format!(
            "{signed}.{}",
            hex::encode(hmac_sha256(&s.key, &[signed.as_bytes()]))
        );
        assert!(is_sso(&s1));
        assert_eq!(s.verify_sso(&s1, NOW), Ok(user));
        assert_eq!(ended_session(&s1).map(|(_, e)| e), Some(expires));
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
