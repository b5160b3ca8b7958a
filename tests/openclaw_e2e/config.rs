//! Config drift against two real OpenClaw 2026.9.6 gateways, one started with a different
//! config: a profile that turns on `gateway.http.endpoints.chatCompletions.enabled` is drift
//! on the one without it (the path named, both values) and in sync on the other; the gateway's
//! own redacted token is taken as set, never shown; once the gateway is changed
//! (`config.patch` with its `baseHash`, as the rollout will) it reads in sync and
//! `POST /v1/chat/completions` stops answering 404.

use std::path::PathBuf;

use serde_json::{Value, json};

use gs_test_support::daemon::{Daemon, online, wait_for};
use gs_test_support::real_gateway::RealGateway;

use super::{DEADLINE, add, free_gateway_port, wait_gateway};

const TOKEN: &str = "config-token-1";
const CHAT: &str = "gateway.http.endpoints.chatCompletions.enabled";

pub(super) fn drift_of(d: &Daemon, id: i64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    wait_for(what, DEADLINE, || {
        let all = d.get("/api/config/drift", &d.admin_key).json();
        let g = all["gateways"]
            .as_array()
            .and_then(|a| a.iter().find(|g| g["gateway_id"] == id).cloned())
            .ok_or_else(|| format!("{all:#}"))?;
        if pred(&g) {
            Ok(g)
        } else {
            Err(format!("{g:#}"))
        }
    })
}

/// `POST /v1/chat/completions` without a bearer: its status.
pub(super) fn chat_status(port: u16) -> u16 {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    use std::io::{Read, Write};
    let body = r#"{"model":"x","messages":[]}"#;
    write!(
        stream,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).expect("a status line");
    String::from_utf8_lossy(&head[9..12])
        .parse()
        .expect("a status")
}

#[test]
fn a_real_gateway_s_config_is_judged_against_its_profile_value_by_value() {
    let install = PathBuf::from(std::env::var("GS_OPENCLAW_DIR").expect("GS_OPENCLAW_DIR"));
    let mut plain = RealGateway::new(&install, free_gateway_port(), TOKEN, None);
    let mut already = RealGateway::new(&install, free_gateway_port(), TOKEN, None);
    already.with_config(
        json!({"gateway": {"http": {"endpoints": {"chatCompletions": {"enabled": true}}}}}),
    );
    for g in [&mut plain, &mut already] {
        g.start();
    }
    for g in [&mut plain, &mut already] {
        g.wait_ready();
    }
    // Its HTTP side answers 503 for a moment after `/readyz` (still starting).
    let settled = |port: u16| {
        wait_for(
            "the gateway's HTTP side settled",
            DEADLINE,
            || match chat_status(port) {
                503 => Err("503".to_owned()),
                s => Ok(s),
            },
        )
    };
    assert_eq!(settled(plain.port), 404, "off by default");
    let d = Daemon::start_with(&[
        ("GATEWAY_SUPERVISOR__GATEWAYS__HEARTBEAT_INTERVAL", "1s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__HEALTH_INTERVAL", "1h"),
        ("GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE", "0"),
    ]);
    let p = add(&d, "plain", "127.0.0.1", plain.port, TOKEN);
    let a = add(&d, "already", "127.0.0.1", already.port, TOKEN);
    for id in [p, a] {
        wait_gateway(&d, id, "online", online);
        let res = d.call(
            "PATCH",
            &format!("/api/gateways/{id}/labels"),
            &d.admin_key,
            &json!({"region": "eu"}),
        );
        assert_eq!(res.status, 200, "{}", res.text());
    }
    // What the daemon's own link depends on is refused, named, before any gateway is touched:
    // rolled out, a new token closed the daemon's socket (4001) and no revert could reach
    // the gateway again.
    let cutting = json!({"selector": "region=eu", "patch": {"gateway": {"auth": {"token": "rotated-by-hand"}}}});
    let res = d.call(
        "PUT",
        "/api/config/profiles/eu-token",
        &d.admin_key,
        &cutting,
    );
    assert_eq!(res.status, 400, "{}", res.text());
    assert!(
        res.text()
            .contains("`gateway.auth.token` is what this daemon's link"),
        "{}",
        res.text()
    );
    let profile = json!({"selector": "region=eu", "patch": {
        "gateway": {"http": {"endpoints": {"chatCompletions": {"enabled": true}}}}}});
    let res = d.call(
        "PUT",
        "/api/config/profiles/eu-chat",
        &d.admin_key,
        &profile,
    );
    assert_eq!(res.status, 201, "{}", res.text());

    let g = drift_of(&d, p, "plain drifted", |g| g["state"] == "drifted");
    assert_eq!(
        g["paths"],
        json!([{"path": CHAT, "secret": false, "desired": true, "present": false}]),
        "{g:#}"
    );
    assert_eq!(g["unverified"], json!([]), "{g:#}");
    let g = drift_of(&d, a, "already in sync", |g| g["state"] != "unknown");
    assert_eq!(g["state"], "in_sync", "{g:#}");
    let text = d.get("/api/config/drift", &d.admin_key).text();
    assert!(!text.contains(TOKEN), "{text}");

    // Changed on the gateway with its own compare-and-swap: hot, at once; judged in sync.
    let current = plain.call("config.get", json!({}));
    let hash = current["hash"].as_str().expect("a baseHash");
    assert!(hash.starts_with("hmac-sha256:v1:"), "{hash}");
    let patched = plain.call(
        "config.patch",
        json!({"raw": json!({"gateway": {"http": {"endpoints": {"chatCompletions": {"enabled": true}}}}}).to_string(), "baseHash": hash}),
    );
    assert!(
        patched["changedPaths"]
            .to_string()
            .contains("gateway.http.endpoints"),
        "{patched:#}"
    );
    assert_eq!(
        chat_status(plain.port),
        401,
        "on, behind the gateway's auth"
    );
    let res = d.call(
        "PUT",
        "/api/config/profiles/eu-chat",
        &d.admin_key,
        &profile,
    );
    assert_eq!(res.status, 200, "{}", res.text());
    drift_of(&d, p, "plain in sync", |g| g["state"] == "in_sync");
}

