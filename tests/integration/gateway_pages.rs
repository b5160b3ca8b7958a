//! Reading a large fleet: a cursor walk that neither repeats nor skips a gateway while the fleet
//! changes under it, the filters, and `ETag`s a poller sends back to get `304`.

use std::net::TcpListener;

use serde_json::{Value, json};

use crate::support::fleet::{add, fake, link_daemon, wait_gateway};
use crate::support::{Daemon, Request};

/// Registers gateways at addresses this test holds and never answers (see `console.rs` for why
/// not fixed ports); returns their ids with the listeners to keep.
fn register(d: &Daemon, names: &[&str]) -> (Vec<i64>, Vec<TcpListener>) {
    let held: Vec<TcpListener> = names
        .iter()
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let ids = names
        .iter()
        .zip(&held)
        .map(|(name, l)| {
            let body =
                json!({"name": name, "host": "127.0.0.1", "port": l.local_addr().unwrap().port()});
            let res = d.call("POST", "/api/gateways", &d.admin_key, &body);
            assert_eq!(res.status, 201, "{}", res.text());
            res.json()["gateway"]["id"].as_i64().unwrap()
        })
        .collect();
    (ids, held)
}

fn names(page: &Value) -> Vec<String> {
    page["gateways"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {page}"))
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_cursor_walk_sees_every_gateway_once_while_gateways_come_and_go() {
    let d = Daemon::start();
    let (ids, _held) = register(
        &d,
        &["b-02", "b-04", "b-06", "b-08", "b-10", "b-12", "b-14"],
    );
    let designated = "b-02"; // the first gateway registered: the designated primary

    let first = d.get("/api/gateways?limit=3", &d.admin_key).json();
    assert_eq!(names(&first), vec![designated, "b-04", "b-06"]);
    assert_eq!(first["total"], 7);
    let mut seen = names(&first);
    let mut cursor = first["next_cursor"].as_str().unwrap().to_owned();

    // Meanwhile one gateway is added before the cursor, one after it, and one already seen is
    // deleted: an offset would now repeat or skip a row; the cursor does neither.
    let (_, _more) = register(&d, &["b-05", "b-09"]);
    let res =
        d.send(Request::new("DELETE", &format!("/api/gateways/{}", ids[1])).key(&d.admin_key));
    assert_eq!(res.status, 200, "{}", res.text());
    loop {
        let page = d
            .get(
                &format!("/api/gateways?limit=3&cursor={cursor}"),
                &d.admin_key,
            )
            .json();
        seen.extend(names(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(
        seen,
        vec![
            designated, "b-04", "b-06", "b-08", "b-09", "b-10", "b-12", "b-14"
        ]
    );
}

#[test]
fn a_bad_cursor_or_a_cursor_with_an_offset_is_refused_naming_the_cursor() {
    let d = Daemon::start();
    let (_, _held) = register(&d, &["c-1", "c-2"]);
    let cursor = d.get("/api/gateways?limit=1", &d.admin_key).json()["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let long = "A".repeat(600);
    for query in [
        "cursor=not-base64!".to_owned(),
        "cursor=eHl6".to_owned(), // base64 of "xyz": not a place
        format!("cursor={long}"),
        format!("cursor={cursor}&offset=1"),
    ] {
        let res = d.get(&format!("/api/gateways?{query}"), &d.admin_key);
        assert_eq!(res.status, 400, "{query}: {}", res.text());
        let body = res.json();
        assert_eq!(body["details"]["field"], "cursor", "{query}: {body}");
    }
    let last = d
        .get(
            &format!("/api/gateways?limit=1&cursor={cursor}"),
            &d.admin_key,
        )
        .json();
    assert_eq!(
        (names(&last), &last["next_cursor"]),
        (vec!["c-2".to_owned()], &Value::Null)
    );
}

#[test]
fn an_unchanged_list_answers_304_to_its_etag_and_a_change_moves_the_tag() {
    let d = Daemon::start();
    let (ids, _held) = register(&d, &["e-1", "e-2"]);
    let conditional = |path: &str, tag: &str| {
        d.send(
            Request::new("GET", path)
                .key(&d.admin_key)
                .header("if-none-match", tag.to_owned()),
        )
    };
    // The links of unreachable gateways move through their states at first: wait until the
    // registry is still (two reads a moment apart carry one tag).
    let paths = [
        "/api/gateways",
        "/api/gateways?limit=1",
        &format!("/api/gateways/{}", ids[0]),
    ];
    let (tags, unchanged) = crate::support::wait_for(
        "the same tag twice in a row on each read",
        std::time::Duration::from_secs(20),
        || {
            let tags: Vec<String> = paths
                .iter()
                .map(|p| d.get(p, &d.admin_key).header("etag").unwrap().to_owned())
                .collect();
            let again: Vec<_> = paths
                .iter()
                .zip(&tags)
                .map(|(p, t)| conditional(p, t))
                .collect();
            if again.iter().all(|r| r.status == 304) {
                Ok((tags, again[0].clone()))
            } else {
                Err(format!("{tags:?}"))
            }
        },
    );
    assert!(tags.iter().all(|t| t.starts_with("W/\"")), "{tags:?}");
    assert_ne!(tags[0], tags[1], "the page's tag is not the list's");
    assert!(unchanged.body.is_empty());
    assert_eq!(unchanged.header("etag"), Some(tags[0].as_str()));

    // A rename is a change every read shows: each answers 200 with a new tag.
    let res = d.call(
        "PUT",
        &format!("/api/gateways/{}", ids[0]),
        &d.admin_key,
        &json!({"name": "e-renamed"}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    for (path, old) in paths.iter().zip(&tags) {
        let res = conditional(path, old);
        assert_eq!(res.status, 200, "{path}: {}", res.text());
        assert_ne!(res.header("etag"), Some(old.as_str()), "{path}");
    }
    // A gateway deleted is a 404 whatever tag is sent.
    let gone = format!("/api/gateways/{}", ids[1]);
    let tag = d
        .get(&gone, &d.admin_key)
        .header("etag")
        .unwrap()
        .to_owned();
    // `*` matches any current representation (RFC 9110 §13.1.2): 304 for a gateway that is
    // there, 404 for one that is not.
    assert_eq!(conditional(paths[2], "*").status, 304);
    d.send(Request::new("DELETE", &gone).key(&d.admin_key));
    assert_eq!(conditional(&gone, &tag).status, 404);
    assert_eq!(conditional(&gone, "*").status, 404);
}

#[test]
fn the_version_filter_picks_gateways_by_the_release_they_reported() {
    let (old, new) = (fake(|c| c.version = "2026.8.1".into()), fake(|_| {}));
    let d = link_daemon(&[]);
    let a = add(&d, "old-release", &old, Some("fake-token"));
    let b = add(&d, "new-release", &new, Some("fake-token"));
    for id in [a, b] {
        wait_gateway(&d, id, "connected", |g| {
            g["connection"]["server_version"].is_string()
        });
    }
    let page = d.get("/api/gateways?version=2026.8.1", &d.admin_key).json();
    assert_eq!(
        (names(&page), &page["total"]),
        (vec!["old-release".to_owned()], &json!(1))
    );
    let res = d.get(
        &format!("/api/gateways?version={}", "9".repeat(65)),
        &d.admin_key,
    );
    assert_eq!(res.status, 400);
    assert_eq!(res.json()["details"]["field"], "version");
}
