//! A round's decisions, pure: where placement puts the fleet, what to take and what to
//! release, and what the round leaves behind once the database answered. The shell
//! ([`super::round`]) reads the heartbeat, asks the registry and the database, and carries
//! these out; every rule here is a unit test below.

use std::collections::{BTreeSet, HashMap, HashSet};

use tracing::warn;

use super::Member;
use crate::cluster::placement::{self, Seat};
use crate::db::cluster::Heartbeat;
use gateway_supervisor_actors::model::GatewayId;

/// Where this round puts the fleet.
pub(super) struct Placed {
    /// The gateways this instance should link.
    pub wanted: BTreeSet<GatewayId>,
    pub unplaced_count: usize,
    /// The first of the gateways no instance has room for.
    pub unplaced: Vec<GatewayId>,
}

/// Placement over the live instances' capacities. A managed gateway listens on its host's
/// loopback: only an instance on that host can link it, so it is never placed, and its host's
/// instances ask for it. A joining instance's first round only announces it (its heartbeat):
/// instances started together then see each other before any takes a lease, and the fleet is
/// placed once over all of them — not taken whole by the first and two thirds handed over.
pub(super) fn place(m: &Member, beat: &Heartbeat, pinned: &HashMap<GatewayId, String>) -> Placed {
    let seats: Vec<Seat<'_>> = beat
        .live
        .iter()
        .map(|i| Seat {
            id: &i.instance_id,
            capacity: i
                .capacity
                .and_then(|c| usize::try_from(c).ok())
                .unwrap_or(usize::MAX),
        })
        .collect();
    let placeable: Vec<GatewayId> = m
        .gateways
        .iter()
        .copied()
        .filter(|g| !pinned.contains_key(g))
        .collect();
    let placement = placement::assign_within(&placeable, &seats);
    let me_index = beat.live.iter().position(|i| i.instance_id == m.me);
    let mut wanted: BTreeSet<GatewayId> = BTreeSet::new();
    if m.announced {
        wanted.extend(
            placement
                .placed
                .iter()
                .filter(|(_, i)| Some(*i) == me_index)
                .map(|(g, _)| *g),
        );
        wanted.extend(
            m.gateways
                .iter()
                .filter(|g| pinned.get(g).is_some_and(|h| *h == m.host_id)),
        );
    }
    Placed {
        wanted,
        unplaced_count: placement.unplaced.len(),
        unplaced: placement
            .unplaced
            .into_iter()
            .take(crate::cluster::UNPLACED_LISTED)
            .collect(),
    }
}

/// The gateways placed here and not held yet: the first `pace` of them (the brake's), and no
/// more than `room` (see [`room`]).
pub(super) fn to_take(
    held: &HashMap<GatewayId, u64>,
    wanted: &BTreeSet<GatewayId>,
    pace: usize,
    room: usize,
) -> Vec<GatewayId> {
    wanted
        .iter()
        .filter(|g| !held.contains_key(g))
        .take(pace.min(room))
        .copied()
        .collect()
}

/// The leases an instance holds through a round besides those it takes: every one of its
/// epoch before placement dropped any (`held`: a lease dropped now is released next round,
/// once its link closed), and those given up before that this round does not `release` (their
/// links still closing) unless placed here again (then taken, and counted as taken).
pub(super) fn holding(
    held: &HashMap<GatewayId, u64>,
    to_release: &[GatewayId],
    release: &[GatewayId],
    wanted: &BTreeSet<GatewayId>,
) -> usize {
    let release: HashSet<&GatewayId> = release.iter().collect();
    held.len()
        + to_release
            .iter()
            .filter(|id| !release.contains(id) && !wanted.contains(id) && !held.contains_key(id))
            .count()
}

/// How many leases a round may take within the instance's `capacity` (`None`: unbounded),
/// given those it is `holding`: the leases an instance holds never outnumber what it can
/// link. Placement alone kept the gateways it *wants* within capacity, but an instance whose
/// share moved took its new gateways in the round that dropped the old ones, and held both
/// until the next: 177 leases at a capacity of 120 when a second instance joined, 139 when a
/// third left (`gs-bench capacity --smoke`, 2026-11-30). Now the new ones wait a round.
///
/// `unsure`: the last round's writes may have landed unseen (its database call failed or timed
/// out after a take went through, or the database failed over), so what it holds is known
/// only once this round compared with the database: it takes nothing.
pub(super) fn room(capacity: Option<u64>, holding: usize, unsure: bool) -> usize {
    if unsure {
        return 0;
    }
    capacity.map_or(usize::MAX, |c| {
        usize::try_from(c)
            .unwrap_or(usize::MAX)
            .saturating_sub(holding)
    })
}

