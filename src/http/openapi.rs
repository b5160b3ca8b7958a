//! The OpenAPI document (`/api/openapi.json`) and the vendored Swagger UI (`/api/docs/`).
//!
//! Each handler documents its own outcomes; the answers the layers around every handler give
//! (authentication, roles, rate limits, body and parameter decoding, unknown ids) are added
//! here by one rule, so no operation can leave one out. `scripts/api-fuzz.sh` holds the
//! daemon to the result: a status code the document does not list fails the run.

use std::sync::OnceLock;

use actix_web::web;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::{api_routes, error, health, ops};

/// The `/api` routes as declared: each handler's operation, with its route's role as its
/// security scope (first, so the rules below see every operation and its role).
struct Declared;

impl Modify for Declared {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi.merge(api_routes::ApiPaths::openapi());
        for route in api_routes::ROUTES {
            let Some(item) = openapi.paths.paths.get_mut(&route.documented_path()) else {
                continue; // the unit test in api_routes.rs names it
            };
            let op = match route.method {
                "get" => item.get.as_mut(),
                "post" => item.post.as_mut(),
                "put" => item.put.as_mut(),
                "patch" => item.patch.as_mut(),
                "delete" => item.delete.as_mut(),
                _ => None,
            };
            if let Some(op) = op {
                let role = [route.role.as_str()];
                op.security = Some(vec![
                    SecurityRequirement::new("api_key", role),
                    SecurityRequirement::new("bearer", role),
                ]);
            }
        }
    }
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The answers of the layers around the handlers, for every operation they can happen to.
struct CommonResponses;

/// (status, description, applies to an operation: (path, has parameters, has a body, least role)).
type Rule = (
    &'static str,
    &'static str,
    fn(&str, bool, bool, Option<&str>) -> bool,
);

const COMMON: &[Rule] = &[
    (
        "400",
        "`invalid_request`, `invalid_json` or `invalid_field`: a parameter or the body breaks this document; the message (and `details.field`) names what",
        |_, params, body, _| params || body,
    ),
    (
        "401",
        "`unauthorized`: no API key, or an unknown or revoked one",
        |_, _, _, role| role.is_some(),
    ),
    (
        "403",
        "`forbidden`: the key's role is below the one this operation needs (its security scope), or the key was not given the verb it needs (`details.required_verb`); `out_of_scope`: a key scoped to a tenant asked for the platform's own objects, set a reserved label, or picked gateways outside its tenant; `cross_origin`: a console session's change request from another origin",
        |_, _, _, role| role.is_some(),
    ),
    (
        "404",
        "`not_found` or `<thing>_not_found`: no such id (ids are positive integers)",
        |path, _, _, _| path.contains('{'),
    ),
    (
        "408",
        "`request_timeout`: the body did not arrive within 30 s",
        |_, _, body, _| body,
    ),
    (
        "413",
        "`payload_too_large`: the body is over `limits.max_body_bytes`",
        |_, _, body, _| body,
    ),
    (
        "415",
        "`unsupported_media_type`: a body must be `application/json`",
        |_, _, body, _| body,
    ),
    (
        "429",
        "`rate_limited`: over the key's `limits.gateway_ops_per_minute`; `Retry-After` says when to retry",
        |path, _, _, _| path.starts_with("/api/gateways") || path.starts_with("/api/v1/gateways"),
    ),
];

/// The operations that send an RPC to a gateway, and so can answer with the gateway's failure.
const GATEWAY_CALLS: &[(&str, &str)] = &[
    ("post", "/api/gateways/{id}/suspend"),
    ("post", "/api/gateways/{id}/resume"),
    ("post", "/api/gateways/{id}/restart"),
    ("post", "/api/sessions/{key}/control"),
    ("post", "/api/spawn"),
    ("post", "/api/agents/sync"),
    ("post", "/api/approvals/{gateway_id}/{id}/resolve"),
];

const GATEWAY_FAILURES: &[(&str, &str)] = &[
    (
        "502",
        "`gateway_error`: the gateway refused the call or answered out of protocol",
    ),
    (
        "503",
        "`gateway_unavailable` or `no_healthy_gateway`: no connected gateway can take the call (the reason is given)",
    ),
    (
        "504",
        "`gateway_timeout`: the gateway did not answer within `gateways.rpc_timeout`",
    ),
];

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            )
            .build(),
    )
}

