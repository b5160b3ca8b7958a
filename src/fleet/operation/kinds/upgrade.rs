//! A canary-first upgrade. An observer-mode gateway is asked to update itself: its process
//! noted and cordoned, `update.run` asked of that process (unless `update.status` shows a run
//! active already, or another release than the canaries proved), its run record followed
//! until it is over, the new process checked back. A managed gateway of this host has its
//! release swapped by this daemon instead (`managed/swap.rs`), read each round until it is
//! over. The rest go only once every canary is done and has stayed up through its bake. The
//! answers' meaning is in `operation/upgrade.rs` and `operation/swap.rs`.

use serde_json::{Value, json};

use super::{Kind, Steps};
use crate::fleet::FleetError;
use crate::fleet::budget::DisruptionKind;
use crate::fleet::operation::engine::Stepped;
use crate::fleet::operation::model::{GatewayProgress, OperationKind, OperationParams, Step};
use crate::fleet::operation::rule::{self, Facts, Next, fail, overdue};
use crate::fleet::operation::secs;
use crate::fleet::operation::upgrade::{Before, before, proven};
use crate::fleet::processes::{SwapOrder, SwapReport};
use gateway_supervisor_actors::bounded;
use gateway_supervisor_actors::unix_now_ms;

pub struct Upgrade;

impl Kind for Upgrade {
    const KIND: OperationKind = OperationKind::Upgrade;
    fn decide(p: &GatewayProgress, f: &Facts, params: &OperationParams, now_ms: i64) -> Next {
        decide(p, f, params, now_ms)
    }

    const DISRUPTION: DisruptionKind = DisruptionKind::Upgrade;

    fn carry<'a>(s: Steps<'a>, p: GatewayProgress, f: Facts, next: Next) -> Stepped<'a> {
        Box::pin(async move { carry(&s, p, f, next).await })
    }
}

async fn carry(
    s: &Steps<'_>,
    mut p: GatewayProgress,
    f: Facts,
    next: Next,
) -> Result<GatewayProgress, FleetError> {
    let (id, by) = (p.gateway_id, s.by);
    let now = unix_now_ms();
    match next {
        Next::AdmitUpdate { boot_id } => {
            if s.admit(&mut p).await? {
                p.admitted_for_update(boot_id, f.version.clone(), now);
            }
        }
        Next::AdmitSwap { boot_id } => {
            if s.admit(&mut p).await? {
                let target = s.op.params.upgrade().and_then(|u| u.release.as_ref());
                let target = target.map_or("", |r| r.version.as_str());
                p.admitted_for_swap(boot_id, f.version.clone(), target, now);
            }
        }
        Next::Swap => swap(s, &mut p).await?,
        Next::RequestUpdate { boot_id } => request_update(s, &mut p, &boot_id).await,
        Next::FollowRun { run_id, another } => {
            let read = s
                .hands
                .call(id, "update.runs.get", json!({"runId": run_id}))
                .await;
            p.after_run_record(
                read.as_ref().map_err(ToString::to_string),
                another,
                unix_now_ms(),
            );
            // Already current: nothing changed, back in service.
            if p.step == Step::Done {
                s.hands.cordon(id, false, by).await?;
            }
        }
        Next::CheckBack => {
            let returning = !matches!(p.step, Step::Baking { .. });
            if s.check_back(&mut p, f).await? && returning {
                let details = json!({"operation_id": s.op.id, "from": p.version_before,
                    "to": p.version_after, "boot_id": p.boot_id_after, "detail": p.detail});
                s.hands.audited(by, "gateway.upgrade", id, details).await;
            }
        }
        other => return s.shared(p, f, other).await,
    }
    Ok(p)
}

/// An admitted gateway of this instance, connected: swapped here when this host runs it,
/// else asked to update itself where its release can.
fn admitted(f: &Facts, params: &OperationParams) -> Next {
    if f.managed {
        return match (
            params.upgrade().and_then(|u| u.release.as_ref()),
            &f.boot_id,
        ) {
            (None, _) => fail(
                "a managed gateway is upgraded to a named release: give `version`",
                None,
            ),
            (Some(_), None) => rule::unverifiable("a swap", f),
            (Some(_), Some(boot_id)) => Next::AdmitSwap {
                boot_id: Some(boot_id.clone()),
            },
        };
    }
    if !f.offers_update {
        return Next::Skip {
            reason: format!(
                "OpenClaw {} does not offer update.run (2026.9 and later do): upgrade it by hand",
                f.version.as_deref().unwrap_or("unknown")
            ),
        };
    }
    match &f.boot_id {
        None => rule::unverifiable("a restart", f),
        Some(_) => Next::AdmitUpdate {
            boot_id: f.boot_id.clone(),
        },
    }
}

