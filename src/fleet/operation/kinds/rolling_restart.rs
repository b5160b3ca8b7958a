//! A rolling restart: for each gateway in turn, drain it, release the drain's suspension (a
//! 2026.9 gateway refuses a plain restart while suspended; idle, its restart does not wait),
//! ask the process noted at the start to restart (fenced: once that process is gone, nothing
//! is sent), wait until another process is back and healthy, uncordon. The drain and the
//! check back are shared steps (`kinds/mod.rs`).

use serde_json::json;

use super::{Kind, Steps};
use crate::fleet::FleetError;
use crate::fleet::budget::DisruptionKind;
use crate::fleet::operation::drain::{AfterDrain, draining};
use crate::fleet::operation::engine::Stepped;
use crate::fleet::operation::model::{GatewayProgress, OperationKind, OperationParams, Step};
use crate::fleet::operation::rule::{self, Facts, Next, fail};
use crate::fleet::operation::secs;
use gateway_supervisor_actors::messages::CallError;
use gateway_supervisor_actors::unix_now_ms;

pub struct RollingRestart;

impl Kind for RollingRestart {
    const KIND: OperationKind = OperationKind::RollingRestart;
    fn decide(p: &GatewayProgress, f: &Facts, params: &OperationParams, now_ms: i64) -> Next {
        decide(p, f, params, now_ms)
    }

    const DISRUPTION: DisruptionKind = DisruptionKind::Restart;
    const AFTER_DRAIN: AfterDrain = AfterDrain::Restart;

    fn carry<'a>(s: Steps<'a>, p: GatewayProgress, f: Facts, next: Next) -> Stepped<'a> {
        Box::pin(async move {
            match next {
                Next::Restart {
                    boot_id,
                    release,
                    forced,
                } => restart(&s, p, &boot_id, release, forced).await,
                other => s.shared(p, f, other).await,
            }
        })
    }
}

/// Releases the drain's suspension (if it holds one), then asks process `boot_id` to restart
/// (past the gateway's active-work deferral when `forced`).
async fn restart(
    s: &Steps<'_>,
    mut p: GatewayProgress,
    boot_id: &str,
    release: Option<String>,
    forced: bool,
) -> Result<GatewayProgress, FleetError> {
    let (id, op) = (p.gateway_id, s.op);
    if let Some(sid) = release
        && let Err(why) = s.hands.release(id, &sid).await
    {
        p.release_failed(&why);
        return Ok(p);
    }
    let reason = format!("rolling restart {} by {}", op.id, op.created_by);
    let mut params = json!({"reason": reason});
    if forced {
        params["skipDeferral"] = json!(true);
    }
    let asked = s
        .hands
        .call_fenced(id, "gateway.restart.request", params, boot_id)
        .await;
    match asked {
        Ok(answer) => p.after_restart(Ok(&answer), unix_now_ms()),
        Err(FleetError::Call {
            source: CallError::AnotherProcess { .. },
            ..
        }) => p.after_restart(Err(None), unix_now_ms()),
        Err(e) => p.after_restart(Err(Some(e.to_string())), unix_now_ms()),
    }
    if matches!(p.step, Step::Returning { .. }) {
        let details = json!({"operation": op.id, "boot_id": boot_id, "forced": forced});
        s.hands.audited(s.by, "gateway.restart", id, details).await;
    }
    Ok(p)
}

/// What to do next for gateway `p` of a rolling restart, past the shared opening.
fn decide(p: &GatewayProgress, f: &Facts, params: &OperationParams, now_ms: i64) -> Next {
    match &p.step {
        Step::Admitted => rule::admitted(f).unwrap_or_else(|| match &f.boot_id {
            None => rule::unverifiable("a restart", f),
            Some(_) => Next::Admit {
                boot_id: f.boot_id.clone(),
            },
        }),
        Step::Draining { .. } => draining(p, f, params, now_ms),
        Step::Restarting {
            suspension_id,
            since_ms,
            ..
        } if now_ms > since_ms.saturating_add(secs(params.wait_ready_s)) => fail(
            &format!(
                "the restart was not accepted within {}s: {}",
                params.wait_ready_s,
                p.detail.as_deref().unwrap_or("no answer")
            ),
            suspension_id.clone().filter(|_| !f.elsewhere),
        ),
        Step::Restarting { .. } if f.elsewhere || !f.connected => Next::Wait,
        Step::Restarting { .. } if rule::another(p, f) => {
            Next::Advance(Step::Returning { since_ms: now_ms })
        }
        Step::Restarting {
            suspension_id,
            forced,
            ..
        } => match &p.boot_id_before {
            Some(boot_id) => Next::Restart {
                boot_id: boot_id.clone(),
                release: suspension_id.clone(),
                forced: *forced,
            },
            None => fail("no process was noted to restart", None),
        },
        Step::Returning { .. } => rule::returning(p, f, params, now_ms),
        _ => Next::Wait,
    }
}
