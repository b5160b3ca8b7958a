//! Whether a job's expected fires happened. openclaw/openclaw#139215 (open, P1): since
//! 2026.9.1, 20–30 % of daily fires are silently skipped — no run entry for the slot, and the
//! job's `lastRunAtMs` did not move — while the swallowed tick still advances `nextRunAtMs`, so
//! the gateway itself never notices. The daemon computes the slots itself ([`Schedule`]) and
//! judges each once it is decidable: `slot + stagger + grace` in the past.
//!
//! A slot *ran* when the gateway reports a run starting in `[slot, slot + stagger + grace]`
//! (`cron.runs`' `runAtMs`), or when `lastRunAtMs` now lies there (the run list read may be
//! shorter than the window), or when a run still going started there (`runningAtMs`: a run
//! enters `cron.runs` and moves `lastRunAtMs` only when it ends, so a job that runs longer than
//! the grace would otherwise be judged missed — and, forced, run twice at once). A run counts
//! for the latest slot at or before it only, so a minutely job's run is never taken for the
//! previous minute's late one. With none of these, it was *missed* — unless the daemon could
//! not reach the gateway at any moment of that window: then the gateway may have been down,
//! and the slot is reported as such, not as a skip (a gateway that was up and fired would show
//! the run, link or no link). A disabled job misses nothing. Pure; checked by the unit tests
//! below, run by the cron watchdog on what it reads.

use super::schedule::Schedule;

/// How late after its slot (and stagger) a fire may start and still count, by default
/// (`[cron] grace`): the gateway's timer wakes late under load.
pub const GRACE_MS: i64 = 120_000;

/// What the watchdog knows of one job at one look.
pub struct Look<'a> {
    pub schedule: &'a Schedule,
    /// How late after its slot and stagger a fire may start and still count.
    pub grace_ms: i64,
    pub enabled: bool,
    /// Slots after this were not judged yet (the previous look's `decided_until`).
    pub from: i64,
    pub now: i64,
    /// `runAtMs` of the job's runs as `cron.runs` reports them, in any order.
    pub runs: &'a [i64],
    /// The job's `lastRunAtMs` now.
    pub last_run: Option<i64>,
    /// When the job's run in progress started (`state.runningAtMs`), if one is.
    pub running: Option<i64>,
    /// When the daemon's link to the gateway was down, as `[start, end)` (Unix ms).
    pub down: &'a [(i64, i64)],
}

/// One slot, judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Ran {
        slot: i64,
        at: i64,
    },
    Missed {
        slot: i64,
    },
    /// No run, and the gateway could not be reached during the slot's window.
    GatewayDown {
        slot: i64,
    },
}

/// The slots judged, oldest first, and where the next look starts.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    pub slots: Vec<Slot>,
    pub decided_until: i64,
}

