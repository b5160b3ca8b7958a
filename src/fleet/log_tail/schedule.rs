//! When each gateway's log is read next (pure: facts in, the reads to start out). A gateway
//! whose last read brought lines is read again after `gateway_logs.interval`; one whose last
//! read brought none (or failed) after `gateway_logs.idle_interval`, and is back to
//! `interval` as soon as a read brings a line. A fleet of 10,000 quiet gateways then costs one
//! read per gateway per `idle_interval` (83 a second at 2 minutes), not 2,000 a second, while a
//! gateway that is writing is followed closely. Straight to the idle wait rather than doubling
//! towards it: a doubling backoff read a freshly started fleet five times over in its first
//! minutes, and a quiet gateway's next line waits at most `idle_interval` either way.
//!
//! Fair: every read due is started, most overdue first (the caller's permits then bound how
//! many are under way), so at any fleet size every gateway's turn comes (a cap taken in the
//! registry's order read the same few gateways every round and never the rest).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use gateway_supervisor_actors::model::GatewayId;

/// How a read ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadEnd {
    /// The gateway answered: `lines` new lines, its cursor now at `cursor` (when it gave one).
    Answered { lines: usize, cursor: Option<u64> },
    /// It did not answer, or refused.
    Failed,
}

/// One gateway's tail.
#[derive(Debug, Clone)]
struct Tail {
    /// Where its last read ended (`None`: never read; the first read takes its tail).
    cursor: Option<u64>,
    reading: bool,
    due: Instant,
}

/// A read to start: the gateway, and the cursor to read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub id: GatewayId,
    pub cursor: Option<u64>,
}

#[derive(Debug)]
pub struct Schedule {
    interval: Duration,
    idle_interval: Duration,
    tails: HashMap<GatewayId, Tail>,
    /// The readable gateways of the last look, as given: while they stay the same (the usual
    /// round), the tails are not matched against them again.
    readable: Vec<GatewayId>,
}

impl Schedule {
    pub fn new(interval: Duration, idle_interval: Duration) -> Self {
        Schedule {
            interval,
            idle_interval: idle_interval.max(interval),
            tails: HashMap::new(),
            readable: Vec::new(),
        }
    }

    /// The reads to start at `now` among `readable` (the gateways linked here that offer
    /// `logs.tail`), most overdue first; each is marked reading. A gateway no longer readable
    /// is forgotten (its cursor with it); a new one is due at once.
    pub fn due(&mut self, readable: &[GatewayId], now: Instant) -> Vec<Due> {
        if readable != self.readable.as_slice() {
            let wanted: HashSet<GatewayId> = readable.iter().copied().collect();
            self.tails.retain(|id, _| wanted.contains(id));
            for id in readable {
                self.tails.entry(*id).or_insert(Tail {
                    cursor: None,
                    reading: false,
                    due: now,
                });
            }
            self.readable = readable.to_vec();
        }
        let mut due: Vec<(Instant, GatewayId)> = self
            .tails
            .iter()
            .filter(|(_, t)| !t.reading && t.due <= now)
            .map(|(id, t)| (t.due, *id))
            .collect();
        due.sort_unstable();
        due.into_iter()
            .filter_map(|(_, id)| {
                let tail = self.tails.get_mut(&id)?;
                tail.reading = true;
                Some(Due {
                    id,
                    cursor: tail.cursor,
                })
            })
            .collect()
    }

    /// A read of `id` ended at `now`: its cursor kept, its next read scheduled.
    pub fn finished(&mut self, id: GatewayId, end: ReadEnd, now: Instant) {
        let Some(tail) = self.tails.get_mut(&id) else {
            return; // forgotten meanwhile
        };
        tail.reading = false;
        let wait = match end {
            ReadEnd::Answered { lines, cursor } => {
                if cursor.is_some() {
                    tail.cursor = cursor;
                }
                if lines > 0 {
                    self.interval
                } else {
                    self.idle_interval
                }
            }
            ReadEnd::Failed => self.idle_interval,
        };
        tail.due = now + wait;
    }

