//! One managed gateway's supervision: a task that installs its release, starts it through a
//! keeper (or finds the one already running after a daemon restart), waits until it owns its
//! listener and `/startupz` says `started`, and on its exit asks the pure [`policy`] what next.
//! Each state is stored before the next step. A daemon that stops leaves its gateways running;
//! the next one adopts them by the keeper's record (pid and start time), never starting a
//! second process.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use super::install::{Release, Source, Tools};
use super::openclaw::{GatewayDir, Launch};
use super::policy::{self, AfterExit, CrashHistory, CrashPolicy, Exit, GiveUp};
use super::process::{self, KeeperRecord};
use super::state::ProcessState;
use super::unit::Spawner;
use crate::config::ManagedRuntimeConfig;
use crate::db::Store;
use crate::db::managed::ManagedStatus;
use crate::fleet::processes::{SwapOrder, SwapReport};
use gateway_supervisor_actors::model::GatewayId;

/// What the service asks of a runner.
#[derive(Debug)]
pub enum Cmd {
    /// SIGUSR2 to a running gateway (it restarts through the handoff); a start for one that is
    /// down.
    Restart,
    /// SIGTERM, the drain, SIGKILL at `stop_timeout`; answered when it is down.
    Stop(oneshot::Sender<()>),
    /// Swap a running gateway's release (an upgrade); where it is goes to `Context::swaps`.
    Swap(SwapOrder),
}

/// The last report of the swap an operation asked for.
#[derive(Debug, Clone)]
pub struct SwapSlot {
    pub operation: String,
    pub report: SwapReport,
}

/// What every runner of this daemon shares.
pub struct Context {
    pub store: Store,
    /// Each move is announced (`gateway.managed`): the console, and the alert when one is
    /// given up.
    pub events: gateway_supervisor_actors::events::EventBus,
    pub tools: Tools,
    pub cfg: ManagedRuntimeConfig,
    /// Where keepers run (a unit each under systemd).
    pub spawner: Spawner,
    /// The last report of each gateway's swap, for the operation that asked.
    pub swaps: Mutex<HashMap<GatewayId, SwapSlot>>,
    /// The release each runner runs now.
    pub versions: Mutex<HashMap<GatewayId, String>>,
}

impl Context {
    fn policy(&self) -> CrashPolicy {
        CrashPolicy {
            burst: self.cfg.restart_burst,
            interval: self.cfg.restart_interval,
            delay: self.cfg.restart_delay,
            max_delay: self.cfg.restart_max_delay,
        }
    }
}

pub struct Runner {
    pub id: GatewayId,
    pub name: String,
    pub port: u16,
    pub version: String,
    pub source: Source,
    pub dir: GatewayDir,
    pub ctx: Arc<Context>,
    pub status: ManagedStatus,
    pub cmds: mpsc::Receiver<Cmd>,
}

/// How waiting for a started process ended.
pub(super) enum Startup {
    Started,
    Ended(Exit),
    TimedOut,
}

