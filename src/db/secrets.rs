//! The `secrets` table: encrypted blobs by name (the device identity, the master-key check).

use diesel::prelude::*;

use super::schema::secrets;
use super::{DbError, Store, unix_now};
use crate::secrets::{SecretsError, purpose};
use gateway_supervisor_actors::protocol::device::DeviceIdentity;

const MASTER_KEY_CHECK: &str = "master_key_check";
const DEVICE_IDENTITY: &str = "device_identity";
const CHECK_PLAINTEXT: &[u8] = b"gateway-supervisor master key check";

/// Whether the database already holds data under a master key (its check value), asked
/// before the key is loaded: only a database without one may get a newly generated key.
pub fn has_master_key_check(pool: &super::Pool) -> Result<bool, DbError> {
    let mut conn = pool.get()?;
    Ok(secrets::table
        .find(MASTER_KEY_CHECK)
        .select(secrets::name)
        .first::<String>(&mut conn)
        .optional()?
        .is_some())
}

/// Whether `cipher` reads the master-key check of one SQLite file (a backup), on a connection
/// of its own that leaves the file as it was: a wrong key is `SecretsError::Decrypt`, a file
/// without a check (nothing was ever encrypted in it) reads as fine.
pub fn key_reads_sqlite_file(
    conn: &mut diesel::SqliteConnection,
    cipher: &crate::secrets::Cipher,
) -> Result<(), DbError> {
    let blob: Option<Vec<u8>> = secrets::table
        .find(MASTER_KEY_CHECK)
        .select(secrets::value)
        .first(conn)
        .optional()?;
    match blob.map(|b| cipher.decrypt(&b, purpose::MASTER_KEY_CHECK)) {
        None => Ok(()),
        Some(Ok(plain)) if plain == CHECK_PLAINTEXT => Ok(()),
        Some(_) => Err(DbError::Secrets(SecretsError::Decrypt)),
    }
}

impl Store {
    pub fn get_secret(&self, name: &str) -> Result<Option<Vec<u8>>, DbError> {
        let mut conn = self.conn()?;
        Ok(secrets::table
            .find(name)
            .select(secrets::value)
            .first(&mut conn)
            .optional()?)
    }

    pub fn put_secret(&self, name: &str, value: &[u8]) -> Result<(), DbError> {
        let mut conn = self.conn()?;
        let now = unix_now();
        crate::db::write_tx::<_, diesel::result::Error, _>(&mut conn, |c| {
            let updated = diesel::update(secrets::table.find(name))
                .set((secrets::value.eq(value), secrets::updated_at.eq(now)))
                .execute(c)?;
            if updated == 0 {
                diesel::insert_into(secrets::table)
                    .values((
                        secrets::name.eq(name),
                        secrets::value.eq(value),
                        secrets::created_at.eq(now),
                        secrets::updated_at.eq(now),
                    ))
                    .execute(c)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Proves the master key is the one this database was encrypted with; records a check
    /// value on first use. A wrong key is refused before anything is decrypted or written.
    pub fn verify_master_key(&self) -> Result<bool, DbError> {
        match self.get_secret(MASTER_KEY_CHECK)? {
            Some(blob) => match self.cipher.decrypt(&blob, purpose::MASTER_KEY_CHECK) {
                Ok(plain) if plain == CHECK_PLAINTEXT => Ok(false),
                _ => Err(DbError::Secrets(SecretsError::Decrypt)),
            },
            None => {
                let blob = self
                    .cipher
                    .encrypt(CHECK_PLAINTEXT, purpose::MASTER_KEY_CHECK)?;
                self.put_secret(MASTER_KEY_CHECK, &blob)?;
                Ok(true)
            }
        }
    }
}

impl Store {
    /// The supervisor's Ed25519 device identity: generated once, stored encrypted in the
    /// database (so instances sharing a PostgreSQL database share it). Returns whether it was
    /// created now.
    pub fn device_identity(&self) -> Result<(DeviceIdentity, bool), DbError> {
        if let Some(blob) = self.get_secret(DEVICE_IDENTITY)? {
            let seed: [u8; 32] = self
                .cipher
                .decrypt(&blob, purpose::DEVICE_IDENTITY)?
                .try_into()
                .map_err(|_| DbError::Damaged("the stored device identity has the wrong length"))?;
            return Ok((DeviceIdentity::from_seed(seed), false));
        }
        let identity =
            DeviceIdentity::generate().map_err(|e| SecretsError::Random(e.to_string()))?;
        let blob = self
            .cipher
            .encrypt(&identity.seed(), purpose::DEVICE_IDENTITY)?;
        self.put_secret(DEVICE_IDENTITY, &blob)?;
        Ok((identity, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_support::sqlite_pool;
    use crate::secrets::Cipher;
    use secrecy::SecretBox;
    use std::sync::Arc;

    #[test]
    fn master_key_check_detects_a_different_key() {
        let (pool, _dir) = sqlite_pool();
        let store = |b: u8| Store {
            pool: pool.clone(),
            cipher: Arc::new(Cipher::new(&SecretBox::new(Box::new([b; 32])))),
        };
        assert!(store(1).verify_master_key().unwrap());
        assert!(!store(1).verify_master_key().unwrap());
        assert!(store(2).verify_master_key().is_err());
    }

    #[test]
    fn device_identity_is_created_once_and_stored_encrypted() {
        let (pool, _dir) = sqlite_pool();
        let store = Store {
            pool,
            cipher: Arc::new(Cipher::new(&SecretBox::new(Box::new([1; 32])))),
        };
        let (a, created) = store.device_identity().unwrap();
        assert!(created);
        let (b, created) = store.device_identity().unwrap();
        assert!(!created);
        assert_eq!(a.device_id(), b.device_id());
        let blob = store.get_secret(DEVICE_IDENTITY).unwrap().unwrap();
        assert!(!blob.windows(32).any(|w| w == a.seed()));
    }
}
