//! The role matrix, both header forms, revocation.

use serde_json::json;

use crate::support::{Daemon, Request, metric, wait_until};
use std::time::{Duration, Instant};

/// 404 and 405 only for a caller with a valid key: without one, every `/api` path answers 401,
/// whether a route takes it (a list, a route at the top), its method is not one the route has,
/// or no route takes it (in a scope, at the top, `/api` itself).
#[test]
fn without_a_key_the_api_does_not_say_which_paths_exist_or_what_they_answer() {
    let d = Daemon::start();
    for (method, path, with_key) in [
        ("PATCH", "/api/sessions", 405),
        ("DELETE", "/api/gateways/health/history", 405),
        ("DELETE", "/api/fleet/versions", 405),
        ("GET", "/api/gateways/nope", 404),
        ("GET", "/api/config/nope", 404),
        ("GET", "/api/nope/deeper", 404),
        ("GET", "/api", 404),
    ] {
        let res = d.send(Request::new(method, path));
        assert_eq!(
            res.status,
            401,
            "{method} {path} without a key: {}",
            res.text()
        );
        assert_eq!(res.json()["error"], "unauthorized", "{method} {path}");
        let res = d.send(Request::new(method, path).key("gsk_not-a-real-key"));
        assert_eq!(res.status, 401, "{method} {path} with a garbage key");
        let res = d.send(Request::new(method, path).key(&d.admin_key));
        assert_eq!(
            res.status,
            with_key,
            "{method} {path} with a key: {}",
            res.text()
        );
    }
}

#[test]
fn role_matrix() {
    let d = Daemon::start();
    let viewer = d.create_key("viewer", "dash");
    let operator = d.create_key("operator", "ops");
    let gw = d.create_gateway("a", 1000, None);
    let id = gw["id"].as_i64().unwrap();

    // No key, garbage key, wrong header scheme: 401 everywhere under /api.
    for (method, path) in [
        ("GET", "/api/gateways"),
        ("POST", "/api/gateways"),
        ("GET", "/api/gateways/1"),
        ("GET", "/api/audit"),
        ("GET", "/api/nope"),
    ] {
        let res = d.send(Request::new(method, path));
        assert_eq!(res.status, 401, "{method} {path}");
        assert_eq!(res.json()["error"], "unauthorized");
        let res = d.send(Request::new(method, path).key("gsk_not-a-real-key"));
        assert_eq!(res.status, 401, "{method} {path} with a garbage key");
        let res = d.send(
            Request::new(method, path).header("authorization", format!("Basic {}", d.admin_key)),
        );
        assert_eq!(res.status, 401);
    }

    // Bearer works like x-api-key.
    let res = d.send(
        Request::new("GET", "/api/gateways").header("Authorization", format!("Bearer {viewer}")),
    );
    assert_eq!(res.status, 200);

    // Viewer and operator read but cannot mutate gateways (403 even with a malformed body).
    for key in [&viewer, &operator] {
        assert_eq!(d.get("/api/gateways", key).status, 200);
        assert_eq!(d.get(&format!("/api/gateways/{id}"), key).status, 200);
        let attempts = [
            d.call(
                "POST",
                "/api/gateways",
                key,
                &json!({"name": "b", "host": "h", "port": 1}),
            ),
            d.call(
                "PUT",
                "/api/gateways",
                key,
                &json!({"id": id, "name": "renamed"}),
            ),
            d.call(
                "PUT",
                &format!("/api/gateways/{id}"),
                key,
                &json!({"name": "renamed"}),
            ),
            d.call("DELETE", "/api/gateways", key, &json!({"id": id})),
            d.send(Request::new("DELETE", &format!("/api/gateways/{id}")).key(key)),
            d.send(
                Request::new("POST", "/api/gateways")
                    .key(key)
                    .header("content-type", "application/json")
                    .body("{bad"),
            ),
            d.get("/api/audit", key),
        ];
        for res in attempts {
            assert_eq!(res.status, 403, "{}", res.text());
            assert_eq!(res.json()["error"], "forbidden");
        }
    }
    // Nothing changed.
    assert_eq!(d.gateways()[0]["name"], "a");

    // Revoked keys stop working (the cache reloads every 200 ms in tests).
    let out = d.cli(&["keys", "revoke", &viewer[..12]]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(
        "the revoked key to be refused",
        Duration::from_secs(10),
        || (d.get("/api/gateways", &viewer).status == 401).then_some(()),
    );
    assert_eq!(d.get("/api/gateways", &operator).status, 200);
}

#[test]
fn keys_work_across_restarts_and_last_use_is_recorded() {
    let mut d = Daemon::start();
    let key = d.create_key("viewer", "reader");
    assert_eq!(d.get("/api/gateways", &key).status, 200);
    d.terminate();
    d.launch();
    assert_eq!(d.get("/api/gateways", &key).status, 200);
    let out = d.cli(&["keys", "list"]);
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        listing.contains("reader") && listing.contains(&key[..12]),
        "{listing}"
    );
    assert!(!listing.contains(&key), "the key itself is never listed");
    let reader_line = listing.lines().find(|l| l.contains("reader")).unwrap();
    assert!(
        !reader_line.contains("never"),
        "last use recorded: {reader_line}"
    );
}

