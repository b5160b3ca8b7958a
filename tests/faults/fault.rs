//! The faults, each as Jepsen runs them: injected, held for a window, healed; the run then
//! waits for the cluster to settle before the next. A fault is one of a known set, done to one
//! instance (or to the database), by the kernel or the process's own clock — never by asking
//! the daemon.

use std::time::Duration;

use gs_test_support::private_pg::libfaketime;
use gs_test_support::relay::Delay;

use super::net::Peer;
use super::world::World;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// `kill -9`, restarted when the window ends.
    Kill,
    /// SIGSTOP for this many seconds, then SIGCONT.
    Pause(u64),
    /// Two of the three instances stopped for 10 s at once: the survivor sees most of the
    /// cluster gone, and its adoption brake holds for a TTL before it takes their gateways.
    PauseMajority,
    /// Packets between the instance and the database dropped, both ways.
    CutFromDatabase,
    /// Packets between the instance and its gateways dropped, both ways.
    CutFromGateways,
    /// The instance's database link held 200 ± 100 ms each way, 5 % of its packets to the
    /// database and the gateways dropped.
    SlowAndLossy,
    /// `pg_ctl restart -m fast` of the primary.
    DatabaseRestart,
    /// The primary killed, the synchronous replica promoted.
    DatabaseFailover,
    /// The same, the promoted server's clock 5 s ahead.
    FailoverToClockAhead,
    /// The same, 5 s behind.
    FailoverToClockBehind,
    /// The instance restarted with its clocks 5 % fast (libfaketime), restarted plain after.
    ClockFast,
}

impl Fault {
    /// One of each, as the short run injects them.
    pub const ALL: [Fault; 13] = [
        Fault::Kill,
        Fault::Pause(5),
        Fault::Pause(15),
        Fault::Pause(30),
        Fault::PauseMajority,
        Fault::CutFromDatabase,
        Fault::CutFromGateways,
        Fault::SlowAndLossy,
        Fault::DatabaseRestart,
        Fault::DatabaseFailover,
        Fault::FailoverToClockAhead,
        Fault::FailoverToClockBehind,
        Fault::ClockFast,
    ];

    pub fn name(self) -> String {
        match self {
            Fault::Kill => "kill -9 + restart".into(),
            Fault::Pause(s) => format!("SIGSTOP {s} s"),
            Fault::PauseMajority => "SIGSTOP 2 of 3 for 10 s".into(),
            Fault::CutFromDatabase => "partition from database".into(),
            Fault::CutFromGateways => "partition from gateways".into(),
            Fault::SlowAndLossy => "200±100 ms + 5 % loss".into(),
            Fault::DatabaseRestart => "database restart".into(),
            Fault::DatabaseFailover => "database failover".into(),
            Fault::FailoverToClockAhead => "failover, new clock +5 s".into(),
            Fault::FailoverToClockBehind => "failover, new clock −5 s".into(),
            Fault::ClockFast => "instance clock 5 % fast".into(),
        }
    }

    /// Whether the fault is done to one instance (else to the database).
    pub fn to_instance(self) -> bool {
        !matches!(
            self,
            Fault::DatabaseRestart
                | Fault::DatabaseFailover
                | Fault::FailoverToClockAhead
                | Fault::FailoverToClockBehind
        )
    }

    pub fn is_failover(self) -> bool {
        matches!(
            self,
            Fault::DatabaseFailover | Fault::FailoverToClockAhead | Fault::FailoverToClockBehind
        )
    }

    /// How long the fault lasts before it is healed (`draw`: a number in 0..1000).
    pub fn window(self, draw: u64) -> Duration {
        match self {
            Fault::Pause(s) => Duration::from_secs(s),
            Fault::PauseMajority => Duration::from_secs(10),
            // The whole run under the skewed clock: long enough for several lease rounds.
            Fault::ClockFast => Duration::from_secs(20),
            // Done once healed: what follows is the cluster's recovery.
            Fault::DatabaseRestart | Fault::DatabaseFailover => Duration::ZERO,
            Fault::FailoverToClockAhead | Fault::FailoverToClockBehind => Duration::ZERO,
            _ => Duration::from_millis(3_000 + draw * 7),
        }
    }

    /// The instances the fault is done to, `victim` first (none for the database's faults).
    pub fn victims(self, victim: usize, of: usize) -> Vec<usize> {
        match self {
            Fault::PauseMajority => vec![victim, (victim + 1) % of],
            _ if self.to_instance() => vec![victim],
            _ => vec![],
        }
    }

    /// Every instance the fault pauses gets `signal` (STOP, then CONT).
    fn signal_victims(self, world: &World, victim: usize, signal: &str) {
        for v in self.victims(victim, world.nodes.len()) {
            world.nodes[v].daemon.signal(signal);
        }
    }

    pub fn inject(self, world: &mut World, victim: usize) {
        let node = &mut world.nodes[victim];
        match self {
            Fault::Kill => node.daemon.kill9(),
            Fault::Pause(_) | Fault::PauseMajority => self.signal_victims(world, victim, "STOP"),
            Fault::CutFromDatabase => world.net.cut(&node.name, Peer::Database),
            Fault::CutFromGateways => world.net.cut(&node.name, Peer::Gateways),
            Fault::SlowAndLossy => {
                let delay = Delay {
                    base: Duration::from_millis(200),
                    jitter: Duration::from_millis(100),
                };
                node.relays.iter().for_each(|r| r.slow(delay));
                world.net.lossy(&node.name, 5);
            }
            Fault::DatabaseRestart => world.primary.restart(),
            Fault::DatabaseFailover => world.fail_over(None),
            Fault::FailoverToClockAhead => world.fail_over(Some("+5s")),
            Fault::FailoverToClockBehind => world.fail_over(Some("-5s")),
            Fault::ClockFast => {
                node.daemon.terminate();
                node.daemon.env.extend([
                    ("LD_PRELOAD".into(), libfaketime().display().to_string()),
                    ("FAKETIME".into(), "+0 x1.05".into()),
                ]);
                node.daemon.launch();
            }
        }
    }

    pub fn heal(self, world: &mut World, victim: usize) {
        let node = &mut world.nodes[victim];
        match self {
            Fault::Kill => node.daemon.launch(),
            Fault::Pause(_) | Fault::PauseMajority => self.signal_victims(world, victim, "CONT"),
            Fault::CutFromDatabase | Fault::CutFromGateways => world.net.heal(&node.name),
            Fault::SlowAndLossy => {
                node.relays.iter().for_each(|r| r.unslow());
                world.net.heal(&node.name);
            }
            Fault::ClockFast => {
                node.daemon.terminate();
                node.daemon
                    .env
                    .retain(|(k, _)| k != "LD_PRELOAD" && k != "FAKETIME");
                node.daemon.launch();
            }
            Fault::DatabaseRestart
            | Fault::DatabaseFailover
            | Fault::FailoverToClockAhead
            | Fault::FailoverToClockBehind => {}
        }
    }
}
