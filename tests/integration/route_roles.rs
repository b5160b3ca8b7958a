//! Every declared `/api` route (read from the declaration the daemon registers), every role,
//! every spelling of the path: the role decision is the one the route declares. A spelling the router does not match is a 404; one it does
//! match (percent-encoded letters, say) gets exactly the plain path's decision.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::support::Daemon;

/// (method, path with concrete ids, the least role admitted), for every route the daemon
/// declares (`src/http/api_routes.rs`: the table it registers, documents and is tested by).
/// Ids name nothing that exists, so an admitted request ends in a 4xx of the handler's own,
/// never in a change.
fn routes() -> Vec<(String, String, &'static str)> {
    gateway_supervisor::http::api_routes::ROUTES
        .iter()
        .map(|r| {
            (
                r.method.to_uppercase(),
                concrete(&r.documented_path()),
                r.role.as_str(),
            )
        })
        .collect()
}

/// A documented path with its parameters filled in with values naming nothing.
fn concrete(templ: &str) -> String {
    templ
        .replace("{id}", "999")
        .replace("{gateway_id}", "999")
        .replace("{key}", "nokey")
        .replace("{name}", "edge")
        .replace("{subject}", "key:999")
        .replace("/api/spawn/999", "/api/spawn/nospawn")
}

const ROLES: [&str; 3] = ["viewer", "operator", "admin"];

fn rank(role: &str) -> u8 {
    ROLES.iter().position(|r| *r == role).unwrap() as u8
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Reached the handler (whatever it answered).
    Admitted,
    /// 403 `forbidden`.
    Denied,
    /// The router matched no handler for this method and path (404 `not_found`, or 405
    /// `method_not_allowed` where the spelling matches another route, e.g. `/api/spawn/.`).
    NoRoute,
}

/// Sends one request with the path exactly as given and reads only what is needed to decide
/// (an event stream never ends, so the body is read up to its length, if any).
fn decide(addr: SocketAddr, method: &str, path: &str, key: &str) -> (Decision, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = if method == "GET" { "" } else { "{}" };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\nx-api-key: {key}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = s.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "{method} {path}: connection closed before a response head"
        );
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok());
    let mut body = raw[head_end + 4..].to_vec();
    if let Some(len) = length {
        while body.len() < len {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&buf[..n]);
        }
    }
    let code = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let decision = match (status, code.as_str()) {
        (403, "forbidden") => Decision::Denied,
        (404, "not_found") | (405, "method_not_allowed") => Decision::NoRoute,
        (401, _) => panic!("{method} {path}: a valid key was refused: {head}"),
        (500..=599, _) if status != 502 && status != 503 => {
            panic!("{method} {path}: server error {status}: {head}")
        }
        _ => Decision::Admitted,
    };
    (decision, format!("{status} {code}"))
}

fn encode(c: char) -> String {
    format!("%{:02X}", c as u32)
}

/// Spellings of `path` a client might try: each letter percent-encoded (upper- and
/// lower-case hex), every letter at once, `%2F` for each slash, a doubled slash at each
/// position, a trailing slash, and dot segments.
fn spellings(path: &str) -> Vec<String> {
    let chars: Vec<char> = path.chars().collect();
    let mut out = Vec::new();
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_alphanumeric() {
            let (a, b) = (
                chars[..i].iter().collect::<String>(),
                chars[i + 1..].iter().collect::<String>(),
            );
            out.push(format!("{a}{}{b}", encode(*c)));
            out.push(format!("{a}{}{b}", encode(*c).to_lowercase()));
        }
    }
    out.push(
        chars
            .iter()
            .map(|c| {
                if c.is_ascii_alphabetic() {
                    encode(*c)
                } else {
                    c.to_string()
                }
            })
            .collect(),
    );
    let slashes: Vec<usize> = path.match_indices('/').map(|(i, _)| i).collect();
    for &i in &slashes {
        if i > 0 {
            out.push(format!("{}%2F{}", &path[..i], &path[i + 1..]));
            out.push(format!("{}%2f{}", &path[..i], &path[i + 1..]));
        }
        out.push(format!("{}/{}", &path[..i], &path[i..]));
    }
    out.push(format!("{path}/"));
    out.push(format!("{path}//"));
    out.push(path.replacen("/api/", "/api/./", 1));
    out.push(path.replacen("/api/", "/api/x/../", 1));
    out.push(format!("/x/..{path}"));
    out.push(format!("{path}/."));
    out.push(path.replacen("/api/", "/api/%2e/", 1));
    out.push(path.replacen("/api/", "/api/x/%2e%2e/", 1));
    out
}

