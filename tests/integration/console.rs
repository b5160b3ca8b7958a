//! The web console's session over HTTP: an API key logs in once and becomes an HttpOnly,
//! SameSite=Strict cookie that authenticates the API and its event stream; changes need the
//! console's own Origin; the cookie dies with its key and with logout; the files are served
//! with a strict content policy. The pages themselves are driven in Chromium (`browser.rs`).

use std::net::TcpListener;

use serde_json::json;

use crate::support::{Daemon, Request};

fn origin(d: &Daemon) -> String {
    format!("http://{}", d.addr)
}

/// Logs in with `key`; the `name=value` of the cookie set.
fn login(d: &Daemon, key: &str) -> String {
    let res = d.send(
        Request::new("POST", "/console/login")
            .header("origin", origin(d))
            .json(&json!({"key": key})),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let set = res.header("set-cookie").expect("a cookie").to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(set.contains(attr), "{attr} missing: {set}");
    }
    assert!(!set.contains(key), "the key itself is never the cookie");
    set.split(';').next().unwrap().to_owned()
}

#[test]
fn a_login_cookie_authenticates_the_api_with_the_keys_role() {
    let d = Daemon::start();
    let viewer = d.create_key("viewer", "wall-screen");
    let cookie = login(&d, &viewer);
    let res = d.send(Request::new("GET", "/console/session").header("cookie", &cookie));
    assert_eq!(res.status, 200);
    assert_eq!(res.json(), json!({"name": "wall-screen", "role": "viewer"}));
    let res = d.send(Request::new("GET", "/api/gateways").header("cookie", &cookie));
    assert_eq!(res.status, 200, "{}", res.text());
    // The role is the key's: a viewer's session cannot create a gateway.
    let res = d.send(
        Request::new("POST", "/api/gateways")
            .header("cookie", &cookie)
            .header("origin", origin(&d))
            .json(&json!({"name": "x", "host": "127.0.0.1", "port": 1})),
    );
    assert_eq!(res.status, 403, "{}", res.text());
    assert_eq!(res.json()["error"], "forbidden");
    // A wrong key logs nobody in; a tampered cookie is nobody.
    let res = d.send(
        Request::new("POST", "/console/login")
            .header("origin", origin(&d))
            .json(&json!({"key": "gsk_notARealKey0000000000000000000000"})),
    );
    assert_eq!(res.status, 401);
    assert!(res.header("set-cookie").is_none());
    let forged = cookie.replacen(".", ".9", 1);
    let res = d.send(Request::new("GET", "/api/gateways").header("cookie", &forged));
    assert_eq!(res.status, 401, "{}", res.text());
}

