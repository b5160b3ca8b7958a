//! Authentication: who presents which API key. The database keeps only the SHA-256 of each
//! key (`keys::hash_key`); a presented key is found by its prefix in a cache refreshed from
//! the database and its hash compared in constant time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use arc_swap::ArcSwap;

use subtle::ConstantTimeEq;

use crate::db::{DbError, Store, api_keys::ApiKeyRow, unix_now};
use crate::tenancy::{Reserved, Scope};
use gateway_supervisor_actors::model::Caller;

pub use crate::keys::{GeneratedKey, KEY_PREFIX, Role, hash_key};
use crate::keys::{cache_prefix, lookup_prefix};

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub key_id: i64,
    pub name: String,
    pub role: Role,
    /// What the key reaches (docs/design.md, *Tenancy*): shared with the cache's entry.
    pub scope: Arc<Scope>,
    /// An API key's, or a console user's signed in through the provider (then `key_id` is
    /// only their slot in the per-caller limits, negative, never a stored key's id).
    pub kind: PrincipalKind,
}

/// How a caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    ApiKey,
    Sso,
}

impl Principal {
    pub fn caller(&self) -> Caller {
        match self.kind {
            PrincipalKind::ApiKey => Caller {
                api_key_id: Some(self.key_id),
                label: format!("api_key:{}", self.name),
                tenant: self.scope.tenant().map(str::to_owned),
            },
            PrincipalKind::Sso => Caller {
                api_key_id: None,
                label: format!("sso:{}", self.name),
                tenant: self.scope.tenant().map(str::to_owned),
            },
        }
    }
}

/// Active keys by lookup prefix. Hashed with foldhash, seeded per process: SipHash was a
/// quarter of the cache's own work on every request (330 of 1,360 instructions, callgrind), and
/// the map only answers lookups (no client can add an entry), so a flood of chosen prefixes
/// cannot grow a chain.
type KeysByPrefix = HashMap<String, Arc<CachedKey>, foldhash::fast::RandomState>;

struct CachedKey {
    id: i64,
    name: String,
    role: Role,
    scope: Arc<Scope>,
    hash: [u8; 32],
    /// When this secret stops working (Unix seconds): the key's expiry, or the end of a rotated
    /// secret's grace. `None`: never — such a key pays no clock read per request.
    expires_at: Option<i64>,
    /// The secret a key was rotated from (still in its grace), not the key's current one.
    previous: bool,
    /// Set on use, cleared when `last_used_at` is flushed (no lock on the request path).
    used: AtomicBool,
}

impl CachedKey {
    /// The secrets of a stored row that work at `now`: its own, and the one it was rotated from
    /// while in its grace. None for a row that does not read back whole — a key whose scope no
    /// longer holds (a selector over a label `labels.reserved` no longer reserves) is refused,
    /// not widened, and the log says why.
    fn from_row(row: &ApiKeyRow, reserved: &Reserved, now: i64) -> Vec<(String, Arc<CachedKey>)> {
        let scope = match Scope::new(
            row.tenant.as_deref(),
            row.selector.as_deref(),
            row.verbs.as_deref(),
            row.agents.as_deref(),
            reserved,
        ) {
            Ok(scope) => Arc::new(scope),
            Err(e) => {
                tracing::warn!(key = row.id, prefix = %row.prefix, "API key refused: its scope: {e}");
                return Vec::new();
            }
        };
        let Ok(role) = row.role.parse::<Role>() else {
            return Vec::new();
        };
        let entry = |prefix: &str, hash: &str, expires_at: Option<i64>, previous: bool| {
            let hash: [u8; 32] = hex::decode(hash).ok()?.try_into().ok()?;
            if expires_at.is_some_and(|e| e <= now) {
                return None;
            }
            Some((
                prefix.to_owned(),
                Arc::new(CachedKey {
                    id: row.id,
                    name: row.name.clone(),
                    role,
                    scope: Arc::clone(&scope),
                    hash,
                    expires_at,
                    previous,
                    used: AtomicBool::new(false),
                }),
            ))
        };
        let mut out: Vec<_> = entry(&row.prefix, &row.key_hash, row.expires_at, false)
            .into_iter()
            .collect();
        if let (Some(prefix), Some(hash), Some(until)) =
            (&row.previous_prefix, &row.previous_hash, row.previous_until)
        {
            let ends = row.expires_at.map_or(until, |e| e.min(until));
            out.extend(entry(prefix, hash, Some(ends), true));
        }
        out
    }

