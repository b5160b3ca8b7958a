//! Actors of gateway-supervisor: the registry actor (and, with the gateway link, one actor per
//! gateway). This crate holds no HTTP and no SQL: storage is reached through [`store::GatewayStore`],
//! which the daemon implements, and HTTP handlers reach the actors only through [`messages`].

pub mod backoff;
pub mod breaker;
pub mod messages;
pub mod model;
pub mod primary;
pub mod protocol;
pub mod registry;
pub mod status;
pub mod store;

pub use registry::RegistryActor;
