//! A job's schedule as a gateway reports it (`schedule: {kind, …}` in `cron.list`), read into
//! what the daemon can compute fires for: `cron {expr, tz?, staggerMs?}` through `croner` — the
//! Rust sibling of the JS croner 10 that OpenClaw 2026.9.6 schedules with, seconds optional,
//! day-of-month and day-of-week or'ed as both read them — in the job's IANA time zone (UTC when
//! none); `every {everyMs, anchorMs?}` as the gateway counts it (fires at `anchorMs + k ×
//! everyMs`, Unix milliseconds: a fresh gateway's weekly review has `anchorMs` 245613017 and its
//! next run at 1796501613017, 2970 weeks later to the millisecond). `at`, `on-exit` and `stream`
//! have no slots a watchdog could miss.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Parsed cron expressions, shared by expression. croner keeps a bitfield byte per possible
/// value of each field — 5,001 for the years alone — so one parse holds about 5.3 KB, and a
/// fleet declaration of one cron job on 10,000 gateways held 10,000 parses of one expression
/// (~53 MB; counted from croner's sizes, docs/performance.md, *Performance*). An entry goes
/// with the last job that uses it (weak references, swept whenever the map has
/// doubled since the last sweep).
struct Parsed {
    by_expr: HashMap<String, Weak<Cron>>,
    swept_at: usize,
}

static PARSED: Mutex<Option<Parsed>> = Mutex::new(None);

/// `expr` parsed as OpenClaw's croner reads it (seconds optional), shared with every other job
/// of the same expression.
fn parsed(expr: &str) -> Result<Arc<Cron>, croner::errors::CronError> {
    let mut guard = PARSED.lock().unwrap_or_else(|p| p.into_inner());
    let table = guard.get_or_insert_with(|| Parsed {
        by_expr: HashMap::new(),
        swept_at: 0,
    });
    if let Some(cron) = table.by_expr.get(expr).and_then(Weak::upgrade) {
        return Ok(cron);
    }
    let cron = Arc::new(
        CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expr)?,
    );
    table.by_expr.insert(expr.to_owned(), Arc::downgrade(&cron));
    if table.by_expr.len() > 2 * table.swept_at.max(64) {
        table.by_expr.retain(|_, w| w.strong_count() > 0);
        table.swept_at = table.by_expr.len();
    }
    Ok(cron)
}

/// The most fires computed for one job in one look (a minutely job over 2 hours is 120).
pub const MAX_FIRES: usize = 1440;

/// Why a schedule cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule.expr `{expr}`: {why}")]
    Expr { expr: String, why: String },
    #[error("schedule.tz `{0}` is not an IANA time zone")]
    TimeZone(String),
    #[error("schedule.everyMs must be at least 1000 (got {0})")]
    Every(i64),
    #[error("schedule: {0}")]
    Shape(String),
}

/// A schedule the daemon can compute fires for, or one it has none for.
#[derive(Debug, Clone)]
pub enum Schedule {
    Cron {
        /// Shared by every job with the same expression ([`parsed`]).
        cron: Arc<Cron>,
        tz: TimeZone,
        /// The gateway may fire up to this much after the slot.
        stagger_ms: i64,
    },
    Every {
        every_ms: i64,
        anchor_ms: i64,
    },
    /// `at`, `on-exit`, `stream`, or a kind this daemon does not know: no slots.
    Unslotted,
}

impl Schedule {
    /// Reads a gateway's `schedule` object (bounded: an expression over 256 bytes is refused).
    pub fn read(v: &serde_json::Value) -> Result<Schedule, ScheduleError> {
        let text = |k: &str| v.get(k).and_then(serde_json::Value::as_str);
        let int = |k: &str| v.get(k).and_then(serde_json::Value::as_i64);
        match text("kind") {
            Some("cron") => {
                let expr =
                    text("expr").ok_or_else(|| ScheduleError::Shape("cron without expr".into()))?;
                Schedule::cron(expr, text("tz"), int("staggerMs").unwrap_or(0))
            }
            Some("every") => {
                let every_ms = int("everyMs")
                    .ok_or_else(|| ScheduleError::Shape("every without everyMs".into()))?;
                if every_ms < 1000 {
                    return Err(ScheduleError::Every(every_ms));
                }
                Ok(Schedule::Every {
                    every_ms,
                    anchor_ms: int("anchorMs").unwrap_or(0),
                })
            }
            Some(_) => Ok(Schedule::Unslotted),
            None => Err(ScheduleError::Shape("no kind".into())),
        }
    }

