use serde_json::{Value, json};

use super::*;
use gateway_supervisor_actors::model::GatewayId;

use crate::fleet::operation::test_builder::NOW;

/// What a real 2026.9.6 answered in the test harness (foreground, npm-installed, in its own
/// PID namespace): `update.run` refused, the run's record, an unknown run.
fn captured() -> Value {
    serde_json::from_str(include_str!(
        "../../../testdata/openclaw-captures/2026.9.6/update_run_refused.json"
    ))
    .unwrap()
}

fn updating(run_id: Option<&str>) -> GatewayProgress {
    GatewayProgress {
        step: Step::Updating {
            run_id: run_id.map(str::to_owned),
            since_ms: NOW - 5_000,
        },
        boot_id_before: Some("boot-a".into()),
        version_before: Some("2026.9.6".into()),
        ..GatewayProgress::pending(GatewayId(1))
    }
}

#[test]
fn a_real_refusal_fails_the_gateway_with_the_gateway_s_reason() {
    let mut p = updating(None);
    p.after_update_run(Ok(&captured()["update.run"]), NOW);
    assert_eq!(p.step, Step::Failed);
    assert_eq!(
        p.detail.as_deref(),
        Some("the gateway did not start the update: skipped (container-image-install)")
    );
    assert!(
        !p.detail.unwrap().contains("/root"),
        "the install path it names is not shown"
    );
}

#[test]
fn a_started_handoff_is_followed_by_its_run_id() {
    let mut p = updating(None);
    let answer = json!({"runId": "r-1", "ok": true, "ackDelivered": false, "ackQueued": false,
        "result": {"status": "skipped", "reason": "managed-service-handoff-started", "steps": [], "durationMs": 3},
        "handoff": {"status": "started", "pid": 4242, "command": "openclaw update --yes --json"},
        "restart": null});
    p.after_update_run(Ok(&answer), NOW);
    assert_eq!(
        p.step,
        Step::Updating {
            run_id: Some("r-1".into()),
            since_ms: NOW - 5_000
        },
        "the deadline counts from the admission, not the answer"
    );
    assert_eq!(p.detail.as_deref(), Some("update started (run r-1)"));
}

#[test]
fn a_second_update_already_running_is_refused_with_the_gateway_s_words() {
    let mut p = updating(None);
    let answer = json!({"runId": "r-2", "ok": false,
        "result": {"status": "skipped", "reason": "managed-service-handoff-already-running"},
        "handoff": {"status": "already-running", "message": "Another managed update is already running; retry after it completes."}});
    p.after_update_run(Ok(&answer), NOW);
    assert_eq!(p.step, Step::Failed);
    assert!(
        p.detail.as_deref().unwrap().contains(
            "(managed-service-handoff-already-running): Another managed update is already running"
        ),
        "{:?}",
        p.detail
    );
}

#[test]
fn a_failed_call_is_asked_again_not_failed() {
    let mut p = updating(None);
    p.after_update_run(Err("timed out".into()), NOW);
    assert!(matches!(p.step, Step::Updating { run_id: None, .. }));
    assert_eq!(
        p.detail.as_deref(),
        Some("the update.run call failed: timed out")
    );
}

#[test]
fn an_active_run_is_followed_and_another_release_than_the_canaries_is_refused() {
    let active = json!({"sentinel": null, "activeRun": {"runId": "r-9", "status": "running", "phase": "staging"}});
    assert_eq!(
        before(&active, None),
        Before::Follow {
            run_id: "r-9".into()
        }
    );
    let newer = json!({"sentinel": null, "updateAvailable": {"currentVersion": "2026.9.6", "latestVersion": "2026.11.2", "channel": "stable"}});
    assert_eq!(before(&newer, None), Before::Ask, "no canary done yet");
    assert_eq!(before(&newer, Some("2026.11.2")), Before::Ask);
    assert_eq!(
        before(&newer, Some("2026.11.1")),
        Before::Refuse {
            reason: "it would update to 2026.11.2, not the release the canaries proved (2026.11.1): left as it is".into()
        }
    );
    // The real status (no update known: `updateAvailable: null`) asks.
    let real = json!({"sentinel": null, "updateAvailable": null, "effectiveChannel": "stable"});
    assert_eq!(before(&real, Some("2026.11.1")), Before::Ask);
}

