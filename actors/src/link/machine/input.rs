//! What goes into the link machine through its one door, [`super::LinkMachine::handle`]:
//! everything that happened to a link, each with the clocks it happened at ([`Now`]).

use std::time::Instant;

use serde_json::Value;

use super::{HttpHealth, RpcHealth};
use crate::protocol::errors::LinkFailure;
use crate::protocol::frames::Frame;

/// The time an input is handled at: the monotonic clock the machine's timers run on, and the
/// wall clock it shows (`last_seen`, the watchdog's run activity). Both are inputs, so a test
/// moves them by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub at: Instant,
    pub unix_ms: i64,
}

impl Now {
    /// The process's clocks, for the shells.
    pub fn system() -> Now {
        Now {
            at: Instant::now(),
            unix_ms: crate::unix_now_ms(),
        }
    }

    /// The wall clock in seconds (what `last_seen` shows).
    pub fn unix(&self) -> i64 {
        self.unix_ms.div_euclid(1000)
    }
}

/// What the socket's pump noticed by itself since the machine last heard from it, taken in
/// one piece at each wake of the actor (`Pulse::take`): the keepalive's whole view of the
/// frames the pump kept from the actor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Heard {
    /// When the last frame of any kind arrived.
    pub frame_at: Option<Instant>,
    /// When (Unix seconds) the gateway last pinged (the pump, or the shell, answered it).
    pub pinged_at: Option<i64>,
    /// Heartbeats the pump took quietly, each vouched for by a ping of the gateway's (at
    /// most what [`PumpOrders::quiet`] allowed).
    pub quiet: u32,
    /// The gateway pinged again after the last of those heartbeats.
    pub pinged_since: bool,
}

impl Heard {
    /// Nothing to tell: no frame, no ping, no quiet heartbeat (whether the gateway pinged
    /// since the last quiet one matters only with one).
    pub fn is_empty(&self) -> bool {
        self.frame_at.is_none() && self.pinged_at.is_none() && self.quiet == 0
    }
}

/// What the machine asks of the socket's pump until it next looks: one value out, as
/// [`Heard`] is one value in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PumpOrders {
    /// Pass the gateway's next ping to the machine: a round-trip ping is due to leave with its
    /// pong.
    pub want_ping: bool,
    /// Heartbeats the pump may take without the machine, each vouched for by a gateway ping.
    pub quiet: u32,
}

/// Everything that can happen to a link.
#[derive(Debug, Clone)]
pub enum Input {
    /// Dial now (the link starts, or a shell's reconnect timer for `generation` fired, or the
    /// gateway's `/readyz` said it is back). A timer from an older generation, or one that
    /// finds the link no longer backing off, is ignored.
    Dial { generation: Option<u64> },
    /// The WebSocket is upgraded; the handshake starts.
    SocketOpened,
    /// The handshake of `generation` ran out of time.
    HandshakeDeadline { generation: u64 },
    /// A frame the pump passed on (a challenge, a response, an event).
    Frame(Frame),
    /// What the pump noticed by itself (frames heard, gateway pings, quiet heartbeats).
    Heard(Heard),
    /// A pong to a ping, with its payload.
    Pong(Vec<u8>),
    /// The heartbeat of `generation` is the machine's to take.
    Heartbeat { generation: u64 },
    /// A request of ours was answered under its own id.
    Answered,
    /// A request ran out of time with no answer at all.
    Unanswered,
    /// `sessions.list` answered with this list.
    SessionsListed(Value),
    /// `sessions.list` failed on a connected link.
    SessionsListFailed,
    /// `agents.list` answered with this list.
    AgentsListed(Value),
    /// A health probe's outcome: HTTP `/health` and, when connected, the `health` RPC.
    Probed { http: HttpHealth, rpc: RpcHealth },
    /// The link fails (a dial, a read, a write, a close, the shell's own checks).
    Failed(LinkFailure),
    /// Whether this link is the gateway's approval client from its next `connect` on.
    AnswerApprovals(bool),
    /// The stuck-session watchdog's verdict: a stalled session here could not be recovered.
    SessionsUnrecovered(bool),
    /// An admin removed (or changed) the gateway: the link stops for good.
    Stop,
}
