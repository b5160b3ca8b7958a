//! Tenants and scoped keys (docs/design.md, *Tenancy*): a key scoped to tenant `blue` cannot
//! see, act on or stream a gateway of tenant `red` through any route — the routes are read
//! from the table the daemon registers, so a route added later fails here until it says what
//! a scoped key gets — and cannot relabel its way into another tenant.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fleet::{fake, link_daemon, start_run, wait_gateway};
use crate::support::{Daemon, Request, Response, online, wait_until};
use gateway_supervisor::http::api_routes::ROUTES;
use gateway_supervisor::http::roles::Reach;

/// An id no gateway, operation, spawn or approval has.
const GHOST: i64 = 999_999;

fn add_in(d: &Daemon, name: &str, port: u16, tenant: &str) -> i64 {
    let body = json!({"name": name, "host": "127.0.0.1", "port": port, "token": "fake-token",
        "labels": {"tenant": tenant, "region": "eu"}});
    let res = d.call("POST", "/api/gateways", &d.admin_key, &body);
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()["gateway"]["id"].as_i64().unwrap()
}

/// What a scoped key is shown for one route.
enum Case {
    /// The same request on the other tenant's object and on one that does not exist: the
    /// answers must be the same (status and code) — out of scope does not reveal existence —
    /// or 403 `out_of_scope`.
    Same {
        other: (String, Value),
        ghost: (String, Value),
    },
    /// A listing: it must not name the other tenant's gateway (by name or id).
    List(String),
    /// An event stream: checked by reading one (below).
    Stream,
}

