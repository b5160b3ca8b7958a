//! Link reports: fencing by epoch, the events a change makes, what is persisted and when.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::*;
use crate::link::messages::DeviceTokenChanged;
use crate::model::LinkPhase::{Backoff, Connecting, Handshaking};

#[test]
fn starting_starts_one_link_per_gateway_each_under_its_own_epoch() {
    let mut h = Harness::loaded(vec![
        gw(GatewayId(1), true),
        gw(GatewayId(2), false),
        gw(GatewayId(3), false),
    ]);
    let actions = h.apply(Input::Started);
    assert_eq!(
        starts(&actions),
        vec![GatewayId(1), GatewayId(2), GatewayId(3)]
    );
    let epochs: Vec<u64> = [1, 2, 3]
        .map(|id| h.state.epoch_of(GatewayId(id)).unwrap())
        .to_vec();
    assert_eq!(epochs, vec![1, 2, 3]);
    assert_eq!(h.targets[&GatewayId(2)].port, 18_002);
    assert!(
        h.targets[&GatewayId(2)].lease.is_none(),
        "alone, no lease is needed"
    );
}

#[test]
fn no_link_starts_where_links_are_off() {
    let mut h = Harness {
        state: RegistryState::new(vec![gw(GatewayId(1), true)], false),
        ..Harness::loaded(vec![])
    };
    assert!(starts(&h.apply(Input::Started)).is_empty());
    assert_eq!(h.state.epoch_of(GatewayId(1)), None);
}

#[test]
fn a_report_from_a_restarted_link_is_dropped() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true)]);
    let old = h.state.epoch_of(GatewayId(1)).unwrap();
    let mut moved = gw(GatewayId(1), true);
    moved.port = 19_000;
    let relink = Write::Updated {
        relink: true,
        verify_shared_token: false,
        keep_live: false,
    };
    h.apply(Input::Written(moved, relink));
    assert_ne!(h.state.epoch_of(GatewayId(1)), Some(old));
    let actions = h.apply(Input::Link(LinkUpdate {
        id: GatewayId(1),
        epoch: old,
        state: online(),
    }));
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(h.status(GatewayId(1)), GatewayStatus::Unknown);
}

#[test]
fn a_report_for_a_gateway_deleted_since_is_dropped() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    let epoch = h.state.epoch_of(GatewayId(2)).unwrap();
    h.apply(Input::Deleted(GatewayId(2)));
    let actions = h.apply(Input::Link(LinkUpdate {
        id: GatewayId(2),
        epoch,
        state: online(),
    }));
    assert!(actions.is_empty());
    assert!(!h.state.contains(GatewayId(2)));
}

#[test]
fn connecting_is_a_connection_event_and_no_status_event() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true)]);
    let actions = h.report(GatewayId(1), link(Connecting, GatewayStatus::Unknown));
    let events = published(&actions, EventKind::ConnectionChanged);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["state"], json!("connecting"));
    assert!(published(&actions, EventKind::GatewayStatus).is_empty());
}

#[test]
fn a_status_change_is_one_event_naming_the_previous_status() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true)]);
    let actions = h.report(GatewayId(1), online());
    assert_eq!(
        published(&actions, EventKind::GatewayStatus),
        vec![json!({"status": "online", "previous": "unknown"})]
    );
    let actions = h.report(GatewayId(1), offline());
    assert_eq!(
        published(&actions, EventKind::GatewayStatus),
        vec![json!({"status": "offline", "previous": "online"})]
    );
}

#[test]
fn a_report_repeating_the_last_state_publishes_nothing() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true)]);
    h.report(GatewayId(1), online());
    let actions = h.report(GatewayId(1), online());
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, RegistryAction::Publish { .. })),
        "{actions:?}"
    );
}

#[test]
fn a_gateway_back_as_another_process_is_announced() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true)]);
    h.report(GatewayId(1), online());
    let mut again = online();
    again.connection.boot_id = Some("boot-2".into());
    let changed = published(&h.report(GatewayId(1), again), EventKind::GatewayChanged);
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(
        changed[0],
        json!({"action": "restarted", "previous_boot_id": "boot-1", "boot_id": "boot-2"})
    );
}

