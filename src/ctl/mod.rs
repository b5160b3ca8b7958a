//! `gateway-supervisor ctl …`: a small client of a running daemon's API for operators — the
//! gateways, the sessions, a spawn (followed to its result with `--wait`), the approvals inbox
//! (list, show, allow, deny), the live events —
//! as tables for people or, with `--json`, the API's own JSON for scripts.
//!
//! The key comes from `GATEWAY_SUPERVISOR_API_KEY` or a file (`--key-file`), never from a flag
//! (a flag is visible to every user in the process list) and is never printed. Every string the
//! daemon answers with (gateway names, versions, errors — a gateway chose some of them) is
//! escaped and bounded before it reaches the terminal ([`render`]); every answer is bounded in
//! bytes and every request in time ([`client`]).

mod client;
mod cron;
mod managed;
mod render;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::domain::SpawnStatus;
use crate::domain::operation::OperationState;
use client::Client;
pub use client::CtlError;

/// Where the key is read from when `--key-file` is not given.
pub const KEY_ENV: &str = "GATEWAY_SUPERVISOR_API_KEY";

#[derive(Debug, clap::Args)]
pub struct CtlArgs {
    /// The daemon's base URL.
    #[arg(
        long,
        env = "GATEWAY_SUPERVISOR_URL",
        default_value = "http://127.0.0.1:3000",
        value_name = "URL"
    )]
    pub url: String,
    /// A file holding the API key (else the GATEWAY_SUPERVISOR_API_KEY environment variable).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Print the API's JSON (one document; events: one per line) instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// How long one request may take.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CtlCommand {
    /// Gateways: status, primary, latency, sessions, version, breaker, held back; one in detail
    /// with its ID.
    Gateways {
        #[arg(value_name = "ID")]
        id: Option<i64>,
        /// Only the gateways whose labels this selector picks (`region=eu,tier!=canary`).
        #[arg(long, short = 'l', value_name = "SELECTOR", conflicts_with = "id")]
        selector: Option<String>,
    },
    /// Sessions on the connected gateways (from their live caches).
    Sessions {
        /// Only this gateway's.
        #[arg(long, value_name = "ID")]
        gateway: Option<i64>,
        /// Only this agent's.
        #[arg(long)]
        agent: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Start an agent run; with --wait, follow it to its result.
    Spawn {
        #[arg(long)]
        agent: String,
        #[arg(long)]
        task: String,
        /// On this gateway (else the daemon chooses).
        #[arg(long, value_name = "ID")]
        gateway: Option<i64>,
        /// Only on a gateway whose labels this selector picks.
        #[arg(long, short = 'l', value_name = "SELECTOR")]
        selector: Option<String>,
        /// A retry with the same key never starts a second run.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
        /// Wait for the run's result (at most this long).
        #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION", num_args = 0..=1, default_missing_value = "10m")]
        wait: Option<Duration>,
    },
    /// Desired configuration: each gateway's drift from its profiles, the profiles.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Gateways this daemon runs on its host: list, show, add, restart, delete.
    Managed {
        #[command(subcommand)]
        command: managed::ManagedCommand,
    },
    /// Every gateway's cron jobs: list, show one with its runs and missed fires.
    Cron {
        #[command(subcommand)]
        command: cron::CronCommand,
    },
    /// The fleet's approvals inbox: list, show, answer.
    Approvals {
        #[command(subcommand)]
        command: ApprovalsCommand,
    },
    /// Live events as they happen (Server-Sent Events), until interrupted or --count.
    Events {
        /// Only these types (comma-separated, e.g. gateway.status,gateway.primary).
        #[arg(long, value_name = "TYPES")]
        types: Option<String>,
        /// Stop after this many events.
        #[arg(long, value_name = "N")]
        count: Option<usize>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Each gateway against its profiles: in sync, drifted (the paths), saved but not applied,
    /// unknown.
    Drift {
        /// Only the gateways whose labels this selector picks.
        #[arg(long, short = 'l', value_name = "SELECTOR")]
        selector: Option<String>,
    },
    /// The config profiles, in the order they apply.
    Profiles,
    /// Roll a profile's patch (or a patch given with --patch and -l) out: canaries first, then
    /// waves; with --dry-run, each gateway's diff and the waves, touching nothing. Or steer one
    /// going: promote, pause, resume, cancel.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Rollout {
        #[command(subcommand)]
        steer: Option<Steer>,
        /// The profile to roll out.
        #[arg(long, required_unless_present = "patch")]
        profile: Option<String>,
        /// The gateways (with --patch), or fewer of the profile's.
        #[arg(long, short = 'l', value_name = "SELECTOR")]
        selector: Option<String>,
        /// A JSON merge patch (with -l; "" picks every gateway).
        #[arg(long, value_name = "JSON", conflicts_with = "profile")]
        patch: Option<String>,
        #[arg(long, default_value_t = 1)]
        canary: u32,
        #[arg(long, default_value_t = 1)]
        max_parallel: u32,
        #[arg(long, default_value = "30s", value_name = "DURATION")]
        min_healthy_time: String,
        #[arg(long, default_value = "5m", value_name = "DURATION")]
        healthy_deadline: String,
        /// Leave changed gateways as they are when a gateway fails.
        #[arg(long)]
        no_auto_revert: bool,
        /// Wait after the canaries for `POST /api/config/rollouts/{id}/promote`.
        #[arg(long)]
        manual_promote: bool,
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        note: Option<String>,
        /// Follow it until it is over (at most this long); fails unless it succeeded.
        #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION", num_args = 0..=1, default_missing_value = "30m")]
        wait: Option<Duration>,
    },
    /// The config rollouts, newest first; one with its ID: its waves and each gateway's step.
    Status {
        #[arg(value_name = "ID")]
        id: Option<String>,
    },
}

