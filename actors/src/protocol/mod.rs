//! The OpenClaw gateway protocol (v3/v4) as the real gateway 2026.9.6 speaks it: frames, the
//! handshake's connect parameters, device identity and signatures, error classification, and
//! readers of what gateways report (counts, sessions, release versions). No I/O here; the
//! link drives it.

pub mod approval_text;
pub mod approvals;
pub mod counts;
pub mod device;
pub mod errors;
pub mod failure_code;
pub mod frames;
pub mod sessions;
pub mod suspend;
pub mod version;

/// The protocol window the supervisor offers (the gateway needs 4 for operators).
pub const MIN_PROTOCOL: u32 = 3;
pub const MAX_PROTOCOL: u32 = 4;

/// `client.id` must be one of the gateway's closed enum; `gateway-client`/`backend` keeps its
/// scopes even without a device and is what a server-side supervisor is.
pub const CLIENT_ID: &str = "gateway-client";
pub const CLIENT_MODE: &str = "backend";
pub const CLIENT_DISPLAY_NAME: &str = "gateway-supervisor";
pub const CLIENT_PLATFORM: &str = "linux";
pub const ROLE: &str = "operator";

/// The scopes the supervisor asks for: read (health, sessions, agents), write (runs, abort),
/// admin (suspend/restart, config), approvals and pairing.
/// The `connect` capability that makes a client an approval client (2026.9.6: approval events
/// reach it, and the gateway waits for an approval client's answer).
pub const APPROVALS_CAP: &str = "approvals";

pub const SCOPES: [&str; 5] = [
    "operator.read",
    "operator.write",
    "operator.admin",
    "operator.approvals",
    "operator.pairing",
];

#[cfg(test)]
pub(crate) mod captures;
#[cfg(test)]
mod fuzz_tests;