    /// A cron schedule from its parts, each checked here, before anything is written to a
    /// gateway (a gateway's refusal names the problem only sometimes: see docs/design.md, *Cron*).
    pub fn cron(expr: &str, tz: Option<&str>, stagger_ms: i64) -> Result<Schedule, ScheduleError> {
        if expr.len() > 256 {
            return Err(ScheduleError::Expr {
                expr: gateway_supervisor_actors::bounded::text(expr, 64),
                why: "longer than 256 bytes".into(),
            });
        }
        let cron = parsed(expr).map_err(|e| ScheduleError::Expr {
            expr: gateway_supervisor_actors::bounded::text(expr, 64),
            why: e.to_string(),
        })?;
        let tz = match tz {
            None | Some("") => TimeZone::UTC,
            Some(name) => TimeZone::get(name).map_err(|_| {
                ScheduleError::TimeZone(gateway_supervisor_actors::bounded::text(name, 64))
            })?,
        };
        Ok(Schedule::Cron {
            cron,
            tz,
            stagger_ms: stagger_ms.clamp(0, 3_600_000),
        })
    }

    /// How late after its slot a fire may still come (the stagger; 0 but for `cron` with one).
    pub fn stagger_ms(&self) -> i64 {
        match self {
            Schedule::Cron { stagger_ms, .. } => *stagger_ms,
            _ => 0,
        }
    }

