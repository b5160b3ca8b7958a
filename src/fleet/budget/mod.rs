//! Disruption budgets: the pure rule ([`rule::admit`]). Stored budgets, the API and the checks
//! in each voluntary disruption come with rollouts.

pub mod rule;
