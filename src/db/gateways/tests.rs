//! The gateway store on a real database.

use super::*;
use crate::db::test_support::sqlite_pool;
use crate::secrets::Cipher;
use secrecy::{ExposeSecret, SecretBox};
use std::sync::Arc;

fn store() -> (Store, tempfile::TempDir) {
    let (pool, dir) = sqlite_pool();
    let cipher = Arc::new(Cipher::new(&SecretBox::new(Box::new([3u8; 32]))));
    (Store { pool, cipher }, dir)
}

/// A new gateway, at an address of its own (one gateway per address).
fn new_gw(name: &str, primary: bool, token: Option<&str>) -> NewGateway {
    static NEXT_PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(20_000);
    NewGateway {
        name: name.into(),
        host: "127.0.0.1".into(),
        port: NEXT_PORT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
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
    let all = store.load_gateways(false).unwrap();
    assert_eq!(all.iter().filter(|g| g.is_primary).count(), 1);
    assert!(all.iter().find(|g| g.id == b.id).unwrap().is_primary);
    let loaded_a = all.iter().find(|g| g.id == a.id).unwrap();
    assert_eq!(loaded_a.token.as_ref().unwrap().expose_secret(), "tok-a");

    let patch = GatewayPatch {
        is_primary: Some(true),
        ..Default::default()
    };
    store.update_gateway(a.id, &patch, &by).unwrap();
    let all = store.load_gateways(false).unwrap();
    assert_eq!(
        all.iter()
            .filter(|g| g.is_primary)
            .map(|g| g.id)
            .collect::<Vec<_>>(),
        vec![a.id]
    );
    // 2 creates + 1 update, each audited.
    let audit = store.audit_entries(10, None).unwrap();
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
        store
            .update_gateway(GatewayId(99), &patch, &by)
            .unwrap_err(),
        StoreError::NotFound(GatewayId(99))
    ));
    assert!(matches!(
        store.delete_gateway(GatewayId(99), &by).unwrap_err(),
        StoreError::NotFound(GatewayId(99))
    ));
}

#[test]
fn the_primary_is_never_deleted_by_the_store_while_others_remain() {
    let (store, _dir) = store();
    let by = Caller::system("test");
    let a = store.insert_gateway(&new_gw("a", true, None), &by).unwrap();
    let b = store
        .insert_gateway(&new_gw("b", false, None), &by)
        .unwrap();
    assert!(store.delete_gateway(a.id, &by).is_err());
    assert_eq!(store.load_gateways(false).unwrap().len(), 2);
    // The last one may go (the registry allows it only for a lost managed gateway): no
    // gateway, no primary.
    store.delete_gateway(b.id, &by).unwrap();
    store.delete_gateway(a.id, &by).unwrap();
    assert_eq!(store.load_gateways(false).unwrap().len(), 0);
}

fn tokens_of(store: &Store, id: GatewayId) -> (Option<String>, Option<String>) {
    let g = store
        .load_gateways(false)
        .unwrap()
        .into_iter()
        .find(|g| g.id == id)
        .unwrap();
    (
        g.token.map(|t| t.expose_secret().to_owned()),
        g.device_token.map(|t| t.expose_secret().to_owned()),
    )
}

