//! How many of a set of things were out at once, from a thread that looks at each every few
//! milliseconds. Each thing's outages are kept as intervals in real time (first and last look
//! that found it out), and the answer is the most intervals that overlap — not the most found
//! out in one pass: on a loaded machine the thread can be descheduled in the middle of a pass,
//! so one pass may see the first thing out before the pause and the second out after it, when
//! they never were out together.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

type Intervals = Vec<Vec<(Instant, Instant)>>;

pub struct OutageSampler {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Intervals>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl OutageSampler {
    /// Looks at things `0..n` every `every` with `out(i)` until [`OutageSampler::most_at_once`].
    pub fn start(
        n: usize,
        every: Duration,
        out: impl Fn(usize) -> bool + Send + 'static,
    ) -> OutageSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Arc<Mutex<Intervals>> = Arc::new(Mutex::new(vec![Vec::new(); n]));
        let (s, kept) = (stop.clone(), seen.clone());
        let thread = thread::spawn(move || {
            let mut open: Vec<Option<(Instant, Instant)>> = vec![None; n];
            let close = |i: usize, open: &mut Vec<Option<(Instant, Instant)>>| {
                if let Some(interval) = open[i].take() {
                    kept.lock().unwrap()[i].push(interval);
                }
            };
            while !s.load(Ordering::SeqCst) {
                for i in 0..n {
                    let is_out = out(i);
                    let now = Instant::now();
                    if is_out {
                        let since = open[i].map_or(now, |(since, _)| since);
                        open[i] = Some((since, now));
                    } else {
                        close(i, &mut open);
                    }
                }
                thread::sleep(every);
            }
            for i in 0..n {
                close(i, &mut open);
            }
        });
        OutageSampler {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// Stops looking; the most things whose outages overlapped in time.
    pub fn most_at_once(&mut self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("the sampler thread");
        }
        most_overlapping(&self.seen.lock().unwrap())
    }
}

/// The most intervals (closed) that overlap at one instant.
fn most_overlapping(seen: &Intervals) -> usize {
    // (when, +1 at a start / -1 after an end): starts sort before ends at the same instant.
    let mut edges: Vec<(Instant, i32)> = seen
        .iter()
        .flatten()
        .flat_map(|(s, e)| [(*s, 1), (*e, -1)])
        .collect();
    edges.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    usize::try_from(most).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_that_never_met_are_not_counted_together() {
        let t = Instant::now();
        let ms = |n: u64| t + Duration::from_millis(n);
        // The first out until 100 ms, the second from 300 ms: one at a time.
        assert_eq!(
            most_overlapping(&vec![vec![(ms(0), ms(100))], vec![(ms(300), ms(400))]]),
            1
        );
        // Overlapping from 300 to 350 ms: two.
        assert_eq!(
            most_overlapping(&vec![vec![(ms(0), ms(350))], vec![(ms(300), ms(400))]]),
            2
        );
        // Seen out at the same instant: two.
        assert_eq!(
            most_overlapping(&vec![vec![(ms(0), ms(300))], vec![(ms(300), ms(300))]]),
            2
        );
        assert_eq!(most_overlapping(&vec![Vec::new(), Vec::new()]), 0);
    }
}
