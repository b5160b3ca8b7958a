//! The gateway settings an operator changes one at a time — its labels (a merge, as a
//! compare-and-set) and its maintenance window (a conditional end) — behind the store's trait
//! methods of the same purpose.

use diesel::prelude::*;
use serde_json::json;

use super::super::schema::gateways;
use super::super::{Store, unix_now};
use gateway_supervisor_actors::labels::{LabelPatch, Labels};
use gateway_supervisor_actors::model::{Caller, GatewayId, GatewayRecord, Maintenance};
use gateway_supervisor_actors::store::StoreError;

/// How often a label change is merged again over a concurrent one before it gives up.
const LABEL_ATTEMPTS: usize = 8;

/// Labels as stored: a JSON object of strings.
pub(super) fn labels_json(labels: &Labels) -> String {
    serde_json::to_string(labels).unwrap_or_else(|_| "{}".to_owned())
}

impl Store {
    pub(super) fn write_maintenance(
        &self,
        id: GatewayId,
        maintenance: Option<&Maintenance>,
        expired_by: Option<i64>,
        by: &Caller,
    ) -> Result<Option<GatewayRecord>, StoreError> {
        let (action, details) = match maintenance {
            Some(m) => (
                "gateway.maintenance",
                json!({"reason": m.reason, "until": m.until}),
            ),
            None => (
                if expired_by.is_some() {
                    "gateway.maintenance.expired"
                } else {
                    "gateway.maintenance.end"
                },
                json!({}),
            ),
        };
        let set = (
            gateways::maintenance_reason.eq(maintenance.map(|m| m.reason.clone())),
            gateways::maintenance_by.eq(maintenance.map(|m| m.by.clone())),
            gateways::maintenance_since.eq(maintenance.map(|m| m.since)),
            gateways::maintenance_until.eq(maintenance.and_then(|m| m.until)),
            gateways::updated_at.eq(unix_now()),
        );
        let written = self.audited_update(id, by, action, &details, |c| match expired_by {
            Some(now) => diesel::update(
                gateways::table
                    .find(id)
                    .filter(gateways::maintenance_until.le(now)),
            )
            .set(set)
            .execute(c),
            None => diesel::update(gateways::table.find(id)).set(set).execute(c),
        });
        match written {
            Ok(record) => Ok(Some(record)),
            // Not expired (extended, or ended meanwhile): nothing to do.
            Err(StoreError::NotFound(_)) if expired_by.is_some() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) fn merge_labels(
        &self,
        id: GatewayId,
        patch: &LabelPatch,
        by: &Caller,
    ) -> Result<GatewayRecord, StoreError> {
        // A compare-and-set on the stored text: another instance's change between the read and
        // the write makes the write match no row, and the merge is done again over it.
        for _ in 0..LABEL_ATTEMPTS {
            let stored: String = {
                let mut conn = self.conn_or_err()?;
                gateways::table
                    .find(id)
                    .select(gateways::labels)
                    .first(&mut *conn)
                    .optional()
                    .map_err(StoreError::backend)?
                    .ok_or(StoreError::NotFound(id))?
            };
            let current: Labels = serde_json::from_str(&stored).unwrap_or_default();
            let labels = current.patched(patch)?;
            let details = json!({"patch": patch, "labels": labels});
            let written = labels_json(&labels);
            match self.audited_update(id, by, "gateway.labels", &details, |c| {
                diesel::update(
                    gateways::table
                        .find(id)
                        .filter(gateways::labels.eq(&stored)),
                )
                .set((
                    gateways::labels.eq(&written),
                    gateways::updated_at.eq(unix_now()),
                ))
                .execute(c)
            }) {
                Err(StoreError::NotFound(_)) => continue,
                other => return other,
            }
        }
        Err(StoreError::backend(format!(
            "the labels of gateway {id} changed under {LABEL_ATTEMPTS} attempts in a row"
        )))
    }
}
