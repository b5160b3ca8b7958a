//! In a cluster: links follow the leases this instance holds, a lapsed round stops them all,
//! the coordinator elects and the others follow, and rows other instances wrote arrive.

use std::time::{Duration, Instant};

use super::*;
use crate::election::Reason;
use crate::registry::{InstanceBeat, LeaseOwner};

/// A cluster member holding nothing yet, started at `t0`.
fn member(records: Vec<GatewayRecord>) -> (Harness, Instant) {
    let t0 = Instant::now();
    let mut h = Harness::loaded(records);
    h.state.leased(t0, "a");
    h.apply(Input::Started);
    (h, t0)
}

/// A renewal round at `now`: leases on `held` (gateway, epoch) for 15 s.
fn round(
    held: &[(GatewayId, u64)],
    coordinator: bool,
    acting: Option<GatewayId>,
    now: Instant,
) -> Input {
    leases(held, coordinator, acting, now, &[])
}

/// A round as [`round`], with the heartbeats it read (instance, epoch, Unix s).
fn leases(
    held: &[(GatewayId, u64)],
    coordinator: bool,
    acting: Option<GatewayId>,
    now: Instant,
    beats: &[(&str, u64, i64)],
) -> Input {
    Input::Leases {
        held: held.iter().copied().collect(),
        valid_until: now + Duration::from_secs(15),
        coordinator,
        acting,
        now,
        beats: beats
            .iter()
            .map(|(instance, epoch, at)| InstanceBeat {
                instance: (*instance).into(),
                epoch: *epoch,
                at: *at,
            })
            .collect(),
    }
}

/// A member's round at `now` renewing gateways 1 and 2 under epoch 1.
fn both_leased(now: Instant) -> Input {
    round(&[(GatewayId(1), 1), (GatewayId(2), 1)], false, None, now)
}

