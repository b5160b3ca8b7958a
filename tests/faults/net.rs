//! The harness's network: a bridge in this namespace and one network namespace per instance,
//! joined to it by a veth pair, so that a partition is the kernel dropping packets (iptables in
//! the instance's namespace), not a socket the test closes. Addresses, on 10.77.0.0/24:
//!
//! | address | what |
//! |---|---|
//! | 10.77.0.1 | the bridge: this process reaching the instances' HTTP side |
//! | 10.77.0.2 | the fake gateways |
//! | 10.77.0.5 | the relays in front of the PostgreSQL servers (one pair per instance) |
//! | 10.77.0.11… | the instances, each in namespace `gsf-<name>` |
//!
//! Everything is made by [`Net::up`] and removed when the [`Net`] is dropped (and removed first
//! if a killed run left it).

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

pub const BRIDGE_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
pub const GATEWAYS_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
pub const DATABASE_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 5);
const BRIDGE: &str = "gsf-br";

/// What an instance can be cut from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Database,
    Gateways,
}

impl Peer {
    fn ip(self) -> Ipv4Addr {
        match self {
            Peer::Database => DATABASE_IP,
            Peer::Gateways => GATEWAYS_IP,
        }
    }
}

pub struct Net {
    names: Vec<String>,
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn must(args: &[&str]) {
    run(args).unwrap_or_else(|e| panic!("{e}"));
}

impl Net {
    /// The bridge with its addresses, and a namespace for each of `names` (at 10.77.0.11,
    /// .12, … in order), loopback up in each.
    pub fn up(names: &[&str]) -> Net {
        let net = Net {
            names: names.iter().map(|n| (*n).to_owned()).collect(),
        };
        net.remove();
        must(&["ip", "link", "add", BRIDGE, "type", "bridge"]);
        for ip in [BRIDGE_IP, GATEWAYS_IP, DATABASE_IP] {
            must(&["ip", "addr", "add", &format!("{ip}/24"), "dev", BRIDGE]);
        }
        must(&["ip", "link", "set", BRIDGE, "up"]);
        for (i, name) in names.iter().enumerate() {
            let ns = Net::namespace(name);
            let (outer, inner) = (format!("gsf-{name}0"), format!("gsf-{name}1"));
            must(&["ip", "netns", "add", &ns]);
            must(&[
                "ip", "link", "add", &outer, "type", "veth", "peer", "name", &inner,
            ]);
            must(&["ip", "link", "set", &inner, "netns", &ns]);
            must(&["ip", "link", "set", &outer, "master", BRIDGE]);
            must(&["ip", "link", "set", &outer, "up"]);
            let addr = format!("{}/24", Net::address(i));
            must(&[
                "ip", "netns", "exec", &ns, "ip", "addr", "add", &addr, "dev", &inner,
            ]);
            must(&[
                "ip", "netns", "exec", &ns, "ip", "link", "set", &inner, "up",
            ]);
            must(&["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
        }
        net
    }

    pub fn namespace(name: &str) -> String {
        format!("gsf-{name}")
    }

    /// The `i`th instance's address.
    pub fn address(i: usize) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 77, 0, 11 + i as u8))
    }

    fn iptables(name: &str, rule: &[&str]) {
        let ns = Net::namespace(name);
        let mut args = vec!["ip", "netns", "exec", &ns, "iptables", "-w"];
        args.extend_from_slice(rule);
        must(&args);
    }

    /// Every packet between instance `name` and `peer` dropped, both ways (a partition: sockets
    /// stay open, nothing arrives).
    pub fn cut(&self, name: &str, peer: Peer) {
        Net::drop_both_ways(name, peer, &[]);
    }

    /// `percent` of the packets between instance `name` and the database and gateways dropped
    /// at random, both ways (TCP resends them: a lossy link).
    pub fn lossy(&self, name: &str, percent: u32) {
        let p = format!("{:.2}", f64::from(percent) / 100.0);
        let random = ["-m", "statistic", "--mode", "random", "--probability", &p];
        for peer in [Peer::Database, Peer::Gateways] {
            Net::drop_both_ways(name, peer, &random);
        }
    }

    /// A DROP rule for packets to `peer` and one for packets from it, each matching `matching`
    /// too, in instance `name`'s namespace.
    fn drop_both_ways(name: &str, peer: Peer, matching: &[&str]) {
        let ip = peer.ip().to_string();
        for way in [["-A", "OUTPUT", "-d"], ["-A", "INPUT", "-s"]] {
            let rule = [&way[..], &[ip.as_str()], matching, &["-j", "DROP"]].concat();
            Net::iptables(name, &rule);
        }
    }

    /// Every rule in instance `name`'s namespace removed.
    pub fn heal(&self, name: &str) {
        Net::iptables(name, &["-F"]);
    }

    fn remove(&self) {
        for name in &self.names {
            let _ = run(&["ip", "netns", "del", &Net::namespace(name)]);
            let _ = run(&["ip", "link", "del", &format!("gsf-{name}0")]);
        }
        let _ = run(&["ip", "link", "del", BRIDGE]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.remove();
    }
}
