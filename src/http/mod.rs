//! The HTTP front-end: routes, shared state, and JSON for every error (including unknown routes
//! and wrong methods).

pub mod agents;
pub mod api_routes;
pub mod approvals;
pub mod audit_export;
pub mod budgets;
pub mod cluster;
pub mod console;
pub mod console_sso;
pub mod cron;
pub mod cron_declarations;
pub mod error;
pub mod etag;
pub mod events;
mod fanout;
pub mod fleet;
pub mod fleet_config;
pub mod gateway_json;
pub mod gateway_ops;
pub mod gateway_page;
pub mod gateways;
pub mod health;
pub mod hosts;
pub mod json;
pub mod keys;
pub mod labels;
pub mod list_cache;
pub mod maintenance;
pub mod managed;
pub mod middleware;
pub mod observe;
pub mod openapi;
pub mod operation_json;
pub mod operations;
pub mod ops;
pub mod principal;
pub mod query;
pub mod relay;
pub mod roles;
pub mod rollouts;
pub mod route_check;
pub mod session_json;
pub mod sessions;
pub mod spawn;
pub mod spend;
mod sse_pump;
pub mod stream_slots;
pub mod usage;
pub mod v1;
pub mod visible;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use actix::Addr;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse, fn_service};
use actix_web::http::Method;
use actix_web::{HttpRequest, Resource, web};
use utoipa_swagger_ui::SwaggerUi;

use self::error::ApiError;
use self::json::BodyLimit;
use self::roles::public_get;
use crate::auth::KeyCache;
use crate::db::Store;
use crate::metrics::Metrics;
use crate::ratelimit::KeyedLimiter;
use gateway_supervisor_actors::RegistryActor;

/// Shared by every worker. Holds handles only; gateway state lives in the actors.
#[derive(Clone)]
pub struct AppState {
    pub registry: Addr<RegistryActor>,
    /// What each key sees of the fleet (`visible.rs`).
    pub scopes: visible::Scopes,
    /// The serialized `GET /api/gateways` body, rebuilt after the registry changes.
    pub gateway_list: Arc<list_cache::GatewayListCache>,
    /// The `ETag`s of the gateway reads.
    pub gateway_tags: Arc<etag::Validator>,
    pub session_list: Arc<list_cache::SessionListCache>,
    pub store: Store,
    pub keys: Arc<KeyCache>,
    pub metrics: Arc<Metrics>,
    pub gateway_ops_limiter: Arc<KeyedLimiter>,
    pub manual_health_limiter: Arc<KeyedLimiter>,
    pub session_control_limiter: Arc<KeyedLimiter<String>>,
    pub probe_timeout: std::time::Duration,
    /// `log.access`: one log line per request.
    pub access_log: bool,
    /// `server.stream_keepalive`: an event stream's longest silence.
    pub stream_keepalive: std::time::Duration,
    /// The open event streams, bounded per key and in all.
    pub streams: Arc<stream_slots::StreamSlots>,
    pub events: gateway_supervisor_actors::events::EventBus,
    pub logs: crate::logs::LogBuffer,
    pub v1: v1::V1Settings,
    /// Use cases that reach gateways (gateway operations so far).
    pub fleet: Arc<crate::fleet::Fleet>,
    /// The fleet's approvals inbox.
    pub approvals: Arc<crate::approvals::Inbox>,
    /// Config profiles and drift.
    pub fleet_config: Arc<crate::fleet_config::FleetConfig>,
    /// The fleet's cron inventory and watchdog.
    pub cron: Arc<crate::cron::Cron>,
    /// The gateways this daemon runs on its host.
    pub managed: Arc<crate::managed::Managed>,
    pub ready: Arc<AtomicBool>,
    /// Set to `true` when the daemon stops: event streams end at once instead of holding the
    /// graceful stop for `server.shutdown_timeout`.
    pub shutdown: Arc<tokio::sync::watch::Sender<bool>>,
    /// This instance, when the daemon runs as one of a cluster (PostgreSQL).
    pub cluster: Option<crate::cluster::Cluster>,
    /// How the web console's users sign in: sessions, login limits, single sign-on.
    pub console: Arc<console::ConsoleAuth>,
}

impl AppState {
    /// The fleet's gateways to read (`gateway_reads`): every handler's one door to them.
    pub fn gateways(&self) -> crate::gateway_reads::GatewayReads {
        let stored = self.cluster.as_ref().map(|_| self.store.clone());
        crate::gateway_reads::GatewayReads::new(self.registry.clone(), stored)
    }

    /// `limiter`'s verdict on `key`: a refusal is counted (`rate_limited_total{limit}`, by the
    /// limiter's name) and answered 429 naming `what`, with when to retry.
    pub fn within<K: std::hash::Hash + Eq + Clone>(
        &self,
        limiter: &KeyedLimiter<K>,
        key: K,
        what: &'static str,
    ) -> Result<(), ApiError> {
        limiter.check(key).map_err(|retry_after_secs| {
            self.metrics
                .rate_limited
                .with_label_values(&[limiter.name])
                .inc();
            ApiError::RateLimited {
                limit: what,
                retry_after_secs,
            }
        })
    }

    /// A slot for one more event stream of the caller's key (`server.streams_per_key`,
    /// `server.streams_max`); a refusal is counted (`rate_limited_total{limit="event_streams"}`)
    /// and answered 429, to be tried again once a stream of the key has closed.
    pub fn stream_slot(&self, req: &HttpRequest) -> Result<stream_slots::Slot, ApiError> {
        use actix_web::HttpMessage;
        let key_id = req
            .extensions()
            .get::<crate::auth::Principal>()
            .map_or(0, |p| p.key_id);
        self.streams.take(key_id).map_err(|full| {
            self.metrics
                .rate_limited
                .with_label_values(&["event_streams"])
                .inc();
            ApiError::RateLimited {
                limit: full.what(),
                retry_after_secs: 5,
            }
        })
    }
}

