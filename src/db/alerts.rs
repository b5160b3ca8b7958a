//! The webhook delivery log: one row per alert, written before the first attempt and updated
//! after the last, so an alert the daemon could not deliver is on record with its error.

use diesel::prelude::*;
use gateway_supervisor_actors::model::GatewayId;
use serde::Serialize;

use super::schema::alert_deliveries;
use super::{DbError, Store, unix_now};
use crate::domain::DeliveryStatus;

/// Rows kept (older ones are pruned as new ones come).
const KEPT: i64 = 10_000;

#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = alert_deliveries)]
pub struct DeliveryRow {
    /// `alert_` and 24 hex digits; also the `X-Gateway-Supervisor-Delivery` header.
    pub id: String,
    pub kind: String,
    /// firing | resolved
    pub state: String,
    pub gateway_id: Option<GatewayId>,
    pub summary: String,
    #[diesel(deserialize_as = String)]
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A new row's fields.
pub struct NewDelivery<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub state: &'a str,
    pub gateway_id: Option<GatewayId>,
    pub summary: &'a str,
}

impl Store {
    /// Records an alert about to be delivered (`pending`), pruning the oldest rows.
    pub fn insert_delivery(&self, new: &NewDelivery<'_>) -> Result<(), DbError> {
        let mut conn = self.conn()?;
        let now = unix_now();
        diesel::insert_into(alert_deliveries::table)
            .values((
                alert_deliveries::id.eq(new.id),
                alert_deliveries::kind.eq(new.kind),
                alert_deliveries::state.eq(new.state),
                alert_deliveries::gateway_id.eq(new.gateway_id),
                alert_deliveries::summary.eq(new.summary),
                alert_deliveries::status.eq(DeliveryStatus::Pending.as_str()),
                alert_deliveries::attempts.eq(0i64),
                alert_deliveries::created_at.eq(now),
                alert_deliveries::updated_at.eq(now),
            ))
            .execute(&mut conn)?;
        let oldest_kept: Option<i64> = alert_deliveries::table
            .select(alert_deliveries::created_at)
            .order(alert_deliveries::created_at.desc())
            .offset(KEPT)
            .first(&mut conn)
            .optional()?;
        if let Some(cut) = oldest_kept {
            diesel::delete(alert_deliveries::table.filter(alert_deliveries::created_at.le(cut)))
                .execute(&mut conn)?;
        }
        Ok(())
    }

    /// The outcome after an attempt.
    pub fn update_delivery(
        &self,
        id: &str,
        status: DeliveryStatus,
        attempts: i64,
        last_error: Option<&str>,
    ) -> Result<(), DbError> {
        let mut conn = self.conn()?;
        diesel::update(alert_deliveries::table.find(id))
            .set((
                alert_deliveries::status.eq(status.as_str()),
                alert_deliveries::attempts.eq(attempts),
                alert_deliveries::last_error.eq(last_error),
                alert_deliveries::updated_at.eq(unix_now()),
            ))
            .execute(&mut conn)?;
        Ok(())
    }

    /// The newest deliveries first.
    pub fn deliveries(&self, limit: i64) -> Result<Vec<DeliveryRow>, DbError> {
        let mut conn = self.conn()?;
        Ok(alert_deliveries::table
            .order((
                alert_deliveries::created_at.desc(),
                alert_deliveries::id.desc(),
            ))
            .limit(limit)
            .select(DeliveryRow::as_select())
            .load(&mut conn)?)
    }
}
