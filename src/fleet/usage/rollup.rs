//! Usage and cost, pure: a gateway's `usage.cost` answer read into day rows (2026.9.6:
//! `{days, daily: [{date, input, output, cacheRead, cacheWrite, totalTokens, totalCost, …}],
//! totals, cacheStatus}`, one agent per call), rows grouped as `GET /api/usage` asks, and the
//! budget rule a spawn meets. A hostile answer cannot plant a bad day, a negative count or an
//! absurd cost: such entries are left out.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::Serialize;
use serde_json::Value;

use gateway_supervisor_actors::model::GatewayId;

use crate::db::usage::UsageRow;

/// Tokens beyond this in one day are not believed (no agent uses 10¹⁵ a day).
const MAX_TOKENS: f64 = 1e15;
/// Dollars beyond this in one day are not believed.
const MAX_USD: f64 = 1e9;

/// A real day written `YYYY-MM-DD` (not `2026-13-45`; any year 0000–9999).
pub fn is_day(s: &str) -> bool {
    day_number(s).is_some()
}

/// Days since 1970-01-01 of a real day written `YYYY-MM-DD` (Howard Hinnant's
/// days-from-civil), `None` for anything else.
pub fn day_number(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (
        s[..4].parse().ok()?,
        s[5..7].parse().ok()?,
        s[8..].parse().ok()?,
    );
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=days_in_month).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

fn tokens(entry: &Value, key: &str) -> Option<i64> {
    match entry.get(key) {
        None | Some(Value::Null) => Some(0),
        Some(v) => v
            .as_f64()
            .filter(|n| n.is_finite() && (0.0..=MAX_TOKENS).contains(n))
            .map(|n| n.round() as i64),
    }
}

/// Dollars to micro-dollars, if believable.
fn micros(entry: &Value, key: &str) -> Option<i64> {
    match entry.get(key) {
        None | Some(Value::Null) => Some(0),
        Some(v) => v
            .as_f64()
            .filter(|n| n.is_finite() && (0.0..=MAX_USD).contains(n))
            .map(|usd| (usd * 1e6).round() as i64),
    }
}

/// What one agent's `usage.cost` answer gave: its day rows (days without use left out), and
/// how many day entries were refused (no real date, a negative or unbelievable count, a cost
/// that is not a number) — said in the log and counted, never silently dropped.
#[derive(Debug, Default)]
pub struct DayRows {
    pub rows: Vec<UsageRow>,
    pub refused: usize,
}

/// The day rows of one agent's `usage.cost` answer.
pub fn day_rows(answer: &Value, gateway_id: GatewayId, agent: &str) -> DayRows {
    let Some(daily) = answer.get("daily").and_then(Value::as_array) else {
        return DayRows::default();
    };
    let mut refused = 0;
    let rows = daily
        .iter()
        .take(400)
        .filter_map(|d| {
            let row = day_row(d, gateway_id, agent);
            refused += usize::from(row.is_none());
            let row = row?;
            let used = row.total_tokens > 0 || row.input_tokens > 0 || row.cost_micros > 0;
            used.then_some(row)
        })
        .collect();
    DayRows { rows, refused }
}

/// One day entry, if every figure in it is believable.
fn day_row(d: &Value, gateway_id: GatewayId, agent: &str) -> Option<UsageRow> {
    let day = d
        .get("date")
        .and_then(Value::as_str)
        .filter(|s| is_day(s))?;
    Some(UsageRow {
        gateway_id,
        agent_id: agent.to_owned(),
        day: day.to_owned(),
        input_tokens: tokens(d, "input")?,
        output_tokens: tokens(d, "output")?,
        cache_read_tokens: tokens(d, "cacheRead")?,
        cache_write_tokens: tokens(d, "cacheWrite")?,
        total_tokens: tokens(d, "totalTokens")?,
        cost_micros: micros(d, "totalCost")?,
        updated_at: 0,
    })
}

