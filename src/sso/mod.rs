//! The console's single sign-on: OpenID Connect's authorization code flow with PKCE against
//! the company's provider (docs/design.md, *Single sign-on*). Every check of what the provider
//! sends is the `openidconnect` crate's — the discovery document's issuer, the ID token's
//! signature against the provider's published keys, its issuer, audience, expiry and nonce —
//! not ours; what is ours is what a verified user may do: [`rule::admitting`] maps their
//! groups to a role and a scope (`[[sso.groups]]`).
//!
//! Three doors (`http/console_sso.rs`): `/console/sso/login` starts a sign-in (a redirect to
//! the provider, the sign-in's secrets in a cookie, [`pending`]); `/console/sso/callback`
//! finishes it — the code exchanged with the PKCE verifier, the ID token verified, a mapping
//! found — and sets the same console session cookie an API key's login sets, naming the user
//! and their group ([`crate::console_session::SsoUser`]); `/console/sso` tells the page
//! whether to show the button. A refusal names its reason in the daemon's log, never in the
//! page (which says only that sign-in failed).
//!
//! The provider's discovery document and keys are fetched at the first sign-in and kept for
//! [`METADATA_TTL`]; a provider that rotates its keys is read again then, or at once when an
//! ID token's key is not among those kept.

mod http;
pub mod pending;
mod rule;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IdToken, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse as _,
};
use subtle::ConstantTimeEq;

use crate::auth::{Principal, PrincipalKind};
use crate::config::SsoConfig;
use crate::console_session::SsoUser;
use crate::tenancy::Reserved;
use gateway_supervisor_actors::bounded;
pub use pending::Pending;

/// How long the provider's discovery document and keys are kept.
pub const METADATA_TTL: Duration = Duration::from_secs(300);
/// The most groups read of a user (the rest are not looked at).
const MAX_GROUPS: usize = 1000;

/// Why a sign-in was refused: each names what failed, with the provider's words bounded and
/// escaped. Logged; the page shows only that sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error("the provider's discovery document: {0}")]
    Discovery(String),
    #[error(
        "no sign-in in progress in this browser (its cookie is missing, altered or older than 10 minutes)"
    )]
    NoSignIn,
    #[error("the state the provider sent back is not this browser's sign-in")]
    StateMismatch,
    #[error("the provider answered the sign-in with an error: {0}")]
    Provider(String),
    #[error("the provider refused the code: {0}")]
    Exchange(String),
    #[error("the provider sent no ID token")]
    NoIdToken,
    #[error("the ID token was refused: {0}")]
    IdToken(String),
    #[error(
        "none of the user's groups is mapped in [[sso.groups]] (user `{user}`, groups {groups:?})"
    )]
    Unmapped { user: String, groups: Vec<String> },
}

/// What the provider sent back to the callback.
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// A sign-in started: where to send the browser, and the cookie it keeps meanwhile.
pub struct Started {
    pub url: String,
    pub cookie: String,
}

pub struct Sso {
    config: SsoConfig,
    issuer: IssuerUrl,
    redirect: RedirectUrl,
    pending: pending::PendingSigner,
    metadata: Mutex<Option<(Instant, CoreProviderMetadata)>>,
}

impl Sso {
    /// `None` when `[sso]` is off. `derived` is the master key's derived secret (shared by a
    /// cluster's instances). The configuration was checked at load.
    pub fn new(config: &SsoConfig, derived: &[u8]) -> Result<Option<Sso>, SsoError> {
        let Some(issuer) = &config.issuer else {
            return Ok(None);
        };
        let bad = |e: openidconnect::url::ParseError| SsoError::Discovery(e.to_string());
        Ok(Some(Sso {
            config: config.clone(),
            issuer: IssuerUrl::new(issuer.clone()).map_err(bad)?,
            redirect: RedirectUrl::new(config.redirect_url.clone()).map_err(bad)?,
            pending: pending::PendingSigner::new(derived),
            metadata: Mutex::new(None),
        }))
    }

    /// The sign-in button's words.
    pub fn button(&self) -> &str {
        &self.config.button
    }

    async fn metadata(&self, fresh: bool) -> Result<CoreProviderMetadata, SsoError> {
        if !fresh {
            let kept = self.metadata.lock().expect("not poisoned");
            if let Some((_, md)) = kept.as_ref().filter(|(at, _)| at.elapsed() < METADATA_TTL) {
                return Ok(md.clone());
            }
        }
        let md = CoreProviderMetadata::discover_async(self.issuer.clone(), &http::send)
            .await
            .map_err(|e| SsoError::Discovery(bounded::text(&chain(&e), 500)))?;
        *self.metadata.lock().expect("not poisoned") = Some((Instant::now(), md.clone()));
        Ok(md)
    }

    fn client(
        &self,
        md: CoreProviderMetadata,
    ) -> openidconnect::core::CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(
            md,
            ClientId::new(self.config.client_id.clone()),
            self.config.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(self.redirect.clone())
    }

