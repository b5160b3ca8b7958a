//! API keys: only the SHA-256 of a key is stored, with its public prefix for lookup.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::{api_keys, console_logouts};
use super::{DbError, Store, audit, unix_now};
use crate::keys::{GeneratedKey, Role};
use crate::tenancy::KeyScope;
use gateway_supervisor_actors::model::Caller;

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub prefix: String,
    #[serde(skip)]
    pub key_hash: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    /// The key's scope as stored (`tenancy::KeyScope`): `None` for "all".
    pub tenant: Option<String>,
    pub selector: Option<String>,
    pub verbs: Option<String>,
    pub agents: Option<String>,
    /// When it stops working (`None`: never).
    pub expires_at: Option<i64>,
    /// The secret it was rotated from: its prefix and hash, valid until `previous_until`.
    pub previous_prefix: Option<String>,
    #[serde(skip)]
    pub previous_hash: Option<String>,
    pub previous_until: Option<i64>,
}

#[derive(Insertable)]
#[diesel(table_name = api_keys)]
struct NewKeyRow<'a> {
    name: &'a str,
    role: &'a str,
    prefix: &'a str,
    key_hash: &'a str,
    created_at: i64,
    tenant: Option<&'a str>,
    selector: Option<&'a str>,
    verbs: Option<&'a str>,
    agents: Option<&'a str>,
    expires_at: Option<i64>,
}

impl Store {
    /// A new key of `role` reaching `scope` (checked by the caller, `tenancy::Scope`), working
    /// until `expires_at` (`None`: until revoked).
    pub fn create_api_key(
        &self,
        name: &str,
        role: Role,
        scope: &KeyScope,
        expires_at: Option<i64>,
        by: &Caller,
    ) -> Result<(ApiKeyRow, GeneratedKey), DbError> {
        let key = GeneratedKey::generate()?;
        let mut conn = self.conn()?;
        let row = crate::db::write_tx::<_, diesel::result::Error, _>(&mut conn, |c| {
            let row = diesel::insert_into(api_keys::table)
                .values(NewKeyRow {
                    name,
                    role: role.as_str(),
                    prefix: key.prefix(),
                    key_hash: &key.hash_hex(),
                    created_at: unix_now(),
                    tenant: scope.tenant.as_deref(),
                    selector: scope.selector.as_deref(),
                    verbs: scope.verbs.as_deref(),
                    agents: scope.agents.as_deref(),
                    expires_at,
                })
                .returning(api_keys::id)
                .get_result::<i64>(c)?;
            let row = api_keys::table
                .find(row)
                .select(ApiKeyRow::as_select())
                .first(c)?;
            let details = serde_json::json!({
                "name": name, "role": role.as_str(), "prefix": key.prefix(),
                "tenant": scope.tenant, "selector": scope.selector,
                "verbs": scope.verbs, "agents": scope.agents, "expires_at": expires_at,
            });
            audit::record(
                c,
                by,
                "api_key.create",
                "api_key",
                Some(row.id.to_string()),
                Some(&details),
            )?;
            Ok(row)
        })?;
        Ok((row, key))
    }

    pub fn list_api_keys(&self) -> Result<Vec<ApiKeyRow>, DbError> {
        let mut conn = self.conn()?;
        Ok(api_keys::table
            .order(api_keys::id)
            .select(ApiKeyRow::as_select())
            .load(&mut conn)?)
    }

    pub fn count_api_keys(&self) -> Result<i64, DbError> {
        let mut conn = self.conn()?;
        Ok(api_keys::table.count().get_result(&mut conn)?)
    }

    /// Keys that may authenticate (not revoked).
    pub fn active_api_keys(&self) -> Result<Vec<ApiKeyRow>, DbError> {
        let mut conn = self.conn()?;
        Ok(api_keys::table
            .filter(api_keys::revoked_at.is_null())
            .select(ApiKeyRow::as_select())
            .load(&mut conn)?)
    }