/// Steering a rollout that is going.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Steer {
    /// Let it go on past its canaries (started with --manual-promote).
    Promote {
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Start no more gateways until it is resumed (those started go on to their end).
    Pause {
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Go on after a pause.
    Resume {
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Stop it, in any state that is not over: nothing more is started, what was written is
    /// seen through, a revert stops where it is (the rollout names what it left).
    Cancel {
        #[arg(value_name = "ID")]
        id: String,
    },
}

impl Steer {
    /// The request that steers it.
    fn path(&self) -> String {
        let (verb, id) = match self {
            Steer::Promote { id } => ("promote", id),
            Steer::Pause { id } => ("pause", id),
            Steer::Resume { id } => ("resume", id),
            Steer::Cancel { id } => {
                return format!("/api/operations/{}/cancel", client::segment(id));
            }
        };
        format!("/api/config/rollouts/{}/{verb}", client::segment(id))
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum ApprovalsCommand {
    /// Approvals, newest first (the pending ones by default).
    List {
        /// pending, allowed, denied, expired, cancelled, or all.
        #[arg(long, default_value = "pending")]
        status: String,
        #[arg(long, value_name = "ID")]
        gateway: Option<i64>,
        /// Only the approvals of gateways whose labels this selector picks.
        #[arg(long, short = 'l', value_name = "SELECTOR")]
        selector: Option<String>,
        /// exec, plugin or system-agent.
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        agent: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// One approval: what the gateway presented, and how it ended.
    Show {
        #[arg(value_name = "GATEWAY")]
        gateway: i64,
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Allow it (once; --always for allow-always).
    Allow {
        #[arg(value_name = "GATEWAY")]
        gateway: i64,
        #[arg(value_name = "ID")]
        id: String,
        #[arg(long)]
        always: bool,
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Deny it.
    Deny {
        #[arg(value_name = "GATEWAY")]
        gateway: i64,
        #[arg(value_name = "ID")]
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

/// Runs one `ctl` command; what it prints goes through `out`.
pub fn run(args: CtlArgs, out: &mut dyn FnMut(&str)) -> Result<(), CtlError> {
    let key = read_key(args.key_file.as_deref())?;
    let client = Client::new(&args.url, key, args.timeout)?;
    let json = args.json;
    actix::System::new().block_on(async move {
        match args.command {
            CtlCommand::Gateways { id: None, selector } => {
                let path = match selector {
                    Some(s) => format!(
                        "/api/gateways?{}",
                        client::query(&[("selector", s), ("limit", "1000".into())])
                    ),
                    None => "/api/gateways".to_owned(),
                };
                let v = client.get(&path).await?;
                emit(out, json, &v, render::gateways);
            }
            CtlCommand::Gateways { id: Some(id), .. } => {
                let v = client.get(&format!("/api/gateways/{id}")).await?;
                emit(out, json, &v, render::gateway);
            }
            CtlCommand::Sessions {
                gateway,
                agent,
                limit,
            } => {
                let mut query = vec![("limit", limit.to_string())];
                if let Some(g) = gateway {
                    query.push(("gateway_id", g.to_string()));
                }
                if let Some(a) = agent {
                    query.push(("agent", a));
                }
                let path = format!("/api/sessions?{}", client::query(&query));
                let v = client.get(&path).await?;
                emit(out, json, &v, render::sessions);
            }
            CtlCommand::Spawn {
                agent,
                task,
                gateway,
                selector,
                idempotency_key,
                wait,
            } => {
                let mut body = json!({"agent": agent, "task": task});
                if let Some(g) = gateway {
                    body["gateway_id"] = json!(g);
                }
                if let Some(s) = selector {
                    body["selector"] = json!(s);
                }
                let started = client
                    .post("/api/spawn", &body, idempotency_key.as_deref())
                    .await?;
                let Some(wait) = wait else {
                    emit(out, json, &started, render::spawn);
                    return Ok(());
                };
                let id = started["spawn_id"].as_str().unwrap_or_default().to_owned();
                let (status, done) = client.wait_spawn(&id, wait).await?;
                emit(out, json, &done, render::spawn);
                if status != SpawnStatus::Ok {
                    return Err(CtlError::RunFailed(status.as_str().into()));
                }
            }
            CtlCommand::Approvals { command } => approvals(&client, command, json, out).await?,
            CtlCommand::Cron { command } => cron::run(&client, command, json, out).await?,
            CtlCommand::Managed { command } => managed_command(&client, command, json, out).await?,
            CtlCommand::Config {
                command: ConfigCommand::Drift { selector },
            } => {
                let path = match selector {
                    Some(s) => format!("/api/config/drift?{}", client::query(&[("selector", s)])),
                    None => "/api/config/drift".to_owned(),
                };
                let v = client.get(&path).await?;
                emit(out, json, &v, render::drift);
            }
            CtlCommand::Config {
                command: ConfigCommand::Profiles,
            } => {
                let v = client.get("/api/config/profiles").await?;
                emit(out, json, &v, render::profiles);
            }
            CtlCommand::Config {
                command: ConfigCommand::Status { id },
            } => {
                let v = match id {
                    Some(id) => {
                        let path = format!("/api/config/rollouts/{}", client::segment(&id));
                        let v = client.get(&path).await?;
                        emit(out, json, &v, render::rollout);
                        return Ok(());
                    }
                    None => client.get("/api/config/rollouts").await?,
                };
                emit(out, json, &v, render::rollouts);
            }
            CtlCommand::Config {
                command: rollout @ ConfigCommand::Rollout { .. },
            } => start_rollout(&client, rollout, json, out).await?,
            CtlCommand::Events { types, count } => {
                let path = match types {
                    Some(t) => format!("/api/events?{}", client::query(&[("types", t)])),
                    None => "/api/events".to_owned(),
                };
                let mut seen = 0;
                client
                    .events(&path, |event| {
                        if json {
                            out(&event.to_string());
                        } else {
                            out(&render::event(&event));
                        }
                        seen += 1;
                        count.is_none_or(|n| seen < n)
                    })
                    .await?;
            }
        }
        Ok(())
    })
}

async fn start_rollout(
    client: &Client,
    command: ConfigCommand,
    json: bool,
    out: &mut dyn FnMut(&str),
) -> Result<(), CtlError> {
    let ConfigCommand::Rollout {
        steer,
        profile,
        selector,
        patch,
        canary,
        max_parallel,
        min_healthy_time,
        healthy_deadline,
        no_auto_revert,
        manual_promote,
        dry_run,
        note,
        wait,
    } = command
    else {
        return Ok(());
    };
    if let Some(steer) = steer {
        let v = client.post(&steer.path(), &json!({}), None).await?;
        emit(out, json, &v, render::steered);
        return Ok(());
    }
    let mut body = json!({
        "canary": canary, "max_parallel": max_parallel,
        "min_healthy_time": min_healthy_time, "healthy_deadline": healthy_deadline,
        "auto_revert": !no_auto_revert, "auto_promote": !manual_promote, "dry_run": dry_run,
    });
    if let Some(p) = profile {
        body["profile"] = json!(p);
    }
    if let Some(s) = selector {
        body["selector"] = json!(s);
    }
    if let Some(p) = patch {
        body["patch"] = serde_json::from_str(&p)
            .map_err(|e| CtlError::Answer(format!("--patch is not JSON: {e}")))?;
    }
    if let Some(n) = note {
        body["note"] = json!(n);
    }
    let v = client.post("/api/config/rollouts", &body, None).await?;
    if dry_run {
        emit(out, json, &v, render::dry_run);
        return Ok(());
    }
    let Some(wait) = wait else {
        emit(out, json, &v, render::rollout);
        return Ok(());
    };
    let id = v["operation"]["id"].as_str().unwrap_or_default().to_owned();
    let done = client.wait_rollout(&id, wait).await?;
    emit(out, json, &done, render::rollout);
    // `wait_rollout` read the state already: it is one of the words.
    match serde_json::from_value::<OperationState>(done["operation"]["state"].clone()) {
        Ok(OperationState::Succeeded) => Ok(()),
        Ok(other) => Err(CtlError::RunFailed(other.as_str().into())),
        Err(e) => Err(CtlError::Answer(format!("the rollout's state: {e}"))),
    }
}

async fn managed_command(
    client: &Client,
    command: managed::ManagedCommand,
    json: bool,
    out: &mut dyn FnMut(&str),
) -> Result<(), CtlError> {
    use managed::ManagedCommand as M;
    match command {
        M::List => emit(out, json, &client.get("/api/managed").await?, managed::list),
        M::Show { id } => {
            let v = client.get(&format!("/api/managed/{id}")).await?;
            emit(out, json, &v, managed::one);
        }
        M::Restart { id } => {
            let path = format!("/api/managed/{id}/restart");
            let v = client.post(&path, &json!({}), None).await?;
            emit(out, json, &v, managed::one);
        }
        M::Delete { id, purge } => {
            let v = client
                .delete(&format!("/api/managed/{id}?purge={purge}"))
                .await?;
            if json {
                out(&v.to_string());
            } else {
                out(&format!("deleted managed gateway {id}"));
            }
        }
        ref add @ M::Add { wait, .. } => {
            let body = managed::declaration(add)?;
            let v = client.post("/api/managed", &body, None).await?;
            let v = match (wait, v["managed"]["gateway_id"].as_i64()) {
                (Some(wait), Some(id)) => managed::wait_running(client, id, wait).await?,
                _ => v,
            };
            emit(out, json, &v, managed::one);
        }
    }
    Ok(())
}

async fn approvals(
    client: &Client,
    command: ApprovalsCommand,
    json: bool,
    out: &mut dyn FnMut(&str),
) -> Result<(), CtlError> {
    let one = |gateway: i64, id: &str| format!("/api/approvals/{gateway}/{}", client::segment(id));
    let (path, body) = match command {
        ApprovalsCommand::List {
            status,
            gateway,
            selector,
            kind,
            agent,
            limit,
        } => {
            let mut query = vec![("limit", limit.to_string())];
            if status != "all" {
                query.push(("status", status));
            }
            if let Some(g) = gateway {
                query.push(("gateway_id", g.to_string()));
            }
            query.extend(selector.map(|s| ("selector", s)));
            query.extend(kind.map(|k| ("kind", k)));
            query.extend(agent.map(|a| ("agent", a)));
            let v = client
                .get(&format!("/api/approvals?{}", client::query(&query)))
                .await?;
            emit(out, json, &v, render::approvals);
            return Ok(());
        }
        ApprovalsCommand::Show { gateway, id } => {
            let v = client.get(&one(gateway, &id)).await?;
            emit(out, json, &v, render::approval);
            return Ok(());
        }
        ApprovalsCommand::Allow {
            gateway,
            id,
            always,
            reason,
        } => {
            let decision = if always { "allow-always" } else { "allow-once" };
            (
                one(gateway, &id),
                json!({"decision": decision, "reason": reason}),
            )
        }
        ApprovalsCommand::Deny {
            gateway,
            id,
            reason,
        } => (
            one(gateway, &id),
            json!({"decision": "deny", "reason": reason}),
        ),
    };
    let v = client.post(&format!("{path}/resolve"), &body, None).await?;
    emit(out, json, &v, render::approval);
    Ok(())
}

fn emit(out: &mut dyn FnMut(&str), json: bool, v: &Value, table: fn(&Value) -> String) {
    if json {
        out(&serde_json::to_string_pretty(v).unwrap_or_default());
    } else {
        out(table(v).trim_end());
    }
}

/// The key from the file, else the environment; either way trimmed, never echoed.
fn read_key(file: Option<&std::path::Path>) -> Result<String, CtlError> {
    let key = match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| CtlError::Key(format!("cannot read {}: {e}", path.display())))?,
        None => std::env::var(KEY_ENV)
            .map_err(|_| CtlError::Key(format!("set {KEY_ENV} or pass --key-file FILE")))?,
    };
    let key = key.trim().to_owned();
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(CtlError::Key("the key is empty or not one word".into()));
    }
    Ok(key)
}
