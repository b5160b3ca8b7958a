//! Disruption budgets (docs/design.md, *Disruption budgets*): stored budgets, their state, and
//! the check every voluntary disruption passes — a rolling restart's, a drain's, an upgrade's
//! and a restarting config change's gateway as it is started, a suspend and a restart asked
//! through the API. The check ([`rule::admit`]) runs in the store's transaction that records
//! the disruption in the ledger, so two instances cannot both spend the last unit; gateways
//! out of service for any reason (offline, suspended, in maintenance, disrupted) count.

pub mod rule;

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::FleetError;
use crate::db::budgets::{AdmitError, BudgetRecord, BudgetView, DisruptionRecord};
use gateway_supervisor_actors::labels::{Labels, Selector};
use gateway_supervisor_actors::model::{Caller, GatewayId, GatewayStatus};
use rule::{Budget, Limit, Member, Refusal};
use std::sync::Arc;

use super::context::FleetContext;

/// The longest budget name (a label value's syntax: it names the budget in URLs and errors).
pub const NAME_MAX: usize = 63;
/// What a refused disruption is told to wait when nothing says when a unit frees.
const RETRY_DEFAULT_S: u64 = 30;

/// What takes a gateway out of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisruptionKind {
    Restart,
    Drain,
    Upgrade,
    Suspend,
    ConfigRestart,
}

impl DisruptionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DisruptionKind::Restart => "restart",
            DisruptionKind::Drain => "drain",
            DisruptionKind::Upgrade => "upgrade",
            DisruptionKind::Suspend => "suspend",
            DisruptionKind::ConfigRestart => "config_restart",
        }
    }
}

/// A budget as asked for.
#[derive(Debug, Clone)]
pub struct BudgetSpec {
    pub selector: String,
    pub limit: Limit,
    pub note: Option<String>,
}

/// A budget and how it stands now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BudgetStatus {
    pub name: String,
    pub selector: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_available: Option<u32>,
    pub note: Option<String>,
    /// How many gateways it covers, and how many of them are in service.
    pub covered: usize,
    pub available: usize,
    /// How many more may be taken out now.
    pub disruptions_allowed: usize,
    /// The covered gateways out of service now (for any reason), in id order.
    pub unavailable: Vec<GatewayId>,
    pub updated_at_ms: i64,
    pub updated_by: String,
}

/// Why a budget was refused; the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

fn in_service(g: &crate::db::budgets::GatewayState, view: &BudgetView) -> bool {
    let status: GatewayStatus = g.status.parse().unwrap_or_default();
    status.reachable()
        && !g.suspended
        && !g.in_maintenance
        && !view.disruptions.iter().any(|d| d.gateway_id == g.id)
}

fn budget_of(r: &BudgetRecord) -> Option<Budget> {
    let limit = match (r.max_unavailable, r.min_available) {
        (Some(n), None) => Limit::MaxUnavailable(u32::try_from(n).ok()?),
        (None, Some(n)) => Limit::MinAvailable(u32::try_from(n).ok()?),
        _ => return None,
    };
    Some(Budget {
        name: r.name.clone(),
        selector: Selector::parse(&r.selector).ok()?,
        limit,
    })
}

/// Each gateway's labels and whether it is in service. The `target` of a disruption is in
/// service unless it is suspended or in maintenance: the caller reaches it now, and its stored
/// status may not say so yet (it is written a moment after the link's) — read as out, it would
/// be disrupted for free while it is not out at all.
fn fleet_of(view: &BudgetView, target: Option<GatewayId>) -> Vec<(GatewayId, Labels, bool)> {
    view.gateways
        .iter()
        .map(|g| {
            let available = if Some(g.id) == target {
                !g.suspended && !g.in_maintenance
            } else {
                in_service(g, view)
            };
            (
                g.id,
                serde_json::from_str(&g.labels).unwrap_or_default(),
                available,
            )
        })
        .collect()
}

/// Whether `target` may be taken out of service as `view` stands.
fn check(view: &BudgetView, target: GatewayId) -> Result<(), (Refusal, u64)> {
    let budgets: Vec<Budget> = view.budgets.iter().filter_map(budget_of).collect();
    let fleet = fleet_of(view, Some(target));
    let members: Vec<Member> = fleet
        .iter()
        .map(|(id, labels, available)| Member {
            id: *id,
            labels,
            available: *available,
        })
        .collect();
    rule::admit(&budgets, &members, target).map_err(|refusal| {
        // When the soonest disruption it covers must be over, at the latest.
        let covered = budgets
            .iter()
            .find(|b| b.name == refusal.budget)
            .map(|b| b.selector.clone());
        let now = gateway_supervisor_actors::unix_now_ms();
        let soonest = view
            .disruptions
            .iter()
            .filter(|d| {
                fleet.iter().any(|(id, labels, _)| {
                    *id == d.gateway_id && covered.as_ref().is_some_and(|s| s.matches(labels))
                })
            })
            .map(|d| d.expires_ms.saturating_sub(now))
            .min();
        let retry = soonest.map_or(RETRY_DEFAULT_S, |ms| {
            u64::try_from(ms / 1000)
                .unwrap_or(1)
                .clamp(1, RETRY_DEFAULT_S)
        });
        (refusal, retry)
    })
}

