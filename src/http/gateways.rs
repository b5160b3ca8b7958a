//! `/api/gateways`: list, get, create, update, delete (docs/design.md, *Gateways API*). Handlers validate
//! input and forward to the registry actor; they hold no gateway state.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, ErrorBody};
pub use super::gateway_json::{
    BreakerJson, ConnectionJson, GatewayEnvelope, GatewayJson, LinkErrorJson,
};
use super::gateway_page::GatewayListQuery;
use super::json::JsonBody;
use super::principal::Authenticated;
use super::visible::Visible;
use crate::validate::{self, FieldError};
use gateway_supervisor_actors::labels::Labels;
use gateway_supervisor_actors::messages::{CreateGateway, DeleteGateway, UpdateGateway};
use gateway_supervisor_actors::model::{GatewayId, GatewayPatch, GatewayStatus, NewGateway};

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::field(e.field, e.message)
    }
}

/// `true`/`false`, or `1`/`0` as the seed's examples send it.
#[derive(Debug, Clone, Copy)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false, 1 or 0")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Flag, E> {
                match v {
                    0 => Ok(Flag(false)),
                    1 => Ok(Flag(true)),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Unsigned(v), &self)),
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Flag, E> {
                u64::try_from(v)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
                    .and_then(|u| self.visit_u64(u))
            }
        }
        d.deserialize_any(V)
    }
}

/// Distinguishes "absent" (outer `None`) from `null` (`Some(None)`).
fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGatewayRequest {
    /// Unique, 1–100 characters: letters, digits, spaces and `-_.:()/@#+` (trimmed).
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    /// Hostname (RFC 1123) or IP address (or give `url`, not both).
    #[schema(min_length = 1, max_length = 255, pattern = r"\S")]
    pub host: Option<String>,
    /// 1–65535 (or give `url`, not both).
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<i64>,
    /// `ws://host:port` or `wss://host:port` (no path, query or credentials), instead of
    /// `host` and `port`.
    #[schema(pattern = r"^\s*wss?://")]
    pub url: Option<String>,
    /// The gateway's shared token; stored encrypted, never returned. At most 4096 bytes, no
    /// control characters; `""` means none.
    #[schema(max_length = 4096)]
    pub token: Option<String>,
    #[schema(value_type = Option<bool>)]
    pub is_primary: Option<Flag>,
    #[schema(value_type = Option<bool>)]
    pub allow_insecure_tls: Option<Flag>,
    /// Whether this daemon is the gateway's approval client (connects with
    /// `caps: ["approvals"]`, so the gateway waits for its answers); absent or `null` follows
    /// the fleet's `approvals.enabled`.
    pub approvals: Option<bool>,
    /// Labels (`{"region": "eu", "tier": "canary"}`), Kubernetes' syntax and limits: a key is
    /// an optional DNS-subdomain prefix and `/`, then 1–63 letters, digits, `-`, `_`, `.`
    /// (a letter or digit at each end); a value is empty or the same; at most 64.
    #[schema(value_type = Option<Object>)]
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateGatewayRequest {
    /// Required with `PUT /api/gateways`; with `PUT /api/gateways/{id}` it may be omitted and
    /// must match when given.
    pub id: Option<GatewayId>,
    /// As for create.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: Option<String>,
    #[schema(min_length = 1, max_length = 255, pattern = r"\S")]
    pub host: Option<String>,
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<i64>,
    #[schema(pattern = r"^\s*wss?://")]
    pub url: Option<String>,
    /// A new token; `""` or `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 4096)]
    pub token: Option<Option<String>>,
    #[schema(value_type = Option<bool>)]
    pub is_primary: Option<Flag>,
    #[schema(value_type = Option<bool>)]
    pub allow_insecure_tls: Option<Flag>,
    /// One of unknown, online, degraded, timeout, offline.
    #[schema(pattern = "^(unknown|online|degraded|timeout|offline)$")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, minimum = 0)]
    pub last_seen: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, minimum = 0)]
    pub latency: Option<Option<i64>>,
    #[schema(minimum = 0)]
    pub sessions_count: Option<i64>,
    #[schema(minimum = 0)]
    pub agents_count: Option<i64>,
    /// As for create; `null` goes back to the fleet's `approvals.enabled`. A change reconnects
    /// the link at once (the capability is asked at connect).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<bool>)]
    pub approvals: Option<Option<bool>>,
    /// The whole new set of labels, as for create (`{}` removes them all; to change some, use
    /// `PATCH /api/gateways/{id}/labels`).
    #[schema(value_type = Option<Object>)]
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteGatewayRequest {
    pub id: GatewayId,
}

