//! The gateway link against the protocol-faithful fake gateway: every error row of the real
//! gateway's table and every injected fault leaves the daemon serving, its status truthful, its
//! reconnects paced, and nothing leaked.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use fake_gateway::FakeGateway;
use serde_json::{Value, json};

use crate::support::fleet::{add, fake, gateway, link_daemon, wait_gateway};
use crate::support::{Daemon, Request, contains, online, wait_for, wait_until};

const DEADLINE: Duration = Duration::from_secs(20);

fn error_code(g: &Value) -> &str {
    g["connection"]["last_error"]["code"].as_str().unwrap_or("")
}

/// Watches a counter for `window` and returns how much it grew (a bounded observation, not a
/// synchronisation).
fn growth(window: Duration, read: impl Fn() -> u64) -> u64 {
    let start = read();
    let until = Instant::now() + window;
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    read() - start
}

#[test]
fn connects_reports_counts_and_reuses_its_device_token_after_restart() {
    let f = fake(|c| {
        c.sessions = 3;
        c.agents = vec!["main".into(), "research".into()];
    });
    let mut d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    let g = wait_gateway(&d, id, "online", online);
    assert_eq!(g["connection"]["protocol"], 4);
    assert_eq!(g["connection"]["server_version"], "2026.9.6");
    let g = wait_gateway(&d, id, "counts", |g| {
        g["sessions_count"] == 3 && g["agents_count"] == 2
    });
    assert!(g["last_seen"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(f.last_auth_method().as_deref(), Some("token"));
    let devices = f.paired_devices();
    assert_eq!(devices.len(), 1, "the supervisor's device was paired");
    let device_token = f.device_token(&devices[0]).unwrap();

    // After a restart the daemon reconnects with its cached device token; same device.
    d.terminate();
    assert!(
        !contains(&d.database_bytes(), device_token.as_bytes()),
        "device token stored encrypted"
    );
    d.launch();
    wait_gateway(&d, id, "online after restart", online);
    assert_eq!(f.last_auth_method().as_deref(), Some("device-token"));
    assert_eq!(f.paired_devices(), devices);
    assert!(!contains(&d.logs(), device_token.as_bytes()));
    assert!(!contains(&d.logs(), b"fake-token"));
}

#[test]
fn wrong_token_halts_with_the_reason_and_never_storms() {
    let f = fake(|_| {});
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("wrong"));
    let g = wait_gateway(&d, id, "halted", |g| g["connection"]["state"] == "halted");
    assert_eq!(error_code(&g), "AUTH_TOKEN_MISMATCH");
    assert_eq!(g["connection"]["last_error"]["retryable"], false);
    assert_eq!(g["status"], "offline");
    assert_eq!(
        growth(Duration::from_secs(2), || f
            .counters()
            .accepts
            .load(Relaxed)),
        0,
        "halted: no retries"
    );
    // An admin fixes the token: back online.
    d.call(
        "PUT",
        &format!("/api/gateways/{id}"),
        &d.admin_key,
        &json!({"token": "fake-token"}),
    );
    wait_gateway(&d, id, "online with the new token", online);
    assert_eq!(d.get("/healthz", "").status, 200);
}

#[test]
fn protocol_mismatch_halts() {
    let f = fake(|c| c.protocol = 5);
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    let g = wait_gateway(&d, id, "halted", |g| g["connection"]["state"] == "halted");
    assert_eq!(error_code(&g), "PROTOCOL_MISMATCH");
}

#[test]
fn no_token_where_one_is_required_halts() {
    let f = fake(|_| {});
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, None);
    let g = wait_gateway(&d, id, "halted", |g| g["connection"]["state"] == "halted");
    assert_eq!(error_code(&g), "AUTH_TOKEN_MISSING");
}