#[test]
fn gateway_operations_are_rate_limited_per_key() {
    let d = Daemon::start_with(&[("GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE", "5")]);
    let other = d.create_key("viewer", "other");
    for _ in 0..5 {
        assert_eq!(d.get("/api/gateways", &d.admin_key).status, 200);
    }
    let res = d.get("/api/gateways", &d.admin_key);
    assert_eq!(res.status, 429);
    assert_eq!(res.json()["error"], "rate_limited");
    let retry: u64 = res
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Another key has its own budget; routes outside /api/gateways are not limited.
    assert_eq!(d.get("/api/gateways", &other).status, 200);
    assert_eq!(d.get("/api/audit", &d.admin_key).status, 200);
}

/// The limit counts gateway operations a key was let do: a request its role refuses (403) or a
/// path no route answers (404) spends none of its budget. Both used to be counted, the limit
/// wrapping the whole `/api/gateways` scope outside the role check: a viewer's refused writes
/// ran its dashboard's reads into 429s.
#[test]
fn a_request_refused_for_its_role_spends_none_of_the_key_s_gateway_operation_budget() {
    let d = Daemon::start_with(&[("GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE", "2")]);
    let viewer = d.create_key("viewer", "dashboard");
    for _ in 0..4 {
        let refused = d.call(
            "POST",
            "/api/gateways",
            &viewer,
            &serde_json::json!({"name": "x"}),
        );
        assert_eq!(refused.status, 403, "{}", refused.text());
        assert_eq!(d.get("/api/gateways/nowhere", &viewer).status, 404);
    }
    assert_eq!(d.get("/api/gateways", &viewer).status, 200);
    assert_eq!(d.get("/api/gateways", &viewer).status, 200);
    // The budget is two: the third read is the one refused.
    assert_eq!(d.get("/api/gateways", &viewer).status, 429);
}

/// Credentials that do not say one thing are refused, not guessed at (the API fuzz run found a
/// good `x-api-key` beside a malformed `Authorization` answered 200): a malformed
/// `Authorization`, or two headers naming different keys, is 401 whatever the other says.
#[test]
fn a_good_key_beside_a_bad_or_different_one_is_refused() {
    let d = Daemon::start();
    let with = |auth: &str| {
        d.send(
            Request::new("GET", "/api/gateways")
                .key(&d.admin_key)
                .header("Authorization", auth),
        )
    };
    for bad in ["Basic Zm9v", "Bearer", "x+G;"] {
        let res = with(bad);
        assert_eq!(res.status, 401, "{bad:?}: {}", res.text());
        assert!(
            res.json()["message"]
                .as_str()
                .unwrap()
                .contains("Authorization header is not `Bearer KEY`"),
            "{}",
            res.text()
        );
    }
    let res = with("Bearer gsk_another");
    assert_eq!(res.status, 401, "{}", res.text());
    assert!(res.text().contains("different keys"), "{}", res.text());
    // The same key twice is one key.
    assert_eq!(with(&format!("Bearer {}", d.admin_key)).status, 200);
}

/// A presented key is read as text without a check of each character; one with characters no
/// issued key has — a tab, a letter outside ASCII, before, inside or after a good key — is still
/// refused as an invalid key, and the good key beside them still works.
#[test]
fn a_key_with_characters_no_key_has_is_refused() {
    let d = Daemon::start();
    let key = &d.admin_key;
    let (head, tail) = key.split_at(10);
    for bad in [
        format!("{head}\t{tail}"),
        format!("{key}é"),
        format!("é{key}"),
        format!("{head}é{}", &tail[1..]),
        "gsk_é".to_owned(),
    ] {
        let res = d.send(Request::new("GET", "/api/gateways").key(&bad));
        assert_eq!(res.status, 401, "{bad:?}: {}", res.text());
        assert!(
            res.text().contains("invalid or revoked API key"),
            "{bad:?}: {}",
            res.text()
        );
    }
    assert_eq!(
        d.send(Request::new("GET", "/api/gateways").key(key)).status,
        200
    );
}

#[test]
fn a_flood_of_made_up_keys_is_refused_without_a_database_lookup_for_each() {
    let d = Daemon::start();
    let made_up = |i: usize| format!("gsk_{i:0>40}");
    assert_eq!(made_up(0).len(), d.admin_key.len());
    let sent = 200;
    let started = Instant::now();
    for i in 0..sent {
        let res = d.get("/api/gateways", &made_up(i));
        assert_eq!(res.status, 401, "{}", res.text());
        assert_eq!(res.json()["error"], "unauthorized");
    }
    let elapsed = started.elapsed().as_secs_f64();
    // 20 lookups a second, in bursts of 20: the rest were refused without one.
    let looked_up_at_most = 20.0 + (20.0 * elapsed).ceil();
    let refused = metric(&d, "rate_limited_total{limit=\"unknown_key_lookups\"}");
    assert!(
        refused >= sent as f64 - looked_up_at_most,
        "{refused} of {sent} made-up keys refused without a lookup in {elapsed:.2} s"
    );
    // A key made now works: at once, or from the next refresh.
    let key = d.create_key("viewer", "fresh");
    wait_until("the new key to work", Duration::from_secs(10), || {
        (d.get("/api/gateways", &key).status == 200).then_some(())
    });
}