/// Every route of tenant reach, aimed at gateway `red` (whose operation is `op` and spawn
/// `spawn`). `None`: a route this test does not know — the test fails naming it.
fn case(method: &str, pattern: &str, red: i64, op: &str, spawn: &str) -> Option<Case> {
    let path = |id: &str| {
        pattern
            .replace(r"{id:\d+}", id)
            .replace("{gateway_id}", id)
            .replace("{id}", id)
    };
    let same = |other: String, ghost: String, body: Value| Case::Same {
        other: (other, body.clone()),
        ghost: (ghost, body),
    };
    let on_gateway = |body: Value| same(path(&red.to_string()), path(&GHOST.to_string()), body);
    let with_id = |key: &str, extra: Value| {
        let body = |id: i64| {
            let mut b = extra.clone();
            b[key] = json!(id);
            b
        };
        Case::Same {
            other: (pattern.to_owned(), body(red)),
            ghost: (pattern.to_owned(), body(GHOST)),
        }
    };
    let fleet_op = |extra: Value| {
        let body = |id: i64| {
            let mut b = extra.clone();
            b["gateway_ids"] = json!([id]);
            b
        };
        Case::Same {
            other: (pattern.to_owned(), body(red)),
            ghost: (pattern.to_owned(), body(GHOST)),
        }
    };
    Some(match (method, pattern) {
        ("get", "/api/gateways") => Case::List("/api/gateways".into()),
        ("post", "/api/gateways") => return Some(Case::List("/api/gateways?limit=10".into())),
        ("put", "/api/gateways") => with_id("id", json!({"name": "taken-over"})),
        ("delete", "/api/gateways") => with_id("id", json!({})),
        ("post", "/api/gateways/health") => with_id("gateway_id", json!({})),
        ("get", "/api/gateways/health/history") => same(
            format!("{pattern}?gateway_id={red}"),
            format!("{pattern}?gateway_id={GHOST}"),
            Value::Null,
        ),
        ("patch", _) if pattern.ends_with("/labels") => on_gateway(json!({"tenant": "blue"})),
        ("post", _) if pattern.ends_with("/maintenance") => on_gateway(json!({"reason": "mine"})),
        ("put", r"/api/gateways/{id:\d+}") => on_gateway(json!({"name": "taken-over"})),
        ("patch", r"/api/v1/gateways/{id:\d+}") => on_gateway(json!({"name": "taken-over"})),
        (_, p) if p.starts_with("/api/gateways/{id") || p.starts_with("/api/v1/gateways/{id") => {
            on_gateway(json!({}))
        }
        ("get", "/api/v1/gateways") => Case::List(pattern.into()),
        ("post", "/api/v1/gateways") => Case::List("/api/v1/gateways".into()),
        ("get", "/api/sessions") => Case::List(format!("/api/sessions?gateway_id={red}")),
        ("post", "/api/sessions/{key}/control") => same(
            format!("/api/sessions/agent:main:x/control?gateway_id={red}"),
            format!("/api/sessions/agent:main:x/control?gateway_id={GHOST}"),
            json!({"action": "kill"}),
        ),
        ("get", "/api/operations") => Case::List(pattern.into()),
        (_, p) if p.starts_with("/api/operations/{id}") => same(
            p.replace("{id}", op),
            p.replace("{id}", "op_000000000000000000000000"),
            json!({}),
        ),
        ("get", "/api/approvals") => same(
            format!("{pattern}?gateway_id={red}"),
            format!("{pattern}?gateway_id={GHOST}"),
            Value::Null,
        ),
        ("get", "/api/cron/jobs") => same(
            format!("{pattern}?system=true&gateway_id={red}"),
            format!("{pattern}?system=true&gateway_id={GHOST}"),
            Value::Null,
        ),
        ("post", p) if p.starts_with("/api/cron/gateways/") => same(
            p.replace(r"{gateway_id:\d+}", &red.to_string()),
            p.replace(r"{gateway_id:\d+}", &GHOST.to_string()),
            json!({}),
        ),
        ("get", p) if p.starts_with("/api/cron/jobs/") => same(
            p.replace("{gateway_id}", &red.to_string())
                .replace("{job_id}", "j1"),
            p.replace("{gateway_id}", &GHOST.to_string())
                .replace("{job_id}", "j1"),
            Value::Null,
        ),
        (_, p) if p.starts_with("/api/approvals/") => same(
            p.replace("{gateway_id}", &red.to_string())
                .replace("{id}", "a1"),
            p.replace("{gateway_id}", &GHOST.to_string())
                .replace("{id}", "a1"),
            json!({"decision": "allow-once"}),
        ),
        ("get", "/api/config/rollouts") => Case::List(pattern.into()),
        ("get", "/api/config/rollouts/{id}") => same(
            pattern.replace("{id}", op),
            pattern.replace("{id}", "op_000000000000000000000000"),
            Value::Null,
        ),
        ("get", "/api/spawn") => Case::List(pattern.into()),
        ("post", "/api/spawn") => with_id("gateway_id", json!({"agent": "main", "task": "t"})),
        ("get", "/api/spawn/{id}") => same(
            pattern.replace("{id}", spawn),
            pattern.replace("{id}", "00000000-0000-0000-0000-000000000000"),
            Value::Null,
        ),
        ("get", "/api/agents") => Case::List(pattern.into()),
        (_, r"/api/agents/{id:\d+}") => same(
            path(&GHOST.to_string()),
            path(&(GHOST + 1).to_string()),
            json!({"role": "r"}),
        ),
        ("post", "/api/fleet/restart" | "/api/fleet/upgrade" | "/api/fleet/update-hold") => {
            fleet_op(json!({}))
        }
        ("get", "/api/fleet/versions") => Case::List(pattern.into()),
        ("get", "/api/usage" | "/api/usage/spend") => Case::List(pattern.into()),
        // Its tenant's part of the log only: the export, which holds every gateway's details.
        ("get", "/api/audit") => Case::List("/api/audit?format=ndjson".into()),
        ("get", "/api/logs") => same(
            format!("{pattern}?gateway_id={red}"),
            format!("{pattern}?gateway_id={GHOST}"),
            Value::Null,
        ),
        ("get", "/api/events" | "/api/ws") => Case::Stream,
        _ => return None,
    })
}

