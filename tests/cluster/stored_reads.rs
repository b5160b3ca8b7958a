//! The gateways as an instance reads those it does not link (`Store::stored_gateways`,
//! `Store::stored_gateway`, `Store::stored_maintenance_over`; docs/design.md, *Cluster*, "Reading the fleet"): keyset pages that
//! together hold every gateway once, sealed tokens, and who holds each lease.

use gateway_supervisor::db::cluster::Which;
use gateway_supervisor_actors::model::{Caller, GatewayId, NewGateway};
use gateway_supervisor_actors::store::GatewayStore;
use gs_test_support::daemon::{Database, psql};
use secrecy::SecretString;

use crate::store_locks::store_on;

#[test]
fn pages_of_stored_gateways_hold_each_once_sealed_with_their_lease_holders() {
    let Database::Postgres { url } = Database::postgres() else {
        unreachable!("Database::postgres")
    };
    let store = store_on(&url);
    let by = Caller::system("test");
    let ids: Vec<GatewayId> = (0..250)
        .map(|i| {
            let new = NewGateway {
                name: format!("gw{i:03}"),
                host: "127.0.0.1".into(),
                port: 20_000 + i,
                token: (i % 2 == 0).then(|| SecretString::from(format!("token-{i}"))),
                ..NewGateway::default()
            };
            store.insert_gateway(&new, &by).expect("insert").id
        })
        .collect();
    // An epoch lease, a previous version's timed one (no epoch), a released one.
    psql(
        &url,
        &format!(
            "INSERT INTO gateway_leases (gateway_id, owner, epoch, expires_at, owner_epoch) VALUES \
             ({}, 'a', 5, 'infinity', 3), ({}, 'b', 2, now() + interval '1 minute', NULL), \
             ({}, 'c', 9, now(), NULL)",
            ids[0], ids[1], ids[2]
        ),
    );

    let mut read = Vec::new();
    let mut after = GatewayId(0);
    loop {
        let page = store.stored_gateways(after, 100).expect("a page");
        assert!(page.len() <= 100);
        let Some(last) = page.last() else { break };
        after = last.record.id;
        read.extend(page);
    }
    let read_ids: Vec<GatewayId> = read.iter().map(|g| g.record.id).collect();
    assert_eq!(read_ids, ids, "every gateway once, by id");
    for (i, g) in read.iter().enumerate() {
        assert!(g.record.token.is_none() && g.record.device_token.is_none());
        assert_eq!(g.record.has_token(), i % 2 == 0, "{}", g.record.name);
    }
    assert_eq!(read[0].owner, Some(("a".to_owned(), 3)));
    assert_eq!(read[1].owner, None, "a timed lease names no epoch");
    assert_eq!(read[2].owner, None, "released");

    let by_name = store
        .stored_gateway(&Which::Name("gw000".into()))
        .expect("read")
        .expect("gw000 is stored");
    assert_eq!(by_name.record.id, ids[0]);
    assert_eq!(by_name.owner, Some(("a".to_owned(), 3)));
    let by_id = store.stored_gateway(&Which::Id(ids[7])).expect("read");
    assert_eq!(by_id.map(|g| g.record.name).as_deref(), Some("gw007"));
    assert!(
        store
            .stored_gateway(&Which::Name("nobody".into()))
            .expect("read")
            .is_none()
    );
    assert!(
        store
            .stored_gateway(&Which::Id(GatewayId(i64::MAX)))
            .expect("read")
            .is_none()
    );

    // Windows that end at 100 and 200 and one with no end: by 150, the first only; by 200, both
    // that end; each with its lease holder.
    psql(
        &url,
        &format!(
            "UPDATE gateways SET maintenance_reason = 'r', maintenance_by = 'ops', \
             maintenance_since = 1, maintenance_until = CASE id WHEN {} THEN 100 WHEN {} THEN 200 \
             END WHERE id IN ({}, {}, {})",
            ids[0], ids[3], ids[0], ids[3], ids[4]
        ),
    );
    let over = |now: i64| -> Vec<GatewayId> {
        let rows = store.stored_maintenance_over(now).expect("read");
        rows.iter().map(|g| g.record.id).collect()
    };
    assert_eq!(over(99), Vec::<GatewayId>::new());
    assert_eq!(over(150), vec![ids[0]]);
    assert_eq!(over(200), vec![ids[0], ids[3]]);
    let first = store.stored_maintenance_over(150).expect("read");
    assert_eq!(first[0].owner, Some(("a".to_owned(), 3)));
    assert!(first[0].record.token.is_none(), "sealed");
}
