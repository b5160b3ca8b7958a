//! Disruption budgets (docs/design.md, *Disruption budgets*), Kubernetes' PodDisruptionBudget
//! for gateways: a budget covers the gateways its selector picks and bounds how many of them
//! may be out of service at once (`max_unavailable`) or how many must stay in service
//! (`min_available`). A voluntary disruption — a restart, an upgrade, a config change that
//! restarts, a drain, a suspend — is admitted only if every budget covering its gateway still
//! holds with that gateway out; gateways already out for any reason (an unplanned outage
//! included) count against the budget. Pure: the caller checks it in the same transaction that
//! records the step, so two instances cannot both spend the last unit.

use gateway_supervisor_actors::labels::{Labels, Selector};
use gateway_supervisor_actors::model::GatewayId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// At most this many of the covered gateways out of service at once.
    MaxUnavailable(u32),
    /// At least this many of the covered gateways in service.
    MinAvailable(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub name: String,
    pub selector: Selector,
    pub limit: Limit,
}

/// A gateway as a budget sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member<'a> {
    pub id: GatewayId,
    pub labels: &'a Labels,
    /// In service: connected, healthy, not held back, not being disrupted.
    pub available: bool,
}

/// Why a disruption must wait.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("disruption budget `{budget}`: {why}")]
pub struct Refusal {
    pub budget: String,
    pub why: String,
}

