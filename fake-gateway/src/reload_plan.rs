//! Whether a changed config path restarts the gateway, as 2026.9.6 decides it for `gateway.*`
//! (`src/gateway/config-reload-plan.ts`: `CORE_RELOAD_POLICIES`, read from the package's
//! `dist/config-reload-plan-*.mjs`). A rule names a prefix (the path itself, or the path and a
//! `.`); the rule with the most segments wins; a `gateway.*` path no rule names restarts the
//! gateway. Paths outside `gateway.` are applied without a restart here, as the fake always did:
//! the real plan for them depends on the plugins a gateway loaded.

/// What a change to a path does to the running gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// Nothing: the setting is read when it is used (`gateway.remote`, `gateway.reload`).
    None,
    /// Applied to the running process.
    Hot,
    /// The process restarts to apply it.
    Restart,
}

/// 2026.9.6's rules under `gateway.`. `gateway.auth.token` is a restart in the table and hot as
/// a rotation under an unchanged auth mode (`canHotReloadGatewayAuthCredentials`), which is
/// every change of it the fake sees: its auth mode is always `token`.
const GATEWAY_RULES: &[(&str, Reload)] = &[
    ("gateway.remote", Reload::None),
    ("gateway.reload", Reload::None),
    ("gateway.auth.token", Reload::Hot),
    ("gateway.auth.password", Reload::Restart),
    ("gateway.portals", Reload::Restart),
    ("gateway.http.endpoints", Reload::Hot),
    (
        "gateway.http.securityHeaders.strictTransportSecurity",
        Reload::Hot,
    ),
    ("gateway.tools", Reload::Hot),
    ("gateway.cliAgents", Reload::Hot),
    ("gateway.controlUi.enabled", Reload::Hot),
    ("gateway.controlUi.environment", Reload::Hot),
    ("gateway.controlUi.communityInvite", Reload::Hot),
    ("gateway.controlUi.github", Reload::Hot),
    ("gateway.controlUi.sessionObserver", Reload::Hot),
    ("gateway.controlUi.embedSandbox", Reload::Hot),
    ("gateway.controlUi.allowExternalEmbedUrls", Reload::Hot),
    ("gateway.controlUi.automaticallyFetchFavicons", Reload::Hot),
    ("gateway.controlUi.experimental.customPlugins", Reload::Hot),
    ("gateway.controlUi.allowedOrigins", Reload::Hot),
    (
        "gateway.controlUi.dangerouslyAllowHostHeaderOriginFallback",
        Reload::Hot,
    ),
    ("gateway.nodes.browser", Reload::Hot),
    ("gateway.nodes.pairing", Reload::Hot),
    ("gateway.nodes.commands", Reload::Hot),
    ("gateway.nodes.pluginTools.enabled", Reload::Hot),
    ("gateway.nodes.allowSkills", Reload::Hot),
    ("gateway.push.apns.relay", Reload::Hot),
    ("gateway.terminal", Reload::Hot),
    ("gateway.auth.rateLimit", Reload::Hot),
    ("gateway.roles", Reload::Hot),
    ("gateway.trustedProxies", Reload::Hot),
    ("gateway.allowRealIpFallback", Reload::Hot),
    ("gateway.auth.allowTailscale", Reload::Hot),
    ("gateway.auth.identityScopes", Reload::Hot),
    ("gateway.auth.trustedProxy", Reload::Hot),
    ("gateway", Reload::Restart),
];

fn matches(path: &str, prefix: &str) -> bool {
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// What changing the leaf at `path` (dotted, in full) does.
pub fn reload_of(path: &str) -> Reload {
    GATEWAY_RULES
        .iter()
        .filter(|(prefix, _)| matches(path, prefix))
        .max_by_key(|(prefix, _)| prefix.split('.').count())
        .map_or(Reload::Hot, |(_, kind)| *kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remote_and_reload_settings_change_nothing_that_runs() {
        assert_eq!(reload_of("gateway.remote.url"), Reload::None);
        assert_eq!(reload_of("gateway.reload.mode"), Reload::None);
    }

    #[test]
    fn a_named_setting_is_hot_even_four_segments_deep() {
        assert_eq!(
            reload_of("gateway.http.endpoints.chatCompletions.enabled"),
            Reload::Hot
        );
        assert_eq!(
            reload_of("gateway.controlUi.experimental.customPlugins"),
            Reload::Hot
        );
        assert_eq!(reload_of("gateway.nodes.pluginTools.enabled"), Reload::Hot);
        assert_eq!(reload_of("gateway.auth.token"), Reload::Hot);
    }

    #[test]
    fn a_gateway_setting_no_rule_names_restarts_even_beside_a_hot_one() {
        for path in [
            "gateway.bind",
            "gateway.controlUi.basePath",
            "gateway.http.securityHeaders.contentSecurityPolicy",
            "gateway.nodes.pluginTools.allow",
            "gateway.auth.password",
            "gateway.auth.mode",
            "gateway.portals.x",
        ] {
            assert_eq!(reload_of(path), Reload::Restart, "{path}");
        }
    }

    #[test]
    fn a_prefix_matches_whole_segments_only() {
        assert_eq!(reload_of("gateway.toolsExtra"), Reload::Restart);
        assert_eq!(reload_of("gateway.remoteX"), Reload::Restart);
    }

    #[test]
    fn a_path_outside_the_gateway_is_applied() {
        assert_eq!(reload_of("agents.defaults.model.primary"), Reload::Hot);
        assert_eq!(reload_of("tools.exec.mode"), Reload::Hot);
    }
}
