//! The heartbeats of a link thread's connections, taken in rounds: one timer per thread for
//! every link on it, not one per link.
//!
//! A connected link's heartbeat (every 30 s by default) used to be a timer of its actor's: at
//! 10,000 gateways, 333 actors woken a second, each a poll of actix's whole context (mailbox,
//! streams, timers) in memory that had gone cold since the last one — 15 % of the daemon's
//! steady CPU, measured with the heartbeat off. Yet nearly every heartbeat finds the gateway
//! pinged since the last one (a 2026.9 gateway pings every 25 s) and only counts down to the
//! next round-trip ping (the machine's keepalive, `link/machine/keepalive.rs`). So the machine
//! says how many heartbeats may pass without it (`LinkMachine::pump_orders`), the link's
//! [`Pulse`] keeps that allowance, and the rounds here take a heartbeat quietly while the
//! gateway has pinged since the last one and the allowance lasts ([`Pulse::beat`]); any other
//! heartbeat wakes the actor, which takes it as before and hears of the quiet ones first (in
//! the one value the pulse hands over, `Input::Heard`). docs/design.md, *Heartbeat rounds*.
//!
//! Heartbeats are due on the process-wide grid (`crate::heartbeat`), so the links of one slot
//! share one instant and one wake-up. The rounds hold their links weakly: a connection that
//! ends drops out at its next heartbeat.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use crate::link::pump::Pulse;

thread_local! {
    static ROUNDS: RefCell<Rounds> = RefCell::new(Rounds::default());
}

#[derive(Default)]
struct Rounds {
    /// The heartbeats due, by when.
    due: BTreeMap<Instant, Vec<Weak<Pulse>>>,
    /// The thread's round task runs.
    running: bool,
    /// Its waker while it waits: an earlier heartbeat armed wakes it.
    waker: Option<Waker>,
}

/// Arms `pulse`'s next heartbeat at `at`, then every `every` while the rounds take it
/// quietly. A pulse the rounds already hold stays as it is.
pub fn arm(pulse: &Rc<Pulse>, at: Instant, every: Duration) {
    if !pulse.arm_beat(every) {
        return;
    }
    ROUNDS.with_borrow_mut(|rounds| {
        let earliest = rounds.due.first_key_value().is_none_or(|(k, _)| at < *k);
        rounds.due.entry(at).or_default().push(Rc::downgrade(pulse));
        if !rounds.running {
            rounds.running = true;
            actix::spawn(RoundTask {
                sleep: Box::pin(tokio::time::sleep_until(at)),
            });
        } else if earliest && let Some(waker) = rounds.waker.take() {
            waker.wake();
        }
    });
}

/// Takes the heartbeats due at `at`: each quiet one is armed again an interval later, the
/// others wake their actors (who arm them again); ended connections are forgotten.
fn take_round(rounds: &mut Rounds, at: Instant) {
    let Some(links) = rounds.due.remove(&at) else {
        return;
    };
    for link in links {
        let Some(pulse) = link.upgrade() else {
            continue;
        };
        if pulse.beat() {
            rounds
                .due
                .entry(at + pulse.beat_every())
                .or_default()
                .push(link);
        }
    }
}

/// The thread's one timer: sleeps until the earliest heartbeat due, takes that round.
struct RoundTask {
    sleep: Pin<Box<Sleep>>,
}

impl Future for RoundTask {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, task: &mut Context<'_>) -> Poll<()> {
        loop {
            let next = ROUNDS.with_borrow(|r| r.due.first_key_value().map(|(at, _)| *at));
            if let Some(at) = next {
                if self.sleep.deadline() != at {
                    self.sleep.as_mut().reset(at);
                }
                if self.sleep.as_mut().poll(task).is_ready() {
                    ROUNDS.with_borrow_mut(|r| take_round(r, at));
                    continue;
                }
            }
            ROUNDS.with_borrow_mut(|r| r.waker = Some(task.waker().clone()));
            return Poll::Pending;
        }
    }
}

impl Drop for RoundTask {
    /// The thread's runtime went (a test's): the next arm starts a new task.
    fn drop(&mut self) {
        let _ = ROUNDS.try_with(|r| {
            if let Ok(mut r) = r.try_borrow_mut() {
                r.running = false;
                r.waker = None;
            }
        });
    }
}
