//! Writes made here, read back from the store: what each announces, what it does to the role
//! and to the link, and that a setting never undoes what the link reported.

use serde_json::json;

use super::*;
use crate::election::Reason;
use crate::model::Maintenance;

fn cordoned(id: GatewayId, is_primary: bool) -> GatewayRecord {
    GatewayRecord {
        cordoned: true,
        ..gw(id, is_primary)
    }
}

#[test]
fn cordoning_the_acting_primary_moves_the_role_and_is_announced() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    h.connect_all(&[GatewayId(1), GatewayId(2)]);
    let actions = h.apply(Input::Written(
        cordoned(GatewayId(1), true),
        Write::Cordon(true),
    ));
    assert_eq!(
        published(&actions, EventKind::GatewayChanged),
        vec![json!({"action": "cordoned", "name": "gw1"})]
    );
    let changes = primary_changes(&actions);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].acting, Some(GatewayId(2)));
    assert!(stops(&actions).is_empty(), "a cordon leaves the link up");
}

#[test]
fn uncordoning_the_designated_primary_takes_the_role_back() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    h.connect_all(&[GatewayId(1), GatewayId(2)]);
    h.apply(Input::Written(
        cordoned(GatewayId(1), true),
        Write::Cordon(true),
    ));
    let actions = h.apply(Input::Written(gw(GatewayId(1), true), Write::Cordon(false)));
    assert_eq!(
        published(&actions, EventKind::GatewayChanged),
        vec![json!({"action": "uncordoned", "name": "gw1"})]
    );
    assert_eq!(h.acting(), Some(GatewayId(1)));
}

#[test]
fn a_cordoned_gateway_is_never_given_the_role_even_when_nobody_else_can_act() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    h.connect_all(&[GatewayId(1)]);
    let actions = h.apply(Input::Written(
        cordoned(GatewayId(1), true),
        Write::Cordon(true),
    ));
    assert_eq!(
        primary_changes(&actions)[0],
        PrimaryChange {
            acting: None,
            previous: Some(GatewayId(1)),
            designated: Some(GatewayId(1)),
            reason: Reason::NoEligibleGateway,
        }
    );
    assert!(h.flagged().is_empty());
}

#[test]
fn maintenance_holds_the_primary_back_and_its_end_is_announced() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    h.connect_all(&[GatewayId(1), GatewayId(2)]);
    let window = Maintenance {
        reason: "kernel".into(),
        by: "ops".into(),
        since: UNIX,
        until: Some(UNIX + 3600),
    };
    let in_maintenance = GatewayRecord {
        maintenance: Some(Box::new(window)),
        ..gw(GatewayId(1), true)
    };
    let actions = h.apply(Input::Written(in_maintenance, Write::Maintenance(true)));
    let events = published(&actions, EventKind::GatewayChanged);
    assert_eq!(events[0]["action"], json!("maintenance"));
    assert_eq!(events[0]["maintenance"]["reason"], json!("kernel"));
    assert_eq!(h.acting(), Some(GatewayId(2)));
    let ended = h.apply(Input::Written(
        gw(GatewayId(1), true),
        Write::Maintenance(false),
    ));
    assert_eq!(
        published(&ended, EventKind::GatewayChanged),
        vec![json!({"action": "maintenance_ended", "name": "gw1", "maintenance": null})]
    );
    assert_eq!(h.acting(), Some(GatewayId(1)));
}

#[test]
fn a_suspension_moves_the_role_without_a_changed_event() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    h.connect_all(&[GatewayId(1), GatewayId(2)]);
    let suspended = GatewayRecord {
        suspension_id: Some("susp-1".into()),
        ..gw(GatewayId(1), true)
    };
    let actions = h.apply(Input::Written(suspended, Write::Suspension));
    assert!(published(&actions, EventKind::GatewayChanged).is_empty());
    assert_eq!(h.acting(), Some(GatewayId(2)));
}

