//! What the faults are done to: a PostgreSQL primary with a streaming replica (both on this
//! namespace's loopback), a pair of relays per instance in front of them (the instance's
//! database link, which the harness can slow), three instances each in its own network
//! namespace on a multi-host URL with `target_session_attrs=read-write`, and the fake gateways
//! on their own address.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use fake_gateway::{FakeConfig, FakeGateway};
use gs_test_support::daemon::{Daemon, Database};
use gs_test_support::private_pg::PrivatePg;
use gs_test_support::relay::Relay;
use serde_json::json;

use super::net::{self, Net};

/// Leases renewed every second, for `GS_FAULTS_TTL_SECONDS` (3 s, as the cluster suite has
/// them, so that a fault and its recovery take seconds; the long run's 3,000 gateways load two
/// cores so that a round can take longer than a 3 s lease allows, and it runs with 6 s).
pub fn ttl() -> Duration {
    Duration::from_secs(env_number("GS_FAULTS_TTL_SECONDS", 3))
}

/// The instances' heartbeat, `GS_FAULTS_HEARTBEAT_MS` (500 ms, as the cluster suite; the long
/// run's 1.5 s keeps two loaded cores from missing pongs). A gateway unserved for three of them
/// is unowned; the fakes tick every two (at least every second).
pub fn heartbeat() -> Duration {
    Duration::from_millis(env_number("GS_FAULTS_HEARTBEAT_MS", 500))
}

/// Gaps between a gateway's frames shorter than this are its heartbeats' spacing.
pub fn silence() -> Duration {
    heartbeat() * 3
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub struct Node {
    pub name: String,
    pub daemon: Daemon,
    /// In front of the primary and the replica, in the URL's order.
    pub relays: [Relay; 2],
}

pub struct World {
    pub net: Net,
    pub primary: PrivatePg,
    pub replica: PrivatePg,
    pub nodes: Vec<Node>,
    pub fakes: Arc<Vec<FakeGateway>>,
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn env(name: &str, bind: IpAddr, url: &str) -> Vec<(String, String)> {
    [
        ("CLUSTER__INSTANCE_ID", name.to_owned()),
        ("CLUSTER__LEASE_TTL", format!("{}ms", ttl().as_millis())),
        ("CLUSTER__RENEW_INTERVAL", "1s".into()),
        (
            "GATEWAYS__HEARTBEAT_INTERVAL",
            format!("{}ms", heartbeat().as_millis()),
        ),
        ("GATEWAYS__BACKOFF_MAX", "1s".into()),
        ("GATEWAYS__CONNECT_TIMEOUT", "1s".into()),
        // Scaled with the lease: a gateway that failed three times in a row is tried again
        // after 5 s, not 30 (on a machine loaded by thousands of fakes, pongs come late).
        ("GATEWAYS__BREAKER_COOLDOWN", "5s".into()),
        ("LIMITS__GATEWAY_OPS_PER_MINUTE", "0".into()),
        ("SERVER__BIND", format!("{bind}:0")),
        ("DATABASE__URL", url.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (format!("GATEWAY_SUPERVISOR__{k}"), v))
    .collect()
}

pub fn refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

impl World {
    /// The servers, `names` instances and `gateways` fakes, every gateway registered and linked.
    pub fn up(names: &[&str], gateways: usize) -> World {
        let net = Net::up(names);
        let primary = PrivatePg::start();
        let replica = primary.replica();
        // After the copy: the replica must not wait for a standby of its own once promoted.
        primary.synchronous();
        let mut nodes: Vec<Node> = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let relays = [primary.port, replica.port]
                .map(|port| Relay::start_at(IpAddr::V4(net::DATABASE_IP), loopback(port)));
            let url = format!(
                "postgres://postgres@{},{}/gs?target_session_attrs=read-write&connect_timeout=2",
                relays[0].addr, relays[1].addr
            );
            let e = env(name, Net::address(i), &url);
            let ns = Net::namespace(name);
            let daemon = match nodes.first() {
                None => Daemon::start_in(&ns, Database::Postgres { url }, &refs(&e)),
                Some(first) => Daemon::join_in(&first.daemon, &ns, &refs(&e)),
            };
            nodes.push(Node {
                name: (*name).to_owned(),
                daemon,
                relays,
            });
        }
        let fakes: Vec<FakeGateway> = (0..gateways)
            .map(|_| {
                FakeGateway::start_on(
                    FakeConfig {
                        token: Some("fake-token".into()),
                        tick_interval: (heartbeat() * 2).max(Duration::from_secs(1)),
                        ping_interval: None,
                        silence: silence(),
                        ..FakeConfig::default()
                    },
                    SocketAddr::from((net::GATEWAYS_IP, 0)),
                )
                .expect("start a fake gateway")
            })
            .collect();
        let first = &nodes[0].daemon;
        for (i, f) in fakes.iter().enumerate() {
            let res = first.call(
                "POST",
                "/api/gateways",
                &first.admin_key,
                &json!({"name": format!("gw{i}"), "host": net::GATEWAYS_IP.to_string(),
                        "port": f.port(), "token": "fake-token"}),
            );
            assert_eq!(res.status, 201, "{}", res.text());
        }
        World {
            net,
            primary,
            replica,
            nodes,
            fakes: Arc::new(fakes),
        }
    }

    /// Replication broken on purpose (`GS_FAULTS_BREAK_REPLICATION`, to show that the checker
    /// sees a lost write): the primary stops waiting for its standby and the standby stops
    /// following, so what is written from now on is not on the server the failover promotes.
    pub fn break_replication(&self) {
        self.primary.asynchronous();
        self.replica.stop_following();
    }

    /// The primary killed (`-m immediate`) and the replica promoted — restarted first with its
    /// clock `offset` (libfaketime) when one is given; then a new synchronous replica of the new
    /// primary, and every relay pointed at the pair.
    pub fn fail_over(&mut self, offset: Option<&str>) {
        if let Some(offset) = offset {
            self.replica.restart_with_clock(offset);
        }
        self.primary.kill();
        self.replica.promote();
        let fresh = self.replica.replica();
        self.replica.synchronous();
        let old = std::mem::replace(
            &mut self.primary,
            std::mem::replace(&mut self.replica, fresh),
        );
        drop(old);
        for node in &self.nodes {
            node.relays[0].retarget(loopback(self.primary.port));
            node.relays[1].retarget(loopback(self.replica.port));
        }
    }
}
