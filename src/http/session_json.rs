//! A session as the API shows it, and a listing of them (`GET /api/sessions`): the bodies the
//! handler answers and the list cache keeps.

use gateway_supervisor_actors::model::GatewayId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use gateway_supervisor_actors::protocol::sessions::SessionEntry;

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SessionJson {
    pub key: String,
    pub agent: Option<String>,
    pub model: Option<String>,
    /// active | paused | completed
    pub status: String,
    /// A run is in progress.
    pub running: bool,
    #[serde(rename = "totalTokens")]
    pub total_tokens: i64,
    /// Milliseconds, as the gateway reports it.
    #[serde(rename = "updatedAt")]
    pub updated_at: Option<i64>,
    pub gateway_id: GatewayId,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionJson>,
    /// Sessions that matched the filter, listed or not.
    pub total: usize,
    /// More matched than `limit` allowed: `sessions` is the newest `limit` of `total`.
    pub truncated: bool,
    /// In a cluster: instances that did not give their part in time (their gateways' sessions
    /// are missing from this answer). Empty when the listing is complete.
    #[serde(default)]
    pub unreachable_instances: Vec<String>,
}

impl From<SessionEntry> for SessionJson {
    fn from(s: SessionEntry) -> Self {
        SessionJson {
            key: s.key,
            agent: s.agent,
            model: s.model,
            status: s.status.as_str().to_owned(),
            running: s.running,
            total_tokens: s.total_tokens,
            updated_at: s.updated_at,
            gateway_id: s.gateway_id,
        }
    }
}
