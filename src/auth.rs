//! API keys and roles. Keys are `gsk_` + 40 random base62 characters; the first 12 characters
//! (the prefix) are a public handle for lookup and listing, the database keeps only the
//! SHA-256 of the whole key, and the hash is compared in constant time.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::db::{DbError, Store, api_keys::ApiKeyRow, now_unix};
use crate::secrets::{SecretsError, random_bytes};
use gateway_supervisor_actors::model::Caller;

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
fn lookup_prefix(presented: &str) -> Option<&str> {
    let well_formed = presented.len() == KEY_LEN
        && presented.starts_with(KEY_PREFIX)
        && presented[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric());
    well_formed.then(|| &presented[..LOOKUP_PREFIX_LEN])
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub key_id: i64,
    pub name: String,
    pub role: Role,
}

impl Principal {
    pub fn caller(&self) -> Caller {
        Caller {
            api_key_id: Some(self.key_id),
            label: format!("api_key:{}", self.name),
        }
    }
}

struct CachedKey {
    id: i64,
    name: String,
    role: Role,
    hash: [u8; 32],
    /// Set on use, cleared when `last_used_at` is flushed (no lock on the request path).
    used: AtomicBool,
}

impl CachedKey {
    fn from_row(row: &ApiKeyRow) -> Option<(String, Arc<CachedKey>)> {
        let hash: [u8; 32] = hex::decode(&row.key_hash).ok()?.try_into().ok()?;
        Some((
            row.prefix.clone(),
            Arc::new(CachedKey {
                id: row.id,
                name: row.name.clone(),
                role: row.role.parse().ok()?,
                hash,
                used: AtomicBool::new(false),
            }),
        ))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing API key: send `x-api-key: KEY` or `Authorization: Bearer KEY`")]
    Missing,
    #[error("invalid or revoked API key")]
    Invalid,
    #[error("key store unavailable: {0}")]
    Store(#[from] DbError),
}

/// Active keys in memory, reloaded from the database every `auth.key_refresh_interval` (so a
/// key revoked from the CLI stops working within that interval). Unknown prefixes are looked
/// up once in the database, so a key created from the CLI works at once.
pub struct KeyCache {
    store: Store,
    keys: RwLock<HashMap<String, Arc<CachedKey>>>,
}

impl KeyCache {
    pub fn new(store: Store) -> Self {
        KeyCache {
            store,
            keys: RwLock::new(HashMap::new()),
        }
    }

    /// Blocking: reloads active keys and flushes `last_used_at`.
    pub fn refresh(&self) -> Result<(), DbError> {
        let rows = self.store.active_api_keys()?;
        let fresh: HashMap<String, Arc<CachedKey>> =
            rows.iter().filter_map(CachedKey::from_row).collect();
        let old = std::mem::replace(
            &mut *self.keys.write().unwrap_or_else(|p| p.into_inner()),
            fresh,
        );
        let used: Vec<i64> = old
            .values()
            .filter(|k| k.used.swap(false, Ordering::Relaxed))
            .map(|k| k.id)
            .collect();
        self.store.touch_api_keys(&used, now_unix())
    }

    fn check(&self, prefix: &str, hash: &[u8; 32]) -> Option<Principal> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let cached = keys.get(prefix)?;
        if !bool::from(cached.hash.ct_eq(hash)) {
            return None;
        }
        cached.used.store(true, Ordering::Relaxed);
        Some(Principal {
            key_id: cached.id,
            name: cached.name.clone(),
            role: cached.role,
        })
    }

    /// Authenticates a presented key. May do one blocking lookup on a cache miss.
    pub async fn authenticate(&self, presented: Option<&str>) -> Result<Principal, AuthError> {
        let presented = presented
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(AuthError::Missing)?;
        let prefix = lookup_prefix(presented).ok_or(AuthError::Invalid)?;
        let hash = hash_key(presented);
        match self.check(prefix, &hash) {
            Some(p) => Ok(p),
            None => {
                let store = self.store.clone();
                let owned = prefix.to_owned();
                let row = actix_web::web::block(move || store.find_active_api_key(&owned))
                    .await
                    .map_err(|e| AuthError::Store(DbError::Query(e.to_string())))??;
                let (prefix, cached) = row
                    .as_ref()
                    .and_then(CachedKey::from_row)
                    .ok_or(AuthError::Invalid)?;
                self.keys
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(prefix.clone(), cached);
                self.check(&prefix, &hash).ok_or(AuthError::Invalid)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
