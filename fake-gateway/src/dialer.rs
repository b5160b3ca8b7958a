//! Who sent each socket's frames, and when, as a gateway sees it: a cluster's fencing is
//! checked here, at the gateways, not from the daemons' own word (a frame from an instance
//! whose lease another instance has taken is an overlap).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// One socket's sender, as the gateway sees it: the connect's `client.instanceId` (`""`: none
/// sent) and the first and last frame it received on that socket, in microseconds on this
/// process's monotonic clock (since the fake started), updated as frames arrive.
#[derive(Debug)]
pub struct Dialer {
    pub instance_id: String,
    pub first_frame_us: u64,
    last_frame_us: AtomicU64,
}

impl Dialer {
    pub(crate) fn new(instance_id: String, at_us: u64) -> Dialer {
        Dialer {
            instance_id,
            first_frame_us: at_us,
            last_frame_us: AtomicU64::new(at_us),
        }
    }

    pub(crate) fn frame(&self, at_us: u64) {
        self.last_frame_us.fetch_max(at_us, Ordering::Relaxed);
    }

    pub fn last_frame_us(&self) -> u64 {
        self.last_frame_us.load(Ordering::Relaxed)
    }

    /// The sending instance: `client.instanceId` up to its `:<epoch>`.
    pub fn instance(&self) -> &str {
        self.instance_id
            .split_once(':')
            .map_or(self.instance_id.as_str(), |(i, _)| i)
    }
}

/// Microseconds on this process's monotonic clock (one clock for every fake in it).
pub(crate) fn clock_us() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    u64::try_from(START.get_or_init(Instant::now).elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// How many pairs of `dialers` from two different instances received frames over intervals
/// that overlap (a socket's from its connect to its last frame): a supervisor that fences its
/// owners has none. An open but silent socket of a deposed owner is no overlap; a frame from it
/// is.
pub fn frame_overlaps(dialers: &[Arc<Dialer>]) -> usize {
    let mut n = 0;
    for (i, a) in dialers.iter().enumerate() {
        for b in &dialers[i + 1..] {
            if a.instance() != b.instance()
                && a.first_frame_us <= b.last_frame_us()
                && b.first_frame_us <= a.last_frame_us()
            {
                n += 1;
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(instance: &str, first: u64, last: u64) -> Arc<Dialer> {
        let d = Dialer::new(instance.to_owned(), first);
        d.frame(last);
        Arc::new(d)
    }

    #[test]
    fn frames_from_two_instances_overlap_only_when_their_intervals_meet() {
        // a hands over to b: a's last frame before b's first.
        assert_eq!(
            frame_overlaps(&[span("a:1", 0, 10), span("b:2", 11, 30)]),
            0
        );
        // a, paused, sends a pong after b linked.
        assert_eq!(
            frame_overlaps(&[span("a:1", 0, 12), span("b:2", 11, 30)]),
            1
        );
        // One instance's new socket beside its old one is not two instances.
        assert_eq!(
            frame_overlaps(&[span("a:1", 0, 12), span("a:3", 11, 30)]),
            0
        );
        // A frame never goes back: the last one stays the latest.
        let d = span("a:1", 0, 20);
        d.frame(5);
        assert_eq!(d.last_frame_us(), 20);
        assert_eq!(d.instance(), "a");
    }
}
