//! Usage and cost per gateway, agent and day (`usage_daily`): each gateway's own `usage.cost`
//! daily totals, replaced by its next report of the same day. Recording returns how much each
//! row grew, which is what the counters add (a report never makes them go back).

use diesel::prelude::*;
use gateway_supervisor_actors::model::GatewayId;

use super::schema::usage_daily;
use super::{DbError, Store, unix_now};

/// One day of one agent on one gateway.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = usage_daily)]
pub struct UsageRow {
    pub gateway_id: GatewayId,
    pub agent_id: String,
    /// `YYYY-MM-DD`, the gateway's day.
    pub day: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub total_tokens: i64,
    pub cost_micros: i64,
    #[diesel(skip_insertion)]
    pub updated_at: i64,
}

impl UsageRow {
    /// What `self` adds over `before` (negative parts are 0: a smaller report is the gateway's
    /// correction, not negative use).
    pub fn growth_over(&self, before: Option<&UsageRow>) -> UsageRow {
        let d = |now: i64, was: fn(&UsageRow) -> i64| (now - before.map_or(0, was)).max(0);
        UsageRow {
            input_tokens: d(self.input_tokens, |b| b.input_tokens),
            output_tokens: d(self.output_tokens, |b| b.output_tokens),
            cache_read_tokens: d(self.cache_read_tokens, |b| b.cache_read_tokens),
            cache_write_tokens: d(self.cache_write_tokens, |b| b.cache_write_tokens),
            total_tokens: d(self.total_tokens, |b| b.total_tokens),
            cost_micros: d(self.cost_micros, |b| b.cost_micros),
            ..self.clone()
        }
    }
}

impl Store {
    /// Records `rows` (one gateway's report), each replacing its day; returns each row's growth.
    pub fn record_usage(&self, rows: &[UsageRow]) -> Result<Vec<UsageRow>, DbError> {
        let mut conn = self.conn()?;
        let now = unix_now();
        crate::db::write_tx::<_, DbError, _>(&mut conn, |c| {
            let mut grown = Vec::with_capacity(rows.len());
            for r in rows {
                let key =
                    usage_daily::table.find((r.gateway_id, r.agent_id.as_str(), r.day.as_str()));
                let before: Option<UsageRow> =
                    key.select(UsageRow::as_select()).first(c).optional()?;
                let values = (
                    usage_daily::input_tokens.eq(r.input_tokens),
                    usage_daily::output_tokens.eq(r.output_tokens),
                    usage_daily::cache_read_tokens.eq(r.cache_read_tokens),
                    usage_daily::cache_write_tokens.eq(r.cache_write_tokens),
                    usage_daily::total_tokens.eq(r.total_tokens),
                    usage_daily::cost_micros.eq(r.cost_micros),
                    usage_daily::updated_at.eq(now),
                );
                if before.is_some() {
                    diesel::update(key).set(values).execute(c)?;
                } else {
                    diesel::insert_into(usage_daily::table)
                        .values((
                            usage_daily::gateway_id.eq(r.gateway_id),
                            usage_daily::agent_id.eq(&r.agent_id),
                            usage_daily::day.eq(&r.day),
                            values,
                        ))
                        .execute(c)?;
                }
                grown.push(r.growth_over(before.as_ref()));
            }
            Ok(grown)
        })
    }

    /// Every row of the days `since..=until` (`YYYY-MM-DD`), at most `limit`.
    /// The daily rows from `since` to `until`, of the gateways `within` names (`None`: all).
    pub fn usage_between(
        &self,
        since: &str,
        until: &str,
        within: Option<&[GatewayId]>,
        limit: i64,
    ) -> Result<Vec<UsageRow>, DbError> {
        let mut conn = self.conn()?;
        let mut q = usage_daily::table
            .filter(usage_daily::day.ge(since))
            .filter(usage_daily::day.le(until))
            .into_boxed();
        if let Some(ids) = within {
            q = q.filter(usage_daily::gateway_id.eq_any(ids.to_vec()));
        }
        Ok(q.order((
            usage_daily::day,
            usage_daily::gateway_id,
            usage_daily::agent_id,
        ))
        .limit(limit)
        .select(UsageRow::as_select())
        .load(&mut conn)?)
    }

    /// What `agent` cost on `day`, across every gateway (micro-dollars).
    pub fn agent_cost_on(&self, agent: &str, day: &str) -> Result<i64, DbError> {
        let mut conn = self.conn()?;
        let costs: Vec<i64> = usage_daily::table
            .filter(usage_daily::agent_id.eq(agent))
            .filter(usage_daily::day.eq(day))
            .select(usage_daily::cost_micros)
            .load(&mut conn)?;
        Ok(costs.into_iter().sum())
    }
}