#[test]
fn every_route_admits_by_its_declared_role_however_the_path_is_spelled() {
    let d = Daemon::start_with(&[("GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE", "0")]);
    let keys = [
        d.create_key("viewer", "v"),
        d.create_key("operator", "o"),
        d.admin_key.clone(),
    ];

    // The table is the route list: every /api operation in the OpenAPI document is in it.
    let doc = d.get("/api/openapi.json", "").json();
    let mut documented = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/api/") || path.starts_with("/api/docs") {
            continue;
        }
        for (method, op) in ops.as_object().unwrap() {
            let scopes: Vec<String> = op["security"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|req| req.as_object())
                .flat_map(|req| req.values())
                .map(|roles| roles.to_string())
                .collect();
            assert!(
                !scopes.is_empty() && scopes.iter().all(|s| *s == scopes[0]),
                "{method} {path}: every security requirement names the same one role ({scopes:?})"
            );
            let role: Vec<String> = serde_json::from_str(&scopes[0]).unwrap();
            assert_eq!(role.len(), 1, "{method} {path}: one role, not {role:?}");
            documented.push((method.to_uppercase(), path.clone(), role[0].clone()));
        }
    }
    let routes = routes();
    assert!(routes.len() >= 75, "only {} routes declared", routes.len());
    for (method, templ, declared) in &documented {
        let path = concrete(templ);
        let Some((_, _, least)) = routes.iter().find(|(m, p, _)| m == method && *p == path) else {
            panic!("{method} {templ} is documented but not in the role matrix");
        };
        // The document states each operation's least role as its security scope (OpenAPI 3.1
        // "role names"), so clients read it from there; it must be the one enforced.
        assert_eq!(
            declared, least,
            "{method} {templ}: the document declares role {declared}, the route enforces {least}"
        );
    }
    assert_eq!(
        documented.len(),
        routes.len(),
        "the role matrix lists a route the API does not document"
    );

    let mut checked = 0;
    let mut admitted_by_spelling = 0;
    for (method, path, least) in &routes {
        for (role, key) in ROLES.iter().zip(&keys) {
            let expected = if rank(role) >= rank(least) {
                Decision::Admitted
            } else {
                Decision::Denied
            };
            let (plain, why) = decide(d.addr, method, path, key);
            assert_eq!(plain, expected, "{role}: {method} {path} → {why}");
            for spelled in spellings(path) {
                let (got, why) = decide(d.addr, method, &spelled, key);
                assert!(
                    got == expected || got == Decision::NoRoute,
                    "{role}: {method} {spelled} → {why} ({got:?}); {path} is {expected:?}"
                );
                if got == Decision::Admitted {
                    admitted_by_spelling += 1;
                }
                checked += 1;
            }
        }
    }
    // The router does decode percent-encoded letters, so the matrix did exercise the bypass.
    assert!(admitted_by_spelling > 0, "no spelling reached a route");
    assert!(checked > 2000, "only {checked} spellings tried");

    // The reported bypass, by name.
    let viewer = &keys[0];
    for path in [
        "/api/%61udit",
        "/%61pi/audit",
        "/api/audi%74",
        "/api/%61%75%64%69%74",
    ] {
        let (got, why) = decide(d.addr, "GET", path, viewer);
        assert_ne!(
            got,
            Decision::Admitted,
            "viewer read the audit log via {path}: {why}"
        );
    }
}
