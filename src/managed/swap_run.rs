//! Carrying a swap out: the runner of a managed gateway takes each action the pure
//! [`super::swap`] machine decides and reports what happened, until the target runs (`Done`),
//! the previous release runs again on its restored state (`RolledBack`), or it could not
//! (`Failed`). Where the swap is goes to the operation that asked through the shared swap
//! slots ([`crate::fleet::processes::Processes::swap`]); each step is also the gateway's state
//! and a `gateway.managed` event. The release the gateway runs is recorded before its start,
//! so a daemon that dies mid-swap restarts the release that was running.
//!
//! While it swaps, the runner takes no other command (a restart or a delete waits for the end:
//! every step has its own deadline — the install's, the CLI's, the stop's, the start's and the
//! swap's `healthy_deadline`).

use std::time::Duration;

use nix::sys::signal::Signal;
use tracing::{info, warn};

use super::install::Source;
use super::openclaw::Launch;
use super::policy::Exit;
use super::process::{self, KeeperRecord};
use super::runner::{Runner, Startup, SwapSlot, blocking, wait_exit};
use super::state::ProcessState;
use super::state_copy;
use super::swap::{Action, Gates, Input, Step, Swap};
use crate::fleet::processes::{SwapOrder, SwapReport};
use gateway_supervisor_actors::model::GatewayId;

/// How often a settling target is looked at.
const SETTLE_TICK: Duration = Duration::from_millis(500);

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Where the swap is, in words.
fn describe(step: &Step, version: &str) -> String {
    match step {
        Step::Installing => format!("installing {version}"),
        Step::Preflighting => format!("{version} checks a copy of the state (database preflight)"),
        Step::Stopping => "stopping the gateway (its drain)".into(),
        Step::Snapshotting => {
            "copying the stopped gateway's state (the rollback's snapshot)".into()
        }
        Step::StartingTarget => format!("starting {version}"),
        Step::Settling { .. } => format!("{version} runs; settling"),
        Step::RollingBack { why } => format!("putting the previous release back: {why}"),
        Step::RolledBack { why } => format!("rolled back: {why}"),
        Step::Done => format!("runs {version}"),
        Step::Failed { why } => why.clone(),
    }
}

impl super::runner::Context {
    /// Where gateway `id`'s swap for `order`'s operation is, for the operation to read.
    pub fn report_swap(&self, id: GatewayId, order: &SwapOrder, report: SwapReport) {
        if let Ok(mut swaps) = self.swaps.lock() {
            swaps.insert(
                id,
                SwapSlot {
                    operation: order.operation.clone(),
                    report,
                },
            );
        }
    }
}

/// What the swap ended with, and whether a process runs: the target's or the previous one's.
pub struct Swapped {
    pub running: Option<KeeperRecord>,
    pub launch: Launch,
    /// Why nothing runs, when nothing does.
    pub why: Option<String>,
}

impl Runner {
    fn report_swap(&self, order: &SwapOrder, report: SwapReport) {
        self.ctx.report_swap(self.id, order, report);
    }

    /// A swap asked while the gateway is not running: refused, the gateway left as it is.
    pub(super) fn refuse_swap(&self, order: &SwapOrder) {
        self.report_swap(
            order,
            SwapReport::Refused(format!(
                "the gateway is {}: a swap starts from a running gateway",
                self.status.state
            )),
        );
    }

    async fn record_release(&self, version: String, source: String) {
        let (store, id) = (self.ctx.store.clone(), self.id);
        if let Some(Err(e)) =
            blocking(move || store.set_managed_release(id, &version, &source)).await
        {
            warn!(gateway_id = id.get(), error = %e, "cannot record a managed gateway's release");
        }
        if let Ok(mut versions) = self.ctx.versions.lock() {
            versions.insert(self.id, self.version.clone());
        }
    }

    /// Starts `launch` and waits until it owns its listener and `/startupz` says `started`.
    async fn start_and_await(&mut self, launch: &Launch) -> Result<KeeperRecord, Exit> {
        let record = match self.start(launch).await {
            Ok(r) => r,
            Err(e) => {
                warn!(gateway_id = self.id.get(), error = %e, "a swap could not start a release");
                return Err(Exit::Unknown);
            }
        };
        match self.await_startup(&record).await {
            Startup::Started => {
                self.status.started_at_ms = Some(process::now_ms());
                Ok(record)
            }
            Startup::Ended(exit) => Err(exit),
            Startup::TimedOut => {
                let _ = process::signal(&record, Signal::SIGKILL);
                Err(self.wait_exit(&record).await)
            }
        }
    }

