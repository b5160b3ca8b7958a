//! API keys: their format, roles and hashing, with no storage (the database keeps what
//! `hash_key` gives; `auth` checks presented keys against it). Keys are `gsk_` + 40 random
//! base62 characters; the first 12 characters (the prefix) are a public handle for lookup and
//! listing.

use std::fmt;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::secrets::{SecretsError, random_bytes};

pub const KEY_PREFIX: &str = "gsk_";
const KEY_RANDOM_LEN: usize = 40;
const KEY_LEN: usize = KEY_PREFIX.len() + KEY_RANDOM_LEN;
const LOOKUP_PREFIX_LEN: usize = 12;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role `{other}` (viewer, operator or admin)"
            )),
        }
    }
}

/// A newly generated key: shown once, then only its hash is kept.
pub struct GeneratedKey {
    secret: SecretString,
    hash: [u8; 32],
}

impl GeneratedKey {
    pub fn generate() -> Result<Self, SecretsError> {
        let mut out = String::with_capacity(KEY_LEN);
        out.push_str(KEY_PREFIX);
        while out.len() < KEY_LEN {
            for b in random_bytes::<64>()? {
                // Rejection sampling keeps the alphabet uniform (248 = 4 × 62).
                if b < 248 && out.len() < KEY_LEN {
                    out.push(char::from(BASE62[usize::from(b % 62)]));
                }
            }
        }
        let hash = hash_key(&out);
        Ok(GeneratedKey {
            secret: SecretString::from(out),
            hash,
        })
    }

    pub fn prefix(&self) -> &str {
        &self.secret.expose_secret()[..LOOKUP_PREFIX_LEN]
    }

    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }

    /// The key itself, for the one time it is shown.
    pub fn reveal(&self) -> &str {
        self.secret.expose_secret()
    }
}

pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Splits a presented key into its lookup prefix, or `None` when it cannot be one of ours.
pub(crate) fn lookup_prefix(presented: &str) -> Option<&str> {
    let prefix = cache_prefix(presented)?;
    presented.as_bytes()[KEY_PREFIX.len()..]
        .iter()
        .all(u8::is_ascii_alphanumeric)
        .then_some(prefix)
}

/// The lookup prefix of a presented key of our length and prefix, its other characters not
/// checked: enough to find a cached key, whose digest then decides (a key with the digest of
/// one issued is that key, well formed). A key the cache does not hold is checked in full
/// ([`lookup_prefix`]) before the store is asked. Checking every character on every request
/// was 0.33 % of the daemon's CPU serving a cached read.
pub(crate) fn cache_prefix(presented: &str) -> Option<&str> {
    if presented.len() != KEY_LEN || !presented.starts_with(KEY_PREFIX) {
        return None;
    }
    presented.get(..LOOKUP_PREFIX_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_key_is_found_by_length_and_prefix_a_key_for_the_store_is_checked_in_full() {
        let key = GeneratedKey::generate().unwrap();
        let mut odd = key.reveal().to_owned();
        odd.replace_range(20..21, "-");
        // The cache compares digests, which only the issued key has.
        assert_eq!(cache_prefix(&odd), Some(key.prefix()));
        // The store is asked only about a key that could be one issued.
        assert_eq!(lookup_prefix(&odd), None);
        assert_eq!(lookup_prefix(key.reveal()), Some(key.prefix()));
        assert_eq!(cache_prefix("gsk_short"), None);
        assert_eq!(
            cache_prefix(&key.reveal().replacen("gsk_", "xyz_", 1)),
            None
        );
        // Our length in bytes, a character across the prefix's end: refused, not a panic.
        let across = format!("gsk_abcdefg\u{e9}{}", &key.reveal()[13..]);
        assert_eq!(across.len(), key.reveal().len());
        assert_eq!(cache_prefix(&across), None);
    }

    #[test]
    fn generated_keys_are_well_formed_and_distinct() {
        let a = GeneratedKey::generate().unwrap();
        let b = GeneratedKey::generate().unwrap();
        assert_eq!(a.reveal().len(), KEY_LEN);
        assert!(a.reveal().starts_with(KEY_PREFIX));
        assert_eq!(lookup_prefix(a.reveal()), Some(a.prefix()));
        assert_ne!(a.reveal(), b.reveal());
        assert_eq!(
            a.hash_hex(),
            hex::encode(Sha256::digest(a.reveal().as_bytes()))
        );
    }

    #[test]
    fn malformed_keys_have_no_prefix() {
        assert_eq!(lookup_prefix("gsk_short"), None);
        assert_eq!(lookup_prefix(&format!("xxx_{}", "a".repeat(40))), None);
        assert_eq!(lookup_prefix(&format!("gsk_{}!", "a".repeat(39))), None);
        assert!(lookup_prefix(&format!("gsk_{}", "a".repeat(40))).is_some());
    }

    #[test]
    fn roles_are_ordered() {
        use Role::*;
        assert!(Viewer < Operator && Operator < Admin);
    }
}
