//! Fleets of fake gateways in child processes (`gs-bench fake-host`), so that 10,000 of them fit
//! under a per-process open-file limit (each fake holds a listener and a socket) and their CPU
//! is not counted as the daemon's. A host is driven over stdin/stdout, one line per command:
//!
//!   mark      remember every fake's handshake count            → `ok`
//!   fresh     how many fakes completed a handshake since mark  → `<n>`
//!   down      all fakes: `shutdown` event, close 1012, stop listening (a process restart)
//!   up        all fakes listen again on their ports; starts the accept log  → `ok`
//!   accepts   accepted connections since `up`, as milliseconds after it: `<ms> <ms> …`
//!   sockets   sockets open now, all fakes together                 → `<n>`
//!   peak      the most sockets any one fake had open at once since `peakreset` (sampled every
//!             50 ms; a supervisor links each gateway once, so anything above 1 is a defect)
//!   peakreset → `ok`
//!   overlaps  pairs of sockets from two different instances (by the connect's
//!             `client.instanceId`) whose frames' intervals overlapped, over every fake's
//!             recorded connects, on this process's monotonic clock (must be 0)
//!
//! Host `i` listens on its own loopback address (`127.1.x.y`; all of 127.0.0.0/8 is loopback),
//! ports from [`FIRST_PORT`]: 100,000 fakes need more listening ports than one address has.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use fake_gateway::{AcceptLog, FakeConfig, FakeGateway};
use serde_json::json;

/// Fakes per host process: two descriptors each, well under a 20,000 limit.
pub const PER_HOST: usize = 2_500;
/// Fakes listen on fixed ports from here, below the kernel's ephemeral range: 10,000 listeners
/// there would leave the daemon's own connections too few free ports, and a restart's
/// reconnects slow to a crawl looking for one.
const FIRST_PORT: u16 = 12_000;

/// Host `i`'s loopback address: `127.1.0.1`, `127.1.0.2`, … (250 a /24).
fn host_ip(i: usize) -> std::net::Ipv4Addr {
    let i = u32::try_from(i).expect("host index");
    std::net::Ipv4Addr::from(u32::from_be_bytes([127, 1, 0, 0]) + (i / 250) * 256 + i % 250 + 1)
}

pub struct FakeHost {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// Where its fakes listen, in order.
    pub addrs: Vec<SocketAddr>,
}

impl FakeHost {
    /// Hosts for `count` fakes that ping every `ping` (the real gateway: 25 s).
    pub fn fleet(count: usize, ping: Option<Duration>) -> Vec<FakeHost> {
        let mut hosts = Vec::new();
        let mut left = count;
        while left > 0 {
            let n = left.min(PER_HOST);
            let ip = host_ip(hosts.len());
            hosts.push(FakeHost::start(n, ip, ping));
            left -= n;
        }
        hosts
    }

