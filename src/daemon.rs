//! `serve`: start-up, the HTTP listeners, signals (SIGTERM/SIGINT graceful stop, SIGHUP reload),
//! the systemd watchdog and the API-key refresh loop.

use gateway_supervisor_actors::events::EventKind;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix::{Actor, Addr};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};

use crate::auth::{KeyCache, Role};
use crate::config::{Config, ConfigError, FlagOverrides};
use crate::db::{self, Backend, DbError, Store};
use crate::http::{self, AppState, middleware};
use crate::logging::{self, LogError, LogHandle};
use crate::metrics::Metrics;
use crate::ratelimit::KeyedLimiter;
use crate::secrets::{self, Cipher, SecretsError};
use crate::{seed, systemd};
use gateway_supervisor_actors::RegistryActor;
use gateway_supervisor_actors::events::EventBus;
use gateway_supervisor_actors::link::LinkContext;
use gateway_supervisor_actors::messages::{CreateGateway, Ping, StopAllLinks};
use gateway_supervisor_actors::model::Caller;

pub const ADMIN_KEY_FILE: &str = "admin.key";
/// The bound HTTP address, written at start (useful with `server.bind = "127.0.0.1:0"`).
pub const HTTP_ADDR_FILE: &str = "http.addr";

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("state directory {path}: {reason}")]
    StateDir { path: PathBuf, reason: String },
    #[error("default gateway from the environment: {0}")]
    Seed(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error(transparent)]
    Lock(#[from] crate::state_lock::LockError),
    #[error("{0}")]
    Startup(String),
}

