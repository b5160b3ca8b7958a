//! A drain: cordon the gateway, suspend it with `drain` and watch its blockers until it is
//! idle; it is left suspended (on record, to be resumed) and cordoned. Every step is a shared
//! one (`kinds/mod.rs`); the answers' meaning is in `operation/drain.rs`.

use super::{Kind, Steps};
use crate::fleet::budget::DisruptionKind;
use crate::fleet::operation::drain::draining;
use crate::fleet::operation::engine::Stepped;
use crate::fleet::operation::model::{GatewayProgress, OperationKind, OperationParams, Step};
use crate::fleet::operation::rule::{self, Facts, Next};

pub struct Drain;

impl Kind for Drain {
    const KIND: OperationKind = OperationKind::Drain;
    fn decide(p: &GatewayProgress, f: &Facts, params: &OperationParams, now_ms: i64) -> Next {
        decide(p, f, params, now_ms)
    }

    const DISRUPTION: DisruptionKind = DisruptionKind::Drain;

    fn carry<'a>(s: Steps<'a>, p: GatewayProgress, f: Facts, next: Next) -> Stepped<'a> {
        Box::pin(async move { s.shared(p, f, next).await })
    }
}

/// What to do next for gateway `p` of a drain, past the shared opening.
fn decide(p: &GatewayProgress, f: &Facts, params: &OperationParams, now_ms: i64) -> Next {
    match &p.step {
        Step::Admitted => rule::admitted(f).unwrap_or_else(|| Next::Admit {
            boot_id: f.boot_id.clone(),
        }),
        Step::Draining { .. } => draining(p, f, params, now_ms),
        _ => Next::Wait,
    }
}
