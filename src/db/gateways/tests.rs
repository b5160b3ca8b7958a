//! The gateway store on a real database.

use super::*;
use crate::db::test_support::sqlite_pool;
use crate::secrets::Cipher;
use secrecy::SecretBox;
use std::sync::Arc;

fn store() -> (Store, tempfile::TempDir) {
    let (pool, dir) = sqlite_pool();
    let cipher = Arc::new(Cipher::new(&SecretBox::new(Box::new([3u8; 32]))));
    (Store { pool, cipher }, dir)
}

fn new_gw(name: &str, primary: bool, token: Option<&str>) -> NewGateway {
    NewGateway {
        name: name.into(),
        host: "127.0.0.1".into(),
        port: 18789,
        tls: false,
        allow_insecure_tls: false,
        token: token.map(|t| SecretString::from(t.to_owned())),
        is_primary: primary,
        ..NewGateway::default()
    }
}

#[test]
fn primary_switch_is_one_transaction_and_tokens_round_trip() {
    let (store, _dir) = store();
    let by = Caller::system("test");
    let a = store
        .insert_gateway(&new_gw("a", true, Some("tok-a")), &by)
        .unwrap();
    let b = store.insert_gateway(&new_gw("b", true, None), &by).unwrap();
    let all = store.load_gateways().unwrap();
    assert_eq!(all.iter().filter(|g| g.is_primary).count(), 1);
    assert!(all.iter().find(|g| g.id == b.id).unwrap().is_primary);
    let loaded_a = all.iter().find(|g| g.id == a.id).unwrap();
    assert_eq!(loaded_a.token.as_ref().unwrap().expose_secret(), "tok-a");

    let patch = GatewayPatch {
        is_primary: Some(true),
        ..Default::default()
    };
    store.update_gateway(a.id, &patch, &by).unwrap();
    let all = store.load_gateways().unwrap();
    assert_eq!(
        all.iter()
            .filter(|g| g.is_primary)
            .map(|g| g.id)
            .collect::<Vec<_>>(),
        vec![a.id]
    );
    // 2 creates + 1 update, each audited.
    let audit = store.audit_entries(10).unwrap();
    assert_eq!(audit.len(), 3);
    assert!(
        audit
            .iter()
            .all(|r| r.details.as_deref().is_none_or(|d| !d.contains("tok-a")))
    );
}

#[test]
fn duplicate_names_and_missing_rows_are_typed() {
    let (store, _dir) = store();
    let by = Caller::system("test");
    store.insert_gateway(&new_gw("a", true, None), &by).unwrap();
    assert!(matches!(
        store
            .insert_gateway(&new_gw("a", false, None), &by)
            .unwrap_err(),
        StoreError::DuplicateName(name) if name == "a"
    ));
    let patch = GatewayPatch {
        port: Some(1),
        ..Default::default()
    };
    assert!(matches!(
        store.update_gateway(99, &patch, &by).unwrap_err(),
        StoreError::NotFound(99)
    ));
    assert!(matches!(
        store.delete_gateway(99, &by).unwrap_err(),
        StoreError::NotFound(99)
    ));
}

#[test]
fn the_primary_is_never_deleted_by_the_store() {
    let (store, _dir) = store();
    let by = Caller::system("test");
    let a = store.insert_gateway(&new_gw("a", true, None), &by).unwrap();
    assert!(store.delete_gateway(a.id, &by).is_err());
    assert_eq!(store.load_gateways().unwrap().len(), 1);
}
