//! `/api/keys`: API keys as a platform admin manages them — listed (never a secret: prefix,
//! role, scope, last use, expiry, rotation), rotated with an overlap (a new secret shown once;
//! the old one keeps working for the grace asked, then is refused) and revoked. Each change is
//! audited. Keys are made with `gateway-supervisor keys create` on the daemon's host.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::json::OptionalJsonBody;
use super::principal::Authenticated;
use crate::db::api_keys::ApiKeyRow;

/// The longest grace a rotated secret gets: a week.
const MAX_GRACE_S: i64 = 7 * 86_400;
/// Without one asked for: an hour.
const DEFAULT_GRACE_S: i64 = 3600;
/// The least grace for rotating the key that asks.
const OWN_KEY_GRACE_S: i64 = 60;

/// A key as listed: everything but its secret.
#[derive(Serialize, ToSchema)]
pub struct KeyJson {
    pub id: i64,
    pub name: String,
    pub role: String,
    /// The public handle of its current secret.
    pub prefix: String,
    /// `None`: every tenant.
    pub tenant: Option<String>,
    pub selector: Option<String>,
    /// `None`: every verb of its role.
    pub verbs: Option<String>,
    /// `None`: every agent.
    pub agents: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The secret it was rotated from works until then.
    pub previous_prefix: Option<String>,
    pub previous_until: Option<i64>,
}

impl From<ApiKeyRow> for KeyJson {
    fn from(k: ApiKeyRow) -> Self {
        KeyJson {
            id: k.id,
            name: k.name,
            role: k.role,
            prefix: k.prefix,
            tenant: k.tenant,
            selector: k.selector,
            verbs: k.verbs,
            agents: k.agents,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
            previous_prefix: k.previous_prefix,
            previous_until: k.previous_until,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyJson>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// How long the old secret keeps working: 0–604800 s, default 3600.
    #[schema(minimum = 0, maximum = 604800)]
    pub grace_seconds: Option<i64>,
}

/// A rotated key: its new secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct RotatedKey {
    pub key: KeyJson,
    /// The new secret. It is not stored (only its hash): keep it now.
    pub secret: String,
}

#[utoipa::path(get, path = "/api/keys", tag = "keys",
    description = "Every API key, by id: role, scope, last use, expiry, rotation and revocation — never a secret.",
    responses((status = 200, body = KeyList)))]
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let keys = super::stored(&state, |s| s.list_api_keys()).await?;
    Ok(HttpResponse::Ok().json(KeyList {
        keys: keys.into_iter().map(KeyJson::from).collect(),
    }))
}

#[utoipa::path(post, path = "/api/keys/{id}/rotate", tag = "keys",
    description = "Gives the key a new secret (answered once) and keeps the old one working for `grace_seconds` (default an hour), so that its clients can move over; then the old one is refused. Audited with both prefixes.",
    params(("id" = i64, Path, minimum = 1)),
    request_body(content = Option<RotateRequest>, description = "optional: `{grace_seconds}`"),
    responses((status = 200, body = RotatedKey), (status = 400, body = ErrorBody, description = "`invalid_field` (`grace_seconds`): out of range, or under 60 s for the key making the request"),
        (status = 404, body = ErrorBody, description = "`key_not_found`: no such key, or it is revoked"),
        (status = 409, body = ErrorBody, description = "`rotation_in_grace`: its previous secret still works (rotating again would cut off the clients still on it)")))]
pub async fn rotate(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<i64>,
    body: OptionalJsonBody<RotateRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let grace = body
        .0
        .and_then(|b| b.grace_seconds)
        .unwrap_or(DEFAULT_GRACE_S);
    if !(0..=MAX_GRACE_S).contains(&grace) {
        return Err(ApiError::field(
            "grace_seconds",
            format!("grace_seconds must be between 0 and {MAX_GRACE_S}"),
        ));
    }
    // The key asking would be cut off before it could read the answer's secret.
    if who.0.key_id == id && grace < OWN_KEY_GRACE_S {
        return Err(ApiError::field(
            "grace_seconds",
            format!(
                "this is the key making the request: rotating it needs at least {OWN_KEY_GRACE_S} s of grace, so that it can take the new secret up"
            ),
        ));
    }
    let by = who.0.caller();
    let (row, secret) =
        match super::stored(&state, move |s| Ok(s.rotate_api_key(id, grace, &by))).await? {
            Ok(done) => done,
            Err(crate::db::DbError::NotFound) => return Err(ApiError::KeyNotFound(id)),
            Err(crate::db::DbError::Conflict(why)) => {
                return Err(ApiError::RotationInGrace(why));
            }
            Err(e) => return Err(ApiError::storage(e.to_string())),
        };
    Ok(HttpResponse::Ok().json(RotatedKey {
        key: row.into(),
        secret: secret.reveal().to_owned(),
    }))
}

#[utoipa::path(delete, path = "/api/keys/{id}", tag = "keys",
    description = "Revokes the key: refused everywhere within `auth.key_refresh_interval`, its open event streams ended. Audited.",
    params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = KeyJson), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`own_key`: the key making the request (it would lock itself out)"),
        (status = 422, body = ErrorBody, description = "`unprocessable`: revoked already")))]
pub async fn revoke(
    state: web::Data<AppState>,
    who: Authenticated,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    if who.0.key_id == id {
        return Err(ApiError::OwnKey(
            "this is the key making the request: revoke it with another admin key, or `gateway-supervisor keys revoke` on the daemon's host"
                .into(),
        ));
    }
    let by = who.0.caller();
    match super::stored(&state, move |s| Ok(s.revoke_api_key(&id.to_string(), &by))).await? {
        Ok(row) => Ok(HttpResponse::Ok().json(KeyJson::from(row))),
        Err(crate::db::DbError::NotFound) => Err(ApiError::KeyNotFound(id)),
        Err(crate::db::DbError::Conflict(why)) => Err(ApiError::Unprocessable(why)),
        Err(e) => Err(ApiError::storage(e.to_string())),
    }
}
