//! Exactly one primary whenever a gateway exists, under concurrency and across restarts.

use serde_json::json;

use crate::support::Daemon;

fn primaries(d: &Daemon) -> Vec<i64> {
    d.gateways()
        .iter()
        .filter(|g| g["is_primary"] == true)
        .map(|g| g["id"].as_i64().unwrap())
        .collect()
}

#[test]
fn fifty_parallel_primary_switches_leave_exactly_one() {
    let mut d = Daemon::start_with(&[("GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE", "0")]);
    let ids: Vec<i64> = (0..10)
        .map(|i| {
            d.create_gateway(&format!("gw{i}"), 2000 + i, None)["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let d = &d;
                let id = ids[i % ids.len()];
                s.spawn(move || {
                    d.call(
                        "PUT",
                        "/api/gateways",
                        &d.admin_key,
                        &json!({"id": id, "is_primary": true}),
                    )
                    .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let p = primaries(&d);
    assert_eq!(p.len(), 1, "{p:?}");
    // Memory and database agree: the same primary after a restart.
    d.restart();
    assert_eq!(primaries(&d), p);
}

#[test]
fn parallel_creates_asking_for_primary_leave_exactly_one() {
    let d = Daemon::start_with(&[("GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE", "0")]);
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..30)
            .map(|i| {
                let d = &d;
                s.spawn(move || {
                    d.call("POST", "/api/gateways", &d.admin_key, &json!({"name": format!("p{i}"), "host": "127.0.0.1", "port": 3000 + i, "is_primary": true}))
                        .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    assert_eq!(d.gateways().len(), 30);
    assert_eq!(primaries(&d).len(), 1);
}

#[test]
fn the_primary_cannot_be_unset_or_deleted() {
    let d = Daemon::start();
    let a = d.create_gateway("a", 1, None);
    let b = d.create_gateway("b", 2, None);
    assert_eq!(a["is_primary"], true);
    let res = d.call(
        "PUT",
        "/api/gateways",
        &d.admin_key,
        &json!({"id": a["id"], "is_primary": false}),
    );
    assert_eq!(res.status, 400);
    assert_eq!(res.json()["error"], "primary_gateway");
    // Setting false on a non-primary is a no-op, not an error.
    let res = d.call(
        "PUT",
        "/api/gateways",
        &d.admin_key,
        &json!({"id": b["id"], "is_primary": false}),
    );
    assert_eq!(res.status, 200);
    // Moving the primary then deleting the old one works.
    assert_eq!(
        d.call(
            "PUT",
            "/api/gateways",
            &d.admin_key,
            &json!({"id": b["id"], "is_primary": true})
        )
        .status,
        200
    );
    assert_eq!(
        d.call(
            "DELETE",
            "/api/gateways",
            &d.admin_key,
            &json!({"id": a["id"]})
        )
        .status,
        200
    );
    assert_eq!(primaries(&d), vec![b["id"].as_i64().unwrap()]);
}

/// Two registrations of one gateway would be two links, two owners of it: the second is a 409
/// naming the first, on create and on an update that moves a gateway onto a taken address.
#[test]
fn one_address_is_one_gateway() {
    let d = Daemon::start();
    let first = d.create_gateway("first", 18001, None);
    let second = d.create_gateway("second", 18002, None);
    let again = json!({"name": "again", "host": "127.0.0.1", "port": 18001});
    let res = d.call("POST", "/api/gateways", &d.admin_key, &again);
    assert_eq!(res.status, 409, "{}", res.text());
    let body = res.json();
    assert_eq!(body["error"], "duplicate_address");
    assert_eq!(body["details"]["gateway_id"], first["id"]);
    assert!(
        body["message"].as_str().unwrap().contains("`first`"),
        "{body}"
    );
    // Hosts compare without case.
    let upper = json!({"name": "upper", "host": "LOCALHOST", "port": 18003});
    assert_eq!(
        d.call("POST", "/api/gateways", &d.admin_key, &upper).status,
        201
    );
    let lower = json!({"name": "lower", "host": "localhost", "port": 18003});
    assert_eq!(
        d.call("POST", "/api/gateways", &d.admin_key, &lower).status,
        409
    );
    // Moving the second gateway onto the first one's port is refused; nothing changed.
    let path = format!("/api/gateways/{}", second["id"]);
    let res = d.call("PUT", &path, &d.admin_key, &json!({"port": 18001}));
    assert_eq!(res.status, 409, "{}", res.text());
    assert_eq!(d.get(&path, &d.admin_key).json()["gateway"]["port"], 18002);
    // Its own address again is no conflict.
    let res = d.call(
        "PUT",
        &path,
        &d.admin_key,
        &json!({"port": 18002, "name": "second-b"}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(d.gateways().len(), 3);
}
