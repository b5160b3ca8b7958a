use std::time::Duration;

use super::*;
use crate::domain::ApprovalId;
use gateway_supervisor_actors::model::GatewayId;
use gateway_supervisor_actors::protocol::approvals::{ApprovalKind, Decision};

fn requested(id: &str) -> Requested {
    Requested {
        id: id.into(),
        kind: ApprovalKind::Exec,
        command: "printf smoke".into(),
        warning: None,
        whole: true,
        offered: None,
        severity: None,
        agent_id: Some("main".into()),
        session_key: None,
        run_id: None,
        host: Some("gateway".into()),
        created_at_ms: 1_000,
        expires_at_ms: 1_000 + 1_800_000,
    }
}

fn pending(id: &str, boot: &str) -> Approval {
    let r = requested(id);
    Approval {
        gateway_id: GatewayId(1),
        id: ApprovalId::from(r.id),
        kind: "exec".into(),
        status: ApprovalStatus::Pending,
        reason: None,
        decision: None,
        command: r.command,
        warning: None,
        severity: None,
        agent_id: r.agent_id,
        session_key: None,
        run_id: None,
        host: r.host,
        created_at_ms: r.created_at_ms,
        expires_at_ms: r.expires_at_ms,
        resolved_at_ms: None,
        resolved_by: None,
        resolver_key_id: None,
        resolver_label: None,
        escalated_at_ms: None,
        boot_id: Some(boot.into()),
        offered_decisions: Decision::ALL.to_vec(),
        presented_whole: true,
        gateway_reachable: None,
    }
}

fn outcome(status: &str, reason: &str, by: Option<&str>) -> Outcome {
    Outcome {
        id: "a".into(),
        status: status.into(),
        reason: Some(reason.into()),
        decision: (status == "denied").then_some(Decision::Deny),
        resolved_by: by.map(str::to_owned),
        resolved_at_ms: Some(5),
    }
}

#[test]
fn an_answer_by_another_client_reads_answered_elsewhere_naming_it() {
    let e = ending_of(&outcome("denied", "user", Some("cli")), 9, &[]).unwrap();
    assert_eq!(
        (e.status, e.by),
        (ApprovalStatus::Denied, ResolvedBy::Elsewhere)
    );
    assert_eq!(e.label.as_deref(), Some("cli"));
    assert_eq!(e.decision.as_deref(), Some("deny"));
    assert_eq!(e.at_ms, 5);
}

#[test]
fn an_answer_the_gateway_says_was_ours_reads_as_an_operator_s() {
    let e = ending_of(
        &outcome("denied", "user", Some("gateway-supervisor")),
        9,
        &[],
    )
    .unwrap();
    assert_eq!(e.by, ResolvedBy::Operator);
    let device = "068349e0305c8ebabf".to_owned();
    let e = ending_of(
        &outcome("denied", "user", Some(&device)),
        9,
        std::slice::from_ref(&device),
    )
    .unwrap();
    assert_eq!(e.by, ResolvedBy::Operator, "named by its device id");
}

#[test]
fn timeouts_restarts_and_missing_routes_are_the_gateway_s_own_ends() {
    let by = |s, r| ending_of(&outcome(s, r, None), 9, &[]).unwrap().by;
    assert_eq!(by("expired", "timeout"), ResolvedBy::Expired);
    assert_eq!(by("cancelled", "gateway-restart"), ResolvedBy::Gateway);
    assert_eq!(by("cancelled", "run-aborted"), ResolvedBy::Gateway);
    assert_eq!(by("denied", "no-route"), ResolvedBy::Gateway);
    assert_eq!(ending_of(&outcome("pending", "", None), 9, &[]), None);
    assert_eq!(ending_of(&outcome("exploded", "", None), 9, &[]), None);
}