/// Creates the state directory (0700) if missing.
pub fn ensure_state_dir(dir: &Path) -> Result<(), DaemonError> {
    let err = |e: std::io::Error| DaemonError::StateDir {
        path: dir.to_owned(),
        reason: e.to_string(),
    };
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(err)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

/// The master key as the configuration and the service manager give it: the systemd credential
/// (`$CREDENTIALS_DIRECTORY`), then `secrets.master_key`, then `<state>/master.key` — generated
/// only for a `new_database`. One rule for the daemon and for the commands that read its data.
pub fn master_key(
    cfg: &Config,
    new_database: bool,
) -> Result<(secrets::MasterKey, secrets::KeySource), SecretsError> {
    let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    secrets::load_master_key(
        credentials.as_deref(),
        cfg.secrets.master_key.as_deref(),
        &cfg.state.dir,
        new_database,
    )
}

/// Opens and migrates the database and unlocks the secrets: everything a command needs.
pub fn open_store(cfg: &Config) -> Result<(Store, Backend, usize), DaemonError> {
    ensure_state_dir(&cfg.state.dir)?;
    let (pool, backend) = db::open(&cfg.database.url, cfg.database.pool_size)?;
    let migrated = db::migrate(&pool)?;
    let new_database = !db::secrets::has_master_key_check(&pool)?;
    let (key, source) = master_key(cfg, new_database)?;
    info!(source = %source, "master key loaded");
    let store = Store {
        pool,
        cipher: Arc::new(Cipher::new(&key)),
    };
    store.verify_master_key().map_err(|e| match e {
        DbError::Secrets(SecretsError::Decrypt) => DaemonError::Startup(format!(
            "the master key from {source} is not the key this database was encrypted with; \
             restore the original key (never generate a new one for an existing database)"
        )),
        other => other.into(),
    })?;
    Ok((store, backend, migrated))
}

/// On the very first start (no API key at all), creates an admin key and writes it to
/// `<state>/admin.key` (0600). Returns the file's path when it did.
fn first_start_admin_key(store: &Store, state_dir: &Path) -> Result<Option<PathBuf>, DaemonError> {
    if store.count_api_keys()? > 0 {
        return Ok(None);
    }
    let path = state_dir.join(ADMIN_KEY_FILE);
    if path.exists() {
        // Left over from another database; the new key replaces it.
        fs::remove_file(&path).map_err(|e| DaemonError::StateDir {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    }
    let (_row, key) =
        store.create_api_key("initial-admin", Role::Admin, &Caller::system("first-start"))?;
    secrets::write_private_file(&path, format!("{}\n", key.reveal()).as_bytes())?;
    Ok(Some(path))
}

struct Running {
    config_file: Option<PathBuf>,
    flags: FlagOverrides,
    cfg: Config,
    log: LogHandle,
    state: AppState,
    listeners: Listeners,
    /// In a cluster: the events this instance publishes, for the database.
    event_outbox: Option<tokio::sync::mpsc::Receiver<gateway_supervisor_actors::events::Event>>,
}

pub fn serve(config_file: Option<PathBuf>, flags: FlagOverrides) -> Result<(), DaemonError> {
    gateway_supervisor_actors::tls::install_default_provider();
    let cfg = Config::load(config_file.as_deref(), &flags)?;
    let log = logging::init(&cfg.log)?;
    info!(
        version = env!("CARGO_PKG_VERSION"),
        "gateway-supervisor starting"
    );
    // One daemon per state directory, held until `serve` returns.
    ensure_state_dir(&cfg.state.dir)?;
    let _lock = crate::state_lock::acquire(&cfg.state.dir)?;
    // The listeners first: a busy port fails the start with one line, before any actor runs
    // (an actor started and then dropped unpolled panicked with "no reactor running").
    let listeners = Listeners {
        http: Some(bind_listener(cfg.server.bind)?),
        metrics: cfg.metrics.bind.map(bind_listener).transpose()?,
    };
    let (store, backend, migrated) = open_store(&cfg)?;
    info!(database = %backend.describe(), migrations_applied = migrated, "database ready");
    if let Some(path) = first_start_admin_key(&store, &cfg.state.dir)? {
        info!(path = %path.display(), "first start: created an admin API key; read it from this file (mode 0600)");
    }
    let keys = Arc::new(KeyCache::new(store.clone()));
    keys.refresh()?;
    let (identity, created) = store.device_identity()?;
    info!(device_id = %identity.device_id(), created, "device identity ready");
    let metrics = Arc::new(
        Metrics::new(cfg.metrics.gateway_detail)
            .map_err(|e| DaemonError::Startup(e.to_string()))?,
    );
    let events = EventBus::new();
    let identity = Arc::new(identity);
    let v1 = http::v1::V1Settings {
        identity: identity.clone(),
        min_version: cfg.gateways.min_version.clone(),
        timeout: cfg.gateways.connect_timeout + cfg.gateways.handshake_timeout,
    };
    let link_ctx = LinkContext {
        settings: Arc::new(cfg.gateways.link_settings()),
        identity,
        metrics: metrics.links.clone(),
        events: events.clone(),
    };
    let registry = RegistryActor::load(Arc::new(store.clone()), Some(link_ctx))
        .map_err(|e| DaemonError::Startup(e.to_string()))?
        .with_events(events.clone(), cfg.election.failback);
    // On PostgreSQL this daemon is one instance of a cluster: it links the gateways it holds
    // leases on, and nothing until its first renewal round.
    let cluster = match backend {
        Backend::Postgres(_) => {
            let cluster_metrics = crate::cluster::ClusterMetrics::new()
                .map_err(|e| DaemonError::Startup(e.to_string()))?;
            metrics
                .register_cluster(&cluster_metrics)
                .map_err(|e| DaemonError::Startup(e.to_string()))?;
            let id = cfg.cluster.instance_id(&cfg.state.dir);
            info!(instance = %id, "clustered on PostgreSQL");
            Some(crate::cluster::Cluster::new(
                id,
                cfg.cluster.lease_ttl,
                crate::cluster::forward::ForwardKey::derive(store.cipher.derived_secret()),
                cfg.gateways.operation_timeout + Duration::from_secs(5),
                cluster_metrics,
            ))
        }
        Backend::Sqlite(_) => None,
    };
    let registry = if cluster.is_some() {
        registry.leased()
    } else {
        registry
    };
    // In a cluster, events are numbered by the database (one order for every instance).
    let event_outbox = cluster.as_ref().map(|_| events.through_outbox(4096));
    let seed = if registry.is_empty() {
        seed::default_gateway(|k| std::env::var(k).ok())
            .map_err(|e| DaemonError::Seed(format!("{}: {}", e.field, e.message)))?
    } else {
        None
    };
    let limiter = Arc::new(KeyedLimiter::per_minute(
        "gateway_ops",
        cfg.limits.gateway_ops_per_minute,
    ));
    let manual_health_limiter = Arc::new(KeyedLimiter::per_period(
        "manual_health",
        cfg.limits.manual_health_interval,
    ));

    let gateway_list = Arc::new(crate::http::list_cache::GatewayListCache::new(
        registry.version(),
    ));
    let session_list = Arc::new(crate::http::list_cache::SessionListCache::new(
        registry.sessions_version(),
    ));
    let cluster_id = cluster.as_ref().map(|c| c.instance_id.to_string());
    let system = actix::System::new();
    system.block_on(async move {
        let registry = registry.start();
        if let Some(new) = seed {
            let name = new.name.clone();
            registry
                .send(CreateGateway {
                    new,
                    by: Caller::system("seed"),
                })
                .await
                .map_err(|e| DaemonError::Startup(e.to_string()))?
                .map_err(|e| DaemonError::Seed(e.to_string()))?;
            info!(name = %name, "seeded the default gateway from the environment");
        }
        let fleet = Arc::new(
            crate::fleet::Fleet::new(
                registry.clone(),
                store.clone(),
                events.clone(),
                crate::fleet::Deadlines {
                    call: cfg.gateways.rpc_timeout,
                    operation: cfg.gateways.operation_timeout,
                },
                metrics.fleet.clone(),
            )
            .in_cluster(cluster_id)
            .with_budgets(
                cfg.usage
                    .budgets
                    .iter()
                    .map(|(agent, b)| (agent.clone(), b.daily_usd))
                    .collect(),
            ),
        );
        let console_sessions = Arc::new(crate::console_session::SessionSigner::new(
            store.cipher.derived_secret(),
        ));
        let state = AppState {
            registry,
            gateway_list,
            session_list,
            store,
            keys,
            metrics,
            gateway_ops_limiter: limiter,
            manual_health_limiter,
            session_control_limiter: Arc::new(KeyedLimiter::per_minute(
                "session_control",
                cfg.limits.session_control_per_minute,
            )),
            probe_timeout: cfg.gateways.probe_timeout,
            access_log: cfg.log.access,
            logs: crate::logs::LogBuffer::default(),
            v1,
            events,
            fleet,
            ready: Arc::new(AtomicBool::new(false)),
            shutdown: Arc::new(tokio::sync::watch::Sender::new(false)),
            cluster,
            console_sessions,
        };
        run(Running {
            config_file,
            flags,
            cfg,
            log,
            state,
            listeners,
            event_outbox,
        })
        .await
    })
}

/// Listening sockets bound before anything else starts.
struct Listeners {
    /// Taken when the server starts.
    http: Option<std::net::TcpListener>,
    metrics: Option<std::net::TcpListener>,
}

fn bind_listener(addr: std::net::SocketAddr) -> Result<std::net::TcpListener, DaemonError> {
    std::net::TcpListener::bind(addr).map_err(|e| listen_error(addr, e))
}

fn listen_error(addr: impl ToString, e: std::io::Error) -> DaemonError {
    DaemonError::Listen {
        addr: addr.to_string(),
        reason: e.to_string(),
    }
}

async fn run(mut rt: Running) -> Result<(), DaemonError> {
    let metrics_separate = rt.cfg.metrics.bind;
    let max_body = rt.cfg.limits.max_body_bytes;
    let app_state = rt.state.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(middleware::close_unread_bodies))
            .wrap(from_fn(middleware::observe))
            .configure(http::routes(
                app_state.clone(),
                max_body,
                metrics_separate.is_none(),
            ))
    })
    .disable_signals()
    // A request head must arrive within 10 s; a client gets 2 s to take a response before
    // its connection is dropped (bodies have their own deadline: `json::BODY_TIMEOUT`).
    .client_request_timeout(std::time::Duration::from_secs(10))
    .client_disconnect_timeout(std::time::Duration::from_secs(2))
    .shutdown_timeout(rt.cfg.server.shutdown_timeout.as_secs());
    if rt.cfg.server.workers > 0 {
        server = server.workers(rt.cfg.server.workers);
    }
    let server = server
        .listen(
            rt.listeners
                .http
                .take()
                .ok_or_else(|| DaemonError::Startup("the HTTP listener was taken".into()))?,
        )
        .map_err(|e| listen_error(rt.cfg.server.bind, e))?;
    let addrs = server.addrs();
    let listening: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    if let Err(e) = fs::write(
        rt.cfg.state.dir.join(HTTP_ADDR_FILE),
        format!("{}\n", listening.join(" ")),
    ) {
        warn!(%e, "could not write the http.addr file");
    }
    let server = server.run();
    let handle = server.handle();
    let server_task = actix::spawn(server);

    let metrics_handle = match (metrics_separate, rt.listeners.metrics.take()) {
        (Some(bind), Some(listener)) => {
            let state = rt.state.clone();
            let metrics_server = HttpServer::new(move || {
                App::new()
                    .wrap(from_fn(middleware::observe))
                    .configure(http::metrics_routes(state.clone()))
            })
            .disable_signals()
            .workers(1)
            .listen(listener)
            .map_err(|e| listen_error(bind, e))?
            .run();
            let h = metrics_server.handle();
            actix::spawn(metrics_server);
            info!(%bind, "metrics listening");
            Some(h)
        }
        _ => None,
    };

    rt.state.ready.store(true, Ordering::Release);
    info!(addr = %listening.join(" "), "listening");
    systemd::ready(&format!("serving on {}", listening.join(" ")));

    if let Some(interval) = systemd::watchdog_interval() {
        actix::spawn(watchdog(rt.state.registry.clone(), interval));
    }
    actix::spawn(refresh_keys(
        rt.state.keys.clone(),
        rt.cfg.auth.key_refresh_interval,
    ));
    actix::spawn(rt.state.logs.clone().follow(rt.state.events.clone()));
    actix::spawn(reap_connections(
        rt.state.clone(),
        rt.cfg.connections.timeout,
    ));
    actix::spawn(adopt_runs(rt.state.fleet.clone()));
    actix::spawn(rt.state.fleet.clone().operations_loop(OPERATIONS_ROUND));
    actix::spawn(
        rt.state
            .fleet
            .clone()
            .watchdog_loop(rt.cfg.watchdog.clone(), rt.state.metrics.watchdog.clone()),
    );
    actix::spawn(
        rt.state
            .fleet
            .clone()
            .log_tail_loop(rt.cfg.gateway_logs.clone()),
    );
    actix::spawn(
        rt.state
            .fleet
            .clone()
            .usage_loop(rt.cfg.usage.clone(), rt.state.metrics.usage.clone()),
    );
    crate::alerts::start(
        &rt.cfg.alerts,
        rt.state.registry.clone(),
        rt.state.events.clone(),
        rt.state.store.clone(),
        rt.state.metrics.alerts.clone(),
    );
    let cluster_stop = tokio::sync::watch::Sender::new(false);
    let events_stop = tokio::sync::watch::Sender::new(false);
    let events_task = match (rt.state.cluster.clone(), rt.event_outbox.take()) {
        (Some(cluster), Some(outbox)) => Some(actix::spawn(crate::cluster::events::pump(
            cluster,
            rt.cfg.cluster.poll_interval,
            rt.state.store.clone(),
            rt.state.events.clone(),
            outbox,
            events_stop.subscribe(),
        ))),
        _ => None,
    };
    if let Some(cluster) = &rt.state.cluster {
        crate::cluster::wake::listen(
            rt.cfg.database.url.clone(),
            cluster.wake.clone(),
            cluster_stop.subscribe(),
        );
    }
    let cluster_task = rt.state.cluster.clone().map(|cluster| {
        let mut cfg = rt.cfg.cluster.clone();
        // Unset: where this daemon listens (its host name for a wildcard address).
        if cfg.advertise_url.is_none() {
            cfg.advertise_url = addrs.first().map(crate::cluster::default_advertise_url);
        }
        actix::spawn(crate::cluster::runner::run(
            cluster,
            cfg,
            rt.state.store.clone(),
            rt.state.registry.clone(),
            cluster_stop.subscribe(),
        ))
    });

    let mut term =
        signal(SignalKind::terminate()).map_err(|e| DaemonError::Startup(e.to_string()))?;
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| DaemonError::Startup(e.to_string()))?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| DaemonError::Startup(e.to_string()))?;
    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: shutting down"); break; }
            _ = int.recv() => { info!("SIGINT: shutting down"); break; }
            _ = hup.recv() => reload(&mut rt),
        }
    }

    systemd::stopping();
    rt.state.ready.store(false, Ordering::Release);
    // Event streams never finish on their own: end them, then stop accepting and let
    // in-flight requests finish (up to server.shutdown_timeout).
    rt.state.shutdown.send_replace(true);
    handle.stop(true).await;
    if let Some(h) = metrics_handle {
        h.stop(true).await;
    }
    let _ = server_task.await;
    // No more leases taken; then every gateway socket closed with 1000; then the leases
    // released, so peers adopt the gateways at once.
    cluster_stop.send_replace(true);
    if let Some(task) = cluster_task {
        let _ = task.await;
    }
    if let Err(e) = rt.state.registry.send(StopAllLinks).await {
        warn!(%e, "could not stop the gateway links");
    }
    if let Some(cluster) = &rt.state.cluster {
        crate::cluster::runner::leave(cluster, &rt.state.store, Duration::from_secs(5)).await;
    }
    // The links' last events are queued by now: store them.
    events_stop.send_replace(true);
    if let Some(task) = events_task {
        let _ = task.await;
    }
    let keys = rt.state.keys.clone();
    if let Err(e) = web::block(move || keys.refresh())
        .await
        .map(|r| r.map_err(|e| e.to_string()))
    {
        warn!(%e, "final key usage flush failed");
    }
    let pool = rt.state.store.pool.clone();
    match web::block(move || db::checkpoint(&pool)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(%e, "final database checkpoint failed"),
        Err(e) => warn!(%e, "final database checkpoint task failed"),
    }
    info!("stopped");
    actix::System::current().stop();
    Ok(())
}