    fn principal(&self) -> Principal {
        Principal {
            key_id: self.id,
            name: self.name.clone(),
            role: self.role,
            scope: Arc::clone(&self.scope),
            kind: PrincipalKind::ApiKey,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing API key: send `x-api-key: KEY` or `Authorization: Bearer KEY`")]
    Missing,
    #[error("invalid or revoked API key")]
    Invalid,
    /// A key the cache does not hold, past the store lookups' budget: the same answer as an
    /// invalid key, and why a key made seconds ago may get it.
    #[error(
        "invalid or revoked API key (or one made in the last seconds, while too many unknown keys \
         were presented: it works from the next refresh)"
    )]
    NotLookedUp,
    #[error("the Authorization header is not `Bearer KEY`")]
    MalformedAuthorization,
    #[error("x-api-key and Authorization: Bearer name different keys; send one")]
    TwoKeys,
    #[error("key store unavailable: {0}")]
    Store(#[from] DbError),
}

/// A presented key's cache prefix and digest ([`KeyCache::digest`]).
pub struct KeyDigest {
    prefix: String,
    hash: [u8; 32],
}

/// Keys the cache does not hold looked up in the store, at most this many a second (and in a
/// burst). Without a bound, every request with a made-up key of the right shape cost a database
/// query — in a cluster, one on the shared PostgreSQL — for anyone who can reach the port. A
/// real miss is rare (a key made since the last refresh, first used here), so 20 a second is
/// far above need; past it, an unknown key is refused without asking, and a key made meanwhile
/// works from the next refresh.
const STORE_LOOKUPS_PER_SECOND: std::num::NonZeroU32 = std::num::NonZeroU32::new(20).unwrap();

/// Active keys in memory, reloaded from the database every `auth.key_refresh_interval` (so a
/// key revoked from the CLI stops working within that interval). Unknown prefixes are looked
/// up in the database (at most [`STORE_LOOKUPS_PER_SECOND`]), so a key created from the CLI
/// works at once.
pub struct KeyCache {
    store: Store,
    /// The labels only a platform key sets: a stored scope is checked against them.
    reserved: Reserved,
    /// The store lookups' budget ([`STORE_LOOKUPS_PER_SECOND`]).
    lookups: governor::DefaultDirectRateLimiter,
    /// Counts the unknown keys refused without a lookup (`rate_limited_total{limit=
    /// "unknown_key_lookups"}`).
    lookups_refused: prometheus::IntCounter,
    /// Read on every request by every worker: swapped whole, never locked. A lock's reader
    /// count is a write to one cache line from both workers on every request (`KeyCache::check`
    /// was 0.87 % of the daemon's CPU serving a cached read, perf; docs/design.md "Serving
    /// reads").
    keys: ArcSwap<KeysByPrefix>,
    /// Console sessions logged out and not yet expired: their cookie's MAC and when the cookie
    /// expires (reloaded with the keys; see [`crate::console_session`]).
    ended_sessions: RwLock<HashMap<String, i64>>,
}

impl KeyCache {
    /// `lookups_refused` counts the unknown keys refused without a store lookup.
    pub fn new(store: Store, reserved: Reserved, lookups_refused: prometheus::IntCounter) -> Self {
        KeyCache {
            store,
            reserved,
            lookups: governor::RateLimiter::direct(governor::Quota::per_second(
                STORE_LOOKUPS_PER_SECOND,
            )),
            lookups_refused,
            keys: ArcSwap::from_pointee(KeysByPrefix::default()),
            ended_sessions: RwLock::new(HashMap::new()),
        }
    }

    /// The labels only a platform key sets, as the keys' scopes are read under.
    pub fn reserved(&self) -> &Reserved {
        &self.reserved
    }

    /// Blocking: reloads active keys and flushes `last_used_at`.
    pub fn refresh(&self) -> Result<(), DbError> {
        // Read without holding the set: a logout here after the read is in the old set and not
        // in the read, so what the old set holds and has not expired is kept.
        let now = unix_now();
        let mut fresh: HashMap<String, i64> = self
            .store
            .ended_console_sessions(now)?
            .into_iter()
            .collect();
        {
            let mut ended = self
                .ended_sessions
                .write()
                .unwrap_or_else(|p| p.into_inner());
            fresh.extend(ended.drain().filter(|(_, expires)| *expires > now));
            *ended = fresh;
        }
        let before = self.keys.load_full();
        let rows = self.store.active_api_keys()?;
        let old = self.install(&before, &rows, now);
        let used: Vec<i64> = old
            .values()
            .filter(|k| k.used.swap(false, Ordering::Relaxed))
            .map(|k| k.id)
            .collect();
        self.store.touch_api_keys(&used, unix_now())
    }

