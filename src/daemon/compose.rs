//! The composition root's parts: what the daemon is built from once the store, the metrics and
//! the registry exist — the cluster membership (on PostgreSQL), and the services that govern
//! the fleet, each given only what it uses (the approvals inbox the fleet's calls, the desired
//! configuration the operations engine and its hands), with the background loops the managed
//! gateways need. `serve` (`daemon/mod.rs`) calls these in order; `run` serves.

use std::sync::Arc;
use std::time::Duration;

use crate::gateway_reads::CallTargets;
use actix::Addr;
use gateway_supervisor_actors::RegistryActor;
use gateway_supervisor_actors::events::EventBus;
use tracing::info;

use std::sync::atomic::AtomicBool;

use super::DaemonError;
use super::background::Background;
use crate::auth::KeyCache;
use crate::config::Config;
use crate::db::{Backend, Store};
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::ratelimit::KeyedLimiter;

/// How often this host's record is written (`GET /api/hosts`).
const HOST_REPORT_INTERVAL: Duration = Duration::from_secs(30);

/// How many gateways this daemon can link (`cluster::capacity`): its open-file limit, raised
/// to the hard one, less a reserve and the database pool, or `cluster.max_gateways` when lower
/// (`None`: no bound known). Alone it links that many and names the rest unplaced; in a
/// cluster it advertises it and placement keeps within it.
pub(super) fn capacity(cfg: &Config, backend: &Backend) -> Option<u64> {
    // The pool's connections are files too (8 when unset on PostgreSQL; SQLite's pool is of
    // the same file).
    let pool = match (cfg.database.pool_size, backend) {
        (0, Backend::Postgres(_)) => 8,
        (n, _) => n,
    };
    crate::cluster::capacity::raise_open_files()
        .map(|files| crate::cluster::capacity::of(files, pool, cfg.cluster.max_gateways))
        .or(cfg.cluster.max_gateways)
}

/// On PostgreSQL this daemon is one instance of a cluster: it links the gateways it holds
/// leases on, and nothing until its first renewal round. `None` on SQLite.
pub(super) fn cluster_of(
    cfg: &Config,
    store: &Store,
    metrics: &Metrics,
    capacity: Option<u64>,
    feed_start: Option<i64>,
) -> Result<Option<crate::cluster::Cluster>, DaemonError> {
    Ok(
        // On PostgreSQL (where the change feed has a start) this daemon is one instance of a
        // cluster: it links the gateways it holds leases on, and nothing until its first
        // renewal round.
        match feed_start {
            Some(feed_start) => {
                let cluster_metrics =
                    crate::cluster::ClusterMetrics::new(metrics.gateways_unplaced.clone())
                        .map_err(|e| DaemonError::Startup(e.to_string()))?;
                metrics
                    .register_cluster(&cluster_metrics)
                    .map_err(|e| DaemonError::Startup(e.to_string()))?;
                let id = cfg.cluster.instance_id(&cfg.state.dir);
                info!(instance = %id, capacity = ?capacity, "clustered on PostgreSQL");
                Some(crate::cluster::Cluster::new(
                    id,
                    cfg.cluster.lease_ttl,
                    crate::cluster::forward::ForwardKey::derive(store.cipher.derived_secret()),
                    cfg.gateways.operation_timeout + Duration::from_secs(5),
                    capacity,
                    cluster_metrics,
                    feed_start,
                ))
            }
            None => None,
        },
    )
}

/// What every service is built on.
pub(super) struct Base {
    pub(super) registry: Addr<RegistryActor>,
    pub(super) targets: CallTargets,
    pub(super) store: Store,
    pub(super) events: EventBus,
    pub(super) metrics: Arc<Metrics>,
    /// This instance's id, in a cluster.
    pub(super) instance: Option<String>,
    pub(super) device_id: String,
}

