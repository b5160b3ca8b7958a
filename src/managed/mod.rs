//! Managed gateways: OpenClaw gateways this daemon runs on its own host (docs/design.md,
//! *Managed gateways*). Declared through the API, installed side by side per release, run as
//! OpenClaw's external-supervisor contract says (external mode, state ownership claimed, the
//! restart handoff consumed on a clean exit), each through a keeper that outlives the daemon,
//! and registered as a gateway like any other (the same link, health, routing, operations).
//!
//! The service here carries out what the API asks; each gateway's process is its
//! [`runner::Runner`]'s, and what follows an exit is the pure [`policy`]'s.

pub mod command;
pub mod declare;
pub mod engines;
pub mod handoff;
pub mod host;
pub mod install;
pub mod keeper;
pub mod openclaw;
pub mod output_tail;
pub mod policy;
pub mod process;
pub mod runner;
pub mod state;
pub mod state_copy;
pub mod swap;
mod swap_run;
pub mod unit;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use actix::Addr;
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::fleet::processes::{SwapOrder, SwapReport};
use tracing::warn;

use crate::config::ManagedRuntimeConfig;
use crate::db::managed::{ManagedRecord, ManagedStatus};
use crate::db::{DbError, Store};
use gateway_supervisor_actors::RegistryActor;
use gateway_supervisor_actors::messages::{CreateGateway, DeleteGateway, UpdateGateway};
use gateway_supervisor_actors::model::{Caller, GatewayId, GatewayPatch, NewGateway};
use install::{Source, Tools};
use openclaw::GatewayDir;
use runner::{Cmd, Context, Runner};
use state::{Desired, ProcessState};

