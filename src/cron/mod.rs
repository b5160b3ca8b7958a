//! Cron across the fleet (docs/design.md, *Cron*): every linked gateway's jobs kept in the
//! store ([`inventory`]: read at link, on the gateway's `cron` event and by a sweep spread over
//! the fleet), and the watchdog that judges each expected fire ([`watchdog`]). The rules they
//! carry out are pure and beside them: the daemon's own reading of a schedule ([`schedule`]),
//! what tells a missed fire from a run and from a gateway that was down ([`missed`]), a job as
//! the inventory keeps it ([`job`]), copies of one job ([`duplicates`]), when each gateway is
//! swept ([`sweep`]), a declared job checked, its drift and its single gateway
//! ([`declaration`]), written by its rollout on the fleet engine and kept by the keeper
//! ([`declared`]). Every write to a gateway is paced by the engine's `Hands`. What a real
//! 2026.9.6 gateway answers is in `testdata/openclaw-captures/2026.9.6/cron_rpc.json`.

pub mod cleanup;
pub mod declaration;
pub mod declared;
pub mod duplicates;
pub mod inventory;
pub mod job;
pub mod metrics;
pub mod missed;
pub mod runs;
pub mod schedule;
pub mod sweep;
pub mod watchdog;

use std::collections::HashMap;
use std::sync::Mutex;

use crate::config::CronConfig;
use crate::db::{DbError, Store};
use crate::fleet::FleetError;
use crate::fleet::operation::{Hands, Operations};
use gateway_supervisor_actors::events::EventBus;
use gateway_supervisor_actors::labels::Selector;
use gateway_supervisor_actors::model::GatewayId;

/// How long a write waits for its turn under the gateway's write limit (30 a minute, 2 s
/// apart) before it is refused as busy: a removal of ten extra copies takes 20 s.
pub const WRITE_WAIT: std::time::Duration = std::time::Duration::from_secs(25);

/// Why a gateway's cron could not be read or acted on.
#[derive(Debug, thiserror::Error)]
pub enum CronError {
    #[error(transparent)]
    Fleet(#[from] FleetError),
    #[error("storage: {0}")]
    Storage(#[from] DbError),
}

impl CronError {
    /// As the fleet's errors, which the API answers (and forwards when another instance links
    /// the gateway).
    pub fn into_fleet(self) -> FleetError {
        match self {
            CronError::Fleet(e) => e,
            CronError::Storage(e) => FleetError::Storage(e),
        }
    }
}

/// What the watchdog knows of one gateway linked here.
#[derive(Clone)]
struct Linked {
    /// The gateway as the shared view showed it at the last tick (its labels, the process its
    /// link reaches). The view replaces a gateway's target when anything of it changes, so the
    /// same pointer at the next tick means nothing changed and nothing is copied.
    target: std::sync::Arc<gateway_supervisor_actors::messages::GatewayTarget>,
    /// It advertises `cron.list` (asked once per target, not every tick).
    offers_cron: bool,
    /// Since when (Unix ms) this instance has seen it linked without a break: a slot before
    /// that may have passed while the gateway was down.
    since_ms: i64,
    /// The tick that last saw it linked (those not seen at a tick are forgotten).
    seen: u64,
}

impl Linked {
    fn labels(&self) -> &gateway_supervisor_actors::labels::Labels {
        &self.target.candidate.labels
    }
}

/// The fleet's cron inventory and watchdog.
pub struct Cron {
    store: Store,
    hands: Hands,
    /// Where declarations' rollouts start.
    operations: Operations,
    events: EventBus,
    cfg: CronConfig,
    metrics: metrics::CronMetrics,
    recover_on: Option<Selector>,
    /// The `snapshotRevision` of each gateway's list as last stored (a sweep that finds it
    /// unchanged writes nothing).
    revisions: Mutex<HashMap<GatewayId, String>>,
    linked: Mutex<HashMap<GatewayId, Linked>>,
    /// Whether each gateway's scheduler is on (`cron.status`), asked once per link: a gateway
    /// started with `cron.enabled: false` fires nothing on its own, by its operator's choice,
    /// and the watchdog calls none of its slots missed.
    schedulers: Mutex<HashMap<GatewayId, bool>>,
    /// The jobs the watchdog looks at, per gateway linked here.
    watched: Mutex<HashMap<GatewayId, Vec<watchdog::Watched>>>,
}

impl Cron {
    pub fn new(
        store: Store,
        operations: Operations,
        events: EventBus,
        cfg: CronConfig,
        metrics: metrics::CronMetrics,
    ) -> Self {
        Cron {
            recover_on: cfg.recover_selector(),
            store,
            hands: operations.hands(),
            operations,
            events,
            cfg,
            metrics,
            revisions: Mutex::default(),
            linked: Mutex::default(),
            watched: Mutex::default(),
            schedulers: Mutex::default(),
        }
    }

    /// Runs a storage call on a blocking thread.
    async fn stored<T, F>(&self, call: F) -> Result<T, CronError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, DbError> + Send + 'static,
    {
        Ok(self.store.call(call).await?)
    }
}

/// The captured answers of a real 2026.9.6 gateway (`tests/openclaw_e2e/cron.rs` wrote them).
#[cfg(test)]
pub(crate) fn capture() -> serde_json::Value {
    serde_json::from_str(include_str!(
        "../../testdata/openclaw-captures/2026.9.6/cron_rpc.json"
    ))
    .expect("the capture is JSON")
}
