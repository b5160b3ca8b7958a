//! `gs-bench`: measures the release daemon against fleets of fake gateways hosted in this
//! process. Prints a table and writes it as JSON (`--json FILE`).
//!
//!   gs-bench fleet --count 1000 [--steady 60] [--heartbeat 30s]
//!       start-to-all-online time after a daemon restart, RSS (total and per gateway), CPU share
//!       over the steady window.
//!   gs-bench failover [--trials 50]
//!       two fake gateways; the acting primary's socket closes → time to the `gateway.primary`
//!       event and to the next accepted spawn (median, p99).
//!   gs-bench sessions [--gateways 100] [--sessions 50] [--requests 1000]
//!       `GET /api/sessions` latency over a fleet's merged session caches, and spawn latency.
//!   gs-bench real --openclaw DIR [--restarts 3]
//!       a real OpenClaw gateway: time from its `/readyz` 200 to `online` (registered while it
//!       was ready, then after each SIGTERM + start), with the default link settings.
//!
//! Run through `scripts/bench.sh` (builds release binaries, raises the fd limit).

#[path = "../../tests/openclaw_e2e/fake_model.rs"]
#[allow(dead_code)]
mod fake_model;
#[path = "../../tests/integration/support/http.rs"]
#[allow(dead_code)]
mod http;
#[path = "../../tests/openclaw_e2e/real_gateway.rs"]
#[allow(dead_code)]
mod real_gateway;
#[path = "../../tests/integration/support/sse.rs"]
#[allow(dead_code)]
mod sse;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fake_gateway::{FakeConfig, FakeGateway};
use http::Request;
use serde_json::{Value, json};

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.windows(2)
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(default)
}

fn ticks_per_sec() -> f64 {
    // USER_HZ; 100 on Linux x86_64 and arm64.
    100.0
}

fn proc_cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15; after the `)` they are at index 11 and 12.
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

struct Daemon {
    child: Child,
    addr: SocketAddr,
    key: String,
}