    /// Reads out now.
    #[cfg(test)]
    fn reading(&self) -> usize {
        self.tails.values().filter(|t| t.reading).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S5: Duration = Duration::from_secs(5);
    const M1: Duration = Duration::from_secs(60);

    fn ids(due: &[Due]) -> Vec<GatewayId> {
        let mut v: Vec<GatewayId> = due.iter().map(|d| d.id).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn a_new_gateway_is_read_at_once_from_its_tail() {
        let mut s = Schedule::new(S5, M1);
        let t0 = Instant::now();
        let due = s.due(&[GatewayId(1), GatewayId(2)], t0);
        assert_eq!(ids(&due), vec![GatewayId(1), GatewayId(2)]);
        assert!(due.iter().all(|d| d.cursor.is_none()));
        assert_eq!(s.reading(), 2);
        assert!(
            s.due(&[GatewayId(1), GatewayId(2)], t0).is_empty(),
            "never two reads of one gateway"
        );
    }

    #[test]
    fn a_gateway_that_writes_is_read_every_interval_from_its_cursor() {
        let mut s = Schedule::new(S5, M1);
        let t0 = Instant::now();
        s.due(&[GatewayId(1)], t0);
        let end = ReadEnd::Answered {
            lines: 3,
            cursor: Some(120),
        };
        s.finished(GatewayId(1), end, t0);
        assert!(
            s.due(&[GatewayId(1)], t0 + S5 - Duration::from_millis(1))
                .is_empty()
        );
        assert_eq!(
            s.due(&[GatewayId(1)], t0 + S5),
            vec![Due {
                id: GatewayId(1),
                cursor: Some(120)
            }]
        );
    }

    #[test]
    fn a_quiet_gateway_is_read_every_idle_interval_until_it_writes() {
        let mut s = Schedule::new(S5, Duration::from_secs(30));
        let mut now = Instant::now();
        s.due(&[GatewayId(1)], now);
        let mut waits = Vec::new();
        for _ in 0..3 {
            let quiet = ReadEnd::Answered {
                lines: 0,
                cursor: Some(7),
            };
            s.finished(GatewayId(1), quiet, now);
            let mut wait = Duration::ZERO;
            while s.due(&[GatewayId(1)], now + wait).is_empty() {
                wait += Duration::from_secs(1);
            }
            waits.push(wait.as_secs());
            now += wait;
        }
        assert_eq!(waits, vec![30, 30, 30]);
        // A line brings it back to the interval at once.
        let lines = ReadEnd::Answered {
            lines: 1,
            cursor: Some(9),
        };
        s.finished(GatewayId(1), lines, now);
        assert_eq!(s.due(&[GatewayId(1)], now + S5).len(), 1);
    }

    #[test]
    fn the_idle_wait_is_never_shorter_than_the_interval() {
        let mut s = Schedule::new(S5, Duration::from_secs(1));
        let t0 = Instant::now();
        s.due(&[GatewayId(1)], t0);
        s.finished(GatewayId(1), ReadEnd::Failed, t0);
        assert!(
            s.due(&[GatewayId(1)], t0 + Duration::from_secs(4))
                .is_empty()
        );
        assert_eq!(s.due(&[GatewayId(1)], t0 + S5).len(), 1);
    }

    #[test]
    fn a_failed_read_backs_off_and_keeps_the_cursor() {
        let mut s = Schedule::new(S5, M1);
        let t0 = Instant::now();
        s.due(&[GatewayId(1)], t0);
        let end = ReadEnd::Answered {
            lines: 2,
            cursor: Some(50),
        };
        s.finished(GatewayId(1), end, t0);
        s.due(&[GatewayId(1)], t0 + S5);
        s.finished(GatewayId(1), ReadEnd::Failed, t0 + S5);
        assert!(s.due(&[GatewayId(1)], t0 + S5 * 2).is_empty());
        let due = s.due(&[GatewayId(1)], t0 + S5 + M1);
        assert_eq!(due[0].cursor, Some(50));
    }

    #[test]
    fn every_gateway_gets_its_turn_however_large_the_fleet() {
        let mut s = Schedule::new(S5, M1);
        let fleet: Vec<GatewayId> = (1..=1000).map(GatewayId).collect();
        let mut now = Instant::now();
        let mut read: HashSet<GatewayId> = HashSet::new();
        for _ in 0..20 {
            let due = s.due(&fleet, now);
            for d in &due {
                read.insert(d.id);
                s.finished(d.id, ReadEnd::Failed, now);
            }
            now += Duration::from_secs(1);
        }
        assert_eq!(read.len(), 1000, "a cap must not starve the rest");
    }

    #[test]
    fn the_most_overdue_go_first() {
        let mut s = Schedule::new(S5, M1);
        let t0 = Instant::now();
        s.due(&[GatewayId(1), GatewayId(2), GatewayId(3)], t0);
        let quiet = ReadEnd::Answered {
            lines: 1,
            cursor: None,
        };
        s.finished(GatewayId(3), quiet, t0);
        s.finished(GatewayId(1), quiet, t0 + Duration::from_secs(1));
        s.finished(GatewayId(2), quiet, t0 + Duration::from_secs(2));
        let due = s.due(
            &[GatewayId(1), GatewayId(2), GatewayId(3)],
            t0 + Duration::from_secs(10),
        );
        assert_eq!(
            due.iter().map(|d| d.id).collect::<Vec<_>>(),
            vec![GatewayId(3), GatewayId(1), GatewayId(2)]
        );
        // All three out: none is started twice.
        assert!(
            s.due(
                &[GatewayId(1), GatewayId(2), GatewayId(3)],
                t0 + Duration::from_secs(10)
            )
            .is_empty()
        );
    }

    #[test]
    fn a_gateway_no_longer_readable_is_forgotten_with_its_cursor() {
        let mut s = Schedule::new(S5, M1);
        let t0 = Instant::now();
        s.due(&[GatewayId(1)], t0);
        let end = ReadEnd::Answered {
            lines: 1,
            cursor: Some(99),
        };
        s.finished(GatewayId(1), end, t0);
        assert!(s.due(&[], t0 + S5).is_empty());
        assert_eq!(s.reading(), 0);
        let again = s.due(&[GatewayId(1)], t0 + S5);
        assert_eq!(again[0].cursor, None, "read from its tail again");
        // A read that ends after its gateway was forgotten changes nothing.
        s.due(&[], t0 + S5);
        s.finished(GatewayId(1), ReadEnd::Failed, t0 + S5);
        assert_eq!(s.reading(), 0);
    }

    #[test]
    fn a_fleet_that_changed_members_but_not_size_is_matched_again() {
        // The readable list is matched against the tails only when it changed; a swap keeps
        // its length, and must still forget the one gone and start the one new.
        let mut s = Schedule::new(S5, M1);
        let t0 = Instant::now();
        s.due(&[GatewayId(1), GatewayId(2)], t0);
        for id in [1, 2] {
            let end = ReadEnd::Answered {
                lines: 0,
                cursor: Some(7),
            };
            s.finished(GatewayId(id), end, t0);
        }
        let due = s.due(&[GatewayId(1), GatewayId(3)], t0 + S5);
        assert_eq!(
            due,
            vec![Due {
                id: GatewayId(3),
                cursor: None
            }],
            "3 is new, 1 is idle"
        );
        let again = s.due(&[GatewayId(1), GatewayId(2)], t0 + S5);
        assert_eq!(
            again,
            vec![Due {
                id: GatewayId(2),
                cursor: None
            }],
            "2 was forgotten with its cursor"
        );
    }
}
