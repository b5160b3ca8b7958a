//! What an upgrade's answers mean, pure: the gateway's `update.status` before asking (a run
//! already active there is followed, not doubled; a release other than the one the canaries
//! proved is refused), its answer to `update.run` (a durable `runId` when it started the
//! update, its reason when it did not), its run record (`update.runs.get`: running, then
//! `succeeded`, `failed`, `rolled-back` or `skipped`), and the new process once it is back
//! (the release it runs, the canary's bake). An acknowledgment is not completion: only the run
//! record and the new process's health say the update is done (docs/design.md, *Canary
//! upgrade*).

use serde_json::Value;

use super::model::{GatewayProgress, Step};
use gateway_supervisor_actors::bounded;

/// Longest detail kept for a gateway (it may quote the gateway).
const DETAIL_MAX: usize = 300;
/// Longest id, reason or version taken from a gateway.
const WORD_MAX: usize = 80;

/// The phases 2026.9.6 records for a run; anything else is shown as `unknown phase`.
const PHASES: [&str; 8] = [
    "requested",
    "staging",
    "validating",
    "activating",
    "restarting",
    "verifying",
    "repairing",
    "finished",
];

/// A run's status as 2026.9.6 records it (`update.runs.get`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunStatus {
    Running,
    Succeeded,
    Failed,
    RolledBack,
    Skipped,
}

impl RunStatus {
    fn of(run: &Value) -> Option<RunStatus> {
        Some(match run.get("status")?.as_str()? {
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "rolled-back" => RunStatus::RolledBack,
            "skipped" => RunStatus::Skipped,
            _ => return None,
        })
    }
}

/// What to do before asking a gateway to update, from its `update.status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Before {
    /// Ask it.
    Ask,
    /// A run is active there already (ours, asked by a round whose record was lost, or
    /// anyone's): follow it rather than start another (the gateway would refuse a second one).
    Follow { run_id: String },
    /// It would go to another release than the canaries proved.
    Refuse { reason: String },
}

fn word(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(|s| bounded::text(s, WORD_MAX))
}

/// From `update.status` (`activeRun`, `updateAvailable.latestVersion`), with the release the
/// canaries came back as (`proven`), where they are done.
pub fn before(status: &Value, proven: Option<&str>) -> Before {
    if let Some(run_id) = word(status.pointer("/activeRun/runId")) {
        return Before::Follow { run_id };
    }
    let latest = word(status.pointer("/updateAvailable/latestVersion"));
    match (latest, proven) {
        (Some(latest), Some(proven)) if latest != proven => Before::Refuse {
            reason: format!(
                "it would update to {latest}, not the release the canaries proved ({proven}): left as it is"
            ),
        },
        _ => Before::Ask,
    }
}

/// The release the canaries proved: the one the first canary that is done came back as.
pub fn proven(progress: &[GatewayProgress]) -> Option<&str> {
    progress
        .iter()
        .filter(|p| p.canary && p.step == Step::Done)
        .find_map(|p| p.version_after.as_deref())
}

impl GatewayProgress {
    /// Cordoned, its process and release noted: the update is to be asked.
    pub fn admitted_for_update(
        &mut self,
        boot_id: Option<String>,
        version: Option<String>,
        now_ms: i64,
    ) {
        self.boot_id_before = boot_id;
        self.version_before = version;
        self.started_at.get_or_insert(now_ms);
        self.step = Step::Updating {
            run_id: None,
            since_ms: now_ms,
        };
        self.detail = Some("asking the gateway to update".into());
    }

    /// A run already active on the gateway is followed instead of asking for another.
    pub fn follow(&mut self, run_id: String) {
        if let Step::Updating { since_ms, .. } = self.step {
            self.detail = Some(bounded::text(
                &format!("an update was already running there (run {run_id}): following it"),
                DETAIL_MAX,
            ));
            self.step = Step::Updating {
                run_id: Some(run_id),
                since_ms,
            };
        }
    }

    /// The answer to `update.run` (`Err`: the call failed; asked again next round, after
    /// `update.status` shows whether it started after all).
    pub fn after_update_run(&mut self, answer: Result<&Value, String>, now_ms: i64) {
        let Step::Updating { since_ms, .. } = self.step else {
            return;
        };
        let a = match answer {
            Ok(a) => a,
            Err(why) => {
                self.detail = Some(bounded::text(
                    &format!("the update.run call failed: {why}"),
                    DETAIL_MAX,
                ));
                return;
            }
        };
        let run_id = word(a.get("runId"));
        if a.get("ok").and_then(Value::as_bool) == Some(true)
            && let Some(run_id) = run_id
        {
            self.detail = Some(format!("update started (run {run_id})"));
            self.step = Step::Updating {
                run_id: Some(run_id),
                since_ms,
            };
            return;
        }
        // 2026.9.6: `ok: false` with the result's status and reason (and a message or the
        // handoff's own words where it has them).
        let status = word(a.pointer("/result/status")).unwrap_or_else(|| "refused".into());
        let reason = word(a.pointer("/result/reason"))
            .or_else(|| word(a.get("code")))
            .unwrap_or_else(|| "no reason given".into());
        let said = a
            .get("message")
            .or_else(|| a.pointer("/handoff/message"))
            .and_then(Value::as_str)
            .map(|m| format!(": {}", bounded::text(m, 160)))
            .unwrap_or_default();
        self.fail(
            &format!("the gateway did not start the update: {status} ({reason}){said}"),
            now_ms,
        );
    }

