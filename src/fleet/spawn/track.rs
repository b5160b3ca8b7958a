//! Following a started spawn to its end: an agent run is waited for with `agent.wait` (and
//! its reply read from `chat.history`); a seed process reports through a `spawn_result` event,
//! within [`PROCESS_TIMEOUT`]. The end is recorded and announced as `spawn.result`.

use super::Spawns;
use gateway_supervisor_actors::events::EventKind;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::broadcast::{self, error::RecvError};

use super::orphan;
use super::outcome::{self, Finished};
use crate::db::spawns::SpawnUpdate;
use crate::domain::{SpawnId, SpawnStatus};
use gateway_supervisor_actors::events::Event;
use gateway_supervisor_actors::messages::GatewayLink;
use gateway_supervisor_actors::model::GatewayId;

/// How long a seed process may run before its spawn is recorded as `timeout`.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(300);

/// How soon, and how late at most, an `agent.wait` the gateway refused for now is asked again
/// (2026.9.6 says `retryAfterMs: 1000` while suspended).
const RETRY_MIN: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// What the tracker needs to follow one spawn.
pub(super) struct Tracked {
    pub spawn_id: SpawnId,
    pub gateway_id: GatewayId,
    pub link: GatewayLink,
    /// The gateway's run id (`agent`) or spawn id (`spawn`).
    pub run_id: Option<String>,
    pub session_key: Option<String>,
    /// `Some(timeout)` for an agent run (waited with `agent.wait`); `None` for a process.
    pub wait: Option<Duration>,
    /// Whether its gateway says what a run cost (`cost::answers_timeseries`).
    pub priced: bool,
    /// When the run was asked for (Unix ms): its cost is counted from here.
    pub dispatched_ms: i64,
    /// Its gateway's tenant when it was admitted (the metrics' label).
    pub tenant: String,
}

impl Spawns {
    /// Follows one spawn to its end and records it.
    pub(super) async fn track(self, t: Tracked, results: broadcast::Receiver<Arc<Event>>) {
        self.tracking_mut().insert(t.spawn_id.clone());
        let end = match (t.wait, t.run_id.as_deref()) {
            (Some(timeout), Some(run_id)) => self.wait_for_run(&t, run_id, timeout).await,
            (None, Some(spawn_id)) => Some(process_end(results, t.gateway_id, spawn_id).await),
            _ => Some(Finished::failed("the gateway returned no run id")),
        };
        self.tracking_mut().remove(&t.spawn_id);
        // The link went away (this instance stops, or the gateway moved to another): the run
        // goes on at the gateway, and whoever links it next follows it ([`Fleet::adopt_runs`]).
        let Some(end) = end else {
            return;
        };
        let announced = json!({"spawn_id": t.spawn_id, "status": end.status, "error": end.error});
        let ended_ms = end
            .result
            .as_ref()
            .and_then(|r| r.get("endedAt"))
            .and_then(serde_json::Value::as_i64)
            .unwrap_or_else(|| crate::db::unix_now().saturating_mul(1000));
        // Recorded first: whoever hears `spawn.result` finds the spawn finished.
        self.record_end(&t.spawn_id, end).await;
        self.usage.run_ended();
        self.ctx
            .events
            .publish(EventKind::SpawnResult, Some(t.gateway_id), announced);
        let cost = match (&t.session_key, t.priced) {
            (Some(key), true) => {
                super::cost::run_cost(
                    &t.link,
                    key,
                    t.dispatched_ms,
                    ended_ms,
                    self.ctx.deadlines.call,
                )
                .await
            }
            _ => None,
        };
        if let Some(micros) = cost {
            self.ctx
                .counters
                .spend_settled(&t.tenant, micros as f64 / 1e6);
        }
        self.ledger.settle(t.spawn_id.to_string(), cost).await;
    }