    /// Makes `rows`, read from the store while the cache was `before`, the cache; returns the
    /// set it replaced. A key [`KeyCache::from_store`] added meanwhile (made after the read
    /// began, first used during it) is kept: a console session is checked against the cache
    /// alone ([`KeyCache::by_id`]), and a key dropped here refused its cookie until the next
    /// refresh, a few seconds after its login.
    fn install(&self, before: &KeysByPrefix, rows: &[ApiKeyRow], now: i64) -> Arc<KeysByPrefix> {
        let fresh: KeysByPrefix = rows
            .iter()
            .flat_map(|r| CachedKey::from_row(r, &self.reserved, now))
            .collect();
        self.keys.rcu(|current| {
            let mut next = fresh.clone();
            for (prefix, key) in current.iter() {
                let added = before.get(prefix).is_none_or(|was| !Arc::ptr_eq(was, key));
                if added {
                    next.entry(prefix.clone())
                        .or_insert_with(|| Arc::clone(key));
                }
            }
            next
        })
    }

    fn check(&self, prefix: &str, hash: &[u8; 32]) -> Option<Principal> {
        self.matching(prefix, hash, CachedKey::principal)
    }

    /// `seen` of the active key with this prefix and digest, which is marked used.
    fn matching<T>(
        &self,
        prefix: &str,
        hash: &[u8; 32],
        seen: impl FnOnce(&CachedKey) -> T,
    ) -> Option<T> {
        let keys = self.keys.load();
        let cached = keys.get(prefix)?;
        if !same_digest(&cached.hash, hash) {
            return None;
        }
        if cached.expires_at.is_some_and(|e| unix_now() >= e) {
            return None;
        }
        // Written once between refreshes: a store on every request made both workers fight
        // over the cache line (1.3 % of the daemon's CPU serving a cached read).
        if !cached.used.load(Ordering::Relaxed) {
            cached.used.store(true, Ordering::Relaxed);
        }
        Some(seen(cached))
    }

    /// The active key with id `id`: who it is and its stored hash (console sessions, see
    /// [`crate::console_session`]). Only keys already in the cache (loaded, or used since the
    /// last refresh); a revoked key leaves it at the next refresh.
    pub fn by_id(&self, id: i64) -> Option<(Principal, [u8; 32])> {
        let keys = self.keys.load();
        let cached = keys.values().find(|k| k.id == id && !k.previous)?;
        cached.used.store(true, Ordering::Relaxed);
        Some((cached.principal(), cached.hash))
    }

    /// Whether the console session of this cookie was logged out.
    pub fn session_ended(&self, cookie: &str) -> bool {
        crate::console_session::ended_session(cookie).is_some_and(|(mac, _)| {
            self.ended_sessions
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&mac)
        })
    }

    /// Ends the console session of this cookie: here at once, on every other instance at its
    /// next refresh. Blocking (one insert).
    pub fn end_session(&self, cookie: &str) -> Result<(), DbError> {
        let Some((mac, expires)) = crate::console_session::ended_session(cookie) else {
            return Ok(());
        };
        self.store.end_console_session(&mac, expires)?;
        self.ended_sessions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(mac, expires);
        Ok(())
    }

    /// A presented key as the cache compares it, to ask again later (a live stream, see
    /// [`KeyCache::still_active`]) without keeping the key itself.
    pub fn digest(presented: &str) -> Option<KeyDigest> {
        let presented = presented.trim();
        Some(KeyDigest {
            prefix: cache_prefix(presented)?.to_owned(),
            hash: hash_key(presented),
        })
    }

    /// Whether the key of `digest` is still active here: one revoked leaves the cache at its
    /// next refresh (`auth.key_refresh_interval`). Asked before every frame of a stream, so
    /// it builds no [`Principal`].
    pub fn still_active(&self, digest: &KeyDigest) -> bool {
        self.matching(&digest.prefix, &digest.hash, |_| ())
            .is_some()
    }

