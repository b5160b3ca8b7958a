//! Layered configuration: built-in defaults → TOML file → `GATEWAY_SUPERVISOR__SECTION__KEY`
//! environment → CLI flags. Unknown keys are errors naming the key.

mod alerts;
mod approvals;
mod audit;
mod cluster;
mod cron;
mod fleet_config;
mod gateway_logs;
mod labels;
mod managed_runtime;
mod ranges;
mod sso;
mod url;
mod usage;
mod watchdog;
pub use alerts::{AlertsConfig, shown_webhook_url};
pub use approvals::{ApprovalsConfig, Timings};
pub use audit::{AuditConfig, Retention};
pub use cluster::ClusterConfig;
pub use cron::{CronConfig, Recover};
pub use fleet_config::FleetConfigConfig;
pub use gateway_logs::GatewayLogsConfig;
pub use labels::LabelsConfig;
pub use managed_runtime::{ManagedBackend, ManagedRuntimeConfig};
pub(crate) use ranges::duration_in;
pub use sso::{GroupMapping, SsoConfig};
pub(crate) use url::secure_or_loopback;
pub use usage::{Budget, UsageConfig};
pub use watchdog::{AgentWatch, WatchdogConfig};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub const ENV_PREFIX: &str = "GATEWAY_SUPERVISOR";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub state: StateConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub gateways: GatewaysConfig,
    pub limits: LimitsConfig,
    pub connections: ConnectionsConfig,
    pub election: ElectionConfig,
    pub metrics: MetricsConfig,
    pub secrets: SecretsConfig,
    pub auth: AuthConfig,
    /// Only with a PostgreSQL database.
    pub cluster: ClusterConfig,
    pub alerts: AlertsConfig,
    pub watchdog: WatchdogConfig,
    pub gateway_logs: GatewayLogsConfig,
    pub usage: UsageConfig,
    pub approvals: ApprovalsConfig,
    /// Desired configuration across the fleet (`[config]`).
    pub config: FleetConfigConfig,
    /// How managed gateways are run (`[managed_runtime]`).
    pub managed_runtime: ManagedRuntimeConfig,
    /// Labels only a platform key sets (`[labels]`).
    pub labels: LabelsConfig,
    /// The console's single sign-on (`[sso]`): off unless `issuer` is set.
    pub sso: SsoConfig,
    /// The audit log's sink and retention (`[audit]`).
    pub audit: AuditConfig,
    /// The fleet's cron inventory and missed-fire watchdog (`[cron]`).
    pub cron: CronConfig,
    /// Managed gateways declared by the file (`[[managed]]`, the fields of `POST
    /// /api/managed`): each one not managed yet is declared at start on this daemon's host.
    /// Checked at start (a wrong table stops it, named).
    pub managed: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    /// HTTP worker threads; 0 = one per core.
    pub workers: usize,
    #[serde(with = "duration")]
    pub shutdown_timeout: Duration,
    /// An event stream's longest silence: an SSE stream silent this long gets a comment, a
    /// WebSocket a ping this often, and the stream's credential is asked again then. A
    /// WebSocket that answers nothing for three of these is closed.
    #[serde(with = "duration")]
    pub stream_keepalive: Duration,
    /// Event streams (SSE and WebSocket) one API key may hold open at once; one more is
    /// refused 429.
    pub streams_per_key: usize,
    /// Event streams the daemon holds open at once, whoever opened them.
    pub streams_max: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 3000)),
            workers: 0,
            shutdown_timeout: Duration::from_secs(10),
            stream_keepalive: Duration::from_secs(15),
            streams_per_key: 64,
            streams_max: 2000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Defaults to `$STATE_DIRECTORY` under systemd, else `./data`.
    pub dir: PathBuf,
}

