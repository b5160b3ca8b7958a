//! Managed gateways: OpenClaw gateways this daemon runs on its own host (docs/design.md,
//! *Managed gateways*).

pub mod engines;
pub mod handoff;
pub mod policy;
