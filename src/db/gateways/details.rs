//! What an update of a gateway changed, for its audit row.

use serde_json::json;

use gateway_supervisor_actors::model::GatewayPatch;

/// What an update changed, for its audit row (never a secret: a token is "changed" or
/// "removed"). The patch is destructured whole, so a field added to it cannot be left out.
pub(super) fn patch_details(patch: &GatewayPatch) -> serde_json::Value {
    let GatewayPatch {
        name,
        host,
        port,
        tls,
        allow_insecure_tls,
        token,
        is_primary,
        status,
        last_seen,
        latency,
        sessions_count,
        agents_count,
        workspace_root,
        disable_device_pairing,
        gateway_agent_id,
        approvals,
        labels,
    } = patch;
    let token = token
        .as_ref()
        .map(|t| if t.is_some() { "changed" } else { "removed" });
    let fields = [
        ("name", name.as_ref().map(|v| json!(v))),
        ("host", host.as_ref().map(|v| json!(v))),
        ("port", port.map(|v| json!(v))),
        ("tls", tls.map(|v| json!(v))),
        ("allow_insecure_tls", allow_insecure_tls.map(|v| json!(v))),
        ("token", token.map(|v| json!(v))),
        ("is_primary", is_primary.map(|v| json!(v))),
        ("status", status.map(|v| json!(v.as_str()))),
        ("last_seen", last_seen.map(|v| json!(v))),
        ("latency", latency.map(|v| json!(v))),
        ("sessions_count", sessions_count.map(|v| json!(v))),
        ("agents_count", agents_count.map(|v| json!(v))),
        ("workspace_root", workspace_root.as_ref().map(|v| json!(v))),
        (
            "disable_device_pairing",
            disable_device_pairing.map(|v| json!(v)),
        ),
        (
            "gateway_agent_id",
            gateway_agent_id.as_ref().map(|v| json!(v)),
        ),
        ("approvals", approvals.map(|v| json!(v))),
        ("labels", labels.as_ref().map(|v| json!(v))),
    ];
    serde_json::Value::Object(
        fields
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_owned(), v?)))
            .collect(),
    )
}