/// Where a gateway is, from either `url` or `host`/`port`; `None` fields were not given.
#[derive(Default)]
struct Address {
    host: Option<String>,
    port: Option<u16>,
    tls: Option<bool>,
}

fn address(host: Option<&str>, port: Option<i64>, url: Option<&str>) -> Result<Address, ApiError> {
    match (url, host, port) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(ApiError::Unprocessable(
            "give either `url` or `host`/`port`, not both".into(),
        )),
        (Some(url), None, None) => {
            let parsed = validate::url(url)?;
            Ok(Address {
                host: Some(parsed.host),
                port: Some(parsed.port),
                tls: Some(parsed.tls),
            })
        }
        (None, host, port) => Ok(Address {
            host: host.map(validate::host).transpose()?,
            port: port.map(validate::port).transpose()?,
            tls: None,
        }),
    }
}

fn labels(given: Option<BTreeMap<String, String>>) -> Result<Option<Labels>, ApiError> {
    given
        .map(Labels::new)
        .transpose()
        .map_err(|e| ApiError::field("labels", e.to_string()))
}

fn non_negative(field: &'static str, v: i64) -> Result<i64, ApiError> {
    if v < 0 {
        Err(ApiError::field(
            field,
            format!("{field} must not be negative"),
        ))
    } else {
        Ok(v)
    }
}

impl CreateGatewayRequest {
    fn validate(self) -> Result<NewGateway, ApiError> {
        let name = validate::name(&self.name)?;
        let Address { host, port, tls } =
            address(self.host.as_deref(), self.port, self.url.as_deref())?;
        let host =
            host.ok_or_else(|| ApiError::field("host", "host is required (or give `url`)"))?;
        let port =
            port.ok_or_else(|| ApiError::field("port", "port is required (or give `url`)"))?;
        let token = self
            .token
            .as_deref()
            .map(validate::token)
            .transpose()?
            .flatten();
        Ok(NewGateway {
            name,
            host,
            port,
            tls: tls.unwrap_or(false),
            allow_insecure_tls: self.allow_insecure_tls.is_some_and(|f| f.0),
            token: token.map(SecretString::from),
            is_primary: self.is_primary.is_some_and(|f| f.0),
            approvals: self.approvals,
            labels: labels(self.labels)?.unwrap_or_default(),
            ..NewGateway::default()
        })
    }
}

impl UpdateGatewayRequest {
    fn validate(self) -> Result<GatewayPatch, ApiError> {
        let Address { host, port, tls } =
            address(self.host.as_deref(), self.port, self.url.as_deref())?;
        let token = match self.token {
            None => None,
            Some(None) => Some(None),
            Some(Some(t)) => Some(validate::token(&t)?.map(SecretString::from)),
        };
        let status = self
            .status
            .map(|s| {
                s.parse::<GatewayStatus>().map_err(|_| {
                    ApiError::field("status", format!("status must be one of unknown, online, degraded, timeout, offline (got `{s}`)"))
                })
            })
            .transpose()?;
        let patch = GatewayPatch {
            name: self.name.as_deref().map(validate::name).transpose()?,
            host,
            port,
            tls,
            allow_insecure_tls: self.allow_insecure_tls.map(|f| f.0),
            token,
            is_primary: self.is_primary.map(|f| f.0),
            status,
            last_seen: self
                .last_seen
                .map(|v| v.map(|t| non_negative("last_seen", t)).transpose())
                .transpose()?,
            latency: self
                .latency
                .map(|v| v.map(|t| non_negative("latency", t)).transpose())
                .transpose()?,
            sessions_count: self
                .sessions_count
                .map(|v| non_negative("sessions_count", v))
                .transpose()?,
            agents_count: self
                .agents_count
                .map(|v| non_negative("agents_count", v))
                .transpose()?,
            approvals: self.approvals,
            labels: labels(self.labels)?,
            ..GatewayPatch::default()
        };
        if patch.is_empty() {
            return Err(ApiError::InvalidRequest {
                message: "nothing to update: give at least one field besides `id`".into(),
                field: None,
            });
        }
        Ok(patch)
    }
}

