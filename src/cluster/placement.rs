//! Which instance should link each gateway: rendezvous hashing with bounded loads. Every
//! gateway ranks the live instances by a hash of (instance, gateway) and goes to the first one
//! in its ranking that is not full; full is `ceil(1.1 × gateways / instances)`. The result is
//! deterministic (every instance computes the same answer from the same lists), balanced
//! (no instance above 110 % of even, so with three instances none below 80 %), and moves few
//! gateways when an instance joins or leaves (mostly the ones it gains or held). With
//! capacities ([`assign_within`]) no instance is given more than it can hold: its room is the
//! smaller of its capacity and 110 % of its fair share, and what no instance has room for is
//! `unplaced`, named, never dropped (the runner passes each live instance's advertised capacity). Pure: no
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

/// Each gateway (in id order) with the index of its instance in `instances` (of unbounded
/// capacity).
pub fn assign(gateways: &[GatewayId], instances: &[String]) -> Vec<(GatewayId, usize)> {
    let seats: Vec<Seat<'_>> = instances
        .iter()
        .map(|id| Seat {
            id,
            capacity: usize::MAX,
        })
        .collect();
    assign_within(gateways, &seats).placed
}

/// An instance as placement sees it: its id and how many gateways it can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seat<'a> {
    pub id: &'a str,
    pub capacity: usize,
}

/// Gateways placed over instances of bounded capacity.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Placement {
    /// Each placed gateway (in id order) with the index of its instance.
    pub placed: Vec<(GatewayId, usize)>,
    /// The gateways no instance has room for (the highest ids: the fleet beyond the cluster's
    /// capacity, in a stable order).
    pub unplaced: Vec<GatewayId>,
}

/// Each instance's fair share of `n` gateways, as water fills vessels: an instance that can
/// hold less than an even share holds what it can, the others share the rest evenly.
fn shares(n: usize, capacities: &[usize]) -> Vec<f64> {
    let total = capacities
        .iter()
        .fold(0usize, |a, c| a.saturating_add(*c))
        .min(n);
    let mut order: Vec<usize> = (0..capacities.len()).collect();
    order.sort_unstable_by_key(|i| capacities[*i]);
    let mut share = vec![0.0; capacities.len()];
    let (mut left, mut remaining) = (capacities.len(), total as f64);
    for i in order {
        let level = remaining / left as f64;
        share[i] = (capacities[i] as f64).min(level);
        remaining -= share[i];
        left -= 1;
    }
    share
}

/// Rendezvous with bounded loads over instances of bounded capacity: each gateway goes to the
/// first instance of its ranking with room, room being the smaller of its capacity and 110 %
/// of its fair share ([`shares`]). The bounds add up to at least the gateways the cluster can
/// hold, so a gateway is unplaced only when every instance is at its capacity.
pub fn assign_within(gateways: &[GatewayId], instances: &[Seat<'_>]) -> Placement {
    let mut sorted = gateways.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if instances.is_empty() {
        return Placement {
            placed: Vec::new(),
            unplaced: sorted,
        };
    }
    let capacities: Vec<usize> = instances.iter().map(|s| s.capacity).collect();
    let bound: Vec<usize> = shares(sorted.len(), &capacities)
        .iter()
        .zip(&capacities)
        .map(|(share, cap)| {
            let room = (share * (1.0 + SLACK)).ceil();
            let room = if room >= usize::MAX as f64 {
                usize::MAX
            } else {
                room as usize
            };
            room.max(1).min(*cap)
        })
        .collect();
    let seeds: Vec<u64> = instances.iter().map(|i| fnv1a(i.id.as_bytes())).collect();
    let mut load = vec![0usize; instances.len()];
    let mut ranking: Vec<(u64, usize)> = Vec::with_capacity(instances.len());
    let mut out = Placement::default();
    for g in sorted {
        ranking.clear();
        ranking.extend(
            seeds
                .iter()
                .enumerate()
                .map(|(i, seed)| (mix(seed ^ (g.get() as u64)), i)),
        );
        // Highest score first; ties (practically never) by instance order.
        ranking.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        match ranking
            .iter()
            .map(|(_, i)| *i)
            .find(|i| load[*i] < bound[*i])
        {
            Some(chosen) => {
                load[chosen] += 1;
                out.placed.push((g, chosen));
            }
            None => out.unplaced.push(g),
        }
    }
    out
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

    fn seats(names: &[String], capacities: &[usize]) -> Vec<(String, usize)> {
        names
            .iter()
            .cloned()
            .zip(capacities.iter().copied())
            .collect()
    }

    fn within(gateways: usize, seats: &[(String, usize)]) -> (Vec<usize>, usize) {
        let gateways: Vec<GatewayId> = (1..=gateways as i64).map(GatewayId).collect();
        let seats: Vec<Seat<'_>> = seats
            .iter()
            .map(|(id, capacity)| Seat {
                id,
                capacity: *capacity,
            })
            .collect();
        let p = assign_within(&gateways, &seats);
        let mut load = vec![0; seats.len()];
        for (_, i) in &p.placed {
            load[*i] += 1;
        }
        assert_eq!(p.placed.len() + p.unplaced.len(), gateways.len());
        (load, p.unplaced.len())
    }

    #[test]
    fn no_instance_is_given_more_than_it_can_hold_and_the_rest_is_unplaced() {
        // The case: 25,000 gateways on two instances of 10,000.
        let (load, unplaced) = within(25_000, &seats(&names(2), &[10_000, 10_000]));
        assert_eq!((load, unplaced), (vec![10_000, 10_000], 5_000));
        // A third joins: everything placed, none above its capacity or 110 % of even.
        let (load, unplaced) = within(25_000, &seats(&names(3), &[10_000, 10_000, 10_000]));
        assert_eq!(unplaced, 0);
        assert!(load.iter().all(|l| *l <= 9_167), "{load:?}");
    }

    #[test]
    fn a_small_instance_holds_what_it_can_and_the_others_share_the_rest_evenly() {
        let (load, unplaced) = within(1_500, &seats(&names(3), &[100, 1_000, 1_000]));
        assert_eq!(unplaced, 0);
        assert_eq!(load[0], 100, "{load:?}");
        for l in &load[1..] {
            assert!((560..=770).contains(l), "{load:?}: even is 700");
        }
        // Exactly the cluster's capacity: every seat full, nothing left over.
        let (load, unplaced) = within(2_100, &seats(&names(3), &[100, 1_000, 1_000]));
        assert_eq!((load, unplaced), (vec![100, 1_000, 1_000], 0));
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