    /// Starts a sign-in at `now` (Unix seconds).
    pub async fn start(&self, now: i64) -> Result<Started, SsoError> {
        let client = self.client(self.metadata(false).await?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut ask = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &self.config.scopes {
            ask = ask.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = ask.url();
        let cookie = self.pending.issue(
            &Pending {
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                verifier: verifier.secret().clone(),
            },
            now,
        );
        Ok(Started {
            url: url.to_string(),
            cookie,
        })
    }

    /// Finishes the sign-in `cookie` holds with what the provider sent back: the user, once
    /// every check passed and one of their groups is mapped.
    pub async fn finish(
        &self,
        cookie: Option<&str>,
        back: Callback,
        now: i64,
    ) -> Result<SsoUser, SsoError> {
        let pending = cookie
            .and_then(|c| self.pending.verify(c, now))
            .ok_or(SsoError::NoSignIn)?;
        if let Some(error) = back.error {
            let description = back.error_description.unwrap_or_default();
            return Err(SsoError::Provider(bounded::text(
                &format!("{error}: {description}"),
                300,
            )));
        }
        let state = back.state.unwrap_or_default();
        if !bool::from(state.as_bytes().ct_eq(pending.state.as_bytes())) {
            return Err(SsoError::StateMismatch);
        }
        let code = back
            .code
            .filter(|c| !c.is_empty())
            .ok_or_else(|| SsoError::Provider("the callback carries no code".into()))?;
        let client = self.client(self.metadata(false).await?);
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| SsoError::Exchange(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
            .request_async(&http::send)
            .await
            .map_err(|e| SsoError::Exchange(bounded::text(&token_error(&e), 500)))?;
        let raw = tokens.id_token().ok_or(SsoError::NoIdToken)?.to_string();
        let token: IdToken<
            Claims,
            CoreGenderClaim,
            CoreJweContentEncryptionAlgorithm,
            CoreJwsSigningAlgorithm,
        > = raw.parse().map_err(|e: serde_json::Error| {
            SsoError::IdToken(bounded::text(&e.to_string(), 300))
        })?;
        let nonce = Nonce::new(pending.nonce);
        let claims = match token.claims(&client.id_token_verifier(), &nonce) {
            Ok(c) => c.clone(),
            // A key the provider added since its keys were read: read them again, once.
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(_)) => {
                let client = self.client(self.metadata(true).await?);
                token
                    .claims(&client.id_token_verifier(), &nonce)
                    .map_err(|e| SsoError::IdToken(bounded::text(&e.to_string(), 300)))?
                    .clone()
            }
            Err(e) => return Err(SsoError::IdToken(bounded::text(&e.to_string(), 300))),
        };
        let subject = claims.subject().as_str();
        let name = claims
            .email()
            .map(|e| e.as_str().to_owned())
            .or_else(|| claims.preferred_username().map(|u| u.as_str().to_owned()))
            .unwrap_or_else(|| subject.to_owned());
        let (subject, name) = (bounded::text(subject, 255), bounded::text(&name, 128));
        let groups = claims.additional_claims().groups(&self.config.groups_claim);
        match rule::admitting(&self.config.groups, &groups) {
            Some(m) => Ok(SsoUser {
                subject,
                name,
                group: m.group.clone(),
            }),
            None => Err(SsoError::Unmapped {
                user: name,
                groups: groups
                    .iter()
                    .take(20)
                    .map(|g| bounded::text(g, 64))
                    .collect(),
            }),
        }
    }

    /// Who a session's user is now: their group's mapping as the configuration says today.
    /// `None` when it no longer maps (the entry was removed or no longer reads back whole):
    /// the session is refused, never widened.
    pub fn principal(&self, user: &SsoUser, reserved: &Reserved) -> Option<Principal> {
        let mapping = self.config.groups.iter().find(|m| m.group == user.group)?;
        let (role, scope) = mapping.grant(reserved).ok()?;
        Some(Principal {
            key_id: limiter_id(&user.subject),
            name: user.name.clone(),
            role,
            scope: std::sync::Arc::new(scope),
            kind: PrincipalKind::Sso,
        })
    }
}

/// A signed-in user's slot in the per-caller limiters and stream counts: a negative number
/// from their subject, so it never meets a stored key's id (those start at 1).
fn limiter_id(subject: &str) -> i64 {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(subject.as_bytes());
    let n = i64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) & i64::MAX;
    -(n.max(1))
}

/// The ID token's claims besides the standard ones, read as JSON: the groups claim's name is
/// the operator's (`sso.groups_claim`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Claims(serde_json::Map<String, serde_json::Value>);

impl AdditionalClaims for Claims {}

impl Claims {
    /// The user's groups: the claim as a list of strings (or one string), at most
    /// [`MAX_GROUPS`]; anything else is no groups.
    fn groups(&self, claim: &str) -> Vec<String> {
        match self.0.get(claim) {
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .take(MAX_GROUPS)
                .collect(),
            Some(serde_json::Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        }
    }
}

/// An error with its causes, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// What the token endpoint's refusal said: the provider's error code and description when it
/// answered with one (`invalid_grant` for a code used twice or expired).
fn token_error<RE, T>(e: &openidconnect::RequestTokenError<RE, T>) -> String
where
    RE: std::error::Error + 'static,
    T: openidconnect::ErrorResponse + 'static,
{
    match e {
        openidconnect::RequestTokenError::ServerResponse(r) => r.to_string(),
        other => chain(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_limiter_slot_is_stable_negative_and_their_own() {
        let a = limiter_id("248289761001");
        assert!(a < 0);
        assert_eq!(a, limiter_id("248289761001"));
        assert_ne!(a, limiter_id("248289761002"));
    }

    #[test]
    fn groups_are_read_from_the_named_claim_as_a_list_or_one_name() {
        let claims = |v: serde_json::Value| Claims(v.as_object().unwrap().clone());
        let c = claims(serde_json::json!({"groups": ["a", 1, "b"], "roles": "ops"}));
        assert_eq!(c.groups("groups"), ["a", "b"]);
        assert_eq!(c.groups("roles"), ["ops"]);
        assert!(c.groups("missing").is_empty());
        assert!(
            claims(serde_json::json!({"groups": {"a": 1}}))
                .groups("groups")
                .is_empty()
        );
    }
}