    /// Swaps the running gateway (`record`, started by `launch`) to `order`'s release.
    pub(super) async fn swap(
        &mut self,
        order: SwapOrder,
        record: KeeperRecord,
        launch: Launch,
    ) -> Swapped {
        let gates = Gates {
            min_healthy_ms: ms(order.min_healthy),
            healthy_deadline_ms: ms(order.healthy_deadline),
        };
        let previous = (self.version.clone(), self.source.clone());
        let snapshot = self.dir.0.join("swap-snapshot");
        let mut swap = Swap::default();
        let mut action = swap.begin();
        let mut running = Some(record);
        let mut target: Option<Launch> = None;
        let mut snapshotted = false;
        info!(gateway_id = self.id.get(), from = %previous.0, to = %order.version, "swapping a managed gateway's release");
        loop {
            let words = describe(&swap.step, &order.version);
            self.report_swap(&order, SwapReport::Working(words.clone()));
            let input = match action {
                Action::Install => {
                    let (tools, v, src, env) = (
                        self.ctx.tools.clone(),
                        order.version.clone(),
                        Source::parse(&order.source),
                        self.ctx.cfg.env.clone(),
                    );
                    self.set(ProcessState::Running, Some(format!("swap: {words}")))
                        .await;
                    match blocking(move || tools.install(&v, &src, &env)).await {
                        Some(Ok(release)) => {
                            target = Some(self.launch(release));
                            Input::Installed(Ok(()))
                        }
                        Some(Err(e)) => Input::Installed(Err(e.to_string())),
                        None => Input::Installed(Err("interrupted".into())),
                    }
                }
                Action::Preflight => {
                    self.set(ProcessState::Running, Some(format!("swap: {words}")))
                        .await;
                    let t = target.clone();
                    let (state, copy) = (self.dir.state(), self.dir.run().join("preflight.sqlite"));
                    let timeout = self.ctx.cfg.cli_timeout;
                    let checked = blocking(move || {
                        let t = t.ok_or("no target installed")?;
                        let db = state_copy::state_db(&state);
                        if !db.exists() {
                            return Ok(()); // a state never written: nothing to read
                        }
                        let _ = std::fs::remove_file(&copy);
                        state_copy::consistent_copy(&db, &copy)?;
                        let answer = t.preflight(&copy, timeout).map(|_| ());
                        let _ = std::fs::remove_file(&copy);
                        answer
                    })
                    .await;
                    Input::Preflighted(checked.unwrap_or_else(|| Err("interrupted".into())))
                }
                Action::Stop => {
                    if let Some(r) = running.take() {
                        self.stop(&r).await;
                    }
                    Input::Stopped
                }
                Action::Snapshot => {
                    let (state, into) = (self.dir.state(), snapshot.clone());
                    let copied = blocking(move || state_copy::snapshot(&state, &into)).await;
                    let copied = copied.unwrap_or_else(|| Err("interrupted".into()));
                    snapshotted = copied.is_ok();
                    Input::Snapshotted(copied.map(|_| ()))
                }
                Action::StartTarget => match target.clone() {
                    None => Input::TargetExited(Exit::Unknown),
                    Some(t) => {
                        self.version.clone_from(&order.version);
                        self.source = Source::parse(&order.source);
                        self.record_release(order.version.clone(), order.source.clone())
                            .await;
                        match self.start_and_await(&t).await {
                            Ok(r) => {
                                running = Some(r);
                                Input::TargetStarted
                            }
                            Err(exit) => Input::TargetExited(exit),
                        }
                    }
                },
                Action::RollBack => {
                    if let Some(r) = running.take() {
                        self.stop(&r).await;
                    }
                    let restored = if snapshotted {
                        let (from, to) = (snapshot.clone(), self.dir.state());
                        blocking(move || state_copy::restore(&from, &to, process::now_ms()))
                            .await
                            .unwrap_or_else(|| Err("interrupted".into()))
                    } else {
                        Ok(()) // stopped before the state was copied: it is as it was
                    };
                    self.version.clone_from(&previous.0);
                    self.source = previous.1.clone();
                    self.record_release(previous.0.clone(), previous.1.as_stored())
                        .await;
                    let started = match restored {
                        Ok(()) => self
                            .start_and_await(&launch)
                            .await
                            .map_err(|exit| format!("it ended ({})", exit.describe())),
                        Err(e) => Err(e),
                    };
                    Input::PreviousRestored(started.map(|r| {
                        running = Some(r);
                    }))
                }
                Action::Wait if swap.over() => break,
                Action::Wait => {
                    let r = running.unwrap_or(record);
                    tokio::select! {
                        exit = wait_exit(self.dir.run(), r) => {
                            running = None;
                            Input::TargetExited(exit)
                        }
                        () = tokio::time::sleep(SETTLE_TICK) => Input::Tick,
                    }
                }
            };
            action = swap.next(input, process::now_ms(), gates);
            if swap.over() && action == Action::Wait {
                break;
            }
        }
        let (report, state, detail) = match &swap.step {
            Step::Done => (
                SwapReport::Done,
                ProcessState::Running,
                format!("upgraded {} → {}", previous.0, order.version),
            ),
            Step::RolledBack { why } => (
                SwapReport::RolledBack(why.clone()),
                ProcessState::Running,
                format!("the swap to {} was rolled back: {why}", order.version),
            ),
            // Refused before anything was stopped (a preflight, a downgrade): as it was.
            Step::Failed { why } if running.is_some() => (
                SwapReport::Refused(why.clone()),
                ProcessState::Running,
                format!("the swap to {} failed: {why}", order.version),
            ),
            other => {
                let why = describe(other, &order.version);
                (SwapReport::Failed(why.clone()), ProcessState::Failed, why)
            }
        };
        info!(gateway_id = self.id.get(), outcome = %detail, "a managed gateway's swap is over");
        self.set(state, Some(detail.clone())).await;
        self.report_swap(&order, report);
        let launch = match (&swap.step, target) {
            (Step::Done, Some(t)) => t,
            _ => launch,
        };
        Swapped {
            why: running.is_none().then_some(detail),
            running,
            launch,
        }
    }
}