/// Whether `target` may be taken out of service now. A gateway already out costs nothing more.
pub fn admit(budgets: &[Budget], fleet: &[Member<'_>], target: GatewayId) -> Result<(), Refusal> {
    let Some(t) = fleet.iter().find(|m| m.id == target) else {
        return Ok(());
    };
    if !t.available {
        return Ok(());
    }
    for b in budgets.iter().filter(|b| b.selector.matches(t.labels)) {
        let covered: Vec<&Member> = fleet
            .iter()
            .filter(|m| b.selector.matches(m.labels))
            .collect();
        let out = covered.iter().filter(|m| !m.available).count();
        let total = covered.len();
        let (after_out, after_in) = (out + 1, total - out - 1);
        let refused = match b.limit {
            Limit::MaxUnavailable(n) if after_out > n as usize => Some(format!(
                "{out} of its {total} gateways are out of service and at most {n} may be; taking gateway {target} out would make {after_out}"
            )),
            Limit::MinAvailable(n) if after_in < n as usize => Some(format!(
                "{} of its {total} gateways are in service and at least {n} must be; taking gateway {target} out would leave {after_in}",
                total - out
            )),
            _ => None,
        };
        if let Some(why) = refused {
            return Err(Refusal {
                budget: b.name.clone(),
                why,
            });
        }
    }
    Ok(())
}

/// Whether `limit` can ever be met by the `covered` gateways its selector picks now: a
/// `min_available` larger than them refuses every voluntary disruption for ever (a drain, a
/// restart, an upgrade), so it is refused when the budget is saved. Checked by
/// `Budgets::put_budget` against the fleet as stored.
pub fn can_be_met(limit: Limit, covered: usize) -> Result<(), String> {
    match limit {
        Limit::MinAvailable(n) if n as usize > covered => Err(format!(
            "min_available {n} is more than the {covered} gateway(s) the selector picks: every \
             restart, drain and upgrade of them would be refused for ever"
        )),
        _ => Ok(()),
    }
}

/// How many more of the covered gateways may be taken out now, `available` of `covered` in
/// service: never more than are in service (a `max_unavailable` of 10 over 2 gateways allows 2
/// disruptions, not 9).
pub fn disruptions_allowed(limit: Limit, covered: usize, available: usize) -> usize {
    let out = covered.saturating_sub(available);
    match limit {
        Limit::MaxUnavailable(n) => (n as usize).saturating_sub(out).min(available),
        Limit::MinAvailable(n) => available.saturating_sub(n as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(name: &str, selector: &str, limit: Limit) -> Budget {
        Budget {
            name: name.into(),
            selector: Selector::parse(selector).unwrap(),
            limit,
        }
    }

    fn eu() -> Labels {
        Labels::of([("region", "eu")]).unwrap()
    }

    #[test]
    fn a_disruption_within_every_budget_is_admitted() {
        let l = eu();
        let fleet: Vec<Member> = (1..=3)
            .map(|id| Member {
                id: GatewayId(id),
                labels: &l,
                available: true,
            })
            .collect();
        let b = [budget("eu", "region=eu", Limit::MaxUnavailable(1))];
        assert_eq!(admit(&b, &fleet, GatewayId(1)), Ok(()));
    }

    #[test]
    fn max_unavailable_refuses_the_one_too_many_and_an_outage_counts() {
        let l = eu();
        let mut fleet: Vec<Member> = (1..=3)
            .map(|id| Member {
                id: GatewayId(id),
                labels: &l,
                available: true,
            })
            .collect();
        fleet[1].available = false; // crashed: an unplanned outage
        let b = [budget("eu", "region=eu", Limit::MaxUnavailable(1))];
        let r = admit(&b, &fleet, GatewayId(1)).unwrap_err();
        assert_eq!(r.budget, "eu");
        assert_eq!(
            r.why,
            "1 of its 3 gateways are out of service and at most 1 may be; taking gateway 1 out would make 2"
        );
        assert_eq!(
            admit(&b, &fleet, GatewayId(2)),
            Ok(()),
            "already out: it costs nothing more"
        );
    }

    #[test]
    fn min_available_refuses_leaving_too_few() {
        let l = eu();
        let fleet: Vec<Member> = (1..=3)
            .map(|id| Member {
                id: GatewayId(id),
                labels: &l,
                available: id != 3,
            })
            .collect();
        let b = [budget("eu-floor", "region=eu", Limit::MinAvailable(2))];
        let r = admit(&b, &fleet, GatewayId(1)).unwrap_err();
        assert!(
            r.why
                .starts_with("2 of its 3 gateways are in service and at least 2 must be"),
            "{r}"
        );
    }

    #[test]
    fn only_budgets_covering_the_gateway_are_asked() {
        let (l, other) = (eu(), Labels::of([("region", "us")]).unwrap());
        let fleet = [
            Member {
                id: GatewayId(1),
                labels: &other,
                available: true,
            },
            Member {
                id: GatewayId(2),
                labels: &l,
                available: false,
            },
        ];
        let b = [budget("eu", "region=eu", Limit::MaxUnavailable(0))];
        assert_eq!(admit(&b, &fleet, GatewayId(1)), Ok(()));
    }

    #[test]
    fn a_budget_that_can_never_be_met_is_named_and_one_too_loose_allows_what_is_in_service() {
        assert!(can_be_met(Limit::MinAvailable(2), 2).is_ok());
        let e = can_be_met(Limit::MinAvailable(3), 2).unwrap_err();
        assert!(
            e.starts_with("min_available 3 is more than the 2 gateway(s)"),
            "{e}"
        );
        assert!(can_be_met(Limit::MaxUnavailable(10), 2).is_ok());
        assert_eq!(disruptions_allowed(Limit::MaxUnavailable(10), 2, 2), 2);
        assert_eq!(disruptions_allowed(Limit::MaxUnavailable(10), 2, 1), 1);
        assert_eq!(disruptions_allowed(Limit::MaxUnavailable(1), 3, 3), 1);
        assert_eq!(disruptions_allowed(Limit::MaxUnavailable(1), 3, 2), 0);
        assert_eq!(disruptions_allowed(Limit::MinAvailable(2), 3, 3), 1);
        assert_eq!(disruptions_allowed(Limit::MinAvailable(5), 3, 3), 0);
    }

    #[test]
    fn every_covering_budget_must_hold_and_the_first_broken_is_named() {
        let l = eu();
        let fleet: Vec<Member> = (1..=4)
            .map(|id| Member {
                id: GatewayId(id),
                labels: &l,
                available: true,
            })
            .collect();
        let b = [
            budget("loose", "", Limit::MaxUnavailable(3)),
            budget("tight", "region=eu", Limit::MinAvailable(4)),
        ];
        assert_eq!(admit(&b, &fleet, GatewayId(1)).unwrap_err().budget, "tight");
    }
}