impl Default for StateConfig {
    fn default() -> Self {
        let dir = std::env::var_os("STATE_DIRECTORY")
            // systemd may pass several colon-separated directories; the first is ours.
            .and_then(|v| {
                v.to_str()
                    .and_then(|s| s.split(':').next())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| PathBuf::from("./data"));
        StateConfig { dir }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://…`; empty = `sqlite://<state.dir>/supervisor.db`.
    pub url: String,
    /// Connections in the pool; 0 = backend default (4 for SQLite, 8 for PostgreSQL).
    pub pool_size: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter: `info`, `debug`, `gateway_supervisor=debug,actix_web=warn`, …
    pub level: String,
    pub format: LogFormat,
    /// One line per HTTP request (target `access`): request id, method, route pattern, status,
    /// duration, API key id.
    pub access: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Pretty,
            access: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaysConfig {
    #[serde(with = "duration")]
    pub heartbeat_interval: Duration,
    pub missed_pongs: u32,
    #[serde(with = "duration")]
    pub health_interval: Duration,
    #[serde(with = "duration")]
    pub probe_timeout: Duration,
    pub breaker_threshold: u32,
    #[serde(with = "duration")]
    pub breaker_cooldown: Duration,
    pub degraded_latency_ms: u64,
    #[serde(with = "duration")]
    pub backoff_max: Duration,
    pub min_version: String,
    /// TCP + TLS + WebSocket upgrade deadline.
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// From the upgrade to `hello-ok`.
    #[serde(with = "duration")]
    pub handshake_timeout: Duration,
    /// Default deadline of an RPC over the live socket (spawns, session control, lists).
    #[serde(with = "duration")]
    pub rpc_timeout: Duration,
    /// Deadline of a gateway operation (suspend, resume, restart): a suspend waits for the
    /// gateway to drain.
    #[serde(with = "duration")]
    pub operation_timeout: Duration,
    /// How often a device awaiting pairing approval retries.
    #[serde(with = "duration")]
    pub pairing_retry: Duration,
}

impl Default for GatewaysConfig {
    fn default() -> Self {
        GatewaysConfig {
            heartbeat_interval: Duration::from_secs(30),
            missed_pongs: 3,
            health_interval: Duration::from_secs(300),
            probe_timeout: Duration::from_secs(5),
            breaker_threshold: 3,
            breaker_cooldown: Duration::from_secs(30),
            degraded_latency_ms: 500,
            backoff_max: Duration::from_secs(30),
            min_version: "2026.2.9".into(),
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            rpc_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            pairing_retry: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Requests per minute per API key on `/api/gateways*`; 0 disables the limit.
    pub gateway_ops_per_minute: u32,
    #[serde(with = "duration")]
    pub manual_health_interval: Duration,
    pub session_control_per_minute: u32,
    #[serde(with = "byte_size")]
    pub max_body_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            gateway_ops_per_minute: 100,
            manual_health_interval: Duration::from_secs(10),
            session_control_per_minute: 10,
            max_body_bytes: 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionsConfig {
    #[serde(with = "duration")]
    pub timeout: Duration,
}

impl Default for ConnectionsConfig {
    fn default() -> Self {
        ConnectionsConfig {
            timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ElectionConfig {
    pub failback: bool,
}

impl Default for ElectionConfig {
    fn default() -> Self {
        ElectionConfig { failback: true }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// A separate listener for `/metrics`; unset = served on `server.bind`.
    pub bind: Option<SocketAddr>,
    /// Per-gateway series: `full` (every gauge, counter and the ping histogram per gateway,
    /// 30–40 series each), `basic` (up, status and info per gateway; counters and the
    /// histogram fleet-wide) or `none` (fleet-wide only). Large fleets want `basic` or `none`.
    pub gateway_detail: gateway_supervisor_actors::link_metrics::GatewayDetail,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// The master key (32 bytes, base64 or hex). Prefer a systemd credential named
    /// `master-key`; unset and no credential = `<state.dir>/master.key`, generated once.
    #[serde(skip_serializing)]
    pub master_key: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// How often the key cache is reloaded from the database (revocations take effect
    /// within this interval).
    #[serde(with = "duration")]
    pub key_refresh_interval: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            key_refresh_interval: Duration::from_secs(5),
        }
    }
}

/// Overrides given as CLI flags: the last layer.
#[derive(Debug, Clone, Default)]
pub struct FlagOverrides {
    pub bind: Option<SocketAddr>,
    pub state_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub log_level: Option<String>,
}

impl GatewaysConfig {
    pub fn link_settings(&self) -> gateway_supervisor_actors::link::LinkSettings {
        gateway_supervisor_actors::link::LinkSettings {
            machine: std::sync::Arc::new(gateway_supervisor_actors::link::MachineSettings {
                missed_pongs: self.missed_pongs,
                handshake_timeout: self.handshake_timeout,
                breaker_threshold: self.breaker_threshold,
                breaker_cooldown: self.breaker_cooldown,
                degraded_latency_ms: self.degraded_latency_ms,
                backoff_max: self.backoff_max,
                pairing_retry: self.pairing_retry,
            }),
            heartbeat_interval: self.heartbeat_interval,
            health_interval: self.health_interval,
            probe_timeout: self.probe_timeout,
            connect_timeout: self.connect_timeout,
            rpc_timeout: self.rpc_timeout,
            client_version: env!("CARGO_PKG_VERSION").to_owned(),
            // Set from `[approvals]` where the links are made.
            approvals: false,
        }
    }
}

impl Config {
    /// Loads every layer. `file` is optional; when given it must exist.
    pub fn load(file: Option<&Path>, flags: &FlagOverrides) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        Self::load_with_env(file, flags, env)
    }

    pub fn load_with_env(
        file: Option<&Path>,
        flags: &FlagOverrides,
        env: Vec<(String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::File {
                    path: path.to_owned(),
                    message: "not found or not a file".into(),
                });
            }
            builder = builder.add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let env_source = config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .source(Some(env.into_iter().collect()));
        builder = builder.add_source(env_source);
        let set =
            |b: config::ConfigBuilder<config::builder::DefaultState>, key: &str, v: String| {
                b.set_override(key, v)
                    .map_err(|e| ConfigError::Invalid(e.to_string()))
            };
        if let Some(bind) = flags.bind {
            builder = set(builder, "server.bind", bind.to_string())?;
        }
        if let Some(dir) = &flags.state_dir {
            builder = set(builder, "state.dir", dir.display().to_string())?;
        }
        if let Some(url) = &flags.database_url {
            builder = set(builder, "database.url", url.clone())?;
        }
        if let Some(level) = &flags.log_level {
            builder = set(builder, "log.level", level.clone())?;
        }
        let built = builder.build().map_err(|e| match file {
            Some(path) => ConfigError::File {
                path: path.to_owned(),
                message: e.to_string(),
            },
            None => ConfigError::Invalid(e.to_string()),
        })?;
        let mut cfg: Config = built
            .try_deserialize()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        cfg.finish()?;
        Ok(cfg)
    }

    fn finish(&mut self) -> Result<(), ConfigError> {
        if self.database.url.trim().is_empty() {
            self.database.url = format!(
                "sqlite://{}",
                self.state.dir.join("supervisor.db").display()
            );
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| ConfigError::Invalid(format!("log.level `{}`: {e}", self.log.level)))?;
        self.check_ranges()?;
        self.cluster.check()?;
        self.alerts.check()?;
        self.watchdog.check()?;
        self.approvals.check()?;
        self.config.check()?;
        self.managed_runtime.check()?;
        self.gateway_logs.check()?;
        self.usage.check()?;
        self.labels.check()?;
        self.sso.check(&self.labels.reserved())?;
        self.audit.check()?;
        self.cron.check()?;
        Ok(())
    }
}

pub mod changes;
pub mod duration;

pub mod byte_size;

/// An agent id as a configuration key (`watchdog.agents.<id>`, `usage.budgets.<id>`): 1–128
/// characters, no control characters; at most 1,000 of them under `section`.
pub(crate) fn agent_ids_ok<'a>(
    section: &str,
    ids: impl ExactSizeIterator<Item = &'a String>,
) -> Result<(), ConfigError> {
    if ids.len() > 1000 {
        return Err(ConfigError::Invalid(format!(
            "{section}: at most 1000 agents"
        )));
    }
    for agent in ids {
        if agent.is_empty() || agent.len() > 128 || agent.chars().any(char::is_control) {
            return Err(ConfigError::Invalid(format!(
                "{section}: {agent:?} is not an agent id"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_the_spec() {
        let cfg = Config::load_with_env(None, &FlagOverrides::default(), vec![]).unwrap();
        assert_eq!(cfg.server.bind.to_string(), "127.0.0.1:3000");
        assert_eq!(cfg.gateways.heartbeat_interval, Duration::from_secs(30));
        assert_eq!(cfg.gateways.health_interval, Duration::from_secs(300));
        assert_eq!(cfg.limits.gateway_ops_per_minute, 100);
        assert_eq!(cfg.limits.max_body_bytes, 1024 * 1024);
        assert!(cfg.database.url.starts_with("sqlite://"));
        assert!(cfg.database.url.ends_with("supervisor.db"));
    }

    #[test]
    fn layers_apply_in_order_file_env_flags() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            file,
            "[server]\nbind = \"127.0.0.1:4000\"\n[gateways]\nheartbeat_interval = \"10s\"\nprobe_timeout = \"2s\"\n[log]\nlevel = \"debug\""
        )
        .unwrap();
        let flags = FlagOverrides {
            log_level: Some("warn".into()),
            ..FlagOverrides::default()
        };
        let cfg = Config::load_with_env(
            Some(file.path()),
            &flags,
            env(&[
                ("GATEWAY_SUPERVISOR__GATEWAYS__HEARTBEAT_INTERVAL", "15s"),
                ("GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE", "7"),
                ("GATEWAY_SUPERVISOR__LIMITS__MAX_BODY_BYTES", "2MiB"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.server.bind.to_string(), "127.0.0.1:4000");
        assert_eq!(cfg.gateways.heartbeat_interval, Duration::from_secs(15));
        assert_eq!(cfg.gateways.probe_timeout, Duration::from_secs(2));
        assert_eq!(cfg.limits.gateway_ops_per_minute, 7);
        assert_eq!(cfg.limits.max_body_bytes, 2 * 1024 * 1024);
        assert_eq!(cfg.log.level, "warn");
    }

    #[test]
    fn unknown_keys_are_named() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "[server]\nbnd = \"127.0.0.1:4000\"").unwrap();
        let err = Config::load_with_env(Some(file.path()), &FlagOverrides::default(), vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("bnd"), "{err}");

        let err = Config::load_with_env(
            None,
            &FlagOverrides::default(),
            env(&[("GATEWAY_SUPERVISOR__GATEWAYS__HEARTBEAT", "1s")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("heartbeat"), "{err}");
    }

    #[test]
    fn bad_values_are_explained() {
        let err = Config::load_with_env(
            None,
            &FlagOverrides::default(),
            env(&[("GATEWAY_SUPERVISOR__GATEWAYS__PROBE_TIMEOUT", "soon")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("soon"), "{err}");
        let err = Config::load_with_env(
            None,
            &FlagOverrides::default(),
            env(&[("GATEWAY_SUPERVISOR__GATEWAYS__PROBE_TIMEOUT", "0s")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("gateways.probe_timeout"), "{err}");
    }

    #[test]
    fn the_gateway_detail_is_one_of_three_words() {
        let load = |v: &str| {
            Config::load_with_env(
                None,
                &FlagOverrides::default(),
                env(&[("GATEWAY_SUPERVISOR__METRICS__GATEWAY_DETAIL", v)]),
            )
        };
        assert_eq!(
            load("basic").unwrap().metrics.gateway_detail.as_str(),
            "basic"
        );
        let err = load("some").unwrap_err().to_string();
        assert!(
            err.contains("gateway_detail") && err.contains("full"),
            "{err}"
        );
    }

    #[test]
    fn pathological_values_are_refused_naming_the_key_and_range() {
        for (var, value, key) in [
            (
                "GATEWAYS__HEARTBEAT_INTERVAL",
                "1ns",
                "gateways.heartbeat_interval",
            ),
            ("SERVER__WORKERS", "100000", "server.workers"),
            ("GATEWAYS__MISSED_PONGS", "0", "gateways.missed_pongs"),
            (
                "SERVER__SHUTDOWN_TIMEOUT",
                "100000d",
                "server.shutdown_timeout",
            ),
            ("GATEWAYS__RPC_TIMEOUT", "0s", "gateways.rpc_timeout"),
            ("SERVER__STREAM_KEEPALIVE", "2m", "server.stream_keepalive"),
            ("SERVER__STREAMS_PER_KEY", "0", "server.streams_per_key"),
            ("SERVER__STREAMS_MAX", "1000000", "server.streams_max"),
            ("DATABASE__POOL_SIZE", "100000", "database.pool_size"),
            ("CLUSTER__MAX_GATEWAYS", "0", "cluster.max_gateways"),
            ("LIMITS__MAX_BODY_BYTES", "10GiB", "limits.max_body_bytes"),
        ] {
            let err = Config::load_with_env(
                None,
                &FlagOverrides::default(),
                env(&[(&format!("GATEWAY_SUPERVISOR__{var}"), value)]),
            )
            .unwrap_err()
            .to_string();
            assert!(
                err.contains(key) && err.contains("between"),
                "{value}: {err}"
            );
        }
        // The shortest values the tests use stay valid.
        Config::load_with_env(
            None,
            &FlagOverrides::default(),
            env(&[
                ("GATEWAY_SUPERVISOR__GATEWAYS__HEARTBEAT_INTERVAL", "200ms"),
                ("GATEWAY_SUPERVISOR__LIMITS__MANUAL_HEALTH_INTERVAL", "0s"),
                ("GATEWAY_SUPERVISOR__LIMITS__MAX_BODY_BYTES", "2KiB"),
                ("GATEWAY_SUPERVISOR__AUTH__KEY_REFRESH_INTERVAL", "200ms"),
            ]),
        )
        .unwrap();
    }

    #[test]
    fn the_example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway-supervisor.example.toml");
        Config::load_with_env(Some(&path), &FlagOverrides::default(), vec![]).unwrap();
    }

    #[test]
    fn byte_sizes_parse() {
        assert_eq!(byte_size::parse("1MiB"), Some(1024 * 1024));
        assert_eq!(byte_size::parse("512 KiB"), Some(512 * 1024));
        assert_eq!(byte_size::parse("42"), Some(42));
        assert_eq!(byte_size::parse("lots"), None);
    }
}
