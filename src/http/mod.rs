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
pub mod roles;
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
use self::roles::{delete, get, patch, post, put};
use crate::auth::KeyCache;
use crate::auth::Role::{Admin, Operator, Viewer};
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
                        .service(resource("/health").route(post(Operator, health::probe)))
                        .service(resource("/health/history").route(get(Viewer, health::history)))
                        .service(
                            resource("")
                                .route(get(Viewer, gateways::list))
                                .route(post(Admin, gateways::create))
                                .route(put(Admin, gateways::update))
                                .route(delete(Admin, gateways::delete)),
                        )
                        .service(
                            resource(r"/{id:\d+}/suspend").route(post(Admin, gateway_ops::suspend)),
                        )
                        .service(
                            resource(r"/{id:\d+}/resume").route(post(Admin, gateway_ops::resume)),
                        )
                        .service(
                            resource(r"/{id:\d+}/restart").route(post(Admin, gateway_ops::restart)),
                        )
                        .service(
                            resource(r"/{id:\d+}")
                                .route(get(Viewer, gateways::get))
                                .route(put(Admin, gateways::update_by_path))
                                .route(delete(Admin, gateways::delete_by_path)),
                        )
                        .default_service(web::to(route_not_found)),
                )
                .service(
                    web::scope("/v1/gateways")
                        .wrap(from_fn(middleware::limit_gateway_ops))
                        .service(
                            resource("")
                                .route(get(Viewer, v1::list))
                                .route(post(Admin, v1::create)),
                        )
                        .service(
                            resource(r"/{id:\d+}")
                                .route(get(Viewer, v1::get))
                                .route(patch(Admin, v1::update))
                                .route(delete(Admin, v1::delete)),
                        )
                        .default_service(web::to(route_not_found)),
                )
                .service(resource("/audit").route(get(Admin, ops::audit)))
                .service(resource("/logs").route(get(Viewer, ops::logs)))
                .service(resource("/events").route(get(Viewer, events::sse)))
                .service(resource("/sessions").route(get(Viewer, sessions::list)))
                .service(resource("/spawn").route(post(Operator, spawn::create)))
                .service(resource("/agents").route(get(Viewer, agents::list)))
                .service(resource("/agents/sync").route(post(Admin, agents::sync)))
                .service(
                    resource(r"/agents/{id:\d+}")
                        .route(get(Viewer, agents::get))
                        .route(put(Admin, agents::update)),
                )
                .service(
                    resource(r"/agents/{id:\d+}/heartbeat")
                        .route(post(Operator, agents::heartbeat)),
                )
                .service(
                    resource("/connect")
                        .route(get(Viewer, agents::connections))
                        .route(post(Operator, agents::connect))
                        .route(delete(Operator, agents::disconnect)),
                )
                .service(resource("/spawn/{id}").route(get(Viewer, spawn::get)))
                .service(
                    resource("/sessions/{key}/control").route(post(Operator, sessions::control)),
                )
                .service(resource("/ws").route(get(Viewer, events::ws)))
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
