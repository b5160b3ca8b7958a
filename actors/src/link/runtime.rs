//! The threads the links run on, and when they go to sleep.
//!
//! A link thread sleeps in `epoll_wait` until a socket or a timer needs it. At 10,000 gateways
//! the frames that need it are the gateways' own: a ping every 25 s and a tick every 30 s
//! each, arriving in bursts of a few thousand a second (a fleet that connected together pings
//! together). Woken for every frame, a thread paid a wake-up (the kernel's context switch,
//! then a turn of tokio's driver) per frame: a fifth of the daemon's CPU in the profile.
//!
//! So a thread that was woken again soon after it went to sleep — it is in a burst — first
//! naps for [`NAP`] before it sleeps again: the frames that arrive meanwhile are then taken in
//! one wake-up. A thread that slept for longer than [`BUSY_BELOW`] goes straight back to
//! sleep, so a call to a quiet fleet is answered without any delay; in a burst, or just after
//! one, a frame or call waits at most one nap, which is far below anything the link measures
//! or decides on (latency is judged against hundreds of milliseconds, pongs within seconds).
//! This is the interrupt moderation of network cards, done in the one place where the link
//! threads park. docs/design.md, *Link threads*.

use std::cell::Cell;
use std::time::{Duration, Instant};

use actix::Arbiter;

/// How long a thread in a burst waits for more work before it sleeps.
pub const NAP: Duration = Duration::from_millis(5);
/// A sleep shorter than this means the thread is in a burst.
pub const BUSY_BELOW: Duration = Duration::from_millis(10);

/// Whether a thread about to sleep should nap first, given how long its last sleep lasted
/// (`None`: it has not slept yet). Pure, the whole rule.
pub fn nap_before_sleep(last_sleep: Option<Duration>) -> Option<Duration> {
    match last_sleep {
        Some(slept) if slept < BUSY_BELOW => Some(NAP),
        _ => None,
    }
}

thread_local! {
    /// When this thread went to sleep, while it sleeps.
    static ASLEEP_SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// How long its last sleep lasted.
    static LAST_SLEEP: Cell<Option<Duration>> = const { Cell::new(None) };
}

fn before_sleep() {
    if let Some(nap) = nap_before_sleep(LAST_SLEEP.get()) {
        std::thread::sleep(nap);
    }
    ASLEEP_SINCE.set(Some(Instant::now()));
}

fn after_wake() {
    LAST_SLEEP.set(ASLEEP_SINCE.take().map(|t| t.elapsed()));
}

/// A new thread for links: a single-threaded tokio runtime whose sleeps follow
/// [`nap_before_sleep`].
pub fn arbiter() -> Arbiter {
    Arbiter::with_tokio_rt(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .on_thread_park(before_sleep)
            .on_thread_unpark(after_wake)
            .build()
            .expect("a single-threaded tokio runtime for links")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_that_slept_long_goes_straight_back_to_sleep() {
        assert_eq!(nap_before_sleep(None), None, "the first sleep");
        assert_eq!(nap_before_sleep(Some(Duration::from_secs(1))), None);
        assert_eq!(nap_before_sleep(Some(BUSY_BELOW)), None);
    }

    #[test]
    fn a_thread_woken_soon_after_it_slept_naps_first() {
        assert_eq!(nap_before_sleep(Some(Duration::ZERO)), Some(NAP));
        assert_eq!(
            nap_before_sleep(Some(BUSY_BELOW - Duration::from_micros(1))),
            Some(NAP)
        );
    }

    #[test]
    fn a_burst_is_taken_a_nap_at_a_time_not_one_wake_up_per_item() {
        // 100 items a millisecond apart, as a burst of frames arrives: a thread woken per item
        // would find them one at a time; a napping one finds them in batches of several.
        const ITEMS: usize = 100;
        let sys = actix::System::new();
        let batches = sys.block_on(async {
            let arbiter = arbiter();
            let (items, mut rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
            let (done, batches) = tokio::sync::oneshot::channel();
            assert!(arbiter.spawn(async move {
                let (mut seen, mut batches) = (0, 0);
                while seen < ITEMS {
                    if rx.recv().await.is_none() {
                        break;
                    }
                    seen += 1;
                    while rx.try_recv().is_ok() {
                        seen += 1;
                    }
                    batches += 1;
                }
                let _ = done.send(batches);
            }));
            let sender = std::thread::spawn(move || {
                for i in 0..ITEMS {
                    // Pacing the producer, as a fleet's frames are spread over a burst.
                    std::thread::sleep(Duration::from_millis(1));
                    let _ = items.send(i);
                }
            });
            let batches = tokio::time::timeout(Duration::from_secs(30), batches)
                .await
                .expect("the burst was taken")
                .expect("a count");
            sender.join().expect("the sender");
            arbiter.stop();
            batches
        });
        assert!(
            batches <= ITEMS / 2,
            "{ITEMS} items a millisecond apart took {batches} wake-ups"
        );
    }

    #[test]
    fn a_link_thread_runs_tasks_and_timers_on_its_own_thread() {
        let sys = actix::System::new();
        sys.block_on(async {
            let arbiter = arbiter();
            let (tx, rx) = tokio::sync::oneshot::channel();
            assert!(arbiter.spawn(async move {
                // An interval's first tick is due at once, and still needs the time driver.
                tokio::time::interval(Duration::from_secs(3600))
                    .tick()
                    .await;
                let _ = tx.send(std::thread::current().id());
            }));
            let ran_on = tokio::time::timeout(Duration::from_secs(5), rx)
                .await
                .expect("the arbiter ran the task")
                .expect("an answer");
            assert_ne!(ran_on, std::thread::current().id());
            arbiter.stop();
        });
    }
}
