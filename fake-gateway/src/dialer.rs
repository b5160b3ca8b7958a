//! Who sent each socket's frames, and when, as a gateway sees it: a cluster's fencing is
//! checked here, at the gateways, not from the daemons' own word (a frame from an instance
//! whose lease another instance has taken is an overlap).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// One socket's sender, as the gateway sees it: the connect's `client.instanceId` (`""`: none
/// sent) and the first and last frame it received on that socket, in microseconds on this
/// process's monotonic clock (since the fake started), updated as frames arrive — and the
/// silences within (a socket whose frames stopped and then arrived late, as TCP resends them
/// after a partition heals, did not serve the gateway meanwhile).
#[derive(Debug)]
pub struct Dialer {
    pub instance_id: String,
    pub first_frame_us: u64,
    last_frame_us: AtomicU64,
    /// A pause between two frames longer than this is a silence (`FakeConfig::silence`).
    silence_us: u64,
    silences: Mutex<Vec<(u64, u64)>>,
}

/// Silences kept per socket (the first ones).
const SILENCES_KEPT: usize = 64;

impl Dialer {
    pub(crate) fn new(instance_id: String, at_us: u64, silence_us: u64) -> Dialer {
        Dialer {
            instance_id,
            first_frame_us: at_us,
            last_frame_us: AtomicU64::new(at_us),
            silence_us,
            silences: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn frame(&self, at_us: u64) {
        let before = self.last_frame_us.fetch_max(at_us, Ordering::Relaxed);
        if at_us > before && at_us - before > self.silence_us {
            let mut silences = self.silences.lock().unwrap_or_else(|e| e.into_inner());
            if silences.len() < SILENCES_KEPT {
                silences.push((before, at_us));
            }
        }
    }

    /// The spans, `(from, to)` in µs, when this socket received frames: from its first to its
    /// last, less its silences.
    pub fn served(&self) -> Vec<(u64, u64)> {
        let mut spans = Vec::new();
        let mut from = self.first_frame_us;
        for (quiet, resumed) in self
            .silences
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            spans.push((from, *quiet));
            from = *resumed;
        }
        spans.push((from, self.last_frame_us()));
        spans
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

/// Microseconds on this process's monotonic clock (one clock for every fake in it, and for a
/// test that marks its own moments beside theirs).
pub fn clock_us() -> u64 {
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

/// What is wrong with the fencing tokens a gateway was dialled with (`instance:epoch` in each
/// connect's `client.instanceId`, oldest first): a token without an epoch, an epoch that went
/// back or stayed the same across a change of instance, an epoch sent by two instances. Empty
/// when the fencing held.
pub fn fencing_faults(dialled: &[String]) -> Vec<String> {
    let mut faults = Vec::new();
    let mut tokens = Vec::with_capacity(dialled.len());
    for d in dialled {
        match d.rsplit_once(':').map(|(who, e)| (who, e.parse::<u64>())) {
            Some((who, Ok(epoch))) => tokens.push((who, epoch)),
            _ => faults.push(format!("no epoch in {d:?}")),
        }
    }
    for pair in tokens.windows(2) {
        let ((a, ea), (b, eb)) = (pair[0], pair[1]);
        if !(eb > ea || (a == b && ea == eb)) {
            faults.push(format!("{a}:{ea} then {b}:{eb}"));
        }
    }
    let mut owner_of = std::collections::HashMap::new();
    for (who, epoch) in &tokens {
        let first = owner_of.entry(*epoch).or_insert(*who);
        if first != who {
            faults.push(format!("epoch {epoch} sent by {first} and {who}"));
        }
    }
    faults
}

/// The spans `(start, length)` in microseconds within `[from_us, to_us]`, longer than `min_us`,
/// when no socket of `dialers` was receiving frames (each socket covers its first frame to its
/// last, less its silences): the gateway's unowned time, as it saw it.
pub fn unserved(dialers: &[Arc<Dialer>], from_us: u64, to_us: u64, min_us: u64) -> Vec<(u64, u64)> {
    let mut spans: Vec<(u64, u64)> = dialers
        .iter()
        .flat_map(|d| d.served())
        .filter(|(first, last)| *last >= from_us && *first <= to_us)
        .collect();
    spans.sort_unstable();
    let mut gaps = Vec::new();
    let mut covered = from_us;
    for (first, last) in spans {
        if first > covered && first - covered > min_us {
            gaps.push((covered, first - covered));
        }
        covered = covered.max(last);
    }
    if to_us > covered && to_us - covered > min_us {
        gaps.push((covered, to_us - covered));
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(instance: &str, first: u64, last: u64) -> Arc<Dialer> {
        let d = Dialer::new(instance.to_owned(), first, 1_500_000);
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

    fn tokens(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn fencing_holds_while_each_change_of_instance_brings_a_greater_epoch_of_its_own() {
        assert!(fencing_faults(&tokens(&["a:1", "a:1", "b:2", "a:7"])).is_empty());
        assert_eq!(fencing_faults(&tokens(&["a:2", "b:2"])).len(), 2);
        assert_eq!(
            fencing_faults(&tokens(&["c:2", "a:2"])),
            ["c:2 then a:2", "epoch 2 sent by c and a"]
        );
        assert_eq!(fencing_faults(&tokens(&["a:3", "b:2"])), ["a:3 then b:2"]);
        assert_eq!(fencing_faults(&tokens(&["a"])), ["no epoch in \"a\""]);
    }

    #[test]
    fn unowned_time_is_what_no_socket_covered() {
        // a serves 0–10, pauses; b takes over at 40 and serves to 100.
        let d = [span("a:1", 0, 10), span("b:2", 40, 100)];
        assert_eq!(unserved(&d, 0, 100, 5), [(10, 30)]);
        // Shorter gaps than the minimum are frames' spacing, not unowned time.
        assert!(unserved(&d, 0, 100, 30).is_empty());
        // Still unowned at the end of the window.
        assert_eq!(unserved(&d, 0, 130, 5), [(10, 30), (100, 30)]);
        // Overlapping sockets of one instance cover what either does.
        let d = [span("a:1", 0, 50), span("a:3", 20, 40), span("a:4", 60, 90)];
        assert_eq!(unserved(&d, 30, 90, 5), [(50, 10)]);
    }

    #[test]
    fn frames_that_arrive_late_after_a_silence_do_not_cover_it() {
        // A partition: a's frames stop at 1 s and its resent ones arrive at 9 s.
        let d = Dialer::new("a:1".into(), 0, 1_500_000);
        d.frame(1_000_000);
        d.frame(9_000_000);
        d.frame(9_400_000);
        assert_eq!(d.served(), [(0, 1_000_000), (9_000_000, 9_400_000)]);
        assert_eq!(
            unserved(&[Arc::new(d)], 0, 9_400_000, 1_500_000),
            [(1_000_000, 8_000_000)]
        );
    }
}
