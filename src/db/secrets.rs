//! The `secrets` table: encrypted blobs by name (the device identity, the master-key check).

use diesel::prelude::*;

use super::schema::secrets;
use super::{DbError, Store, now_unix};
use crate::secrets::{SecretsError, purpose};

const MASTER_KEY_CHECK: &str = "master_key_check";
const CHECK_PLAINTEXT: &[u8] = b"gateway-supervisor master key check";

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
        let now = now_unix();
        conn.transaction::<_, diesel::result::Error, _>(|c| {
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
}