/// The services that govern the fleet.
pub(super) struct Services {
    fleet: Arc<crate::fleet::Fleet>,
    approvals: Arc<crate::approvals::Inbox>,
    fleet_config: Arc<crate::fleet_config::FleetConfig>,
    cron: Arc<crate::cron::Cron>,
    managed: Arc<crate::managed::Managed>,
}

/// Builds the fleet and its governors, with the loops started while building them; resumes
/// this host's managed gateways and declares the configuration file's.
pub(super) async fn services(
    cfg: &Config,
    base: Base,
    configured: Vec<crate::managed::Declaration>,
) -> (Services, Background) {
    let Base {
        registry,
        targets,
        store,
        events,
        metrics,
        ..
    } = &base;
    let (registry, targets, store, events, metrics) = (
        registry.clone(),
        targets.clone(),
        store.clone(),
        events.clone(),
        metrics.clone(),
    );
    let clustered = base.instance.is_some();
    let fleet = Arc::new(crate::fleet::Fleet::new(crate::fleet::FleetParts {
        registry: registry.clone(),
        targets,
        store: store.clone(),
        events: events.clone(),
        deadlines: crate::fleet::Deadlines {
            call: cfg.gateways.rpc_timeout,
            operation: cfg.gateways.operation_timeout,
        },
        counters: metrics.fleet.clone(),
        instance: base.instance.clone(),
        agent_budgets: cfg
            .usage
            .budgets
            .iter()
            .map(|(agent, b)| (agent.clone(), b.daily_usd))
            .collect(),
    }));
    let approvals = Arc::new(crate::approvals::Inbox::new(
        store.clone(),
        fleet.ctx.clone(),
        events.clone(),
        cfg.approvals.clone(),
        metrics.approvals.clone(),
        base.device_id.clone(),
    ));
    let fleet_config = Arc::new(crate::fleet_config::FleetConfig::new(
        store.clone(),
        fleet.operations.clone(),
        events.clone(),
        cfg.config.clone(),
        metrics.drift.clone(),
    ));
    fleet
        .operations
        .add_playbook(crate::fleet_config::rollout::playbook(fleet_config.clone()));
    let cron = Arc::new(crate::cron::Cron::new(
        store.clone(),
        fleet.operations.clone(),
        events.clone(),
        cfg.cron.clone(),
        metrics.cron.clone(),
    ));
    fleet
        .operations
        .add_playbook(crate::cron::declared::playbook(cron.clone()));
    let managed = Arc::new(
        crate::managed::Managed::new(
            store.clone(),
            events.clone(),
            registry.clone(),
            crate::gateway_reads::GatewayReads::new(
                registry.clone(),
                clustered.then(|| store.clone()),
            ),
            cfg.managed_runtime.clone(),
            &cfg.state.dir,
            cfg.cluster.host_id(),
        )
        .in_cluster(clustered.then_some(cfg.cluster.lease_ttl)),
    );
    fleet.operations.run_processes_with(managed.clone());
    let mut background = Background::default();
    // What this host is (`GET /api/hosts`), stored every 30 s.
    let reporter = managed.clone();
    background.start("host report", async move {
        loop {
            if let Err(e) = reporter.report_host().await {
                tracing::debug!(error = %e, "cannot record this host");
            }
            tokio::time::sleep(HOST_REPORT_INTERVAL).await;
        }
    });
    // Managed gateways' own output into the log tail, every 2 s.
    let tail = managed.clone();
    background.start("managed output tail", async move {
        loop {
            tail.tail_outputs().await;
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
    });
    match managed.resume().await {
        Ok(0) => {}
        Ok(n) => info!(count = n, "supervising this host's managed gateways"),
        Err(e) => tracing::warn!(error = %e, "cannot read this host's managed gateways"),
    }
    let declared = crate::managed::declare::apply_configured(&managed, configured).await;
    if !declared.is_empty() {
        info!(names = ?declared, "declared the configuration file's managed gateways");
    }
    let services = Services {
        fleet,
        approvals,
        fleet_config,
        cron,
        managed,
    };
    (services, background)
}

/// The HTTP side's own parts, made from the configuration and the registry before it starts:
/// the list caches and validators fed by its change counters, the rate limiters, the stream
/// slots.
pub(super) struct Front {
    gateway_list: Arc<http::list_cache::GatewayListCache>,
    gateway_tags: Arc<http::etag::Validator>,
    session_list: Arc<http::list_cache::SessionListCache>,
    gateway_ops: Arc<KeyedLimiter>,
    manual_health: Arc<KeyedLimiter>,
    session_control: Arc<KeyedLimiter<String>>,
    console_logins: Arc<KeyedLimiter<std::net::IpAddr>>,
}

pub(super) fn front(cfg: &Config, registry: &RegistryActor) -> Front {
    let limits = &cfg.limits;
    Front {
        gateway_list: Arc::new(http::list_cache::GatewayListCache::new(registry.changes())),
        gateway_tags: Arc::new(http::etag::Validator::new(registry.changes())),
        session_list: Arc::new(http::list_cache::SessionListCache::new(
            registry.sessions_version(),
        )),
        gateway_ops: Arc::new(KeyedLimiter::per_minute(
            "gateway_ops",
            limits.gateway_ops_per_minute,
        )),
        manual_health: Arc::new(KeyedLimiter::per_period(
            "manual_health",
            limits.manual_health_interval,
        )),
        session_control: Arc::new(KeyedLimiter::per_minute(
            "session_control",
            limits.session_control_per_minute,
        )),
        console_logins: Arc::new(KeyedLimiter::per_minute(
            "console_login",
            http::console::LOGINS_PER_MINUTE,
        )),
    }
}

/// What the API serves from, besides the services.
pub(super) struct Served {
    pub(super) registry: Addr<RegistryActor>,
    pub(super) scopes: http::visible::Scopes,
    pub(super) store: Store,
    pub(super) keys: Arc<KeyCache>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) events: EventBus,
    pub(super) v1: http::v1::V1Settings,
    pub(super) cluster: Option<crate::cluster::Cluster>,
}

