//! A spend budget as an operator writes it, checked into what the store keeps, and shown back
//! with its ledger. Pure: the HTTP layer parses, this checks, the store keeps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::db::spend::{SpendBudgetRecord, Subject};
use crate::domain::spend::rule::{Micros, Tally};
use crate::domain::spend::window::{self, Window};

/// The most a budget may name, per run or per window (US dollars).
const MAX_USD: f64 = 1e9;
/// The most agents with their own estimate.
const MAX_AGENT_ESTIMATES: usize = 256;

/// A budget as written (`PUT /api/spend/budgets/{subject}`).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpendBudgetSpec {
    /// The period spend and runs are counted over: `1d`, `7d`, `30d` or `month`.
    pub window: Window,
    /// The IANA time zone its days and months are in (`UTC` by default).
    pub time_zone: Option<String>,
    /// Runs are refused once spent + held + the next run's estimate would pass this.
    pub max_spend_usd: Option<f64>,
    /// Crossing this says so once (a `spend.soft_limit` event), refusing nothing.
    pub soft_spend_usd: Option<f64>,
    /// The most runs started in a window.
    pub max_runs: Option<i64>,
    /// The most runs going at once.
    pub max_parallel_runs: Option<i64>,
    /// What a run is held at until its gateway says what it cost.
    pub estimate_usd: f64,
    /// Per-agent estimates (`{"main": 0.5}`), over `estimate_usd`.
    #[serde(default)]
    pub agent_estimates: BTreeMap<String, f64>,
    /// Refuse runs when the ledger cannot be read (default true).
    pub fail_closed: Option<bool>,
}

/// A budget as shown: what was written, the current window and its ledger.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SpendBudgetView {
    pub subject: String,
    pub window: String,
    pub time_zone: String,
    /// The day its `7d`/`30d` windows count from.
    pub anchor_day: String,
    pub max_spend_usd: Option<f64>,
    pub soft_spend_usd: Option<f64>,
    pub max_runs: Option<i64>,
    pub max_parallel_runs: Option<i64>,
    pub estimate_usd: f64,
    #[schema(value_type = Object)]
    pub agent_estimates: serde_json::Value,
    pub fail_closed: bool,
    /// This window: from, and when it resets (Unix seconds).
    pub window_start: i64,
    pub resets_at: i64,
    /// Settled (the gateways' own numbers: estimates from their price tables) and held, in US
    /// dollars; runs started and going.
    pub spent_usd: f64,
    pub reserved_usd: f64,
    pub runs: i64,
    pub running: i64,
    pub updated_at: i64,
    pub updated_by: String,
}

fn usd(m: Micros) -> f64 {
    m as f64 / 1e6
}

fn micros(field: &str, v: f64) -> Result<Micros, String> {
    if !v.is_finite() || !(0.0..=MAX_USD).contains(&v) {
        return Err(format!(
            "{field} must be between 0 and {MAX_USD} US dollars"
        ));
    }
    Ok((v * 1e6).round() as Micros)
}

/// The subject of a path: `key:<id>` or `tenant:<name>`.
pub fn subject(text: &str) -> Result<Subject, String> {
    match text.split_once(':') {
        Some(("key", id)) => id
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Subject::Key)
            .ok_or_else(|| "a key's budget is `key:<id>` (its id in `keys list`)".to_owned()),
        Some(("tenant", t)) if gateway_supervisor_actors::labels::is_dns_label(t) => {
            Ok(Subject::Tenant(t.to_owned()))
        }
        _ => Err("a budget is for `key:<id>` or `tenant:<name>`".into()),
    }
}

