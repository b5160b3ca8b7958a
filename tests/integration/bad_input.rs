//! Malformed requests get the right 4xx JSON error naming the problem; never a 5xx; the daemon
//! keeps serving and nothing is written.

use crate::support::{Daemon, Request};

struct Case {
    what: &'static str,
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
}

fn case(
    what: &'static str,
    body: impl Into<Vec<u8>>,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
) -> Case {
    Case {
        what,
        method: "POST",
        path: "/api/gateways".into(),
        content_type: Some("application/json"),
        body: body.into(),
        status,
        code,
        field,
    }
}

#[test]
fn malformed_requests_get_clear_json_errors() {
    let d = Daemon::start_with(&[("GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE", "0")]);
    let existing = d.create_gateway("existing", 1000, None);
    let id = existing["id"].as_i64().unwrap();
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let mut cases = vec![
        case(
            "truncated JSON",
            r#"{"name": "x", "host": "#,
            400,
            "invalid_json",
            None,
        ),
        case("empty body", "", 400, "invalid_json", None),
        case("whitespace body", "  \n ", 400, "invalid_json", None),
        case(
            "array instead of object",
            "[]",
            400,
            "invalid_request",
            None,
        ),
        case(
            "trailing garbage",
            r#"{"name":"x","host":"h","port":1} xyz"#,
            400,
            "invalid_json",
            None,
        ),
        case(
            "port as a string",
            r#"{"name":"x","host":"h","port":"18789"}"#,
            400,
            "invalid_request",
            Some("port"),
        ),
        case(
            "port 0",
            r#"{"name":"x","host":"h","port":0}"#,
            400,
            "invalid_field",
            Some("port"),
        ),
        case(
            "port 70000",
            r#"{"name":"x","host":"h","port":70000}"#,
            400,
            "invalid_field",
            Some("port"),
        ),
        case(
            "negative port",
            r#"{"name":"x","host":"h","port":-1}"#,
            400,
            "invalid_field",
            Some("port"),
        ),
        case(
            "fractional port",
            r#"{"name":"x","host":"h","port":1.5}"#,
            400,
            "invalid_request",
            Some("port"),
        ),
        case(
            "huge port",
            r#"{"name":"x","host":"h","port":99999999999999999999999}"#,
            400,
            "invalid_request",
            Some("port"),
        ),
        case(
            "empty name",
            r#"{"name":"","host":"h","port":1}"#,
            400,
            "invalid_field",
            Some("name"),
        ),
        case(
            "blank name",
            r#"{"name":"   ","host":"h","port":1}"#,
            400,
            "invalid_field",
            Some("name"),
        ),
        case(
            "name too long",
            format!(r#"{{"name":"{}","host":"h","port":1}}"#, "n".repeat(101)),
            400,
            "invalid_field",
            Some("name"),
        ),
        case(
            "missing name",
            r#"{"host":"h","port":1}"#,
            400,
            "invalid_request",
            Some("name"),
        ),
        case(
            "name is a number",
            r#"{"name":42,"host":"h","port":1}"#,
            400,
            "invalid_request",
            Some("name"),
        ),
        case(
            "unknown field",
            r#"{"name":"x","host":"h","port":1,"colour":"red"}"#,
            400,
            "invalid_request",
            Some("colour"),
        ),
        case(
            "SQL in the name",
            r#"{"name":"x'); DROP TABLE gateways; --","host":"h","port":1}"#,
            400,
            "invalid_field",
            Some("name"),
        ),
        case(
            "HTML in the name",
            r#"{"name":"<script>alert(1)</script>","host":"h","port":1}"#,
            400,
            "invalid_field",
            Some("name"),
        ),
        case(
            "invalid host",
            r#"{"name":"x","host":"not a host!","port":1}"#,
            400,
            "invalid_field",
            Some("host"),
        ),
        case(
            "missing host",
            r#"{"name":"x","port":1}"#,
            400,
            "invalid_field",
            Some("host"),
        ),
        case(
            "is_primary as a word",
            r#"{"name":"x","host":"h","port":1,"is_primary":"yes"}"#,
            400,
            "invalid_request",
            Some("is_primary"),
        ),
        case(
            "token with a control char",
            r#"{"name":"x","host":"h","port":1,"token":"a\u0000b"}"#,
            400,
            "invalid_field",
            Some("token"),
        ),
        case(
            "token in a URL",
            r#"{"name":"x","url":"ws://h:1/?token=abc"}"#,
            400,
            "invalid_field",
            Some("url"),
        ),
        case(
            "http URL",
            r#"{"name":"x","url":"http://h:1"}"#,
            400,
            "invalid_field",
            Some("url"),
        ),
        case(
            "url and host together",
            r#"{"name":"x","url":"ws://h:1","host":"h"}"#,
            422,
            "unprocessable",
            None,
        ),
        case(
            "non-UTF-8 body",
            b"{\"name\":\"\xff\xfe\xfd\",\"host\":\"h\",\"port\":1}".to_vec(),
            400,
            "invalid_json",
            None,
        ),
        case("nesting bomb", nested, 400, "invalid_request", None),
        // serde fills a struct from an array in field order: an array must not create a
        // gateway, probe one or delete one.
        case(
            "a gateway as an array",
            r#"["n","127.0.0.1",1234,null,null,false,false]"#,
            400,
            "invalid_request",
            None,
        ),
        Case {
            path: "/api/gateways/health".into(),
            ..case(
                "a probe target as an array",
                "[1]",
                400,
                "invalid_request",
                None,
            )
        },
        Case {
            method: "DELETE",
            ..case(
                "a delete target as an array",
                format!("[{id}]"),
                400,
                "invalid_request",
                None,
            )
        },
        case("a string body", r#""x""#, 400, "invalid_request", None),
        case(
            "10 MB body",
            format!(
                r#"{{"name":"{}","host":"h","port":1}}"#,
                "x".repeat(10 * 1024 * 1024)
            ),
            413,
            "payload_too_large",
            None,
        ),
    ];
    cases.push(Case {
        content_type: Some("text/plain"),
        ..case(
            "text/plain content type",
            r#"{"name":"x","host":"h","port":1}"#,
            415,
            "unsupported_media_type",
            None,
        )
    });
    cases.push(Case {
        content_type: None,
        ..case(
            "no content type",
            r#"{"name":"x","host":"h","port":1}"#,
            415,
            "unsupported_media_type",
            None,
        )
    });
    cases.push(Case {
        method: "PUT",
        ..case(
            "update with a string id",
            r#"{"id":"one","name":"y"}"#,
            400,
            "invalid_request",
            Some("id"),
        )
    });
    cases.push(Case {
        method: "PUT",
        ..case(
            "update without id",
            r#"{"name":"y"}"#,
            400,
            "invalid_request",
            Some("id"),
        )
    });
    cases.push(Case {
        method: "PUT",
        ..case(
            "update with nothing to change",
            format!(r#"{{"id":{id}}}"#),
            400,
            "invalid_request",
            None,
        )
    });
    cases.push(Case {
        method: "PUT",
        ..case(
            "unknown status",
            format!(r#"{{"id":{id},"status":"great"}}"#),
            400,
            "invalid_field",
            Some("status"),
        )
    });
    cases.push(Case {
        method: "PUT",
        ..case(
            "negative latency",
            format!(r#"{{"id":{id},"latency":-5}}"#),
            400,
            "invalid_field",
            Some("latency"),
        )
    });
    cases.push(Case {
        method: "DELETE",
        ..case(
            "delete with a null id",
            r#"{"id":null}"#,
            400,
            "invalid_request",
            Some("id"),
        )
    });
    cases.push(Case {
        method: "PUT",
        path: "/api/gateways/99999999999999999999".into(),
        ..case(
            "path id overflow",
            r#"{"name":"y"}"#,
            400,
            "invalid_request",
            Some("id"),
        )
    });
    cases.push(Case {
        method: "GET",
        path: "/api/gateways/abc".into(),
        content_type: None,
        ..case("non-numeric path id", "", 404, "not_found", None)
    });
    // Gateway ids start at 1: 0 is refused where it is read, not looked up and not found.
    cases.push(Case {
        method: "GET",
        path: "/api/gateways/0".into(),
        content_type: None,
        ..case("path id 0", "", 400, "invalid_request", Some("id"))
    });
    cases.push(Case {
        method: "DELETE",
        ..case(
            "delete id 0",
            r#"{"id":0}"#,
            400,
            "invalid_request",
            Some("id"),
        )
    });
    for path in [
        "/api/sessions?gateway_id=-162468028",
        "/api/logs?gateway_id=0",
        "/api/approvals?gateway_id=0",
        "/api/gateways/health/history?gateway_id=-1",
        "/api/spawn?gateway_id=0",
    ] {
        cases.push(Case {
            method: "GET",
            path: path.into(),
            content_type: None,
            ..case(
                "a filter's gateway id below 1",
                "",
                400,
                "invalid_request",
                None,
            )
        });
    }
    cases.push(Case {
        method: "POST",
        path: "/api/gateways/health".into(),
        ..case(
            "probe of gateway -1",
            r#"{"gateway_id":-1}"#,
            400,
            "invalid_request",
            Some("gateway_id"),
        )
    });
    cases.push(Case {
        method: "PATCH",
        ..case("unsupported method", "{}", 405, "method_not_allowed", None)
    });
    cases.push(Case {
        method: "GET",
        path: "/api/audit?limit=abc".into(),
        content_type: None,
        ..case("bad query string", "", 400, "invalid_request", None)
    });
    assert!(cases.len() >= 20);

    for c in &cases {
        let mut req = Request::new(c.method, &c.path)
            .key(&d.admin_key)
            .body(c.body.clone());
        if let Some(ct) = c.content_type {
            req = req.header("content-type", ct);
        }
        let res = d.send(req);
        assert!(
            res.status < 500,
            "{}: got {} {}",
            c.what,
            res.status,
            res.text()
        );
        assert_eq!(res.status, c.status, "{}: {}", c.what, res.text());
        let body = res.json();
        assert_eq!(body["error"], c.code, "{}: {body}", c.what);
        let message = body["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{}: empty message", c.what);
        if let Some(field) = c.field {
            assert_eq!(body["details"]["field"], field, "{}: {body}", c.what);
            assert!(
                message.contains(field),
                "{}: the message names `{field}`: {message}",
                c.what
            );
        }
        // Still serving after each one.
        assert_eq!(d.get("/healthz", "").status, 200, "{}", c.what);
    }
    let list = d.gateways();
    assert_eq!(list.len(), 1, "no malformed request wrote anything");
    assert_eq!(list[0]["name"], "existing");
}

#[test]
fn oversized_bodies_respect_the_configured_limit() {
    let d = Daemon::start_with(&[("GATEWAY_SUPERVISOR__LIMITS__MAX_BODY_BYTES", "2KiB")]);
    let ok = format!(
        r#"{{"name":"small","host":"h","port":1,"token":"{}"}}"#,
        "t".repeat(1500)
    );
    let res = d.send(
        Request::new("POST", "/api/gateways")
            .key(&d.admin_key)
            .header("content-type", "application/json")
            .body(ok),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let big = format!(
        r#"{{"name":"big","host":"h","port":1,"token":"{}"}}"#,
        "t".repeat(3000)
    );
    let res = d.send(
        Request::new("POST", "/api/gateways")
            .key(&d.admin_key)
            .header("content-type", "application/json")
            .body(big),
    );
    assert_eq!(res.status, 413);
    assert_eq!(res.json()["details"]["limit_bytes"], 2048);
}

#[test]
fn wrong_methods_get_405_with_allow_and_invented_methods_mint_no_metric_series() {
    let d = Daemon::start();
    // 405 names what the route does allow (RFC 9110).
    for (method, path, allow) in [
        ("PATCH", "/api/gateways", "GET, HEAD, POST, PUT, DELETE"),
        ("POST", "/api/audit", "GET, HEAD"),
        ("DELETE", "/healthz", "GET, HEAD"),
        ("DELETE", "/api/spawn", "GET, HEAD, POST"),
        // A HEAD's answer has no body: its status and Allow say it.
        ("HEAD", "/api/gateways/1/drain", "POST"),
    ] {
        let res = d.send(Request::new(method, path).key(&d.admin_key));
        assert_eq!(res.status, 405, "{method} {path}: {}", res.text());
        if method != "HEAD" {
            assert_eq!(res.json()["error"], "method_not_allowed");
        }
        assert_eq!(res.header("allow"), Some(allow), "{method} {path}");
    }
    // Unauthenticated invented methods: one `OTHER` label, not a series each.
    for i in 0..20 {
        let method = format!("FOOBAR{i}");
        let res = d.send(Request::new(&method, "/healthz"));
        assert_eq!(res.status, 405);
    }
    let text = d.get("/metrics", "").text();
    assert!(!text.contains("FOOBAR"), "{text}");
    assert!(
        text.contains(r#"method="OTHER""#),
        "invented methods are counted under OTHER"
    );
}

/// RFC 9110 §9.3.2: wherever GET works, HEAD answers what GET would, without the body. The
/// event streams answer their headers and end (a stream has no end to wait for).
#[test]
fn head_answers_wherever_get_does() {
    let d = Daemon::start();
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/openapi.json",
        "/console/",
        "/api/gateways",
        "/api/gateways/999",
        "/api/audit",
        "/api/events",
        "/api/logs?follow=true",
    ] {
        let get = if path.starts_with("/api/events") || path.contains("follow") {
            None
        } else {
            Some(d.send(Request::new("GET", path).key(&d.admin_key)))
        };
        let started = std::time::Instant::now();
        let head = d.send(Request::new("HEAD", path).key(&d.admin_key));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "HEAD {path} ended"
        );
        assert!(head.body.is_empty(), "HEAD {path} has no body");
        match get {
            Some(get) => {
                assert_eq!(head.status, get.status, "HEAD {path}");
                assert_eq!(
                    head.header("content-type"),
                    get.header("content-type"),
                    "HEAD {path}"
                );
            }
            None => {
                assert_eq!(head.status, 200, "HEAD {path}");
                assert_eq!(head.header("content-type"), Some("text/event-stream"));
            }
        }
    }
    // The role rule is the GET's: a viewer's HEAD of the audit log is refused as its GET is.
    let viewer = d.create_key("viewer", "v");
    assert_eq!(
        d.send(Request::new("HEAD", "/api/audit").key(&viewer))
            .status,
        403
    );
    assert_eq!(d.send(Request::new("HEAD", "/api/gateways")).status, 401);
}

/// A refused client cannot keep its connection by sending a body that never ends (main
/// drained it: 200 such clients held 200 descriptors for over a minute).
#[test]
fn refused_requests_with_endless_bodies_are_closed() {
    use std::io::{Read, Write};
    let d = Daemon::start();
    let mut socks = Vec::new();
    for key in ["", "gsk_not-a-real-key"] {
        for _ in 0..20 {
            let mut s = std::net::TcpStream::connect(d.addr).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
                .unwrap();
            let head = format!(
                "POST /api/gateways HTTP/1.1\r\nhost: x\r\nx-api-key: {key}\r\n\
                 content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{{\"a\":\r\n"
            );
            s.write_all(head.as_bytes()).unwrap();
            socks.push(s);
        }
    }
    for mut s in socks {
        let mut raw = Vec::new();
        // The server answers 401 and closes: read_to_end returns instead of timing out.
        s.read_to_end(&mut raw)
            .expect("the connection is closed after the refusal");
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    }
}
