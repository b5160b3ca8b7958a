//! Actors of gateway-supervisor: the registry actor (and, with the gateway link, one actor per
//! gateway). This crate holds no HTTP and no SQL: storage is reached through [`store::GatewayStore`],
//! which the daemon implements, and HTTP handlers reach the actors only through [`messages`].

pub mod backoff;
pub mod bounded;
pub mod breaker;
pub mod election;
pub mod events;
pub mod gateway_id;

pub mod handshake;
pub mod heartbeat;
pub mod intern;
pub mod labels;
pub mod link;
pub mod link_metrics;
pub mod messages;
pub mod model;

pub mod primary;
pub mod process;
pub mod protocol;
pub mod registry;
pub mod selection;
pub mod status;
pub mod store;
pub mod tls;
pub mod trace;

pub use registry::RegistryActor;

/// Unix time in milliseconds (0 if the clock is before 1970).
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
mod ws_io;