/// What rows are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Gateway,
    Agent,
    Day,
}

impl FromStr for GroupBy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "gateway" => Ok(GroupBy::Gateway),
            "agent" => Ok(GroupBy::Agent),
            "day" => Ok(GroupBy::Day),
            other => Err(format!(
                "`{}` is not a grouping (gateway, agent, day)",
                gateway_supervisor_actors::bounded::text(other, 32)
            )),
        }
    }
}

/// Sums, as the API shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Totals {
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub total_tokens: i64,
    pub cost_usd: f64,
    #[serde(skip)]
    cost_micros: i64,
}

impl Totals {
    fn add(&mut self, r: &UsageRow) {
        self.input_tokens += r.input_tokens;
        self.output_tokens += r.output_tokens;
        self.cache_read_tokens += r.cache_read_tokens;
        self.cache_write_tokens += r.cache_write_tokens;
        self.total_tokens += r.total_tokens;
        self.cost_micros += r.cost_micros;
        self.cost_usd = self.cost_micros as f64 / 1e6;
    }
}

/// One group: its keys (only those grouped by) and its sums.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Group {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_id: Option<GatewayId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    #[serde(flatten)]
    pub totals: Totals,
}

/// A group's gateway, agent and day (each `None` when not grouped by).
type GroupKey = (Option<GatewayId>, Option<String>, Option<String>);

/// `rows` summed per distinct value of `by` (all of them together when `by` is empty), in key
/// order, and the grand total.
pub fn group(rows: &[UsageRow], by: &[GroupBy]) -> (Vec<Group>, Totals) {
    let mut groups: BTreeMap<GroupKey, Totals> = BTreeMap::new();
    let mut all = Totals::default();
    for r in rows {
        let key = (
            by.contains(&GroupBy::Gateway).then_some(r.gateway_id),
            by.contains(&GroupBy::Agent).then(|| r.agent_id.clone()),
            by.contains(&GroupBy::Day).then(|| r.day.clone()),
        );
        groups.entry(key).or_default().add(r);
        all.add(r);
    }
    let groups = groups
        .into_iter()
        .map(|((gateway_id, agent_id, day), totals)| Group {
            gateway_id,
            agent_id,
            day,
            totals,
        })
        .collect();
    (groups, all)
}

/// A spawn refused because its agent spent its budget.
#[derive(Debug, Clone, PartialEq)]
pub struct OverBudget {
    pub agent: String,
    pub day: String,
    pub budget_usd: f64,
    pub spent_usd: f64,
}