/// A value at a path the gateway's own schema marks sensitive, whatever its name
/// (`models.providers.*.headers.*`), is held as the gateway holds it: rolled out to a real
/// 2026.9.6, which shows it as `__OPENCLAW_REDACTED__`; never in the daemon's profiles,
/// rollouts, drift or audit. (The name rule alone stored and showed it in clear.)
#[test]
fn a_header_the_gateway_treats_as_secret_is_never_shown_by_the_daemon() {
    let install = PathBuf::from(std::env::var("GS_OPENCLAW_DIR").expect("GS_OPENCLAW_DIR"));
    let mut g = RealGateway::new(&install, free_gateway_port(), TOKEN, None);
    g.start();
    g.wait_ready();
    let d = Daemon::start_with(&[
        ("GATEWAY_SUPERVISOR__GATEWAYS__HEARTBEAT_INTERVAL", "1s"),
        ("GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE", "0"),
    ]);
    let id = add(&d, "real", "127.0.0.1", g.port, TOKEN);
    wait_gateway(&d, id, "online", online);
    const SECRET: &str = "Bearer hdr-secret-0123456789";
    let patch = json!({"models": {"providers": {"acme": {
        "baseUrl": "https://llm.example/v1", "models": [],
        "headers": {"Authorization": SECRET}}}}});
    let res = d.call(
        "PUT",
        "/api/config/profiles/acme",
        &d.admin_key,
        &json!({"selector": "", "patch": patch}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(
        res.json()["profile"]["patch"]["models"]["providers"]["acme"]["headers"]["Authorization"],
        "__OPENCLAW_REDACTED__"
    );
    let res = d.call(
        "POST",
        "/api/config/rollouts",
        &d.admin_key,
        &json!({"profile": "acme", "min_healthy_time": "1s"}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let op = res.json()["operation"]["id"].as_str().unwrap().to_owned();
    let done = wait_for("the rollout over", DEADLINE, || {
        let r = d
            .get(&format!("/api/config/rollouts/{op}"), &d.admin_key)
            .json();
        let state = r["operation"]["state"].as_str().unwrap_or("").to_owned();
        if ["succeeded", "failed", "reverted", "cancelled"].contains(&state.as_str()) {
            Ok(r)
        } else {
            Err(format!("{r:#}"))
        }
    });
    assert_eq!(done["operation"]["state"], "succeeded", "{done:#}");
    // The gateway holds it, and shows it redacted, as the daemon does.
    let got = g.call("config.get", json!({}));
    assert_eq!(
        got["config"]["models"]["providers"]["acme"]["headers"]["Authorization"],
        "__OPENCLAW_REDACTED__",
        "2026.9.6 treats it as a secret"
    );
    let drift = drift_of(&d, id, "judged after the rollout", |g| {
        g["state"] != "unknown"
    });
    assert_eq!(
        drift["unverified"],
        json!(["models.providers.acme.headers.Authorization"]),
        "{drift:#}"
    );
    for text in [
        d.get("/api/config/profiles", &d.admin_key).text(),
        d.get(&format!("/api/config/rollouts/{op}"), &d.admin_key)
            .text(),
        d.get("/api/config/drift", &d.admin_key).text(),
        d.get("/api/audit?limit=200", &d.admin_key).text(),
        String::from_utf8_lossy(&d.logs()).into_owned(),
    ] {
        assert!(!text.contains("hdr-secret"), "{text}");
    }
    g.stop();
}

/// A profile is checked against the real gateway's own config schema when it is saved
/// (`config.schema.lookup`): a path 2026.9.6 does not know, or a value of another type than it
/// takes, is refused naming the path; a good one is saved as checked, against that gateway.
#[test]
fn a_profile_is_checked_against_the_real_gateway_s_config_schema() {
    let install = PathBuf::from(std::env::var("GS_OPENCLAW_DIR").expect("GS_OPENCLAW_DIR"));
    let mut g = RealGateway::new(&install, free_gateway_port(), TOKEN, None);
    g.start();
    g.wait_ready();
    let d = Daemon::start_with(&[("GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE", "0")]);
    let id = add(&d, "real", "127.0.0.1", g.port, TOKEN);
    wait_gateway(&d, id, "online", online);
    let put = |patch: Value| {
        d.call(
            "PUT",
            "/api/config/profiles/checked",
            &d.admin_key,
            &json!({"selector": "", "patch": patch}),
        )
    };
    let res = put(json!({"tools": {"banner": "hi"}}));
    assert_eq!(res.status, 400, "{}", res.text());
    assert!(
        res.text()
            .contains("`tools.banner` is not in the config schema of gateway `real`"),
        "{}",
        res.text()
    );
    let res = put(json!({"agents": {"defaults": {"maxConcurrent": "two"}}}));
    assert_eq!(res.status, 400, "{}", res.text());
    assert!(
        res.text()
            .contains("`agents.defaults.maxConcurrent` takes an integer above 0"),
        "{}",
        res.text()
    );
    let res = put(
        json!({"gateway": {"http": {"endpoints": {"chatCompletions": {"enabled": true}}}},
                         "agents": {"defaults": {"maxConcurrent": 2}}}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(
        res.json()["schema_check"],
        json!({"checked": true, "gateway_id": id}),
        "{}",
        res.text()
    );
    g.stop();
}
