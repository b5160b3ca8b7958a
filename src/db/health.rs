//! Reading the health history (the latency graph). Samples are written by the registry's
//! background writer and pruned after 24 h.

use diesel::prelude::*;
use gateway_supervisor_actors::model::GatewayId;
use serde::Serialize;

use super::schema::gateway_health_samples;
use super::{DbError, Store};

#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = gateway_health_samples)]
pub struct HealthSampleRow {
    #[serde(skip)]
    pub id: i64,
    pub gateway_id: GatewayId,
    /// Unix seconds.
    pub ts: i64,
    pub status: String,
    /// Milliseconds.
    pub latency: Option<i64>,
    pub error: Option<String>,
}

/// At most this many samples per request.
pub const HISTORY_LIMIT: i64 = 10_000;

impl Store {
    /// Oldest first, since `since` (Unix seconds), optionally for one gateway.
    pub fn health_history(
        &self,
        gateway_id: Option<GatewayId>,
        since: i64,
    ) -> Result<Vec<HealthSampleRow>, DbError> {
        let mut conn = self.conn()?;
        let mut query = gateway_health_samples::table
            .filter(gateway_health_samples::ts.ge(since))
            .into_boxed();
        if let Some(id) = gateway_id {
            query = query.filter(gateway_health_samples::gateway_id.eq(id));
        }
        Ok(query
            .order((
                gateway_health_samples::ts.asc(),
                gateway_health_samples::id.asc(),
            ))
            .limit(HISTORY_LIMIT)
            .select(HealthSampleRow::as_select())
            .load(&mut conn)?)
    }
}
