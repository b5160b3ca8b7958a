//! A gateway as the API shows it: its record, the link's connection and breaker, and whether it
//! is suspended. The token never leaves: `"--------"` when one is set.

use serde::Serialize;
use utoipa::ToSchema;

use gateway_supervisor_actors::model::{GatewayId, GatewayView};

const REDACTED: &str = "--------";

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionJson {
    /// connecting | handshaking | connected | backoff | halted; null until the link reports.
    pub state: Option<String>,
    pub protocol: Option<u32>,
    pub server_version: Option<String>,
    /// The gateway process the link reaches (`hello-ok.server.bootId`; 2026.9 releases name
    /// it, older ones do not): a restart changes it. Pass it as `expected_boot_id` to act on
    /// this process only.
    pub boot_id: Option<String>,
    /// Its build (`hello-ok.server.buildId`, 2026.9), where the release names it.
    pub build_id: Option<String>,
    /// What it says it can do beyond its methods (`hello-ok.features.capabilities`, 2026.9;
    /// empty for older releases and until the link connects).
    pub capabilities: Vec<String>,
    pub last_error: Option<LinkErrorJson>,
    pub pairing_request_id: Option<String>,
    /// What the last probe found wrong while the socket and the `health` RPC answer (e.g. HTTP
    /// `/health` answering 500): the gateway reads `degraded`, not `offline`.
    pub probe_error: Option<String>,
    /// When the gateway last sent anything (a frame of any kind, a pong included), Unix
    /// seconds; null before its first frame. Kept while the link is down: when it was last
    /// heard.
    pub last_frame_at: Option<i64>,
    /// Seconds since that frame, as of this response (lists are at most a second old). A
    /// connected gateway that reads `online` but whose age grows past a few heartbeats is not
    /// answering: the link will declare it offline after `gateways.missed_pongs` heartbeats.
    pub last_frame_age_s: Option<i64>,
    /// The gateway's own suspension phase as it reports it (2026.9: `accepting`, `preparing`,
    /// `draining`, `prepared`), whoever suspended it — this daemon (`suspended`, or a drain
    /// operation) or another client of the gateway, which this daemon cannot release (the
    /// gateway names neither the suspension nor its owner; it lapses 120 s after its client
    /// last renewed it). Null for releases that do not report it.
    pub suspension: Option<String>,
    /// This link's `connect` asked for `caps: ["approvals"]`: the gateway sends this daemon
    /// its exec and plugin approvals and waits for its answer (see the gateway's `approvals`).
    pub approval_client: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkErrorJson {
    pub code: String,
    pub message: String,
    pub retryable: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BreakerJson {
    /// closed | open | half_open
    pub state: String,
    pub consecutive_failures: u32,
}

/// A gateway as the API shows it. The token is never returned: `"--------"` when set, `""`
/// when not.
#[derive(Debug, Serialize, ToSchema)]
pub struct GatewayJson {
    pub id: GatewayId,
    pub name: String,
    pub host: String,
    pub port: u16,
    /// `ws://host:port` or `wss://host:port`.
    pub url: String,
    pub token: &'static str,
    pub token_set: bool,
    pub is_primary: bool,
    pub acting_primary: bool,
    /// unknown | online | degraded | timeout | offline
    pub status: String,
    /// When the gateway was last heard from (Unix seconds). In a cluster, for a gateway
    /// another instance links and reports reachable: that instance's latest heartbeat (it
    /// reports a gateway it stops hearing unreachable at once).
    pub last_seen: Option<i64>,
    pub latency: Option<i64>,
    pub sessions_count: i64,
    pub agents_count: i64,
    pub allow_insecure_tls: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub connection: ConnectionJson,
    pub breaker: BreakerJson,
    /// Suspended through this daemon (`POST /api/gateways/{id}/suspend`): takes no spawns, does
    /// not act as primary, until resumed. Survives a restart of the daemon.
    pub suspended: bool,
    /// Cordoned (`POST /api/gateways/{id}/cordon`): its work goes on, it takes no new spawns
    /// and does not act as primary, until uncordoned. Survives a restart of the daemon.
    pub cordoned: bool,
    /// The gateway's own approvals setting: `true`/`false`, or `null` to follow the fleet's
    /// `approvals.enabled`. What the live link does is `connection.approval_client`.
    pub approvals: Option<bool>,
    /// Its labels (`{"region": "eu"}`), which selectors pick it by.
    #[schema(value_type = Object)]
    pub labels: gateway_supervisor_actors::labels::Labels,
    /// In maintenance (`POST /api/gateways/{id}/maintenance`): `{reason, by, since, until}`
    /// (Unix seconds; `until` null: until ended); `null` when not.
    #[schema(value_type = Option<Object>)]
    pub maintenance: Option<gateway_supervisor_actors::model::Maintenance>,
}

impl From<&GatewayView> for GatewayJson {
    fn from(v: &GatewayView) -> Self {
        let r = &v.record;
        let last_frame = v.last_frame_ms();
        let now_ms = gateway_supervisor_actors::unix_now_ms();
        let breaker_state = serde_json::to_value(v.breaker.state)
            .ok()
            .and_then(|s| s.as_str().map(str::to_owned))
            .unwrap_or_default();
        GatewayJson {
            id: r.id,
            name: r.name.clone(),
            host: r.host.clone(),
            port: r.port,
            url: r.url(),
            token: if r.has_token() { REDACTED } else { "" },
            token_set: r.has_token(),
            is_primary: r.is_primary,
            acting_primary: v.acting_primary,
            status: r.status.as_str().to_owned(),
            last_seen: v.last_seen(),
            latency: v.latency(),
            sessions_count: r.sessions_count,
            agents_count: r.agents_count,
            allow_insecure_tls: r.allow_insecure_tls,
            created_at: r.created_at,
            updated_at: r.updated_at,
            connection: ConnectionJson {
                state: v.connection.state.map(|p| p.as_str().to_owned()),
                protocol: v.connection.protocol,
                server_version: v.connection.server_version.clone(),
                boot_id: v.connection.boot_id.clone(),
                build_id: v.connection.build_id.clone(),
                capabilities: v.connection.capabilities.to_vec(),
                last_error: v.connection.last_error.as_ref().map(|e| LinkErrorJson {
                    code: e.code.clone(),
                    message: e.message.clone(),
                    retryable: e.retryable,
                }),
                pairing_request_id: v.connection.pairing_request_id.clone(),
                probe_error: v.connection.probe_error.clone(),
                last_frame_at: last_frame.map(|ms| ms / 1000),
                last_frame_age_s: last_frame.map(|ms| (now_ms - ms).max(0) / 1000),
                suspension: v.connection.suspension.map(str::to_owned),
                approval_client: v.connection.approval_client,
            },
            breaker: BreakerJson {
                state: breaker_state,
                consecutive_failures: v.breaker.consecutive_failures,
            },
            suspended: r.suspension_id.is_some(),
            cordoned: r.cordoned,
            approvals: r.approvals,
            labels: r.labels.clone(),
            maintenance: r.maintenance.as_deref().cloned(),
        }
    }
}

/// One gateway, as `GET /api/gateways/{id}` and every action on one answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct GatewayEnvelope {
    pub gateway: GatewayJson,
}