#[test]
fn pairing_required_shows_the_request_and_retries_slowly_until_approved() {
    let f = fake(|c| c.auto_approve = false);
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    let g = wait_gateway(&d, id, "pairing request", |g| {
        !g["connection"]["pairing_request_id"].is_null()
    });
    let request = g["connection"]["pairing_request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(f.pending_pairing_requests(), vec![request.clone()]);
    assert_eq!(error_code(&g), "PAIRING_REQUIRED");
    // Slow retries (pairing_retry = 300 ms here): a handful per second, not a storm.
    let attempts = growth(Duration::from_secs(2), || {
        f.counters().accepts.load(Relaxed)
    });
    assert!((1..=10).contains(&attempts), "{attempts} attempts in 2 s");
    assert!(f.approve_pairing(&request));
    let g = wait_gateway(&d, id, "online after approval", online);
    assert!(g["connection"]["pairing_request_id"].is_null());
}

#[test]
fn a_starting_gateway_is_retried_until_ready() {
    let f = fake(|_| {});
    f.update_faults(|x| x.starting = true);
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    let g = wait_gateway(&d, id, "UNAVAILABLE seen", |g| {
        error_code(g) == "UNAVAILABLE"
    });
    assert_eq!(g["connection"]["last_error"]["retryable"], true);
    f.clear_faults();
    wait_gateway(&d, id, "online", online);
}

#[test]
fn restart_with_1012_comes_back_without_operator_action() {
    let f = fake(|_| {});
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    let hellos = f.counters().hellos.load(Relaxed);
    f.restart(Duration::from_millis(1500));
    let g = wait_gateway(&d, id, "leaves online", |g| {
        g["connection"]["state"] != "connected"
    });
    assert!(
        ["SERVICE_RESTART", "UNAVAILABLE", "TRY_AGAIN_LATER"].contains(&error_code(&g)),
        "{g}"
    );
    let started = Instant::now();
    wait_gateway(&d, id, "online again", online);
    assert!(started.elapsed() < Duration::from_secs(6));
    assert_eq!(f.counters().hellos.load(Relaxed), hellos + 1);
    // restartExpectedMs honoured: at most a couple of refused early attempts.
    assert!(
        f.counters().refusals.load(Relaxed) <= 2,
        "{}",
        f.counters().refusals.load(Relaxed)
    );
}

#[test]
fn token_rotation_4001_reconnects_with_the_device_token_then_put_new_token() {
    let f = fake(|_| {});
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    assert_eq!(f.last_auth_method().as_deref(), Some("token"));
    let hellos = f.counters().hellos.load(Relaxed);
    f.rotate_token(Some("rotated-token"));
    wait_until("a reconnect after 4001", DEADLINE, || {
        (f.counters().hellos.load(Relaxed) > hellos).then_some(())
    });
    wait_gateway(&d, id, "online on the device token", online);
    assert_eq!(f.last_auth_method().as_deref(), Some("device-token"));
    // The admin brings the new token: the link proves it.
    d.call(
        "PUT",
        &format!("/api/gateways/{id}"),
        &d.admin_key,
        &json!({"token": "rotated-token"}),
    );
    wait_until("a shared-token handshake", DEADLINE, || {
        (f.last_auth_method().as_deref() == Some("token")).then_some(())
    });
    wait_gateway(&d, id, "online", online);
}

#[test]
fn device_removed_4001_repairs_with_the_shared_token() {
    let f = fake(|_| {});
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    let device = f.paired_devices().pop().unwrap();
    let old_token = f.device_token(&device).unwrap();
    f.remove_device(&device);
    wait_until("re-paired", DEADLINE, || {
        f.device_token(&device).filter(|t| *t != old_token)
    });
    wait_gateway(&d, id, "online", online);
    assert_eq!(f.last_auth_method().as_deref(), Some("token"));
}

#[test]
fn dropped_pongs_kill_the_socket_and_it_recovers() {
    let f = fake(|_| {});
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    f.update_faults(|x| x.drop_pongs = true);
    let g = wait_gateway(&d, id, "heartbeat failure", |g| {
        error_code(g) == "HEARTBEAT_TIMEOUT"
    });
    assert_ne!(g["status"], "online");
    f.clear_faults();
    wait_gateway(&d, id, "online again", online);
}

/// A gateway that pings the daemon (2026.9 does, every 25 s) is not pinged back at every
/// heartbeat: the daemon's pings to it are the round-trip samples only (every tenth
/// heartbeat), while a gateway that does not ping gets one at every heartbeat. Both stay
/// online with a measured latency.
#[test]
fn a_gateway_that_pings_is_pinged_only_for_the_round_trip() {
    let pinging = fake(|c| c.ping_interval = Some(Duration::from_millis(50)));
    let silent = fake(|_| {});
    let d = link_daemon(&[]);
    let p = add(&d, "pinging", &pinging, Some("fake-token"));
    let s = add(&d, "silent", &silent, Some("fake-token"));
    for id in [p, s] {
        wait_gateway(&d, id, "online with a latency", |g| {
            online(g) && g["latency"].is_i64()
        });
    }
    let pings = |f: &FakeGateway| f.counters().pings_received.load(Relaxed);
    let (p0, s0) = (pings(&pinging), pings(&silent));
    // 20 heartbeats (200 ms) of the silent gateway's.
    wait_until("20 heartbeats", DEADLINE, || {
        (pings(&silent) >= s0 + 20).then_some(())
    });
    let to_pinging = pings(&pinging) - p0;
    assert!(
        (1..=4).contains(&to_pinging),
        "{to_pinging} pings to the gateway that pings, over 20 heartbeats"
    );
    for id in [p, s] {
        assert!(online(&gateway(&d, id)));
    }
}

#[test]
fn slow_pongs_read_degraded() {
    let f = fake(|_| {});
    let d = link_daemon(&[
        ("GATEWAY_SUPERVISOR__GATEWAYS__DEGRADED_LATENCY_MS", "50"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__MISSED_PONGS", "10"),
    ]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    f.update_faults(|x| x.delay_pongs = Some(Duration::from_millis(120)));
    let g = wait_gateway(&d, id, "degraded", |g| g["status"] == "degraded");
    assert!(g["latency"].as_i64().unwrap() > 50, "{g}");
    f.clear_faults();
    wait_gateway(&d, id, "online", online);
}

#[test]
fn a_hung_gateway_goes_offline_and_recovers() {
    let f = fake(|_| {});
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    f.update_faults(|x| x.hang = true);
    let g = wait_gateway(&d, id, "offline (breaker open)", |g| {
        g["status"] == "offline"
    });
    assert_eq!(g["breaker"]["state"], "open");
    assert!(g["breaker"]["consecutive_failures"].as_u64().unwrap() >= 3);
    assert_eq!(d.get("/healthz", "").status, 200);
    f.clear_faults();
    let g = wait_gateway(&d, id, "online", online);
    assert_eq!(g["breaker"]["state"], "closed");
}

/// A black-holed gateway still reads online until the heartbeat gives up on it; meanwhile the
/// age of its last frame tells the operator it has gone quiet.
#[test]
fn a_silent_gateway_shows_how_long_it_has_been_silent() {
    // The gateway's tick is long, so only missed pongs (10 × 1 s) end the link.
    let f = fake(|c| c.tick_interval = Duration::from_secs(30));
    let d = link_daemon(&[
        ("GATEWAY_SUPERVISOR__GATEWAYS__HEARTBEAT_INTERVAL", "1s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__MISSED_PONGS", "10"),
    ]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    let g = wait_gateway(&d, id, "online, heard from", |g| {
        online(g) && g["connection"]["last_frame_age_s"].as_i64() <= Some(1)
    });
    let heard = g["connection"]["last_frame_at"].as_i64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((heard - now).abs() <= 2, "{g:#}");
    f.update_faults(|x| x.hang = true);
    let g = wait_gateway(&d, id, "still online, silent for 3 s", |g| {
        online(g) && g["connection"]["last_frame_age_s"].as_i64() >= Some(3)
    });
    // The list says the same as the single gateway.
    let listed = d.gateways().into_iter().find(|x| x["id"] == id).unwrap();
    assert!(
        listed["connection"]["last_frame_age_s"].as_i64() >= Some(3),
        "{listed:#}"
    );
    assert!(g["connection"]["last_frame_at"].as_i64() >= Some(heard));
}

#[test]
fn garbage_and_oversize_frames_are_survived() {
    let f = fake(|_| {});
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    for (what, inject) in [
        (
            "garbage",
            Box::new(|f: &FakeGateway| f.send_garbage()) as Box<dyn Fn(&FakeGateway)>,
        ),
        (
            "oversize",
            Box::new(|f: &FakeGateway| f.send_oversize(33 * 1024 * 1024)),
        ),
    ] {
        let hellos = f.counters().hellos.load(Relaxed);
        inject(&f);
        wait_until(&format!("a reconnect after {what}"), DEADLINE, || {
            (f.counters().hellos.load(Relaxed) > hellos).then_some(())
        });
        wait_gateway(&d, id, "online", online);
        assert_eq!(d.get("/healthz", "").status, 200, "{what}");
    }
}

#[test]
fn refused_upgrades_back_off_without_a_storm() {
    let f = fake(|_| {});
    f.update_faults(|x| x.refuse_upgrade = Some(503));
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    let g = wait_gateway(&d, id, "offline", |g| g["status"] == "offline");
    assert_eq!(error_code(&g), "NETWORK");
    let attempts = growth(Duration::from_secs(4), || {
        f.counters().upgrade_requests.load(Relaxed)
    });
    assert!(
        (2..=8).contains(&attempts),
        "{attempts} attempts in 4 s with a 1 s backoff ceiling"
    );
    f.clear_faults();
    wait_gateway(&d, id, "online", online);
}

#[test]
fn close_codes_slow_handshakes_and_black_holes_are_retried() {
    let f = fake(|_| {});
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    f.close_all(1011, "internal error");
    wait_gateway(&d, id, "close 1011 seen", |g| error_code(g) == "CLOSE_1011");
    wait_gateway(&d, id, "online", online);

    f.update_faults(|x| x.slow_handshake = Some(Duration::from_secs(3)));
    f.close_all(1001, "going away");
    wait_gateway(&d, id, "handshake timeout", |g| error_code(g) == "TIMEOUT");
    f.update_faults(|x| x.close_after_challenge = Some((4009, "custom close".into())));
    f.update_faults(|x| x.slow_handshake = None);
    wait_gateway(&d, id, "close 4009 seen", |g| error_code(g) == "CLOSE_4009");
    f.clear_faults();
    wait_gateway(&d, id, "online", online);
}

#[test]
fn a_killed_gateway_reads_offline_and_returns_on_its_own() {
    let f = fake(|_| {});
    let other = fake(|_| {});
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    let other_id = add(&d, "other", &other, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    wait_gateway(&d, other_id, "online", online);
    f.stop();
    wait_gateway(&d, id, "leaves online", |g| g["status"] != "online");
    let g = wait_gateway(&d, id, "offline after the breaker opens", |g| {
        g["status"] == "offline"
    });
    assert_eq!(g["breaker"]["state"], "open");
    assert!(
        online(&gateway(&d, other_id)),
        "the other gateway is untouched"
    );
    f.resume().unwrap();
    wait_gateway(&d, id, "online without operator action", online);
}

#[test]
fn probes_run_concurrently_and_are_kept_as_history() {
    let healthy = fake(|_| {});
    let hung: Vec<FakeGateway> = (0..3).map(|_| fake(|_| {})).collect();
    let d = link_daemon(&[]);
    let id = add(&d, "healthy", &healthy, Some("fake-token"));
    for (i, h) in hung.iter().enumerate() {
        add(&d, &format!("hung{i}"), h, Some("fake-token"));
        h.update_faults(|x| x.hang = true);
    }
    wait_gateway(&d, id, "online", online);
    let started = Instant::now();
    let res = d.send(Request::new("POST", "/api/gateways/health").key(&d.admin_key));
    let took = started.elapsed();
    assert_eq!(res.status, 200, "{}", res.text());
    let body = res.json();
    assert_eq!(body["healthy"], false);
    assert_eq!(body["results"].as_array().unwrap().len(), 4);
    assert!(
        took < Duration::from_millis(2500),
        "3 hung gateways cost one probe timeout, not three: {took:?}"
    );
    let ok = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["gateway_id"] == id)
        .unwrap()
        .clone();
    assert_eq!(
        (
            ok["healthy"].as_bool(),
            ok["details"]["connected"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert_eq!(ok["details"]["version"], "2026.9.6");
    assert!(ok["details"]["uptime_ms"].as_u64().is_some());
    let timeouts = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "timeout")
        .count();
    assert!(timeouts >= 1, "{body}");

    let one = d.call(
        "POST",
        "/api/gateways/health",
        &d.admin_key,
        &json!({"gateway_id": id}),
    );
    assert_eq!(one.json()["healthy"], true, "{}", one.text());
    assert_eq!(
        d.call(
            "POST",
            "/api/gateways/health",
            &d.admin_key,
            &json!({"gateway_id": 999})
        )
        .status,
        404
    );

    let history = wait_until("samples persisted", DEADLINE, || {
        let h = d
            .get(
                &format!("/api/gateways/health/history?gateway_id={id}"),
                &d.admin_key,
            )
            .json();
        (h["series"][0]["points"]
            .as_array()
            .map(|p| p.len())
            .unwrap_or(0)
            >= 2)
            .then_some(h)
    });
    assert_eq!(history["series"][0]["name"], "healthy");
    assert_eq!(history["series"][0]["points"][0]["status"], "online");
}

#[test]
fn manual_probes_are_rate_limited_per_key() {
    let f = fake(|_| {});
    let d = link_daemon(&[("GATEWAY_SUPERVISOR__LIMITS__MANUAL_HEALTH_INTERVAL", "10s")]);
    add(&d, "gw", &f, Some("fake-token"));
    let operator = d.create_key("operator", "probe-bot");
    let viewer = d.create_key("viewer", "dash");
    assert_eq!(
        d.send(Request::new("POST", "/api/gateways/health").key(&viewer))
            .status,
        403
    );
    assert_eq!(
        d.send(Request::new("POST", "/api/gateways/health").key(&operator))
            .status,
        200
    );
    let res = d.send(Request::new("POST", "/api/gateways/health").key(&operator));
    assert_eq!(res.status, 429);
    assert!(res.header("retry-after").unwrap().parse::<u64>().unwrap() >= 9);
    // Another key is not affected.
    assert_eq!(
        d.send(Request::new("POST", "/api/gateways/health").key(&d.admin_key))
            .status,
        200
    );
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// What a process holds, for a failure's message: its descriptors by kind (`socket`, a file's
/// path, an anonymous inode's name) and its threads by name.
fn holdings(pid: u32) -> String {
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let target = std::fs::read_link(entry.path())
            .map(|t| t.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "?".into());
        let kind = target.split(":[").next().unwrap_or("?").to_owned();
        *kinds.entry(format!("fd {kind}")).or_default() += 1;
    }
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        *kinds.entry(format!("thread {}", name.trim())).or_default() += 1;
    }
    format!("{kinds:?}")
}

#[test]
fn no_socket_or_task_leak_after_100_cycles() {
    let f = fake(|_| {});
    let d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    let pid = d.pid();
    let (fd0, th0) = (fds(pid), threads(pid));
    let before = holdings(pid);
    // 100 link restarts (each a full connect + close) ...
    for i in 0..100 {
        let hellos = f.counters().hellos.load(Relaxed);
        d.call(
            "PUT",
            &format!("/api/gateways/{id}"),
            &d.admin_key,
            &json!({"name": format!("gw{i}")}),
        );
        wait_until("the restarted link's handshake", DEADLINE, || {
            (f.counters().hellos.load(Relaxed) > hellos).then_some(())
        });
    }
    // ... and 5 disconnects from the gateway side.
    for _ in 0..5 {
        let hellos = f.counters().hellos.load(Relaxed);
        f.close_all(1012, "service restart");
        wait_until("reconnect", DEADLINE, || {
            (f.counters().hellos.load(Relaxed) > hellos).then_some(())
        });
    }
    wait_gateway(&d, id, "online", online);
    wait_until("one socket left on the gateway", DEADLINE, || {
        (f.counters().active.load(Relaxed) == 1).then_some(())
    });
    // Idle blocking-pool threads (a database call's, a file read's) end after 10 s: a leak is
    // what does not settle within the deadline.
    let (fd1, th1) = wait_for("descriptors and threads settle", DEADLINE, || {
        let (f1, t1) = (fds(pid), threads(pid));
        if f1 <= fd0 + 3 && t1 <= th0 + 2 {
            Ok((f1, t1))
        } else {
            Err(format!(
                "fds {fd0} → {f1}, threads {th0} → {t1}; before {before}, now {}",
                holdings(pid)
            ))
        }
    });
    assert!(fd1 <= fd0 + 3, "fds {fd0} → {fd1}");
    assert!(th1 <= th0 + 2, "threads {th0} → {th1}");
}

#[test]
fn deleting_a_gateway_closes_its_socket() {
    let f = fake(|_| {});
    let keep = fake(|_| {});
    let d = link_daemon(&[]);
    let keep_id = add(&d, "keep", &keep, Some("fake-token"));
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    wait_gateway(&d, keep_id, "online", online);
    assert_eq!(
        d.send(Request::new("DELETE", &format!("/api/gateways/{id}")).key(&d.admin_key))
            .status,
        200
    );
    wait_until("the socket closed", DEADLINE, || {
        (f.counters().active.load(Relaxed) == 0).then_some(())
    });
    assert_eq!(
        growth(Duration::from_secs(2), || f
            .counters()
            .accepts
            .load(Relaxed)),
        0,
        "no reconnects after delete"
    );
}

#[test]
fn shutdown_closes_gateway_sockets() {
    let f = fake(|_| {});
    let mut d = link_daemon(&[]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    assert!(d.terminate().success());
    wait_until("the socket closed", DEADLINE, || {
        (f.counters().active.load(Relaxed) == 0).then_some(())
    });
}

/// More gateways than a pooled HTTP client allows by default (awc: 100 per client, one client
/// per arbiter thread) must all come online: each upgraded socket keeps its permit.
#[test]
fn three_hundred_gateways_all_come_online() {
    let fakes: Vec<FakeGateway> = (0..300).map(|_| fake(|_| {})).collect();
    let d = link_daemon(&[]);
    for (i, f) in fakes.iter().enumerate() {
        add(&d, &format!("gw{i:03}"), f, Some("fake-token"));
    }
    wait_until("all 300 online", Duration::from_secs(60), || {
        let list = d.gateways();
        (list.iter().filter(|g| online(g)).count() == 300).then_some(())
    });
    let active: i64 = fakes
        .iter()
        .map(|f| f.counters().active.load(Relaxed))
        .sum();
    assert_eq!(active, 300, "one socket per gateway");
}

/// With the breaker open and a long cooldown, a gateway that is ready again is reconnected on
/// its `/readyz`, not after the cooldown.
#[test]
fn a_ready_gateway_is_reconnected_before_the_breaker_cooldown() {
    let f = fake(|_| {});
    let d = link_daemon(&[
        ("GATEWAY_SUPERVISOR__GATEWAYS__BREAKER_COOLDOWN", "60s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__BACKOFF_MAX", "60s"),
    ]);
    let id = add(&d, "gw", &f, Some("fake-token"));
    wait_gateway(&d, id, "online", online);
    f.stop();
    let g = wait_gateway(&d, id, "breaker open", |g| g["breaker"]["state"] == "open");
    assert_eq!(g["status"], "offline");
    f.resume().unwrap();
    let resumed = Instant::now();
    wait_gateway(&d, id, "online again", online);
    assert!(
        resumed.elapsed() < Duration::from_secs(15),
        "reconnected on readiness, not after the 60 s cooldown: {:?}",
        resumed.elapsed()
    );
}

/// A `wss://` gateway whose certificate this daemon cannot trust (a self-signed one, served by
/// a real `openssl s_server`): the reason says what is wrong and what to do, not rustls' debug
/// text (`InvalidCertificate(Other(OtherError(CaUsedAsEndEntity)))`).
#[test]
fn a_refused_tls_certificate_is_explained_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
        ])
        .arg("/CN=localhost")
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(made.status.success(), "{made:?}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(port.to_string())
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl s_server");
    crate::support::wait_until("s_server listening", DEADLINE, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    let d = Daemon::start();
    let res = d.call(
        "POST",
        "/api/gateways",
        &d.admin_key,
        &serde_json::json!({"name": "tls", "url": format!("wss://127.0.0.1:{port}"), "token": "t"}),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let id = res.json()["gateway"]["id"].as_i64().unwrap();
    let g = crate::support::wait_until("the TLS refusal reported", DEADLINE, || {
        let g = d.get(&format!("/api/gateways/{id}"), &d.admin_key).json()["gateway"].clone();
        g["connection"]["last_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("TLS"))
            .then_some(g)
    });
    let _ = server.kill();
    let _ = server.wait();
    let message = g["connection"]["last_error"]["message"].as_str().unwrap();
    // `openssl req -x509` makes a CA certificate (basicConstraints CA:TRUE): served as the
    // gateway's own, rustls said `CaUsedAsEndEntity`.
    assert!(
        message.contains("a CA certificate used as the server's own"),
        "{message}"
    );
    assert!(message.contains("allow_insecure_tls"), "{message}");
    assert!(!message.contains("InvalidCertificate"), "{message}");
}