/// SIGHUP: re-reads every config layer and applies what can change at run time (log level,
/// rate limits). Keys that need a restart are reported, not half-applied.
fn reload(rt: &mut Running) {
    systemd::reloading();
    match Config::load(rt.config_file.as_deref(), &rt.flags) {
        Ok(new) => {
            if let Err(e) = rt.log.set_level(&new.log.level) {
                error!(%e, "reload: keeping the old log level");
            }
            rt.state
                .gateway_ops_limiter
                .reconfigure(new.limits.gateway_ops_per_minute);
            rt.state
                .manual_health_limiter
                .reconfigure_period(new.limits.manual_health_interval);
            rt.state
                .session_control_limiter
                .reconfigure(new.limits.session_control_per_minute);
            let restart_needed = [
                ("server.bind", new.server.bind != rt.cfg.server.bind),
                ("state.dir", new.state.dir != rt.cfg.state.dir),
                ("database.url", new.database.url != rt.cfg.database.url),
                ("log.format", new.log.format != rt.cfg.log.format),
                (
                    "limits.max_body_bytes",
                    new.limits.max_body_bytes != rt.cfg.limits.max_body_bytes,
                ),
                ("metrics.bind", new.metrics.bind != rt.cfg.metrics.bind),
            ];
            for (key, changed) in restart_needed {
                if changed {
                    warn!(key, "reload: this setting changes only on restart");
                }
            }
            info!(log_level = %new.log.level, gateway_ops_per_minute = new.limits.gateway_ops_per_minute, "configuration reloaded");
            rt.cfg = new;
        }
        Err(e) => error!(%e, "reload failed; the running configuration is unchanged"),
    }
    systemd::ready("configuration reloaded");
}

