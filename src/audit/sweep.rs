//! The retention sweep: at the start and hourly, while this instance decides for the fleet, it deletes what
//! [`super::retention::sweeps`] names, 10,000 rows a statement (a month of a busy fleet never
//! holds one long transaction), never a row the sink has not delivered yet.

use std::time::Duration;

use actix::Addr;

use super::AuditMetrics;
use crate::config::AuditConfig;
use crate::db::Store;
use gateway_supervisor_actors::RegistryActor;
use gateway_supervisor_actors::registry::Decides;

/// How often the sweep runs.
pub const EVERY: Duration = Duration::from_secs(3600);
/// Rows deleted a statement.
const BATCH: i64 = 10_000;

/// While another instance decides, asked again this often.
const NOT_DECIDING: Duration = Duration::from_secs(10);

/// Runs until the daemon stops: a sweep at the start (once this instance decides), then hourly.
pub async fn run(
    cfg: AuditConfig,
    registry: Addr<RegistryActor>,
    store: Store,
    metrics: AuditMetrics,
) {
    loop {
        if !registry.send(Decides).await.unwrap_or(false) {
            tokio::time::sleep(NOT_DECIDING).await;
            continue;
        }
        let pruned = once(&cfg, &store).await;
        metrics.pruned.inc_by(pruned as u64);
        tracing::info!(
            rows = pruned,
            "audit retention sweep: rows past their retention deleted"
        );
        tokio::time::sleep(EVERY).await;
    }
}

/// One sweep now: how many rows went.
pub async fn once(cfg: &AuditConfig, store: &Store) -> usize {
    let sink = cfg.sink_url.is_some();
    let mut total = 0;
    for (which, before) in super::retention::sweeps(cfg, crate::db::unix_now()) {
        loop {
            let which = which.clone();
            let went = store
                .call(move |s| {
                    // Rows the sink has not delivered stay (none delivered yet: all stay).
                    let keep_after = if sink {
                        Some(s.audit_sink_cursor()?.unwrap_or(0))
                    } else {
                        None
                    };
                    s.audit_prune(&which, before, keep_after, BATCH)
                })
                .await;
            match went {
                Ok(n) => {
                    total += n;
                    if n < BATCH as usize {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(%e, "the audit retention sweep stopped: the store failed");
                    return total;
                }
            }
        }
    }
    total
}
