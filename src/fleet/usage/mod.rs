//! The usage and cost roll-up: every `usage.interval`, each gateway this instance links that
//! offers `usage.cost` is asked, per agent (`agents.list`), for its daily totals — the last
//! `backfill_days` the first time, then today and yesterday (yesterday's last hour is final only
//! after midnight) — and they are recorded per gateway, agent and day ([`rollup`] reads them,
//! pure). The counters `usage_tokens_total{gateway_id,kind}` and
//! `usage_cost_usd_total{gateway_id}` grow by what each report adds. 2026.9.6's `usage.cost`
//! has no per-model breakdown, so neither has the roll-up (docs/design.md, *Usage and cost*).
//! The same rows answer `GET /api/usage` and the budget check before a spawn.

pub mod rollup;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use prometheus::{CounterVec, IntCounterVec, Opts, Registry};
use serde_json::{Value, json};

use super::FleetError;
use super::context::FleetContext;
use crate::config::UsageConfig;
use crate::db::usage::UsageRow;
use gateway_supervisor_actors::bounded;
use gateway_supervisor_actors::model::GatewayId;

/// Gateways read at once.
const CONCURRENCY: usize = 8;

/// Agents asked about per gateway and round.
const MAX_AGENTS: usize = 100;

/// `YYYY-MM-DD` (UTC) of `t`.
pub fn day_of(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()[..10].to_owned()
}

/// Today (UTC).
pub fn today() -> String {
    day_of(SystemTime::now())
}

/// `YYYY-MM-DD` (UTC) `days` before today.
pub fn days_ago(days: u64) -> String {
    day_of(SystemTime::now() - Duration::from_secs(days.saturating_mul(86_400)))
}

#[derive(Clone)]
pub struct UsageMetrics {
    tokens: IntCounterVec,
    cost: CounterVec,
    refused: IntCounterVec,
}

impl UsageMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        Ok(UsageMetrics {
            tokens: IntCounterVec::new(
                Opts::new(
                    "usage_tokens_total",
                    "Tokens the gateways report used (usage.cost), by gateway and kind (input, output, cache_read, cache_write), counted as reports come.",
                ),
                &["gateway_id", "kind"],
            )?,
            cost: CounterVec::new(
                Opts::new(
                    "usage_cost_usd_total",
                    "Cost in US dollars the gateways report (usage.cost), by gateway, counted as reports come.",
                ),
                &["gateway_id"],
            )?,
            refused: IntCounterVec::new(
                Opts::new(
                    "usage_entries_refused_total",
                    "Day entries of usage.cost answers left out as out of range (no real date, a negative or unbelievable count, a cost that is not a number), by gateway.",
                ),
                &["gateway_id"],
            )?,
        })
    }

    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.tokens.clone()))?;
        registry.register(Box::new(self.cost.clone()))?;
        registry.register(Box::new(self.refused.clone()))
    }

    fn refused(&self, gateway: GatewayId, n: usize) {
        if n > 0 {
            self.refused
                .with_label_values(&[gateway.to_string().as_str()])
                .inc_by(n as u64);
        }
    }

    fn add(&self, grown: &UsageRow) {
        let g = grown.gateway_id.to_string();
        for (kind, n) in [
            ("input", grown.input_tokens),
            ("output", grown.output_tokens),
            ("cache_read", grown.cache_read_tokens),
            ("cache_write", grown.cache_write_tokens),
        ] {
            if n > 0 {
                self.tokens
                    .with_label_values(&[g.as_str(), kind])
                    .inc_by(n.unsigned_abs());
            }
        }
        if grown.cost_micros > 0 {
            self.cost
                .with_label_values(&[g.as_str()])
                .inc_by(grown.cost_micros as f64 / 1e6);
        }
    }
}

/// Why usage refuses, or could not be read.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// The agent spent its daily budget.
    #[error(
        "agent `{}` spent its daily budget: ${:.2} of ${:.2} on {} (UTC); new spawns are refused until the day is over or usage.budgets.{}.daily_usd is raised",
        .0.agent, .0.spent_usd, .0.budget_usd, .0.day, .0.agent
    )]
    OverBudget(rollup::OverBudget),
    #[error(transparent)]
    Fleet(#[from] FleetError),
}

impl super::ServiceError for UsageError {
    fn outcome(&self) -> &'static str {
        match self {
            UsageError::OverBudget(_) => "over_budget",
            UsageError::Fleet(e) => e.outcome(),
        }
    }

    fn shared(&self) -> Option<&FleetError> {
        match self {
            UsageError::Fleet(e) => Some(e),
            _ => None,
        }
    }
}

/// Usage and cost read from the gateways and rolled up; the per-agent daily budgets
/// (`usage.budgets`, US dollars) a spawn is checked against.
#[derive(Clone)]
pub struct Usage {
    ctx: Arc<FleetContext>,
    budgets: Arc<std::collections::BTreeMap<String, f64>>,
    /// A run ended: read the fleet's usage soon rather than at the next `usage.interval`
    /// (5 minutes: the Usage page stayed empty after two completed runs).
    ran: Arc<tokio::sync::Notify>,
}

/// The soonest a run's end brings the next read after the last one: a fleet finishing
/// hundreds of runs a minute is read at most this often (a read is `agents.list` and one
/// `usage.cost` per agent, per gateway).
const AFTER_A_RUN: std::time::Duration = std::time::Duration::from_secs(10);

