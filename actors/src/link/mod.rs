//! One gateway link: the pure decision machine ([`machine`]) that the actor shell
//! (`crate::gateway`) drives.

pub mod machine;

#[cfg(test)]
mod machine_tests;

pub use machine::{Action, LinkMachine, LinkPhase, MachineSettings, Note};