#[test]
fn the_run_record_is_followed_to_its_end() {
    let mut p = updating(Some("r-1"));
    let running = json!({"run": {"runId": "r-1", "status": "running", "phase": "validating"}});
    p.after_run_record(Ok(&running), false, NOW);
    assert_eq!(p.detail.as_deref(), Some("updating: validating (run r-1)"));
    let odd = json!({"run": {"runId": "r-1", "status": "running", "phase": "<script>"}});
    p.after_run_record(Ok(&odd), false, NOW);
    assert_eq!(
        p.detail.as_deref(),
        Some("updating: unknown phase (run r-1)")
    );
    p.after_run_record(Ok(&captured()["update.runs.get unknown"]), false, NOW);
    assert_eq!(
        p.detail.as_deref(),
        Some("the gateway does not know run r-1 (yet)")
    );
    let done = json!({"run": {"runId": "r-1", "status": "succeeded", "phase": "finished", "after": {"version": "2026.11.1"}}});
    p.after_run_record(Ok(&done), false, NOW);
    assert!(
        matches!(p.step, Step::Updating { .. }),
        "the same process answering: the new one is not there yet"
    );
    p.after_run_record(Ok(&done), true, NOW);
    assert_eq!(p.step, Step::Returning { since_ms: NOW });
}

#[test]
fn a_failed_or_rolled_back_run_fails_the_gateway_with_its_reason() {
    let mut p = updating(Some("r-1"));
    let rolled = json!({"run": {"runId": "r-1", "status": "rolled-back", "reason": "runtime-verification-failed"}});
    p.after_run_record(Ok(&rolled), true, NOW);
    assert_eq!(p.step, Step::Failed);
    assert_eq!(
        p.detail.as_deref(),
        Some(
            "the update was rolled back (runtime-verification-failed); the gateway runs its previous release"
        )
    );
    let mut p = updating(Some("r-1"));
    // The real record of the refused run (read after the refusal).
    p.after_run_record(Ok(&captured()["update.runs.get"]), false, NOW);
    assert_eq!(p.step, Step::Failed);
    assert_eq!(
        p.detail.as_deref(),
        Some("the gateway skipped the update (container-image-install)")
    );
}

#[test]
fn already_current_is_done_without_a_restart_and_unconfirmed_readiness_is_checked_here() {
    let mut p = updating(Some("r-1"));
    let current =
        json!({"run": {"runId": "r-1", "status": "skipped", "reason": "already-current"}});
    p.after_run_record(Ok(&current), false, NOW);
    assert_eq!(p.step, Step::Done);
    assert_eq!(p.version_after.as_deref(), Some("2026.9.6"));
    let mut p = updating(Some("r-1"));
    let unverified = json!({"run": {"runId": "r-1", "status": "skipped", "reason": "gateway-readiness-unverified"}});
    p.after_run_record(Ok(&unverified), true, NOW);
    assert_eq!(p.step, Step::Returning { since_ms: NOW });
}

fn back(canary: bool) -> GatewayProgress {
    GatewayProgress {
        step: Step::Returning { since_ms: NOW },
        canary,
        ..updating(Some("r-1"))
    }
}

#[test]
fn a_canary_bakes_then_is_done_and_the_others_must_match_it() {
    let mut c = back(true);
    c.back_upgraded(
        Some("boot-b".into()),
        Some("2026.11.1".into()),
        None,
        60,
        NOW,
    );
    assert_eq!(
        c.step,
        Step::Baking {
            until_ms: NOW + 60_000
        }
    );
    assert_eq!(
        c.detail.as_deref(),
        Some("upgraded 2026.9.6 → 2026.11.1; baking for 60s")
    );
    c.baked(NOW + 60_000);
    assert_eq!(c.step, Step::Done);
    assert_eq!(
        c.detail.as_deref(),
        Some("upgraded 2026.9.6 → 2026.11.1; stayed healthy through its bake")
    );
    let progress = vec![c.clone(), back(false)];
    assert_eq!(proven(&progress), Some("2026.11.1"));

    let mut same = back(false);
    same.back_upgraded(
        Some("boot-c".into()),
        Some("2026.11.1".into()),
        Some("2026.11.1"),
        60,
        NOW,
    );
    assert_eq!(same.step, Step::Done, "only a canary bakes");
    let mut other = back(false);
    other.back_upgraded(
        Some("boot-d".into()),
        Some("2026.11.2".into()),
        Some("2026.11.1"),
        60,
        NOW,
    );
    assert_eq!(other.step, Step::Failed);
    assert_eq!(
        other.detail.as_deref(),
        Some("came back as 2026.11.2, not the release the canaries proved (2026.11.1)")
    );
}
