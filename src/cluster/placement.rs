//! Which instance should link each gateway: rendezvous hashing with bounded loads. Every
//! gateway ranks the live instances by a hash of (instance, gateway) and goes to the first one
//! in its ranking that is not full; full is `ceil(1.1 × gateways / instances)`. The result is
//! deterministic (every instance computes the same answer from the same lists), balanced
//! (no instance above 110 % of even, so with three instances none below 80 %), and moves few
//! gateways when an instance joins or leaves (mostly the ones it gains or held). Pure: no
//! clock, no database. Safety never rests on it — two instances that disagree for a moment
//! both ask for a lease and the database grants one (docs/design.md, *Cluster*).

use gateway_supervisor_actors::model::GatewayId;

/// How far above an even share an instance may be filled.
const SLACK: f64 = 0.10;

/// The gateways `me` should link: `gateways` placed over `instances` (the live ones, `me`
/// among them or not).
pub fn mine(me: &str, gateways: &[GatewayId], instances: &[String]) -> Vec<GatewayId> {
    let Some(me_index) = instances.iter().position(|i| i == me) else {
        return Vec::new();
    };
    assign(gateways, instances)
        .into_iter()
        .filter(|(_, owner)| *owner == me_index)
        .map(|(g, _)| g)
        .collect()
}

/// Each gateway (in id order) with the index of its instance in `instances`.
pub fn assign(gateways: &[GatewayId], instances: &[String]) -> Vec<(GatewayId, usize)> {
    if instances.is_empty() {
        return Vec::new();
    }
    let mut sorted = gateways.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let capacity = ((sorted.len() as f64 / instances.len() as f64) * (1.0 + SLACK)).ceil();
    let capacity = (capacity as usize).max(1);
    let seeds: Vec<u64> = instances.iter().map(|i| fnv1a(i.as_bytes())).collect();
    let mut load = vec![0usize; instances.len()];
    let mut ranking: Vec<(u64, usize)> = Vec::with_capacity(instances.len());
    sorted
        .into_iter()
        .map(|g| {
            ranking.clear();
            ranking.extend(
                seeds
                    .iter()
                    .enumerate()
                    .map(|(i, seed)| (mix(seed ^ (g.get() as u64)), i)),
            );
            // Highest score first; ties (practically never) by instance order.
            ranking.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let chosen = ranking
                .iter()
                .map(|(_, i)| *i)
                .find(|i| load[*i] < capacity)
                .unwrap_or(ranking[0].1);
            load[chosen] += 1;
            (g, chosen)
        })
        .collect()
}

/// FNV-1a: a stable hash (the same in every build and process) — of an instance id here, of
/// a query in the gateway reads' `ETag`s (`http/etag.rs`).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// splitmix64's finalizer: spreads (instance, gateway) pairs evenly.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("host{i}-0a1b2c3d")).collect()
    }

    fn loads(gateways: &[GatewayId], instances: &[String]) -> Vec<usize> {
        let mut load = vec![0; instances.len()];
        for (_, i) in assign(gateways, instances) {
            load[i] += 1;
        }
        load
    }

    #[test]
    fn every_gateway_has_exactly_one_instance_and_all_agree() {
        let gateways: Vec<GatewayId> = (1..=500).map(GatewayId).collect();
        let instances = names(3);
        let mut seen = Vec::new();
        for me in &instances {
            seen.extend(mine(me, &gateways, &instances));
        }
        seen.sort_unstable();
        assert_eq!(seen, gateways);
        // The order of the lists does not matter.
        let mut shuffled = gateways.clone();
        shuffled.reverse();
        assert_eq!(
            mine(&instances[1], &shuffled, &instances),
            mine(&instances[1], &gateways, &instances)
        );
    }

    #[test]
    fn loads_stay_within_twenty_percent_of_even() {
        for (n, k) in [(300, 3), (10_000, 3), (301, 2), (1000, 3), (30, 3)] {
            let gateways: Vec<GatewayId> = (1..=n).map(GatewayId).collect();
            let instances = names(k);
            let even = n as f64 / k as f64;
            for load in loads(&gateways, &instances) {
                let ratio = load as f64 / even;
                assert!((0.8..=1.2).contains(&ratio), "{n} on {k}: {load} vs {even}");
            }
        }
    }

    #[test]
    fn an_instance_leaving_moves_little_else() {
        let gateways: Vec<GatewayId> = (1..=3000).map(GatewayId).collect();
        let three = names(3);
        let two = names(2);
        let before = assign(&gateways, &three);
        let after = assign(&gateways, &two);
        // Gateways that were on instance 0 or 1 and stay there.
        let stayed = before
            .iter()
            .zip(&after)
            .filter(|((_, b), (_, a))| *b < 2 && b == a)
            .count();
        let were_on_survivors = before.iter().filter(|(_, b)| *b < 2).count();
        assert!(
            stayed as f64 >= 0.8 * were_on_survivors as f64,
            "{stayed} of {were_on_survivors} stayed"
        );
    }

    #[test]
    fn nobody_live_means_nobody_places() {
        assert_eq!(
            mine("a", &[GatewayId(1), GatewayId(2)], &[]),
            Vec::<GatewayId>::new()
        );
        assert_eq!(
            mine("a", &[GatewayId(1), GatewayId(2)], &["b".into()]),
            Vec::<GatewayId>::new()
        );
        assert_eq!(
            mine("a", &[GatewayId(1), GatewayId(2)], &["a".into()]),
            vec![GatewayId(1), GatewayId(2)]
        );
    }
}