#[derive(Serialize, ToSchema)]
pub struct GatewayList {
    pub gateways: Vec<GatewayJson>,
}

#[derive(Serialize, ToSchema)]
pub struct Deleted {
    pub deleted: bool,
}

#[utoipa::path(get, path = "/api/gateways", tag = "gateways",
    description = "All gateways, primary first, then by name — or, with any of `limit`, `cursor`, `offset`, `q`, `status`, `version`, `selector` (labels), one page of them with the matching total, the count per status, the acting primary and `next_cursor` (`GatewayPage`). Answers carry a weak `ETag` that moves with the registry's own changes (records, status, connection, breaker, role), not with latency or last-seen; `If-None-Match` with it answers 304.",
    params(GatewayListQuery,
        ("If-None-Match" = Option<String>, Header, description = "an `ETag` this route gave: 304 while nothing it shows (but the live numbers) changed")),
    responses((status = 200, body = GatewayList, description = "the whole list, or a `GatewayPage` when paging parameters are given",
            headers(("ETag" = String, description = "weak validator of this answer"))),
        (status = 304, description = "not modified since the `ETag` in `If-None-Match`"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    visible: Visible,
    query: web::Query<GatewayListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.validate()?;
    // A scoped key's answer is its own: the tag names the scope it was made for.
    let scope = match visible.sees_all() {
        true => String::new(),
        false => format!("{:?} ", visible.scope()),
    };
    let tag = state.gateway_tags.tag(&match &page {
        Some(q) => format!("{scope}page {q:?}"),
        None => format!("{scope}list"),
    });
    if super::etag::matches(&req, &tag) {
        return Ok(super::etag::not_modified(&tag));
    }
    let seen = crate::gateway_reads::Subset::SeenBy(visible.scope());
    if let Some(q) = page {
        // Met one at a time: a page holds its rows, not the fleet (`gateway_page::Pager`).
        let mut pager = super::gateway_page::Pager::new(&q);
        state.gateways().walk(seen, |v| pager.meet(v)).await?;
        let mut res = HttpResponse::Ok();
        res.insert_header((header::ETAG, tag));
        return Ok(res.json(pager.finish()));
    }
    if !visible.sees_all() {
        let views = state.gateways().subset(seen).await?;
        let mut res = HttpResponse::Ok();
        res.insert_header((header::ETAG, tag));
        return Ok(res.json(GatewayList {
            gateways: views.iter().map(|v| GatewayJson::from(&**v)).collect(),
        }));
    }
    let body = state.gateway_list.body(&state.gateways()).await?;
    let mut res = super::json::json_bytes(body);
    // A tag is ASCII (`Validator::tag`); one that were not would go without, not fail the read.
    if let Ok(tag) = header::HeaderValue::try_from(tag) {
        res.headers_mut().insert(header::ETAG, tag);
    }
    Ok(res)
}

#[utoipa::path(get, path = "/api/gateways/{id}", tag = "gateways",
    params(("id" = i64, Path, minimum = 1, description = "Gateway id"),
        ("If-None-Match" = Option<String>, Header, description = "an `ETag` this route gave: 304 while nothing it shows (but the live numbers) changed")),
    responses((status = 200, body = GatewayEnvelope, headers(("ETag" = String, description = "weak validator of this answer"))),
        (status = 304, description = "not modified since the `ETag` in `If-None-Match`"),
        (status = 404, body = ErrorBody)))]
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<GatewayId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let tag = state.gateway_tags.tag(&format!("gateway {id}"));
    let view = state
        .gateways()
        .get(id)
        .await?
        .ok_or(ApiError::GatewayNotFound(id))?;
    if super::etag::matches(&req, &tag) {
        return Ok(super::etag::not_modified(&tag));
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, tag))
        .json(GatewayEnvelope {
            gateway: (&view).into(),
        }))
}