/// What a running gateway's wait ended with.
enum Wake {
    Exited(Exit),
    Stop(oneshot::Sender<()>),
    Swap(SwapOrder),
    /// The service is gone (the daemon stops): the gateway is left running.
    Detach,
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

/// `GET /startupz` on the gateway's loopback port: whether it says `started`.
fn startup_reports_started(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /startupz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut body = Vec::new();
    let _ = s.take(16 * 1024).read_to_end(&mut body);
    let text = String::from_utf8_lossy(&body);
    text.starts_with("HTTP/1.1 200") && text.contains(r#""status":"started""#)
}

impl Runner {
    pub(super) async fn set(&mut self, state: ProcessState, detail: Option<String>) {
        self.status.state = state.as_str().to_owned();
        self.status.detail = detail.map(|d| gateway_supervisor_actors::bounded::text(&d, 1024));
        self.status.updated_at_ms = process::now_ms();
        let (store, id, status) = (self.ctx.store.clone(), self.id, self.status.clone());
        if let Some(Err(e)) = blocking(move || store.set_managed_status(id, &status)).await {
            warn!(gateway_id = id.get(), error = %e, "cannot record a managed gateway's state");
        }
        let s = &self.status;
        let event = super::state::ManagedEvent {
            state,
            detail: s.detail.clone(),
            pid: s.pid,
            restarts: s.restarts,
            crashes: s.crashes,
            last_exit: s.last_exit.clone(),
        };
        self.ctx.events.publish(
            gateway_supervisor_actors::events::EventKind::ManagedGateway,
            Some(self.id),
            serde_json::to_value(&event).unwrap_or(serde_json::Value::Null),
        );
    }

    pub(super) fn launch(&self, release: Release) -> Launch {
        Launch {
            node: self.ctx.tools.node.clone(),
            release,
            dir: self.dir.clone(),
            extra_env: self.ctx.cfg.env.clone(),
        }
    }

    pub async fn run(mut self) {
        if let Ok(mut versions) = self.ctx.versions.lock() {
            versions.insert(self.id, self.version.clone());
        }
        self.set(ProcessState::Installing, None).await;
        let (tools, version, source, env) = (
            self.ctx.tools.clone(),
            self.version.clone(),
            self.source.clone(),
            self.ctx.cfg.env.clone(),
        );
        let release = match blocking(move || tools.install(&version, &source, &env)).await {
            Some(Ok(r)) => r,
            Some(Err(e)) => return self.down(ProcessState::Failed, e.to_string()).await,
            None => return,
        };
        let mut launch = self.launch(release);
        let run_dir = self.dir.run();
        let adopted = blocking(move || process::record(&run_dir).filter(process::running))
            .await
            .flatten();
        let mut history = CrashHistory::default();
        let mut current = adopted;
        if let Some(r) = &current {
            info!(
                gateway_id = self.id.get(),
                pid = r.gateway_pid,
                "re-adopted a running managed gateway"
            );
            self.status.pid = Some(i64::from(r.gateway_pid));
            self.set(
                ProcessState::Running,
                Some("re-adopted after a daemon restart".into()),
            )
            .await;
        }
        let mut claimed = false;
        loop {
            // A process started here is waited for; an adopted one runs already.
            let (record, started_here) = match current.take() {
                Some(r) => (r, false),
                None => {
                    if !claimed {
                        let (l, t) = (launch.clone(), self.ctx.cfg.cli_timeout);
                        match blocking(move || l.claim(t)).await {
                            Some(Ok(())) => claimed = true,
                            Some(Err(e)) => return self.down(ProcessState::Failed, e).await,
                            None => return,
                        }
                    }
                    match self.start(&launch).await {
                        Ok(r) => (r, true),
                        Err(e) => return self.down(ProcessState::Failed, e).await,
                    }
                }
            };
            // The pid the gateway sees itself as: what its handoff row records.
            let own_pid = process::namespace_pid(record.gateway_pid).unwrap_or(1);
            let exit = if started_here {
                match self.await_startup(&record).await {
                    Startup::Started => {
                        self.status.started_at_ms = Some(process::now_ms());
                        self.set(ProcessState::Running, None).await;
                        None
                    }
                    Startup::Ended(exit) => Some(exit),
                    Startup::TimedOut => {
                        let _ = process::signal(&record, Signal::SIGKILL);
                        Some(self.wait_exit(&record).await)
                    }
                }
            } else {
                None
            };
            let exit = match exit {
                Some(e) => e,
                None => match self.watch(&record, &mut history).await {
                    Wake::Exited(e) => e,
                    Wake::Stop(done) => {
                        self.stop(&record).await;
                        let _ = done.send(());
                        return;
                    }
                    Wake::Swap(order) => {
                        let swapped = self.swap(order, record, launch.clone()).await;
                        launch = swapped.launch;
                        match swapped.running {
                            Some(r) => current = Some(r),
                            None => {
                                let why = swapped.why.unwrap_or_default();
                                return self.down(ProcessState::Failed, why).await;
                            }
                        }
                        continue;
                    }
                    Wake::Detach => return,
                },
            };
            let handoff = if policy::asks_handoff(exit) {
                let (l, t) = (launch.clone(), self.ctx.cfg.cli_timeout);
                blocking(move || l.consume(own_pid, t)).await
            } else {
                None
            };
            self.status.last_exit = Some(exit.describe());
            self.status.pid = None;
            let decision = policy::after_exit(
                &self.ctx.policy(),
                &mut history,
                exit,
                handoff.as_ref(),
                process::now_ms(),
            );
            info!(gateway_id = self.id.get(), exit = %exit.describe(), ?handoff, ?decision, "a managed gateway ended");
            match decision {
                AfterExit::RestartNow => {
                    self.status.restarts += 1;
                }
                AfterExit::RestartAfter { delay, .. } => {
                    self.status.restarts += 1;
                    self.status.crashes += 1;
                    self.set(
                        ProcessState::Backoff,
                        Some(format!(
                            "{}; starting again in {}",
                            exit.describe(),
                            humantime::format_duration(delay)
                        )),
                    )
                    .await;
                    let wake = tokio::time::sleep(delay);
                    tokio::pin!(wake);
                    loop {
                        tokio::select! {
                            () = &mut wake => break,
                            cmd = self.cmds.recv() => match self.while_down(cmd).await {
                                None => return,
                                Some(true) => break,
                                Some(false) => {}
                            },
                        }
                    }
                }
                AfterExit::GiveUp(why) => {
                    if let GiveUp::StartLimit { .. } | GiveUp::Refused = why {
                        self.status.crashes += 1;
                    }
                    let state = match why {
                        GiveUp::Clean => ProcessState::Exited,
                        GiveUp::Refused | GiveUp::StartLimit { .. } => ProcessState::Failed,
                    };
                    warn!(gateway_id = self.id.get(), name = %self.name, reason = %why.describe(), "a managed gateway is not started again");
                    self.set(state, Some(why.describe())).await;
                    loop {
                        let cmd = self.cmds.recv().await;
                        match self.while_down(cmd).await {
                            None => return,
                            Some(true) => break,
                            Some(false) => {}
                        }
                    }
                    history = CrashHistory::default();
                }
            }
        }
    }

    /// Down for good until asked again (a failed install, claim or start).
    async fn down(mut self, state: ProcessState, detail: String) {
        warn!(gateway_id = self.id.get(), name = %self.name, detail = %detail, "a managed gateway cannot run");
        self.set(state, Some(detail)).await;
        loop {
            let cmd = self.cmds.recv().await;
            match self.while_down(cmd).await {
                None => return,
                // Asked again (the operator fixed Node, the registry, the port): from the top.
                Some(true) => return Box::pin(self.run()).await,
                Some(false) => {}
            }
        }
    }

    /// A command while no process runs: `Some(true)` start one, `Some(false)` keep waiting,
    /// `None` the runner ends (stopped, or the service is gone).
    async fn while_down(&mut self, cmd: Option<Cmd>) -> Option<bool> {
        match cmd? {
            Cmd::Restart => Some(true),
            Cmd::Swap(order) => {
                self.refuse_swap(&order);
                Some(false)
            }
            Cmd::Stop(done) => {
                self.set(ProcessState::Stopped, None).await;
                let _ = done.send(());
                None
            }
        }
    }

    pub(super) async fn start(&mut self, launch: &Launch) -> Result<KeeperRecord, String> {
        self.set(ProcessState::Starting, None).await;
        let argv = launch.gateway_argv(self.port)?;
        let env = launch.env();
        let (dir, max) = (self.dir.run(), self.ctx.cfg.log_max_bytes);
        let (ctx, name) = (self.ctx.clone(), self.name.clone());
        let within = Duration::from_secs(15);
        let record =
            blocking(move || process::spawn(&dir, &argv, &env, max, within, (&ctx.spawner, &name)))
                .await
                .ok_or("the start was interrupted")?
                .map_err(|e| e.to_string())?;
        self.status.pid = Some(i64::from(record.gateway_pid));
        info!(
            gateway_id = self.id.get(),
            pid = record.gateway_pid,
            "started a managed gateway"
        );
        Ok(record)
    }

    pub(super) async fn await_startup(&mut self, record: &KeeperRecord) -> Startup {
        let deadline = tokio::time::Instant::now() + self.ctx.cfg.start_timeout;
        loop {
            let (dir, r, port) = (self.dir.run(), *record, self.port);
            let seen = blocking(move || {
                if let Some(exit) = process::exit(&dir, &r) {
                    return Err(exit);
                }
                if !process::running(&r) {
                    return Err(Exit::Unknown);
                }
                Ok(process::owns_listener(r.gateway_pid, port) && startup_reports_started(port))
            })
            .await;
            match seen {
                Some(Ok(true)) => return Startup::Started,
                Some(Err(Exit::Unknown)) => return Startup::Ended(self.wait_exit(record).await),
                Some(Err(exit)) => return Startup::Ended(exit),
                Some(Ok(false)) | None => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Startup::TimedOut;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub(super) async fn wait_exit(&self, record: &KeeperRecord) -> Exit {
        wait_exit(self.dir.run(), *record).await
    }

    async fn watch(&mut self, record: &KeeperRecord, history: &mut CrashHistory) -> Wake {
        let stable = tokio::time::sleep(self.ctx.cfg.stable_after);
        tokio::pin!(stable);
        let mut stable_seen = false;
        let exit = wait_exit(self.dir.run(), *record);
        tokio::pin!(exit);
        loop {
            tokio::select! {
                exit = &mut exit => return Wake::Exited(exit),
                () = &mut stable, if !stable_seen => {
                    stable_seen = true;
                    history.stayed_up();
                }
                cmd = self.cmds.recv() => match cmd {
                    Some(Cmd::Restart) => {
                        if let Err(e) = process::signal(record, Signal::SIGUSR2) {
                            warn!(gateway_id = self.id.get(), error = %e, "cannot signal a managed gateway");
                        }
                    }
                    Some(Cmd::Stop(done)) => return Wake::Stop(done),
                    Some(Cmd::Swap(order)) => return Wake::Swap(order),
                    None => return Wake::Detach,
                },
            }
        }
    }

    pub(super) async fn stop(&mut self, record: &KeeperRecord) {
        self.set(ProcessState::Stopping, None).await;
        let _ = process::signal(record, Signal::SIGTERM);
        let drained = tokio::time::timeout(self.ctx.cfg.stop_timeout, self.wait_exit(record)).await;
        let exit = match drained {
            Ok(exit) => exit,
            Err(_) => {
                let _ = process::signal(record, Signal::SIGKILL);
                self.wait_exit(record).await
            }
        };
        self.status.last_exit = Some(exit.describe());
        self.status.pid = None;
        self.set(ProcessState::Stopped, None).await;
    }
}

/// How the process ended: the keeper's record, or unknown when the keeper is gone too.
pub(super) async fn wait_exit(dir: std::path::PathBuf, record: KeeperRecord) -> Exit {
    let mut gone_for = 0u32;
    loop {
        let (dir, r) = (dir.clone(), record);
        let seen = blocking(move || (process::exit(&dir, &r), process::running(&r)))
            .await
            .unwrap_or((None, false));
        match seen {
            (Some(exit), _) => return exit,
            // The keeper writes its record right after the gateway ends; one that was
            // killed never will.
            (None, false) if !process::alive(record.keeper_pid, record.keeper_start) => {
                gone_for += 1;
                if gone_for > 10 {
                    return Exit::Unknown;
                }
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
