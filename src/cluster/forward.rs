//! Forwarding an action to the instance that links its gateway. Only the lease holder has the
//! gateway's socket, so an action that needs it (a spawn or session action on that gateway,
//! suspend, resume, restart) is relayed over HTTP to the holder's `advertise_url`, and the
//! caller gets the holder's answer.
//!
//! The hop carries the caller's own API key (the holder authenticates it again against the
//! shared key table: a key revoked anywhere stops everywhere) and an internal credential, an
//! HMAC under a key derived from the shared master key over (instance, method, path, time),
//! which marks it as a hop: a hop is never forwarded again (no loops), and is not rate-limited
//! twice. An instance without the master key cannot mint one.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The instance that forwarded the request.
pub const FORWARDED_BY: &str = "x-gs-forwarded-by";
/// Unix seconds when it was forwarded.
pub const FORWARD_TS: &str = "x-gs-forward-ts";
/// The credential: hex HMAC-SHA256.
pub const FORWARD_SIG: &str = "x-gs-forward-sig";
/// How far a hop's time may be from the receiver's (clocks differ a little; a captured hop is
/// useless after this).
const WINDOW_SECS: i64 = 60;

/// Put in a request's extensions when it arrived as a verified hop from another instance.
#[derive(Debug, Clone)]
pub struct Hop {
    pub from: String,
}

/// The key hops are signed with, derived from the master key (every instance has the same).
#[derive(Clone)]
pub struct ForwardKey(std::sync::Arc<[u8; 32]>);

impl std::fmt::Debug for ForwardKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForwardKey([redacted])")
    }
}

/// Why a request claiming to be a hop was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HopRefused {
    #[error("the forwarding credential is missing or malformed")]
    Malformed,
    #[error(
        "the forwarding credential is too old or from the future (clocks more than 60 s apart?)"
    )]
    Stale,
    #[error("the forwarding credential does not verify (another master key?)")]
    Invalid,
}

impl ForwardKey {
    pub fn derive(master_key: &[u8]) -> Self {
        ForwardKey(std::sync::Arc::new(crate::secrets::hmac_sha256(
            master_key,
            &[b"gateway-supervisor cluster forward v1"],
        )))
    }

    fn mac(&self, from: &str, method: &str, path: &str, ts: i64) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_ref())
            .expect("HMAC takes a key of any length");
        for part in [from, method, path, &ts.to_string()] {
            mac.update(part.as_bytes());
            mac.update(b"\n");
        }
        mac
    }

    /// The credential for a hop from `from` of `method path` at `ts`.
    pub fn sign(&self, from: &str, method: &str, path: &str, ts: i64) -> String {
        hex::encode(self.mac(from, method, path, ts).finalize().into_bytes())
    }

    /// Checks a hop's credential (constant time) and its age.
    pub fn verify(
        &self,
        from: &str,
        method: &str,
        path: &str,
        ts: &str,
        sig: &str,
        now: i64,
    ) -> Result<(), HopRefused> {
        let ts: i64 = ts.parse().map_err(|_| HopRefused::Malformed)?;
        let sig = hex::decode(sig).map_err(|_| HopRefused::Malformed)?;
        if (now - ts).abs() > WINDOW_SECS {
            return Err(HopRefused::Stale);
        }
        self.mac(from, method, path, ts)
            .verify_slice(&sig)
            .map_err(|_| HopRefused::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hop_verifies_only_as_signed_within_the_window() {
        let key = ForwardKey::derive(&[7u8; 32]);
        let sig = key.sign("a", "POST", "/api/gateways/3/restart", 1000);
        let check = |from, method, path, ts: &str, sig: &str, now| {
            key.verify(from, method, path, ts, sig, now)
        };
        assert_eq!(
            check("a", "POST", "/api/gateways/3/restart", "1000", &sig, 1030),
            Ok(())
        );
        assert_eq!(
            check("a", "POST", "/api/gateways/4/restart", "1000", &sig, 1000),
            Err(HopRefused::Invalid)
        );
        assert_eq!(
            check("b", "POST", "/api/gateways/3/restart", "1000", &sig, 1000),
            Err(HopRefused::Invalid)
        );
        assert_eq!(
            check("a", "POST", "/api/gateways/3/restart", "1000", &sig, 1061),
            Err(HopRefused::Stale)
        );
        assert_eq!(
            check("a", "POST", "/api/gateways/3/restart", "x", &sig, 1000),
            Err(HopRefused::Malformed)
        );
        // Another master key, another credential.
        let other = ForwardKey::derive(&[8u8; 32]);
        assert_eq!(
            other.verify("a", "POST", "/api/gateways/3/restart", "1000", &sig, 1000),
            Err(HopRefused::Invalid)
        );
    }
}