impl Usage {
    pub fn new(ctx: Arc<FleetContext>, budgets: std::collections::BTreeMap<String, f64>) -> Self {
        Usage {
            ctx,
            budgets: Arc::new(budgets),
            ran: Arc::default(),
        }
    }

    /// A run ended (a spawn was recorded over): its tokens and cost are read soon.
    pub fn run_ended(&self) {
        self.ran.notify_one();
    }

    /// Rolls usage up while the daemon runs: every `usage.interval`, and within
    /// [`AFTER_A_RUN`] of a run's end.
    pub async fn usage_loop(self, cfg: UsageConfig, metrics: UsageMetrics) {
        if !cfg.enabled {
            return;
        }
        let mut tick = tokio::time::interval(cfg.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut backfilled: HashSet<GatewayId> = HashSet::new();
        let mut last = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = self.ran.notified() => {
                    tokio::time::sleep_until(last + AFTER_A_RUN.min(cfg.interval)).await;
                }
            }
            last = tokio::time::Instant::now();
            if let Err(e) = self.usage_round(&cfg, &metrics, &mut backfilled).await {
                tracing::warn!(%e, "the usage roll-up could not look at the fleet this round");
            }
        }
    }

    async fn usage_round(
        &self,
        cfg: &UsageConfig,
        metrics: &UsageMetrics,
        backfilled: &mut HashSet<GatewayId>,
    ) -> Result<(), FleetError> {
        let reads: Vec<_> = self
            .ctx
            .targets()
            .linked_here()
            .into_iter()
            .filter(|t| t.offers("usage.cost"))
            .filter_map(|t| {
                let link = t.link.clone()?;
                let days = if backfilled.contains(&t.candidate.id) {
                    2
                } else {
                    cfg.backfill_days
                };
                Some(async move { (t.candidate.id, self.read_usage(&t, &link, days).await) })
            })
            .collect();
        // A few gateways at a time: one that does not answer holds up only its own read.
        let mut reports = futures_util::stream::iter(reads).buffer_unordered(CONCURRENCY);
        while let Some((id, (rows, complete, refused))) = reports.next().await {
            metrics.refused(id, refused);
            let grown = self
                .ctx
                .stored(move |store| store.record_usage(&rows))
                .await?;
            for g in &grown {
                metrics.add(g);
            }
            if complete {
                backfilled.insert(id);
            }
        }
        Ok(())
    }

    /// One gateway's last `days` per agent, and whether every agent answered.
    async fn read_usage(
        &self,
        t: &gateway_supervisor_actors::messages::GatewayTarget,
        link: &gateway_supervisor_actors::messages::GatewayLink,
        days: u32,
    ) -> (Vec<UsageRow>, bool, usize) {
        let id = t.candidate.id;
        let agents = if t.offers("agents.list") {
            match link
                .call("agents.list", Some(json!({})), self.ctx.deadlines.call)
                .await
            {
                Ok(answer) => agent_ids(&answer),
                Err(e) => {
                    tracing::debug!(gateway = %t.candidate.name, %e, "agents.list failed; usage next round");
                    return (Vec::new(), false, 0);
                }
            }
        } else {
            Vec::new()
        };
        let mut rows = Vec::new();
        let mut complete = true;
        let mut refused = 0;
        for agent in &agents {
            let params = json!({"agentId": agent, "days": days});
            match link
                .call("usage.cost", Some(params), self.ctx.deadlines.operation)
                .await
            {
                Ok(answer) => {
                    let found = rollup::day_rows(&answer, id, agent);
                    if found.refused > 0 {
                        // One line per agent and round at most; the count goes on the metric.
                        tracing::warn!(gateway = %t.candidate.name, agent = %gateway_supervisor_actors::bounded::text(agent, 128),
                            refused = found.refused,
                            "usage.cost reported day entries out of range (no real date, a negative or unbelievable count, a cost that is not a number): left out");
                        refused += found.refused;
                    }
                    rows.extend(found.rows);
                }
                Err(e) => {
                    complete = false;
                    tracing::debug!(gateway = %t.candidate.name, %e, "usage.cost failed; next round");
                }
            }
        }
        (rows, complete, refused)
    }

    /// Refuses a spawn for `agent` once its daily budget is spent (today, UTC, every gateway).
    pub(super) async fn check_budget(&self, agent: Option<&str>) -> Result<(), UsageError> {
        let Some(agent) = agent else {
            return Ok(());
        };
        let Some(budget) = self.budgets.get(agent).copied() else {
            return Ok(());
        };
        let day = today();
        let (a, d) = (agent.to_owned(), day.clone());
        let spent = self
            .ctx
            .stored(move |store| store.agent_cost_on(&a, &d))
            .await?;
        match rollup::over_budget(agent, &day, spent, Some(budget)) {
            Some(over) => Err(UsageError::OverBudget(over)),
            None => Ok(()),
        }
    }
}

/// The agent ids of an `agents.list` answer (plausible ids, at most [`MAX_AGENTS`]).
fn agent_ids(answer: &Value) -> Vec<String> {
    answer
        .get("agents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.get("id").and_then(Value::as_str))
        .filter_map(bounded::identifier)
        .filter(|a| a.len() <= bounded::SHORT)
        .take(MAX_AGENTS)
        .map(str::to_owned)
        .collect()
}