    /// An agent run's end, with its reply when it succeeded; `None` when the link went away
    /// before the gateway said (the run is not over: it is followed again from its next link).
    async fn wait_for_run(&self, t: &Tracked, run_id: &str, timeout: Duration) -> Option<Finished> {
        use gateway_supervisor_actors::messages::CallError;
        let until = tokio::time::Instant::now() + timeout;
        let answer = loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            let params = json!({"runId": run_id, "timeoutMs": left.as_millis() as u64});
            // The gateway answers once the run ends or its own timeout passes.
            let deadline = left + self.ctx.deadlines.call;
            match t.link.call("agent.wait", Some(params), deadline).await {
                Ok(answer) => break answer,
                Err(CallError::NotConnected) => return None,
                // Refused for now — a suspension held (2026.9 runs only its own methods then,
                // while the run goes on) or a restart draining: asked again when it says.
                Err(CallError::Gateway(refused))
                    if refused.retryable == Some(true) && !left.is_zero() =>
                {
                    let after = Duration::from_millis(refused.retry_after_ms.unwrap_or(1_000))
                        .clamp(RETRY_MIN, RETRY_MAX)
                        .min(left);
                    tokio::time::sleep(after).await;
                }
                Err(e) => {
                    return Some(Finished::failed(format!("while waiting for the run: {e}")));
                }
            }
        };
        let (status, error) = outcome::run_outcome(&answer);
        let mut result = answer;
        if status == SpawnStatus::Ok
            && let Some(reply) = self.reply(&t.link, t.session_key.as_deref()).await
        {
            result["reply"] = json!(reply);
        }
        Some(Finished {
            status,
            result: Some(result),
            error,
        })
    }

    /// The spawns this process follows now (so a sweep does not follow one twice).
    pub(super) fn tracking_mut(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashSet<SpawnId>> {
        self.tracking.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows every agent run still `running` on a gateway this instance links and connects
    /// to, that nobody here follows: after this daemon restarted, or after it adopted the
    /// gateway from an instance that died or handed it over. `agent.wait` on a run that
    /// already ended answers at once. A `running` spawn nobody can follow any more (its gateway
    /// deleted, or its deadline long past) is recorded as over ([`orphan::orphaned`]).
    pub async fn adopt_runs(self) {
        // Most sweeps find nothing running that nobody follows: the fleet (10,000 targets
        // built every 2 s) is read only when there is something to place.
        let Ok(mut running) = self.ctx.stored(|store| store.running_spawns(200)).await else {
            return;
        };
        running.retain(|row| !self.tracking_mut().contains(&row.id));
        if running.is_empty() {
            return;
        }
        let linked: std::collections::HashMap<GatewayId, GatewayLink> = self
            .ctx
            .targets()
            .linked_here()
            .into_iter()
            .filter(|t| t.candidate.healthy)
            .filter_map(|t| t.link.clone().map(|l| (t.candidate.id, l)))
            .collect();
        let now = crate::db::unix_now();
        for row in running {
            if self.tracking_mut().contains(&row.id) {
                continue;
            }
            if let Some(gateway_id) = row.gateway_id
                && let Some(link) = linked.get(&gateway_id)
                && row.method == "agent"
                && row.run_id.is_some()
            {
                tracing::info!(spawn_id = %row.id, gateway_id = gateway_id.get(), "following a run started before this link");
                let tracked = Tracked {
                    spawn_id: row.id,
                    gateway_id,
                    link: link.clone(),
                    run_id: row.run_id,
                    session_key: row.session_key,
                    wait: Some(PROCESS_TIMEOUT),
                    // Its gateway's release is not known here: settled at its estimate.
                    priced: false,
                    dispatched_ms: row.created_at.saturating_mul(1000),
                    tenant: String::new(),
                };
                let results = self.ctx.events.subscribe_after(None).1;
                actix::spawn(self.clone().track(tracked, results));
                continue;
            }
            let default_timeout = if row.method == "agent" {
                super::DEFAULT_RUN_TIMEOUT
            } else {
                PROCESS_TIMEOUT
            };
            // A deleted gateway leaves its spawns without one (ON DELETE SET NULL).
            let still_registered = row
                .gateway_id
                .is_some_and(|g| self.ctx.targets().get(g).is_some());
            let Some(end) = orphan::orphaned(
                &row,
                still_registered,
                now,
                self.ctx.deadlines.call,
                default_timeout,
            ) else {
                continue;
            };
            self.end_orphan(row.id, row.gateway_id, end).await;
        }
    }

    /// Records an orphaned spawn's end (unless someone recorded one first) and announces it.
    async fn end_orphan(&self, spawn_id: SpawnId, gateway_id: Option<GatewayId>, end: Finished) {
        let (id, status, error) = (spawn_id.clone(), end.status, end.error.clone());
        let ended = self
            .ctx
            .stored(move |store| store.end_if_running(&id, status, error.as_deref()))
            .await;
        self.ledger.settle(spawn_id.to_string(), None).await;
        match ended {
            Ok(true) => {
                tracing::warn!(%spawn_id, ?gateway_id, status = end.status.as_str(), error = end.error.as_deref().unwrap_or(""), "a spawn nobody could follow to its end is over");
                self.ctx.counters.spawn_finished(end.status);
                self.ctx.events.publish(
                    EventKind::SpawnResult,
                    gateway_id,
                    json!({"spawn_id": spawn_id, "status": end.status, "error": end.error}),
                );
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(%e, %spawn_id, "could not record an orphaned spawn's end"),
        }
    }

    /// The last assistant text of a session.
    async fn reply(&self, link: &GatewayLink, session_key: Option<&str>) -> Option<String> {
        let params = json!({"sessionKey": session_key?, "limit": 20});
        let history = link
            .call("chat.history", Some(params), self.ctx.deadlines.call)
            .await
            .ok()?;
        outcome::last_reply(&history)
    }

    /// Records how a spawn ended; a storage failure is logged (the run itself is over).
    pub(super) async fn record_end(&self, spawn_id: &SpawnId, end: Finished) {
        self.ctx.counters.spawn_finished(end.status);
        let sid = spawn_id.clone();
        let update = SpawnUpdate {
            status: Some(end.status),
            result: end.result.as_ref().map(serde_json::Value::to_string),
            error: end.error,
            finished: true,
            ..SpawnUpdate::default()
        };
        if let Err(e) = self
            .ctx
            .stored(move |store| store.update_spawn(&sid, update))
            .await
        {
            tracing::warn!(%e, %spawn_id, "could not record the spawn's end");
        }
    }
}

/// A seed process's end: its `spawn_result` event, or `timeout` after [`PROCESS_TIMEOUT`].
async fn process_end(
    mut results: broadcast::Receiver<Arc<Event>>,
    gateway_id: GatewayId,
    spawn_id: &str,
) -> Finished {
    let waiting = async {
        loop {
            match results.recv().await {
                Ok(e)
                    if e.kind == EventKind::GatewaySpawnResult
                        && e.gateway_id == Some(gateway_id)
                        && outcome::reports(&e.payload, spawn_id) =>
                {
                    return outcome::process_outcome(&e.payload);
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return Finished::failed("event bus closed"),
            }
        }
    };
    tokio::time::timeout(PROCESS_TIMEOUT, waiting)
        .await
        .unwrap_or_else(|_| Finished {
            status: SpawnStatus::Timeout,
            result: None,
            error: Some(format!(
                "no spawn_result within {} s",
                PROCESS_TIMEOUT.as_secs()
            )),
        })
}
