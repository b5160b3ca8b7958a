//! The version inventory: the fleet grouped by what each gateway's last handshake said it runs
//! (release, build, protocol). A gateway's connection facts live with the instance that links
//! it, so each instance groups its own gateways ([`inventory`]) and a cluster-wide answer merges
//! the instances' parts ([`merge`]); a gateway nobody links is counted as unknown, never left out.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use gateway_supervisor_actors::model::{GatewayId, GatewayView};

/// The gateways that run one release and build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VersionGroup {
    /// `null`: no handshake yet (never connected, or linked by no instance).
    pub version: Option<String>,
    pub build_id: Option<String>,
    pub protocol: Option<u32>,
    pub count: usize,
    /// In id order.
    pub gateway_ids: Vec<GatewayId>,
}

type Key = (Option<String>, Option<String>, Option<u32>);

/// Groups the gateways this instance links by what their last handshake said, the largest
/// group first (then by version). A gateway another instance links is not this part's.
pub fn inventory(views: &[std::sync::Arc<GatewayView>]) -> Vec<VersionGroup> {
    let mut groups: BTreeMap<Key, BTreeSet<GatewayId>> = BTreeMap::new();
    for v in views.iter().filter(|v| v.connection.state.is_some()) {
        let c = &v.connection;
        groups
            .entry((c.server_version.clone(), c.build_id.clone(), c.protocol))
            .or_default()
            .insert(v.record.id);
    }
    ordered(groups)
}

/// The instances' parts as one inventory; every gateway of `all` in it once (a gateway in no
/// part, or in a part only as unknown while another knows it, is placed once: known first).
pub fn merge(parts: Vec<Vec<VersionGroup>>, all: &[GatewayId]) -> Vec<VersionGroup> {
    let mut groups: BTreeMap<Key, BTreeSet<GatewayId>> = BTreeMap::new();
    let mut placed = BTreeSet::new();
    let mut known_first: Vec<VersionGroup> = parts.into_iter().flatten().collect();
    known_first.sort_by_key(|g| g.version.is_none());
    for g in known_first {
        for id in g.gateway_ids {
            if all.contains(&id) && placed.insert(id) {
                groups
                    .entry((g.version.clone(), g.build_id.clone(), g.protocol))
                    .or_default()
                    .insert(id);
            }
        }
    }
    for id in all.iter().filter(|id| !placed.contains(*id)) {
        groups.entry((None, None, None)).or_default().insert(*id);
    }
    ordered(groups)
}

fn ordered(groups: BTreeMap<Key, BTreeSet<GatewayId>>) -> Vec<VersionGroup> {
    let mut out: Vec<VersionGroup> = groups
        .into_iter()
        .map(|((version, build_id, protocol), ids)| VersionGroup {
            version,
            build_id,
            protocol,
            count: ids.len(),
            gateway_ids: ids.into_iter().collect(),
        })
        .collect();
    out.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.version.is_none().cmp(&b.version.is_none()))
            .then_with(|| a.version.cmp(&b.version))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(version: Option<&str>, ids: &[GatewayId]) -> VersionGroup {
        VersionGroup {
            version: version.map(str::to_owned),
            build_id: version.map(|v| format!("{v}-build")),
            protocol: version.map(|_| 4),
            count: ids.len(),
            gateway_ids: ids.to_vec(),
        }
    }

    #[test]
    fn parts_merge_into_one_group_per_release_largest_first() {
        let a = vec![
            group(Some("2026.9.6"), &[GatewayId(1), GatewayId(2)]),
            group(Some("2026.3.31"), &[GatewayId(3)]),
        ];
        let b = vec![group(Some("2026.9.6"), &[GatewayId(4)])];
        let merged = merge(
            vec![a, b],
            &[GatewayId(1), GatewayId(2), GatewayId(3), GatewayId(4)],
        );
        assert_eq!(
            merged[0],
            group(
                Some("2026.9.6"),
                &[GatewayId(1), GatewayId(2), GatewayId(4)]
            )
        );
        assert_eq!(merged[1], group(Some("2026.3.31"), &[GatewayId(3)]));
        assert_eq!(merged.len(), 2);
    }

    #[test]
    fn a_gateway_in_no_part_is_unknown_and_a_known_one_is_not_counted_twice() {
        // 5 is linked by nobody; 2 is unknown on one instance (its link just started) and
        // known on another; 9 was deleted since a part was taken.
        let a = vec![group(
            Some("2026.9.6"),
            &[GatewayId(1), GatewayId(2), GatewayId(9)],
        )];
        let b = vec![group(None, &[GatewayId(2)])];
        let merged = merge(vec![b, a], &[GatewayId(1), GatewayId(2), GatewayId(5)]);
        assert_eq!(
            merged[0],
            group(Some("2026.9.6"), &[GatewayId(1), GatewayId(2)])
        );
        assert_eq!(merged[1], group(None, &[GatewayId(5)]));
        let total: usize = merged.iter().map(|g| g.count).sum();
        assert_eq!(total, 3, "each gateway once");
    }
}