/// A canary baking: it must stay the same process and healthy until `until_ms`.
fn baking(p: &GatewayProgress, f: &Facts, until_ms: i64, now_ms: i64) -> Next {
    if f.elsewhere {
        Next::Wait
    } else if !f.connected || f.boot_id != p.boot_id_after {
        fail(
            &format!(
                "the canary did not stay up through its bake: {}",
                if f.connected {
                    "it restarted (another process answers)"
                } else {
                    "it is not connected"
                }
            ),
            None,
        )
    } else if now_ms >= until_ms {
        Next::CheckBack
    } else {
        Next::Wait
    }
}

/// Asks this daemon's process runner to swap the managed gateway's release (begun at the
/// first ask) and reads where the swap is; put back, left as it was, or done, it is back in
/// service as before the upgrade.
async fn swap(s: &Steps<'_>, p: &mut GatewayProgress) -> Result<(), FleetError> {
    let (id, op) = (p.gateway_id, s.op);
    let release = op.params.upgrade().and_then(|u| u.release.as_ref());
    let report = match (s.hands.processes(), release) {
        (Some(processes), Some(release)) => processes.swap(
            id,
            &SwapOrder {
                operation: op.id.to_string(),
                version: release.version.clone(),
                source: release.source.clone(),
                min_healthy: std::time::Duration::from_secs(release.min_healthy_s),
                healthy_deadline: std::time::Duration::from_secs(op.params.wait_ready_s),
            },
        ),
        _ => SwapReport::Refused("this daemon runs no managed gateways".into()),
    };
    let untouched = matches!(report, SwapReport::Refused(_));
    p.after_swap(report, unix_now_ms());
    if p.rolled_back || untouched || p.step == Step::Done {
        s.hands.cordon(id, false, s.by).await?;
    }
    Ok(())
}

/// Asks the noted process to update itself — unless its `update.status` shows a run active
/// already (followed instead: the gateway refuses a second, and a round whose record was lost
/// may have started it) or another release than the canaries proved.
async fn request_update(s: &Steps<'_>, p: &mut GatewayProgress, boot_id: &str) {
    let (id, op) = (p.gateway_id, s.op);
    let status = s
        .hands
        .call_fenced(id, "update.status", json!({}), boot_id)
        .await;
    let status = match status {
        Ok(status) => status,
        Err(e) => return p.after_update_run(Err(format!("update.status: {e}")), unix_now_ms()),
    };
    match before(&status, proven(&op.progress)) {
        Before::Follow { run_id } => return p.follow(run_id),
        Before::Refuse { reason } => return p.fail(&reason, unix_now_ms()),
        Before::Ask => {}
    }
    let note = format!("upgrade {} by {}", op.id, op.created_by);
    let asked = s
        .hands
        .call_fenced(id, "update.run", json!({"note": note}), boot_id)
        .await;
    p.after_update_run(asked.as_ref().map_err(ToString::to_string), unix_now_ms());
    if let Ok(answer) = &asked {
        let run_id = answer.get("runId").and_then(Value::as_str);
        let details = json!({"operation_id": op.id, "boot_id": boot_id,
            "run_id": run_id.map(|r| bounded::text(r, 80)), "detail": p.detail});
        s.hands
            .audited(s.by, "gateway.update_run", id, details)
            .await;
    }
}

/// What to do next for gateway `p` of an upgrade, past the shared opening.
fn decide(p: &GatewayProgress, f: &Facts, params: &OperationParams, now_ms: i64) -> Next {
    let late = |since_ms: i64| now_ms > since_ms.saturating_add(secs(params.wait_ready_s));
    match &p.step {
        Step::Admitted => rule::admitted(f).unwrap_or_else(|| admitted(f, params)),
        Step::Updating { since_ms, .. } if late(*since_ms) => overdue(
            "the update was not over",
            params.wait_ready_s,
            p,
            "no answer",
        ),
        Step::Updating { .. } if f.elsewhere || !f.connected => Next::Wait,
        Step::Updating { run_id: None, .. } if rule::another(p, f) => fail(
            "the gateway restarted before the update was asked (another process answers)",
            None,
        ),
        Step::Updating { run_id: None, .. } => match &p.boot_id_before {
            Some(boot_id) => Next::RequestUpdate {
                boot_id: boot_id.clone(),
            },
            None => fail("no process was noted to update", None),
        },
        Step::Updating {
            run_id: Some(run_id),
            ..
        } => Next::FollowRun {
            run_id: run_id.clone(),
            another: rule::another(p, f),
        },
        Step::Swapping { since_ms } if late(*since_ms) => {
            overdue("the swap was not over", params.wait_ready_s, p, "no answer")
        }
        Step::Swapping { .. } if f.elsewhere => Next::Wait,
        Step::Swapping { .. } if !f.managed => fail(
            "no longer a managed gateway of this daemon's host: the swap cannot be followed",
            None,
        ),
        Step::Swapping { .. } => Next::Swap,
        Step::Returning { .. } => rule::returning(p, f, params, now_ms),
        Step::Baking { until_ms } => baking(p, f, *until_ms, now_ms),
        _ => Next::Wait,
    }
}
