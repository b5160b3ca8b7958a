//! Reading the answers of OpenClaw's machine contracts for an external supervisor
//! (`openclaw.gateway.restart-handoff` v1 and `database ownership`), as 2026.9.6 prints them
//! (testdata/openclaw-captures/managed/). Pure: the CLI's exit code and stdout in.

use serde_json::Value;

use super::policy::Handoff;

/// `openclaw gateway restart-handoff consume --expected-pid <pid> --json`: exit 0 for every
/// valid request (`accepted`, `none`, `rejected`), 2 for an invalid pid, 1 when the store
/// cannot be opened.
pub fn consume_answer(exit_code: Option<i32>, stdout: &[u8]) -> Handoff {
    let doc: Option<Value> = serde_json::from_slice(stdout).ok();
    let field = |k: &str| {
        doc.as_ref()
            .and_then(|d| d.get(k))
            .and_then(Value::as_str)
            .map(|s| gateway_supervisor_actors::bounded::text(s, 64))
    };
    let status = field("status");
    let reason = field("reason").unwrap_or_default();
    match (exit_code, status.as_deref()) {
        (Some(0), Some("accepted")) => match doc
            .as_ref()
            .and_then(|d| d.pointer("/handoff/intentId"))
            .and_then(Value::as_str)
        {
            Some(id) => Handoff::Accepted {
                intent_id: gateway_supervisor_actors::bounded::text(id, 64),
            },
            None => Handoff::Failed {
                reason: "an accepted handoff without an intentId".into(),
            },
        },
        (Some(0), Some(s @ ("none" | "rejected"))) => Handoff::NotAccepted {
            reason: format!("{s}: {reason}"),
        },
        (code, _) => Handoff::Failed {
            reason: match code {
                Some(c) => {
                    format!("consume exited {c}: {}", status.unwrap_or_default())
                        + if reason.is_empty() { "" } else { ": " }
                        + &reason
                }
                None => "consume did not finish".into(),
            },
        },
    }
}

/// The manager id of `openclaw database ownership status|claim --json`: `Some(id)` when the
/// state is externally owned, `None` when it is `unowned` (or the answer is not understood).
pub fn ownership_manager(stdout: &[u8]) -> Option<String> {
    let doc: Value = serde_json::from_slice(stdout).ok()?;
    (doc["status"] == "external")
        .then(|| {
            doc.pointer("/ownership/managerId")?
                .as_str()
                .map(str::to_owned)
        })
        .flatten()
}

/// What `openclaw database preflight <copy> --json` (run by the *target* release) says of a
/// copy of the state: `Ok(true)` when it would migrate it (`migration-required`), `Ok(false)`
/// when it reads it as it is (`exact`), `Err` with the status and issues when it cannot
/// (`incompatible`: exit 1) or did not answer.
pub fn preflight_answer(exit_code: Option<i32>, stdout: &[u8]) -> Result<bool, String> {
    let doc: Option<Value> = serde_json::from_slice(stdout).ok();
    let status = doc
        .as_ref()
        .and_then(|d| d["status"].as_str())
        .map(|s| gateway_supervisor_actors::bounded::text(s, 64));
    match (exit_code, status.as_deref()) {
        (Some(0), Some("exact")) => Ok(false),
        (Some(0), Some("migration-required")) => Ok(true),
        (code, status) => {
            let d = doc.as_ref();
            let found = d.and_then(|d| d["foundVersion"].as_i64());
            let target = d.and_then(|d| d["targetVersion"].as_i64());
            let issues = d
                .map(|d| gateway_supervisor_actors::bounded::text(&d["issues"].to_string(), 400))
                .unwrap_or_default();
            Err(match (status, found, target) {
                (Some(s), Some(f), Some(t)) => {
                    format!(
                        "preflight: {s} (the state's schema is {f}, the release reads {t}); issues: {issues}"
                    )
                }
                (Some(s), _, _) => format!("preflight: {s}; issues: {issues}"),
                (None, _, _) => format!(
                    "preflight did not answer ({})",
                    code.map_or("killed".to_owned(), |c| format!("exit {c}"))
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/testdata/openclaw-captures/managed/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn an_accepted_handoff_names_its_intent() {
        assert_eq!(
            consume_answer(Some(0), &capture("restart-handoff-consume-accepted.json")),
            Handoff::Accepted {
                intent_id: "6dc7c860-935b-424f-8783-b448a0a13d0f".into()
            }
        );
    }

    #[test]
    fn no_handoff_row_is_not_accepted() {
        assert_eq!(
            consume_answer(Some(0), &capture("restart-handoff-consume-none.json")),
            Handoff::NotAccepted {
                reason: "none: missing".into()
            }
        );
    }

    #[test]
    fn a_rejected_handoff_is_not_accepted_and_says_why() {
        let out = br#"{"ok":true,"protocol":"openclaw.gateway.restart-handoff","protocolVersion":1,"status":"rejected","reason":"pid-mismatch","handoffPid":7}"#;
        assert_eq!(
            consume_answer(Some(0), out),
            Handoff::NotAccepted {
                reason: "rejected: pid-mismatch".into()
            }
        );
    }

    #[test]
    fn an_invalid_pid_or_a_failed_cli_is_a_failure_not_an_answer() {
        assert_eq!(
            consume_answer(
                Some(2),
                &capture("restart-handoff-consume-invalid-pid.json")
            ),
            Handoff::Failed {
                reason: "consume exited 2: error: invalid-expected-pid".into()
            }
        );
        assert!(matches!(consume_answer(None, b""), Handoff::Failed { .. }));
        // "accepted" printed by a failing process is not believed.
        assert!(matches!(
            consume_answer(Some(1), &capture("restart-handoff-consume-accepted.json")),
            Handoff::Failed { .. }
        ));
    }

    #[test]
    fn ownership_reads_the_manager_of_an_external_state() {
        assert_eq!(
            ownership_manager(&capture("ownership-status-external.json")).as_deref(),
            Some("gateway-supervisor")
        );
        assert_eq!(
            ownership_manager(br#"{"databasePath":"/x/openclaw.sqlite","status":"unowned"}"#),
            None
        );
    }

    #[test]
    fn preflight_reads_exact_as_no_migration_and_a_migration_as_one() {
        assert_eq!(
            preflight_answer(Some(0), &capture("preflight-2026.9.6-exact.json")),
            Ok(false)
        );
        assert_eq!(
            preflight_answer(
                Some(0),
                &capture("preflight-2026.9.6-on-2026.9.5-state.json")
            ),
            Ok(true)
        );
    }

    #[test]
    fn preflight_refusing_a_newer_state_says_both_schemas() {
        assert_eq!(
            preflight_answer(Some(1), &capture("preflight-2026.9.5-incompatible.json")),
            Err("preflight: incompatible (the state's schema is 18, the release reads 17); issues: []".into())
        );
        assert!(preflight_answer(None, b"").is_err());
        // "exact" printed by a failing process is not believed.
        assert!(preflight_answer(Some(1), &capture("preflight-2026.9.6-exact.json")).is_err());
    }
}