fn status_of(r: &BudgetRecord, view: &BudgetView) -> BudgetStatus {
    let fleet = fleet_of(view, None);
    let selector = Selector::parse(&r.selector).ok();
    let covered: Vec<&(GatewayId, Labels, bool)> = fleet
        .iter()
        .filter(|(_, labels, _)| selector.as_ref().is_some_and(|s| s.matches(labels)))
        .collect();
    let available = covered.iter().filter(|(_, _, a)| *a).count();
    let allowed = budget_of(r).map_or(0, |b| {
        rule::disruptions_allowed(b.limit, covered.len(), available)
    });
    BudgetStatus {
        name: r.name.clone(),
        selector: r.selector.clone(),
        max_unavailable: r.max_unavailable.and_then(|n| u32::try_from(n).ok()),
        min_available: r.min_available.and_then(|n| u32::try_from(n).ok()),
        note: r.note.clone(),
        covered: covered.len(),
        available,
        disruptions_allowed: allowed,
        unavailable: covered
            .iter()
            .filter(|(_, _, a)| !*a)
            .map(|(id, _, _)| *id)
            .collect(),
        updated_at_ms: r.updated_at_ms,
        updated_by: r.updated_by.clone(),
    }
}

/// A budget name: 1–63 lower-case letters, digits and `-`, a letter or digit at each end.
pub fn check_name(name: &str) -> Result<(), Invalid> {
    if gateway_supervisor_actors::labels::is_dns_label(name) {
        Ok(())
    } else {
        Err(Invalid {
            field: "name",
            message: "a budget name is 1–63 lower-case letters, digits and `-`, beginning and ending with a letter or digit".into(),
        })
    }
}

/// The stored disruption budgets, and the check every voluntary disruption passes.
#[derive(Clone)]
pub struct Budgets {
    ctx: Arc<FleetContext>,
}

impl Budgets {
    pub fn new(ctx: Arc<FleetContext>) -> Self {
        Budgets { ctx }
    }
    /// Every budget, in name order, with how it stands.
    pub async fn budgets(&self) -> Result<Vec<BudgetStatus>, FleetError> {
        let view = self.ctx.stored(|s| s.budget_view()).await?;
        Ok(view.budgets.iter().map(|b| status_of(b, &view)).collect())
    }

    /// Creates or replaces budget `name`; it as it stands, and whether it was created.
    pub async fn put_budget(
        &self,
        name: &str,
        spec: BudgetSpec,
        by: &Caller,
    ) -> Result<Result<(BudgetStatus, bool), Invalid>, FleetError> {
        if let Err(e) = check_name(name) {
            return Ok(Err(e));
        }
        let selector = match Selector::parse(&spec.selector) {
            Ok(s) => s,
            Err(e) => {
                return Ok(Err(Invalid {
                    field: "selector",
                    message: e.to_string(),
                }));
            }
        };
        let view = self.ctx.stored(|s| s.budget_view()).await?;
        let covered = fleet_of(&view, None)
            .iter()
            .filter(|(_, labels, _)| selector.matches(labels))
            .count();
        if let Err(message) = rule::can_be_met(spec.limit, covered) {
            return Ok(Err(Invalid {
                field: "min_available",
                message,
            }));
        }
        let count = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        let (max_unavailable, min_available) = match spec.limit {
            Limit::MaxUnavailable(n) => (Some(count(n)), None),
            Limit::MinAvailable(n) => (None, Some(count(n))),
        };
        let record = BudgetRecord {
            name: name.to_owned(),
            selector: selector.to_string(),
            max_unavailable,
            min_available,
            note: spec.note,
            updated_at_ms: gateway_supervisor_actors::unix_now_ms(),
            updated_by: by.label.clone(),
        };
        let (written, by) = (record.clone(), by.clone());
        let created = self
            .ctx
            .stored(move |s| s.put_budget(&written, &by))
            .await?;
        let view = self.ctx.stored(|s| s.budget_view()).await?;
        Ok(Ok((status_of(&record, &view), created)))
    }

