//! What the gateway's answers mean for a rollout's gateway, pure: its `config.patch` refusals
//! ([`Refusal`]), the write's answer ([`after_write`]), the read back ([`after_check`]) and the
//! revert's answer ([`after_revert`]). `rule.rs` decides what to ask; the playbook asks and
//! hands the answer here (docs/design.md, *Config rollouts*).

use serde_json::Value;

use super::reload_plan::restarts;
use super::rule::{finish, set_detail};
use crate::fleet::operation::model::{GatewayProgress, RolloutParams, Step};
use gateway_supervisor_actors::bounded;
use gateway_supervisor_actors::protocol::frames::ErrorShape;

/// What stopped a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Another write came between the `config.get` and the `config.patch` ("config changed
    /// since last load").
    Stale,
    /// The gateway's write limit (30 per 60 s per method): retry after this many ms.
    Limited { retry_after_ms: u64 },
    /// Refused for good: the gateway's words.
    Refused(String),
    /// The call did not come back (it may have been applied): why.
    Lost(String),
}

impl Refusal {
    /// What 2026.9.6's refusal of a `config.patch` means (captured:
    /// `testdata/openclaw-captures/2026.9.6/config_patch.json`).
    pub fn of(e: &ErrorShape) -> Refusal {
        if e.message.starts_with("config changed since last load") {
            Refusal::Stale
        } else if let (Some(ms), Some(true)) = (e.retry_after_ms, e.retryable) {
            Refusal::Limited { retry_after_ms: ms }
        } else {
            Refusal::Refused(format!("{}: {}", e.code, e.message))
        }
    }
}

/// The paths a `config.patch` answer says changed (bounded).
fn changed_paths(answer: &Value) -> Vec<String> {
    answer
        .get("changedPaths")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .take(64)
                .map(|s| bounded::text(s, 200))
                .collect()
        })
        .unwrap_or_default()
}

/// The answer to the rollout's `config.patch`, or what stopped it.
pub fn after_write(
    p: &mut GatewayProgress,
    answer: Result<&Value, Refusal>,
    rp: &RolloutParams,
    now_ms: i64,
) {
    let Step::Writing { attempts, .. } = p.step else {
        return;
    };
    match answer {
        Ok(a) if a.get("noop").and_then(Value::as_bool) == Some(true) => {
            finish(
                p,
                Step::Done,
                "already as desired: the gateway changed nothing (noop)",
                now_ms,
            );
        }
        Ok(a) => {
            p.written = true;
            p.changed_paths = changed_paths(a);
            if restarts(a) {
                p.step = Step::Applying { since_ms: now_ms };
                set_detail(p, "written; the gateway restarts to apply it");
            } else {
                p.step = Step::Settling {
                    healthy_since_ms: Some(now_ms),
                };
                set_detail(p, "written and applied; staying healthy");
            }
        }
        Err(Refusal::Stale) if attempts.saturating_add(1) >= rp.max_attempts => finish(
            p,
            Step::Failed,
            format!(
                "another write came between config.get and config.patch {} times; not written",
                attempts.saturating_add(1)
            ),
            now_ms,
        ),
        Err(Refusal::Stale) => {
            p.step = Step::Writing {
                attempts: attempts.saturating_add(1),
                not_before_ms: now_ms,
            };
            set_detail(
                p,
                format!(
                    "another write came first (attempt {}): reading it again",
                    attempts.saturating_add(1)
                ),
            );
        }
        Err(Refusal::Limited { retry_after_ms }) => {
            p.step = Step::Writing {
                attempts,
                not_before_ms: now_ms
                    .saturating_add(i64::try_from(retry_after_ms).unwrap_or(i64::MAX)),
            };
            set_detail(
                p,
                format!(
                    "paced: the gateway's write limit (30 per 60s); next write in {}s",
                    retry_after_ms.div_ceil(1000)
                ),
            );
        }
        Err(Refusal::Refused(why)) => {
            finish(
                p,
                Step::Failed,
                format!("config.patch refused: {why}"),
                now_ms,
            );
        }
        Err(Refusal::Lost(why)) => {
            // It may have been applied: a revert must put it back.
            p.written = true;
            set_detail(
                p,
                format!("the write did not come back ({why}); trying again"),
            );
        }
    }
}

/// The written paths read back after `min_healthy_time`: `Ok(())` when every one reads as
/// written, else the first that does not, in words.
pub fn after_check(
    p: &mut GatewayProgress,
    read: Result<(), String>,
    rp: &RolloutParams,
    now_ms: i64,
) {
    match read {
        Ok(()) => finish(
            p,
            Step::Done,
            format!(
                "applied, healthy for {}s, read back as written",
                rp.min_healthy_time_s
            ),
            now_ms,
        ),
        Err(why) => finish(p, Step::Failed, format!("read back: {why}"), now_ms),
    }
}

/// The answer to a revert's `config.patch`, or what stopped it; `kept`: secret paths whose
/// earlier values the gateway never showed (not put back).
pub fn after_revert(
    p: &mut GatewayProgress,
    answer: Result<&Value, Refusal>,
    kept: &[String],
    rp: &RolloutParams,
    now_ms: i64,
) {
    let Step::Reverting {
        attempts, since_ms, ..
    } = p.step
    else {
        return;
    };
    let kept = if kept.is_empty() {
        String::new()
    } else {
        format!(
            "; not put back (secrets the gateway never shows): {}",
            kept.join(", ")
        )
    };
    match answer {
        Ok(a) => {
            let how = if a.get("noop").and_then(Value::as_bool) == Some(true) {
                "put back: it already had its earlier values"
            } else if restarts(a) {
                "put back; the gateway restarts to apply it"
            } else {
                "put back: its earlier values are written and applied"
            };
            finish(p, Step::Reverted, format!("{how}{kept}"), now_ms);
        }
        Err(Refusal::Stale) if attempts.saturating_add(1) >= rp.max_attempts => finish(
            p,
            Step::Failed,
            format!(
                "could not be put back: another write came first {} times",
                attempts.saturating_add(1)
            ),
            now_ms,
        ),
        Err(Refusal::Stale) => {
            p.step = Step::Reverting {
                attempts: attempts.saturating_add(1),
                not_before_ms: now_ms,
                since_ms,
            };
            set_detail(
                p,
                "another write came first: reading it again to put it back",
            );
        }
        Err(Refusal::Limited { retry_after_ms }) => {
            p.step = Step::Reverting {
                attempts,
                not_before_ms: now_ms
                    .saturating_add(i64::try_from(retry_after_ms).unwrap_or(i64::MAX)),
                since_ms,
            };
            set_detail(
                p,
                format!(
                    "paced: the gateway's write limit; put back in {}s",
                    retry_after_ms.div_ceil(1000)
                ),
            );
        }
        Err(Refusal::Refused(why)) => finish(
            p,
            Step::Failed,
            format!("could not be put back: config.patch refused: {why}"),
            now_ms,
        ),
        Err(Refusal::Lost(why)) => {
            set_detail(
                p,
                format!("the revert did not come back ({why}); trying again"),
            );
        }
    }
}