#[test]
fn an_upgrade_is_announced_with_both_releases() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true)]);
    h.report(GatewayId(1), online());
    let mut upgraded = online();
    upgraded.connection.server_version = Some("2026.10.1".into());
    let changed = published(&h.report(GatewayId(1), upgraded), EventKind::GatewayChanged);
    assert_eq!(changed.len(), 1);
    assert_eq!(
        changed[0],
        json!({"action": "version_changed", "from": "2026.9.6", "to": "2026.10.1"})
    );
}

#[test]
fn the_first_report_is_persisted_and_a_repeat_is_not() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true)]);
    let first = persisted(&h.report(GatewayId(1), online()));
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1.status, GatewayStatus::Online);
    assert_eq!(first[0].1.latency, Some(20));
    assert!(persisted(&h.report(GatewayId(1), online())).is_empty());
}

#[test]
fn a_status_change_is_persisted_at_once() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true)]);
    h.report(GatewayId(1), online());
    let saved = persisted(&h.report(GatewayId(1), offline()));
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].1.status, GatewayStatus::Offline);
}

#[test]
fn last_seen_alone_is_persisted_once_a_minute() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true)]);
    h.report(GatewayId(1), online());
    let mut later = online();
    later.last_seen = Some(UNIX + 59);
    assert!(persisted(&h.report(GatewayId(1), later.clone())).is_empty());
    later.last_seen = Some(UNIX + 60);
    let saved = persisted(&h.report(GatewayId(1), later));
    assert_eq!(saved[0].1.last_seen, Some(UNIX + 60));
}

#[test]
fn the_periodic_save_writes_live_numbers_that_moved_on() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    h.connect_all(&[GatewayId(1), GatewayId(2)]);
    assert!(persisted(&h.apply(Input::PersistLive)).is_empty());
    h.live[&GatewayId(2)].set(Some(35), Some(UNIX + 61));
    let saved = persisted(&h.apply(Input::PersistLive));
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].0, GatewayId(2));
    assert_eq!(
        (saved[0].1.latency, saved[0].1.last_seen),
        (Some(35), Some(UNIX + 61))
    );
    assert!(persisted(&h.apply(Input::PersistLive)).is_empty());
}

#[test]
fn connecting_and_leaving_make_the_sessions_stale_and_a_ping_does_not() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true)]);
    assert!(sessions_stale(&h.report(GatewayId(1), online())));
    assert!(!sessions_stale(&h.report(GatewayId(1), online())));
    assert!(sessions_stale(&h.report(GatewayId(1), offline())));
}

#[test]
fn counts_in_a_report_replace_the_records_and_missing_ones_keep_them() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true)]);
    let mut busy = online();
    busy.sessions_count = Some(7);
    busy.agents_count = Some(3);
    h.report(GatewayId(1), busy);
    let mut silent = online();
    silent.sessions_count = None;
    silent.agents_count = None;
    silent.latency = None;
    h.report(GatewayId(1), silent);
    let r = h.state.record(GatewayId(1)).unwrap();
    assert_eq!(
        (r.sessions_count, r.agents_count, r.latency),
        (7, 3, Some(20))
    );
}

#[test]
fn every_report_that_changes_a_view_moves_the_change_count() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true)]);
    let before = h.state.changes();
    h.report(GatewayId(1), link(Handshaking, GatewayStatus::Unknown));
    assert!(h.state.changes() > before);
}

#[test]
fn the_methods_of_the_last_hello_are_kept() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true)]);
    assert!(h.state.methods(GatewayId(1)).is_none());
    h.report(GatewayId(1), online());
    assert_eq!(
        h.state.methods(GatewayId(1)).map(|m| m.as_slice().to_vec()),
        Some(vec!["health".to_owned(), "sessions.list".to_owned()])
    );
}

#[test]
fn a_device_token_from_the_current_link_is_kept_and_saved_and_an_old_ones_is_not() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true)]);
    let epoch = h.state.epoch_of(GatewayId(1)).unwrap();
    let token = |t: &str| Some(SecretString::from(t.to_owned()));
    let stale = h.apply(Input::DeviceToken(DeviceTokenChanged {
        id: GatewayId(1),
        epoch: epoch + 7,
        token: token("stale"),
    }));
    assert!(stale.is_empty());
    let actions = h.apply(Input::DeviceToken(DeviceTokenChanged {
        id: GatewayId(1),
        epoch,
        token: token("fresh"),
    }));
    assert!(matches!(
        actions.as_slice(),
        [RegistryAction::PersistDeviceToken(GatewayId(1), Some(t))] if t.expose_secret() == "fresh"
    ));
    let kept = h
        .state
        .record(GatewayId(1))
        .unwrap()
        .device_token
        .as_ref()
        .unwrap();
    assert_eq!(kept.expose_secret(), "fresh");
}

