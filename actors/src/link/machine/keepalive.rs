//! The keepalive's one home: when a connected socket is pinged, when it is taken for dead
//! (missed pongs, silence), and how many heartbeats the pump may take without the machine.
//!
//! A gateway that pings (2026.9 every 25 s) checks the socket both ways itself — it closes one
//! whose pong is late, and a socket that stops delivering its frames falls silent here — so a
//! second ping each way would double the fleet's keepalive traffic for nothing (as gRPC's
//! keepalive pings only an idle connection). Then only the handshake and every
//! [`RTT_EVERY_HEARTBEATS`]-th heartbeat make a ping due, for the round trip, and it leaves
//! with the pong to the gateway's next ping: one write instead of two. docs/design.md,
//! *Keepalive* and *Heartbeat rounds*.

use std::time::{Duration, Instant};

use super::{Heard, PumpOrders};

/// With the gateway keeping the socket alive itself (its pings), the link still pings on
/// every this-many-th heartbeat, for the round trip (`latency_ms`): 5 min at the default
/// 30 s (docs/design.md, *Keepalive*).
pub const RTT_EVERY_HEARTBEATS: u32 = 10;

/// The shortest tick interval taken from a `hello-ok` (a gateway could announce 0).
const MIN_TICK: Duration = Duration::from_secs(1);

/// What a heartbeat decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Beat {
    /// The gateway vouched for the socket since the last one: nothing to send.
    Quiet,
    /// Send this ping.
    Ping(Vec<u8>),
    /// Our pings went unanswered this many times: the socket is dead.
    NoPong(u32),
    /// No frame for this long, over twice the tick interval: the socket is dead.
    Silent(Duration),
}

#[derive(Debug)]
pub(super) struct Keepalive {
    /// When our ping that waits for its pong went out.
    outstanding: Option<Instant>,
    counter: u64,
    missed: u32,
    /// The gateway pinged this socket since the last heartbeat.
    gateway_pinged: bool,
    /// Heartbeats left before a ping for the round trip falls due; at 0 it is due, and goes
    /// out with the pong to the gateway's next ping.
    to_rtt: u32,
    last_frame_at: Instant,
    tick_interval: Duration,
}

impl Keepalive {
    pub(super) fn new(now: Instant) -> Self {
        Keepalive {
            outstanding: None,
            counter: 0,
            missed: 0,
            gateway_pinged: false,
            to_rtt: 0,
            last_frame_at: now,
            tick_interval: Duration::from_secs(30),
        }
    }

    /// A socket opened: its silence counts from now.
    pub(super) fn opened(&mut self, now: Instant) {
        self.last_frame_at = now;
    }

    /// The handshake is done: the gateway's tick interval (ms), and the round trip due at once
    /// (it leaves with the pong to the gateway's first ping, or at the first heartbeat).
    pub(super) fn connected(&mut self, tick_interval_ms: u64) {
        self.tick_interval = Duration::from_millis(tick_interval_ms).max(MIN_TICK);
        self.missed = 0;
        self.outstanding = None;
        self.to_rtt = 0;
    }

    /// What belonged to the connection that is going.
    pub(super) fn forget(&mut self) {
        self.outstanding = None;
        self.missed = 0;
        self.gateway_pinged = false;
    }

    /// A frame of any kind arrived at `at`: the socket lives.
    pub(super) fn frame_heard(&mut self, at: Instant) {
        self.last_frame_at = self.last_frame_at.max(at);
    }

    /// The heartbeat: dead if our pings went unanswered `missed_limit` times or the socket fell
    /// silent; else a ping, unless the gateway pinged since the last heartbeat.
    pub(super) fn heartbeat(&mut self, now: Instant, missed_limit: u32) -> Beat {
        if self.outstanding.is_some() {
            self.missed += 1;
            if self.missed >= missed_limit {
                return Beat::NoPong(self.missed);
            }
        }
        let silence = now.saturating_duration_since(self.last_frame_at);
        if silence > self.tick_interval * 2 {
            return Beat::Silent(silence);
        }
        let vouched = std::mem::take(&mut self.gateway_pinged);
        if vouched && self.outstanding.is_none() {
            self.to_rtt = self.to_rtt.saturating_sub(1);
            return Beat::Quiet;
        }
        Beat::Ping(self.ping(now))
    }

    /// The gateway pinged (its pong is answered): a round-trip ping that is due goes out
    /// behind the pong.
    pub(super) fn gateway_pinged(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.gateway_pinged = true;
        self.wants_next_ping().then(|| self.ping(now))
    }

    /// What the pump took by itself: `heard.quiet` heartbeats each vouched for by a gateway
    /// ping, the same as each having reached [`Keepalive::heartbeat`]; then whether the gateway
    /// pinged again since. Applied after the pings the same `heard` carries.
    pub(super) fn passed(&mut self, heard: &Heard) {
        if heard.quiet == 0 {
            return;
        }
        self.to_rtt = self.to_rtt.saturating_sub(heard.quiet);
        self.gateway_pinged = heard.pinged_since;
    }

    /// A pong: the round trip when it answers our outstanding ping (8 bytes, as ours are).
    pub(super) fn pong(&mut self, payload: &[u8], now: Instant) -> Option<Duration> {
        let sent_at = self.outstanding?;
        if payload.len() != 8 {
            return None;
        }
        self.outstanding = None;
        self.missed = 0;
        Some(now.saturating_duration_since(sent_at))
    }

