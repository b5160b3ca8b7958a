//! The link writers of several instances on one PostgreSQL: their batched status writes lock
//! gateway rows, and while a gateway changes hands two instances write it in the same moment
//! (the old owner's last word, the new owner's first). Rows locked in each batch's own order
//! deadlocked at 100,000 gateways ("deadlock detected" in the background writes, the batch
//! lost); locked in one order they only wait for each other.

use std::sync::{Arc, Barrier};
use std::thread;

use gateway_supervisor::db::{self, Store};
use gateway_supervisor::secrets::Cipher;
use gateway_supervisor_actors::model::{Caller, GatewayId, GatewayStatus, NewGateway};
use gateway_supervisor_actors::store::{GatewayStore, LinkRecord};
use gs_test_support::daemon::Database;
use secrecy::SecretBox;

pub(crate) fn store_on(url: &str) -> Store {
    let (pool, _) = db::open(url, 4).expect("open the database");
    db::migrate(&pool).expect("migrate");
    Store {
        pool,
        cipher: Arc::new(Cipher::new(&SecretBox::new(Box::new([7u8; 32])))),
    }
}

#[test]
fn two_instances_writing_the_same_gateways_in_opposite_orders_both_succeed() {
    let Database::Postgres { url } = Database::postgres() else {
        unreachable!("Database::postgres")
    };
    let store = store_on(&url);
    let by = Caller::system("test");
    let ids: Vec<GatewayId> = (0..300)
        .map(|i| {
            let new = NewGateway {
                name: format!("gw{i:03}"),
                host: "127.0.0.1".into(),
                port: 20_000 + i,
                ..NewGateway::default()
            };
            store.insert_gateway(&new, &by).expect("insert").id
        })
        .collect();
    let record = |status| LinkRecord {
        status,
        last_seen: Some(1),
        latency: Some(2),
        sessions_count: 0,
        agents_count: 0,
    };
    let ascending: Vec<_> = ids
        .iter()
        .map(|&id| (id, record(GatewayStatus::Online)))
        .collect();
    let descending: Vec<_> = ids
        .iter()
        .rev()
        .map(|&id| (id, record(GatewayStatus::Offline)))
        .collect();
    let start = Arc::new(Barrier::new(2));
    let writers: Vec<_> = [ascending, descending]
        .into_iter()
        .map(|batch| {
            let (store, start) = (store_on(&url), start.clone());
            thread::spawn(move || {
                start.wait();
                (0..20)
                    .map(|_| store.save_link_records(&batch))
                    .filter_map(Result::err)
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let failures: Vec<String> = writers
        .into_iter()
        .flat_map(|w| w.join().expect("writer thread"))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of 40 batches failed: {:?}",
        failures.len(),
        failures.first()
    );
    let statuses: Vec<GatewayStatus> = store
        .load_gateways(false)
        .expect("load")
        .iter()
        .map(|g| g.status)
        .collect();
    assert_eq!(statuses.len(), 300);
    assert!(
        statuses.windows(2).all(|w| w[0] == w[1]),
        "one batch is the last word for every row"
    );
}
