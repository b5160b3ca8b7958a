//! The cluster as an operator reads it (`GET /api/cluster`, `gateway-supervisor cluster
//! status`): each instance with its heartbeat age, whether gateways are placed on it, and how
//! many it links. Facts in (the database's rows), summary out.

use serde::Serialize;

use crate::db::cluster::{InstanceRow, LeaseRow};

/// One instance, as `GET /api/cluster` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct InstanceSummary {
    pub instance_id: String,
    pub advertise_url: Option<String>,
    /// Milliseconds since its last heartbeat (the database's clock).
    pub heartbeat_age_ms: i64,
    /// A heartbeat within the lease TTL and not stopping: gateways are placed on it.
    pub live: bool,
    /// It stopped cleanly and gave its leases up.
    pub stopping: bool,
    /// Gateways whose unexpired lease it holds.
    pub gateways: usize,
    /// How many gateways it can link (absent: a previous version, placed as unbounded).
    pub capacity: Option<i64>,
}

/// Each instance, as of the rows read.
pub fn instances(rows: Vec<InstanceRow>, leases: &[LeaseRow], ttl_ms: i64) -> Vec<InstanceSummary> {
    rows.into_iter()
        .map(|i| InstanceSummary {
            gateways: leases
                .iter()
                .filter(|l| l.owner == i.instance_id && l.expires_in_ms > 0)
                .count(),
            live: i.heartbeat_age_ms < ttl_ms && !i.stopping,
            instance_id: i.instance_id,
            advertise_url: i.advertise_url,
            heartbeat_age_ms: i.heartbeat_age_ms,
            stopping: i.stopping,
            capacity: i.capacity,
        })
        .collect()
}

/// Gateways nobody links right now: of `gateways`, those without an unexpired lease.
pub fn unowned(leases: &[LeaseRow], gateways: i64) -> usize {
    let owned = leases.iter().filter(|l| l.expires_in_ms > 0).count();
    usize::try_from(gateways).unwrap_or(0).saturating_sub(owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_supervisor_actors::model::GatewayId;

    fn instance(id: &str, age: i64, stopping: bool) -> InstanceRow {
        InstanceRow {
            instance_id: id.into(),
            advertise_url: None,
            heartbeat_age_ms: age,
            stopping,
            capacity: None,
        }
    }

    fn lease(gateway: i64, owner: &str, left: i64) -> LeaseRow {
        LeaseRow {
            gateway_id: GatewayId(gateway),
            owner: owner.into(),
            epoch: 1,
            expires_in_ms: left,
        }
    }

    #[test]
    fn an_instance_is_live_while_its_heartbeat_is_fresh_and_it_is_not_stopping() {
        let leases = [lease(1, "a", 5000), lease(2, "a", -10), lease(3, "b", 100)];
        let got = instances(
            vec![
                instance("a", 200, false),
                instance("b", 20_000, false),
                instance("c", 10, true),
            ],
            &leases,
            15_000,
        );
        let summary: Vec<(&str, bool, usize)> = got
            .iter()
            .map(|i| (i.instance_id.as_str(), i.live, i.gateways))
            .collect();
        assert_eq!(
            summary,
            vec![("a", true, 1), ("b", false, 1), ("c", false, 0)]
        );
        // Gateway 2's lease expired, and a fourth gateway was never leased.
        assert_eq!(unowned(&leases, 4), 2);
    }
}
