//! `[sso]`: the web console's single sign-on through the company's OpenID Connect provider
//! (docs/design.md, *Single sign-on*). Off unless `issuer` is set; the API key login stays.
//!
//! ```toml
//! [sso]
//! issuer = "https://login.example.com/realms/platform"
//! client_id = "gateway-supervisor"
//! client_secret = "…"            # or GATEWAY_SUPERVISOR__SSO__CLIENT_SECRET
//! redirect_url = "https://supervisor.example.com/console/sso/callback"
//!
//! [[sso.groups]]                 # the first group the user is in decides
//! group = "platform-admins"
//! role = "admin"
//!
//! [[sso.groups]]
//! group = "team-a-operators"
//! role = "operator"
//! tenant = "team-a"
//! verbs = "read,spawn,session_control"
//! ```

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::auth::Role;
use crate::tenancy::{Reserved, Scope};

/// The most group mappings.
const MAX_GROUPS: usize = 256;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SsoConfig {
    /// The provider's issuer URL, exactly as its discovery document and ID tokens name it.
    /// HTTPS, or HTTP to a loopback address only. Unset: no single sign-on.
    pub issuer: Option<String>,
    pub client_id: String,
    /// The client's secret at the provider (sent with HTTP Basic to its token endpoint).
    #[serde(skip_serializing)]
    pub client_secret: Option<String>,
    /// This daemon's callback as the browser reaches it (`…/console/sso/callback`), registered
    /// at the provider.
    pub redirect_url: String,
    /// Asked of the provider besides `openid`.
    pub scopes: Vec<String>,
    /// The ID token claim that lists the user's groups.
    pub groups_claim: String,
    /// The sign-in button's words.
    pub button: String,
    /// The user's groups to a role and a scope: the first entry whose group the user is in.
    pub groups: Vec<GroupMapping>,
}

impl Default for SsoConfig {
    fn default() -> Self {
        SsoConfig {
            issuer: None,
            client_id: String::new(),
            client_secret: None,
            redirect_url: String::new(),
            scopes: vec!["profile".into(), "email".into(), "groups".into()],
            groups_claim: "groups".into(),
            button: "Sign in with single sign-on".into(),
            groups: Vec::new(),
        }
    }
}

/// One group of the provider's, and what its members may do: a role and a scope in the same
/// words as `keys create` takes them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupMapping {
    pub group: String,
    pub role: String,
    pub tenant: Option<String>,
    pub selector: Option<String>,
    /// Comma-separated verbs (`read,spawn`); unset: every verb the role has.
    pub verbs: Option<String>,
    /// Comma-separated agent ids; unset: every agent.
    pub agents: Option<String>,
}

impl GroupMapping {
    /// The role and scope this mapping grants, under today's reserved labels.
    pub fn grant(&self, reserved: &Reserved) -> Result<(Role, Scope), String> {
        let role = self.role.parse::<Role>()?;
        let scope = Scope::new(
            self.tenant.as_deref(),
            self.selector.as_deref(),
            self.verbs.as_deref(),
            self.agents.as_deref(),
            reserved,
        )
        .map_err(|e| e.to_string())?;
        Ok((role, scope))
    }
}

impl SsoConfig {
    pub fn enabled(&self) -> bool {
        self.issuer.is_some()
    }

    pub fn check(&self, reserved: &Reserved) -> Result<(), ConfigError> {
        let Some(issuer) = &self.issuer else {
            return Ok(());
        };
        let bad = |what: String| Err(ConfigError::Invalid(format!("sso.{what}")));
        for (name, url) in [("issuer", issuer), ("redirect_url", &self.redirect_url)] {
            if !super::secure_or_loopback(url) {
                return bad(format!(
                    "{name}: an https:// URL (or http:// to a loopback address), not `{}`",
                    gateway_supervisor_actors::bounded::text(url, 200)
                ));
            }
        }
        if !self.redirect_url.ends_with("/console/sso/callback") {
            return bad("redirect_url: must end with /console/sso/callback".into());
        }
        if self.client_id.is_empty() || self.client_id.len() > 255 {
            return bad("client_id: set it to the client's id at the provider".into());
        }
        if self.client_secret.as_deref().is_none_or(str::is_empty) {
            return bad("client_secret: set it (or GATEWAY_SUPERVISOR__SSO__CLIENT_SECRET)".into());
        }
        if self.groups_claim.is_empty() || self.groups_claim.len() > 128 {
            return bad("groups_claim: a claim name".into());
        }
        if self.scopes.len() > 32 || self.scopes.iter().any(|s| !is_token(s)) {
            return bad("scopes: at most 32 scope names (letters, digits, `_-.:/`)".into());
        }
        if self.button.is_empty() || self.button.chars().count() > 64 {
            return bad("button: 1 to 64 characters".into());
        }
        if self.groups.is_empty() || self.groups.len() > MAX_GROUPS {
            return bad(format!(
                "groups: map 1 to {MAX_GROUPS} of the provider's groups to a role"
            ));
        }
        for (i, g) in self.groups.iter().enumerate() {
            if g.group.is_empty() || g.group.len() > 256 {
                return bad(format!("groups[{i}].group: a group name"));
            }
            if let Err(e) = g.grant(reserved) {
                return bad(format!("groups[{i}] (`{}`): {e}", g.group));
            }
        }
        Ok(())
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(issuer: &str) -> SsoConfig {
        SsoConfig {
            issuer: Some(issuer.into()),
            client_id: "gs".into(),
            client_secret: Some("s".into()),
            redirect_url: "https://gs.example.com/console/sso/callback".into(),
            groups: vec![GroupMapping {
                group: "team-a".into(),
                role: "operator".into(),
                tenant: Some("team-a".into()),
                selector: None,
                verbs: Some("read,spawn".into()),
                agents: None,
            }],
            ..SsoConfig::default()
        }
    }

    #[test]
    fn off_by_default_and_checked_when_on() {
        let reserved = Reserved::default();
        assert!(SsoConfig::default().check(&reserved).is_ok());
        assert!(
            on("https://login.example.com/realm")
                .check(&reserved)
                .is_ok()
        );
        assert!(on("http://127.0.0.1:8080").check(&reserved).is_ok());
        assert!(on("http://[::1]:8080/x").check(&reserved).is_ok());
        for plain in [
            "http://login.example.com",
            "http://10.0.0.1",
            "ftp://x",
            "https://",
        ] {
            let e = on(plain).check(&reserved).unwrap_err().to_string();
            assert!(e.contains("sso.issuer"), "{plain}: {e}");
        }
        let mut no_secret = on("https://x");
        no_secret.client_secret = None;
        assert!(
            no_secret
                .check(&reserved)
                .unwrap_err()
                .to_string()
                .contains("client_secret")
        );
        let mut wrong_role = on("https://x");
        wrong_role.groups[0].role = "root".into();
        let e = wrong_role.check(&reserved).unwrap_err().to_string();
        assert!(e.contains("groups[0]") && e.contains("unknown role"), "{e}");
        let mut unreserved = on("https://x");
        unreserved.groups[0].selector = Some("team=a".into());
        let e = unreserved.check(&reserved).unwrap_err().to_string();
        assert!(e.contains("groups[0]"), "{e}");
        let mut none = on("https://x");
        none.groups.clear();
        assert!(
            none.check(&reserved)
                .unwrap_err()
                .to_string()
                .contains("sso.groups")
        );
    }
}
