//! A job's recent runs, read from its gateway's `cron.runs` for the API: each entry's status,
//! times, model and tokens (2026.9.6 reports no cost), every string bounded and escaped.

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::Cron;
use crate::fleet::FleetError;
use gateway_supervisor_actors::bounded;
use gateway_supervisor_actors::model::GatewayId;

/// Runs shown per job.
pub const SHOWN: i64 = 20;

/// One run of a job, as its gateway recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CronRun {
    pub run_id: Option<String>,
    /// ok | error | skipped, as the gateway says.
    pub status: Option<String>,
    pub run_at_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    /// What went wrong, in the gateway's words (bounded).
    pub error: Option<String>,
    pub delivery_status: Option<String>,
}

impl CronRun {
    /// One entry of `cron.runs`.
    pub fn read(e: &Value) -> CronRun {
        let text = |k: &str, max: usize| bounded::opt_text(e[k].as_str(), max);
        let usage = &e["usage"];
        CronRun {
            run_id: text("runId", 200),
            status: text("status", 32),
            run_at_ms: e["runAtMs"].as_i64(),
            duration_ms: e["durationMs"].as_i64(),
            model: text("model", 128),
            provider: text("provider", 64),
            input_tokens: usage["input_tokens"].as_i64(),
            output_tokens: usage["output_tokens"].as_i64(),
            total_tokens: usage["total_tokens"].as_i64(),
            error: text("error", 500),
            delivery_status: text("deliveryStatus", 32),
        }
    }
}

impl Cron {
    /// Job `job_id`'s last runs on gateway `id`, newest first.
    pub async fn runs(&self, id: GatewayId, job_id: &str) -> Result<Vec<CronRun>, FleetError> {
        let answer = self
            .hands
            .call(
                id,
                "cron.runs",
                json!({"scope": "job", "id": job_id, "limit": SHOWN, "sortDir": "desc"}),
            )
            .await?;
        Ok(answer["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .take(SHOWN as usize)
            .map(CronRun::read)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_captured_run_reads_with_its_model_and_tokens() {
        let capture = crate::cron::capture();
        let runs = capture["calls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["method"] == "cron.runs")
            .unwrap()["answer"]["entries"]
            .clone();
        let run = CronRun::read(&runs[0]);
        assert_eq!(run.status.as_deref(), Some("ok"));
        assert!(run.run_at_ms.is_some() && run.duration_ms.is_some());
        assert!(run.model.is_some() && run.provider.is_some());
        assert!(run.total_tokens.is_some_and(|t| t > 0), "{run:?}");
    }

    #[test]
    fn a_hostile_entry_is_bounded() {
        let run = CronRun::read(
            &json!({"error": format!("\u{1b}[31m{}", "e".repeat(10_000)),
            "model": 5, "usage": "none"}),
        );
        let error = run.error.unwrap();
        assert!(error.len() < 600 && !error.contains('\u{1b}'));
        assert_eq!(run.model, None);
        assert_eq!(run.total_tokens, None);
    }
}
