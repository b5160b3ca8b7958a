//! End to end against two REAL OpenClaw gateways (npm `openclaw@2026.9.6`, Node 24), installed
//! by `e2e/openclaw/install.sh` and located through GS_OPENCLAW_DIR (scripts/test.sh sets it).
//!
//! Gateway "local" is reached over 127.0.0.1: the real gateway trusts a local
//! `gateway-client/backend` with the shared token and neither pairs it nor issues a device token
//! (`shouldSkipLocalBackendSelfPairing`). Gateway "remote" listens on a non-loopback address of
//! this host (GS_E2E_REMOTE_IP) as well, and is reached through it: there the device must be
//! paired (approved with the gateway's own CLI) and gets a device token.

mod approvals;
mod cluster;
mod config;
mod cron;
mod frame_counts;
mod managed;
mod managed_systemd;
mod managed_upgrade;
mod operations;
mod releases;
mod rollout;
mod spend;
mod tenancy;
mod watchdog;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use gs_test_support::daemon::{
    Daemon, control_on, online, spawn_finished, wait_session_listed, wait_until,
};
use gs_test_support::{daemon, fake_model, real_gateway::RealGateway};

const DEADLINE: Duration = Duration::from_secs(60);

fn spawn(d: &Daemon, body: Value) -> Value {
    let res = d.call("POST", "/api/spawn", &d.admin_key, &body);
    assert_eq!(res.status, 202, "{}", res.text());
    res.json()
}

fn finished(d: &Daemon, id: &str) -> Value {
    spawn_finished(d, id, Duration::from_secs(180))
}

fn gateway(d: &Daemon, id: i64) -> Value {
    d.get(&format!("/api/gateways/{id}"), &d.admin_key).json()["gateway"].clone()
}

fn wait_gateway(d: &Daemon, id: i64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    wait_until(what, DEADLINE, || Some(gateway(d, id)).filter(|g| pred(g)))
}