/// The leases dropped earlier that are released now: only those whose links are gone (a link
/// still closing keeps its lease one more round; its guard stops it touching the gateway in
/// any case), and never one placed here again — this round takes or holds it, and released in
/// the same round it would be linked here with its lease free for anyone.
pub(super) fn release_now(
    to_release: &[GatewayId],
    still_open: &[GatewayId],
    wanted: &BTreeSet<GatewayId>,
) -> Vec<GatewayId> {
    to_release
        .iter()
        .filter(|id| !still_open.contains(id) && !wanted.contains(id))
        .copied()
        .collect()
}

/// What a round leaves for the next.
#[derive(Debug, PartialEq)]
pub(super) struct Settled {
    /// The leases held now, with their fencing epochs (the registry links exactly these).
    pub held: HashMap<GatewayId, u64>,
    /// Released at the next round: dropped this round, still closing at this one (unless
    /// held again), or held without being known and not placed here.
    pub to_release: Vec<GatewayId>,
    /// Taken this round under an epoch not held before (audited and counted), by id.
    pub adopted: Vec<(GatewayId, u64)>,
}

/// The round's bookkeeping once the database answered: `held` is what the round kept of the
/// last one's leases (those still placed here), `before` the last round's, `taken` what the
/// take returned and `recorded` what the database says this instance holds, when it compared.
pub(super) fn settle(
    before: &HashMap<GatewayId, u64>,
    mut held: HashMap<GatewayId, u64>,
    taken: &HashMap<GatewayId, u64>,
    recorded: Option<&HashMap<GatewayId, u64>>,
    wanted: &BTreeSet<GatewayId>,
    still_open: &[GatewayId],
) -> Settled {
    held.extend(taken.iter().map(|(id, epoch)| (*id, *epoch)));
    let strays = match recorded {
        Some(recorded) => compare_held(&mut held, recorded, wanted),
        None => Vec::new(),
    };
    let to_release = before
        .keys()
        .filter(|id| !held.contains_key(id))
        .chain(still_open.iter().filter(|id| !held.contains_key(id)))
        .chain(strays.iter())
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut adopted: Vec<(GatewayId, u64)> = taken
        .iter()
        .filter(|(id, epoch)| before.get(id) != Some(epoch))
        .map(|(id, epoch)| (*id, *epoch))
        .collect();
    adopted.sort_unstable();
    Settled {
        held,
        to_release,
        adopted,
    }
}