pub fn judge(look: &Look) -> Verdict {
    let late = look.schedule.stagger_ms() + look.grace_ms;
    let horizon = (look.now - late).max(look.from);
    if !look.enabled {
        return Verdict {
            slots: Vec::new(),
            decided_until: horizon,
        };
    }
    let slots = look.schedule.slots(look.from, horizon);
    // A run is for the latest slot at or before it (a minutely job's run is never the previous
    // minute's late one), if it came within that slot's window.
    let slot_of = |t: i64| -> Option<i64> {
        let i = slots.partition_point(|s| *s <= t);
        let slot = *slots.get(i.checked_sub(1)?)?;
        (t <= slot + late).then_some(slot)
    };
    let mut first_run: std::collections::BTreeMap<i64, i64> = Default::default();
    for t in look
        .runs
        .iter()
        .copied()
        .chain(look.last_run)
        .chain(look.running)
    {
        if let Some(slot) = slot_of(t) {
            let at = first_run.entry(slot).or_insert(t);
            *at = (*at).min(t);
        }
    }
    let slots = slots
        .iter()
        .map(|&slot| match first_run.get(&slot) {
            Some(&at) => Slot::Ran { slot, at },
            None if look
                .down
                .iter()
                .any(|(start, end)| *start <= slot + late && *end > slot) =>
            {
                Slot::GatewayDown { slot }
            }
            None => Slot::Missed { slot },
        })
        .collect();
    Verdict {
        slots,
        decided_until: horizon,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    /// 2026-11-29T00:00:00Z.
    const T0: i64 = 1_795_910_400_000;

    fn minutely() -> Schedule {
        Schedule::cron("* * * * *", Some("UTC"), 0).unwrap()
    }

    fn look<'a>(s: &'a Schedule, runs: &'a [i64], down: &'a [(i64, i64)]) -> Look<'a> {
        Look {
            schedule: s,
            grace_ms: GRACE_MS,
            enabled: true,
            from: T0,
            now: T0 + 10 * MIN,
            runs,
            last_run: runs.iter().copied().max(),
            running: None,
            down,
        }
    }

    #[test]
    fn every_slot_with_its_run_ran_and_the_ones_too_recent_wait() {
        let s = minutely();
        let runs: Vec<i64> = (1..=10).map(|k| T0 + k * MIN + 400).collect();
        let v = judge(&look(&s, &runs, &[]));
        // Now is T0+10m: slots up to T0+8m are decidable (2 minutes of grace).
        assert_eq!(v.decided_until, T0 + 8 * MIN);
        assert_eq!(v.slots.len(), 8);
        assert!(
            v.slots.iter().all(|s| matches!(s, Slot::Ran { .. })),
            "{v:?}"
        );
    }

    #[test]
    fn a_slot_with_no_run_and_last_run_unmoved_is_missed() {
        let s = minutely();
        let runs: Vec<i64> = (1..=10)
            .filter(|k| *k != 4)
            .map(|k| T0 + k * MIN + 400)
            .collect();
        let v = judge(&look(&s, &runs, &[]));
        let missed: Vec<_> = v
            .slots
            .iter()
            .filter(|s| matches!(s, Slot::Missed { .. }))
            .collect();
        assert_eq!(missed, [&Slot::Missed { slot: T0 + 4 * MIN }]);
        // A late run (before the next slot) still counts for its slot.
        let late = [T0 + 4 * MIN + 40_000];
        let v = judge(&Look {
            runs: &late,
            ..look(&s, &runs, &[])
        });
        assert!(
            v.slots.contains(&Slot::Ran {
                slot: T0 + 4 * MIN,
                at: T0 + 4 * MIN + 40_000
            }),
            "{v:?}"
        );
    }

    #[test]
    fn no_run_while_the_gateway_was_unreachable_is_not_called_a_skip() {
        let s = minutely();
        let down = [(T0 + 3 * MIN + 30_000, T0 + 5 * MIN)];
        let v = judge(&look(&s, &[], &down));
        let of = |k: i64| {
            v.slots
                .iter()
                .find(|s| match s {
                    Slot::Ran { slot, .. } | Slot::Missed { slot } | Slot::GatewayDown { slot } => {
                        *slot == T0 + k * MIN
                    }
                })
                .copied()
        };
        // Slots 2, 3 and 4 have windows the outage overlaps; 1 and 5 onwards do not.
        assert_eq!(of(1), Some(Slot::Missed { slot: T0 + MIN }));
        for k in 2..=4 {
            assert_eq!(
                of(k),
                Some(Slot::GatewayDown { slot: T0 + k * MIN }),
                "slot {k}"
            );
        }
        assert_eq!(of(5), Some(Slot::Missed { slot: T0 + 5 * MIN }));
        // A run is a run, outage or not.
        let runs = [T0 + 3 * MIN + 100];
        let v = judge(&look(&s, &runs, &down));
        assert!(v.slots.contains(&Slot::Ran {
            slot: T0 + 3 * MIN,
            at: T0 + 3 * MIN + 100
        }));
    }

    #[test]
    fn last_run_counts_when_the_run_list_is_shorter_than_the_window() {
        let s = minutely();
        let v = judge(&Look {
            last_run: Some(T0 + 8 * MIN + 5),
            ..look(&s, &[], &[])
        });
        assert_eq!(
            v.slots.last(),
            Some(&Slot::Ran {
                slot: T0 + 8 * MIN,
                at: T0 + 8 * MIN + 5
            })
        );
    }

    #[test]
    fn a_stagger_widens_the_window_and_delays_the_verdict() {
        let s = Schedule::cron("*/5 * * * *", Some("UTC"), 4 * MIN).unwrap();
        let runs = [T0 + 5 * MIN + 3 * MIN + 50_000];
        let v = judge(&Look {
            now: T0 + 20 * MIN,
            ..look(&s, &runs, &[])
        });
        // Decided up to now − 6 minutes: slots 5 and 10 (15 and 20 wait).
        assert_eq!(v.decided_until, T0 + 14 * MIN);
        assert_eq!(
            v.slots,
            [
                Slot::Ran {
                    slot: T0 + 5 * MIN,
                    at: runs[0]
                },
                Slot::Missed {
                    slot: T0 + 10 * MIN
                },
            ]
        );
    }

    #[test]
    fn a_disabled_job_misses_nothing_and_each_slot_is_judged_once() {
        let s = minutely();
        let off = judge(&Look {
            enabled: false,
            ..look(&s, &[], &[])
        });
        assert!(off.slots.is_empty());
        assert_eq!(off.decided_until, T0 + 8 * MIN);
        // The next look starts where this one stopped: no slot twice.
        let first = judge(&look(&s, &[], &[]));
        let second = judge(&Look {
            from: first.decided_until,
            now: T0 + 12 * MIN,
            ..look(&s, &[], &[])
        });
        assert_eq!(
            second.slots,
            [
                Slot::Missed { slot: T0 + 9 * MIN },
                Slot::Missed {
                    slot: T0 + 10 * MIN
                }
            ]
        );
        // Looked at again at once: nothing new to judge.
        let third = judge(&Look {
            from: second.decided_until,
            now: T0 + 12 * MIN,
            ..look(&s, &[], &[])
        });
        assert!(third.slots.is_empty());
    }

    #[test]
    fn a_run_still_going_past_the_grace_counts_for_its_slot() {
        // openclaw 2026.9.6 lists a run in `cron.runs` (and moves `lastRunAtMs`) only when it
        // ends: a run that started 5 s after slot 8 and is still going at the look has no
        // entry yet, and `lastRunAtMs` is the previous slot's.
        let s = minutely();
        let runs: Vec<i64> = (1..=7).map(|k| T0 + k * MIN + 400).collect();
        let before = judge(&look(&s, &runs, &[]));
        assert_eq!(
            before.slots.last(),
            Some(&Slot::Missed { slot: T0 + 8 * MIN })
        );
        let going = judge(&Look {
            running: Some(T0 + 8 * MIN + 5_000),
            ..look(&s, &runs, &[])
        });
        assert_eq!(
            going.slots.last(),
            Some(&Slot::Ran {
                slot: T0 + 8 * MIN,
                at: T0 + 8 * MIN + 5_000
            })
        );
        assert!(
            !going.slots.iter().any(|s| matches!(s, Slot::Missed { .. })),
            "{going:?}"
        );
    }
}