fn add(d: &Daemon, name: &str, host: &str, port: u16, token: &str) -> i64 {
    let res = d.call(
        "POST",
        "/api/gateways",
        &d.admin_key,
        &json!({"name": name, "host": host, "port": port, "token": token}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()["gateway"]["id"].as_i64().unwrap()
}

fn log_count(d: &Daemon, needle: &str) -> usize {
    String::from_utf8_lossy(&d.logs()).matches(needle).count()
}

/// Where three gateways may listen: `base`, `base + 300` and `base + 600` (each gateway also
/// uses its port + 2 to + 110).
fn free_base_port() -> u16 {
    claim_ports(711, &[0, 300, 600])
}

/// Where one gateway may listen (it also uses its port + 2 to + 110).
fn free_gateway_port() -> u16 {
    claim_ports(111, &[0])
}

/// A range of `width` ports with nothing listening at `base + offset` for each of `offsets`,
/// below the ephemeral range (32768+) the tests' client sockets draw from. The tests run in
/// parallel in this process: a range handed out is never handed out again (a port free now may
/// be one another test is about to bind). Ranges start on a 120-port grid, so a test that runs
/// one gateway takes 120 ports, not a three-gateway slot of 750 (with 30 such slots the suite
/// ran out once it had more than 30 gateways).
fn claim_ports(width: u16, offsets: &[u16]) -> u16 {
    static CLAIMED: std::sync::Mutex<Vec<(u16, u16)>> = std::sync::Mutex::new(Vec::new());
    const LOW: u16 = 10_000;
    const HIGH: u16 = 32_460;
    const GRID: u16 = 120;
    let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    let starts = (HIGH - LOW - width) / GRID;
    let first = (std::process::id() % u32::from(starts)) as u16;
    let base = (0..starts)
        .map(|i| LOW + ((first + i) % starts) * GRID)
        .find(|&b| {
            let end = b + width;
            !claimed.iter().any(|&(s, e)| b < e && s < end) && offsets.iter().all(|&o| free(b + o))
        })
        .expect("no free range of ports between 10000 and 32460");
    claimed.push((base, base + width));
    base
}

#[test]
fn real_openclaw_gateways() {
    let install = PathBuf::from(std::env::var("GS_OPENCLAW_DIR").expect(
        "GS_OPENCLAW_DIR must point at the openclaw install (run scripts/test.sh, or e2e/openclaw/install.sh)",
    ));
    let remote_ip = std::env::var("GS_E2E_REMOTE_IP").expect(
        "GS_E2E_REMOTE_IP: a non-loopback address of this host (scripts/test.sh finds one)",
    );
    let base = free_base_port();
    let mut local = RealGateway::new(&install, base, "local-token-1", None);
    let mut remote = RealGateway::new(&install, base + 300, "remote-token-1", Some(&remote_ip));
    // A third, registered only through the v1 API (one address is one gateway).
    let mut third = RealGateway::new(&install, base + 600, "third-token-1", None);
    let model = fake_model::FakeModel::start();
    local.use_model(&model.base_url());
    remote.use_model(&model.base_url());
    local.start();
    remote.start();
    third.start();
    local.wait_ready();
    remote.wait_ready();
    third.wait_ready();
    // The keepalive as the real gateway sees it: a daemon on the default heartbeat (30 s) links
    // the third gateway through a relay that counts the WebSocket control frames each way.
    let (keepalive_relay, counts) = frame_counts::relay(third.port);
    let quiet = Daemon::start_with(&[("GATEWAY_SUPERVISOR__GATEWAYS__HEALTH_INTERVAL", "1h")]);
    let quiet_id = add(
        &quiet,
        "third",
        "127.0.0.1",
        keepalive_relay.port(),
        "third-token-1",
    );

    let mut d = Daemon::start_with(&[
        ("GATEWAY_SUPERVISOR__GATEWAYS__HEARTBEAT_INTERVAL", "1s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__BREAKER_THRESHOLD", "3"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__BREAKER_COOLDOWN", "2s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__BACKOFF_MAX", "2s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__PAIRING_RETRY", "1s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__HEALTH_INTERVAL", "1h"),
        ("GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE", "0"),
        ("GATEWAY_SUPERVISOR__LIMITS__MANUAL_HEALTH_INTERVAL", "0s"),
        ("GATEWAY_SUPERVISOR__USAGE__INTERVAL", "1s"),
    ]);
    let local_id = add(&d, "local", "127.0.0.1", local.port, "local-token-1");
    let remote_id = add(&d, "remote", &remote_ip, remote.port, "remote-token-1");

    // --- local: online at once, protocol 4, the real version, counts as the gateway reports --
    let g = wait_gateway(&d, local_id, "local online", online);
    assert_eq!(g["connection"]["protocol"], 4);
    assert_eq!(g["connection"]["server_version"], "2026.9.6");
    // 2026.9 names its process; destructive actions are fenced on it.
    let boot = g["connection"]["boot_id"]
        .as_str()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| panic!("2026.9.6 reports server.bootId: {g:#}"))
        .to_owned();
    for label in ["e2e-one", "e2e-two"] {
        local.call("sessions.create", json!({"label": label}));
    }
    let sessions = local.call("sessions.list", json!({}))["totalCount"]
        .as_i64()
        .unwrap();
    let agents = local.call("agents.list", json!({}))["agents"]
        .as_array()
        .unwrap()
        .len() as i64;
    assert_eq!(sessions, 2);
    wait_gateway(&d, local_id, "counts as the gateway reports", |g| {
        g["sessions_count"] == sessions && g["agents_count"] == agents
    });
    let probe = d
        .call(
            "POST",
            "/api/gateways/health",
            &d.admin_key,
            &json!({"gateway_id": local_id}),
        )
        .json();
    assert_eq!(probe["healthy"], true, "{probe}");
    assert_eq!(probe["details"]["version"], "2026.9.6");

    wait_gateway(&quiet, quiet_id, "third online", online);
    let quiet_since = Instant::now();
    // A gateway still starting answers the first dial or two with UNAVAILABLE.
    let quiet_sessions = frame_counts::FrameCounts::get(&counts.sessions);

    // --- remote: pairing required, approved with the gateway's CLI, then online ---------------
    let g = wait_gateway(&d, remote_id, "pairing request", |g| {
        !g["connection"]["pairing_request_id"].is_null()
    });
    let request = g["connection"]["pairing_request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pending = remote.devices()["pending"].clone();
    let ours = pending
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["requestId"] == request.as_str())
        .expect("our request is pending")
        .clone();
    assert_eq!(ours["clientId"], "gateway-client");
    let device_id = ours["deviceId"].as_str().unwrap().to_owned();
    remote.cli(&["devices", "approve", &request, "--json"]);
    let g = wait_gateway(&d, remote_id, "remote online after approval", online);
    assert_eq!(g["connection"]["protocol"], 4);
    assert!(g["connection"]["pairing_request_id"].is_null());
    let paired = remote.devices()["paired"].clone();
    assert!(
        paired
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["deviceId"] == device_id.as_str()),
        "{paired}"
    );

    // --- routing against the real gateways (agent runs answered by the fake model) --------
    let s = spawn(
        &d,
        json!({"agent": "main", "task": "ping", "timeout_seconds": 180}),
    );
    assert_eq!(s["gateway_id"], local_id, "the acting primary");
    assert_eq!(s["method"], "agent");
    let done = finished(&d, s["spawn_id"].as_str().unwrap());
    assert_eq!(done["status"], "ok", "{done}");
    assert!(
        done["result"]["reply"]
            .as_str()
            .unwrap_or("")
            .contains("pong"),
        "{done}"
    );
    assert!(model.requests.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    // The run's tokens, as the gateway's own `usage.cost` reports them, rolled up (the fake
    // model reports 10 prompt and 1 completion tokens; its configured price is 0). The gateway
    // answers `usage.cost` from a cache of its transcripts' costs, refreshed in the background
    // once a call finds it stale, and keeps a complete answer for 30 s (`USAGE_CACHE_TTL_MS`
    // in 2026.9.6): a new run shows after 30 s or more; a loaded run once waited past 60 s.
    let asked = Instant::now();
    let rolled = daemon::wait_for(
        "the run's usage rolled up",
        Duration::from_secs(180),
        || {
            let report = d
                .get("/api/usage?group_by=gateway,agent", &d.admin_key)
                .json();
            let group = report["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|g| g["gateway_id"] == local_id && g["agent_id"] == "main")
                .cloned();
            match group {
                Some(g) if g["total_tokens"].as_i64().unwrap_or(0) > 0 => Ok(g),
                _ => Err(format!("{report:#}")),
            }
        },
    );
    assert!(rolled["input_tokens"].as_i64().unwrap() >= 10, "{rolled}");
    eprintln!("the run's usage rolled up after {:?}", asked.elapsed());

    // Cordoned, the primary keeps its work and takes nothing new: the next spawn runs on the
    // other real gateway; uncordoned, the role comes back.
    let res = d.send(
        daemon::Request::new("POST", &format!("/api/gateways/{local_id}/cordon")).key(&d.admin_key),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    wait_gateway(
        &d,
        remote_id,
        "remote acting for the cordoned primary",
        |g| g["acting_primary"] == true,
    );
    let s = spawn(
        &d,
        json!({"agent": "main", "task": "ping", "timeout_seconds": 180}),
    );
    assert_eq!(s["gateway_id"], remote_id, "not the cordoned gateway");
    let done = finished(&d, s["spawn_id"].as_str().unwrap());
    assert_eq!(done["status"], "ok", "{done}");
    let res = d.send(
        daemon::Request::new("POST", &format!("/api/gateways/{local_id}/uncordon"))
            .key(&d.admin_key),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    wait_gateway(&d, local_id, "local primary again", |g| {
        g["acting_primary"] == true
    });

    // Sessions listed match each gateway's own sessions.list.
    for (gw, id) in [(&local, local_id), (&remote, remote_id)] {
        let mut real: Vec<String> = gw.call("sessions.list", json!({"limit": 1000}))["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["key"].as_str().unwrap().to_owned())
            .collect();
        real.sort();
        wait_until("the session cache to match sessions.list", DEADLINE, || {
            let mut ours: Vec<String> = d
                .get(
                    &format!("/api/sessions?gateway_id={id}&limit=1000"),
                    &d.admin_key,
                )
                .json()["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["key"].as_str().unwrap().to_owned())
                .collect();
            ours.sort();
            (ours == real).then_some(())
        });
    }

    // A long run killed through session control reads aborted.
    let s = spawn(
        &d,
        json!({"agent": "main", "task": "SLOW: count to a million", "timeout_seconds": 600}),
    );
    let key = s["session_key"].as_str().unwrap().to_owned();
    let on = s["gateway_id"].as_i64().unwrap();
    wait_session_listed(&d, &key, DEADLINE);
    // Held to a process the gateway is not: refused, nothing sent.
    let stale = d.call(
        "POST",
        &format!("/api/sessions/{key}/control?gateway_id={on}&expected_boot_id=not-{boot}"),
        &d.admin_key,
        &json!({"action": "kill"}),
    );
    assert_eq!(
        (stale.status, stale.json()["error"].as_str()),
        (409, Some("gateway_changed")),
        "{}",
        stale.text()
    );
    // Both real gateways have `agent:main:*` sessions: a session is named with its gateway.
    let res = control_on(&d, on, &key, "kill");
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["method"], "sessions.abort");
    let done = finished(&d, s["spawn_id"].as_str().unwrap());
    assert_eq!(done["status"], "aborted", "{done}");
    // Pause is not something real OpenClaw 2026.9 can do per session.
    let res = control_on(&d, on, &key, "pause");
    assert_eq!(
        (res.status, res.json()["error"].as_str()),
        (409, Some("unsupported_action"))
    );

    // Agent sync: the primary's real agents.
    let agents = local.call("agents.list", json!({}))["agents"]
        .as_array()
        .unwrap()
        .len() as u64;
    let sync = d
        .send(daemon::Request::new("POST", "/api/agents/sync").key(&d.admin_key))
        .json();
    assert_eq!(
        (sync["synced"].as_u64(), sync["created"].as_u64()),
        (Some(agents), Some(agents)),
        "{sync}"
    );
    let again = d
        .send(daemon::Request::new("POST", "/api/agents/sync").key(&d.admin_key))
        .json();
    assert_eq!(
        (again["created"].as_u64(), again["updated"].as_u64()),
        (Some(0), Some(0))
    );

    // The v1 create against a real gateway. The local one is registered already: one address
    // is one gateway, so a second registration is refused naming it.
    let res = d.call(
        "POST",
        "/api/v1/gateways",
        &d.admin_key,
        &json!({"name": "v1-local", "url": format!("ws://127.0.0.1:{}", local.port), "workspace_root": "/tmp/ws", "token": "local-token-1"}),
    );
    assert_eq!(res.status, 409, "{}", res.text());
    assert_eq!(res.json()["details"]["gateway_id"], local_id);
    let res = d.call(
        "POST",
        "/api/v1/gateways",
        &d.admin_key,
        &json!({"name": "v1-third", "url": format!("ws://127.0.0.1:{}", third.port), "workspace_root": "/tmp/ws", "token": "third-token-1"}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["gateway_agent_id"], "main");
    let v1_id = res.json()["id"].as_i64().unwrap();
    assert_eq!(
        d.send(
            daemon::Request::new("DELETE", &format!("/api/v1/gateways/{v1_id}")).key(&d.admin_key)
        )
        .status,
        200
    );

    // --- token rotation on the remote gateway: 4001, reconnect with the device token --------
    let before = log_count(&d, "auth=\"device-token\"");
    remote.rotate_token("remote-token-2");
    wait_until("a device-token reconnect after 4001", DEADLINE, || {
        (log_count(&d, "auth=\"device-token\"") > before).then_some(())
    });
    assert!(
        String::from_utf8_lossy(&d.logs()).contains("code=AUTH_CHANGED"),
        "the 4001 was the cause"
    );
    wait_gateway(&d, remote_id, "remote online on its device token", online);
    // The admin brings the new token: proven with a shared-token handshake.
    let before = log_count(
        &d,
        "gateway=remote protocol=4 version=2026.9.6 auth=\"token\"",
    );
    d.call(
        "PUT",
        &format!("/api/gateways/{remote_id}"),
        &d.admin_key,
        &json!({"token": "remote-token-2"}),
    );
    wait_until(
        "a shared-token handshake with the new token",
        DEADLINE,
        || {
            (log_count(
                &d,
                "gateway=remote protocol=4 version=2026.9.6 auth=\"token\"",
            ) > before)
                .then_some(())
        },
    );
    wait_gateway(&d, remote_id, "remote online", online);

    // --- token rotation on the local gateway: no device token exists, so it halts ----------
    local.rotate_token("local-token-2");
    let g = wait_gateway(&d, local_id, "local halted", |g| {
        g["connection"]["state"] == "halted"
    });
    assert_eq!(g["connection"]["last_error"]["code"], "AUTH_CHANGED");
    assert_eq!(g["connection"]["last_error"]["retryable"], false);
    assert_eq!(g["status"], "offline");
    d.call(
        "PUT",
        &format!("/api/gateways/{local_id}"),
        &d.admin_key,
        &json!({"token": "local-token-2"}),
    );
    wait_gateway(&d, local_id, "local online with the new token", online);

    // --- daemon restart: the remote link comes back on its cached device token -------------
    d.terminate();
    let before = log_count(
        &d,
        "gateway=remote protocol=4 version=2026.9.6 auth=\"device-token\"",
    );
    d.launch();
    wait_gateway(&d, remote_id, "remote online after restart", online);
    wait_gateway(&d, local_id, "local online after restart", online);
    assert!(
        log_count(
            &d,
            "gateway=remote protocol=4 version=2026.9.6 auth=\"device-token\""
        ) > before,
        "the cached device token was used"
    );
    for secret in [
        "local-token-1",
        "local-token-2",
        "remote-token-1",
        "remote-token-2",
    ] {
        assert!(
            !daemon::contains(&d.logs(), secret.as_bytes()),
            "{secret} in the logs"
        );
        assert!(
            !daemon::contains(&d.database_bytes(), secret.as_bytes()),
            "{secret} in the database"
        );
    }

    // --- SIGTERM the local gateway: leaves online, offline once the breaker opens ------------
    local.stop();
    wait_gateway(&d, local_id, "local leaves online", |g| {
        g["status"] != "online"
    });
    let g = wait_gateway(&d, local_id, "local offline", |g| g["status"] == "offline");
    assert_eq!(g["breaker"]["state"], "open");
    assert!(
        online(&gateway(&d, remote_id)),
        "the other gateway stays online"
    );
    // Spawns move to the other gateway.
    wait_gateway(&d, remote_id, "remote acting primary", |g| {
        g["acting_primary"] == true
    });
    let s = spawn(
        &d,
        json!({"agent": "main", "task": "ping", "timeout_seconds": 180}),
    );
    assert_eq!(s["gateway_id"], remote_id);
    let done = finished(&d, s["spawn_id"].as_str().unwrap());
    assert_eq!(done["status"], "ok", "{done}");
    local.start();
    local.wait_ready();
    wait_gateway(
        &d,
        local_id,
        "local online again without operator action",
        online,
    );

    // --- remove the daemon's device on the remote gateway: 4001, re-pair -------------------
    remote.cli(&["devices", "remove", &device_id, "--json"]);
    let g = wait_gateway(&d, remote_id, "re-pairing requested", |g| {
        !g["connection"]["pairing_request_id"].is_null()
    });
    assert!(
        String::from_utf8_lossy(&d.logs()).contains("code=DEVICE_REMOVED"),
        "the 4001 was the cause"
    );
    let request = g["connection"]["pairing_request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    remote.cli(&["devices", "approve", &request, "--json"]);
    wait_gateway(&d, remote_id, "remote online after re-pairing", online);
    assert_eq!(d.get("/healthz", "").status, 200);

    // --- keepalive: the gateway's pings answered, ours only for the round trip ---------------
    // 2026.9.6 pings every 25 s and closes a socket whose pong is late; the daemon, hearing
    // those, pings once after the handshake (behind its pong to the gateway's first ping) and
    // then every 10th heartbeat (5 min at 30 s) — where it used to ping at every heartbeat
    // (2 or more by the gateway's third ping).
    let c = &counts;
    let get = frame_counts::FrameCounts::get;
    wait_until(
        "three pings from the gateway, each answered",
        Duration::from_secs(120),
        || {
            (get(&c.gateway_pings) >= 3 && get(&c.client_pongs) >= get(&c.gateway_pings))
                .then_some(())
        },
    );
    let g = gateway(&quiet, quiet_id);
    assert!(
        online(&g) && g["latency"].is_i64(),
        "online, the round trip measured: {g}"
    );
    assert_eq!(
        get(&c.sessions),
        quiet_sessions,
        "the link was never re-established"
    );
    let allowed = 1 + quiet_since.elapsed().as_secs() as usize / 300;
    let ours = get(&c.client_pings);
    assert!(
        (1..=allowed).contains(&ours),
        "{ours} pings of ours against {} of the gateway's (at most {allowed})",
        get(&c.gateway_pings)
    );
    let started = Instant::now();
    drop((local, remote));
    eprintln!("gateways stopped in {:?}", started.elapsed());
}
