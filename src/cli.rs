//! The command line: `serve`, `migrate`, `check-config`, `keys create|list|revoke`,
//! `cluster status`, `backup <dir>`, `restore <file>`, `ctl …` (a client of a running
//! daemon, [`crate::ctl`]), and for packagers `completions <shell>`
//! and `man` (generated from these definitions, so they cannot drift from what the binary
//! accepts).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::auth::Role;
use crate::config::{Config, FlagOverrides};
use crate::daemon::{self, DaemonError};
use gateway_supervisor_actors::model::Caller;

#[derive(Debug, Parser)]
#[command(
    name = "gateway-supervisor",
    version,
    about = "Supervises fleets of OpenClaw AI-agent gateways"
)]
pub struct Cli {
    /// TOML configuration file (later layers: GATEWAY_SUPERVISOR__SECTION__KEY env, flags).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Overrides state.dir.
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Overrides database.url (sqlite://PATH or postgres://…).
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Overrides log.level.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Serve {
        /// Overrides server.bind.
        #[arg(long, value_name = "ADDR")]
        bind: Option<SocketAddr>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Validate the configuration (all layers) and print the effective settings.
    CheckConfig {
        /// `text` (a line, then the settings) or `json` (only the settings, one JSON document).
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The cluster sharing this database (PostgreSQL).
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Copy the database into DIR while the daemon runs (SQLite: a checked snapshot; the
    /// master key is not copied — keep it elsewhere. PostgreSQL: prints the pg_dump recipe).
    Backup {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Put a backup (a file `backup` wrote) in place of the SQLite database. The daemon must be
    /// stopped; the database it replaces is kept beside it.
    Restore {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Internal: the process between the daemon and one managed gateway (started by the
    /// daemon; see docs/design.md, *Managed gateways*).
    #[command(hide = true)]
    Keep(crate::managed::keeper::KeepArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Talk to a running daemon over its API: gateways, sessions, spawn, events (the key from
    /// GATEWAY_SUPERVISOR_API_KEY or --key-file).
    Ctl(Box<crate::ctl::CtlArgs>),
    /// Print the manual page (roff, section 1) to stdout: `gateway-supervisor man | man -l -`.
    Man {
        /// Write every page instead (gateway-supervisor.1 and one per subcommand, as the main
        /// page's SUBCOMMANDS section refers to them) into this directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Instances (live or not, heartbeat age, gateways each links) and gateways nobody links.
    Status {
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
}

impl Cli {
    /// Whether the command was asked for JSON (`--format json`, `ctl --json`): then its error
    /// is JSON too, for the program reading it.
    pub fn wants_json(&self) -> bool {
        match &self.command {
            Command::CheckConfig { format }
            | Command::Cluster {
                command: ClusterCommand::Status { format },
            } => *format == OutputFormat::Json,
            Command::Ctl(args) => args.json,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; it is printed once and never again.
    Create {
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        name: String,
        /// Scope the key to one tenant (its gateways' `tenant` label; `default` for those
        /// without one). Without it the key reaches every tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Narrow it further to the gateways this selector picks, over reserved labels only
        /// (`tenant` and the prefixes in `labels.reserved`). Needs --tenant.
        #[arg(long)]
        selector: Option<String>,
        /// The verbs it may use, comma-separated (read, spawn, session_control, approve,
        /// config, operate, admin); every verb its role allows by default.
        #[arg(long)]
        verbs: Option<String>,
        /// The agents it may start and steer runs of, comma-separated; every agent by default.
        #[arg(long)]
        agents: Option<String>,
        /// It stops working this long from now (`90d`, `12h`); never by default.
        #[arg(long, value_parser = parse_lifetime)]
        expires_in: Option<std::time::Duration>,
    },
    /// Rotate a key (by id or prefix): a new secret is printed once; the old one keeps working
    /// for the grace period, then is refused.
    Rotate {
        key: String,
        /// How long the old secret keeps working (`1h` by default; `0s`: not at all).
        #[arg(long, value_parser = parse_lifetime, default_value = "1h")]
        grace: std::time::Duration,
    },
    /// List keys (prefix, name, role, state; never the key).
    List,
    /// Revoke a key by id or prefix.
    Revoke { key: String },
}

/// A key's scope in one word group: `*` for the whole fleet, else `tenant=…`, then any
/// `selector=…`, `verbs=…`, `agents=…` (as stored, already checked).
fn scope_summary(k: &crate::db::api_keys::ApiKeyRow) -> String {
    let parts: Vec<String> = [
        ("tenant", &k.tenant),
        ("selector", &k.selector),
        ("verbs", &k.verbs),
        ("agents", &k.agents),
    ]
    .into_iter()
    .filter_map(|(name, v)| v.as_deref().map(|v| format!("{name}={v}")))
    .collect();
    if parts.is_empty() {
        "*".into()
    } else {
        parts.join(" ")
    }
}

/// A key's lifetime or grace: `90d`, `12h`, `0s`; at most ten years.
fn parse_lifetime(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("`{s}`: {e}"))?;
    if d > std::time::Duration::from_secs(10 * 366 * 86_400) {
        return Err(format!("`{s}`: at most ten years"));
    }
    Ok(d)
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

/// The completion script for `shell`.
fn completions(shell: clap_complete::Shell) -> String {
    const BIN: &str = "gateway-supervisor";
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, BIN, &mut script);
    let script = String::from_utf8_lossy(&script).into_owned();
    if shell != clap_complete::Shell::Bash {
        return script;
    }
    // clap_complete 4.6 names a subcommand's branch from the binary's name with its `-` turned
    // into the subcommand separator (`gateway__subcmd__supervisor__subcmd__keys`) while the
    // walk over the typed words reaches `gateway__supervisor__subcmd__keys`: no subcommand's
    // flags or values completed. One spelling for both.
    script.replace("gateway__subcmd__supervisor", "gateway__supervisor")
}

/// A Unix time as an operator reads it: `2026-11-25 13:58:07Z` (UTC).
fn date_time(unix: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replacen('T', " ", 1)
}

/// Command output goes to stdout through here; logs go to stderr. A reader that stopped
/// reading (`| head`) ends the command quietly, as it ends any Unix tool, not with a panic.
fn out(line: &str) {
    use std::io::Write;
    if let Err(e) = writeln!(std::io::stdout().lock(), "{line}") {
        quiet_on_closed_pipe(&e);
    }
}

/// Exits 0 when stdout's reader went away (EPIPE); other write errors are left to the caller.
fn quiet_on_closed_pipe(e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
}

pub fn run(cli: Cli) -> Result<(), DaemonError> {
    let mut flags = FlagOverrides {
        state_dir: cli.state_dir,
        database_url: cli.database_url,
        log_level: cli.log_level,
        ..FlagOverrides::default()
    };
    let config = cli.config;
    match cli.command {
        Command::Keep(args) => crate::managed::keeper::run(&args).map_err(DaemonError::Startup),
        Command::Ctl(args) => crate::ctl::run(*args, &mut |line| out(line))
            .map_err(|e| DaemonError::Startup(format!("ctl: {e}"))),
        Command::Backup { dir } => {
            let cfg = Config::load(config.as_deref(), &flags)?;
            let done = crate::backup::run(&cfg, &dir, std::time::SystemTime::now())
                .map_err(|e| DaemonError::Startup(format!("backup: {e}")))?;
            match done {
                crate::backup::Backup::Sqlite { file, bytes, key } => {
                    out(&format!(
                        "backup written: {} ({bytes} bytes; integrity checked; the master key \
                         in use decrypts it)",
                        file.display()
                    ));
                    out(&format!(
                        "the master key is NOT in the backup: it comes from the {key}. Keep a \
                         copy of it apart from the backups; without it the gateways' tokens in \
                         them cannot be read."
                    ));
                    out(&format!(
                        "to restore: stop the daemon, `gateway-supervisor restore {}`, start it",
                        file.display()
                    ));
                }
                crate::backup::Backup::Postgres { dump, restore } => {
                    out("PostgreSQL: back it up with its own tool (the password is masked here):");
                    out(&format!("  {dump}"));
                    out("restore (with every instance stopped):");
                    out(&format!("  {restore}"));
                    out(
                        "the master key is not in the database: keep a copy of it apart from the dumps.",
                    );
                }
            }
            Ok(())
        }
        Command::Restore { file } => {
            let cfg = Config::load(config.as_deref(), &flags)?;
            let kept = crate::backup::restore(&cfg, &file, std::time::SystemTime::now())
                .map_err(|e| DaemonError::Startup(format!("restore: {e}")))?;
            out(&format!(
                "restored {} (integrity checked; the master key in use decrypts it)",
                file.display()
            ));
            if let Some(kept) = kept {
                out(&format!(
                    "the database it replaced is kept as {}",
                    kept.display()
                ));
            }
            Ok(())
        }
        Command::Completions { shell } => {
            out(&completions(shell));
            Ok(())
        }
        Command::Man { dir } => {
            // As clap_mangen::generate_to prepares it, so the printed page is the set's main
            // page (no `help` subcommand, which has no page of its own).
            let mut cmd = <Cli as clap::CommandFactory>::command().disable_help_subcommand(true);
            cmd.build();
            match dir {
                Some(dir) => clap_mangen::generate_to(cmd, &dir).map_err(|e| {
                    DaemonError::Startup(format!("writing manual pages to {}: {e}", dir.display()))
                }),
                None => clap_mangen::Man::new(cmd)
                    .render(&mut std::io::stdout())
                    .map_err(|e| {
                        quiet_on_closed_pipe(&e);
                        DaemonError::Startup(format!("writing the manual page: {e}"))
                    }),
            }
        }
        Command::Serve { bind } => {
            flags.bind = bind;
            daemon::serve(config, flags)
        }
        Command::Migrate => {
            let cfg = Config::load(config.as_deref(), &flags)?;
            let (_, backend, ran) = daemon::open_store(&cfg)?;
            out(&format!(
                "{}: {ran} migration(s) applied",
                backend.describe()
            ));
            Ok(())
        }
        Command::CheckConfig { format } => {
            let cfg = Config::load(config.as_deref(), &flags)?;
            let mut shown = cfg.clone();
            shown.database.url = crate::db::redact_url(&cfg.database.url);
            shown.alerts.webhook_url = cfg
                .alerts
                .webhook_url
                .as_deref()
                .map(crate::config::shown_webhook_url);
            let text = serde_json::to_string_pretty(&shown)
                .map_err(|e| DaemonError::Startup(e.to_string()))?;
            if format == OutputFormat::Text {
                out("configuration OK; effective settings:");
            }
            out(&text);
            Ok(())
        }
        Command::Keys { command } => {
            let cfg = Config::load(config.as_deref(), &flags)?;
            let (store, _, _) = daemon::open_store(&cfg)?;
            let by = Caller::system("cli");
            match command {
                KeysCommand::Create {
                    role,
                    name,
                    tenant,
                    selector,
                    verbs,
                    agents,
                    expires_in,
                } => {
                    let name = crate::validate::name(&name)
                        .map_err(|e| DaemonError::Startup(e.message))?;
                    let scope = crate::tenancy::Scope::new(
                        tenant.as_deref(),
                        selector.as_deref(),
                        verbs.as_deref(),
                        agents.as_deref(),
                        &cfg.labels.reserved(),
                    )
                    .map_err(|e| DaemonError::Startup(format!("the key's scope: {e}")))?;
                    let expires_at = expires_in.map(|d| {
                        crate::db::unix_now()
                            .saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                    });
                    let (row, key) =
                        store.create_api_key(&name, role, &scope.to_columns(), expires_at, &by)?;
                    out(key.reveal());
                    eprintln_info(&format!(
                        "created key #{} `{}` ({}), prefix {}; it is shown only once",
                        row.id, row.name, row.role, row.prefix
                    ));
                }
                KeysCommand::List => {
                    out(&format!(
                        "{:<5} {:<14} {:<9} {:<8} {:<21} {:<21} {:<24} NAME",
                        "ID", "PREFIX", "ROLE", "STATE", "CREATED", "LAST USED", "SCOPE"
                    ));
                    for k in store.list_api_keys()? {
                        let state = if k.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        };
                        let last = k.last_used_at.map_or_else(|| "never".into(), date_time);
                        out(&format!(
                            "{:<5} {:<14} {:<9} {:<8} {:<21} {:<21} {:<24} {}",
                            k.id,
                            k.prefix,
                            k.role,
                            state,
                            date_time(k.created_at),
                            last,
                            scope_summary(&k),
                            k.name
                        ));
                    }
                }
                KeysCommand::Rotate { key, grace } => {
                    let id = store
                        .list_api_keys()?
                        .into_iter()
                        .find(|k| k.id.to_string() == key || k.prefix == key)
                        .map(|k| k.id)
                        .ok_or_else(|| {
                            DaemonError::Startup(format!("no key with id or prefix `{key}`"))
                        })?;
                    let grace_s = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
                    let (row, secret) =
                        store
                            .rotate_api_key(id, grace_s, &by)
                            .map_err(|e| match e {
                                crate::db::DbError::NotFound => {
                                    DaemonError::Startup(format!("key `{key}` is revoked"))
                                }
                                crate::db::DbError::Conflict(why) => DaemonError::Startup(why),
                                other => other.into(),
                            })?;
                    out(secret.reveal());
                    eprintln_info(&format!(
                        "rotated key #{} `{}`: new prefix {}; the old secret works for {} more",
                        row.id,
                        row.name,
                        row.prefix,
                        humantime::format_duration(grace)
                    ));
                }
                KeysCommand::Revoke { key } => {
                    let row = store.revoke_api_key(&key, &by).map_err(|e| match e {
                        crate::db::DbError::NotFound => {
                            DaemonError::Startup(format!("no key with id or prefix `{key}`"))
                        }
                        other => other.into(),
                    })?;
                    out(&format!(
                        "revoked key #{} ({}, {})",
                        row.id, row.prefix, row.name
                    ));
                }
            }
            Ok(())
        }
        Command::Cluster {
            command: ClusterCommand::Status { format },
        } => {
            let cfg = Config::load(config.as_deref(), &flags)?;
            cluster_status(&cfg, format)
        }
    }
}

/// `cluster status`: read from the database, whether or not a daemon runs here.
fn cluster_status(cfg: &Config, format: OutputFormat) -> Result<(), DaemonError> {
    let (store, backend, _) = daemon::open_store(cfg)?;
    if !matches!(backend, crate::db::Backend::Postgres(_)) {
        out("not a cluster: on SQLite a daemon is alone (a cluster needs a postgres:// database)");
        return Ok(());
    }
    // The counts only: no lease is listed here.
    let state = store.cluster_state(crate::db::cluster::LeasePage {
        after: None,
        limit: 0,
    })?;
    let unowned = state.unowned();
    let ttl_ms = i64::try_from(cfg.cluster.lease_ttl.as_millis()).unwrap_or(i64::MAX);
    let instances = crate::cluster::status::instances(state.instances, &state.held, ttl_ms);
    if format == OutputFormat::Json {
        let doc = serde_json::json!({"instances": instances, "gateways_unowned": unowned,
                                     "coordinator": state.coordinator});
        out(&doc.to_string());
        return Ok(());
    }
    out(&format!(
        "{:<24} {:<5} {:>10} {:>9} {:>9}  ADVERTISE URL",
        "INSTANCE", "LIVE", "HEARTBEAT", "GATEWAYS", "CAPACITY"
    ));
    for i in &instances {
        let live = if i.stopping {
            "left"
        } else if i.live {
            "yes"
        } else {
            "no"
        };
        out(&format!(
            "{:<24} {:<5} {:>9.1}s {:>9} {:>9}  {}",
            i.instance_id,
            live,
            i.heartbeat_age_ms as f64 / 1000.0,
            i.gateways,
            i.capacity.map_or_else(|| "-".to_owned(), |c| c.to_string()),
            i.advertise_url.as_deref().unwrap_or("-")
        ));
    }
    out(&format!("gateways linked by nobody right now: {unowned}"));
    out(&format!(
        "coordinator: {}",
        state.coordinator.as_deref().unwrap_or("none right now")
    ));
    Ok(())
}

fn eprintln_info(line: &str) {
    eprintln!("{line}");
}
