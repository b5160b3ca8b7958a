//! Config rollouts as stored beside their operation (docs/design.md, *Fleet configuration*):
//! the patch fixed when the rollout starts (its secret values encrypted, bound to the
//! operation's id), and each gateway's values from before the rollout wrote to it (encrypted,
//! bound to the operation and the gateway: they may hold secrets), which a revert puts back.
//! Only ciphertext reaches the database. What the patch means is the `fleet_config` module's.

use diesel::prelude::*;

use super::operations::{NewOperationError, Operation};
use super::schema::{config_rollout_saved, config_rollouts, operations};
use super::{DbError, Store, audit};
use crate::domain::OperationId;
use crate::domain::operation::{GatewayProgress, OperationKind, OperationParams, OperationState};
use crate::secrets::Cipher;
use gateway_supervisor_actors::model::{Caller, GatewayId};

/// A rollout's patch; `secrets` is the secret leaves' JSON in clear (only in memory).
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutRecord {
    /// The profile it rolls out, when it does.
    pub profile: Option<String>,
    pub selector: String,
    /// The patch, secrets as the redaction marker.
    pub patch: String,
    pub secrets: Option<String>,
    pub replace_paths: String,
    pub note: Option<String>,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = config_rollouts)]
pub(super) struct RolloutRow {
    operation_id: String,
    profile: Option<String>,
    selector: String,
    patch: String,
    secrets_enc: Option<Vec<u8>>,
    replace_paths: String,
    note: Option<String>,
}

fn aad(operation_id: &str) -> Vec<u8> {
    format!("config-rollout:{operation_id}").into_bytes()
}

fn saved_aad(operation_id: &str, gateway_id: GatewayId) -> Vec<u8> {
    format!("config-rollout-saved:{operation_id}:{gateway_id}").into_bytes()
}

impl RolloutRow {
    /// The row for rollout `operation_id`, its secrets encrypted.
    pub(super) fn sealed(
        cipher: &Cipher,
        operation_id: &str,
        r: &RolloutRecord,
    ) -> Result<Self, DbError> {
        Ok(RolloutRow {
            operation_id: operation_id.to_owned(),
            profile: r.profile.clone(),
            selector: r.selector.clone(),
            patch: r.patch.clone(),
            secrets_enc: r
                .secrets
                .as_deref()
                .map(|s| cipher.encrypt(s.as_bytes(), &aad(operation_id)))
                .transpose()?,
            replace_paths: r.replace_paths.clone(),
            note: r.note.clone(),
        })
    }
}

/// How an operator steers a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steer {
    Pause,
    Resume,
    Promote,
}

impl Steer {
    /// The states it applies in, and the state it leaves.
    fn moves(self) -> (&'static [OperationState], OperationState) {
        use OperationState::{AwaitingPromotion, Paused, Running};
        match self {
            Steer::Pause => (&[Running, AwaitingPromotion], Paused),
            Steer::Resume => (&[Paused], Running),
            Steer::Promote => (&[AwaitingPromotion, Paused], Running),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Steer::Pause => "pause",
            Steer::Resume => "resume",
            Steer::Promote => "promote",
        }
    }
}

impl Store {
    /// Records a new config rollout: the operation (of `kind`) and its patch (`rollout`, its
    /// secrets encrypted) in one transaction.
    pub fn insert_config_rollout(
        &self,
        id: &OperationId,
        kind: OperationKind,
        params: &OperationParams,
        progress: &[GatewayProgress],
        by: &Caller,
        rollout: &RolloutRecord,
    ) -> Result<Operation, NewOperationError> {
        let row = RolloutRow::sealed(&self.cipher, id.as_str(), rollout)?;
        self.insert_operation_with(id, kind, (params, progress), by, |conn| {
            diesel::insert_into(config_rollouts::table)
                .values(&row)
                .execute(conn)?;
            Ok(())
        })
    }

