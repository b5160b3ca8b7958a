//! One gateway link: the pure decision machine ([`machine`]) and the actor shell
//! ([`actor`]) that drives it, with the shell's parts (requests in flight, plain HTTP, the
//! target). docs/design.md, *The link state machine*, tables the machine.

pub mod activity;
pub mod actor;
pub mod beats;
pub mod handle;
pub mod http;
pub mod machine;
pub mod messages;
pub mod pending;
pub mod pump;
pub mod runtime;
pub mod target;
pub mod verify;

#[cfg(test)]
mod machine_tests;
#[cfg(test)]
mod pump_tests;

pub use actor::{GatewayActor, Upward};
pub use machine::{Action, LinkMachine, LinkPhase, MachineSettings, Note};
pub use target::{LeaseGuard, LinkContext, LinkSettings, LinkTarget};