/// Runs a storage call on the blocking pool; a pool failure or a database error is 503.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::db::DbError> + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::storage(e.to_string()))
}

/// A store call from a handler on `state`'s store, its error the API's ([`blocking`]).
pub(crate) async fn stored<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&crate::db::Store) -> Result<T, crate::db::DbError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = state.store.clone();
    blocking(move || f(&store)).await
}

/// Who may learn what a path holds: anyone, or (the API's) only a caller with a valid key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
    Public,
    /// 401 comes before 404 and 405: a caller without a key learns nothing about which paths
    /// exist or what they answer.
    Api,
}

/// The answer to a request no route of ours took: 404 in JSON (after the gate's check).
fn not_found(
    gate: Gate,
) -> impl ServiceFactory<
    ServiceRequest,
    Config = (),
    Response = ServiceResponse,
    Error = actix_web::Error,
    InitError = (),
> {
    fn_service(move |req: ServiceRequest| {
        let err = ApiError::RouteNotFound(format!(
            "{} {}",
            middleware::method_label(req.method()),
            gateway_supervisor_actors::bounded::text(req.path(), 256)
        ));
        unrouted(req, gate, err)
    })
}

/// `otherwise`, unless the gate refuses the caller first.
async fn unrouted(
    req: ServiceRequest,
    gate: Gate,
    otherwise: ApiError,
) -> Result<ServiceResponse, actix_web::Error> {
    let refused = match gate {
        Gate::Public => None,
        Gate::Api => middleware::admission(&req).settle(&req).await.err(),
    };
    Ok(req.error_response(refused.unwrap_or(otherwise)))
}

/// A public resource with its routes (a `GET` answers `HEAD` too); any other method answers 405
/// in JSON with an `Allow` header naming the methods the resource has (RFC 9110 §15.5.6).
fn resource(path: &str, routes: Vec<roles::MethodRoute>) -> Resource {
    gated_resource(path, routes, Gate::Public)
}

/// An `/api` resource: as [`resource`], with 405 only for a caller with a valid key.
fn api_resource(path: &str, routes: Vec<roles::MethodRoute>) -> Resource {
    gated_resource(path, routes, Gate::Api)
}

fn gated_resource(path: &str, routes: Vec<roles::MethodRoute>, gate: Gate) -> Resource {
    let allow = routes
        .iter()
        .flat_map(|(method, _)| match *method {
            Method::GET => vec!["GET", "HEAD"],
            ref other => vec![other.as_str()],
        })
        .collect::<Vec<_>>()
        .join(", ");
    let resource = routes.into_iter().fold(
        web::resource(path).app_data(observe::RouteSeries::default()),
        |r, (_, route)| r.route(route),
    );
    resource.default_service(fn_service(move |req: ServiceRequest| {
        let err = ApiError::MethodNotAllowed {
            method: middleware::method_label(req.method()).to_owned(),
            allow: allow.clone(),
        };
        unrouted(req, gate, err)
    }))
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
            // The API first: actix tries a router's patterns in order, each at the cost of a
            // capture buffer made and dropped, and the API is nearly every request; the lists,
            // the most read, before all (docs/design.md "Serving reads").
            .configure(api_routes::register_lists)
            // Its own description (and its vendored viewer) is public, it holds no data.
            .service(resource(
                "/api/openapi.json",
                vec![public_get(openapi::serve)],
            ))
            // A scope, matched by its prefix: the viewer's pattern (a regex) is tried only for
            // its own paths, not for every /api request that follows it.
            .service(
                web::scope("/api/docs")
                    // Without the slash the viewer's relative links break: send the client to
                    // it.
                    .service(resource("", vec![public_get(ops::docs)]))
                    .service(
                        SwaggerUi::new("/{_:.*}")
                            .config(utoipa_swagger_ui::Config::from("/api/openapi.json")),
                    )
                    .default_service(not_found(Gate::Public)),
            )
            .configure(api_routes::register)
            .service(resource("/healthz", vec![public_get(ops::healthz)]))
            .service(resource("/readyz", vec![public_get(ops::readyz)]))
            // The web console: public files; its session routes check what they need.
            .service(resource("/", vec![public_get(console::root)]))
            .service(
                web::scope("/console")
                    .service(resource(
                        "/login",
                        vec![(Method::POST, web::post().to(console::login))],
                    ))
                    .service(resource(
                        "/logout",
                        vec![(Method::POST, web::post().to(console::logout))],
                    ))
                    .service(resource("/session", vec![public_get(console::session)]))
                    .service(resource("/sso", vec![public_get(console_sso::info)]))
                    .service(resource("/sso/login", vec![public_get(console_sso::login)]))
                    .service(resource(
                        "/sso/callback",
                        vec![public_get(console_sso::callback)],
                    ))
                    .service(resource("/{file:.*}", vec![public_get(console::asset)]))
                    .default_service(not_found(Gate::Public)),
            )
            // An /api path no route took: 401 before 404, as in every /api scope.
            .service(web::scope("/api").default_service(not_found(Gate::Api)));
        if metrics_here {
            cfg.service(resource("/metrics", vec![public_get(ops::metrics)]));
        }
        cfg.default_service(not_found(Gate::Public));
    }
}

/// Routes for a separate metrics listener (`metrics.bind`).
pub fn metrics_routes(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(state))
            .service(resource("/metrics", vec![public_get(ops::metrics)]))
            .default_service(not_found(Gate::Public));
    }
}