#[derive(Debug, thiserror::Error)]
pub enum ManagedError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("managed gateway {0} not found")]
    NotFound(GatewayId),
    #[error("port {0} is taken on this host")]
    PortTaken(u16),
    #[error("no free port in managed_runtime.port_range_start..port_range_end")]
    NoFreePort,
    /// Its process runs on another host: only a daemon there can act on it.
    #[error("managed gateway {id} runs on host `{host}`: ask a daemon on that host")]
    OtherHost { id: GatewayId, host: String },
    #[error("storage: {0}")]
    Storage(#[from] DbError),
    #[error("registering the gateway: {0}")]
    Registry(#[source] gateway_supervisor_actors::messages::RegistryError),
    #[error("{0}")]
    Internal(String),
}

/// What `POST /api/managed` asks for, validated.
#[derive(Debug, Clone)]
pub struct Declaration {
    pub name: String,
    pub version: String,
    pub source: Source,
    /// A JSON merge patch over the safe default.
    pub config: Map<String, Value>,
    pub labels: gateway_supervisor_actors::labels::Labels,
    pub port: Option<u16>,
}

/// Ports between two managed gateways' own: each uses derived ports up to its own + 110.
const PORT_STRIDE: usize = 200;

/// Keys of the gateway's config the daemon owns: its port, bind and token.
const OWNED_KEYS: [&str; 3] = ["port", "auth", "bind"];

pub struct Managed {
    ctx: Arc<Context>,
    registry: Addr<RegistryActor>,
    gateways: crate::gateway_reads::GatewayReads,
    host_id: String,
    gateways_dir: PathBuf,
    runners: Mutex<HashMap<GatewayId, mpsc::Sender<Cmd>>>,
    /// Each runner's output file, as far as the log tail read it.
    outputs: Arc<Mutex<HashMap<GatewayId, output_tail::Output>>>,
    /// In a cluster, how long an instance lives without a heartbeat: a host with no live
    /// instance leaves its managed gateways unsupervised.
    cluster_ttl: Option<std::time::Duration>,
}

/// RFC 7396: `patch` applied to `target` (a `null` removes the key).
fn apply_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                apply_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

impl Declaration {
    /// Refuses a patch that sets what the daemon owns (`gateway.port`, `.auth`, `.bind`).
    pub fn check(&self) -> Result<(), ManagedError> {
        if let Some(Value::Object(gw)) = self.config.get("gateway")
            && let Some(k) = OWNED_KEYS.iter().find(|k| gw.contains_key(**k))
        {
            return Err(ManagedError::Invalid {
                field: "config",
                message: format!(
                    "`gateway.{k}` is set by the supervisor (use `port` for the port; the token is generated)"
                ),
            });
        }
        Ok(())
    }
}

impl Managed {
    pub fn new(
        store: Store,
        events: gateway_supervisor_actors::events::EventBus,
        registry: Addr<RegistryActor>,
        gateways: crate::gateway_reads::GatewayReads,
        cfg: ManagedRuntimeConfig,
        state_dir: &Path,
        host_id: String,
    ) -> Managed {
        let tools = Tools {
            node: cfg.node.clone().unwrap_or_else(|| openclaw::which("node")),
            npm: cfg.npm.clone().unwrap_or_else(|| openclaw::which("npm")),
            releases: cfg.releases_dir(state_dir),
            install_timeout: cfg.install_timeout,
        };
        let spawner = unit::Spawner::choose(&cfg, unit::under_systemd());
        if spawner == unit::Spawner::Process && unit::Limits::of(&cfg).any() {
            tracing::warn!(
                "[managed_runtime] memory_max, cpu_quota_percent and tasks_max apply to the systemd backend only; managed gateways run without them"
            );
        }
        Managed {
            ctx: Arc::new(Context {
                store,
                events,
                tools,
                cfg,
                spawner,
                swaps: Mutex::default(),
                versions: Mutex::default(),
            }),
            registry,
            gateways,
            host_id,
            gateways_dir: state_dir.join("managed/gateways"),
            runners: Mutex::new(HashMap::new()),
            outputs: Arc::default(),
            cluster_ttl: None,
        }
    }

    /// One instance of a cluster whose instances live `ttl` without a heartbeat.
    pub fn in_cluster(mut self, ttl: Option<std::time::Duration>) -> Self {
        self.cluster_ttl = ttl;
        self
    }

    /// One round of the output tail ([`output_tail`]): each managed gateway's new output lines
    /// published as `log` events (source `output`), redacted and bounded as every log line is.
    pub async fn tail_outputs(&self) {
        if self.outputs.lock().map_or(true, |o| o.is_empty()) {
            return; // nothing managed here: no thread to wake
        }
        let outputs = self.outputs.clone();
        let read = runner::blocking(move || {
            let Ok(mut outputs) = outputs.lock() else {
                return Vec::new();
            };
            outputs
                .iter_mut()
                .map(|(id, o)| (*id, o.read_new()))
                .filter(|(_, lines)| !lines.is_empty())
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (id, lines) in read {
            for raw in lines {
                let line = crate::fleet::log_tail::line::parse(&raw);
                self.ctx.events.publish(
                    gateway_supervisor_actors::events::EventKind::Log,
                    Some(id),
                    line.payload_from("output"),
                );
            }
        }
    }

    /// Stores what this host is now (`GET /api/hosts`): its releases, CPUs, memory, load.
    pub async fn report_host(&self) -> Result<(), ManagedError> {
        let (tools, host) = (self.ctx.tools.clone(), self.host_id.clone());
        let backend = self.ctx.spawner.name();
        self.store(move |s| {
            let info = host::HostInfo::read(tools.versions(), backend);
            s.put_host(&crate::db::hosts::HostRecord {
                host_id: host,
                info: serde_json::to_string(&info).unwrap_or_else(|_| "{}".into()),
                updated_at_ms: process::now_ms(),
            })
        })
        .await
    }

    /// In a cluster, the live instances of each host; `None` for a daemon on its own (every
    /// managed gateway is this host's, supervised while it answers).
    pub async fn live_hosts(
        &self,
    ) -> Result<Option<std::collections::BTreeMap<String, Vec<String>>>, ManagedError> {
        let Some(ttl) = self.cluster_ttl else {
            return Ok(None);
        };
        self.store(move |s| s.live_hosts(ttl)).await
    }

    pub fn host_id(&self) -> &str {
        &self.host_id
    }

    /// The releases installed on this host.
    pub fn installed_versions(&self) -> Vec<String> {
        self.ctx.tools.versions()
    }

    fn dir(&self, name: &str) -> GatewayDir {
        GatewayDir(self.gateways_dir.join(name))
    }

    async fn store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, ManagedError> {
        self.ctx.store.call(f).await.map_err(ManagedError::Storage)
    }

    /// Starts the runners of this host's managed gateways (at daemon start): running ones are
    /// adopted, not started again.
    pub async fn resume(&self) -> Result<usize, ManagedError> {
        let host = self.host_id.clone();
        let records = self.store(move |s| s.managed_list(Some(&host))).await?;
        let names = self.store(|s| s.gateway_names()).await?;
        let mut n = 0;
        for record in records {
            if Desired::parse(&record.desired) == Some(Desired::Stopped) {
                continue;
            }
            let Some(name) = names.get(&record.gateway_id).cloned() else {
                continue;
            };
            self.spawn_runner(&record, name);
            n += 1;
        }
        Ok(n)
    }

    fn spawn_runner(&self, record: &ManagedRecord, name: String) {
        let (tx, rx) = mpsc::channel(8);
        let port = u16::try_from(record.port).unwrap_or_default();
        let runner = Runner {
            id: record.gateway_id,
            dir: self.dir(&name),
            name,
            port,
            version: record.version.clone(),
            source: Source::parse(&record.source),
            ctx: self.ctx.clone(),
            status: ManagedStatus {
                state: record.state.clone(),
                pid: record.pid,
                restarts: record.restarts,
                crashes: record.crashes,
                last_exit: record.last_exit.clone(),
                detail: record.detail.clone(),
                started_at_ms: record.started_at_ms,
                updated_at_ms: record.updated_at_ms,
            },
            cmds: rx,
        };
        if let Ok(mut runners) = self.runners.lock() {
            runners.insert(record.gateway_id, tx);
        }
        if let Ok(mut outputs) = self.outputs.lock() {
            let path = runner.dir.run().join("output.log");
            outputs.insert(record.gateway_id, output_tail::Output::new(path));
        }
        actix::spawn(runner.run());
    }

    /// The first free port of the range, a stride apart: a gateway also listens on ports
    /// derived from its own (2026.9.6: up to port + 110).
    fn free_port(&self, taken: &[i32]) -> Result<u16, ManagedError> {
        (self.ctx.cfg.port_range_start..=self.ctx.cfg.port_range_end)
            .step_by(PORT_STRIDE)
            .find(|p| {
                !taken.contains(&i32::from(*p))
                    && std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok()
            })
            .ok_or(ManagedError::NoFreePort)
    }

    /// Writes the gateway's folder and config: the safe default, the patch, then the keys the
    /// daemon owns (a new declaration has a new token). A state kept from an earlier
    /// declaration of the name (deleted without `purge`) is kept.
    fn prepare(
        dir: &GatewayDir,
        port: u16,
        token: &str,
        patch: &Map<String, Value>,
    ) -> std::io::Result<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        for d in [dir.0.clone(), dir.home(), dir.state(), dir.run()] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&d)?;
        }
        let mut config = json!({
            "gateway": {"mode": "local"},
            "update": {"checkOnStart": false},
            "logging": {"file": dir.0.join("openclaw.log")},
        });
        apply_patch(&mut config, &Value::Object(patch.clone()));
        apply_patch(
            &mut config,
            &json!({"gateway": {"port": port, "bind": "loopback", "auth": {"mode": "token", "token": token}}}),
        );
        let tmp = dir.0.join("openclaw.json.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        std::io::Write::write_all(
            &mut f,
            &serde_json::to_vec_pretty(&config).unwrap_or_default(),
        )?;
        std::fs::rename(tmp, dir.config())
    }

    /// Declares a managed gateway: its folder and config, its gateway (token generated and
    /// stored encrypted like every token), its record; then its runner installs and starts it.
    pub async fn declare(
        &self,
        decl: Declaration,
        by: Caller,
    ) -> Result<ManagedRecord, ManagedError> {
        decl.check()?;
        let host = self.host_id.clone();
        let taken = self.store(move |s| s.managed_ports(&host)).await?;
        let port = match decl.port {
            Some(p) if taken.contains(&i32::from(p)) => return Err(ManagedError::PortTaken(p)),
            Some(p) => p,
            None => self.free_port(&taken)?,
        };
        let token = crate::secrets::random_hex::<32>()
            .map_err(|e| ManagedError::Internal(e.to_string()))?;
        let view = self
            .registry
            .send(CreateGateway {
                new: NewGateway {
                    name: decl.name.clone(),
                    host: "127.0.0.1".into(),
                    port,
                    tls: false,
                    allow_insecure_tls: false,
                    token: Some(token.clone().into()),
                    is_primary: false,
                    workspace_root: None,
                    disable_device_pairing: false,
                    gateway_agent_id: None,
                    approvals: None,
                    labels: decl.labels.clone(),
                },
                by: by.clone(),
            })
            .await
            .map_err(|e| ManagedError::Internal(e.to_string()))?
            .map_err(ManagedError::Registry)?;
        // Written once the name is known to be new (a duplicate is refused above).
        let dir = self.dir(&decl.name);
        if let Err(e) = Managed::prepare(&dir, port, &token, &decl.config) {
            self.unregister(view.record.id, by).await;
            return Err(ManagedError::Internal(format!("{}: {e}", dir.0.display())));
        }
        let now = process::now_ms();
        let record = ManagedRecord {
            gateway_id: view.record.id,
            host_id: self.host_id.clone(),
            version: decl.version.clone(),
            source: decl.source.as_stored(),
            config: Value::Object(decl.config.clone()).to_string(),
            port: i32::from(port),
            desired: Desired::Running.as_str().into(),
            state: ProcessState::Installing.as_str().into(),
            pid: None,
            restarts: 0,
            crashes: 0,
            last_exit: None,
            detail: None,
            started_at_ms: None,
            created_at_ms: now,
            updated_at_ms: now,
        };
        let r = record.clone();
        if !self.store(move |s| s.insert_managed(&r)).await? {
            self.unregister(view.record.id, by).await;
            return Err(ManagedError::PortTaken(port));
        }
        self.spawn_runner(&record, decl.name);
        Ok(record)
    }

    /// Takes back a registration whose declaration could not be completed.
    async fn unregister(&self, id: GatewayId, by: Caller) {
        let gone = DeleteGateway { id, by, lost: true };
        if let Ok(Err(e)) = self.registry.send(gone).await {
            warn!(gateway_id = id.get(), error = %e, "a half-declared managed gateway stays registered");
        }
    }

    pub async fn list(&self) -> Result<Vec<ManagedRecord>, ManagedError> {
        self.store(|s| s.managed_list(None)).await
    }

    /// Every managed gateway with its gateway's name.
    pub async fn list_named(&self) -> Result<Vec<(String, ManagedRecord)>, ManagedError> {
        let records = self.list().await?;
        let names = self.store(|s| s.gateway_names()).await?;
        Ok(records
            .into_iter()
            .map(|r| (names.get(&r.gateway_id).cloned().unwrap_or_default(), r))
            .collect())
    }

    pub async fn get(&self, id: GatewayId) -> Result<ManagedRecord, ManagedError> {
        self.store(move |s| s.managed(id))
            .await?
            .ok_or(ManagedError::NotFound(id))
    }

    /// Makes the oldest other gateway primary when gateway `id` is (nothing when it is not, or
    /// is the only gateway).
    async fn move_primary_off(&self, id: GatewayId, by: &Caller) -> Result<(), ManagedError> {
        let snapshot = self
            .gateways
            .list()
            .await
            .map_err(|e| ManagedError::Internal(e.to_string()))?;
        let views = snapshot.views;
        let primary = views
            .iter()
            .any(|v| v.record.id == id && v.record.is_primary);
        let Some(next) = views
            .iter()
            .map(|v| v.record.id)
            .filter(|other| *other != id)
            .min()
        else {
            return Ok(());
        };
        if !primary {
            return Ok(());
        }
        let patch = GatewayPatch {
            is_primary: Some(true),
            ..GatewayPatch::default()
        };
        self.registry
            .send(UpdateGateway {
                id: next,
                patch,
                by: by.clone(),
            })
            .await
            .map_err(|e| ManagedError::Internal(e.to_string()))?
            .map_err(ManagedError::Registry)?;
        tracing::info!(
            from = id.get(),
            to = next.get(),
            "the primary moved off a failed managed gateway being deleted"
        );
        Ok(())
    }

    /// `id`'s record, when its process is this host's to act on.
    async fn here(&self, id: GatewayId) -> Result<ManagedRecord, ManagedError> {
        let record = self.get(id).await?;
        if record.host_id != self.host_id {
            return Err(ManagedError::OtherHost {
                id,
                host: record.host_id,
            });
        }
        Ok(record)
    }

    fn runner(&self, id: GatewayId) -> Option<mpsc::Sender<Cmd>> {
        self.runners.lock().ok()?.get(&id).cloned()
    }

    /// SIGUSR2 (the gateway restarts through the handoff), or a start of one that is down.
    pub async fn restart(&self, id: GatewayId) -> Result<ManagedRecord, ManagedError> {
        let record = self.here(id).await?;
        match self.runner(id) {
            Some(tx) => {
                let _ = tx.send(Cmd::Restart).await;
            }
            None => {
                let names = self.store(|s| s.gateway_names()).await?;
                let name = names.get(&id).cloned().ok_or(ManagedError::NotFound(id))?;
                self.store(move |s| s.set_managed_desired(id, Desired::Running.as_str()))
                    .await?;
                self.spawn_runner(&record, name);
            }
        }
        Ok(record)
    }

    /// Removes the gateway (refused as any gateway's removal is: the primary stays), then
    /// stops its process (SIGTERM, its drain, SIGKILL at `stop_timeout`) and forgets it; with
    /// `purge` its folder (state, config, output) goes too.
    pub async fn delete(&self, id: GatewayId, purge: bool, by: Caller) -> Result<(), ManagedError> {
        let record = self.here(id).await?;
        let name = self.store(|s| s.gateway_names()).await?.remove(&id);
        // A gateway whose process failed is lost: the primary role, if it has it, moves to
        // the oldest other gateway, or goes with it when it is the last one.
        let lost = record.state == ProcessState::Failed.as_str();
        if lost {
            self.move_primary_off(id, &by).await?;
        }
        self.registry
            .send(DeleteGateway { id, by, lost })
            .await
            .map_err(|e| ManagedError::Internal(e.to_string()))?
            .map_err(ManagedError::Registry)?;
        self.store(move |s| s.set_managed_desired(id, Desired::Stopped.as_str()))
            .await?;
        let tx = self.runners.lock().ok().and_then(|mut r| r.remove(&id));
        if let Ok(mut outputs) = self.outputs.lock() {
            outputs.remove(&id);
        }
        if let Some(tx) = tx {
            let (done, stopped) = oneshot::channel();
            if tx.send(Cmd::Stop(done)).await.is_ok() {
                let _ = stopped.await;
            }
        }
        self.store(move |s| s.delete_managed(id)).await?;
        if purge && let Some(name) = name {
            let dir = self.dir(&name);
            if let Err(e) = std::fs::remove_dir_all(&dir.0) {
                warn!(gateway_id = id.get(), error = %e, "cannot purge a managed gateway's folder");
            }
        }
        Ok(())
    }
}

impl crate::fleet::processes::Processes for Managed {
    fn runs(&self, id: GatewayId) -> bool {
        self.runner(id).is_some()
    }

    fn swap(&self, id: GatewayId, order: &SwapOrder) -> SwapReport {
        let slot = self.ctx.swaps.lock().ok().and_then(|s| s.get(&id).cloned());
        if let Some(slot) = slot.filter(|s| s.operation == order.operation) {
            return slot.report;
        }
        let current = self
            .ctx
            .versions
            .lock()
            .ok()
            .and_then(|v| v.get(&id).cloned());
        if current.as_deref() == Some(order.version.as_str()) {
            return SwapReport::Current;
        }
        let Some(tx) = self.runner(id) else {
            return SwapReport::Refused("no process of it runs on this host".into());
        };
        match tx.try_send(Cmd::Swap(order.clone())) {
            Ok(()) => {
                let report = SwapReport::Working("asked".into());
                self.ctx.report_swap(id, order, report.clone());
                report
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                SwapReport::Working("its runner is busy: asked again next round".into())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                SwapReport::Refused("its runner has stopped".into())
            }
        }
    }
}