#[test]
fn a_member_links_nothing_and_nobody_acts_until_it_holds_a_lease() {
    let (h, _) = member(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    assert_eq!(h.state.linked_ids().count(), 0);
    assert!(h.flagged().is_empty());
}

#[test]
fn a_lease_starts_a_link_carrying_a_guard_valid_until_the_rounds_end() {
    let (mut h, t0) = member(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    let actions = h.apply(round(&[(GatewayId(2), 1)], false, None, t0));
    assert_eq!(starts(&actions), vec![GatewayId(2)]);
    let guard = h.targets[&GatewayId(2)]
        .lease
        .clone()
        .expect("a leased link carries its guard");
    assert!(guard.valid_at(t0 + Duration::from_secs(14)));
    assert!(!guard.valid_at(t0 + Duration::from_secs(15)));
}

#[test]
fn a_lease_renewed_moves_its_guard_and_one_lost_leaves_it_where_it_was() {
    let (mut h, t0) = member(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    h.apply(round(
        &[(GatewayId(1), 1), (GatewayId(2), 1)],
        false,
        None,
        t0,
    ));
    let t1 = t0 + Duration::from_secs(10);
    let actions = h.apply(round(&[(GatewayId(1), 1)], false, None, t1));
    assert_eq!(stops(&actions), vec![GatewayId(2)]);
    let later = t0 + Duration::from_secs(20);
    assert!(
        h.targets[&GatewayId(1)]
            .lease
            .as_ref()
            .unwrap()
            .valid_at(later)
    );
    assert!(
        !h.targets[&GatewayId(2)]
            .lease
            .as_ref()
            .unwrap()
            .valid_at(later)
    );
}

#[test]
fn a_lease_retaken_under_a_new_epoch_restarts_its_link() {
    let (mut h, t0) = member(vec![gw(GatewayId(1), true)]);
    h.apply(round(&[(GatewayId(1), 1)], false, None, t0));
    let first = h.state.epoch_of(GatewayId(1));
    let old_guard = h.targets[&GatewayId(1)].lease.clone().unwrap();
    let t1 = t0 + Duration::from_secs(5);
    let actions = h.apply(round(&[(GatewayId(1), 2)], false, None, t1));
    assert_eq!(
        (stops(&actions), starts(&actions)),
        (vec![GatewayId(1)], vec![GatewayId(1)])
    );
    assert_ne!(h.state.epoch_of(GatewayId(1)), first);
    // The old link is silent from now on, though its lease had 10 s left: found by the fault
    // run, where the old link (epoch 1), still stopping, dialled after the new one (epoch 2)
    // and the gateway saw the fencing epoch go back.
    assert!(!old_guard.valid_at(t1));
    assert!(
        h.targets[&GatewayId(1)]
            .lease
            .as_ref()
            .unwrap()
            .valid_at(t1)
    );
}

/// Found by the fault run (3,000 gateways, the database restarted): a round that lands after a
/// link's guard has passed, but before the fence check has seen the round's deadline go by,
/// must not revive that guard. The link has already stopped itself (it saw the guard pass);
/// the lease, still this instance's under the same epoch, needs a new link — otherwise the
/// gateway stays unlinked for as long as this instance keeps renewing a lease nobody uses.
#[test]
fn a_round_that_lands_after_a_guard_passed_starts_a_new_link_rather_than_reviving_it() {
    let (mut h, t0) = member(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    h.apply(both_leased(t0));
    let first = h.targets[&GatewayId(1)].lease.clone().unwrap();
    let first_epoch = h.state.epoch_of(GatewayId(1));
    // 15 s on: both guards have passed (the links stopped themselves), and the next round
    // renews both under the same epochs before any fence check ran.
    let late = t0 + Duration::from_secs(15) + Duration::from_millis(100);
    assert!(!first.valid_at(late));
    let actions = h.apply(both_leased(late));
    assert_eq!(starts(&actions), vec![GatewayId(1), GatewayId(2)]);
    assert_ne!(h.state.epoch_of(GatewayId(1)), first_epoch);
    // The stopped link's guard stays passed; the new link's is valid to the round's end.
    assert!(!first.valid_at(late));
    let fresh = h.targets[&GatewayId(1)].lease.clone().unwrap();
    assert!(fresh.valid_at(late + Duration::from_secs(14)));
    // A round before the guard passed only moves it, as ever.
    let actions = h.apply(both_leased(late + Duration::from_secs(5)));
    assert!(starts(&actions).is_empty() && stops(&actions).is_empty());
}

#[test]
fn the_fence_stops_every_link_once_the_rounds_deadline_passes_and_not_before() {
    let (mut h, t0) = member(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    h.apply(round(
        &[(GatewayId(1), 1), (GatewayId(2), 1)],
        true,
        None,
        t0,
    ));
    assert!(stops(&h.apply(Input::FenceCheck(t0 + Duration::from_secs(14)))).is_empty());
    let actions = h.apply(Input::FenceCheck(t0 + Duration::from_secs(15)));
    assert_eq!(stops(&actions), vec![GatewayId(1), GatewayId(2)]);
    assert_eq!(h.state.linked_ids().count(), 0);
    assert!(stops(&h.apply(Input::FenceCheck(t0 + Duration::from_secs(16)))).is_empty());
}

#[test]
fn a_member_follows_the_coordinators_choice_without_announcing_it() {
    let (mut h, t0) = member(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    let actions = h.apply(round(&[(GatewayId(1), 1)], false, Some(GatewayId(2)), t0));
    assert!(primary_changes(&actions).is_empty());
    assert_eq!(
        (h.acting(), h.flagged()),
        (Some(GatewayId(2)), vec![GatewayId(2)])
    );
    h.report(GatewayId(1), online());
    assert_eq!(h.acting(), Some(GatewayId(2)), "a member does not elect");
}

#[test]
fn a_member_ignores_a_recorded_primary_it_does_not_know() {
    let (mut h, t0) = member(vec![gw(GatewayId(1), true)]);
    h.apply(round(&[(GatewayId(1), 1)], false, Some(GatewayId(99)), t0));
    assert_eq!(h.acting(), None);
}

#[test]
fn the_coordinator_flags_the_designated_primary_without_announcing_a_change() {
    // The designated primary acts from the start, as it does for a daemon alone: naming it
    // once the coordinator's role arrives is no change to announce.
    let (mut h, t0) = member(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    let actions = h.apply(round(
        &[(GatewayId(1), 1), (GatewayId(2), 1)],
        true,
        None,
        t0,
    ));
    assert!(primary_changes(&actions).is_empty());
    assert_eq!(
        (h.acting(), h.flagged()),
        (Some(GatewayId(1)), vec![GatewayId(1)])
    );
}

#[test]
fn the_coordinator_announces_a_stand_in() {
    let (mut h, t0) = member(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    h.apply(round(
        &[(GatewayId(1), 1), (GatewayId(2), 1)],
        true,
        None,
        t0,
    ));
    h.connect_all(&[GatewayId(1), GatewayId(2)]);
    let changes = primary_changes(&h.report(GatewayId(1), offline()));
    assert_eq!(
        (changes[0].acting, changes[0].previous),
        (Some(GatewayId(2)), Some(GatewayId(1)))
    );
}

#[test]
fn a_gateway_linked_elsewhere_is_judged_by_the_status_its_owner_wrote() {
    let (mut h, t0) = member(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    // 1 is another instance's; its owner has not reported yet: no reason to move the role.
    h.apply(round(&[(GatewayId(2), 1)], true, None, t0));
    h.report(GatewayId(2), online());
    assert_eq!(h.acting(), Some(GatewayId(1)));
    let written_elsewhere = GatewayRecord {
        status: GatewayStatus::Offline,
        ..gw(GatewayId(1), true)
    };
    let actions = h.apply(Input::StoreChanges {
        changed: vec![written_elsewhere],
        deleted: vec![],
        owners: vec![],
    });
    assert!(starts(&actions).is_empty(), "not ours to link");
    let changes = primary_changes(&actions);
    assert_eq!(
        (changes[0].acting, changes[0].reason),
        (Some(GatewayId(2)), Reason::DesignatedUnavailable)
    );
}

#[test]
fn a_row_from_elsewhere_with_a_new_address_restarts_our_link() {
    let (mut h, t0) = member(vec![gw(GatewayId(1), true)]);
    h.apply(round(&[(GatewayId(1), 1)], true, None, t0));
    let mut moved = gw(GatewayId(1), true);
    moved.port = 19_001;
    let actions = h.apply(Input::StoreChanges {
        changed: vec![moved],
        deleted: vec![],
        owners: vec![],
    });
    assert_eq!(
        (stops(&actions), starts(&actions)),
        (vec![GatewayId(1)], vec![GatewayId(1)])
    );
    assert_eq!(h.targets[&GatewayId(1)].port, 19_001);
}

#[test]
fn a_row_from_elsewhere_keeps_the_facts_our_link_reported() {
    let (mut h, t0) = member(vec![gw(GatewayId(1), true)]);
    h.apply(round(&[(GatewayId(1), 1)], true, None, t0));
    h.report(GatewayId(1), online());
    let renamed = GatewayRecord {
        name: "edge".into(),
        ..gw(GatewayId(1), true)
    };
    let actions = h.apply(Input::StoreChanges {
        changed: vec![renamed],
        deleted: vec![],
        owners: vec![],
    });
    assert!(stops(&actions).is_empty());
    let r = h.state.record(GatewayId(1)).unwrap();
    assert_eq!((r.name.as_str(), r.status), ("edge", GatewayStatus::Online));
}

#[test]
fn a_gateway_leased_before_its_row_arrived_is_linked_when_it_does() {
    let (mut h, t0) = member(vec![gw(GatewayId(1), true)]);
    assert!(
        starts(&h.apply(round(
            &[(GatewayId(1), 1), (GatewayId(5), 1)],
            true,
            None,
            t0
        )))
        .contains(&GatewayId(1))
    );
    let actions = h.apply(Input::StoreChanges {
        changed: vec![gw(GatewayId(5), false)],
        deleted: vec![],
        owners: vec![],
    });
    assert_eq!(starts(&actions), vec![GatewayId(5)]);
}

#[test]
fn a_gateway_deleted_elsewhere_is_stopped_and_forgotten() {
    let (mut h, t0) = member(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    h.apply(round(
        &[(GatewayId(1), 1), (GatewayId(2), 1)],
        true,
        None,
        t0,
    ));
    let actions = h.apply(Input::StoreChanges {
        changed: vec![],
        deleted: vec![GatewayId(2), GatewayId(77)],
        owners: vec![],
    });
    assert_eq!(stops(&actions), vec![GatewayId(2)]);
    assert!(matches!(
        actions
            .iter()
            .find(|a| matches!(a, RegistryAction::Forget(_))),
        Some(RegistryAction::Forget(GatewayId(2)))
    ));
    assert!(!h.state.contains(GatewayId(2)));
}

#[test]
fn an_empty_change_feed_changes_nothing() {
    let (mut h, t0) = member(vec![gw(GatewayId(1), true)]);
    h.apply(round(&[(GatewayId(1), 1)], true, None, t0));
    let before = h.state.changes();
    let actions = h.apply(Input::StoreChanges {
        changed: vec![],
        deleted: vec![],
        owners: vec![],
    });
    assert!(actions.is_empty());
    assert_eq!(h.state.changes(), before);
}

#[test]
fn a_member_flags_the_recorded_primary_when_it_is_the_designated_one() {
    let (mut h, t0) = member(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    h.apply(round(&[(GatewayId(2), 1)], false, Some(GatewayId(1)), t0));
    assert_eq!(
        (h.acting(), h.flagged()),
        (Some(GatewayId(1)), vec![GatewayId(1)])
    );
}

/// A coordinator's round at `now` holding `held`, with the heartbeats of `beats`.
fn beating(held: &[(GatewayId, u64)], beats: &[(&str, u64, i64)], now: Instant) -> Input {
    leases(held, true, None, now, beats)
}

fn owned_by(id: GatewayId, owner: Option<(&str, u64)>) -> Input {
    Input::StoreChanges {
        changed: vec![],
        deleted: vec![],
        owners: vec![LeaseOwner {
            gateway: id,
            owner: owner.map(|(i, e)| (i.into(), e)),
        }],
    }
}

/// Gateway `id` as its owner `owner` stored it: online, last seen at UNIX.
fn stored_online(id: GatewayId, owner: (&str, u64)) -> Input {
    Input::StoreChanges {
        changed: vec![GatewayRecord {
            status: GatewayStatus::Online,
            last_seen: Some(UNIX),
            ..gw(id, true)
        }],
        deleted: vec![],
        owners: vec![LeaseOwner {
            gateway: id,
            owner: Some((owner.0.into(), owner.1)),
        }],
    }
}

/// The heartbeat gateway `id`, a peer, holds of its owner (`None`: nobody's).
fn vouched_at(h: &Harness, id: GatewayId) -> Option<i64> {
    let peers = h.state.peers_held();
    let peer = peers.iter().find(|p| p.id() == id).expect("a peer");
    peer.vouched.at()
}

/// In a cluster an owner does not rewrite a gateway for its last-seen alone: an hour on,
/// nothing is saved (alone it is saved each minute: `last_seen_alone_is_persisted_once_a_minute`).
/// A status change still is, with the last-seen of the moment.
#[test]
fn an_owner_saves_a_gateway_when_a_shown_fact_changes_not_as_it_is_seen() {
    let (mut h, t0) = member(vec![gw(GatewayId(1), true)]);
    h.apply(round(&[(GatewayId(1), 1)], true, None, t0));
    assert_eq!(persisted(&h.report(GatewayId(1), online())).len(), 1);
    let mut later = online();
    later.last_seen = Some(UNIX + 3_600);
    assert!(persisted(&h.report(GatewayId(1), later.clone())).is_empty());
    h.live[&GatewayId(1)].set(Some(20), Some(UNIX + 3_660));
    assert!(persisted(&h.apply(Input::PersistLive)).is_empty());
    let mut lost = offline();
    lost.last_seen = Some(UNIX + 3_661);
    let saved = persisted(&h.report(GatewayId(1), lost));
    assert_eq!(
        (saved[0].1.status, saved[0].1.last_seen),
        (GatewayStatus::Offline, Some(UNIX + 3_661))
    );
}

/// A peer linked by `b` holds `b`'s heartbeat under the epoch of its lease, moved on by each
/// round without a change of the registry's views; once `b`'s row lapsed (a new epoch), the
/// last heartbeat of the epoch that linked it; released, nobody's. (How a reader shows it with
/// the row: `registry/peers.rs`.)
#[test]
fn a_peer_holds_its_owners_heartbeat_under_the_epoch_of_its_lease() {
    let (mut h, t0) = member(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    let stored = GatewayRecord {
        status: GatewayStatus::Online,
        last_seen: Some(UNIX),
        ..gw(GatewayId(2), false)
    };
    h.apply(Input::StoreChanges {
        changed: vec![stored.clone()],
        deleted: vec![],
        owners: vec![],
    });
    h.apply(beating(&[(GatewayId(1), 1)], &[("b", 4, UNIX + 100)], t0));
    assert_eq!(vouched_at(&h, GatewayId(2)), None, "no owner read yet");
    h.apply(owned_by(GatewayId(2), Some(("b", 4))));
    assert_eq!(vouched_at(&h, GatewayId(2)), Some(UNIX + 100));
    h.state.take_touched();
    let before = h.state.changes();
    h.apply(beating(&[(GatewayId(1), 1)], &[("b", 4, UNIX + 103)], t0));
    assert_eq!(vouched_at(&h, GatewayId(2)), Some(UNIX + 103));
    assert_eq!(
        h.state.changes(),
        before,
        "a heartbeat is not a change of the views"
    );
    assert_eq!(h.state.take_touched(), Some(vec![]));
    // `b` lapsed and came back: its gateways of epoch 4 are not its any more.
    h.apply(beating(&[(GatewayId(1), 1)], &[("b", 5, UNIX + 120)], t0));
    assert_eq!(vouched_at(&h, GatewayId(2)), Some(UNIX + 103));
    h.apply(owned_by(GatewayId(2), Some(("b", 5))));
    assert_eq!(vouched_at(&h, GatewayId(2)), Some(UNIX + 120));
    // Released: nobody's heartbeat stands for it.
    h.apply(owned_by(GatewayId(2), None));
    assert_eq!(vouched_at(&h, GatewayId(2)), None);
}

/// Adopted from an owner that died: the new link starts from the old owner's last heartbeat,
/// so a gateway that cannot be reached is stored as last seen then (not when it came online
/// under its first owner, which may be hours before).
#[test]
fn an_adopted_gateway_keeps_its_last_owners_last_heartbeat_as_last_seen() {
    let (mut h, t0) = member(vec![gw(GatewayId(1), true)]);
    h.apply(stored_online(GatewayId(1), ("b", 2)));
    h.apply(beating(&[], &[("b", 2, UNIX + 7_200)], t0));
    assert_eq!(vouched_at(&h, GatewayId(1)), Some(UNIX + 7_200));
    h.apply(beating(
        &[(GatewayId(1), 3)],
        &[],
        t0 + Duration::from_secs(20),
    ));
    let mut unreachable = offline();
    unreachable.last_seen = None;
    let saved = persisted(&h.report(GatewayId(1), unreachable));
    assert_eq!(saved[0].1.last_seen, Some(UNIX + 7_200));
}

/// The change feed names this instance as the owner (the round that took it not yet heard):
/// its own heartbeat stands for nothing; its link's numbers will.
#[test]
fn this_instances_own_heartbeat_does_not_stand_for_its_gateways() {
    let (mut h, t0) = member(vec![gw(GatewayId(1), true)]);
    h.apply(stored_online(GatewayId(1), ("a", 1)));
    h.apply(beating(&[], &[("a", 1, UNIX + 50)], t0));
    assert_eq!(vouched_at(&h, GatewayId(1)), None);
}

/// A rolling upgrade: while an instance of the previous version runs (epoch 0), it shows the
/// rows' last-seen, so an owner keeps saving it each minute; once it is gone, it stops.
#[test]
fn an_owner_keeps_saving_last_seen_while_a_previous_version_runs() {
    let (mut h, t0) = member(vec![gw(GatewayId(1), true)]);
    h.apply(beating(
        &[(GatewayId(1), 1)],
        &[("a", 1, UNIX), ("old", 0, UNIX)],
        t0,
    ));
    h.report(GatewayId(1), online());
    let mut later = online();
    later.last_seen = Some(UNIX + 60);
    let saved = persisted(&h.report(GatewayId(1), later.clone()));
    assert_eq!(saved[0].1.last_seen, Some(UNIX + 60));
    h.apply(beating(&[(GatewayId(1), 1)], &[("a", 1, UNIX + 61)], t0));
    later.last_seen = Some(UNIX + 3_600);
    assert!(persisted(&h.report(GatewayId(1), later)).is_empty());
}

/// A gateway linked by another live instance is that instance's to answer for (its series,
/// `GatewayView::linked_elsewhere`); once a round no longer lists that instance's epoch, it is
/// nobody's until another takes its lease.
#[test]
fn a_gateway_is_linked_elsewhere_while_its_owners_epoch_is_live() {
    let (mut h, t0) = member(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    h.apply(beating(&[], &[("a", 1, UNIX), ("b", 1, UNIX)], t0));
    h.apply(stored_online(GatewayId(2), ("b", 1)));
    let elsewhere = |h: &Harness, id: i64| match h.state.view(GatewayId(id)) {
        Some(view) => view.linked_elsewhere(),
        None => {
            let peers = h.state.peers_held();
            let peer = peers.iter().find(|p| p.id() == GatewayId(id)).cloned();
            peer.expect("a peer").vouched.live()
        }
    };
    assert!(elsewhere(&h, 2));
    assert!(!elsewhere(&h, 1));
    // b's row lapsed: the next round lists a alone.
    h.apply(beating(
        &[],
        &[("a", 1, UNIX + 3)],
        t0 + Duration::from_secs(3),
    ));
    assert!(!elsewhere(&h, 2));
    // b is back under epoch 2 and takes the lease again.
    h.apply(beating(
        &[],
        &[("a", 1, UNIX + 6), ("b", 2, UNIX + 6)],
        t0 + Duration::from_secs(6),
    ));
    h.apply(owned_by(GatewayId(2), Some(("b", 2))));
    assert!(elsewhere(&h, 2));
    // Linked here: its own link answers.
    h.apply(beating(
        &[(GatewayId(2), 1)],
        &[("a", 1, UNIX + 9)],
        t0 + Duration::from_secs(9),
    ));
    assert!(!elsewhere(&h, 2));
}

/// A gateway not linked here has no view at all (a peer: in a cluster, most of the fleet on
/// every instance); linked, its view has its link's connection; its lease lost, it is a peer
/// again and its record is not kept.
#[test]
fn a_gateway_not_linked_here_is_a_peer_and_a_lease_gives_it_a_view() {
    let (mut h, t0) = member(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    assert!(h.state.view(GatewayId(1)).is_none() && h.state.view(GatewayId(2)).is_none());
    assert_eq!((h.state.len(), h.state.peers_held().len()), (2, 2));
    h.apply(round(&[(GatewayId(1), 1)], false, None, t0));
    h.report(GatewayId(1), online());
    assert_eq!(
        h.state.view(GatewayId(1)).unwrap().connection.state,
        Some(LinkPhase::Connected)
    );
    assert!(h.state.view(GatewayId(2)).is_none());
    h.apply(round(&[], false, None, t0 + Duration::from_secs(3)));
    assert!(h.state.view(GatewayId(1)).is_none(), "the lease lost");
    assert!(h.state.record(GatewayId(1)).is_none() && h.state.contains(GatewayId(1)));
}

/// A cluster member loaded from the store holds every gateway as a peer from the start (no
/// view made and dropped), counts them all, knows the designated primary, and links one only
/// once a lease comes and its record is read.
#[test]
fn a_member_loaded_from_the_store_holds_peers_only_until_its_leases_come() {
    let t0 = Instant::now();
    let records = vec![gw(GatewayId(1), true), gw(GatewayId(2), false)];
    let mut h = Harness {
        state: RegistryState::member(records.clone(), true, t0, "a"),
        ..Harness::loaded(records)
    };
    assert_eq!(h.state.views().count(), 0);
    assert_eq!((h.state.len(), h.state.peers_held().len()), (2, 2));
    assert_eq!(h.state.designated(GatewayId(1)), Some(true));
    assert!(h.state.record(GatewayId(1)).is_none());
    assert!(starts(&h.apply(Input::Started)).is_empty());
    let actions = h.apply(round(&[(GatewayId(2), 1)], false, None, t0));
    assert_eq!(starts(&actions), vec![GatewayId(2)]);
    assert!(h.state.record(GatewayId(2)).is_some());
    assert_eq!(h.state.peers_held().len(), 1);
}
