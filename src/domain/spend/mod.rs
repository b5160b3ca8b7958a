//! The spend ledger's vocabulary and rules, apart from storage (docs/design.md, *Spend*): the
//! admission rule ([`rule`]) the store runs inside its transaction, and the windows a budget
//! counts over ([`window`]). Pure.

pub mod rule;
pub mod window;