    fn start(count: usize, ip: std::net::Ipv4Addr, ping: Option<Duration>) -> FakeHost {
        let mut child = crate::reaper::spawn(
            Command::new(std::env::current_exe().expect("own path"))
                .args([
                    "fake-host",
                    &count.to_string(),
                    &ping.map(|p| p.as_millis()).unwrap_or(0).to_string(),
                    &ip.to_string(),
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped()),
        )
        .expect("fake host");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("fake host addresses");
        let addrs = line
            .split_whitespace()
            .map(|p| p.parse().expect("address"))
            .collect::<Vec<SocketAddr>>();
        assert_eq!(addrs.len(), count, "fake host started {}", addrs.len());
        FakeHost {
            child,
            stdin,
            stdout,
            addrs,
        }
    }

    /// CPU time (clock ticks) of this host process so far.
    pub fn cpu_ticks(&self) -> u64 {
        crate::daemon::cpu_ticks(self.child.id())
    }

    pub fn cmd(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").expect("fake host stdin");
        self.stdin.flush().expect("flush");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("fake host reply");
        line.trim().to_owned()
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        crate::reaper::stop(&mut self.child);
    }
}

/// The most sockets any one fake had open at once since `peakreset` (`usize::MAX`: a host that
/// did not say).
pub fn peak(hosts: &mut [FakeHost]) -> usize {
    hosts
        .iter_mut()
        .map(|h| h.cmd("peak").parse::<usize>().unwrap_or(usize::MAX))
        .max()
        .unwrap_or(0)
}

/// Runs every host's `command` and sums the numeric replies.
pub fn sum(hosts: &mut [FakeHost], command: &str) -> usize {
    hosts
        .iter_mut()
        .map(|h| h.cmd(command).parse::<usize>().unwrap_or(0))
        .sum()
}

/// The `fake-host COUNT PING_MS IP` process: fakes on `IP`, ports from [`FIRST_PORT`]; a
/// taken port is skipped (past 32,767, an ephemeral one is used).
#[allow(clippy::print_stdout)]
pub fn serve(count: usize, ping_ms: u64, ip: std::net::Ipv4Addr) {
    let log = AcceptLog::default();
    let cfg = FakeConfig {
        ping_interval: (ping_ms > 0).then(|| Duration::from_millis(ping_ms)),
        accept_log: Some(log.clone()),
        ..FakeConfig::default()
    };
    let mut next_port = FIRST_PORT;
    let fakes: Vec<FakeGateway> = (0..count)
        .map(|_| {
            loop {
                let port = next_port;
                next_port = next_port.saturating_add(1);
                let addr = SocketAddr::from((ip, if port >= 32_768 { 0 } else { port }));
                if let Ok(f) = FakeGateway::start_on(cfg.clone(), addr) {
                    break f;
                }
            }
        })
        .collect();
    let addrs: Vec<String> = fakes
        .iter()
        .map(|f| SocketAddr::from((ip, f.port())).to_string())
        .collect();
    println!("{}", addrs.join(" "));
    let fakes = std::sync::Arc::new(fakes);
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    {
        let (fakes, peak) = (fakes.clone(), peak.clone());
        std::thread::spawn(move || {
            loop {
                for f in fakes.iter() {
                    peak.fetch_max(
                        f.counters()
                            .active
                            .load(std::sync::atomic::Ordering::Relaxed),
                        std::sync::atomic::Ordering::Relaxed,
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
    }
    let mut marks = vec![0u64; count];
    let mut up_at = Instant::now();
    let hellos = |f: &FakeGateway| {
        f.counters()
            .hellos
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let reply: String = match line.trim() {
            "mark" => {
                for (m, f) in marks.iter_mut().zip(fakes.iter()) {
                    *m = hellos(f);
                }
                "ok".to_owned()
            }
            "fresh" => marks
                .iter()
                .zip(fakes.iter())
                .filter(|(m, f)| hellos(f) > **m)
                .count()
                .to_string(),
            "down" => {
                for f in fakes.iter() {
                    f.emit("shutdown", json!({"reason": "gateway stopping"}));
                    f.stop();
                }
                "ok".to_owned()
            }
            "up" => {
                log.take();
                up_at = Instant::now();
                for f in fakes.iter() {
                    f.resume().expect("listen again");
                }
                "ok".to_owned()
            }
            "sockets" => fakes
                .iter()
                .map(|f| {
                    f.counters()
                        .active
                        .load(std::sync::atomic::Ordering::Relaxed)
                })
                .sum::<i64>()
                .to_string(),
            "peak" => peak.load(std::sync::atomic::Ordering::Relaxed).to_string(),
            "overlaps" => fakes
                .iter()
                .map(|f| fake_gateway::frame_overlaps(&f.dialer_frames()))
                .sum::<usize>()
                .to_string(),
            "peakreset" => {
                peak.store(0, std::sync::atomic::Ordering::Relaxed);
                "ok".to_owned()
            }
            "accepts" => log
                .take()
                .iter()
                .map(|t| t.saturating_duration_since(up_at).as_millis().to_string())
                .collect::<Vec<_>>()
                .join(" "),
            other => format!("unknown command {other:?}"),
        };
        println!("{reply}");
    }
}