/// Sends WATCHDOG=1 only while the registry actor answers, so a wedged daemon gets restarted.
async fn watchdog(registry: Addr<RegistryActor>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        match registry.send(Ping).timeout(interval).await {
            Ok(()) => systemd::watchdog(),
            Err(e) => error!(%e, "registry actor did not answer; withholding the watchdog ping"),
        }
    }
}

async fn refresh_keys(keys: Arc<KeyCache>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    loop {
        tick.tick().await;
        let keys = keys.clone();
        match web::block(move || keys.refresh()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(%e, "API key refresh failed"),
            Err(e) => warn!(%e, "API key refresh task failed"),
        }
    }
}

/// How often running fleet operations are advanced (a drain's blockers asked again, a restarted
/// gateway looked at); an operation started here is taken at once.
const OPERATIONS_ROUND: Duration = Duration::from_secs(1);

/// Every 2 s: agent runs left `running` by a link that went away (this daemon restarted, or a
/// gateway adopted from another instance) are followed again from the current link.
async fn adopt_runs(fleet: Arc<crate::fleet::Fleet>) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tick.tick().await;
        fleet.clone().adopt_runs().await;
    }
}

/// Marks CLI connections with no heartbeat for `connections.timeout` disconnected (and their
/// agents offline), checking a few times per timeout.
async fn reap_connections(state: AppState, timeout: Duration) {
    let mut tick = tokio::time::interval((timeout / 4).max(Duration::from_millis(250)));
    loop {
        tick.tick().await;
        let store = state.store.clone();
        let secs = timeout.as_secs().max(1) as i64;
        match web::block(move || store.reap_connections(secs)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => {
                info!(
                    connections = n,
                    "CLI connections without a heartbeat marked disconnected"
                );
                state.events.publish(
                    EventKind::AgentStatus,
                    None,
                    serde_json::json!({"reaped_connections": n, "status": "disconnected"}),
                );
            }
            Ok(Err(e)) => warn!(%e, "connection reaper failed"),
            Err(e) => warn!(%e, "connection reaper task failed"),
        }
    }
}
