//! Managed gateways: OpenClaw gateways this daemon runs on its own host (docs/design.md,
//! *Managed gateways*).

pub mod command;
pub mod engines;
pub mod handoff;
pub mod install;
pub mod keeper;
pub mod openclaw;
pub mod policy;
pub mod process;