    /// Ends a console session (its cookie's MAC) until `expires_at`; ending it twice is one
    /// ending.
    pub fn end_console_session(&self, mac: &str, expires_at: i64) -> Result<(), DbError> {
        let mut conn = self.conn()?;
        match diesel::insert_into(console_logouts::table)
            .values((
                console_logouts::mac.eq(mac),
                console_logouts::expires_at.eq(expires_at),
            ))
            .execute(&mut conn)
        {
            Err(e) if super::is_unique_violation(&e) => Ok(()),
            other => other.map(drop).map_err(DbError::from),
        }
    }

    /// The console sessions ended and not yet expired at `now`, with their expiry (the
    /// expired ones are forgotten: their cookies are refused as expired).
    pub fn ended_console_sessions(&self, now: i64) -> Result<Vec<(String, i64)>, DbError> {
        let mut conn = self.conn()?;
        diesel::delete(console_logouts::table.filter(console_logouts::expires_at.le(now)))
            .execute(&mut conn)?;
        Ok(console_logouts::table
            .select((console_logouts::mac, console_logouts::expires_at))
            .load(&mut conn)?)
    }

    /// The active key with this prefix, or whose previous secret (still in its grace) has it.
    pub fn find_active_api_key(&self, prefix: &str) -> Result<Option<ApiKeyRow>, DbError> {
        let mut conn = self.conn()?;
        Ok(api_keys::table
            .filter(
                api_keys::prefix
                    .eq(prefix)
                    .or(api_keys::previous_prefix.eq(prefix)),
            )
            .filter(api_keys::revoked_at.is_null())
            .select(ApiKeyRow::as_select())
            .first(&mut conn)
            .optional()?)
    }

    /// Rotates key `id`: a new secret, the old one valid `grace_s` more seconds (then refused).
    /// Audited (the prefixes, never a secret).
    pub fn rotate_api_key(
        &self,
        id: i64,
        grace_s: i64,
        by: &Caller,
    ) -> Result<(ApiKeyRow, GeneratedKey), DbError> {
        let key = GeneratedKey::generate()?;
        let now = unix_now();
        let mut conn = self.conn()?;
        let row = crate::db::write_tx::<_, DbError, _>(&mut conn, |c| {
            let old = api_keys::table
                .find(id)
                .filter(api_keys::revoked_at.is_null())
                .select(ApiKeyRow::as_select())
                .first(c)
                .optional()?
                .ok_or(DbError::NotFound)?;
            // Rotating again within a grace would drop the secret still in it, and cut off the
            // clients that have not moved over yet.
            if let Some(until) = old.previous_until.filter(|u| *u > now) {
                return Err(DbError::Conflict(format!(
                    "key {} was rotated and its previous secret works until {until} (Unix time): rotate again after that, or revoke the key",
                    old.id
                )));
            }
            diesel::update(api_keys::table.find(id))
                .set((
                    api_keys::previous_prefix.eq(&old.prefix),
                    api_keys::previous_hash.eq(&old.key_hash),
                    api_keys::previous_until.eq(now.saturating_add(grace_s)),
                    api_keys::prefix.eq(key.prefix()),
                    api_keys::key_hash.eq(key.hash_hex()),
                ))
                .execute(c)?;
            let details = serde_json::json!({"old_prefix": old.prefix, "prefix": key.prefix(),
                "old_valid_until": now.saturating_add(grace_s)});
            audit::record(
                c,
                by,
                "api_key.rotate",
                "api_key",
                Some(id.to_string()),
                Some(&details),
            )?;
            Ok(api_keys::table
                .find(id)
                .select(ApiKeyRow::as_select())
                .first(c)?)
        })?;
        Ok((row, key))
    }

