//! The gateway processes this daemon runs itself (managed gateways, docs/design.md, *Managed
//! gateways*), as the fleet's operations see them: whether a gateway's process is this
//! daemon's, and its release swapped for an upgrade. The `managed` module implements it and
//! hands it to the fleet at start; the fleet never sees how a process is run.

use std::time::Duration;

use gateway_supervisor_actors::model::GatewayId;

/// What an upgrade asks of a managed gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapOrder {
    /// The operation asking: a swap is begun once per operation, and asking again (a round
    /// repeated, a record lost to a race) reads the same swap.
    pub operation: String,
    pub version: String,
    /// `npm`, or the absolute path of a package tarball.
    pub source: String,
    /// How long the target must keep running once started.
    pub min_healthy: Duration,
    /// From the target's start: healthy for `min_healthy` by then, or put back.
    pub healthy_deadline: Duration,
}

/// Where a swap is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwapReport {
    /// Under way: the step, in words.
    Working(String),
    /// The target runs and stayed up for `min_healthy`.
    Done,
    /// It runs that release already: nothing to swap.
    Current,
    /// The target failed; the previous release runs again on the state as it was: why.
    RolledBack(String),
    /// Over without a change: nothing was stopped, and the gateway is as it was (the target
    /// refused to preflight its state, it was not running to begin with, …): why. It goes back
    /// in service as it was.
    Refused(String),
    /// A rollback that could not finish: the gateway may be down. Why.
    Failed(String),
}

pub trait Processes: Send + Sync {
    /// This daemon runs gateway `id`'s process (a managed gateway of this host).
    fn runs(&self, id: GatewayId) -> bool;
    /// Swaps gateway `id` to `order`'s release (begun at the first ask), and where it is.
    fn swap(&self, id: GatewayId, order: &SwapOrder) -> SwapReport;
}