/// The least role an operation names in its security requirements (its scopes).
fn least_role(op: &Operation) -> Option<String> {
    op.security.as_ref()?.iter().find_map(|req| {
        let value = serde_json::to_value(req).ok()?;
        value
            .as_object()?
            .values()
            .find_map(|scopes| scopes.get(0)?.as_str().map(str::to_owned))
    })
}

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let ops = [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("patch", &mut item.patch),
            ];
            for (method, op) in ops {
                let Some(op) = op else { continue };
                if GATEWAY_CALLS.contains(&(method, path.as_str())) {
                    for (status, description) in GATEWAY_FAILURES {
                        op.responses
                            .responses
                            .entry((*status).to_owned())
                            .or_insert_with(|| error_response(description));
                    }
                }
                // Handlers in different modules share names (`list`, `get`); an operation id
                // must be unique in the document, so it is `<tag>_<handler>`.
                if let (Some(tag), Some(id)) = (
                    op.tags.as_ref().and_then(|t| t.first()),
                    op.operation_id.as_ref(),
                ) {
                    op.operation_id = Some(format!("{tag}_{id}"));
                }
                let params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let body = op.request_body.is_some();
                let role = least_role(op);
                for (status, description, applies) in COMMON {
                    if !applies(path, params, body, role.as_deref())
                        || op.responses.responses.contains_key(*status)
                    {
                        continue;
                    }
                    op.responses
                        .responses
                        .insert((*status).to_owned(), error_response(description));
                }
                // OpenAPI requires a description on every response; one a handler left
                // without gets the layer's wording for that status, else its reason phrase.
                for (status, response) in op.responses.responses.iter_mut() {
                    if let RefOr::T(response) = response
                        && response.description.is_empty()
                    {
                        response.description = default_description(status);
                    }
                }
            }
        }
    }
}

fn default_description(status: &str) -> String {
    if let Some((_, description, _)) = COMMON.iter().find(|(s, _, _)| *s == status) {
        return (*description).to_owned();
    }
    if let Some((_, description)) = GATEWAY_FAILURES.iter().find(|(s, _)| *s == status) {
        return (*description).to_owned();
    }
    status
        .parse::<u16>()
        .ok()
        .and_then(|s| actix_web::http::StatusCode::from_u16(s).ok())
        .and_then(|s| s.canonical_reason())
        .unwrap_or("response")
        .to_owned()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "gateway-supervisor",
        description = "Supervises fleets of OpenClaw gateways. Every /api route needs `x-api-key` or `Authorization: Bearer`; errors are `{error, message, details?}`."
    ),
    // The `/api` routes come from their one declaration (`api_routes.rs`, the `Declared`
    // modifier); these three are served outside it, with no key.
    paths(ops::healthz, ops::readyz, ops::metrics    ),
    components(schemas(error::ErrorBody, health::ProbeOne)),
    modifiers(&Declared, &Security, &CommonResponses),
    tags((name = "gateways", description = "The gateway registry"), (name = "operations", description = "Health, readiness, metrics, audit; fleet operations (drain, rolling restart)"), (name = "events", description = "Live events"), (name = "sessions", description = "Sessions across the fleet"), (name = "spawn", description = "Agent runs and processes"), (name = "agents", description = "Agents"), (name = "connections", description = "Direct CLI connections"), (name = "v1", description = "The v1 gateway API (same registry)"), (name = "usage", description = "Tokens and cost the gateways report, per gateway, agent and day"), (name = "cluster", description = "The instances sharing a PostgreSQL database and who links which gateway"), (name = "approvals", description = "The fleet's approvals inbox: every gateway's exec and plugin approvals, answered once"), (name = "config", description = "Desired configuration across the fleet: profiles per label selector, and each gateway's drift from them"), (name = "managed", description = "Gateways this daemon runs on its host: installed, started, restarted through OpenClaw's handoff and re-adopted across daemon restarts"), (name = "keys", description = "API keys: listed, rotated with an overlap, revoked"), (name = "spend", description = "Spend and run budgets per key and per tenant: every spawn reserved against them, settled from its gateway's own numbers"), (name = "cron", description = "Every gateway's cron jobs in one view, their runs, and the fires a gateway skipped"))
)]
pub struct ApiDoc;

/// The document, serialized once for the whole process on its first request. Built per worker
/// and kept as utoipa's tree (as the viewer's own route does), it held ~3 MB of every worker's
/// heap for a page read a few times in the daemon's life; the text is ~0.2 MB.
pub fn document() -> web::Bytes {
    static DOCUMENT: OnceLock<web::Bytes> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| {
            // Serializing a tree of strings and maps cannot fail; an empty document would be
            // refused by every client, so the failure stays visible.
            web::Bytes::from(ApiDoc::openapi().to_json().unwrap_or_default())
        })
        .clone()
}

