//! The OpenAPI document (`/api/openapi.json`) and the vendored Swagger UI (`/api/docs/`).

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{agents, error, events, gateway_ops, gateways, health, ops, sessions, spawn, v1};

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

#[derive(OpenApi)]
#[openapi(
    info(
        title = "gateway-supervisor",
        description = "Supervises fleets of OpenClaw gateways. Every /api route needs `x-api-key` or `Authorization: Bearer`; errors are `{error, message, details?}`."
    ),
    paths(
        gateways::list, gateways::get, gateways::create, gateways::update, gateways::update_by_path,
        gateways::delete, gateways::delete_by_path, health::probe, health::history,
        ops::healthz, ops::readyz, ops::metrics, ops::audit, ops::logs, events::sse, events::ws, sessions::list, sessions::control, spawn::create, spawn::get, agents::list, agents::get, agents::update, agents::sync, agents::connect, agents::connections, agents::disconnect, agents::heartbeat, gateway_ops::suspend, gateway_ops::resume, gateway_ops::restart, v1::create, v1::list, v1::get, v1::update, v1::delete,
    ),
    components(schemas(error::ErrorBody, health::ProbeOne)),
    modifiers(&Security),
    tags((name = "gateways", description = "The gateway registry"), (name = "operations", description = "Health, readiness, metrics, audit"), (name = "events", description = "Live events"), (name = "sessions", description = "Sessions across the fleet"), (name = "spawn", description = "Agent runs and processes"), (name = "agents", description = "Agents"), (name = "connections", description = "Direct CLI connections"), (name = "v1", description = "The v1 gateway API (same registry)"))
)]
pub struct ApiDoc;