/// The application state the handlers read.
pub(super) fn app_state(
    cfg: &Config,
    front: Front,
    served: Served,
    services: Services,
) -> Result<AppState, crate::sso::SsoError> {
    let derived = served.store.cipher.derived_secret();
    let sso = crate::sso::Sso::new(&cfg.sso, derived)?;
    let console = Arc::new(http::console::ConsoleAuth {
        sessions: crate::console_session::SessionSigner::new(derived),
        logins: front.console_logins,
        sso,
        sign_ins: crate::ratelimit::KeyedLimiter::per_minute(
            "console_sign_in",
            http::console::SIGN_INS_PER_MINUTE,
        ),
    });
    Ok(AppState {
        registry: served.registry,
        scopes: served.scopes,
        gateway_list: front.gateway_list,
        gateway_tags: front.gateway_tags,
        session_list: front.session_list,
        store: served.store,
        keys: served.keys,
        metrics: served.metrics,
        gateway_ops_limiter: front.gateway_ops,
        manual_health_limiter: front.manual_health,
        session_control_limiter: front.session_control,
        probe_timeout: cfg.gateways.probe_timeout,
        access_log: cfg.log.access,
        stream_keepalive: cfg.server.stream_keepalive,
        streams: http::stream_slots::StreamSlots::new(
            cfg.server.streams_per_key,
            cfg.server.streams_max,
        ),
        logs: crate::logs::LogBuffer::default(),
        v1: served.v1,
        events: served.events,
        fleet: services.fleet,
        approvals: services.approvals,
        fleet_config: services.fleet_config,
        cron: services.cron,
        managed: services.managed,
        ready: Arc::new(AtomicBool::new(false)),
        shutdown: Arc::new(tokio::sync::watch::Sender::new(false)),
        cluster: served.cluster,
        console,
    })
}
