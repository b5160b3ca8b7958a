//! Scenario 9, share: what one instance of a cluster costs when it carries its share of a large
//! fleet — 100,000 gateways over 10 instances (`--fleet N --instances K`: N over K), the
//! issue's ≤ 12 KB RSS per gateway per instance. This machine cannot run ten instances of
//! 10,000 links (two cores, and 20,000 open files in all), so it runs the one instance whose
//! memory the target bounds: on PostgreSQL, `cluster.max_gateways` = N / K, the first N / K
//! gateways registered are fake gateways it links, and the other N − N / K are registered at
//! addresses nobody listens on, which it holds as every instance holds the gateways its peers
//! link — as peers (`registry/peer_table.rs`), no record kept — and never dials (placement
//! leaves the highest ids unplaced: no instance has room). Measured in 3 rounds (1 in smoke
//! runs), each a cold start on the registered fleet: all N / K online, a steady window, then
//! the RSS over the N / K it links; the empty daemon's RSS beside it. The fakes count their
//! sockets: exactly N / K, none of the others dialled.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::Options;
use crate::cluster::{instance_env, refs};
use crate::daemon::Daemon;
use crate::host::{FakeHost, sum};
use crate::pg::{create_database, drop_database, pg_server};
use crate::report::{Outcome, Runs, Target, row, runs_row};

/// Where the `i`th gateway nobody links is registered: its own loopback address (a create
/// refuses a second gateway at one `host:port`) on the discard port, past the fakes' 127.1/16.
fn unlinked_addr(i: usize) -> SocketAddr {
    let i = u32::try_from(i).expect("gateway index");
    let ip = Ipv4Addr::from(u32::from_be_bytes([127, 9, 0, 0]) + i);
    SocketAddr::new(ip.into(), 9)
}

#[allow(clippy::print_stderr)]
pub fn run(opts: &Options) -> Outcome {
    let base = pg_server(opts, "share");
    let (count, of) = match (opts.smoke, opts.fleet_given) {
        (true, _) => (300, 3),
        (false, true) => (opts.fleet[0], opts.instances),
        (false, false) => (100_000, 10),
    };
    let linked = count / of;
    let rounds = if opts.smoke { 1 } else { 3 };
    let steady = if opts.smoke { 2 } else { opts.steady_secs };
    let deadline = Duration::from_secs(600);
    let url = create_database(&base);
    let mut env = instance_env("a", &url, opts.smoke);
    env.push((
        "GATEWAY_SUPERVISOR__CLUSTER__MAX_GATEWAYS".to_owned(),
        linked.to_string(),
    ));
    // As docs/operations.md tells the operator of a fleet past 10,000 (and `fleet` measures).
    if count > 10_000 {
        env.push((
            "GATEWAY_SUPERVISOR__METRICS__GATEWAY_DETAIL".to_owned(),
            "basic".to_owned(),
        ));
    }
    let mut hosts = FakeHost::fleet(linked, Some(Duration::from_secs(25)));
    let fakes: Vec<SocketAddr> = hosts.iter().flat_map(|h| h.addrs.clone()).collect();
    let mut d = Daemon::start(&opts.daemon, &refs(&env));
    // Not a wait for a condition: the empty reading is taken once start-up's own allocations
    // have settled, as `fleet` lets start-up work finish before its idle readings.
    std::thread::sleep(Duration::from_secs(5));
    let empty_kib = d.rss_kib();
    let t0 = Instant::now();
    // The fakes first: the lowest ids, the ones placement gives the instance's room to.
    d.add_gateways(&fakes);
    let others: Vec<SocketAddr> = (0..count - linked).map(unlinked_addr).collect();
    d.add_gateways_named("peer", &others);
    eprintln!(
        "    {count} gateways registered in {:.1} s ({linked} fakes, the first)",
        t0.elapsed().as_secs_f64()
    );
    let mut rss = Vec::new();
    let mut files = Vec::new();
    let mut online = Vec::new();
    let mut sockets = Vec::new();
    for round in 0..rounds {
        d.stop();
        let t = Instant::now();
        d.relaunch();
        d.wait_online(linked, deadline, Duration::from_millis(500));
        online.push(t.elapsed().as_secs_f64());
        std::thread::sleep(Duration::from_secs(steady));
        let kib = d.rss_kib();
        let file_kib = d.rss_file_kib();
        files.push(file_kib as f64 * 1024.0 / 1e6);
        sockets.push(sum(&mut hosts, "sockets"));
        rss.push(kib as f64 * 1024.0 / 1000.0 / linked as f64);
        eprintln!(
            "    round {round}: {linked} online in {:.1} s; RSS {:.1} MB ({:.2} KB a linked gateway; {:.1} MB of it the binary's and libraries' pages), {} sockets at the fakes",
            online[round],
            kib as f64 * 1024.0 / 1e6,
            rss[round],
            files[round],
            sockets[round]
        );
    }
    let rows = vec![
        runs_row(
            "share",
            format!(
                "one instance's share of {count} over {of}: RSS per gateway it links ({linked} linked, {} held for peers), median of {rounds}",
                count - linked
            ),
            Runs::of(rss.iter().copied()),
            "KB",
        )
        .target(Target::AtMost(12.0)),
        // Not taken off the target's figure: on one host every instance maps the same pages,
        // but one instance a host pays them whole.
        runs_row(
            "share",
            format!("of that RSS, the pages of the binary and its libraries (shared by the instances on one host), median of {rounds}"),
            Runs::of(files.iter().copied()),
            "MB",
        ),
        row(
            "share",
            "the same daemon empty, before any gateway (RSS)",
            empty_kib as f64 * 1024.0 / 1e6,
            "MB",
        ),
        runs_row(
            "share",
            format!("cold start -> all {linked} online, median of {rounds}"),
            Runs::of(online.iter().copied()),
            "s",
        ),
        row(
            "share",
            "sockets at the fakes, most of any round (only the gateways it has room for)",
            sockets.iter().copied().max().unwrap_or(0) as f64,
            "sockets",
        )
        .target(Target::AtMost(linked as f64)),
    ];
    let raw = json!({
        "gateways": count, "instances": of, "linked": linked, "empty_kib": empty_kib,
        "rss_kb_per_linked": rss, "rss_file_mb": files, "online_s": online, "sockets": sockets,
    });
    drop(d);
    drop(hosts);
    drop_database(&base);
    Outcome {
        name: "share",
        rows,
        raw,
    }
}
