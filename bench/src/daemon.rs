//! The daemon under measurement: a release `gateway-supervisor serve` on an ephemeral loopback
//! port with its own state directory, plus the /proc readings the scenarios report.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http::Request;

pub struct Daemon {
    bin: PathBuf,
    env: Vec<(String, String)>,
    pub state: tempfile::TempDir,
    child: Child,
    pub addr: SocketAddr,
    pub key: String,
}

impl Daemon {
    /// Starts a daemon with an empty state directory. `env` adds `GATEWAY_SUPERVISOR__…`
    /// settings; the gateway-ops rate limit is off (a load generator is one key).
    pub fn start(bin: &Path, env: &[(&str, &str)]) -> Daemon {
        let state = tempfile::tempdir().expect("tempdir");
        // At `warn` by default: the scenarios measure the daemon's work, not its logging. At
        // the daemon's own default (`info`, with an access line a request) a cached read costs
        // well over twice the instructions (docs/performance.md, *Performance*): `GS_BENCH_LOG_LEVEL=info`
        // measures that.
        let level = std::env::var("GS_BENCH_LOG_LEVEL").unwrap_or_else(|_| "warn".to_owned());
        let mut all = vec![
            ("GATEWAY_SUPERVISOR__LOG__LEVEL".to_owned(), level),
            (
                "GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE".to_owned(),
                "0".to_owned(),
            ),
        ];
        all.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let (child, addr, key) = launch(bin, state.path(), &all);
        Daemon {
            bin: bin.to_owned(),
            env: all,
            state,
            child,
            addr,
            key,
        }
    }

    /// Another instance on `first`'s database (a cluster on PostgreSQL): its own state
    /// directory with `first`'s master key, `first`'s admin key, and `env`.
    pub fn join(first: &Daemon, env: &[(&str, &str)]) -> Daemon {
        let state = tempfile::tempdir().expect("tempdir");
        std::fs::copy(
            first.state.path().join("master.key"),
            state.path().join("master.key"),
        )
        .expect("copy the master key");
        let mut all: Vec<(String, String)> = first
            .env
            .iter()
            .filter(|(k, _)| !env.iter().any(|(e, _)| e == k))
            .cloned()
            .collect();
        all.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let (child, addr, _) = launch(&first.bin, state.path(), &all);
        Daemon {
            bin: first.bin.clone(),
            env: all,
            state,
            child,
            addr,
            key: first.key.clone(),
        }
    }