#[test]
fn a_reconnect_records_the_new_asks_after_the_old_and_cancels_those_of_a_restarted_process() {
    let stored = [pending("kept", "boot-1"), pending("gone", "boot-1")];
    let listed = [requested("kept"), requested("new")];
    let same = reconcile(&stored, &listed, Some("boot-1"));
    assert_eq!(same.record, vec![requested("new")]);
    assert_eq!(same.ask, vec![ApprovalId::from("gone")]);
    assert!(same.restarted.is_empty());
    let after_restart = reconcile(&stored, &[], Some("boot-2"));
    assert_eq!(
        after_restart.restarted,
        vec![ApprovalId::from("kept"), ApprovalId::from("gone")]
    );
    assert!(after_restart.ask.is_empty());
    // A release that reports no boot id: asked, never assumed restarted.
    let unknown = reconcile(&stored, &[], None);
    assert_eq!(unknown.ask.len(), 2);
}

#[test]
fn an_unanswered_approval_is_escalated_once_then_denied_by_the_daemon() {
    let cfg = ApprovalsConfig::default();
    let mut a = pending("a", "b");
    let at = |s: u64| a.created_at_ms + Duration::from_secs(s).as_millis() as i64;
    assert_eq!(due(&a, &cfg, at(119)), None);
    assert_eq!(due(&a, &cfg, at(120)), Some(Due::Escalate));
    a.escalated_at_ms = Some(at(120));
    assert_eq!(due(&a, &cfg, at(300)), None, "escalated once");
    assert_eq!(
        due(&a, &cfg, at(600)),
        Some(Due::AutoDeny {
            reason: "no operator answered within 10m".into()
        })
    );
    let mut never = cfg.clone();
    never.auto_deny_after = Duration::ZERO;
    assert_eq!(due(&a, &never, at(1_000)), None);
}

#[test]
fn an_approval_past_its_expiry_is_expired_and_an_ended_one_is_left_alone() {
    let cfg = ApprovalsConfig::default();
    let mut a = pending("a", "b");
    a.expires_at_ms = a.created_at_ms + 1_500;
    assert_eq!(due(&a, &cfg, a.expires_at_ms + 1_000), None, "grace");
    assert_eq!(
        due(&a, &cfg, a.expires_at_ms + EXPIRY_GRACE_MS + 1),
        Some(Due::Expire)
    );
    a.status = ApprovalStatus::Denied;
    assert_eq!(due(&a, &cfg, a.expires_at_ms + 60_000), None);
}

#[test]
fn a_gateway_that_cannot_list_is_asked_again_only_when_asking_can_succeed() {
    use crate::fleet::FleetError as F;
    use gateway_supervisor_actors::link::messages::CallError;
    let name = || "gw".to_owned();
    assert_eq!(unlisted(&F::NotFound(GatewayId(3))), Unlisted::Forget);
    let old = F::Unsupported {
        id: GatewayId(3),
        name: name(),
        method: "exec.approval.list",
    };
    assert_eq!(unlisted(&old), Unlisted::AtNextConnect);
    for err in [
        F::NotConnected { name: name() },
        F::Call {
            name: name(),
            source: CallError::Timeout(Duration::from_secs(5)),
        },
    ] {
        assert_eq!(unlisted(&err), Unlisted::NextTick, "{err}");
    }
}

#[test]
fn a_decision_the_gateway_did_not_offer_is_not_sent() {
    let mut a = pending("a", "boot-1");
    a.offered_decisions = vec![Decision::Deny];
    assert_eq!(
        answerable(&a, Decision::AllowAlways),
        Err(Unanswerable::NotOffered {
            offered: vec![Decision::Deny]
        })
    );
    assert_eq!(answerable(&a, Decision::Deny), Ok(()));
}

#[test]
fn what_was_not_shown_whole_can_be_denied_but_never_allowed() {
    let mut a = pending("a", "boot-1");
    a.presented_whole = false;
    assert_eq!(
        answerable(&a, Decision::AllowOnce),
        Err(Unanswerable::NotShownWhole)
    );
    assert_eq!(
        answerable(&a, Decision::AllowAlways),
        Err(Unanswerable::NotShownWhole)
    );
    assert_eq!(answerable(&a, Decision::Deny), Ok(()));
    a.presented_whole = true;
    assert_eq!(answerable(&a, Decision::AllowOnce), Ok(()));
}