#[test]
fn a_token_follows_an_address_changed_through_the_store_and_not_one_changed_behind_it() {
    let (store, _dir) = store();
    let by = Caller::system("test");
    let a = store
        .insert_gateway(&new_gw("a", true, Some("tok-a")), &by)
        .unwrap();
    store
        .save_device_token(a.id, Some(&SecretString::from("dev-a".to_owned())))
        .unwrap();
    assert_eq!(
        tokens_of(&store, a.id),
        (Some("tok-a".into()), Some("dev-a".into()))
    );
    // The operator moves the gateway: the shared token goes with it, the device token (the
    // old gateway's) is dropped.
    let patch = GatewayPatch {
        host: Some("gw2.internal".into()),
        port: Some(443),
        tls: Some(true),
        ..Default::default()
    };
    store.update_gateway(a.id, &patch, &by).unwrap();
    assert_eq!(tokens_of(&store, a.id), (Some("tok-a".into()), None));
    // Someone changes the address with plain SQL: the token is not handed to the new address.
    let mut conn = store.conn().unwrap();
    diesel::update(gateways::table.find(a.id))
        .set(gateways::host.eq("203.0.113.9"))
        .execute(&mut *conn)
        .unwrap();
    drop(conn);
    assert_eq!(tokens_of(&store, a.id), (None, None));
    // Nor is a token copied onto another gateway's row.
    let b = store
        .insert_gateway(&new_gw("b", false, None), &by)
        .unwrap();
    let mut conn = store.conn().unwrap();
    let blob: Option<Vec<u8>> = gateways::table
        .find(a.id)
        .select(gateways::token_enc)
        .first(&mut *conn)
        .unwrap();
    diesel::update(gateways::table.find(b.id))
        .set(gateways::token_enc.eq(blob))
        .execute(&mut *conn)
        .unwrap();
    drop(conn);
    assert_eq!(tokens_of(&store, b.id), (None, None));
}

#[test]
fn tokens_stored_before_the_binding_are_sealed_to_their_gateway_once() {
    let (store, _dir) = store();
    let by = Caller::system("test");
    let a = store.insert_gateway(&new_gw("a", true, None), &by).unwrap();
    let legacy =
        |plain: &str, purpose: &[u8]| store.cipher.encrypt(plain.as_bytes(), purpose).unwrap();
    let mut conn = store.conn().unwrap();
    diesel::update(gateways::table.find(a.id))
        .set((
            gateways::token_enc.eq(legacy("tok-a", crate::secrets::purpose::GATEWAY_TOKEN)),
            gateways::device_token_enc.eq(legacy("dev-a", crate::secrets::purpose::DEVICE_TOKEN)),
        ))
        .execute(&mut *conn)
        .unwrap();
    drop(conn);
    assert_eq!(tokens_of(&store, a.id), (None, None), "not read unbound");
    assert_eq!(store.bind_legacy_tokens().unwrap(), 2);
    assert_eq!(
        tokens_of(&store, a.id),
        (Some("tok-a".into()), Some("dev-a".into()))
    );
    // Once: a legacy value written afterwards (plain SQL) is never bound.
    let mut conn = store.conn().unwrap();
    diesel::update(gateways::table.find(a.id))
        .set(gateways::token_enc.eq(legacy("tok-x", crate::secrets::purpose::GATEWAY_TOKEN)))
        .execute(&mut *conn)
        .unwrap();
    drop(conn);
    assert_eq!(store.bind_legacy_tokens().unwrap(), 0);
    assert_eq!(tokens_of(&store, a.id).0, None);
}

