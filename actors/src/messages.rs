//! Every actor message in one import: the registry's (`registry/messages.rs`) and the link's
//! (`link/messages.rs`), each defined beside the actor that handles it.

pub use crate::link::handle::GatewayLink;
pub use crate::link::messages::{
    Call, CallError, DeviceTokenChanged, HealthSample, LinkState, LinkUpdate, LiveStats, ProbeNow,
    ProbeResult, SessionsSnapshot, StopLink,
};
pub use crate::registry::messages::*;
