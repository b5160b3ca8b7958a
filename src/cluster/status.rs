//! The cluster as an operator reads it (`GET /api/cluster`, `gateway-supervisor cluster
//! status`): each instance with its heartbeat age, whether gateways are placed on it, and how
//! many it links. Facts in (the database's rows), summary out.

use std::collections::HashMap;

use serde::Serialize;

use crate::db::cluster::InstanceRow;

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

/// Each instance, as of the rows read, with `held`: how many leases each holds now.
pub fn instances(
    rows: Vec<InstanceRow>,
    held: &HashMap<String, usize>,
    ttl_ms: i64,
) -> Vec<InstanceSummary> {
    rows.into_iter()
        .map(|i| InstanceSummary {
            gateways: held.get(&i.instance_id).copied().unwrap_or(0),
            live: i.heartbeat_age_ms < ttl_ms && !i.stopping,
            instance_id: i.instance_id,
            advertise_url: i.advertise_url,
            heartbeat_age_ms: i.heartbeat_age_ms,
            stopping: i.stopping,
            capacity: i.capacity,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: &str, age: i64, stopping: bool) -> InstanceRow {
        InstanceRow {
            instance_id: id.into(),
            advertise_url: None,
            heartbeat_age_ms: age,
            stopping,
            capacity: None,
            epoch: 1,
        }
    }

    #[test]
    fn an_instance_is_live_while_its_heartbeat_is_fresh_and_it_is_not_stopping() {
        let held = HashMap::from([("a".to_owned(), 1), ("b".to_owned(), 1)]);
        let got = instances(
            vec![
                instance("a", 200, false),
                instance("b", 20_000, false),
                instance("c", 10, true),
            ],
            &held,
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
    }
}