#[test]
fn label_changes_made_at_once_are_all_kept() {
    let (store, _dir) = store();
    let by = Caller::system("test");
    let g = store.insert_gateway(&new_gw("a", true, None), &by).unwrap();
    let store = Arc::new(store);
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let (store, by) = (store.clone(), by.clone());
            std::thread::spawn(move || {
                let patch = LabelPatch::from([(format!("k{i}"), Some(format!("v{i}")))]);
                store.patch_labels(g.id, &patch, &by).unwrap();
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let labels = store.load_gateways(false).unwrap()[0].labels.clone();
    assert_eq!(labels.len(), 8, "{labels}");
    // A merge that would leave invalid labels changes nothing.
    let too_many: LabelPatch = (0..60)
        .map(|i| (format!("x{i}"), Some("v".to_owned())))
        .collect();
    assert!(matches!(
        store.patch_labels(g.id, &too_many, &by),
        Err(StoreError::Labels(_))
    ));
    assert_eq!(store.load_gateways(false).unwrap()[0].labels, labels);
    let removed = LabelPatch::from([("k0".to_owned(), None)]);
    let after = store.patch_labels(g.id, &removed, &by).unwrap();
    assert_eq!(after.labels.get("k0"), None);
    assert!(matches!(
        store.patch_labels(GatewayId(999), &removed, &by),
        Err(StoreError::NotFound(GatewayId(999)))
    ));
}

/// What an instance about to link gateways reads: each one's tokens as stored now, decrypted,
/// and nothing for a gateway deleted (or never registered) — in more ids than one statement
/// takes.
#[test]
fn the_secrets_of_gateways_to_link_are_read_as_stored_now() {
    let (store, _dir) = store();
    let by = Caller::system("test");
    let a = store
        .insert_gateway(&new_gw("a", true, Some("tok-a")), &by)
        .unwrap();
    let b = store
        .insert_gateway(&new_gw("b", false, None), &by)
        .unwrap();
    store
        .save_device_token(b.id, Some(&SecretString::from("dev-b".to_owned())))
        .unwrap();
    let patch = GatewayPatch {
        token: Some(Some(SecretString::from("tok-a2".to_owned()))),
        ..Default::default()
    };
    store.update_gateway(a.id, &patch, &by).unwrap();
    // Ids past the first statement's, none of them registered, around the two that are.
    let mut ids: Vec<GatewayId> = (1_000..1_600).map(GatewayId).collect();
    ids.push(b.id);
    ids.insert(0, a.id);
    let mut read = store.gateway_secrets(&ids).unwrap();
    read.sort_by_key(|s| s.id);
    let shown: Vec<(GatewayId, Option<&str>, Option<&str>)> = read
        .iter()
        .map(|s| {
            (
                s.id,
                s.token.as_ref().map(|t| t.expose_secret()),
                s.device_token.as_ref().map(|t| t.expose_secret()),
            )
        })
        .collect();
    assert_eq!(
        shown,
        vec![(a.id, Some("tok-a2"), None), (b.id, None, Some("dev-b"))]
    );
}

/// One gateway per address, whatever the memory of the caller said: a create at another's
/// address (its host in another case) or an update moving onto it is refused by the store,
/// naming the holder; an update that keeps its own address, or moves to a free one, is not.
#[test]
fn a_second_gateway_at_one_address_is_refused_naming_the_first() {
    let (store, _dir) = store();
    let by = Caller::system("test");
    let mut edge = new_gw("edge", true, None);
    edge.host = "Edge.Example".into();
    let edge = store.insert_gateway(&edge, &by).unwrap();
    let mut twin = new_gw("twin", false, None);
    (twin.host, twin.port) = ("edge.example".into(), edge.port);
    let refused = store.insert_gateway(&twin, &by).unwrap_err();
    assert!(
        matches!(&refused, StoreError::DuplicateAddress { id, name, port, .. }
            if *id == edge.id && name == "edge" && *port == edge.port),
        "{refused:?}"
    );
    let other = store
        .insert_gateway(&new_gw("other", false, None), &by)
        .unwrap();
    let onto_edge = GatewayPatch {
        host: Some("EDGE.example".into()),
        port: Some(edge.port),
        ..Default::default()
    };
    assert!(matches!(
        store.update_gateway(other.id, &onto_edge, &by).unwrap_err(),
        StoreError::DuplicateAddress { id, .. } if id == edge.id
    ));
    // Refused whole: nothing of the update was written.
    let stored = store.load_gateways(false).unwrap();
    let kept = stored.iter().find(|g| g.id == other.id).unwrap();
    assert_eq!((kept.host.as_str(), kept.port), ("127.0.0.1", other.port));
    let own = GatewayPatch {
        host: Some("edge.EXAMPLE".into()),
        ..Default::default()
    };
    store.update_gateway(edge.id, &own, &by).unwrap();
    let free = GatewayPatch {
        port: Some(1),
        ..Default::default()
    };
    store.update_gateway(other.id, &free, &by).unwrap();
    assert_eq!(store.load_gateways(false).unwrap().len(), 2);
}
