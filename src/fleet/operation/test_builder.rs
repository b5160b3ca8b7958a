//! The one builder every kind's rule tests start from — the drain's, the rolling restart's,
//! the update hold's, the upgrade's (a managed swap's too) and the config rollout's: a clock,
//! an operation's parameters, a gateway as this instance sees it, a gateway's progress at a
//! step. Each test file narrows these with struct update (`..params()`), so a field added to
//! the parameters or the facts is given its default here, once.

use super::model::{
    DrainParams, DrainTimeoutPolicy, GatewayProgress, KindParams, OperationParams, Step,
};
use super::rule::Facts;
use gateway_supervisor_actors::model::GatewayId;

/// The tests' clock.
pub const NOW: i64 = 1_000_000;

/// One gateway at a time, `wait_ready` 60 s, stopping at the first failure, no canary; a
/// drain's own: 300 s that release at the timeout (another kind's replace `of`).
pub fn params() -> OperationParams {
    OperationParams {
        max_unavailable: 1,
        wait_ready_s: 60,
        abort_on_failure: true,
        canary: 0,
        of: KindParams::Drain(drain()),
    }
}

/// A drain's own parameters: 300 s, released at the timeout, no force.
pub fn drain() -> DrainParams {
    DrainParams {
        drain_timeout_s: 300,
        force_after_drain: false,
        on_drain_timeout: DrainTimeoutPolicy::Release,
    }
}

/// A 2026.9.6 gateway linked here, healthy, as process `boot`, offering every method.
pub fn here(boot: &str) -> Facts {
    Facts {
        exists: true,
        elsewhere: false,
        connected: true,
        boot_id: Some(boot.into()),
        version: Some("2026.9.6".into()),
        offers_hold: true,
        offers_update: true,
        offers_config: true,
        managed: false,
    }
}

/// Gateway 1 at `step`, its process noted as `boot-a`.
pub fn at(step: Step) -> GatewayProgress {
    GatewayProgress {
        step,
        boot_id_before: Some("boot-a".into()),
        ..GatewayProgress::pending(GatewayId(1))
    }
}
