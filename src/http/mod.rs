//! The HTTP front-end: routes, shared state, and JSON for every error (including unknown routes
//! and wrong methods).

pub mod agents;
pub mod error;
pub mod events;
pub mod gateway_ops;
pub mod gateways;
pub mod health;
pub mod json;
pub mod list_cache;
pub mod middleware;
pub mod openapi;
pub mod ops;
pub mod principal;
pub mod sessions;
pub mod spawn;
pub mod v1;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use actix::Addr;
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, Resource, web};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use self::error::ApiError;
use self::json::BodyLimit;
use crate::auth::KeyCache;
use crate::db::Store;
use crate::metrics::Metrics;
use crate::ratelimit::KeyedLimiter;
use gateway_supervisor_actors::RegistryActor;

/// Shared by every worker. Holds handles only; gateway state lives in the actors.
#[derive(Clone)]
pub struct AppState {
    pub registry: Addr<RegistryActor>,
    /// The serialized `GET /api/gateways` body, rebuilt after the registry changes.
    pub gateway_list: Arc<list_cache::GatewayListCache>,
    pub store: Store,
    pub keys: Arc<KeyCache>,
    pub metrics: Arc<Metrics>,
    pub gateway_ops_limiter: Arc<KeyedLimiter>,
    pub manual_health_limiter: Arc<KeyedLimiter>,
    pub session_control_limiter: Arc<KeyedLimiter<String>>,
    pub probe_timeout: std::time::Duration,
    pub events: gateway_supervisor_actors::events::EventBus,
    pub logs: crate::logs::LogBuffer,
    pub v1: v1::V1Settings,
    /// Suspensions this daemon made, by gateway (needed to resume them).
    pub suspensions: Arc<std::sync::Mutex<std::collections::HashMap<i64, String>>>,
    pub ready: Arc<AtomicBool>,
}

/// Runs a storage call on the blocking pool; a pool failure or a database error is 503.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::db::DbError> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Storage(e.to_string()))
}

async fn route_not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound(format!(
        "{} {}",
        req.method(),
        req.path()
    )))
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed(req.method().to_string()))
}

/// A resource whose unsupported methods answer 405 in JSON.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

fn path_error(err: actix_web::error::PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::InvalidRequest {
        message: format!("invalid path parameter: {err}"),
        field: Some("id".into()),
    }
    .into()
}

fn query_error(err: actix_web::error::QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::InvalidRequest {
        message: format!("invalid query string: {err}"),
        field: None,
    }
    .into()
}

/// Routes for the main listener. `/metrics` is included unless served on its own listener.
pub fn routes(
    state: AppState,
    max_body: usize,
    metrics_here: bool,
) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(state))
            .app_data(web::Data::new(BodyLimit(max_body)))
            .app_data(web::PathConfig::default().error_handler(path_error))
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .service(resource("/healthz").route(web::get().to(ops::healthz)))
            .service(resource("/readyz").route(web::get().to(ops::readyz)))
            // The API's own description (and its vendored viewer) is public: it holds no data.
            .service(
                SwaggerUi::new("/api/docs/{_:.*}")
                    .url("/api/openapi.json", openapi::ApiDoc::openapi()),
            );
        if metrics_here {
            cfg.service(resource("/metrics").route(web::get().to(ops::metrics)));
        }
        cfg.service(
            web::scope("/api")
                .wrap(from_fn(middleware::authenticate))
                .service(
                    web::scope("/gateways")
                        .wrap(from_fn(middleware::limit_gateway_ops))
                        .service(resource("/health").route(web::post().to(health::probe)))
                        .service(resource("/health/history").route(web::get().to(health::history)))
                        .service(
                            resource("")
                                .route(web::get().to(gateways::list))
                                .route(web::post().to(gateways::create))
                                .route(web::put().to(gateways::update))
                                .route(web::delete().to(gateways::delete)),
                        )
                        .service(
                            resource(r"/{id:\d+}/suspend")
                                .route(web::post().to(gateway_ops::suspend)),
                        )
                        .service(
                            resource(r"/{id:\d+}/resume")
                                .route(web::post().to(gateway_ops::resume)),
                        )
                        .service(
                            resource(r"/{id:\d+}/restart")
                                .route(web::post().to(gateway_ops::restart)),
                        )
                        .service(
                            resource(r"/{id:\d+}")
                                .route(web::get().to(gateways::get))
                                .route(web::put().to(gateways::update_by_path))
                                .route(web::delete().to(gateways::delete_by_path)),
                        )
                        .default_service(web::to(route_not_found)),
                )
                .service(
                    web::scope("/v1/gateways")
                        .wrap(from_fn(middleware::limit_gateway_ops))
                        .service(
                            resource("")
                                .route(web::get().to(v1::list))
                                .route(web::post().to(v1::create)),
                        )
                        .service(
                            resource(r"/{id:\d+}")
                                .route(web::get().to(v1::get))
                                .route(web::patch().to(v1::update))
                                .route(web::delete().to(v1::delete)),
                        )
                        .default_service(web::to(route_not_found)),
                )
                .service(resource("/audit").route(web::get().to(ops::audit)))
                .service(resource("/logs").route(web::get().to(ops::logs)))
                .service(resource("/events").route(web::get().to(events::sse)))
                .service(resource("/sessions").route(web::get().to(sessions::list)))
                .service(resource("/spawn").route(web::post().to(spawn::create)))
                .service(resource("/agents").route(web::get().to(agents::list)))
                .service(resource("/agents/sync").route(web::post().to(agents::sync)))
                .service(
                    resource(r"/agents/{id:\d+}")
                        .route(web::get().to(agents::get))
                        .route(web::put().to(agents::update)),
                )
                .service(
                    resource(r"/agents/{id:\d+}/heartbeat")
                        .route(web::post().to(agents::heartbeat)),
                )
                .service(
                    resource("/connect")
                        .route(web::get().to(agents::connections))
                        .route(web::post().to(agents::connect))
                        .route(web::delete().to(agents::disconnect)),
                )
                .service(resource("/spawn/{id}").route(web::get().to(spawn::get)))
                .service(
                    resource("/sessions/{key}/control").route(web::post().to(sessions::control)),
                )
                .service(resource("/ws").route(web::get().to(events::ws)))
                .default_service(web::to(route_not_found)),
        )
        .default_service(web::to(route_not_found));
    }
}

/// Routes for a separate metrics listener (`metrics.bind`).
pub fn metrics_routes(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(state))
            .service(resource("/metrics").route(web::get().to(ops::metrics)))
            .default_service(web::to(route_not_found));
    }
}
