//! What a gateway does to apply a configuration change, as 2026.9.6's reload plan decides
//! (`config-reload-plan.ts`): which paths it applies in place and which restart it, and how its
//! `config.patch` answer says it restarted. A restart is a voluntary disruption, which the
//! disruption budgets must admit before the write (docs/design.md, *Config rollouts*).

use serde_json::Value;

/// Whether a `config.patch` answer says the gateway restarts to apply it: `restart` set (as
/// the gateway documents it), or `sentinel.payload.stats.requiresRestart` (what 2026.9.6
/// answers: captured, its reply has no `restart` field).
pub fn restarts(answer: &Value) -> bool {
    let documented = answer.get("restart").is_some_and(|r| !r.is_null());
    let said = answer
        .pointer("/sentinel/payload/stats/requiresRestart")
        .and_then(Value::as_bool)
        == Some(true);
    documented || said
}

/// `gateway.*` paths 2026.9.6 applies without a restart (`config-reload-plan.ts`).
const HOT_GATEWAY: [&str; 10] = [
    "gateway.http",
    "gateway.tools",
    "gateway.controlUi.enabled",
    "gateway.controlUi.allowedOrigins",
    "gateway.nodes",
    "gateway.auth.rateLimit",
    "gateway.auth.token",
    "gateway.roles",
    "gateway.remote",
    "gateway.reload",
];
/// Other paths whose change restarts it.
const RESTART_PATHS: [&str; 3] = ["mcp.apps", "secrets.egressProxy", "gateway.portals"];

/// Whether writing `patch` will restart a 2026.9.6 gateway (its reload plan): a voluntary
/// disruption, which the disruption budgets must admit before the write.
pub fn will_restart(patch: &serde_json::Map<String, Value>) -> bool {
    let under =
        |path: &str, prefix: &str| path == prefix || path.starts_with(&format!("{prefix}."));
    super::super::patch::leaves(patch).iter().any(|(path, _)| {
        let p = super::super::patch::dotted(path);
        RESTART_PATHS.iter().any(|r| under(&p, r))
            || (p.starts_with("gateway.") && !HOT_GATEWAY.iter().any(|h| under(&p, h)))
    })
}