fn start_daemon(bin: &Path, state: &Path, heartbeat: &str) -> Daemon {
    let addr_file = state.join("http.addr");
    let _ = std::fs::remove_file(&addr_file);
    let child = Command::new(bin)
        .args(["serve", "--bind", "127.0.0.1:0", "--state-dir"])
        .arg(state)
        .env("GATEWAY_SUPERVISOR__LOG__LEVEL", "warn")
        .env("GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE", "0")
        .env(
            "GATEWAY_SUPERVISOR__GATEWAYS__HEARTBEAT_INTERVAL",
            heartbeat,
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(state.join("daemon.log")).expect("log"))
        .spawn()
        .expect("start the daemon");
    let started = Instant::now();
    let addr = loop {
        if let Some(a) = std::fs::read_to_string(&addr_file)
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse().ok())
        {
            break a;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "daemon did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let key = std::fs::read_to_string(state.join("admin.key"))
        .expect("admin key")
        .trim()
        .to_owned();
    Daemon { child, addr, key }
}

fn online_count(d: &Daemon) -> usize {
    Request::new("GET", "/api/gateways")
        .key(&d.key)
        .send(d.addr)
        .ok()
        .and_then(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .and_then(|v| {
            v["gateways"]
                .as_array()
                .map(|a| a.iter().filter(|g| g["status"] == "online").count())
        })
        .unwrap_or(0)
}

#[allow(clippy::print_stdout)]
fn fleet(args: &[String]) -> Value {
    let count: usize = arg(args, "--count", 1000);
    let steady: u64 = arg(args, "--steady", 60);
    let heartbeat: String = arg(args, "--heartbeat", "30s".to_owned());
    let bin = PathBuf::from(arg(
        args,
        "--daemon",
        "target/release/gateway-supervisor".to_owned(),
    ));
    let cfg = FakeConfig {
        ping_interval: Some(Duration::from_secs(25)),
        ..FakeConfig::default()
    };
    let fakes: Vec<FakeGateway> = (0..count)
        .map(|_| FakeGateway::start(cfg.clone()).expect("fake"))
        .collect();
    let state = tempfile::tempdir().expect("tempdir");

    // Register the fleet, then restart: the measured start is a cold daemon with N gateways.
    let mut d = start_daemon(&bin, state.path(), &heartbeat);
    for (i, f) in fakes.iter().enumerate() {
        let body = json!({"name": format!("gw{i:05}"), "host": "127.0.0.1", "port": f.port(), "token": "fake-token"});
        let res = Request::new("POST", "/api/gateways")
            .key(&d.key)
            .json(&body)
            .send(d.addr)
            .expect("create");
        assert_eq!(res.status, 201, "{}", res.text());
    }
    let _ = Command::new("kill")
        .args(["-TERM", &d.child.id().to_string()])
        .status();
    let _ = d.child.wait();

    let t0 = Instant::now();
    d = start_daemon(&bin, state.path(), &heartbeat);
    let mut last = 0;
    while last < count {
        last = online_count(&d);
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "only {last}/{count} online after 600 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let all_online = t0.elapsed();
    let pid = d.child.id();
    std::thread::sleep(Duration::from_secs(5));
    let rss_online = rss_kib(pid);
    let cpu0 = proc_cpu_ticks(pid);
    let w0 = Instant::now();
    std::thread::sleep(Duration::from_secs(steady));
    let cpu_share =
        (proc_cpu_ticks(pid) - cpu0) as f64 / ticks_per_sec() / w0.elapsed().as_secs_f64();
    let rss_steady = rss_kib(pid);
    let still_online = online_count(&d);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = d.child.wait();
    json!({
        "scenario": "fleet",
        "gateways": count,
        "heartbeat": heartbeat,
        "start_to_all_online_s": all_online.as_secs_f64(),
        "rss_kib_all_online": rss_online,
        "rss_kib_after_steady": rss_steady,
        "rss_kib_per_gateway": rss_steady as f64 / count as f64,
        "steady_window_s": steady,
        "cpu_share_of_one_core": cpu_share,
        "online_at_end": still_online,
    })
}

fn status_of(d: &Daemon, id: i64) -> String {
    Request::new("GET", &format!("/api/gateways/{id}"))
        .key(&d.key)
        .send(d.addr)
        .ok()
        .and_then(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .and_then(|v| v["gateway"]["status"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn wait_status(d: &Daemon, id: i64, want: &str) -> Duration {
    let t0 = Instant::now();
    while status_of(d, id) != want {
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "gateway never became {want}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    t0.elapsed()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn summary(mut samples: Vec<f64>) -> Value {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    json!({"n": samples.len(), "median_ms": percentile(&samples, 0.5), "p99_ms": percentile(&samples, 0.99), "max_ms": samples.last()})
}

fn add_gateway(d: &Daemon, name: &str, port: u16) -> i64 {
    let body = json!({"name": name, "host": "127.0.0.1", "port": port, "token": "fake-token"});
    let res = Request::new("POST", "/api/gateways")
        .key(&d.key)
        .json(&body)
        .send(d.addr)
        .expect("create");
    serde_json::from_slice::<Value>(&res.body).expect("json")["gateway"]["id"]
        .as_i64()
        .expect("id")
}

fn acting(d: &Daemon, id: i64) -> bool {
    Request::new("GET", &format!("/api/gateways/{id}"))
        .key(&d.key)
        .send(d.addr)
        .ok()
        .and_then(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .is_some_and(|v| {
            v["gateway"]["acting_primary"] == true && v["gateway"]["status"] == "online"
        })
}

fn failover(args: &[String]) -> Value {
    let trials: usize = arg(args, "--trials", 50);
    let bin = PathBuf::from(arg(
        args,
        "--daemon",
        "target/release/gateway-supervisor".to_owned(),
    ));
    let cfg = FakeConfig {
        ping_interval: None,
        ..FakeConfig::default()
    };
    let a = FakeGateway::start(cfg.clone()).expect("fake");
    let b = FakeGateway::start(cfg).expect("fake");
    let state = tempfile::tempdir().expect("tempdir");
    let d = start_daemon(&bin, state.path(), "30s");
    let a_id = add_gateway(&d, "a", a.port());
    let b_id = add_gateway(&d, "b", b.port());
    while !(acting(&d, a_id) && status_of(&d, b_id) == "online") {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut events = sse::Sse::open(d.addr, &d.key, None, "?types=gateway.primary");
    let (mut to_event, mut to_spawn) = (Vec::new(), Vec::new());
    for _ in 0..trials {
        let t0 = Instant::now();
        a.close_all(1012, "service restart");
        let e = events.until(Duration::from_secs(30), |e| {
            e.data["payload"]["acting_primary"] == b_id
        });
        to_event.push(t0.elapsed().as_secs_f64() * 1e3);
        let _ = e;
        loop {
            let res = Request::new("POST", "/api/spawn")
                .key(&d.key)
                .json(&json!({"agent": "main", "task": "t"}))
                .send(d.addr)
                .expect("spawn");
            if res.status == 202
                && serde_json::from_slice::<Value>(&res.body)
                    .ok()
                    .is_some_and(|v| v["gateway_id"] == b_id)
            {
                break;
            }
        }
        to_spawn.push(t0.elapsed().as_secs_f64() * 1e3);
        // Failback before the next trial.
        events.until(Duration::from_secs(30), |e| {
            e.data["payload"]["acting_primary"] == a_id
        });
    }
    let _ = Command::new("kill")
        .args(["-TERM", &d.child.id().to_string()])
        .status();
    json!({"scenario": "failover", "trials": trials, "close_to_primary_event": summary(to_event), "close_to_spawn_accepted": summary(to_spawn)})
}

fn sessions_bench(args: &[String]) -> Value {
    let gateways: usize = arg(args, "--gateways", 100);
    let per: usize = arg(args, "--sessions", 50);
    let requests: usize = arg(args, "--requests", 1000);
    let bin = PathBuf::from(arg(
        args,
        "--daemon",
        "target/release/gateway-supervisor".to_owned(),
    ));
    let cfg = FakeConfig {
        sessions: per,
        ping_interval: None,
        ..FakeConfig::default()
    };
    let fakes: Vec<FakeGateway> = (0..gateways)
        .map(|_| FakeGateway::start(cfg.clone()).expect("fake"))
        .collect();
    let state = tempfile::tempdir().expect("tempdir");
    let d = start_daemon(&bin, state.path(), "30s");
    for (i, f) in fakes.iter().enumerate() {
        add_gateway(&d, &format!("gw{i:03}"), f.port());
    }
    let total = gateways * per;
    let count = |q: &str| {
        Request::new("GET", &format!("/api/sessions{q}"))
            .key(&d.key)
            .send(d.addr)
            .ok()
            .and_then(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .and_then(|v| v["sessions"].as_array().map(Vec::len))
            .unwrap_or(0)
    };
    let t0 = Instant::now();
    while count("?limit=1000") < 1000.min(total) || t0.elapsed() < Duration::from_secs(2) {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "sessions never arrived"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let measure = |q: &str| {
        let mut samples = Vec::with_capacity(requests);
        for _ in 0..requests {
            let t = Instant::now();
            let res = Request::new("GET", &format!("/api/sessions{q}"))
                .key(&d.key)
                .send(d.addr)
                .expect("get");
            assert_eq!(res.status, 200);
            samples.push(t.elapsed().as_secs_f64() * 1e3);
        }
        summary(samples)
    };
    let limit50 = measure("?limit=50");
    let limit1000 = measure("?limit=1000");
    let mut spawn_samples = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let res = Request::new("POST", "/api/spawn")
            .key(&d.key)
            .json(&json!({"agent": "main", "task": "t"}))
            .send(d.addr)
            .expect("spawn");
        assert_eq!(res.status, 202, "{}", res.text());
        spawn_samples.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let _ = Command::new("kill")
        .args(["-TERM", &d.child.id().to_string()])
        .status();
    json!({"scenario": "sessions", "gateways": gateways, "sessions_per_gateway": per,
           "get_sessions_limit_50": limit50, "get_sessions_limit_1000": limit1000, "spawn_request_fake": summary(spawn_samples)})
}

fn real(args: &[String]) -> Value {
    let install = PathBuf::from(arg(args, "--openclaw", String::new()));
    let restarts: usize = arg(args, "--restarts", 3);
    let bin = PathBuf::from(arg(
        args,
        "--daemon",
        "target/release/gateway-supervisor".to_owned(),
    ));
    let mut gw = real_gateway::RealGateway::new(&install, 23_500, "bench-token", None);
    let model = fake_model::FakeModel::start();
    gw.use_model(&model.base_url());
    gw.start();
    gw.wait_ready();
    let state = tempfile::tempdir().expect("tempdir");
    let mut d = start_daemon(&bin, state.path(), "30s");
    let body =
        json!({"name": "real", "host": "127.0.0.1", "port": gw.port, "token": "bench-token"});
    let t0 = Instant::now();
    let res = Request::new("POST", "/api/gateways")
        .key(&d.key)
        .json(&body)
        .send(d.addr)
        .expect("create");
    let id = serde_json::from_slice::<Value>(&res.body).expect("json")["gateway"]["id"]
        .as_i64()
        .expect("id");
    let ready_to_online = t0.elapsed() + wait_status(&d, id, "online");
    // Spawn request latency (POST → 202; the run itself is answered by the fake model).
    let mut spawn_samples = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let res = Request::new("POST", "/api/spawn")
            .key(&d.key)
            .json(&json!({"agent": "main", "task": "ping"}))
            .send(d.addr)
            .expect("spawn");
        assert_eq!(res.status, 202, "{}", res.text());
        spawn_samples.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut after_restart = Vec::new();
    for _ in 0..restarts {
        gw.stop();
        gw.start();
        gw.wait_ready();
        after_restart.push(wait_status(&d, id, "online").as_secs_f64());
    }
    let _ = Command::new("kill")
        .args(["-TERM", &d.child.id().to_string()])
        .status();
    let _ = d.child.wait();
    gw.stop();
    json!({
        "scenario": "real",
        "gateway": "openclaw 2026.9.6 on loopback",
        "readyz_to_online_s": ready_to_online.as_secs_f64(),
        "restart_readyz_to_online_s": after_restart,
        "spawn_request_real": summary(spawn_samples),
        "note": "default link settings: backoff 1-30 s with jitter, breaker cooldown 30 s",
    })
}

#[allow(clippy::print_stdout)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("fleet") => fleet(&args),
        Some("real") => real(&args),
        Some("failover") => failover(&args),
        Some("sessions") => sessions_bench(&args),
        _ => {
            println!(
                "usage: gs-bench fleet --count N [--steady SECONDS] [--heartbeat 30s] [--daemon PATH] [--json FILE]"
            );
            return;
        }
    };
    for (k, v) in result.as_object().into_iter().flatten() {
        println!("{k:<28} {v}");
    }
    if let Some(path) = args
        .windows(2)
        .find(|w| w[0] == "--json")
        .map(|w| w[1].clone())
    {
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&result).unwrap_or_default(),
        )
        .expect("write JSON");
    }
}