    /// Revokes by id or by prefix. Returns the revoked row.
    pub fn revoke_api_key(&self, id_or_prefix: &str, by: &Caller) -> Result<ApiKeyRow, DbError> {
        let mut conn = self.conn()?;
        let now = unix_now();
        crate::db::write_tx::<_, DbError, _>(&mut conn, |c| {
            let target = match id_or_prefix.parse::<i64>() {
                Ok(id) => api_keys::table
                    .find(id)
                    .select(ApiKeyRow::as_select())
                    .first(c),
                Err(_) => api_keys::table
                    .filter(api_keys::prefix.eq(id_or_prefix))
                    .select(ApiKeyRow::as_select())
                    .first(c),
            }
            .optional()?;
            let Some(target) = target else {
                // The prefix of a secret a rotation replaced: say whose it was, and revoke
                // nothing — the key itself, under its new secret, may be what keeps a service up.
                let previous: Option<ApiKeyRow> = api_keys::table
                    .filter(api_keys::previous_prefix.eq(id_or_prefix))
                    .filter(api_keys::revoked_at.is_null())
                    .select(ApiKeyRow::as_select())
                    .first(c)
                    .optional()?;
                return Err(match previous {
                    Some(k) => DbError::Conflict(format!(
                        "`{id_or_prefix}` is the previous secret of key #{} `{}`, replaced by a rotation \
                         (its prefix is now {}); revoke the key by its id ({}) or its current prefix, \
                         or let the old secret's grace run out",
                        k.id, k.name, k.prefix, k.id
                    )),
                    None => DbError::NotFound,
                });
            };
            if target.revoked_at.is_some() {
                return Err(DbError::Conflict(format!(
                    "key {} is already revoked",
                    target.prefix
                )));
            }
            diesel::update(api_keys::table.find(target.id))
                .set(api_keys::revoked_at.eq(now))
                .execute(c)?;
            let row = api_keys::table
                .find(target.id)
                .select(ApiKeyRow::as_select())
                .first(c)?;
            audit::record(
                c,
                by,
                "api_key.revoke",
                "api_key",
                Some(row.id.to_string()),
                None,
            )?;
            Ok(row)
        })
    }

    pub fn touch_api_keys(&self, ids: &[i64], at: i64) -> Result<(), DbError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn()?;
        diesel::update(api_keys::table.filter(api_keys::id.eq_any(ids)))
            .set(api_keys::last_used_at.eq(at))
            .execute(&mut conn)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::connection::SimpleConnection;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// `keys rotate` and `keys revoke` run beside a daemon whose writer thread commits all the
    /// time. Each reads the key before it writes; a read snapshot made stale by such a commit
    /// cannot write on SQLite and was "database is locked" (seen in CI).
    #[test]
    fn rotating_and_revoking_beside_a_busy_writer_is_never_locked_out() {
        let (store, _dir) = crate::db::test_support::sqlite_store();
        let by = Caller::system("test");
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let mut other = store.conn().unwrap();
            let stop = &stop;
            s.spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    other
                        .batch_execute(&format!(
                            "INSERT INTO cluster_instances (instance_id) VALUES ('w{n}')"
                        ))
                        .unwrap();
                    // About 500 commits a second, as busy as the daemon's batching writer
                    // gets. Back to back with no gap, the lock is free only for microseconds
                    // between commits and SQLite's busy handler, which sleeps 1–100 ms between
                    // tries, can miss every window for its whole 5 s: starved, not stale
                    // (failed 2 of 15 runs on a loaded machine, both "database is locked").
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
            });
            let outcome = (|| -> Result<(), DbError> {
                for i in 0..200 {
                    let name = format!("k{i}");
                    let (row, _) = store.create_api_key(
                        &name,
                        Role::Viewer,
                        &KeyScope::default(),
                        None,
                        &by,
                    )?;
                    store.rotate_api_key(row.id, 0, &by)?;
                    store.revoke_api_key(&row.id.to_string(), &by)?;
                }
                Ok(())
            })();
            stop.store(true, Ordering::Relaxed);
            outcome.unwrap();
        });
    }
}
