//! Following a started spawn to its end: an agent run is waited for with `agent.wait` (and
//! its reply read from `chat.history`); a seed process reports through a `spawn_result` event,
//! within [`PROCESS_TIMEOUT`]. The end is recorded and announced as `spawn.result`.

use gateway_supervisor_actors::events::EventKind;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::broadcast::{self, error::RecvError};

use super::outcome::{self, Finished};
use crate::db::spawns::{SpawnStatus, SpawnUpdate};
use crate::fleet::Fleet;
use gateway_supervisor_actors::events::Event;
use gateway_supervisor_actors::messages::GatewayLink;
use gateway_supervisor_actors::model::GatewayId;

/// How long a seed process may run before its spawn is recorded as `timeout`.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(300);

/// What the tracker needs to follow one spawn.
pub(super) struct Tracked {
    pub spawn_id: String,
    pub gateway_id: GatewayId,
    pub link: GatewayLink,
    /// The gateway's run id (`agent`) or spawn id (`spawn`).
    pub run_id: Option<String>,
    pub session_key: Option<String>,
    /// `Some(timeout)` for an agent run (waited with `agent.wait`); `None` for a process.
    pub wait: Option<Duration>,
}

impl Fleet {
    /// Follows one spawn to its end and records it.
    pub(super) async fn track(
        self: Arc<Self>,
        t: Tracked,
        results: broadcast::Receiver<Arc<Event>>,
    ) {
        let end = match (t.wait, t.run_id.as_deref()) {
            (Some(timeout), Some(run_id)) => self.wait_for_run(&t, run_id, timeout).await,
            (None, Some(spawn_id)) => process_end(results, t.gateway_id, spawn_id).await,
            _ => Finished::failed("the gateway returned no run id"),
        };
        let announced = json!({"spawn_id": t.spawn_id, "status": end.status, "error": end.error});
        // Recorded first: whoever hears `spawn.result` finds the spawn finished.
        self.record_end(&t.spawn_id, end).await;
        self.events
            .publish(EventKind::SpawnResult, Some(t.gateway_id), announced);
    }

    /// An agent run's end, with its reply when it succeeded.
    async fn wait_for_run(&self, t: &Tracked, run_id: &str, timeout: Duration) -> Finished {
        let params = json!({"runId": run_id, "timeoutMs": timeout.as_millis() as u64});
        // The gateway answers once the run ends or its own timeout passes.
        let deadline = timeout + self.deadlines.call;
        let answer = match t.link.call("agent.wait", Some(params), deadline).await {
            Ok(answer) => answer,
            Err(e) => return Finished::failed(format!("while waiting for the run: {e}")),
        };
        let (status, error) = outcome::run_outcome(&answer);
        let mut result = answer;
        if status == SpawnStatus::Ok
            && let Some(reply) = self.reply(&t.link, t.session_key.as_deref()).await
        {
            result["reply"] = json!(reply);
        }
        Finished {
            status,
            result: Some(result),
            error,
        }
    }

    /// The last assistant text of a session.
    async fn reply(&self, link: &GatewayLink, session_key: Option<&str>) -> Option<String> {
        let params = json!({"sessionKey": session_key?, "limit": 20});
        let history = link
            .call("chat.history", Some(params), self.deadlines.call)
            .await
            .ok()?;
        outcome::last_reply(&history)
    }

    /// Records how a spawn ended; a storage failure is logged (the run itself is over).
    pub(super) async fn record_end(&self, spawn_id: &str, end: Finished) {
        self.counters.spawn_finished(end.status);
        let sid = spawn_id.to_owned();
        let update = SpawnUpdate {
            status: Some(end.status),
            result: end.result.as_ref().map(serde_json::Value::to_string),
            error: end.error,
            finished: true,
            ..SpawnUpdate::default()
        };
        if let Err(e) = self
            .stored(move |store| store.update_spawn(&sid, update))
            .await
        {
            tracing::warn!(%e, spawn_id, "could not record the spawn's end");
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