    /// The slots in `(after, until]` (Unix ms), oldest first, at most [`MAX_FIRES`].
    pub fn slots(&self, after: i64, until: i64) -> Vec<i64> {
        match self {
            Schedule::Unslotted => Vec::new(),
            Schedule::Every {
                every_ms,
                anchor_ms,
            } => {
                // The first k with anchor + k × every > after.
                let k = (after - anchor_ms).div_euclid(*every_ms) + 1;
                (0..)
                    .map(|i| anchor_ms + (k + i) * every_ms)
                    .take_while(|t| *t <= until)
                    .take(MAX_FIRES)
                    .collect()
            }
            Schedule::Cron { cron, tz, .. } => {
                let Ok(start) = Timestamp::from_millisecond(after) else {
                    return Vec::new();
                };
                cron.clone()
                    .iter_after(start.to_zoned(tz.clone()))
                    .map(|z| z.timestamp().as_millisecond())
                    .take_while(|t| *t <= until)
                    .take(MAX_FIRES)
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ms(rfc3339: &str) -> i64 {
        rfc3339.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn jobs_of_one_expression_share_one_parse_whatever_their_zone_and_stagger() {
        let cron = |s: &Schedule| match s {
            Schedule::Cron { cron, .. } => cron.clone(),
            other => panic!("{other:?}"),
        };
        let a = Schedule::cron("17 3 * * *", Some("Europe/Berlin"), 0).unwrap();
        let b = Schedule::cron("17 3 * * *", None, 30_000).unwrap();
        let c = Schedule::cron("18 3 * * *", None, 0).unwrap();
        assert!(Arc::ptr_eq(&cron(&a), &cron(&b)));
        assert!(!Arc::ptr_eq(&cron(&a), &cron(&c)));
        // Each keeps its own zone: the same expression fires an hour apart in Berlin and UTC
        // (CET in January).
        let from = ms("2027-01-10T00:00:00Z");
        let to = ms("2027-01-11T00:00:00Z");
        assert_eq!(a.slots(from, to), vec![ms("2027-01-10T02:17:00Z")]);
        assert_eq!(b.slots(from, to), vec![ms("2027-01-10T03:17:00Z")]);
    }

    #[test]
    fn the_captured_gateways_jobs_fire_where_it_said_they_would() {
        let capture = crate::cron::capture();
        let jobs = capture["calls"][1]["answer"]["jobs"].as_array().unwrap();
        let mut checked = 0;
        for job in jobs.iter().filter(|j| j["nextRunAtMs"].is_i64()) {
            let next = job["nextRunAtMs"].as_i64().unwrap();
            let made = job["createdAtMs"].as_i64().unwrap();
            let s = Schedule::read(&job["schedule"]).unwrap();
            assert_eq!(s.slots(made, next).last(), Some(&next), "{}", job["name"]);
            checked += 1;
        }
        assert_eq!(checked, 2, "the promotion and the weekly review");
    }

    #[test]
    fn a_fresh_gateways_jobs_fire_where_the_gateway_says_they_do() {
        // From an exploratory run's gateway: the weekly review's next run, the nightly
        // promotion's.
        let weekly =
            Schedule::read(&json!({"kind": "every", "everyMs": 604800000, "anchorMs": 245613017}))
                .unwrap();
        assert_eq!(
            weekly.slots(1_795_938_400_000, 1_796_600_000_000),
            [1_796_501_613_017]
        );
        let nightly = Schedule::read(&json!({"kind": "cron", "expr": "0 3 * * *"})).unwrap();
        assert_eq!(
            nightly.slots(1_795_938_400_000, 1_796_010_000_000),
            [1_796_007_600_000]
        );
        let minutely =
            Schedule::read(&json!({"kind": "cron", "expr": "*/5 * * * *", "tz": "UTC"})).unwrap();
        // The capture's next run after the schedule changed at 1795938402037.
        assert_eq!(
            minutely.slots(1_795_938_402_037, 1_795_938_600_000),
            [1_795_938_600_000]
        );
    }

    #[test]
    fn a_time_zone_moves_the_slot_with_its_daylight_saving() {
        let s = Schedule::cron("0 9 * * *", Some("Europe/Berlin"), 0).unwrap();
        // 09:00 in Berlin: 08:00 UTC in winter, 07:00 UTC in summer.
        assert_eq!(
            s.slots(ms("2026-03-27T00:00:00Z"), ms("2026-03-30T00:00:00Z")),
            [
                ms("2026-03-27T08:00:00Z"),
                ms("2026-03-28T08:00:00Z"),
                ms("2026-03-29T07:00:00Z"),
            ]
        );
    }

    #[test]
    fn a_bad_expression_or_zone_is_named() {
        let e = Schedule::cron("61 * * * *", None, 0).unwrap_err();
        assert!(matches!(e, ScheduleError::Expr { .. }), "{e}");
        assert!(e.to_string().contains("61 * * * *"), "{e}");
        assert_eq!(
            Schedule::cron("* * * * *", Some("Mars/Olympus"), 0).unwrap_err(),
            ScheduleError::TimeZone("Mars/Olympus".into())
        );
        assert!(matches!(
            Schedule::read(&json!({"kind": "every", "everyMs": 10})),
            Err(ScheduleError::Every(10))
        ));
        assert!(
            Schedule::read(&json!({"kind": "at", "at": "2026-12-01T00:00:00Z"}))
                .unwrap()
                .slots(0, i64::MAX)
                .is_empty()
        );
        assert!(Schedule::read(&json!({"expr": "* * * * *"})).is_err());
    }

    #[test]
    fn a_look_is_bounded() {
        let every_second = Schedule::cron("* * * * * *", None, 0).unwrap();
        assert_eq!(every_second.slots(0, 10_000_000).len(), MAX_FIRES);
        let every = Schedule::read(&json!({"kind": "every", "everyMs": 1000})).unwrap();
        assert_eq!(every.slots(0, 10_000_000).len(), MAX_FIRES);
        assert_eq!(every.slots(0, 3000), [1000, 2000, 3000]);
    }
}
