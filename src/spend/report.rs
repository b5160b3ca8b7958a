//! Cost per key (docs/design.md, *Spend*): each spawn's settled cost, attributed to the key and
//! the tenant that made it, grouped as `GET /api/usage/spend` asks. Pure.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::Serialize;

use crate::db::spend::SpendEntry;
use crate::domain::LedgerState;

/// What a report groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpendBy {
    Key,
    Tenant,
    Agent,
    Gateway,
    Day,
}

impl FromStr for SpendBy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "key" => Ok(SpendBy::Key),
            "tenant" => Ok(SpendBy::Tenant),
            "agent" => Ok(SpendBy::Agent),
            "gateway" => Ok(SpendBy::Gateway),
            "day" => Ok(SpendBy::Day),
            other => Err(format!(
                "`{}` is not a grouping (key, tenant, agent, gateway, day)",
                gateway_supervisor_actors::bounded::text(other, 32)
            )),
        }
    }
}

/// One group's spend.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SpendGroup {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    #[serde(flatten)]
    pub totals: SpendTotals,
}

/// Spend summed: settled runs at their gateways' numbers (estimates from their price tables),
/// runs going or settled without one at their estimates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SpendTotals {
    pub cost_usd: f64,
    /// Runs made.
    pub runs: i64,
    /// Of them, counted at their estimate (going, or their gateway gave no number).
    pub estimated_runs: i64,
    #[serde(skip)]
    cost_micros: i64,
}

impl SpendTotals {
    fn add(&mut self, e: &SpendEntry) {
        let (micros, estimated) = match (e.state, e.cost_micros) {
            (LedgerState::Settled, Some(c)) => (c, false),
            _ => (e.estimate_micros, true),
        };
        self.cost_micros = self.cost_micros.saturating_add(micros);
        self.cost_usd = self.cost_micros as f64 / 1e6;
        self.runs += 1;
        self.estimated_runs += i64::from(estimated || e.estimated);
    }

    pub fn cost_micros(&self) -> i64 {
        self.cost_micros
    }
}

/// `YYYY-MM-DD` (UTC) of Unix second `t`.
fn utc_day(t: i64) -> String {
    crate::domain::spend::window::day_of(t, &jiff::tz::TimeZone::UTC)
        .map(|d| d.to_string())
        .unwrap_or_default()
}

type Key = (
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
);

/// `entries` summed per distinct value of `by` (one group when `by` is empty), in key order;
/// and the whole. A day is the UTC day the spawn was made.
pub fn group(entries: &[SpendEntry], by: &[SpendBy]) -> (Vec<SpendGroup>, SpendTotals) {
    let mut groups: BTreeMap<Key, SpendTotals> = BTreeMap::new();
    let mut all = SpendTotals::default();
    for e in entries {
        let key = (
            if by.contains(&SpendBy::Key) {
                e.key_id
            } else {
                None
            },
            by.contains(&SpendBy::Tenant).then(|| e.tenant.clone()),
            if by.contains(&SpendBy::Agent) {
                e.agent.clone()
            } else {
                None
            },
            by.contains(&SpendBy::Gateway).then_some(e.gateway_id),
            by.contains(&SpendBy::Day).then(|| utc_day(e.created_at)),
        );
        groups.entry(key).or_default().add(e);
        all.add(e);
    }
    let groups = groups
        .into_iter()
        .map(
            |((key_id, tenant, agent_id, gateway_id, day), totals)| SpendGroup {
                key_id,
                tenant,
                agent_id,
                gateway_id,
                day,
                totals,
            },
        )
        .collect();
    (groups, all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: i64, tenant: &str, state: LedgerState, cost: Option<i64>) -> SpendEntry {
        SpendEntry {
            key_id: Some(key),
            tenant: tenant.into(),
            agent: Some("main".into()),
            gateway_id: 1,
            state,
            estimate_micros: 500_000,
            cost_micros: cost,
            estimated: cost.is_none(),
            created_at: 1_795_900_000,
        }
    }

    #[test]
    fn spend_is_attributed_to_the_key_and_tenant_that_made_it() {
        let entries = [
            entry(1, "blue", LedgerState::Settled, Some(250_000)),
            entry(1, "blue", LedgerState::Reserved, None),
            entry(2, "red", LedgerState::Settled, Some(100_000)),
            entry(2, "red", LedgerState::Settled, None),
        ];
        let (groups, all) = group(&entries, &[SpendBy::Key]);
        assert_eq!(groups.len(), 2);
        assert_eq!(
            (
                groups[0].key_id,
                groups[0].totals.cost_usd,
                groups[0].totals.runs
            ),
            (Some(1), 0.75, 2)
        );
        assert_eq!(
            groups[0].totals.estimated_runs, 1,
            "the run going is at its estimate"
        );
        assert_eq!(
            (groups[1].totals.cost_usd, groups[1].totals.estimated_runs),
            (0.6, 1)
        );
        assert_eq!(all.cost_micros(), 1_350_000);
        let (by_tenant, _) = group(&entries, &[SpendBy::Tenant, SpendBy::Day]);
        assert_eq!(by_tenant[0].tenant.as_deref(), Some("blue"));
        assert_eq!(by_tenant[0].day.as_deref(), Some("2026-11-28"));
        assert!("team".parse::<SpendBy>().unwrap_err().contains("`team`"));
    }
}