/// Whether `agent`, having spent `spent_micros` on `day`, may start more work under a daily
/// budget of `budget_usd` (none: always). At the budget is over it.
pub fn over_budget(
    agent: &str,
    day: &str,
    spent_micros: i64,
    budget_usd: Option<f64>,
) -> Option<OverBudget> {
    let budget = budget_usd?;
    let budget_micros = (budget * 1e6).round() as i64;
    (spent_micros >= budget_micros).then(|| OverBudget {
        agent: agent.to_owned(),
        day: day.to_owned(),
        budget_usd: budget,
        spent_usd: spent_micros as f64 / 1e6,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An answer as 2026.9.6 shapes it (`finishCostUsageSummary`).
    fn answer() -> Value {
        json!({"updatedAt": 1, "days": 2, "daily": [
            {"date": "2026-11-22", "input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0, "totalTokens": 0, "totalCost": 0,
             "inputCost": 0, "outputCost": 0, "cacheReadCost": 0, "cacheWriteCost": 0, "missingCostEntries": 0},
            {"date": "2026-11-23", "input": 1200, "output": 300, "cacheRead": 50, "cacheWrite": 0, "totalTokens": 1550, "totalCost": 0.0123,
             "inputCost": 0.01, "outputCost": 0.0023, "cacheReadCost": 0, "cacheWriteCost": 0, "missingCostEntries": 0}],
            "totals": {"input": 1200}, "cacheStatus": {"status": "fresh"}})
    }

    #[test]
    fn a_real_answer_gives_the_days_with_use() {
        let rows = day_rows(&answer(), GatewayId(3), "main").rows;
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(
            (r.gateway_id, r.agent_id.as_str(), r.day.as_str()),
            (GatewayId(3), "main", "2026-11-23")
        );
        assert_eq!(
            (
                r.input_tokens,
                r.output_tokens,
                r.cache_read_tokens,
                r.total_tokens
            ),
            (1200, 300, 50, 1550)
        );
        assert_eq!(r.cost_micros, 12_300);
    }

    #[test]
    fn hostile_entries_are_left_out() {
        let bad = json!({"daily": [
            {"date": "2026-11-23'; drop", "totalTokens": 5},
            {"date": "2026-11-23", "totalTokens": -5},
            {"date": "2026-11-23", "totalTokens": 1e20},
            {"date": "2026-11-23", "totalTokens": 5, "totalCost": "lots"},
            {"date": "2026-11-24", "totalTokens": 7, "totalCost": 0.5}]});
        let found = day_rows(&bad, GatewayId(1), "a");
        let rows = &found.rows;
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].day, "2026-11-24");
        assert_eq!(found.refused, 4, "each refused entry is counted");
        assert!(
            day_rows(&json!({"daily": "no"}), GatewayId(1), "a")
                .rows
                .is_empty()
        );
        assert!(is_day("2024-02-29") && !is_day("2026-02-29") && !is_day("2026-13-01"));
        assert!(is_day("0039-11-23") && is_day("2000-02-29") && !is_day("1900-02-29"));
        assert_eq!(day_number("1970-01-01"), Some(0));
        assert_eq!(day_number("2026-11-23"), Some(20_780));
        assert_eq!(day_number("0039-11-23"), Some(-704_957));
    }

    #[test]
    fn rows_are_grouped_as_asked_with_a_grand_total() {
        let row = |g, a: &str, d: &str, t, c| UsageRow {
            gateway_id: g,
            agent_id: a.into(),
            day: d.into(),
            input_tokens: 0,
            output_tokens: 0,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            total_tokens: t,
            cost_micros: c,
            updated_at: 0,
        };
        let rows = [
            row(GatewayId(1), "main", "2026-11-22", 10, 1_000_000),
            row(GatewayId(1), "main", "2026-11-23", 20, 500_000),
            row(GatewayId(2), "main", "2026-11-23", 5, 250_000),
            row(GatewayId(2), "ops", "2026-11-23", 1, 0),
        ];
        let (by_agent, all) = group(&rows, &[GroupBy::Agent]);
        assert_eq!(by_agent.len(), 2);
        assert_eq!(by_agent[0].agent_id.as_deref(), Some("main"));
        assert_eq!(by_agent[0].gateway_id, None);
        assert_eq!(by_agent[0].totals.total_tokens, 35);
        assert!((by_agent[0].totals.cost_usd - 1.75).abs() < 1e-9);
        assert_eq!(all.total_tokens, 36);
        let (by_gw_day, _) = group(&rows, &[GroupBy::Gateway, GroupBy::Day]);
        assert_eq!(by_gw_day.len(), 3);
        let (one, _) = group(&rows, &[]);
        assert_eq!(one.len(), 1);
        assert!(GroupBy::from_str("model").unwrap_err().contains("model"));
    }

    #[test]
    fn a_budget_is_spent_at_its_amount() {
        assert_eq!(over_budget("main", "2026-11-23", 999_999, Some(1.0)), None);
        let over = over_budget("main", "2026-11-23", 1_000_000, Some(1.0)).unwrap();
        assert_eq!((over.budget_usd, over.spent_usd), (1.0, 1.0));
        assert_eq!(over_budget("main", "2026-11-23", i64::MAX, None), None);
    }
}
