//! One gateway link: the pure decision machine ([`machine`]) that the actor shell
//! (`crate::gateway`) drives.

pub mod http;
pub mod machine;
pub mod pending;
pub mod target;

#[cfg(test)]
mod machine_tests;

pub use machine::{Action, LinkMachine, LinkPhase, MachineSettings, Note};
