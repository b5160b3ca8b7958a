//! `fake-gateway`: hosts N fake OpenClaw gateways on consecutive loopback ports (for
//! benchmarks and manual runs), and takes fault commands on stdin, one per line:
//!
//!   restart <i|all> <ms>     shutdown event + 1012, then UNAVAILABLE/1013 for <ms>
//!   hang <i|all> on|off      fall silent / TCP black hole
//!   drop-pongs <i|all> on|off
//!   close <i|all> <code> [reason]
//!   garbage <i|all>
//!   stop <i|all> / resume <i|all>
//!   rotate-token <i|all> <token>
//!   stats                    prints accepts, upgrades, hellos, refusals, active

use std::io::BufRead;
use std::net::SocketAddr;
use std::time::Duration;

use fake_gateway::{FakeConfig, FakeGateway};

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
        println!(
            "fake-gateway [--count N] [--base-port P (0 = ephemeral)] [--token T] [--tick-ms MS] [--ping-ms MS] [--seed-protocol] [--sessions N]"
        );
        return;
    }
    let count: usize = arg(&args, "--count", 1);
    let base: u16 = arg(&args, "--base-port", 0);
    let cfg = FakeConfig {
        token: Some(arg(&args, "--token", "fake-token".to_owned())),
        tick_interval: Duration::from_millis(arg(&args, "--tick-ms", 30_000)),
        ping_interval: Some(Duration::from_millis(arg(&args, "--ping-ms", 25_000))),
        seed_protocol: args.iter().any(|a| a == "--seed-protocol"),
        sessions: arg(&args, "--sessions", 0),
        ..FakeConfig::default()
    };
    let mut fakes = Vec::with_capacity(count);
    for i in 0..count {
        let port = if base == 0 { 0 } else { base + i as u16 };
        match FakeGateway::start_on(cfg.clone(), SocketAddr::from(([127, 0, 0, 1], port))) {
            Ok(f) => {
                println!("port {}", f.port());
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
}