    /// What the pump may do without the machine, with heartbeats every `every`: pass the
    /// gateway's next ping on when a round-trip ping is due to ride its pong; take heartbeats
    /// quietly while each only counts down to the round trip. None while anything else could
    /// come of one: a ping of ours waits for its pong, or `every` is longer than the silence a
    /// heartbeat fails on (a ping since the last one would not prove the socket lively). The
    /// last heartbeat before the round trip is always the machine's own.
    pub(super) fn orders(&self, every: Duration) -> PumpOrders {
        let quiet = if self.outstanding.is_some() || every > self.tick_interval * 2 {
            0
        } else {
            self.to_rtt.saturating_sub(1)
        };
        PumpOrders {
            want_ping: self.wants_next_ping(),
            quiet,
        }
    }

    fn wants_next_ping(&self) -> bool {
        self.to_rtt == 0 && self.outstanding.is_none()
    }

    /// The next ping, numbered; it is the outstanding one unless one waits already (that one
    /// keeps counting its misses). The round trip is then not due for
    /// [`RTT_EVERY_HEARTBEATS`] heartbeats.
    fn ping(&mut self, now: Instant) -> Vec<u8> {
        self.to_rtt = RTT_EVERY_HEARTBEATS;
        self.counter += 1;
        self.outstanding.get_or_insert(now);
        self.counter.to_be_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S30: Duration = Duration::from_secs(30);

    fn connected() -> (Keepalive, Instant) {
        let now = Instant::now();
        let mut k = Keepalive::new(now);
        k.connected(30_000);
        (k, now)
    }

    fn vouched(quiet: u32, pinged_since: bool) -> Heard {
        Heard {
            quiet,
            pinged_since,
            ..Heard::default()
        }
    }

    #[test]
    fn the_first_heartbeat_pings_and_the_ping_waits_for_its_pong() {
        let (mut k, now) = connected();
        assert_eq!(k.heartbeat(now, 3), Beat::Ping(1u64.to_be_bytes().to_vec()));
        assert_eq!(
            k.orders(S30),
            PumpOrders::default(),
            "nothing quiet while it waits"
        );
        let rtt = k.pong(&1u64.to_be_bytes(), now + Duration::from_millis(40));
        assert_eq!(rtt, Some(Duration::from_millis(40)));
        assert_eq!(k.pong(&1u64.to_be_bytes(), now), None, "answered once");
    }

    #[test]
    fn a_second_ping_while_one_waits_does_not_restart_its_clock() {
        let (mut k, now) = connected();
        k.heartbeat(now, 3);
        k.frame_heard(now + S30);
        assert!(matches!(k.heartbeat(now + S30, 3), Beat::Ping(p) if p == 2u64.to_be_bytes()));
        let rtt = k.pong(&2u64.to_be_bytes(), now + S30 + Duration::from_secs(1));
        assert_eq!(
            rtt,
            Some(S30 + Duration::from_secs(1)),
            "measured from the first"
        );
    }

    #[test]
    fn the_pump_is_asked_for_the_gateway_s_ping_only_while_the_round_trip_is_due() {
        let (mut k, now) = connected();
        assert!(k.orders(S30).want_ping, "due at once after the handshake");
        let ping = k.gateway_pinged(now).expect("rides the pong");
        assert!(!k.orders(S30).want_ping);
        k.pong(&ping, now);
        assert_eq!(
            k.orders(S30),
            PumpOrders {
                want_ping: false,
                quiet: RTT_EVERY_HEARTBEATS - 1
            }
        );
        assert_eq!(k.gateway_pinged(now), None, "not due again yet");
    }

    #[test]
    fn quiet_heartbeats_count_down_to_the_round_trip_and_leave_the_last_to_the_machine() {
        let (mut k, now) = connected();
        let ping = k.gateway_pinged(now).unwrap();
        k.pong(&ping, now);
        k.passed(&vouched(RTT_EVERY_HEARTBEATS - 1, true));
        assert_eq!(k.orders(S30).quiet, 0);
        assert_eq!(k.heartbeat(now, 3), Beat::Quiet, "the gateway pinged since");
        assert!(k.orders(S30).want_ping, "the round trip is due again");
    }

    #[test]
    fn a_heartbeat_longer_than_the_silence_limit_is_never_quiet() {
        let (mut k, now) = connected();
        let ping = k.gateway_pinged(now).unwrap();
        k.pong(&ping, now);
        assert_eq!(k.orders(Duration::from_secs(60)).quiet, 9);
        assert_eq!(k.orders(Duration::from_secs(61)).quiet, 0);
    }

    #[test]
    fn missed_pongs_and_silence_each_declare_the_socket_dead() {
        let (mut k, now) = connected();
        k.heartbeat(now, 2);
        assert!(
            matches!(k.heartbeat(now, 2), Beat::Ping(_)),
            "one miss: pinged again"
        );
        assert_eq!(k.heartbeat(now, 2), Beat::NoPong(2));
        let (mut k, now) = connected();
        k.frame_heard(now + S30);
        assert!(matches!(k.heartbeat(now + S30 * 2, 3), Beat::Ping(_)));
        k.pong(&1u64.to_be_bytes(), now + S30 * 2);
        assert_eq!(
            k.heartbeat(now + S30 * 3 + Duration::from_secs(1), 3),
            Beat::Silent(S30 * 2 + Duration::from_secs(1))
        );
    }

    #[test]
    fn a_frame_heard_late_never_moves_the_silence_back() {
        let (mut k, now) = connected();
        k.frame_heard(now + S30);
        k.frame_heard(now);
        assert!(matches!(k.heartbeat(now + S30 * 3, 3), Beat::Ping(_)));
    }

    #[test]
    fn a_tick_interval_below_a_second_counts_as_one() {
        let (mut k, now) = connected();
        k.connected(0);
        assert!(matches!(
            k.heartbeat(now + Duration::from_millis(2100), 3),
            Beat::Silent(_)
        ));
    }
}