impl SpendBudgetSpec {
    /// The record to keep, set at `now` by `by`; or the field that is wrong, and why.
    pub fn record(
        &self,
        subject: &Subject,
        now: i64,
        by: &str,
    ) -> Result<SpendBudgetRecord, (&'static str, String)> {
        let tz_name = self.time_zone.clone().unwrap_or_else(|| "UTC".into());
        let tz = window::zone(&tz_name).map_err(|e| ("time_zone", e))?;
        let anchor = window::day_of(now, &tz).map_err(|e| ("time_zone", e.to_string()))?;
        let opt = |field: &'static str, v: Option<f64>| {
            v.map(|v| micros(field, v))
                .transpose()
                .map_err(|e| (field, e))
        };
        let max_spend = opt("max_spend_usd", self.max_spend_usd)?;
        let soft = opt("soft_spend_usd", self.soft_spend_usd)?;
        let estimate =
            micros("estimate_usd", self.estimate_usd).map_err(|e| ("estimate_usd", e))?;
        if max_spend.is_some() && estimate == 0 {
            return Err((
                "estimate_usd",
                "a budget with max_spend_usd needs an estimate above 0: a run held at nothing would never be refused"
                    .into(),
            ));
        }
        for (field, v) in [
            ("max_runs", self.max_runs),
            ("max_parallel_runs", self.max_parallel_runs),
        ] {
            if v.is_some_and(|n| n < 1) {
                return Err((field, format!("{field} must be 1 or more")));
            }
        }
        if self.agent_estimates.len() > MAX_AGENT_ESTIMATES {
            return Err((
                "agent_estimates",
                format!("at most {MAX_AGENT_ESTIMATES} agents"),
            ));
        }
        let mut agents = BTreeMap::new();
        for (agent, v) in &self.agent_estimates {
            if agent.is_empty() || agent.len() > 64 {
                return Err(("agent_estimates", "an agent id is 1–64 characters".into()));
            }
            agents.insert(
                agent.clone(),
                micros("agent_estimates", *v).map_err(|e| ("agent_estimates", e))?,
            );
        }
        Ok(SpendBudgetRecord {
            subject: subject.stored(),
            time_window: self.window.as_str().to_owned(),
            time_zone: tz_name,
            anchor_day: anchor.to_string(),
            max_spend_micros: max_spend,
            soft_spend_micros: soft,
            max_runs: self.max_runs,
            max_parallel_runs: self.max_parallel_runs,
            estimate_micros: estimate,
            agent_estimates: serde_json::to_string(&agents).unwrap_or_else(|_| "{}".into()),
            fail_closed: self.fail_closed.unwrap_or(true),
            updated_at: now,
            updated_by: by.to_owned(),
        })
    }
}

/// A stored budget with its ledger in `window`, as shown.
pub fn view(b: SpendBudgetRecord, t: Tally, window: (i64, i64)) -> SpendBudgetView {
    let agents: BTreeMap<String, i64> =
        serde_json::from_str(&b.agent_estimates).unwrap_or_default();
    SpendBudgetView {
        subject: b.subject,
        window: b.time_window,
        time_zone: b.time_zone,
        anchor_day: b.anchor_day,
        max_spend_usd: b.max_spend_micros.map(usd),
        soft_spend_usd: b.soft_spend_micros.map(usd),
        max_runs: b.max_runs,
        max_parallel_runs: b.max_parallel_runs,
        estimate_usd: usd(b.estimate_micros),
        agent_estimates: serde_json::json!(
            agents
                .into_iter()
                .map(|(a, m)| (a, usd(m)))
                .collect::<BTreeMap<_, _>>()
        ),
        fail_closed: b.fail_closed,
        window_start: window.0,
        resets_at: window.1,
        spent_usd: usd(t.spent_micros),
        reserved_usd: usd(t.reserved_micros),
        runs: t.runs,
        running: t.running,
        updated_at: b.updated_at,
        updated_by: b.updated_by,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> SpendBudgetSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_budget_is_checked_into_what_the_ledger_counts() {
        let s = spec(
            serde_json::json!({"window": "1d", "max_spend_usd": 3.0, "estimate_usd": 1.0,
            "agent_estimates": {"ops": 0.25}, "time_zone": "Europe/Paris"}),
        );
        let r = s
            .record(&Subject::Key(4), 1_795_900_000, "api_key:admin")
            .unwrap();
        assert_eq!(
            (r.subject.as_str(), r.max_spend_micros, r.estimate_micros),
            ("key:4", Some(3_000_000), 1_000_000)
        );
        assert_eq!(r.estimate_for(Some("ops")), 250_000);
        assert_eq!(r.estimate_for(Some("main")), 1_000_000);
        assert!(r.fail_closed, "closed unless said otherwise");
        let bad = |v: serde_json::Value| spec(v).record(&Subject::Key(4), 0, "x").unwrap_err().0;
        assert_eq!(
            bad(serde_json::json!({"window": "1d", "max_spend_usd": 3.0, "estimate_usd": 0.0})),
            "estimate_usd"
        );
        assert_eq!(
            bad(serde_json::json!({"window": "1d", "estimate_usd": -1.0})),
            "estimate_usd"
        );
        assert_eq!(
            bad(serde_json::json!({"window": "1d", "estimate_usd": 1.0, "time_zone": "Nowhere"})),
            "time_zone"
        );
        assert_eq!(
            bad(serde_json::json!({"window": "1d", "estimate_usd": 1.0, "max_runs": 0})),
            "max_runs"
        );
        assert_eq!(subject("tenant:blue"), Ok(Subject::Tenant("blue".into())));
        assert!(
            subject("key:x").is_err()
                && subject("team:blue").is_err()
                && subject("tenant:Blue").is_err()
        );
    }
}
