//! Config profiles and each gateway's judged drift, as stored (docs/design.md, *Fleet
//! configuration*). A profile's secret values are encrypted here on the way in, bound to the
//! profile's name, and decrypted on the way out: only ciphertext reaches the database. What
//! the rows mean (merge patches, selectors, drift states) is the `fleet_config` module's.

use diesel::prelude::*;

use super::schema::{config_drift, config_profiles};
use super::{DbError, Store, audit};
use gateway_supervisor_actors::model::{Caller, GatewayId};

/// A profile as the store keeps it; `secrets` is the secret leaves' JSON in clear (only in
/// memory).
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileRecord {
    pub name: String,
    pub selector: String,
    pub patch: String,
    pub secrets: Option<String>,
    pub replace_paths: String,
    pub note: Option<String>,
    pub updated_at_ms: i64,
    pub updated_by: String,
}

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = config_profiles)]
#[diesel(treat_none_as_null = true)]
struct Row {
    name: String,
    selector: String,
    patch: String,
    secrets_enc: Option<Vec<u8>>,
    replace_paths: String,
    note: Option<String>,
    updated_at_ms: i64,
    updated_by: String,
}

/// A gateway's drift as last judged.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = config_drift)]
pub struct DriftRecord {
    pub gateway_id: GatewayId,
    pub state: String,
    /// The judgement's JSON.
    pub detail: String,
    pub checked_at_ms: i64,
}

fn aad(name: &str) -> Vec<u8> {
    format!("config-profile:{name}").into_bytes()
}

impl Store {
    fn profile_of(&self, row: Row) -> Result<ProfileRecord, DbError> {
        let secrets = match &row.secrets_enc {
            Some(blob) => Some(
                String::from_utf8(self.cipher.decrypt(blob, &aad(&row.name))?)
                    .map_err(|_| DbError::Damaged("a config profile's secrets are not text"))?,
            ),
            None => None,
        };
        Ok(ProfileRecord {
            name: row.name,
            selector: row.selector,
            patch: row.patch,
            secrets,
            replace_paths: row.replace_paths,
            note: row.note,
            updated_at_ms: row.updated_at_ms,
            updated_by: row.updated_by,
        })
    }

    pub fn config_profiles(&self) -> Result<Vec<ProfileRecord>, DbError> {
        let mut conn = self.conn()?;
        let rows = config_profiles::table
            .order(config_profiles::name)
            .select(Row::as_select())
            .load(&mut conn)?;
        rows.into_iter().map(|r| self.profile_of(r)).collect()
    }

    pub fn config_profile(&self, name: &str) -> Result<Option<ProfileRecord>, DbError> {
        let mut conn = self.conn()?;
        let row = config_profiles::table
            .find(name)
            .select(Row::as_select())
            .first(&mut conn)
            .optional()?;
        row.map(|r| self.profile_of(r)).transpose()
    }

    /// Creates or replaces the profile, with its audit row (`details`: never a secret), in one
    /// transaction. Whether it was created.
    pub fn put_config_profile(
        &self,
        p: &ProfileRecord,
        by: &Caller,
        details: &serde_json::Value,
    ) -> Result<bool, DbError> {
        let secrets_enc = p
            .secrets
            .as_deref()
            .map(|s| self.cipher.encrypt(s.as_bytes(), &aad(&p.name)))
            .transpose()?;
        let row = Row {
            name: p.name.clone(),
            selector: p.selector.clone(),
            patch: p.patch.clone(),
            secrets_enc,
            replace_paths: p.replace_paths.clone(),
            note: p.note.clone(),
            updated_at_ms: p.updated_at_ms,
            updated_by: p.updated_by.clone(),
        };
        let mut conn = self.conn()?;
        Ok(crate::db::write_tx::<_, diesel::result::Error, _>(
            &mut conn,
            |c| {
                let updated = diesel::update(config_profiles::table.find(&p.name))
                    .set(&row)
                    .execute(c)?;
                if updated == 0 {
                    diesel::insert_into(config_profiles::table)
                        .values(&row)
                        .execute(c)?;
                }
                audit::record(
                    c,
                    by,
                    "config.profile.put",
                    "config_profile",
                    Some(p.name.clone()),
                    Some(details),
                )?;
                Ok(updated == 0)
            },
        )?)
    }

    /// Deletes the profile, with its audit row; whether there was one.
    pub fn delete_config_profile(&self, name: &str, by: &Caller) -> Result<bool, DbError> {
        let mut conn = self.conn()?;
        Ok(crate::db::write_tx::<_, diesel::result::Error, _>(
            &mut conn,
            |c| {
                let n = diesel::delete(config_profiles::table.find(name)).execute(c)?;
                if n > 0 {
                    audit::record(
                        c,
                        by,
                        "config.profile.delete",
                        "config_profile",
                        Some(name.to_owned()),
                        None,
                    )?;
                }
                Ok(n > 0)
            },
        )?)
    }

    /// What changes when any profile changes (their count and the newest change): read
    /// often, so an instance sees another's edit within a tick.
    pub fn config_profiles_version(&self) -> Result<(i64, Option<i64>), DbError> {
        let mut conn = self.conn()?;
        let count: i64 = config_profiles::table.count().get_result(&mut conn)?;
        let newest: Option<i64> = config_profiles::table
            .select(diesel::dsl::max(config_profiles::updated_at_ms))
            .first(&mut conn)?;
        Ok((count, newest))
    }

    /// Records a gateway's judged drift (replacing the one before); the one before, if any.
    pub fn save_config_drift(&self, d: &DriftRecord) -> Result<Option<DriftRecord>, DbError> {
        let mut conn = self.conn()?;
        Ok(crate::db::write_tx::<_, diesel::result::Error, _>(
            &mut conn,
            |c| {
                let before = config_drift::table
                    .find(d.gateway_id)
                    .select(DriftRecord::as_select())
                    .first(c)
                    .optional()?;
                if before.is_some() {
                    diesel::update(config_drift::table.find(d.gateway_id))
                        .set(d)
                        .execute(c)?;
                } else {
                    diesel::insert_into(config_drift::table)
                        .values(d)
                        .execute(c)?;
                }
                Ok(before)
            },
        )?)
    }

    pub fn config_drift(&self) -> Result<Vec<DriftRecord>, DbError> {
        let mut conn = self.conn()?;
        Ok(config_drift::table
            .order(config_drift::gateway_id)
            .select(DriftRecord::as_select())
            .load(&mut conn)?)
    }

    /// The gateways a judgement is stored for.
    pub fn config_drift_gateways(&self) -> Result<Vec<GatewayId>, DbError> {
        let mut conn = self.conn()?;
        Ok(config_drift::table
            .select(config_drift::gateway_id)
            .load(&mut conn)?)
    }

    /// Forgets one gateway's judgement (no profile picks it now); whether there was one.
    pub fn forget_config_drift(&self, gateway_id: GatewayId) -> Result<bool, DbError> {
        let mut conn = self.conn()?;
        Ok(diesel::delete(config_drift::table.find(gateway_id)).execute(&mut conn)? > 0)
    }

    /// Forgets the drift of gateways no longer registered.
    pub fn prune_config_drift(&self) -> Result<usize, DbError> {
        use super::schema::gateways;
        let mut conn = self.conn()?;
        Ok(diesel::delete(config_drift::table.filter(diesel::dsl::not(
            config_drift::gateway_id.eq_any(gateways::table.select(gateways::id)),
        )))
        .execute(&mut conn)?)
    }
}
