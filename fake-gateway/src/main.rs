//! `fake-gateway`: hosts N fake OpenClaw gateways on consecutive loopback ports (for
//! benchmarks and manual runs), and takes fault commands on stdin, one per line (see
//! [`HELP`]). It serves until it is stopped (SIGTERM, ctrl-c), whether or not stdin stays
//! open.

use std::io::BufRead;
use std::net::SocketAddr;
use std::time::Duration;

use fake_gateway::{FakeConfig, FakeGateway, Release, Update};

const HELP: &str = "\
fake-gateway: N fake OpenClaw gateways on consecutive loopback ports

usage: fake-gateway [--count N] [--base-port P (0 = ephemeral)] [--token T] [--tick-ms MS]
                    [--ping-ms MS] [--seed-protocol] [--sessions N] [--release V]
                    [--update-to V]

  --release V   imitate release V's handshake and HTTP side: 2026.9.6 (default), 2026.3.31
                (HTTP 500 on every path), 2026.2.25 or 2026.1.30 (v2-only signatures, the
                Control UI page on every HTTP path)
  --update-to V `update.run` hands off to an updater that installs release V and restarts
                as it (without it, `update.run` is refused as a real 2026.9.6 refuses it in
                a container: `container-image-install`)

Prints `port P` per gateway, then `ready N`. Commands on stdin, one per line (i = a gateway's
index, or all); each is answered `ok <command>`:

  restart <i|all> <ms>            shutdown event + close 1012, then UNAVAILABLE/1013 for <ms>
  hang <i|all> on|off             fall silent / TCP black hole
  drop-pongs <i|all> on|off       stop answering pings and requests
  close <i|all> <code> [reason]   close every socket with this code
  garbage <i|all>                 send a frame that is not JSON
  stop <i|all> / resume <i|all>   stop listening / listen again
  rotate-token <i|all> <token>    change the shared token
  stats                           accepts, upgrades, hellos, refusals, active sockets

It serves until stopped (SIGTERM, ctrl-c); the end of stdin ends only the commands.
";

fn release(name: &str) -> Option<Release> {
    match name {
        "2026.1.30" => Some(Release::R2026_1_30),
        "2026.2.25" => Some(Release::R2026_2_25),
        "2026.3.31" => Some(Release::R2026_3_31),
        "2026.9.6" => Some(Release::R2026_9_6),
        _ => None,
    }
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.windows(2)
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(default)
}

#[allow(clippy::print_stdout)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{HELP}");
        return;
    }
    let imitated = arg(&args, "--release", "2026.9.6".to_owned());
    let Some(imitated) = release(&imitated) else {
        eprintln!(
            "fake-gateway: unknown --release {imitated} (2026.1.30, 2026.2.25, 2026.3.31, 2026.9.6)"
        );
        std::process::exit(2);
    };
    let count: usize = arg(&args, "--count", 1);
    let base: u16 = arg(&args, "--base-port", 0);
    let cfg = FakeConfig {
        token: Some(arg(&args, "--token", "fake-token".to_owned())),
        tick_interval: Duration::from_millis(arg(&args, "--tick-ms", 30_000)),
        ping_interval: Some(Duration::from_millis(arg(&args, "--ping-ms", 25_000))),
        seed_protocol: args.iter().any(|a| a == "--seed-protocol"),
        sessions: arg(&args, "--sessions", 0),
        update: match arg(&args, "--update-to", String::new()) {
            v if v.is_empty() => Update::Refused,
            version => Update::To { version },
        },
        ..FakeConfig::imitating(imitated)
    };
    let mut fakes = Vec::with_capacity(count);
    for i in 0..count {
        let port = if base == 0 { 0 } else { base + i as u16 };
        match FakeGateway::start_on(cfg.clone(), SocketAddr::from(([127, 0, 0, 1], port))) {
            Ok(f) => {
                println!("port {}", f.port());
                // As a real gateway's file log starts: what `logs.tail` finds first.
                f.log(
                    "info",
                    "gateway",
                    &format!("listening on ws://127.0.0.1:{}", f.port()),
                );
                fakes.push(f);
            }
            Err(e) => {
                eprintln!("fake-gateway: cannot listen on 127.0.0.1:{port}: {e}");
                std::process::exit(1);
            }
        }
    }
    println!("ready {}", fakes.len());
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((cmd, rest)) = words.split_first() else {
            continue;
        };
        let targets: Vec<&FakeGateway> = match rest.first() {
            Some(&"all") | None => fakes.iter().collect(),
            Some(i) => i
                .parse::<usize>()
                .ok()
                .and_then(|i| fakes.get(i))
                .into_iter()
                .collect(),
        };
        let on = rest.get(1) == Some(&"on");
        for f in targets {
            match *cmd {
                "restart" => f.restart(Duration::from_millis(
                    rest.get(1).and_then(|s| s.parse().ok()).unwrap_or(1500),
                )),
                "hang" => f.update_faults(|x| x.hang = on),
                "drop-pongs" => f.update_faults(|x| x.drop_pongs = on),
                "close" => f.close_all(
                    rest.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000),
                    &rest.get(2..).map(|r| r.join(" ")).unwrap_or_default(),
                ),
                "garbage" => f.send_garbage(),
                "stop" => f.stop(),
                "resume" => {
                    let _ = f.resume();
                }
                "rotate-token" => f.rotate_token(rest.get(1).copied()),
                // `log 0 warn disk almost full`: a line in gateway 0's file log.
                "log" => f.log(
                    rest.get(1).copied().unwrap_or("info"),
                    "fake",
                    &rest.get(2..).map(|r| r.join(" ")).unwrap_or_default(),
                ),
                _ => {}
            }
        }
        if *cmd == "stats" {
            use std::sync::atomic::Ordering::Relaxed;
            let sum = |g: fn(&FakeGateway) -> u64| fakes.iter().map(g).sum::<u64>();
            println!(
                "stats accepts={} upgrades={} hellos={} refusals={} active={}",
                sum(|f| f.counters().accepts.load(Relaxed)),
                sum(|f| f.counters().upgrades.load(Relaxed)),
                sum(|f| f.counters().hellos.load(Relaxed)),
                sum(|f| f.counters().refusals.load(Relaxed)),
                fakes
                    .iter()
                    .map(|f| f.counters().active.load(Relaxed))
                    .sum::<i64>(),
            );
        }
        println!("ok {cmd}");
    }
    // stdin is done; the gateways serve on until the process is stopped.
    println!("stdin closed; serving until stopped");
    loop {
        std::thread::park();
    }
}
