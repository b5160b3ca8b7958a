//! An update hold: every gateway's pending automatic update held (`update.hold`), all at once;
//! a release without the method is skipped, saying so.

use serde_json::json;

use super::{Kind, Steps};
use crate::fleet::budget::DisruptionKind;
use crate::fleet::operation::engine::Stepped;
use crate::fleet::operation::model::{GatewayProgress, OperationKind, OperationParams, Step};
use crate::fleet::operation::rule::{self, Facts, Next};
use gateway_supervisor_actors::unix_now_ms;

pub struct UpdateHold;

impl Kind for UpdateHold {
    const KIND: OperationKind = OperationKind::UpdateHold;
    /// Never spent: a hold takes no gateway out of service.
    const DISRUPTION: DisruptionKind = DisruptionKind::Restart;

    fn decide(p: &GatewayProgress, f: &Facts, params: &OperationParams, now_ms: i64) -> Next {
        decide(p, f, params, now_ms)
    }

    fn carry<'a>(s: Steps<'a>, mut p: GatewayProgress, f: Facts, next: Next) -> Stepped<'a> {
        Box::pin(async move {
            let Next::Hold = next else {
                return s.shared(p, f, next).await;
            };
            let id = p.gateway_id;
            let held = s.hands.call(id, "update.hold", json!({})).await;
            p.after_hold(held.as_ref().map_err(ToString::to_string), unix_now_ms());
            if p.step == Step::Done {
                let details = json!({"operation_id": s.op.id, "detail": p.detail});
                s.hands
                    .audited(s.by, "gateway.update_hold", id, details)
                    .await;
            }
            Ok(p)
        })
    }
}

/// What to do next for gateway `p` of an update hold, past the shared opening.
fn decide(p: &GatewayProgress, f: &Facts, _params: &OperationParams, _now_ms: i64) -> Next {
    match &p.step {
        Step::Admitted => rule::admitted(f).unwrap_or_else(|| {
            if f.offers_hold {
                Next::Hold
            } else {
                Next::Skip {
                    reason: format!(
                        "OpenClaw {} does not offer update.hold (2026.8 and later do)",
                        f.version.as_deref().unwrap_or("unknown")
                    ),
                }
            }
        }),
        _ => Next::Wait,
    }
}