    /// Rollout `operation_id`'s patch, `None` when there is none.
    pub fn config_rollout(
        &self,
        operation_id: &OperationId,
    ) -> Result<Option<RolloutRecord>, DbError> {
        let operation_id = operation_id.as_str();
        let mut conn = self.conn()?;
        let Some(row) = config_rollouts::table
            .find(operation_id)
            .select(RolloutRow::as_select())
            .first(&mut conn)
            .optional()?
        else {
            return Ok(None);
        };
        let secrets = match &row.secrets_enc {
            Some(blob) => Some(
                String::from_utf8(self.cipher.decrypt(blob, &aad(operation_id))?)
                    .map_err(|_| DbError::Damaged("a config rollout's secrets are not text"))?,
            ),
            None => None,
        };
        Ok(Some(RolloutRecord {
            profile: row.profile,
            selector: row.selector,
            patch: row.patch,
            secrets,
            replace_paths: row.replace_paths,
            note: row.note,
        }))
    }

    /// Saves gateway `gateway_id`'s values from before rollout `operation_id` writes to it
    /// (`previous`: JSON, encrypted here), over any saved before.
    pub fn save_rollout_previous(
        &self,
        operation_id: &OperationId,
        gateway_id: GatewayId,
        previous: &str,
    ) -> Result<(), DbError> {
        let operation_id = operation_id.as_str();
        let blob = self
            .cipher
            .encrypt(previous.as_bytes(), &saved_aad(operation_id, gateway_id))?;
        let now = gateway_supervisor_actors::unix_now_ms();
        let mut conn = self.conn()?;
        crate::db::write_tx::<_, diesel::result::Error, _>(&mut conn, |c| {
            let key = (operation_id, gateway_id);
            let updated = diesel::update(config_rollout_saved::table.find(key))
                .set((
                    config_rollout_saved::previous_enc.eq(&blob),
                    config_rollout_saved::saved_at_ms.eq(now),
                ))
                .execute(c)?;
            if updated == 0 {
                diesel::insert_into(config_rollout_saved::table)
                    .values((
                        config_rollout_saved::operation_id.eq(operation_id),
                        config_rollout_saved::gateway_id.eq(gateway_id),
                        config_rollout_saved::previous_enc.eq(&blob),
                        config_rollout_saved::saved_at_ms.eq(now),
                    ))
                    .execute(c)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Gateway `gateway_id`'s values from before rollout `operation_id` wrote to it (JSON).
    pub fn rollout_previous(
        &self,
        operation_id: &OperationId,
        gateway_id: GatewayId,
    ) -> Result<Option<String>, DbError> {
        let operation_id = operation_id.as_str();
        let mut conn = self.conn()?;
        let blob: Option<Vec<u8>> = config_rollout_saved::table
            .find((operation_id, gateway_id))
            .select(config_rollout_saved::previous_enc)
            .first(&mut conn)
            .optional()?;
        blob.map(|b| {
            let clear = self
                .cipher
                .decrypt(&b, &saved_aad(operation_id, gateway_id))?;
            String::from_utf8(clear)
                .map_err(|_| DbError::Damaged("a rollout's saved values are not text"))
        })
        .transpose()
    }

    /// An operator's pause, resume or promote of rollout `id`, audited; `params` (a promote's,
    /// marked promoted) written with it. The operation as it is after; `Ok(None)` when there is
    /// none; unchanged when it was not in a state the move applies in.
    pub fn steer_operation(
        &self,
        id: &OperationId,
        steer: Steer,
        params: &OperationParams,
        by: &Caller,
    ) -> Result<Option<Operation>, DbError> {
        let (from, to) = steer.moves();
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let params_text = serde_json::to_string(&params.record())
            .map_err(|_| DbError::Damaged("an operation that cannot be written"))?;
        let mut conn = self.conn()?;
        let moved = crate::db::write_tx::<bool, DbError, _>(&mut conn, |c| {
            let moved = diesel::update(
                operations::table
                    .filter(operations::id.eq(id.as_str()))
                    .filter(operations::state.eq_any(&from)),
            )
            .set((
                operations::state.eq(to.as_str()),
                operations::params.eq(&params_text),
                operations::updated_at.eq(super::unix_now()),
                operations::version.eq(operations::version + 1),
            ))
            .execute(c)?;
            if moved == 1 {
                audit::record(
                    c,
                    by,
                    &format!("operation.{}", steer.as_str()),
                    "operation",
                    Some(id.to_string()),
                    None,
                )?;
            }
            Ok(moved == 1)
        })?;
        tracing::debug!(
            operation = %id,
            steer = steer.as_str(),
            moved,
            "rollout steered"
        );
        self.operation(id)
    }
}