#[test]
fn changes_need_the_consoles_own_origin() {
    let d = Daemon::start();
    let cookie = login(&d, &d.admin_key);
    let create = |origin: Option<&str>, name: &str| {
        let mut req = Request::new("POST", "/api/gateways")
            .header("cookie", &cookie)
            .json(&json!({"name": name, "host": "127.0.0.1", "port": 1}));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        d.send(req)
    };
    let res = create(None, "no-origin");
    assert_eq!(res.status, 403, "{}", res.text());
    assert_eq!(res.json()["error"], "cross_origin");
    let res = create(Some("https://evil.example"), "elsewhere");
    assert_eq!(res.status, 403);
    assert!(res.text().contains("evil.example"), "{}", res.text());
    assert_eq!(create(Some(&origin(&d)), "ours").status, 201);
    // A login from another origin is refused too (no session planted from elsewhere).
    let res = d.send(
        Request::new("POST", "/console/login")
            .header("origin", "https://evil.example")
            .json(&json!({"key": d.admin_key})),
    );
    assert_eq!(res.status, 403);
    // Programs keep using the header: no Origin needed there.
    let res = d.call(
        "POST",
        "/api/gateways",
        &d.admin_key,
        &json!({"name": "program", "host": "127.0.0.1", "port": 2}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
}

#[test]
fn the_session_ends_with_its_key_and_with_logout() {
    let d = Daemon::start();
    let key = d.create_key("operator", "night-shift");
    let cookie = login(&d, &key);
    assert_eq!(
        d.send(Request::new("GET", "/api/gateways").header("cookie", &cookie))
            .status,
        200
    );
    let res = d.send(
        Request::new("POST", "/console/logout")
            .header("cookie", &cookie)
            .header("origin", origin(&d)),
    );
    assert_eq!(res.status, 204);
    assert!(res.header("set-cookie").unwrap().contains("Max-Age=0"));
    // The logout ended the session on the server too: a copy of the cookie is nobody now.
    let res = d.send(Request::new("GET", "/api/gateways").header("cookie", &cookie));
    assert_eq!(res.status, 401, "{}", res.text());
    assert!(res.text().contains("logged out"), "{}", res.text());
    // Logging straight back in (the same second, as the browser tests do) is a new session: the
    // logout ended only the one it was sent with.
    let again = login(&d, &key);
    assert_ne!(again, cookie, "a new session, not the one logged out");
    let res = d.send(Request::new("GET", "/api/gateways").header("cookie", &again));
    assert_eq!(res.status, 200, "{}", res.text());
    // Revoking the key ends every session of it (within the key refresh interval).
    let cookie = login(&d, &key);
    let out = d.cli(&["keys", "revoke", &key[..12]]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    crate::support::wait_until(
        "the revoked key's session refused",
        std::time::Duration::from_secs(10),
        || {
            (d.send(Request::new("GET", "/api/gateways").header("cookie", &cookie))
                .status
                == 401)
                .then_some(())
        },
    );
}

#[test]
fn the_files_are_served_with_a_strict_policy() {
    let d = Daemon::start();
    let res = d.send(Request::new("GET", "/"));
    assert_eq!(
        (res.status, res.header("location")),
        (302, Some("/console/"))
    );
    let res = d.send(Request::new("GET", "/console/"));
    assert_eq!(res.status, 200);
    assert!(res.text().contains("<script src=\"app.js\"></script>"));
    let csp = res.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
    for (path, kind) in [
        ("/console/app.js", "text/javascript"),
        ("/console/app.css", "text/css"),
        ("/console/vendor/uplot/uPlot.iife.min.js", "text/javascript"),
        ("/console/vendor/uplot/LICENSE", "text/plain"),
    ] {
        let res = d.send(Request::new("GET", path));
        assert_eq!(res.status, 200, "{path}");
        assert!(
            res.header("content-type").unwrap().starts_with(kind),
            "{path}"
        );
    }
    let res = d.send(Request::new("GET", "/console/../Cargo.toml"));
    assert_ne!(res.status, 200);
    let res = d.send(Request::new("GET", "/console/nope.js"));
    assert_eq!(res.status, 404);
    assert_eq!(res.json()["error"], "not_found");
    // No session: 401 naming the way in.
    let res = d.send(Request::new("GET", "/console/session"));
    assert_eq!(res.status, 401);
}

/// The fleet page reads the list a page at a time: `limit`/`offset`/`q`/`status` answer one page
/// with the matching total, the count per status and the acting primary; bad values are 400s
/// naming the parameter; without them the whole list is answered as before.
#[test]
fn a_large_fleet_is_read_a_page_at_a_time() {
    let d = Daemon::start();
    // Addresses this test holds and never answers: a fixed port can be another test's
    // ephemeral fake gateway (on a machine whose port range includes it), which then comes
    // online and takes the role mid-test — CI once failed so.
    let held: Vec<TcpListener> = (0..25)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    for (i, l) in held.iter().enumerate() {
        let port = l.local_addr().unwrap().port();
        let res = d.call(
            "POST",
            "/api/gateways",
            &d.admin_key,
            &json!({"name": format!("edge-{i:02}"), "host": "127.0.0.1", "port": port}),
        );
        assert_eq!(res.status, 201, "{}", res.text());
    }
    let get = |q: &str| d.get(&format!("/api/gateways{q}"), &d.admin_key);
    // While the links start (on PostgreSQL, as their leases are taken) the stand-in acting
    // primary moves among gateways none of which answers: the whole list and the page are
    // compared once they are read in the same state.
    let (whole, page) = crate::support::wait_for(
        "the primary first in the whole list and as the page's acting primary",
        std::time::Duration::from_secs(20),
        || {
            let whole = get("").json();
            let page = get("?limit=10&offset=20").json();
            if page["acting_primary"]["name"] == whole["gateways"][0]["name"] {
                Ok((whole, page))
            } else {
                Err(format!(
                    "whole list first {}, page {page}",
                    whole["gateways"][0]["name"]
                ))
            }
        },
    );
    assert_eq!(whole["gateways"].as_array().unwrap().len(), 25);
    assert!(whole.get("total").is_none(), "the whole list is unchanged");

    let names: Vec<&str> = page["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 5, "{page}");
    assert_eq!(
        (
            page["total"].as_u64(),
            page["limit"].as_u64(),
            page["offset"].as_u64()
        ),
        (Some(25), Some(10), Some(20))
    );
    let counted: u64 = page["counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(counted, 25, "{page}");

    let found = get("?q=EDGE-1").json();
    assert_eq!(found["total"], 10, "case-insensitive name match: {found}");
    assert_eq!(get("?status=online").json()["total"], 0);
    for (q, field) in [
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?status=sleepy", "status"),
        ("?offset=-1", "out of range"),
    ] {
        let res = get(q);
        assert_eq!(res.status, 400, "{q}: {}", res.text());
        let body = res.json();
        assert!(
            body["message"].as_str().unwrap().contains(field) || body["details"]["field"] == field,
            "{q}: {body}"
        );
    }
}

/// A WebSocket upgrade with the console's cookie, from `origin` (none: no header).
fn ws_with_cookie(d: &Daemon, cookie: &str, origin: Option<&str>) -> Result<(), u16> {
    let url = format!("ws://{}/api/ws", d.addr);
    let mut request =
        tungstenite::client::IntoClientRequest::into_client_request(url.as_str()).unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    if let Some(o) = origin {
        request.headers_mut().insert("origin", o.parse().unwrap());
    }
    let stream = std::net::TcpStream::connect(d.addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    match tungstenite::client::client(request, stream) {
        Ok(_) => Ok(()),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(res))) => {
            Err(res.status().as_u16())
        }
        Err(e) => panic!("websocket handshake: {e}"),
    }
}

#[test]
fn another_origin_cannot_open_the_event_streams_with_the_cookie() {
    let d = Daemon::start();
    let cookie = login(&d, &d.admin_key);
    // Another port of the same host is the same site: SameSite=Strict sends the cookie.
    let elsewhere = format!("http://127.0.0.1:{}", d.addr.port() + 1);
    assert_eq!(ws_with_cookie(&d, &cookie, Some(&elsewhere)), Err(403));
    assert_eq!(
        ws_with_cookie(&d, &cookie, Some("https://evil.example")),
        Err(403)
    );
    assert_eq!(ws_with_cookie(&d, &cookie, None), Err(403));
    assert_eq!(ws_with_cookie(&d, &cookie, Some(&origin(&d))), Ok(()));
    // A cross-origin EventSource sends its Origin; a page started elsewhere says so.
    let res = d.send(
        Request::new("GET", "/api/events")
            .header("cookie", &cookie)
            .header("origin", &elsewhere),
    );
    assert_eq!(res.status, 403, "{}", res.text());
    assert_eq!(res.json()["error"], "cross_origin");
    let res = d.send(
        Request::new("GET", "/api/gateways")
            .header("cookie", &cookie)
            .header("sec-fetch-site", "same-site"),
    );
    assert_eq!(res.status, 403, "{}", res.text());
    // A key in a header is not a browser's ambient credential: no Origin rule for it.
    let res = d.send(
        Request::new("GET", "/api/gateways")
            .key(&d.admin_key)
            .header("origin", &elsewhere),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    // After logout the cookie opens nothing, from anywhere.
    let res = d.send(
        Request::new("POST", "/console/logout")
            .header("cookie", &cookie)
            .header("origin", origin(&d)),
    );
    assert_eq!(res.status, 204);
    assert_eq!(ws_with_cookie(&d, &cookie, Some(&origin(&d))), Err(401));
}

#[test]
fn failed_logins_are_throttled_per_client_and_logged() {
    let d = Daemon::start();
    let attempt = |key: &str| {
        d.send(
            Request::new("POST", "/console/login")
                .header("origin", origin(&d))
                .json(&json!({"key": key})),
        )
    };
    let wrong = "gsk_notARealKey0000000000000000000000000000";
    let statuses: Vec<u16> = (0..30).map(|_| attempt(wrong).status).collect();
    let refused = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(refused, 10, "{statuses:?}");
    assert_eq!(throttled, 20, "{statuses:?}");
    let res = attempt(wrong);
    assert_eq!(res.status, 429);
    assert_eq!(res.json()["error"], "rate_limited");
    assert!(res.header("retry-after").is_some());
    // Even the right key waits: guessing must not learn from a different answer.
    assert_eq!(attempt(&d.admin_key).status, 429);
    crate::support::wait_until(
        "the refused logins in the log",
        std::time::Duration::from_secs(10),
        || {
            String::from_utf8_lossy(&d.logs())
                .contains("console login refused")
                .then_some(())
        },
    );
    assert!(
        !String::from_utf8_lossy(&d.logs()).contains(wrong),
        "the presented key is never logged"
    );
}

#[test]
fn over_https_the_cookie_is_host_prefixed_and_secure() {
    let d = Daemon::start();
    let res = d.send(
        Request::new("POST", "/console/login")
            .header("origin", format!("https://{}", d.addr))
            .header("x-forwarded-proto", "https")
            .json(&json!({"key": d.admin_key})),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let set = res.header("set-cookie").unwrap().to_owned();
    assert!(set.starts_with("__Host-gs_session="), "{set}");
    for attr in ["Secure", "Path=/", "HttpOnly", "SameSite=Strict"] {
        assert!(set.contains(attr), "{attr} missing: {set}");
    }
    assert!(!set.contains("Domain"), "{set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    let res = d.send(
        Request::new("GET", "/console/session")
            .header("cookie", &cookie)
            .header("x-forwarded-proto", "https"),
    );
    assert_eq!(res.status, 200, "{}", res.text());
}