fn send(d: &Daemon, key: &str, method: &str, (path, body): &(String, Value)) -> Response {
    if body.is_null() {
        d.send(Request::new(method, path).key(key))
    } else {
        d.call(method, path, key, body)
    }
}

fn decision(res: &Response) -> (u16, String) {
    let code = serde_json::from_slice::<Value>(&res.body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (res.status, code)
}

#[test]
fn a_tenant_key_reaches_its_tenant_only_through_every_route() {
    let d = link_daemon(&[]);
    let (fa, fb) = (fake(|_| {}), fake(|_| {}));
    let blue_gw = add_in(&d, "blue-edge", fa.port(), "blue");
    let red = add_in(&d, "red-edge", fb.port(), "red");
    for id in [blue_gw, red] {
        wait_gateway(&d, id, "online", online);
    }
    // Red's own work, by a platform key: an operation and a spawn on its gateway.
    let res = d.call(
        "POST",
        "/api/fleet/update-hold",
        &d.admin_key,
        &json!({"gateway_ids": [red]}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let op = res.json()["operation"]["id"].as_str().unwrap().to_owned();
    start_run(&d, red, &fb, "red work");
    let spawns = d
        .get(&format!("/api/spawn?gateway_id={red}"), &d.admin_key)
        .json();
    let spawn = spawns["spawns"][0]["spawn_id"].as_str().unwrap().to_owned();

    let blue = d.create_scoped_key("admin", "blue-admin", &["--tenant", "blue"]);
    let red_before = d.get(&format!("/api/gateways/{red}"), &d.admin_key).json();

    let mut unknown = Vec::new();
    for route in ROUTES {
        let method = route.method.to_uppercase();
        if route.reach == Reach::Platform {
            let path = route
                .pattern
                .replace(r"{id:\d+}", "1")
                .replace("{id}", "x")
                .replace("{name}", "n")
                .replace("{subject}", "tenant:red");
            let res = send(&d, &blue, &method, &(path.clone(), json!({})));
            assert_eq!(
                decision(&res),
                (403, "out_of_scope".into()),
                "{method} {path}: a platform route answered a tenant key: {}",
                res.text()
            );
            continue;
        }
        match case(route.method, route.pattern, red, &op, &spawn) {
            None => unknown.push(format!("{method} {}", route.pattern)),
            Some(Case::Stream) => {}
            Some(Case::List(path)) => {
                let res = d.get(&path, &blue);
                assert!(res.status < 500, "{path}: {}", res.text());
                let text = res.text();
                let ids = [
                    format!("\"gateway_id\":{red},"),
                    format!("\"gateway_id\":{red}}}"),
                ];
                for leak in ["red-edge", &ids[0], &ids[1], &op, &spawn] {
                    assert!(
                        !text.contains(leak),
                        "{path} shows `{leak}` to blue: {text}"
                    );
                }
            }
            Some(Case::Same { other, ghost }) => {
                let on_red = send(&d, &blue, &method, &other);
                let on_ghost = send(&d, &blue, &method, &ghost);
                let (red_says, ghost_says) = (decision(&on_red), decision(&on_ghost));
                assert!(
                    red_says == (403, "out_of_scope".into()) || red_says == ghost_says,
                    "{method} {}: on red's {red_says:?} ({}), on nothing {ghost_says:?} ({})",
                    other.0,
                    on_red.text(),
                    on_ghost.text()
                );
                assert!(
                    on_red.status >= 400,
                    "{method} {}: {}",
                    other.0,
                    on_red.text()
                );
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "routes this test does not know what a tenant key gets: {unknown:?}"
    );

    // Red's gateway is as it was: not renamed, relabelled, cordoned, held or deleted.
    let red_after = d.get(&format!("/api/gateways/{red}"), &d.admin_key).json();
    for field in ["name", "labels", "cordoned", "maintenance", "status"] {
        assert_eq!(
            red_after["gateway"][field], red_before["gateway"][field],
            "{field}"
        );
    }
    let audit = d.get("/api/audit?limit=200", &d.admin_key).json();
    for row in audit["entries"].as_array().unwrap() {
        assert!(
            !(row["actor"].as_str().unwrap_or("").contains("blue-admin")
                && row["target_id"] == json!(red.to_string())),
            "blue acted on red: {row}"
        );
    }
    // Blue's admin reads its tenant's part of the log: its gateway's rows, none of red's; and
    // not red's part by asking for it.
    let part = d.get("/api/audit?limit=200", &blue).json();
    let targets: Vec<&Value> = part["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["target_type"] == "gateway")
        .map(|r| &r["target_id"])
        .collect();
    assert!(targets.contains(&&json!(blue_gw.to_string())), "{part}");
    assert!(!targets.contains(&&json!(red.to_string())), "{part}");
    let other = d.get("/api/audit?format=ndjson&tenant=red", &blue);
    assert_eq!(decision(&other), (403, "out_of_scope".into()));
}

#[test]
fn a_tenant_key_sees_and_works_its_own_gateways_and_cannot_relabel_its_way_out() {
    let d = link_daemon(&[]);
    let (fa, fb) = (fake(|_| {}), fake(|_| {}));
    let mine = add_in(&d, "blue-edge", fa.port(), "blue");
    let theirs = add_in(&d, "red-edge", fb.port(), "red");
    wait_gateway(&d, mine, "online", online);
    wait_gateway(&d, theirs, "online", online);
    let blue = d.create_scoped_key("admin", "blue-admin", &["--tenant", "blue"]);
    let blue_reader = d.create_scoped_key("viewer", "blue-read", &["--tenant", "blue"]);

    let names = |key: &str| -> Vec<String> {
        d.get("/api/gateways", key).json()["gateways"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&blue), ["blue-edge"]);
    assert_eq!(names(&blue_reader), ["blue-edge"]);
    assert_eq!(names(&d.admin_key), ["blue-edge", "red-edge"]);
    let page = d.get("/api/gateways?limit=10", &blue).json();
    assert_eq!(page["total"], 1, "{page}");

    // Its own labels, yes; a reserved one, never — not set, changed or removed.
    let patch = |body: Value| {
        d.call(
            "PATCH",
            &format!("/api/gateways/{mine}/labels"),
            &blue,
            &body,
        )
    };
    assert_eq!(patch(json!({"region": "us"})).status, 200);
    for body in [json!({"tenant": "red"}), json!({"tenant": null})] {
        let res = patch(body.clone());
        assert_eq!(
            decision(&res),
            (403, "out_of_scope".into()),
            "{body}: {}",
            res.text()
        );
        assert!(
            res.text().contains("`tenant` is reserved"),
            "{}",
            res.text()
        );
    }
    let res = d.call(
        "PUT",
        &format!("/api/gateways/{mine}"),
        &blue,
        &json!({"labels": {"region": "eu"}}),
    );
    assert_eq!(
        decision(&res),
        (403, "out_of_scope".into()),
        "{}",
        res.text()
    );
    assert_eq!(names(&blue), ["blue-edge"], "still blue's");

    // What it registers is its tenant's; it cannot register into another's.
    let fc = fake(|_| {});
    let res = d.call(
        "POST",
        "/api/gateways",
        &blue,
        &json!({"name": "blue-two", "host": "127.0.0.1", "port": fc.port(), "token": "fake-token"}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["gateway"]["labels"]["tenant"], "blue");
    let res = d.call(
        "POST",
        "/api/gateways",
        &blue,
        &json!({"name": "sneaky", "host": "127.0.0.1", "port": 1, "labels": {"tenant": "red"}}),
    );
    assert_eq!(
        decision(&res),
        (403, "out_of_scope".into()),
        "{}",
        res.text()
    );

    // A selector that reaches outside is refused, naming how many; one inside is run.
    let res = d.call(
        "POST",
        "/api/fleet/update-hold",
        &blue,
        &json!({"selector": "region in (eu,us)"}),
    );
    assert_eq!(
        decision(&res),
        (403, "out_of_scope".into()),
        "{}",
        res.text()
    );
    assert!(res.text().contains("1 of the 2 gateways"), "{}", res.text());
    let res = d.call(
        "POST",
        "/api/fleet/update-hold",
        &blue,
        &json!({"selector": "tenant=blue"}),
    );
    assert_eq!(res.status, 202, "{}", res.text());

    // Spawns go to its gateways only, even with no gateway named.
    for _ in 0..3 {
        let res = d.call(
            "POST",
            "/api/spawn",
            &blue,
            &json!({"agent": "main", "task": "mine"}),
        );
        assert_eq!(res.status, 202, "{}", res.text());
        assert_ne!(res.json()["gateway_id"], json!(theirs), "{}", res.text());
    }

    // A verb it was not given: 403 naming it; an agent it was not given: out of scope.
    let spawn_as = |key: &str, agent: &str| {
        d.call(
            "POST",
            "/api/spawn",
            key,
            &json!({"agent": agent, "task": "x"}),
        )
    };
    assert_eq!(spawn_as(&blue_reader, "main").status, 403);
    let looks = d.create_scoped_key(
        "operator",
        "blue-looks",
        &["--tenant", "blue", "--verbs", "read"],
    );
    let res = spawn_as(&looks, "main");
    assert_eq!(decision(&res), (403, "forbidden".into()), "{}", res.text());
    assert_eq!(
        res.json()["details"]["required_verb"],
        "spawn",
        "{}",
        res.text()
    );
    let main_only = d.create_scoped_key(
        "operator",
        "blue-main",
        &["--tenant", "blue", "--agents", "main"],
    );
    let res = spawn_as(&main_only, "ops");
    assert_eq!(
        decision(&res),
        (403, "out_of_scope".into()),
        "{}",
        res.text()
    );

    // The event stream: blue's label change reaches blue; red's does not.
    let mut events = crate::support::open_ws(
        d.addr,
        &blue_reader,
        "?types=gateway.changed",
        Duration::from_secs(10),
    );
    let res = d.call(
        "PATCH",
        &format!("/api/gateways/{theirs}/labels"),
        &d.admin_key,
        &json!({"mark": "red-change"}),
    );
    assert_eq!(res.status, 200);
    assert_eq!(patch(json!({"mark": "blue-change"})).status, 200);
    let seen = wait_until(
        "blue's change on blue's stream",
        Duration::from_secs(10),
        || {
            let tungstenite::Message::Text(t) = events.read().ok()? else {
                return None;
            };
            let frame: Value = serde_json::from_str(&t).ok()?;
            assert_ne!(
                frame["gateway_id"],
                json!(theirs),
                "red's event on blue's stream: {frame}"
            );
            (frame["gateway_id"] == json!(mine)).then_some(frame)
        },
    );
    assert_eq!(seen["payload"]["labels"]["mark"], "blue-change", "{seen}");

    // The keys' scopes, as the command line lists them.
    let out = d.cli(&["keys", "list"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("tenant=blue verbs=read"), "{listed}");
    assert!(listed.contains("tenant=blue agents=main"), "{listed}");
}

#[test]
fn a_scope_that_could_be_edited_is_refused_when_the_key_is_made() {
    let d = Daemon::start();
    for (args, says) in [
        (vec!["--tenant", "Blue!"], "a tenant is a DNS label"),
        (
            vec!["--tenant", "blue", "--selector", "region=eu"],
            "reserved labels only",
        ),
        (vec!["--selector", "tenant=blue"], "needs a tenant"),
        (
            vec!["--tenant", "blue", "--verbs", "read,delete"],
            "unknown verb `delete`",
        ),
    ] {
        let mut all = vec!["keys", "create", "--role", "viewer", "--name", "k"];
        all.extend_from_slice(&args);
        let out = d.cli(&all);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