    /// Who a presented key stands for, from the cache alone: `Ok(None)` when the key is well
    /// formed but not cached (made on another instance since the last refresh, say), where
    /// [`KeyCache::authenticate`] asks the store.
    pub fn cached(&self, presented: Option<&str>) -> Result<Option<Principal>, AuthError> {
        let presented = presented
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(AuthError::Missing)?;
        let prefix = cache_prefix(presented).ok_or(AuthError::Invalid)?;
        if let Some(principal) = self.check(prefix, &hash_key(presented)) {
            return Ok(Some(principal));
        }
        // Not a key the cache holds: the store is asked only about a well-formed one.
        lookup_prefix(presented).ok_or(AuthError::Invalid)?;
        Ok(None)
    }

    /// Authenticates a presented key. May do one blocking lookup on a cache miss.
    pub async fn authenticate(&self, presented: Option<&str>) -> Result<Principal, AuthError> {
        match self.cached(presented)? {
            Some(p) => Ok(p),
            // `cached` let it through: present and well formed.
            None => {
                self.from_store(presented.map(str::trim).unwrap_or_default())
                    .await
            }
        }
    }

    /// A key [`KeyCache::cached`] did not know, looked up in the store (one blocking query)
    /// and cached when it is active.
    pub async fn from_store(&self, presented: &str) -> Result<Principal, AuthError> {
        let prefix = lookup_prefix(presented).ok_or(AuthError::Invalid)?;
        if self.lookups.check().is_err() {
            self.lookups_refused.inc();
            return Err(AuthError::NotLookedUp);
        }
        let hash = hash_key(presented);
        let owned = prefix.to_owned();
        let row = self
            .store
            .call(move |store| store.find_active_api_key(&owned))
            .await
            .map_err(AuthError::Store)?;
        let entries = row
            .as_ref()
            .map(|r| CachedKey::from_row(r, &self.reserved, unix_now()))
            .unwrap_or_default();
        if entries.is_empty() {
            return Err(AuthError::Invalid);
        }
        // A copy of the map with the key added (a miss is rare: a key made since the last
        // refresh, on another instance or from the command line).
        self.keys.rcu(|keys| {
            let mut keys = KeysByPrefix::clone(keys);
            keys.extend(entries.iter().map(|(p, k)| (p.clone(), Arc::clone(k))));
            keys
        });
        self.check(prefix, &hash).ok_or(AuthError::Invalid)
    }
}

/// Whether two digests are equal, in time that does not depend on where they differ: the
/// words' differences folded into one, then one constant-time compare (`subtle`'s compare of
/// two byte slices fences every byte, 0.64 % of the daemon's CPU serving a cached read).
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let (a, _) = a.as_chunks::<8>();
    let (b, _) = b.as_chunks::<8>();
    let diff = a.iter().zip(b).fold(0u64, |acc, (x, y)| {
        acc | (u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y))
    });
    bool::from(diff.ct_eq(&0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key made and first used while a refresh reads the store stays in the cache, so a
    /// console session of it (checked against the cache alone) is not refused until the next
    /// refresh; a key revoked before the read leaves it.
    #[tokio::test]
    async fn a_key_first_used_during_a_refresh_is_not_dropped_by_it() {
        let (store, _dir) = crate::db::test_support::sqlite_store();
        let by = Caller::system("test");
        let made = |name: &str| {
            store
                .create_api_key(name, Role::Viewer, &Default::default(), None, &by)
                .unwrap()
        };
        let (old_row, _) = made("old");
        let cache = KeyCache::new(
            store.clone(),
            Reserved::default(),
            prometheus::IntCounter::new("refused", "refused").unwrap(),
        );
        cache.refresh().unwrap();
        assert!(cache.by_id(old_row.id).is_some());

        // The refresh reads the store, then a key is made and logged in with before it installs.
        let before = cache.keys.load_full();
        store.revoke_api_key(&old_row.id.to_string(), &by).unwrap();
        let rows = store.active_api_keys().unwrap();
        let (new_row, new_key) = made("new");
        cache.from_store(new_key.reveal()).await.unwrap();
        cache.install(&before, &rows, unix_now());

        assert!(
            cache.by_id(new_row.id).is_some(),
            "the key logged in with during the refresh is still cached"
        );
        assert!(cache.by_id(old_row.id).is_none(), "the revoked key left");
    }

    #[test]
    fn digests_that_differ_in_any_one_bit_are_not_the_same() {
        let a: [u8; 32] = std::array::from_fn(|i| i as u8);
        assert!(same_digest(&a, &a));
        for byte in 0..32 {
            for bit in 0..8 {
                let mut b = a;
                b[byte] ^= 1 << bit;
                assert!(!same_digest(&a, &b), "byte {byte}, bit {bit}");
            }
        }
    }
}
