//! Who acts as primary, from every input the election hears: the start, links connecting and
//! leaving, breakers, latency, failback.

use serde_json::json;

use super::*;
use crate::election::Reason;
use crate::model::LinkPhase::{Connecting, Handshaking};

#[test]
fn the_designated_primary_acts_from_the_start_without_an_announcement() {
    let mut h = Harness::loaded(vec![gw(GatewayId(1), false), gw(GatewayId(2), true)]);
    let actions = h.apply(Input::Started);
    assert!(primary_changes(&actions).is_empty());
    assert_eq!(h.acting(), Some(GatewayId(2)));
    assert_eq!(h.flagged(), vec![GatewayId(2)]);
}

#[test]
fn a_cordoned_designated_primary_does_not_act_at_start() {
    let mut designated = gw(GatewayId(1), true);
    designated.cordoned = true;
    let h = Harness::started(vec![designated, gw(GatewayId(2), false)]);
    assert_eq!(h.acting(), None);
    assert!(h.flagged().is_empty());
}

#[test]
fn reports_of_a_starting_link_run_no_election() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    for phase in [Connecting, Handshaking] {
        let actions = h.report(GatewayId(2), link(phase, GatewayStatus::Unknown));
        assert!(primary_changes(&actions).is_empty());
    }
    assert_eq!(h.acting(), Some(GatewayId(1)));
}

#[test]
fn the_designated_primary_connecting_keeps_the_role_it_had() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    assert!(primary_changes(&h.report(GatewayId(1), online())).is_empty());
    assert_eq!(h.acting(), Some(GatewayId(1)));
}

#[test]
fn the_designated_primary_going_offline_hands_the_role_to_a_connected_gateway() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    h.connect_all(&[GatewayId(1), GatewayId(2)]);
    let changes = primary_changes(&h.report(GatewayId(1), offline()));
    assert_eq!(
        changes,
        vec![PrimaryChange {
            acting: Some(GatewayId(2)),
            previous: Some(GatewayId(1)),
            designated: Some(GatewayId(1)),
            reason: Reason::DesignatedUnavailable,
        }]
    );
    assert_eq!(h.flagged(), vec![GatewayId(2)]);
}

#[test]
fn a_primary_change_says_who_acts_who_did_who_is_designated_and_why() {
    let change = PrimaryChange {
        acting: Some(GatewayId(2)),
        previous: Some(GatewayId(1)),
        designated: Some(GatewayId(1)),
        reason: Reason::DesignatedUnavailable,
    };
    assert_eq!(
        change.details(),
        json!({"acting_primary": 2, "previous": 1, "designated": 1, "reason": "designated_unavailable"})
    );
}

#[test]
fn the_healthiest_gateway_takes_over_online_before_degraded_then_by_latency() {
    let mut h = Harness::started(vec![
        gw(GatewayId(1), true),
        gw(GatewayId(2), false),
        gw(GatewayId(3), false),
        gw(GatewayId(4), false),
    ]);
    h.connect_all(&[GatewayId(1), GatewayId(3), GatewayId(4)]);
    h.report(
        GatewayId(2),
        link(LinkPhase::Connected, GatewayStatus::Degraded),
    );
    h.live[&GatewayId(2)].set(Some(1), Some(UNIX));
    h.live[&GatewayId(3)].set(Some(90), Some(UNIX));
    h.live[&GatewayId(4)].set(Some(10), Some(UNIX));
    h.report(GatewayId(1), offline());
    assert_eq!(
        h.acting(),
        Some(GatewayId(4)),
        "online and fastest, by the live latency"
    );
}

#[test]
fn a_stand_in_keeps_the_role_when_a_faster_gateway_connects() {
    let mut h = Harness::started(vec![
        gw(GatewayId(1), true),
        gw(GatewayId(2), false),
        gw(GatewayId(3), false),
    ]);
    h.connect_all(&[GatewayId(1), GatewayId(2)]);
    h.report(GatewayId(1), offline());
    assert_eq!(h.acting(), Some(GatewayId(2)));
    h.report(GatewayId(3), online());
    h.live[&GatewayId(3)].set(Some(1), Some(UNIX));
    assert_eq!(h.acting(), Some(GatewayId(2)));
}

#[test]
fn with_failback_the_designated_primary_takes_the_role_back() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    h.connect_all(&[GatewayId(1), GatewayId(2)]);
    h.report(GatewayId(1), offline());
    let changes = primary_changes(&h.report(GatewayId(1), online()));
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].acting, changes[0].reason),
        (Some(GatewayId(1)), Reason::Designated)
    );
    assert_eq!(h.flagged(), vec![GatewayId(1)]);
}

#[test]
fn without_failback_the_stand_in_keeps_the_role() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    h.state.set_failback(false);
    h.connect_all(&[GatewayId(1), GatewayId(2)]);
    h.report(GatewayId(1), offline());
    assert!(primary_changes(&h.report(GatewayId(1), online())).is_empty());
    assert_eq!(h.acting(), Some(GatewayId(2)));
}

#[test]
fn an_open_breaker_makes_the_acting_primary_give_the_role_up() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    h.connect_all(&[GatewayId(1), GatewayId(2)]);
    h.report(GatewayId(1), breaker_open());
    assert_eq!(h.acting(), Some(GatewayId(2)));
}

#[test]
fn with_nobody_eligible_the_designated_primary_keeps_the_role() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    h.connect_all(&[GatewayId(1)]);
    let actions = h.report(GatewayId(1), offline());
    assert!(primary_changes(&actions).is_empty());
    assert_eq!(h.acting(), Some(GatewayId(1)));
}

#[test]
fn a_stand_in_lost_with_nobody_else_eligible_hands_the_role_back_to_the_designated() {
    let mut h = Harness::started(vec![gw(GatewayId(1), true), gw(GatewayId(2), false)]);
    h.connect_all(&[GatewayId(1), GatewayId(2)]);
    h.report(GatewayId(1), offline());
    let changes = primary_changes(&h.report(GatewayId(2), offline()));
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].acting, changes[0].reason),
        (Some(GatewayId(1)), Reason::NoEligibleGateway)
    );
}

#[test]
fn exactly_one_view_is_flagged_through_every_move() {
    let mut h = Harness::started(vec![
        gw(GatewayId(1), true),
        gw(GatewayId(2), false),
        gw(GatewayId(3), false),
    ]);
    h.connect_all(&[GatewayId(1), GatewayId(2), GatewayId(3)]);
    for (id, state) in [
        (GatewayId(1), offline()),
        (GatewayId(2), offline()),
        (GatewayId(1), online()),
        (GatewayId(3), offline()),
    ] {
        h.report(id, state);
        assert_eq!(h.flagged(), h.acting().into_iter().collect::<Vec<_>>());
    }
}

#[test]
fn a_move_of_the_role_touches_only_the_two_gateways_whose_flag_moved() {
    let mut h = Harness::started(vec![
        gw(GatewayId(1), true),
        gw(GatewayId(2), false),
        gw(GatewayId(3), false),
        gw(GatewayId(4), false),
    ]);
    h.connect_all(&[GatewayId(1), GatewayId(2)]);
    h.state.take_touched();
    h.report(GatewayId(1), offline());
    assert_eq!(
        h.state.take_touched(),
        Some(vec![GatewayId(1), GatewayId(2)])
    );
}