#[test]
fn a_setting_keeps_the_status_the_link_reported() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true)]);
    h.report(GatewayId(1), online());
    // The row as the batched writer last saved it: still `unknown`.
    h.apply(Input::Written(
        cordoned(GatewayId(1), true),
        Write::Cordon(true),
    ));
    assert_eq!(h.status(GatewayId(1)), GatewayStatus::Online);
    assert_eq!(h.state.record(GatewayId(1)).unwrap().latency, Some(20));
}

#[test]
fn labels_are_announced_with_the_new_set() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true)]);
    let mut labelled = gw(GatewayId(1), true);
    labelled.labels = crate::labels::Labels::of([("zone", "eu")]).unwrap();
    let actions = h.apply(Input::Written(labelled, Write::Labels));
    assert_eq!(
        published(&actions, EventKind::GatewayChanged),
        vec![json!({"action": "labels", "name": "gw1", "labels": {"zone": "eu"}})]
    );
}

#[test]
fn an_update_that_relinks_stops_the_link_and_starts_one_under_a_new_epoch() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true)]);
    let before = h.state.epoch_of(GatewayId(1)).unwrap();
    let mut moved = gw(GatewayId(1), true);
    moved.host = "10.0.0.9".into();
    let write = Write::Updated {
        relink: true,
        verify_shared_token: true,
        keep_live: false,
    };
    let actions = h.apply(Input::Written(moved, write));
    assert_eq!(
        (stops(&actions), starts(&actions)),
        (vec![GatewayId(1)], vec![GatewayId(1)])
    );
    assert!(h.state.epoch_of(GatewayId(1)).unwrap() > before);
    assert_eq!(h.targets[&GatewayId(1)].host, "10.0.0.9");
    assert!(h.targets[&GatewayId(1)].verify_shared_token);
    assert_eq!(
        published(&actions, EventKind::GatewayChanged)[0]["action"],
        json!("updated")
    );
}

#[test]
fn an_update_that_does_not_relink_keeps_the_link_and_its_status() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true)]);
    h.report(GatewayId(1), online());
    let epoch = h.state.epoch_of(GatewayId(1));
    let write = Write::Updated {
        relink: false,
        verify_shared_token: false,
        keep_live: true,
    };
    let actions = h.apply(Input::Written(gw(GatewayId(1), true), write));
    assert!(stops(&actions).is_empty() && starts(&actions).is_empty());
    assert_eq!(h.state.epoch_of(GatewayId(1)), epoch);
    assert_eq!(h.status(GatewayId(1)), GatewayStatus::Online);
}

#[test]
fn designating_another_primary_unsets_the_previous_and_moves_the_role() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    h.connect_all(&[GatewayId(1), GatewayId(2)]);
    let write = Write::Updated {
        relink: false,
        verify_shared_token: false,
        keep_live: true,
    };
    let actions = h.apply(Input::Written(gw(GatewayId(2), true), write));
    assert!(!h.state.record(GatewayId(1)).unwrap().is_primary);
    let changes = primary_changes(&actions);
    assert_eq!(
        (changes[0].acting, changes[0].designated, changes[0].reason),
        (Some(GatewayId(2)), Some(GatewayId(2)), Reason::Designated)
    );
}

#[test]
fn a_created_gateway_is_announced_and_linked() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true)]);
    let actions = h.apply(Input::Written(gw(GatewayId(2), false), Write::Created));
    assert_eq!(
        published(&actions, EventKind::GatewayChanged),
        vec![json!({"action": "created", "name": "gw2", "labels": {}})]
    );
    assert_eq!(starts(&actions), vec![GatewayId(2)]);
    assert!(!h.state.view(GatewayId(2)).unwrap().acting_primary);
}

