//! `serve`: the daemon's start-up — configuration, logging, the state directory and its lock,
//! the listeners (bound before anything else runs, so a busy port fails the start in one line),
//! the database, the actors and the application state — then [`run`] serves until a signal.
//! The pieces: `storage` (the state directory, the master key, the store: shared with the
//! commands that read the daemon's data), `run` (the HTTP servers, the background tasks, the
//! signals and the orderly stop), `reload` (SIGHUP) and `loops` (the small periodic tasks).

mod background;
mod compose;
mod loops;
mod reload;
mod run;
mod running;
mod standby;
mod storage;

pub use storage::{ensure_state_dir, master_key, open_store};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use gateway_supervisor_actors::RegistryActor;
use gateway_supervisor_actors::events::EventBus;
use gateway_supervisor_actors::link::{LinkContext, LinkSettings};
use gateway_supervisor_actors::messages::CreateGateway;
use gateway_supervisor_actors::model::Caller;
use tracing::info;

use crate::auth::KeyCache;
use crate::config::{Config, ConfigError, FlagOverrides};
use crate::db::{Backend, DbError};
use crate::http;
use crate::logging::{self, LogError};
use crate::metrics::Metrics;
use crate::secrets::SecretsError;
use crate::seed;
use run::{bind_listener, run};
use running::{Listeners, Running};
use storage::first_start_admin_key;

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
    #[error("single sign-on ([sso]): {0}")]
    Sso(#[from] crate::sso::SsoError),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error(transparent)]
    Lock(#[from] crate::state_lock::LockError),
    #[error("{0}")]
    Startup(String),
}

/// The longest wait between two tries to reach the database (from 1 s, doubling).
const DATABASE_RETRY_MAX: Duration = Duration::from_secs(30);

/// Opens the store; a PostgreSQL server that cannot be reached yet (or whose database does not
/// exist yet) is tried again with backoff, one log line per try, while [`standby::Standby`]
/// answers 503 on the API listener. Any other failure ends the start as before.
fn open_when_reachable(
    cfg: &Config,
    listeners: &Listeners,
) -> Result<(crate::db::Store, Backend, usize, crate::db::SetupLock), DaemonError> {
    let mut standby = None;
    let mut retries = gateway_supervisor_actors::backoff::Backoff::new(DATABASE_RETRY_MAX);
    // Only a server can be not there yet; a SQLite file's failure is the operator's to fix.
    let waits = matches!(
        Backend::from_url(&cfg.database.url),
        Ok(Backend::Postgres(_))
    );
    loop {
        let failure = match storage::open_store_for_setup(cfg) {
            Ok(opened) => {
                if let Some(s) = standby.take() {
                    standby::Standby::stop(s);
                    info!(
                        attempt = retries.attempts() + 1,
                        "the database answered; starting"
                    );
                }
                return Ok(opened);
            }
            Err(DaemonError::Db(DbError::Connect(e))) if waits => e,
            Err(other) => return Err(other),
        };
        let wait = retries.next_base_delay();
        let attempt = retries.attempts();
        let database = crate::db::redact_url(&cfg.database.url);
        let error = gateway_supervisor_actors::bounded::text(failure.trim(), 300);
        let reason = format!(
            "waiting for the database {database} (try {attempt}, next in {} s): {error}",
            wait.as_secs(),
        );
        tracing::warn!(
            database = %database,
            attempt,
            retry_in_s = wait.as_secs(),
            error = %error,
            "the database cannot be reached yet; the API answers 503 meanwhile"
        );
        crate::systemd::waiting(&reason, wait + Duration::from_secs(30));
        match &standby {
            Some(s) => standby::Standby::set_reason(s, reason),
            None => {
                let http = listeners
                    .http
                    .as_ref()
                    .ok_or_else(|| DaemonError::Startup("the HTTP listener was taken".into()))?;
                standby = Some(
                    standby::Standby::start(http, reason)
                        .map_err(|e| run::listen_error(cfg.server.bind, e))?,
                );
                run::write_addr_file(&cfg.state.dir, http);
            }
        }
        std::thread::sleep(wait);
    }
}

impl DaemonError {
    /// A stable code for what failed, for errors given as JSON.
    pub fn code(&self) -> &'static str {
        match self {
            DaemonError::Config(_) => "invalid_configuration",
            DaemonError::Log(_) => "logging",
            DaemonError::Db(_) => "database",
            DaemonError::Secrets(_) => "secrets",
            DaemonError::StateDir { .. } => "state_directory",
            DaemonError::Seed(_) => "seed",
            DaemonError::Sso(_) => "invalid_configuration",
            DaemonError::Listen { .. } => "listen",
            DaemonError::Lock(_) => "state_locked",
            DaemonError::Startup(_) => "failed",
        }
    }
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
    let (store, backend, migrated, setup) = open_when_reachable(&cfg, &listeners)?;
    info!(database = %backend.describe(), migrations_applied = migrated, "database ready");
    if let Some(path) = first_start_admin_key(&store, &cfg.state.dir)? {
        info!(path = %path.display(), "first start: created an admin API key; read it from this file (mode 0600)");
    }
    let (identity, created) = store.device_identity()?;
    drop(setup);
    info!(device_id = %identity.device_id(), created, "device identity ready");
    let metrics = Arc::new(
        Metrics::new(cfg.metrics.gateway_detail)
            .map_err(|e| DaemonError::Startup(e.to_string()))?,
    );
    let keys = Arc::new(KeyCache::new(
        store.clone(),
        cfg.labels.reserved(),
        metrics
            .rate_limited
            .with_label_values(&["unknown_key_lookups"]),
    ));
    keys.refresh()?;
    let events = EventBus::new();
    let device_id = identity.device_id();
    let identity = Arc::new(identity);
    let v1 = http::v1::V1Settings {
        identity: identity.clone(),
        min_version: cfg.gateways.min_version.clone(),
        timeout: cfg.gateways.connect_timeout + cfg.gateways.handshake_timeout,
    };
    // Bounded: a gateway flooding approval events fills it and no more (the inbox reconciles
    // what was dropped from the gateway's own lists).
    let (approval_sink, approval_news) =
        gateway_supervisor_actors::link::messages::ApprovalSink::bounded(4096);
    let link_ctx = LinkContext {
        settings: Arc::new(LinkSettings {
            approvals: cfg.approvals.enabled,
            ..cfg.gateways.link_settings()
        }),
        identity,
        metrics: metrics.links.clone(),
        events: events.clone(),
        approvals: Some(approval_sink),
    };
    // In a cluster the change feed goes on from before the registry's load: the load is the
    // feed's first read (it was read again whole, 100,000 rows an instance at a cold start).
    let feed_start = match &backend {
        crate::db::Backend::Postgres(_) => Some(store.feed_position()?),
        crate::db::Backend::Sqlite(_) => None,
    };
    // An instance of a cluster loads every gateway as a peer: none is linked until the runner
    // says which are its own.
    let member = feed_start.map(|_| cfg.cluster.instance_id(&cfg.state.dir));
    let registry = RegistryActor::load(Arc::new(store.clone()), Some(link_ctx), member.as_deref())
        .map_err(|e| DaemonError::Startup(e.to_string()))?
        .with_events(events.clone(), cfg.election.failback);
    let capacity = compose::capacity(&cfg, &backend);
    let cluster = compose::cluster_of(&cfg, &store, &metrics, capacity, feed_start)?;
    let registry = match &cluster {
        Some(_) => registry,
        None => {
            info!(capacity = ?capacity, "alone on SQLite");
            registry.within(capacity.and_then(|c| usize::try_from(c).ok()))
        }
    };
    // In a cluster, events are numbered by the database (one order for every instance).
    let event_outbox = cluster.as_ref().map(|_| events.through_outbox(4096));
    let seed = if registry.is_empty() {
        seed::default_gateway(|k| std::env::var(k).ok())
            .map_err(|e| DaemonError::Seed(format!("{}: {}", e.field, e.message)))?
    } else {
        None
    };
    let front = compose::front(&cfg, &registry);
    let cluster_id = cluster.as_ref().map(|c| c.instance_id.to_string());
    let system = actix::System::new();
    let configured =
        crate::managed::declare::parse_configured(&cfg.managed).map_err(DaemonError::Startup)?;
    let targets = crate::gateway_reads::CallTargets::new(registry.targets());
    let scopes = crate::http::visible::Scopes::new(targets.clone(), cfg.labels.reserved());
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
        let (services, background) = compose::services(
            &cfg,
            compose::Base {
                registry: registry.clone(),
                targets,
                store: store.clone(),
                events: events.clone(),
                metrics: metrics.clone(),
                instance: cluster_id,
                device_id,
            },
            configured,
        )
        .await;
        let state = compose::app_state(
            &cfg,
            front,
            compose::Served {
                registry,
                scopes,
                store,
                keys,
                metrics,
                events,
                v1,
                cluster,
            },
            services,
        )?;
        run(Running {
            config_file,
            flags,
            cfg,
            log,
            state,
            listeners,
            event_outbox,
            background,
            approval_news: Some(approval_news),
        })
        .await
    })
}