    /// The gateway's record of the run (`update.runs.get`), read from the process that answers
    /// now, `another` than the one asked or not.
    pub fn after_run_record(&mut self, answer: Result<&Value, String>, another: bool, now_ms: i64) {
        let Step::Updating {
            run_id: Some(run_id),
            ..
        } = &self.step
        else {
            return;
        };
        let run = match answer {
            Ok(a) => a.get("run").filter(|r| r.is_object()),
            Err(why) => {
                self.detail = Some(bounded::text(
                    &format!("reading the update run failed (it may be restarting): {why}"),
                    DETAIL_MAX,
                ));
                return;
            }
        };
        let Some(run) = run else {
            self.detail = Some(format!("the gateway does not know run {run_id} (yet)"));
            return;
        };
        let reason = word(run.get("reason")).unwrap_or_else(|| "no reason given".into());
        match RunStatus::of(run) {
            Some(RunStatus::Running) => {
                let phase = run
                    .get("phase")
                    .and_then(Value::as_str)
                    .filter(|p| PHASES.contains(p))
                    .unwrap_or("unknown phase");
                self.detail = Some(format!("updating: {phase} (run {run_id})"));
            }
            Some(RunStatus::Succeeded) if another => {
                self.detail = Some(format!(
                    "updated (run {run_id}); waiting for the new process to be healthy"
                ));
                self.step = Step::Returning { since_ms: now_ms };
            }
            Some(RunStatus::Succeeded) => {
                self.detail = Some(format!(
                    "the run succeeded; waiting for the new process (run {run_id})"
                ));
            }
            // Nothing to update: the same process goes on, answering; done as it is.
            Some(RunStatus::Skipped) if reason == "already-current" => {
                self.version_after = self.version_before.clone();
                self.detail = Some(format!(
                    "already current ({}): nothing to update",
                    self.version_before.as_deref().unwrap_or("unknown")
                ));
                self.step = Step::Done;
                self.finished_at = Some(now_ms);
            }
            // 2026.9.6: installed, but the gateway could not confirm readiness in its allowance
            // (`gateway-readiness-unverified`): this daemon checks for itself.
            Some(RunStatus::Skipped) if another => {
                self.detail = Some(bounded::text(
                    &format!("installed, unconfirmed by the gateway ({reason}); checking it here"),
                    DETAIL_MAX,
                ));
                self.step = Step::Returning { since_ms: now_ms };
            }
            Some(RunStatus::Skipped) => self.fail(
                &format!("the gateway skipped the update ({reason})"),
                now_ms,
            ),
            Some(RunStatus::RolledBack) => self.fail(
                &format!(
                    "the update was rolled back ({reason}); the gateway runs its previous release"
                ),
                now_ms,
            ),
            Some(RunStatus::Failed) => self.fail(&format!("the update failed ({reason})"), now_ms),
            None => {
                let said = run
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("missing");
                self.detail = Some(bounded::text(
                    &format!("unexpected run status {said} (run {run_id})"),
                    DETAIL_MAX,
                ));
            }
        }
    }

    /// An upgraded gateway is back (another process, `health` answered, `/readyz` 2xx) as
    /// release `version`. A canary then bakes for `bake_s`; any other must run the release the
    /// canaries proved.
    pub fn back_upgraded(
        &mut self,
        boot_id: Option<String>,
        version: Option<String>,
        proven: Option<&str>,
        bake_s: u64,
        now_ms: i64,
    ) {
        self.boot_id_after = boot_id;
        self.version_after = version.map(|v| bounded::text(&v, WORD_MAX));
        let was = self.version_before.as_deref().unwrap_or("unknown");
        let now = self.version_after.as_deref().unwrap_or("unknown");
        if !self.canary
            && let Some(proven) = proven
            && now != proven
        {
            return self.fail(
                &format!("came back as {now}, not the release the canaries proved ({proven})"),
                now_ms,
            );
        }
        let what = if was == now {
            format!("back on {now} (no newer release)")
        } else {
            format!("upgraded {was} → {now}")
        };
        if self.canary && bake_s > 0 {
            let bake_ms = i64::try_from(bake_s.saturating_mul(1000)).unwrap_or(i64::MAX);
            self.step = Step::Baking {
                until_ms: now_ms.saturating_add(bake_ms),
            };
            self.detail = Some(format!("{what}; baking for {bake_s}s"));
        } else {
            self.step = Step::Done;
            self.detail = Some(what);
            self.finished_at = Some(now_ms);
        }
    }

    /// A canary that stayed up through its bake and is still healthy.
    pub fn baked(&mut self, now_ms: i64) {
        self.step = Step::Done;
        let what = self.detail.as_deref().unwrap_or("upgraded");
        let what = what.split("; baking").next().unwrap_or(what).to_owned();
        self.detail = Some(format!("{what}; stayed healthy through its bake"));
        self.finished_at = Some(now_ms);
    }
}

#[cfg(test)]
#[path = "upgrade_tests.rs"]
mod tests;