/// Brings `held` in line with what the database `recorded` this instance holds: a lease it
/// holds without knowing (a take whose answer was lost) is linked when placed here, else
/// returned to be released; one it thinks it holds and does not is dropped (its link stops).
fn compare_held(
    held: &mut HashMap<GatewayId, u64>,
    recorded: &HashMap<GatewayId, u64>,
    wanted: &BTreeSet<GatewayId>,
) -> Vec<GatewayId> {
    let mut strays = Vec::new();
    for (id, epoch) in recorded {
        if !held.contains_key(id) {
            if wanted.contains(id) {
                held.insert(*id, *epoch);
            } else {
                strays.push(*id);
            }
        }
    }
    let before = held.len();
    held.retain(|id, epoch| recorded.get(id) == Some(epoch));
    if held.len() < before || !strays.is_empty() {
        warn!(
            lost = before - held.len(),
            strays = strays.len(),
            "the leases held differed from the database's: brought in line"
        );
    }
    strays
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: &[i64]) -> BTreeSet<GatewayId> {
        n.iter().map(|i| GatewayId(*i)).collect()
    }

    fn leases(l: &[(i64, u64)]) -> HashMap<GatewayId, u64> {
        l.iter().map(|(g, e)| (GatewayId(*g), *e)).collect()
    }

    fn gateways(n: &[i64]) -> Vec<GatewayId> {
        n.iter().map(|i| GatewayId(*i)).collect()
    }

    #[test]
    fn a_lease_held_unknowingly_is_linked_when_placed_here_and_released_when_not() {
        // Memory: 1 and 2. The database: 1, 2 under a newer fencing epoch, 3 and 4 (takes whose
        // answers were lost). Placed here: 1, 2, 3.
        let mut held = leases(&[(1, 5), (2, 1)]);
        let recorded = leases(&[(1, 5), (2, 2), (3, 7), (4, 1)]);
        let strays = compare_held(&mut held, &recorded, &ids(&[1, 2, 3]));
        assert_eq!(strays, [GatewayId(4)]);
        // 2's link ran under epoch 1, which is not the lease's: it stops (and 2 is taken
        // again by the next round, under the epoch the database has).
        let mut now: Vec<(i64, u64)> = held.iter().map(|(g, e)| (g.get(), *e)).collect();
        now.sort_unstable();
        assert_eq!(now, [(1, 5), (3, 7)]);
    }

    #[test]
    fn a_round_takes_only_what_it_does_not_hold_at_the_brakes_pace_and_within_room() {
        let held = leases(&[(2, 1)]);
        assert_eq!(to_take(&held, &ids(&[1, 2, 3, 4]), 2, 9), gateways(&[1, 3]));
        assert_eq!(to_take(&held, &ids(&[1, 2, 3, 4]), 9, 1), gateways(&[1]));
        assert_eq!(to_take(&held, &ids(&[2]), 2, 9), gateways(&[]));
    }

    #[test]
    fn an_instance_whose_share_moved_takes_the_new_only_as_the_old_are_released() {
        // Capacity 3. It held 1, 2, 3; placement now wants 3, 4, 5 (1 and 2 went elsewhere).
        let wanted = ids(&[3, 4, 5]);
        let held = leases(&[(1, 1), (2, 1), (3, 1)]);
        // This round drops 1 and 2 (released next round, once their links closed): full.
        let now = holding(&held, &[], &[], &wanted);
        assert_eq!((now, room(Some(3), now, false)), (3, 0));
        let kept = leases(&[(3, 1)]);
        assert_eq!(
            to_take(&kept, &wanted, 1_000, room(Some(3), now, false)),
            gateways(&[])
        );
        // Next round: 1 released, 2's link still closing — one free.
        let now = holding(&kept, &gateways(&[1, 2]), &gateways(&[1]), &wanted);
        assert_eq!((now, room(Some(3), now, false)), (2, 1));
        assert_eq!(to_take(&kept, &wanted, 1_000, 1), gateways(&[4]));
        // A lease given up and placed here again is taken, not counted twice.
        let now = holding(&kept, &gateways(&[4]), &[], &wanted);
        assert_eq!(now, 1);
        // Unbounded: no limit but the pace.
        assert_eq!(room(None, 1_000_000, false), usize::MAX);
        // After a round whose take may have landed unseen: nothing until compared.
        assert_eq!(room(None, 0, true), 0);
    }

    #[test]
    fn a_lease_is_released_once_its_link_is_gone_and_never_when_placed_here_again() {
        // 1: its link closed; 2: still closing; 3: placed here again since it was dropped.
        assert_eq!(
            release_now(&gateways(&[1, 2, 3]), &gateways(&[2]), &ids(&[3, 9])),
            gateways(&[1])
        );
    }

    #[test]
    fn what_a_round_drops_is_released_next_and_only_new_epochs_count_as_adopted() {
        // Last round held 1, 2 and 3; this one keeps 1 (still placed here), took 1 again
        // unwritten (same epoch), took 4 and 5; 6 was still closing last round.
        let before = leases(&[(1, 3), (2, 1), (3, 1)]);
        let kept = leases(&[(1, 3)]);
        let taken = leases(&[(1, 3), (4, 2), (5, 1)]);
        let s = settle(
            &before,
            kept,
            &taken,
            None,
            &ids(&[1, 4, 5]),
            &gateways(&[6]),
        );
        assert_eq!(s.held, leases(&[(1, 3), (4, 2), (5, 1)]));
        assert_eq!(s.to_release, gateways(&[2, 3, 6]));
        assert_eq!(s.adopted, [(GatewayId(4), 2), (GatewayId(5), 1)]);
    }

    #[test]
    fn a_compared_round_releases_the_strays_and_drops_what_the_database_does_not_record() {
        // Memory held 1 and 2; the database records 1 and 7 (a lost take, not placed here):
        // 2 is dropped (its link stops) and released next round with 7.
        let before = leases(&[(1, 1), (2, 1)]);
        let recorded = leases(&[(1, 1), (7, 4)]);
        let s = settle(
            &before,
            before.clone(),
            &HashMap::new(),
            Some(&recorded),
            &ids(&[1, 2]),
            &[],
        );
        assert_eq!(s.held, leases(&[(1, 1)]));
        assert_eq!(s.to_release, gateways(&[2, 7]));
        assert!(s.adopted.is_empty());
    }
}
