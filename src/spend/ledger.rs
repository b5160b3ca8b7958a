//! The spend ledger as the fleet uses it: admit a spawn (reserve), settle it when its run ends,
//! release it when the run never started. Each a store call (`db/spend.rs`); the decisions are
//! the store's transaction and the pure [`super::rule`].

use crate::db::spend::{Admission, SpendAsk, SpendRefusal};
use crate::db::{DbError, Store, unix_now};

use crate::domain::spend::rule::Micros;

/// Why a spawn is not admitted.
#[derive(Debug, thiserror::Error)]
pub enum SpendError {
    /// A budget of the key or the tenant refuses it.
    #[error("spend budget `{}` refuses this run: {}", .0.subject, .0.breach.as_str())]
    OverBudget(SpendRefusal),
    /// The ledger could not be read or written; a budget fails closed.
    #[error("the spend ledger is unavailable: {0}")]
    Unavailable(#[source] DbError),
}

/// The fleet's door to the ledger.
#[derive(Clone)]
pub struct Ledger {
    store: Store,
}

impl Ledger {
    pub fn new(store: Store) -> Ledger {
        Ledger { store }
    }

    /// Reserves the run's estimate against its key's and tenant's budgets; the soft limits it
    /// crossed, or the refusal.
    pub async fn admit(&self, ask: SpendAsk) -> Result<Vec<String>, SpendError> {
        match self
            .store
            .call(move |store| store.reserve_spend(&ask))
            .await
            .map_err(SpendError::Unavailable)?
        {
            Admission::Admitted { soft_crossed, .. } => Ok(soft_crossed),
            Admission::Refused(r) => Err(SpendError::OverBudget(r)),
        }
    }

    /// Settles the run of `spawn_id` at `cost` (the gateway's number; `None`: its estimate). A
    /// failure is logged: the reservation then stays held until the run is settled again, on
    /// the side of the budget.
    pub async fn settle(&self, spawn_id: String, cost: Option<Micros>) {
        let id = spawn_id.clone();
        if let Err(e) = self
            .store
            .call(move |store| store.settle_spend(&id, cost, unix_now()))
            .await
        {
            tracing::warn!(%e, spawn_id, "could not settle a spawn's spend");
        }
    }

    /// Gives the reservation of `spawn_id` back: its run never started.
    pub async fn release(&self, spawn_id: String) {
        let id = spawn_id.clone();
        if let Err(e) = self
            .store
            .call(move |store| store.release_spend(&id, unix_now()))
            .await
        {
            tracing::warn!(%e, spawn_id, "could not release a spawn's reservation");
        }
    }
}
