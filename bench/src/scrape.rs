//! What a Prometheus scrape costs an instance: the body's size, how long it takes, and how far
//! it lifts the instance's resident memory (the per-gateway gauges are built for the scrape and
//! let go after it, so the lift is the scrape's peak, held until the allocator returns it).

use std::time::Instant;

use crate::daemon::Daemon;
use crate::rest::median;

/// Three scrapes of one instance, back to back.
pub struct Scrape {
    pub bytes: usize,
    /// The median of the three.
    pub ms: f64,
    /// Resident memory right after the third, less right before the first (KiB).
    pub rss_rise_kib: i64,
}

pub fn measure(d: &Daemon) -> Scrape {
    let before = d.rss_kib() as i64;
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..3 {
        let t = Instant::now();
        bytes = d.get_bytes("/metrics").len();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Scrape {
        bytes,
        ms: median(times),
        rss_rise_kib: d.rss_kib() as i64 - before,
    }
}
