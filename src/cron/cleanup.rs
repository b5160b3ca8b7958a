//! Removing a gateway's extra copies of a job in one audited action (openclaw/openclaw#86451:
//! updates multiplied a fleet's jobs from 28 to 74). The gateway's list is read first, so the
//! copies removed are the ones it has now — never the kept copy, never a job that only looked
//! like a copy in an older read — then each extra copy is removed with `cron.remove`, and the
//! list read again. The removals are paced under the gateway's write limit (`fleet/operation/pace.rs`).

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{Cron, CronError};
use gateway_supervisor_actors::bounded;
use gateway_supervisor_actors::model::{Caller, GatewayId};

/// What a removal did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Removed {
    /// The extra copies removed.
    pub removed: Vec<String>,
    /// The copies kept (one per set of copies: the oldest).
    pub kept: Vec<String>,
    /// Extra copies the gateway did not remove, with its words.
    pub failed: Vec<NotRemoved>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotRemoved {
    pub job_id: String,
    pub error: String,
}

impl Cron {
    /// Removes gateway `id`'s enabled extra copies of its jobs, as `by`.
    pub async fn remove_duplicates(
        &self,
        id: GatewayId,
        by: &Caller,
    ) -> Result<Removed, CronError> {
        self.read(id).await?;
        let rows = self.stored(move |s| s.cron_jobs_of(id)).await?;
        let extras: Vec<(String, String)> = rows
            .iter()
            .filter_map(|r| Some((r.job_id.clone(), r.duplicate_of.clone()?)))
            .collect();
        let mut kept: Vec<String> = extras.iter().map(|(_, keep)| keep.clone()).collect();
        kept.sort();
        kept.dedup();
        let mut done = Removed {
            removed: Vec::new(),
            kept,
            failed: Vec::new(),
        };
        // One wait for the whole removal: what the gateway's write limit leaves for later is
        // named as not removed (busy), and a second removal takes it.
        let deadline = tokio::time::Instant::now() + super::WRITE_WAIT;
        for (job, _) in extras {
            let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
            let removed = self
                .hands
                .write(id, "cron.remove", json!({"id": job}), wait)
                .await;
            match removed {
                Ok(_) => done.removed.push(job),
                Err(e) => done.failed.push(NotRemoved {
                    job_id: job,
                    error: bounded::text(&e.to_string(), 300),
                }),
            }
        }
        if !done.removed.is_empty() || !done.failed.is_empty() {
            let details = json!({"removed": done.removed, "kept": done.kept,
                "failed": done.failed.iter().map(|f| &f.job_id).collect::<Vec<_>>()});
            self.hands
                .audited(by, "cron.duplicates_removed", id, details)
                .await;
            // Read back: the view shows what the gateway has now (the revision moved).
            if let Err(e) = self.read(id).await {
                tracing::debug!(gateway_id = id.get(), %e, "cron.list not read after the removal; at the next sweep");
            }
        }
        Ok(done)
    }
}
