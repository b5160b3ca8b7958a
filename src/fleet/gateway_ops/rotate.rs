//! A coordinated rotation of a gateway's shared token: the one way a change of what the
//! daemon's link depends on is carried out (a profile or rollout setting `gateway.auth` is
//! refused: on a real 2026.9.6 a rolled-out token closed the daemon's socket with 4001 and no
//! revert could reach the gateway again).
//!
//! In order, each step recorded before the next: the gateway must be linked here, offer
//! `config.get`/`config.patch` and run in `token` auth mode; the old and the new token are put
//! on record, encrypted ([`crate::db::rotations`]); the new one is written with `config.patch`
//! over the hash read (2026.9.6 applies it hot, and closes every socket authenticated with the
//! old one: 4001 `gateway auth changed`); the daemon stores it as the gateway's token (its link
//! reconnects with it) and waits for the link to be back. Not back within the deadline, it
//! goes back to the old token (the write may not have taken); back on neither, it keeps the new
//! one and says so. A daemon stopped in between finds the record at its next start and settles
//! it the same way ([`GatewayOps::settle_rotations`]): never a token the gateway holds and the
//! daemon lost.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::GatewayOps;
use crate::db::rotations::Rotation;
use crate::fleet::FleetError;
use gateway_supervisor_actors::messages::UpdateGateway;
use gateway_supervisor_actors::model::{Caller, GatewayId, GatewayPatch, LinkPhase};

/// How long the link is waited for with the new token (or the old, going back).
pub const BACK_WITHIN: Duration = Duration::from_secs(30);

/// Why a rotation is not begun, from the gateway's `config.get`: `None` when it may be.
pub fn refusal(config_get: &Value) -> Option<String> {
    let config = config_get.get("config").unwrap_or(&Value::Null);
    let mode = config
        .pointer("/gateway/auth/mode")
        .and_then(Value::as_str)
        .unwrap_or("token");
    if mode != "token" {
        return Some(format!(
            "its auth mode is `{}`: there is no shared token to rotate",
            gateway_supervisor_actors::bounded::text(mode, 40)
        ));
    }
    if config_get.get("hash").and_then(Value::as_str).is_none() {
        return Some("its config.get carried no hash to write over".into());
    }
    None
}

/// A new token: 32 random bytes, as URL-safe base64 (43 characters).
fn new_token() -> Result<SecretString, crate::secrets::SecretsError> {
    use base64::Engine;
    let bytes = crate::secrets::random_bytes::<32>()?;
    Ok(SecretString::from(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
    ))
}

/// What a rotation did.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Rotated {
    pub gateway_id: GatewayId,
    /// The gateway holds a new token and the daemon's link is back with it.
    pub rotated: bool,
    /// Milliseconds from the write to the link back.
    pub took_ms: i64,
}

impl GatewayOps {
    /// Rotates gateway `id`'s shared token (see the module's opening).
    #[tracing::instrument(name = "gateway.rotate_token", skip_all, fields(gateway_id = ?id))]
    pub async fn rotate_token(&self, id: GatewayId, by: &Caller) -> Result<Rotated, FleetError> {
        let view = self.view(id).await?;
        let name = view.record.name.clone();
        let read = self.ctx.call(id, "config.get", json!({})).await?;
        if let Some(why) = refusal(&read) {
            return Err(FleetError::Busy {
                message: format!("gateway `{name}`'s token cannot be rotated: {why}"),
                details: json!({"gateway_id": id}),
            });
        }
        let rotation = Rotation {
            old: view.record.token.clone(),
            new: new_token().map_err(FleetError::Random)?,
        };
        self.ctx
            .stored({
                let new = rotation.new.clone();
                let old = rotation.old.clone();
                move |s| s.begin_token_rotation(id, &Rotation { old, new })
            })
            .await?;
        let patch = json!({
            "raw": json!({"gateway": {"auth": {"token": rotation.new.expose_secret()}}}).to_string(),
            "baseHash": read.get("hash"),
            "note": format!("token rotation by {}", gateway_supervisor_actors::bounded::text(&by.label, 100)),
        });
        let started = gateway_supervisor_actors::unix_now_ms();
        if let Err(e) = self.ctx.call(id, "config.patch", patch).await {
            // Refused (or lost): the old token is kept; the record goes.
            let back = self.ctx.stored(move |s| s.end_token_rotation(id)).await;
            if let Err(b) = back {
                tracing::warn!(gateway = %name, %b, "a refused rotation's record stays");
            }
            self.audit(
                by,
                id,
                json!({"rotated": false, "why": "config.patch failed"}),
            )
            .await;
            return Err(e);
        }
        let rotated = self.settle(id, &name, rotation, by).await?;
        let took_ms = gateway_supervisor_actors::unix_now_ms().saturating_sub(started);
        if !rotated {
            return Err(FleetError::Busy {
                message: format!(
                    "gateway `{name}` did not take its new token within {} s; the daemon went back to the old one (the write did not take)",
                    BACK_WITHIN.as_secs()
                ),
                details: json!({"gateway_id": id, "rotated": false}),
            });
        }
        Ok(Rotated {
            gateway_id: id,
            rotated,
            took_ms,
        })
    }