    /// SIGKILL and reap: no clean stop, no lease released.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM and wait for the exit (graceful shutdown closes every gateway socket).
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        crate::reaper::reaped(&self.child);
    }

    /// Starts again on the same state after [`stop`](Self::stop): a cold start with the
    /// registered fleet.
    pub fn relaunch(&mut self) {
        let (child, addr, key) = launch(&self.bin, self.state.path(), &self.env);
        self.child = child;
        self.addr = addr;
        if !key.is_empty() {
            self.key = key;
        }
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        let res = Request::new("GET", path)
            .key(&self.key)
            .send(self.addr)
            .ok()?;
        serde_json::from_slice(&res.body).ok()
    }

    /// The sum of a metric family's samples in `/metrics` (0 when absent).
    pub fn metric_sum(&self, family: &str) -> f64 {
        let text = self.get_bytes("/metrics");
        String::from_utf8_lossy(&text)
            .lines()
            .filter(|l| {
                l.strip_prefix(family)
                    .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub fn get_bytes(&self, path: &str) -> Vec<u8> {
        Request::new("GET", path)
            .key(&self.key)
            .send(self.addr)
            .map(|r| r.body)
            .unwrap_or_default()
    }

    /// Registers a gateway at each of `addrs`, named `gw000000`, `gw000001`, … in order, from
    /// several threads (each create is a durable transaction).
    pub fn add_gateways(&self, addrs: &[std::net::SocketAddr]) {
        self.add_gateways_named("gw", addrs);
    }

    /// [`add_gateways`](Self::add_gateways) with names `<prefix>000000`, … instead.
    pub fn add_gateways_named(&self, prefix: &str, addrs: &[std::net::SocketAddr]) {
        let chunk = addrs.len().div_ceil(8).max(1);
        std::thread::scope(|s| {
            for (c, part) in addrs.chunks(chunk).enumerate() {
                s.spawn(move || {
                    for (i, addr) in part.iter().enumerate() {
                        self.add_gateway_at(
                            &format!("{prefix}{:06}", c * chunk + i),
                            *addr,
                            "fake-token",
                        );
                    }
                });
            }
        });
    }

    pub fn add_gateway(&self, name: &str, port: u16) -> i64 {
        self.add_gateway_with_token(name, port, "fake-token")
    }

    pub fn add_gateway_with_token(&self, name: &str, port: u16, token: &str) -> i64 {
        self.add_gateway_at(name, ([127, 0, 0, 1], port).into(), token)
    }

    pub fn add_gateway_at(&self, name: &str, addr: std::net::SocketAddr, token: &str) -> i64 {
        let body = json!({"name": name, "host": addr.ip().to_string(), "port": addr.port(), "token": token});
        let res = Request::new("POST", "/api/gateways")
            .key(&self.key)
            .json(&body)
            .send(self.addr)
            .expect("create a gateway");
        assert_eq!(res.status, 201, "create {name}: {}", res.text());
        serde_json::from_slice::<Value>(&res.body).expect("json")["gateway"]["id"]
            .as_i64()
            .expect("id")
    }

    /// How many registered gateways read `online`: a page of one and the count it reports.
    /// Not the whole list, whose body the daemon would keep until the next change (600 bytes
    /// a gateway) and the fleet's memory readings would count as the fleet's.
    pub fn online_count(&self) -> usize {
        self.get("/api/gateways?status=online&limit=1")
            .and_then(|v| v["total"].as_u64())
            .map_or(0, |n| n as usize)
    }

    /// Polls until `n` gateways read online; panics after `deadline`.
    pub fn wait_online(&self, n: usize, deadline: Duration, poll: Duration) -> Duration {
        let t0 = Instant::now();
        loop {
            let online = self.online_count();
            if online >= n {
                return t0.elapsed();
            }
            assert!(
                t0.elapsed() < deadline,
                "only {online}/{n} gateways online after {deadline:?}"
            );
            std::thread::sleep(poll);
        }
    }

    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    pub fn rss_file_kib(&self) -> u64 {
        rss_file_kib(self.pid())
    }

    pub fn cpu_ticks(&self) -> u64 {
        cpu_ticks(self.pid())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        crate::reaper::stop(&mut self.child);
    }
}

fn launch(bin: &Path, state: &Path, env: &[(String, String)]) -> (Child, SocketAddr, String) {
    let addr_file = state.join("http.addr");
    let _ = std::fs::remove_file(&addr_file);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state.join("daemon.log"))
        .expect("daemon log");
    let child = crate::reaper::spawn(
        Command::new(bin)
            .args(["serve", "--bind", "127.0.0.1:0", "--state-dir"])
            .arg(state)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log),
    )
    .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
    let started = Instant::now();
    let addr = loop {
        if let Some(a) = std::fs::read_to_string(&addr_file)
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse().ok())
        {
            break a;
        }
        // Loading 100,000 gateways on a machine busy with nine more instances and their
        // fleets takes a while.
        if started.elapsed() > Duration::from_secs(300) {
            let log = std::fs::read_to_string(state.join("daemon.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            panic!(
                "the daemon did not start in 300 s; the end of its log:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // Written by the first instance on a database only (another instance shares its key).
    let key = std::fs::read_to_string(state.join("admin.key"))
        .map(|k| k.trim().to_owned())
        .unwrap_or_default();
    (child, addr, key)
}

/// USER_HZ: 100 on Linux x86_64 and arm64.
pub const TICKS_PER_SEC: f64 = 100.0;

/// utime + stime of a process, in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15; after the `)` they are at index 11 and 12.
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// The part of the RSS that is pages of files, not the process's own memory: the daemon's
/// binary (its code, read-only data) and the shared libraries, which every process running
/// the same binary on a host shares with it.
pub fn rss_file_kib(pid: u32) -> u64 {
    status_kib(pid, "RssFile:")
}

/// One `kB` field of `/proc/<pid>/status`; 0 if the process is gone.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}