/// `/api/openapi.json`: this API's description, for clients and the viewer at `/api/docs/`.
pub async fn serve() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_built_once_and_is_the_api_description() {
        let first = document();
        let doc: serde_json::Value = serde_json::from_slice(&first).expect("the document is JSON");
        assert!(doc["paths"]["/api/gateways"].is_object(), "{doc}");
        assert_eq!(first.as_ptr(), document().as_ptr(), "served from one copy");
    }

    /// What a generated client needs to see: the spawn's `Idempotency-Key` (a client generated
    /// from the document could not send it), and usage and the cluster under tags of their own
    /// (they sat under `operations`, among drains and restarts).
    #[test]
    fn a_generated_client_can_send_the_idempotency_key_and_finds_usage_and_cluster() {
        let doc: serde_json::Value = serde_json::from_slice(&document()).unwrap();
        let params = doc["paths"]["/api/spawn"]["post"]["parameters"]
            .as_array()
            .expect("the spawn's parameters");
        assert!(
            params
                .iter()
                .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
            "{params:?}"
        );
        assert_eq!(doc["paths"]["/api/usage"]["get"]["tags"][0], "usage");
        assert_eq!(doc["paths"]["/api/cluster"]["get"]["tags"][0], "cluster");
        let tags: Vec<&str> = doc["tags"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert!(
            tags.contains(&"usage") && tags.contains(&"cluster"),
            "{tags:?}"
        );
    }

    /// An `allOf` with a `oneOf` inside is what openapi-python-client cannot model: it dropped
    /// the responses of every operation endpoint (the gateway progress was one). No schema of
    /// the document has one.
    /// Two handlers of one tag with one name (`cron::list`, `cron_declarations::list`) made two
    /// operations `cron_list`: openapi-spec-validator refuses the document, and a generated
    /// client gets one method for both.
    #[test]
    fn every_operation_id_is_unique() {
        let doc: serde_json::Value = serde_json::from_slice(&document()).unwrap();
        let mut seen = std::collections::BTreeMap::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if let Some(id) = op["operationId"].as_str() {
                    let at = format!("{method} {path}");
                    if let Some(first) = seen.insert(id.to_owned(), at.clone()) {
                        panic!("operation id {id} names both {first} and {at}");
                    }
                }
            }
        }
        assert!(seen.len() > 50, "{} operations", seen.len());
    }

    #[test]
    fn no_schema_is_an_all_of_over_a_one_of() {
        fn walk(v: &serde_json::Value, doc: &serde_json::Value, at: &str, found: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(o) => {
                    if let Some(all) = o.get("allOf").and_then(|a| a.as_array()) {
                        let resolved = |m: &serde_json::Value| match m["$ref"].as_str() {
                            Some(r) => doc.pointer(r.trim_start_matches('#')).cloned(),
                            None => Some(m.clone()),
                        };
                        if all
                            .iter()
                            .filter_map(resolved)
                            .any(|m| m.get("oneOf").is_some() || m.get("anyOf").is_some())
                        {
                            found.push(at.to_owned());
                        }
                    }
                    for (k, v) in o {
                        walk(v, doc, &format!("{at}/{k}"), found);
                    }
                }
                serde_json::Value::Array(a) => {
                    for (i, v) in a.iter().enumerate() {
                        walk(v, doc, &format!("{at}/{i}"), found);
                    }
                }
                _ => {}
            }
        }
        let doc: serde_json::Value = serde_json::from_slice(&document()).unwrap();
        let mut found = Vec::new();
        walk(&doc, &doc, "", &mut found);
        assert!(found.is_empty(), "{found:#?}");
        let progress = &doc["components"]["schemas"]["GatewayProgressSchema"];
        assert_eq!(
            progress["properties"]["step"]["$ref"], "#/components/schemas/StepName",
            "{progress}"
        );
    }
}
#[cfg(test)]
mod words {
    use crate::domain::{DeliveryStatus, SpawnStatus};

    /// Generated clients check a status against the document's list of words: the list must be
    /// the words the API sends (it once named the variants, `Running`, and a generated Python
    /// client refused the `running` of a real spawn).
    #[test]
    fn the_document_lists_each_status_by_the_word_the_api_sends() {
        let doc: serde_json::Value = serde_json::from_slice(&super::document()).unwrap();
        let words = |name: &str| doc["components"]["schemas"][name]["enum"].clone();
        let spawn: Vec<&str> = SpawnStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(words("SpawnStatus"), serde_json::json!(spawn));
        let delivery: Vec<&str> = DeliveryStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(words("DeliveryStatus"), serde_json::json!(delivery));
    }
}