    /// Stores the new token and waits for the link with it; not back, goes back to the old
    /// one; back on neither, keeps the new one. Whether the new token is the one in use.
    async fn settle(
        &self,
        id: GatewayId,
        name: &str,
        rotation: Rotation,
        by: &Caller,
    ) -> Result<bool, FleetError> {
        self.use_token(id, Some(rotation.new.clone()), by).await?;
        let rotated = if self.back(id).await {
            true
        } else if rotation.old.is_some() {
            self.use_token(id, rotation.old.clone(), by).await?;
            if self.back(id).await {
                false
            } else {
                tracing::error!(gateway = %name, "a rotated gateway took neither its new token nor its old one: the new one is kept");
                self.use_token(id, Some(rotation.new.clone()), by).await?;
                true
            }
        } else {
            true
        };
        self.ctx.stored(move |s| s.end_token_rotation(id)).await?;
        self.audit(by, id, json!({"rotated": rotated})).await;
        Ok(rotated)
    }

    /// Makes `token` the gateway's stored token (its link reconnects with it).
    async fn use_token(
        &self,
        id: GatewayId,
        token: Option<SecretString>,
        by: &Caller,
    ) -> Result<(), FleetError> {
        let patch = GatewayPatch {
            token: Some(token),
            ..GatewayPatch::default()
        };
        self.ctx
            .record(UpdateGateway {
                id,
                patch,
                by: by.clone(),
            })
            .await
            .map(|_| ())
    }

    /// Whether the link to gateway `id` is back (connected, breaker closed, a call answered)
    /// within [`BACK_WITHIN`]; `false` at once when the link halts (the gateway refused the
    /// token: a halted link waits for an operator, not for time).
    async fn back(&self, id: GatewayId) -> bool {
        let until = tokio::time::Instant::now() + BACK_WITHIN;
        while tokio::time::Instant::now() < until {
            // Linked, and a call answered on that link: the gateway took the token it holds
            // (the registry stopped the old link before it answered the token's store, so a
            // call answered now went over the new one).
            if self.ctx.reachable(id) && self.ctx.call(id, "health", json!({})).await.is_ok() {
                return true;
            }
            if self.halted(id).await {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// Whether gateway `id`'s link is halted (an authentication refused).
    async fn halted(&self, id: GatewayId) -> bool {
        let view = self.ctx.gateways().get(id).await;
        matches!(view, Ok(Some(v)) if v.connection.state == Some(LinkPhase::Halted))
    }

    async fn audit(&self, by: &Caller, id: GatewayId, details: Value) {
        self.ctx
            .audited(
                by,
                "gateway.rotate_token",
                ("gateway", id.to_string()),
                details,
            )
            .await;
    }

    /// Settles every rotation a stopped daemon left on record: the link is given
    /// [`BACK_WITHIN`] on the token it was started with; not back, the record's new token is
    /// tried (the write took), then the old. Run once at start.
    pub async fn settle_rotations(&self) {
        let pending = match self.ctx.stored(|s| s.token_rotations()).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(%e, "could not read the token rotations under way");
                return;
            }
        };
        let by = Caller::system("token rotation, settled at start");
        for id in pending {
            let rotation = match self.ctx.stored(move |s| s.token_rotation(id)).await {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(gateway_id = id.get(), %e, "a token rotation's record cannot be read");
                    continue;
                }
            };
            let name = format!("#{id}");
            tracing::warn!(
                gateway_id = id.get(),
                "a token rotation was under way when the daemon stopped: settling it"
            );
            let result = if self.back(id).await {
                // The token in use works: nothing more to do.
                self.ctx.stored(move |s| s.end_token_rotation(id)).await
            } else {
                self.settle(id, &name, rotation, &by).await.map(|_| ())
            };
            if let Err(e) = result {
                tracing::warn!(gateway_id = id.get(), %e, "a token rotation could not be settled");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_gateway_in_token_mode_with_a_hash_is_rotated() {
        let ok = json!({"hash": "h", "config": {"gateway": {"auth": {"mode": "token", "token": "__OPENCLAW_REDACTED__"}}}});
        assert_eq!(refusal(&ok), None);
        let default_mode = json!({"hash": "h", "config": {"gateway": {}}});
        assert_eq!(refusal(&default_mode), None, "token is the default");
        let password = json!({"hash": "h", "config": {"gateway": {"auth": {"mode": "password"}}}});
        assert!(refusal(&password).unwrap().contains("`password`"));
        assert!(refusal(&json!({"config": {}})).unwrap().contains("no hash"));
    }

    #[test]
    fn a_new_token_is_43_url_safe_characters_and_never_the_same() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_eq!(a.expose_secret().len(), 43);
        assert!(
            a.expose_secret()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