    /// Deletes budget `name`; whether there was one.
    pub async fn delete_budget(&self, name: &str, by: &Caller) -> Result<bool, FleetError> {
        let (key, by) = (name.to_owned(), by.clone());
        self.ctx.stored(move |s| s.delete_budget(&key, &by)).await
    }

    /// Admits taking gateway `id` out of service (`kind`, for `operation` when one does it)
    /// for at most `hold` — or refuses, naming the budget and when to ask again.
    pub async fn admit_disruption(
        &self,
        id: GatewayId,
        kind: DisruptionKind,
        operation: Option<&str>,
        by: &Caller,
        hold: std::time::Duration,
    ) -> Result<(), FleetError> {
        let now = gateway_supervisor_actors::unix_now_ms();
        let d = DisruptionRecord {
            gateway_id: id,
            kind: kind.as_str().to_owned(),
            operation_id: operation.map(str::to_owned),
            admitted_by: by.label.clone(),
            since_ms: now,
            expires_ms: now.saturating_add(i64::try_from(hold.as_millis()).unwrap_or(i64::MAX)),
        };
        let admitted = self
            .ctx
            .store
            .call(move |store| Ok(store.admit_disruption(&d, |view| check(view, id))))
            .await
            .map_err(FleetError::Storage)?;
        match admitted {
            Ok(()) => Ok(()),
            Err(AdmitError::Db(e)) => Err(FleetError::Storage(e)),
            Err(AdmitError::Refused((refusal, retry_after_secs))) => Err(FleetError::Disruption {
                message: format!(
                    "{} of gateway {id} refused: {refusal}; try again in {retry_after_secs} s",
                    kind.as_str()
                ),
                details: json!({"budget": refusal.budget, "gateway_id": id, "kind": kind.as_str()}),
                retry_after_secs,
            }),
        }
    }

    /// Ends gateway `id`'s disruption (`operation`'s only, when given).
    pub async fn release_disruption(&self, id: GatewayId, operation: Option<&str>) {
        let op = operation.map(str::to_owned);
        let released = self
            .ctx
            .stored(move |s| s.release_disruption(id, op.as_deref()))
            .await;
        if let Err(e) = released {
            tracing::warn!(gateway_id = id.get(), %e, "could not end a disruption; it lapses by itself");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::budgets::GatewayState;

    fn gateway(id: GatewayId, status: &str) -> GatewayState {
        GatewayState {
            id,
            labels: "{}".into(),
            status: status.into(),
            suspended: false,
            in_maintenance: false,
        }
    }

    fn view(gateways: Vec<GatewayState>, disrupted: &[GatewayId]) -> BudgetView {
        BudgetView {
            budgets: vec![BudgetRecord {
                name: "one".into(),
                selector: String::new(),
                max_unavailable: Some(1),
                min_available: None,
                note: None,
                updated_at_ms: 0,
                updated_by: "test".into(),
            }],
            gateways,
            disruptions: disrupted
                .iter()
                .map(|id| DisruptionRecord {
                    gateway_id: *id,
                    kind: "restart".into(),
                    operation_id: None,
                    admitted_by: "test".into(),
                    since_ms: 0,
                    expires_ms: i64::MAX,
                })
                .collect(),
        }
    }

    /// Found in CI: a gateway whose stored status had not caught up with its link (still
    /// `unknown`) was read as out already and disrupted for free, two out under a budget of 1.
    #[test]
    fn a_target_whose_stored_status_lags_is_not_disrupted_for_free() {
        let v = view(
            vec![
                gateway(GatewayId(1), "online"),
                gateway(GatewayId(2), "unknown"),
                gateway(GatewayId(3), "online"),
            ],
            &[GatewayId(1)],
        );
        let (refusal, _) = check(&v, GatewayId(2)).expect_err("gateway 1 is out already");
        assert_eq!(refusal.budget, "one");
    }

    #[test]
    fn a_target_in_maintenance_is_out_already_and_costs_nothing_more() {
        let mut g = gateway(GatewayId(2), "online");
        g.in_maintenance = true;
        let v = view(vec![gateway(GatewayId(1), "online"), g], &[GatewayId(1)]);
        assert!(check(&v, GatewayId(2)).is_ok());
    }

    #[test]
    fn another_gateway_offline_counts_against_the_budget() {
        let v = view(
            vec![
                gateway(GatewayId(1), "offline"),
                gateway(GatewayId(2), "online"),
            ],
            &[],
        );
        assert!(check(&v, GatewayId(2)).is_err());
        let v = view(
            vec![
                gateway(GatewayId(1), "online"),
                gateway(GatewayId(2), "online"),
            ],
            &[],
        );
        assert!(check(&v, GatewayId(2)).is_ok());
    }
}
