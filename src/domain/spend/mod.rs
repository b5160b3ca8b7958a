//! The spend ledger's vocabulary and rules, apart from storage (docs/design.md, *Spend*): the
//! admission rule ([`rule`]) the store runs inside its transaction, and the windows a budget
//! counts over ([`window`]). Pure.

pub mod rule;
pub mod window;

/// The `spend.soft_limit` event's payload: a spawn's reservation took `budget` across its
/// soft limit. Published by the spawn (`fleet/spawn`), read typed by the alerts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SoftLimitEvent {
    /// `key:<id>` or `tenant:<name>`.
    pub budget: String,
    pub spawn_id: String,
}
