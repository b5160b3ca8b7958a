//! Spend and run budgets per key and per tenant, and what each spawn cost (docs/design.md,
//! *Spend*). A spawn is admitted by reserving an estimate in the same transaction that checks
//! `spent + reserved + estimate ≤ max` (`db/spend.rs`, with the pure rule and windows of `domain/spend/`),
//! and settled when its run ends from the gateway's own number (`sessions.usage` of its
//! session: `totals.totalCost`), which OpenClaw itself calls an estimate from its price tables.
//! LiteLLM's lesson (PR #40002: a stock setup let 4 of 5 concurrent requests past a cap) is why
//! the check and the reservation are one serialized transaction, not a read then a write.

pub mod budget;
mod ledger;
pub mod report;

pub use ledger::{Ledger, SpendError};
