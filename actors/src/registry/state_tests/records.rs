//! Records stay with the owner (`state/records.rs`): a member keeps the record — the tokens
//! with it — of the gateways it may link and of no other (those are peers: what routing and the
//! election need, `registry/peer_table.rs`), reads it when a lease makes a gateway its own, and
//! drops it when the lease goes.

use std::time::{Duration, Instant};

use secrecy::ExposeSecret;

use super::*;

fn with_token(id: i64) -> GatewayRecord {
    GatewayRecord {
        token: Some(format!("t{id}").into()),
        device_token: Some(format!("d{id}").into()),
        ..gw(GatewayId(id), id == 1)
    }
}

/// A member loaded from records carrying tokens (as the store returns them), started at `t0`.
fn member(ids: &[i64]) -> (Harness, Instant) {
    let t0 = Instant::now();
    let mut h = Harness::loaded(ids.iter().map(|id| with_token(*id)).collect());
    for id in ids {
        h.stored_tokens.insert(GatewayId(*id), format!("t{id}"));
    }
    h.state.leased(t0, "a");
    h.apply(Input::Started);
    (h, t0)
}

fn round(held: &[i64], now: Instant) -> Input {
    Input::Leases {
        held: held.iter().map(|id| (GatewayId(*id), 1)).collect(),
        valid_until: now + Duration::from_secs(15),
        coordinator: false,
        acting: None,
        now,
        beats: Vec::new(),
    }
}

fn reads(actions: &[RegistryAction]) -> Vec<(Vec<GatewayId>, bool)> {
    actions
        .iter()
        .filter_map(|a| match a {
            RegistryAction::ReadRecords { ids, after } => Some((ids.clone(), after.is_some())),
            _ => None,
        })
        .collect()
}

/// Whether the member keeps gateway `id`'s record (and so its tokens), it being registered.
fn carries(h: &Harness, id: i64) -> bool {
    assert!(h.state.contains(GatewayId(id)), "gateway {id} registered");
    h.state.record(GatewayId(id)).is_some()
}

#[test]
fn a_member_keeps_no_record_of_a_gateway_it_does_not_link_yet_knows_it() {
    let (mut h, _) = member(&[1, 2]);
    h.apply(Input::Written(gw(GatewayId(3), false), Write::Created));
    for id in [1, 2, 3] {
        assert!(!carries(&h, id), "gateway {id}");
    }
    assert_eq!(h.state.len(), 3);
    assert_eq!(h.state.designated(GatewayId(1)), Some(true));
    assert_eq!(h.state.designated(GatewayId(3)), Some(false));
}

#[test]
fn a_written_record_of_a_gateway_linked_elsewhere_is_not_kept() {
    let (mut h, t0) = member(&[1, 2]);
    h.apply(round(&[2], t0));
    h.apply(Input::StoreChanges {
        changed: vec![with_token(1), with_token(2)],
        deleted: vec![],
        owners: vec![],
    });
    assert!(
        !carries(&h, 1),
        "another instance's: read from the feed, its record not kept"
    );
    let mine = h.state.record(GatewayId(2)).unwrap();
    assert_eq!(mine.token.as_ref().unwrap().expose_secret(), "t2");
}

#[test]
fn a_lease_gained_reads_the_record_once_and_links_with_its_secrets() {
    let (mut h, t0) = member(&[1, 2, 3]);
    h.answers_secrets = false;
    let actions = h.apply(round(&[2, 3], t0));
    assert_eq!(
        reads(&actions),
        vec![(vec![GatewayId(2), GatewayId(3)], false)]
    );
    assert!(starts(&actions).is_empty(), "no link before its record");
    // The next round, before the answer: nothing asked twice.
    let actions = h.apply(round(&[2, 3], t0 + Duration::from_secs(3)));
    assert!(reads(&actions).is_empty());
    let read = h.records_stored(&[GatewayId(2), GatewayId(3)]);
    let actions = h.apply(Input::RecordsRead {
        asked: vec![GatewayId(2), GatewayId(3)],
        read: Some(read),
    });
    assert_eq!(starts(&actions), vec![GatewayId(2), GatewayId(3)]);
    let token = h.targets[&GatewayId(2)].token.as_ref().expect("its token");
    assert_eq!(token.expose_secret(), "t2");
    assert!(!carries(&h, 1));
}

#[test]
fn a_record_that_comes_after_the_lease_went_elsewhere_is_dropped_and_starts_nothing() {
    let (mut h, t0) = member(&[1, 2]);
    h.answers_secrets = false;
    h.apply(round(&[2], t0));
    h.apply(round(&[], t0 + Duration::from_secs(3)));
    let read = h.records_stored(&[GatewayId(2)]);
    let actions = h.apply(Input::RecordsRead {
        asked: vec![GatewayId(2)],
        read: Some(read),
    });
    assert!(starts(&actions).is_empty());
    assert!(!carries(&h, 2));
}

#[test]
fn a_lease_lost_or_lapsed_drops_the_record() {
    let (mut h, t0) = member(&[1, 2]);
    let actions = h.apply(round(&[1, 2], t0));
    assert_eq!(starts(&actions), vec![GatewayId(1), GatewayId(2)]);
    assert!(carries(&h, 1) && carries(&h, 2));
    let t1 = t0 + Duration::from_secs(3);
    let actions = h.apply(round(&[2], t1));
    assert_eq!(stops(&actions), vec![GatewayId(1)]);
    assert!(!carries(&h, 1), "gone elsewhere");
    assert!(carries(&h, 2));
    h.apply(Input::FenceCheck(t1 + Duration::from_secs(16)));
    assert!(!carries(&h, 2), "lapsed: not renewed in time");
}

#[test]
fn a_failed_read_is_asked_again_later_for_the_gateways_still_to_be_linked_only() {
    let (mut h, t0) = member(&[1, 2]);
    h.answers_secrets = false;
    h.apply(round(&[1, 2], t0));
    h.apply(round(&[2], t0 + Duration::from_secs(3)));
    let actions = h.apply(Input::RecordsRead {
        asked: vec![GatewayId(1), GatewayId(2)],
        read: None,
    });
    assert_eq!(reads(&actions), vec![(vec![GatewayId(2)], true)]);
    assert!(starts(&actions).is_empty());
    // Its lease kept, the second try finds it still waiting, and links it.
    let read = h.records_stored(&[GatewayId(2)]);
    let actions = h.apply(Input::RecordsRead {
        asked: vec![GatewayId(2)],
        read: Some(read),
    });
    assert_eq!(starts(&actions), vec![GatewayId(2)]);
    // Gateway 1 waits for nothing: a lease on it later asks afresh.
    let actions = h.apply(round(&[1, 2], t0 + Duration::from_secs(6)));
    assert_eq!(reads(&actions), vec![(vec![GatewayId(1)], false)]);
}

#[test]
fn alone_every_record_is_kept_with_its_secrets_and_nothing_is_read() {
    let mut h = Harness::loaded(vec![with_token(1), with_token(2)]);
    let actions = h.apply(Input::Started);
    assert!(reads(&actions).is_empty());
    assert_eq!(starts(&actions), vec![GatewayId(1), GatewayId(2)]);
    assert_eq!(
        h.targets[&GatewayId(2)]
            .token
            .as_ref()
            .unwrap()
            .expose_secret(),
        "t2"
    );
}