#[test]
fn a_view_carries_the_links_live_numbers_and_a_pong_is_no_change() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true)]);
    h.report(GatewayId(1), online());
    let view = h.state.view(GatewayId(1)).unwrap();
    let changes = h.state.changes();
    h.live[&GatewayId(1)].set(Some(7), Some(UNIX + 5));
    // Taken before the pong, read after it: the link's numbers, not a copy.
    assert_eq!(
        (view.latency(), view.last_seen()),
        (Some(7), Some(UNIX + 5))
    );
    assert_eq!(
        h.state.changes(),
        changes,
        "a pong is not a change of the list"
    );
    h.report(GatewayId(1), link(Backoff, GatewayStatus::Offline));
    assert_eq!(
        h.state.raw_view(GatewayId(1)).unwrap().record.latency,
        Some(20)
    );
}

#[test]
fn readers_rebuild_every_gateway_after_loading_and_only_the_reporting_one_after_a_report() {
    let mut h = Harness::started(vec![
        gw(GatewayId(1), true),
        gw(GatewayId(2), false),
        gw(GatewayId(3), false),
    ]);
    assert_eq!(h.state.take_touched(), None, "after loading: every one");
    h.report(GatewayId(3), link(Connecting, GatewayStatus::Unknown));
    assert_eq!(h.state.take_touched(), Some(vec![GatewayId(3)]));
    assert_eq!(h.state.take_touched(), Some(vec![]));
}

#[test]
fn alone_at_its_capacity_it_links_the_lowest_ids_and_names_the_rest_unplaced_until_room_is_made() {
    let mut h = Harness::loaded((1..=4).map(|n| gw(GatewayId(n), n == 1)).collect());
    h.state.set_capacity(Some(2));
    let actions = h.apply(Input::Started);
    assert_eq!(starts(&actions), vec![GatewayId(1), GatewayId(2)]);
    assert_eq!(
        h.state.unplaced().iter().copied().collect::<Vec<_>>(),
        vec![GatewayId(3), GatewayId(4)]
    );
    let why = h
        .state
        .view(GatewayId(3))
        .unwrap()
        .connection
        .last_error
        .clone();
    let why = why.expect("an unplaced gateway says why");
    assert_eq!(why.code, crate::registry::UNPLACED);
    assert!(
        why.message.contains("at most 2 gateways"),
        "{}",
        why.message
    );
    assert_eq!(h.status(GatewayId(3)), GatewayStatus::Unknown);
    // A new registration waits too.
    let actions = h.apply(Input::Written(gw(GatewayId(5), false), Write::Created));
    assert!(starts(&actions).is_empty());
    assert!(h.state.unplaced().contains(&GatewayId(5)));
    // An edit that relinks a linked gateway keeps its place.
    let relink = Write::Updated {
        relink: true,
        verify_shared_token: false,
        keep_live: false,
    };
    let actions = h.apply(Input::Written(gw(GatewayId(2), false), relink));
    assert_eq!(starts(&actions), vec![GatewayId(2)]);
    // Deleting a linked one makes room for the lowest waiting id.
    let actions = h.apply(Input::Deleted(GatewayId(1)));
    assert_eq!(starts(&actions), vec![GatewayId(3)]);
    assert_eq!(
        h.state.unplaced().iter().copied().collect::<Vec<_>>(),
        vec![GatewayId(4), GatewayId(5)]
    );
    // Deleting a waiting one links nothing new.
    let actions = h.apply(Input::Deleted(GatewayId(5)));
    assert!(starts(&actions).is_empty());
    assert_eq!(
        h.state.unplaced().iter().copied().collect::<Vec<_>>(),
        vec![GatewayId(4)]
    );
}

#[test]
fn in_a_cluster_the_capacity_is_placement_s_not_the_registry_s() {
    let mut h = Harness::loaded((1..=3).map(|n| gw(GatewayId(n), n == 1)).collect());
    h.state.set_capacity(Some(1));
    h.state.leased(std::time::Instant::now(), "a");
    h.apply(Input::Started);
    assert!(h.state.unplaced().is_empty());
}