#[utoipa::path(post, path = "/api/gateways", tag = "gateways",
    description = "Registers a gateway. The first gateway becomes primary; `is_primary: true` moves the primary in one transaction.",
    request_body = CreateGatewayRequest,
    responses((status = 201, body = GatewayEnvelope), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`duplicate_name`, or `duplicate_address`: another gateway has this host:port"), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "`unprocessable`: `url` given with `host` or `port`")))]
pub async fn create(
    state: web::Data<AppState>,
    who: Authenticated,
    visible: Visible,
    body: JsonBody<CreateGatewayRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut new = body.0.validate()?;
    new.labels = visible.labels_for_new(&new.labels)?;
    let view = state
        .registry
        .send(CreateGateway {
            new,
            by: who.0.caller(),
        })
        .await??;
    Ok(HttpResponse::Created().json(GatewayEnvelope {
        gateway: (&view).into(),
    }))
}

async fn apply_update(
    state: &AppState,
    who: &Authenticated,
    visible: &Visible,
    id: GatewayId,
    req: UpdateGatewayRequest,
) -> Result<HttpResponse, ApiError> {
    visible.one(id)?;
    let patch = req.validate()?;
    if let Some(labels) = &patch.labels {
        visible.relabel(id, labels)?;
    }
    let view = state
        .registry
        .send(UpdateGateway {
            id,
            patch,
            by: who.0.caller(),
        })
        .await??;
    Ok(HttpResponse::Ok().json(GatewayEnvelope {
        gateway: (&view).into(),
    }))
}

#[utoipa::path(put, path = "/api/gateways", tag = "gateways",
    description = "Updates the gateway named by `id` in the body. Changing host/port/token reconnects it.",
    request_body = UpdateGatewayRequest,
    responses((status = 200, body = GatewayEnvelope), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`duplicate_name`, or `duplicate_address`: another gateway has this host:port"), (status = 422, body = ErrorBody, description = "`unprocessable`: `url` given with `host` or `port`")))]
pub async fn update(
    state: web::Data<AppState>,
    who: Authenticated,
    visible: Visible,
    body: JsonBody<UpdateGatewayRequest>,
) -> Result<HttpResponse, ApiError> {
    let req = body.0;
    let id = req.id.ok_or_else(|| ApiError::InvalidRequest {
        message: "missing field `id`".into(),
        field: Some("id".into()),
    })?;
    apply_update(&state, &who, &visible, id, req).await
}

#[utoipa::path(put, path = "/api/gateways/{id}", tag = "gateways",
    params(("id" = i64, Path, minimum = 1, description = "Gateway id")),
    request_body = UpdateGatewayRequest,
    responses((status = 200, body = GatewayEnvelope), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`duplicate_name`, or `duplicate_address`: another gateway has this host:port"), (status = 422, body = ErrorBody, description = "`unprocessable`: `url` given with `host` or `port`")))]
pub async fn update_by_path(
    state: web::Data<AppState>,
    who: Authenticated,
    visible: Visible,
    id: web::Path<GatewayId>,
    body: JsonBody<UpdateGatewayRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let req = body.0;
    if let Some(body_id) = req.id.filter(|b| *b != id) {
        return Err(ApiError::field(
            "id",
            format!("body id {body_id} does not match the path id {id}"),
        ));
    }
    apply_update(&state, &who, &visible, id, req).await
}

async fn apply_delete(
    state: &AppState,
    who: &Authenticated,
    visible: &Visible,
    id: GatewayId,
) -> Result<HttpResponse, ApiError> {
    visible.one(id)?;
    state.fleet.operations.may_delete(id).await?;
    let store = state.store.clone();
    if super::blocking(move || store.managed(id)).await?.is_some() {
        return Err(ApiError::ManagedGateway(format!(
            "gateway {id} is a managed gateway: delete it with DELETE /api/managed/{id}, which stops its process too"
        )));
    }
    state
        .registry
        .send(DeleteGateway {
            id,
            by: who.0.caller(),
            lost: false,
        })
        .await??;
    Ok(HttpResponse::Ok().json(Deleted { deleted: true }))
}

#[utoipa::path(delete, path = "/api/gateways", tag = "gateways",
    request_body = DeleteGatewayRequest,
    responses((status = 200, body = Deleted), (status = 400, body = ErrorBody, description = "primary_gateway: the primary cannot be deleted"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`gateway_busy`: a running operation holds the gateway (`details.operation_id`), or it is suspended through this daemon (resume it first); `managed_gateway`: delete it through `DELETE /api/managed/{id}`")))]
pub async fn delete(
    state: web::Data<AppState>,
    who: Authenticated,
    visible: Visible,
    body: JsonBody<DeleteGatewayRequest>,
) -> Result<HttpResponse, ApiError> {
    apply_delete(&state, &who, &visible, body.0.id).await
}

#[utoipa::path(delete, path = "/api/gateways/{id}", tag = "gateways",
    params(("id" = i64, Path, minimum = 1, description = "Gateway id")),
    responses((status = 200, body = Deleted), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`gateway_busy`: a running operation holds the gateway (`details.operation_id`), or it is suspended through this daemon (resume it first); `managed_gateway`: delete it through `DELETE /api/managed/{id}`")))]
pub async fn delete_by_path(
    state: web::Data<AppState>,
    who: Authenticated,
    visible: Visible,
    id: web::Path<GatewayId>,
) -> Result<HttpResponse, ApiError> {
    apply_delete(&state, &who, &visible, id.into_inner()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::json::parse;

    fn create(body: &str) -> Result<NewGateway, ApiError> {
        parse::<CreateGatewayRequest>(body.as_bytes())?.validate()
    }

    #[test]
    fn create_accepts_host_port_or_url() {
        let g = create(r#"{"name":"production","host":"gateway.prod.example.com","port":18789,"token":"t","is_primary":false}"#).unwrap();
        assert_eq!(
            (g.host.as_str(), g.port, g.tls, g.is_primary),
            ("gateway.prod.example.com", 18789, false, false)
        );
        let g = create(r#"{"name":"p","url":"wss://gw.example.com:8443"}"#).unwrap();
        assert_eq!(
            (g.host.as_str(), g.port, g.tls),
            ("gw.example.com", 8443, true)
        );
        assert!(
            create(r#"{"name":"p","host":"h","port":1,"is_primary":1}"#)
                .unwrap()
                .is_primary
        );
    }

    #[test]
    fn create_errors_name_fields() {
        let field = |body: &str| match create(body).unwrap_err() {
            ApiError::InvalidField { field, .. } => field,
            ApiError::InvalidRequest { field, .. } => field.unwrap_or_default(),
            other => other.code().to_owned(),
        };
        assert_eq!(field(r#"{"name":"p","host":"h","port":0}"#), "port");
        assert_eq!(field(r#"{"name":"p","host":"h","port":70000}"#), "port");
        assert_eq!(field(r#"{"name":"","host":"h","port":1}"#), "name");
        assert_eq!(field(r#"{"name":"p","port":1}"#), "host");
        assert_eq!(field(r#"{"name":"p","host":"h"}"#), "port");
        assert_eq!(
            field(r#"{"name":"p","host":"h","port":1,"is_primary":2}"#),
            "is_primary"
        );
        assert_eq!(
            field(r#"{"name":"p","url":"ws://h:1","host":"h"}"#),
            "unprocessable"
        );
    }

    #[test]
    fn update_distinguishes_absent_null_and_value() {
        let p = parse::<UpdateGatewayRequest>(br#"{"id":1,"token":null,"latency":null}"#)
            .unwrap()
            .validate()
            .unwrap();
        assert!(matches!(p.token, Some(None)));
        assert_eq!(p.latency, Some(None));
        assert_eq!(p.last_seen, None);
        let p = parse::<UpdateGatewayRequest>(br#"{"id":1,"token":""}"#)
            .unwrap()
            .validate()
            .unwrap();
        assert!(matches!(p.token, Some(None)));
        assert!(
            parse::<UpdateGatewayRequest>(br#"{"id":1}"#)
                .unwrap()
                .validate()
                .is_err()
        );
        assert!(
            parse::<UpdateGatewayRequest>(br#"{"id":1,"status":"great"}"#)
                .unwrap()
                .validate()
                .is_err()
        );
    }
}
