//! A gateway token rotation under way, on record before the new token is written to the
//! gateway: the old and the new token, encrypted in the `secrets` table (bound to the gateway's
//! id), until the rotation is over. A daemon that dies between the gateway's write and its own
//! never loses the token the gateway now holds: at its next start it finds the record and
//! settles it (`fleet::gateway_ops::rotate`). Nothing else reads these rows.

use diesel::prelude::*;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::schema::secrets;
use super::{DbError, Store};
use gateway_supervisor_actors::model::GatewayId;

const PREFIX: &str = "token_rotation/";

/// What a rotation holds: the token the daemon used before (none: the gateway had none on
/// record) and the one it writes.
pub struct Rotation {
    pub old: Option<SecretString>,
    pub new: SecretString,
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    old: Option<String>,
    new: String,
}

fn name(id: GatewayId) -> String {
    format!("{PREFIX}{}", id.get())
}

/// The associated data: the purpose and the gateway, so a record moved to another gateway's
/// name does not decrypt.
fn aad(id: GatewayId) -> Vec<u8> {
    format!("gateway-supervisor/token-rotation/v1/{}", id.get()).into_bytes()
}

impl Store {
    /// Records rotation `r` of gateway `id` (replacing any earlier record of it).
    pub fn begin_token_rotation(&self, id: GatewayId, r: &Rotation) -> Result<(), DbError> {
        let sealed = Sealed {
            old: r.old.as_ref().map(|t| t.expose_secret().to_owned()),
            new: r.new.expose_secret().to_owned(),
        };
        let plain = serde_json::to_vec(&sealed).map_err(|_| DbError::Damaged("a rotation"))?;
        let blob = self.cipher.encrypt(&plain, &aad(id))?;
        self.put_secret(&name(id), &blob)
    }

    /// Gateway `id`'s rotation under way, if there is one.
    pub fn token_rotation(&self, id: GatewayId) -> Result<Option<Rotation>, DbError> {
        let Some(blob) = self.get_secret(&name(id))? else {
            return Ok(None);
        };
        let plain = self.cipher.decrypt(&blob, &aad(id))?;
        let s: Sealed =
            serde_json::from_slice(&plain).map_err(|_| DbError::Damaged("a token rotation"))?;
        Ok(Some(Rotation {
            old: s.old.map(SecretString::from),
            new: SecretString::from(s.new),
        }))
    }

    /// Ends gateway `id`'s rotation record.
    pub fn end_token_rotation(&self, id: GatewayId) -> Result<(), DbError> {
        let mut conn = self.conn()?;
        diesel::delete(secrets::table.find(name(id))).execute(&mut conn)?;
        Ok(())
    }

    /// The gateways with a rotation on record (a daemon stopped in the middle of one).
    pub fn token_rotations(&self) -> Result<Vec<GatewayId>, DbError> {
        let mut conn = self.conn()?;
        let names: Vec<String> = secrets::table
            .filter(secrets::name.like(format!("{PREFIX}%")))
            .select(secrets::name)
            .load(&mut conn)?;
        Ok(names
            .iter()
            .filter_map(|n| n.strip_prefix(PREFIX)?.parse::<i64>().ok())
            .filter_map(|n| GatewayId::try_from(n).ok())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_support::sqlite_store;

    #[test]
    fn a_rotation_is_kept_encrypted_until_it_ends() {
        let (store, _dir) = sqlite_store();
        let id = GatewayId(7);
        store
            .begin_token_rotation(
                id,
                &Rotation {
                    old: Some("old-token".to_owned().into()),
                    new: "new-token".to_owned().into(),
                },
            )
            .unwrap();
        assert_eq!(store.token_rotations().unwrap(), [id]);
        let raw = store.get_secret(&name(id)).unwrap().unwrap();
        assert!(
            !String::from_utf8_lossy(&raw).contains("new-token"),
            "encrypted"
        );
        let r = store.token_rotation(id).unwrap().unwrap();
        assert_eq!(r.new.expose_secret(), "new-token");
        assert_eq!(r.old.unwrap().expose_secret(), "old-token");
        // Bound to its gateway: copied under another's name it does not decrypt.
        store.put_secret(&name(GatewayId(8)), &raw).unwrap();
        assert!(store.token_rotation(GatewayId(8)).is_err());
        store.end_token_rotation(id).unwrap();
        assert_eq!(store.token_rotation(id).unwrap().map(|_| ()), None);
    }
}