#[test]
fn deleting_the_acting_stand_in_stops_its_link_forgets_it_and_re_elects() {
    let mut h = Harness::started(vec![
        gw(GatewayId(1), true),
        gw(GatewayId(2), false),
        gw(GatewayId(3), false),
    ]);
    h.connect_all(&[GatewayId(1), GatewayId(2), GatewayId(3)]);
    h.report(GatewayId(1), offline());
    let gone = h.acting().unwrap();
    let actions = h.apply(Input::Deleted(gone));
    assert!(matches!(
        actions.first(),
        Some(RegistryAction::Publish { kind: EventKind::GatewayChanged, payload, .. })
            if payload == &json!({"action": "deleted"})
    ));
    assert_eq!(stops(&actions), vec![gone]);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, RegistryAction::Forget(id) if *id == gone))
    );
    assert!(!h.state.contains(gone));
    let other = GatewayId(if gone == GatewayId(2) { 3 } else { 2 });
    assert_eq!(h.acting(), Some(other));
}

#[test]
fn a_renamed_gateway_frees_its_old_name_and_takes_the_new_one() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    assert!(h.state.name_taken("gw1", None));
    assert!(
        !h.state.name_taken("gw1", Some(GatewayId(1))),
        "its own name is no clash"
    );
    let renamed = GatewayRecord {
        name: "edge".into(),
        ..gw(GatewayId(1), true)
    };
    let write = Write::Updated {
        relink: true,
        verify_shared_token: false,
        keep_live: false,
    };
    h.apply(Input::Written(renamed, write));
    assert!(!h.state.name_taken("gw1", None));
    assert!(h.state.name_taken("edge", Some(GatewayId(2))));
    h.apply(Input::Deleted(GatewayId(2)));
    assert!(
        !h.state.name_taken("gw2", None),
        "a deleted gateway's name is free"
    );
}

#[test]
fn an_address_is_taken_whatever_the_case_of_its_host() {
    let mut named = gw(GatewayId(1), true);
    named.host = "Edge.Example".into();
    let h = Harness::started(vec![named, gw(GatewayId(2), false)]);
    let port = 18_001;
    assert_eq!(
        h.state
            .address_owner("edge.example", port, None)
            .map(|r| r.id),
        Some(GatewayId(1))
    );
    assert_eq!(
        h.state
            .address_owner("edge.example", port, Some(GatewayId(1)))
            .map(|r| r.id),
        None
    );
    assert_eq!(
        h.state.address_owner("edge.example", 1, None).map(|r| r.id),
        None
    );
}

/// The list readers get is in its order after every kind of write: the designated primary
/// first, then by name, then by id — kept as the writes come, not sorted per read.
#[test]
fn the_sorted_list_follows_renames_primary_moves_creates_and_deletes() {
    let named = |id: GatewayId, name: &str, is_primary: bool| GatewayRecord {
        name: name.into(),
        ..gw(id, is_primary)
    };
    let mut h = Harness::started(vec![
        named(GatewayId(1), "mango", true),
        named(GatewayId(2), "apple", false),
        named(GatewayId(3), "kiwi", false),
    ]);
    let order = |h: &Harness| -> Vec<GatewayId> {
        h.state.sorted_views().iter().map(|v| v.record.id).collect()
    };
    assert_eq!(order(&h), vec![GatewayId(1), GatewayId(2), GatewayId(3)]);
    let renamed = Write::Updated {
        relink: true,
        verify_shared_token: false,
        keep_live: false,
    };
    h.apply(Input::Written(
        named(GatewayId(3), "aardvark", false),
        renamed,
    ));
    assert_eq!(order(&h), vec![GatewayId(1), GatewayId(3), GatewayId(2)]);
    h.apply(Input::Written(named(GatewayId(2), "apple", true), renamed));
    assert_eq!(
        order(&h),
        vec![GatewayId(2), GatewayId(3), GatewayId(1)],
        "the new primary first, the old one by name"
    );
    h.apply(Input::Written(
        named(GatewayId(4), "banana", false),
        Write::Created,
    ));
    h.apply(Input::Deleted(GatewayId(3)));
    assert_eq!(order(&h), vec![GatewayId(2), GatewayId(4), GatewayId(1)]);
}
