//! One gateway's jobs as `cron.list` pages them, read into what the fleet's inventory keeps:
//! every string from the gateway bounded and escaped as every other peer string is (a name or
//! an error is shown, logged and stored), ids kept only when they are plausible ids (they go
//! back to the gateway in `cron.get`, `cron.runs`, `cron.run`), the schedule kept as the
//! gateway wrote it (bounded) and read by [`Schedule`]. A job the gateway ships itself is
//! *the gateway's own* and hidden from the fleet view unless asked for: its `declarationKey`
//! names one of the subsystems 2026.9.6 declares jobs for ([`GATEWAY_OWNERS`]).

use serde_json::Value;

use super::schedule::Schedule;
use gateway_supervisor_actors::bounded;

/// The owners of the jobs a 2026.9.6 gateway declares itself (captured on a fresh gateway:
/// `heartbeat:main`, `memory-core:memory-dreaming-promotion`, `skill-collection-review:main`).
pub const GATEWAY_OWNERS: [&str; 3] = ["heartbeat", "memory-core", "skill-collection-review"];
/// The prefix of the declaration keys this daemon writes.
pub const FLEET_OWNER: &str = "gs";

/// A job, as the inventory keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: String,
    pub name: String,
    pub declaration_key: Option<String>,
    pub agent: Option<String>,
    pub enabled: bool,
    /// As the gateway reported it, bounded.
    pub schedule: Value,
    pub next_run_at_ms: Option<i64>,
    pub last_run_at_ms: Option<i64>,
    pub last_run_status: Option<String>,
    /// When a run that has not finished started (`state.runningAtMs`): a run enters
    /// `cron.runs`, and moves `lastRunAtMs`, only when it ends. Read live by the watchdog
    /// before it calls a slot missed; not stored (it is stale by the next event).
    pub running_at_ms: Option<i64>,
    pub config_revision: Option<String>,
    /// Shipped by the gateway itself (hidden unless asked for).
    pub gateway_own: bool,
}

/// One page of `cron.list`.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub jobs: Vec<Job>,
    /// Jobs the page held that could not be read (no plausible id): counted, not kept.
    pub unreadable: usize,
    pub snapshot_revision: Option<String>,
    pub total: Option<i64>,
    /// Where the next page starts, when there is one.
    pub next_offset: Option<i64>,
}

impl Job {
    /// A job of `cron.list` (compact or not) or `cron.get`; `None` without a plausible id.
    pub fn read(v: &Value) -> Option<Job> {
        let text = |k: &str, max: usize| bounded::opt_text(v[k].as_str(), max);
        let id = v["id"].as_str().and_then(bounded::identifier)?.to_owned();
        let declaration_key = text("declarationKey", 256);
        let gateway_own =
            owner(declaration_key.as_deref()).is_some_and(|o| GATEWAY_OWNERS.contains(&o));
        // Compact pages carry `lastRunAtMs` and `lastRunStatus` on the job; full ones in `state`.
        let state = &v["state"];
        let last_run_at_ms = v["lastRunAtMs"].as_i64().or(state["lastRunAtMs"].as_i64());
        let last_run_status = v["lastRunStatus"]
            .as_str()
            .or(state["lastRunStatus"].as_str())
            .map(|s| bounded::text(s, 32));
        Some(Job {
            name: text("name", 256).unwrap_or_else(|| id.clone()),
            id,
            declaration_key,
            agent: text("effectiveAgentId", 128).or_else(|| text("agentId", 128)),
            enabled: v["enabled"] != false,
            schedule: bounded::json(v["schedule"].clone(), 2048),
            next_run_at_ms: v["nextRunAtMs"].as_i64().or(state["nextRunAtMs"].as_i64()),
            last_run_at_ms,
            last_run_status,
            running_at_ms: v["runningAtMs"].as_i64().or(state["runningAtMs"].as_i64()),
            config_revision: text("configRevision", 128),
            gateway_own,
        })
    }

    /// Whether this daemon declared it.
    pub fn fleet_declared(&self) -> bool {
        owner(self.declaration_key.as_deref()) == Some(FLEET_OWNER)
    }

    /// Its schedule, as the daemon computes fires for it.
    pub fn schedule(&self) -> Result<Schedule, super::schedule::ScheduleError> {
        Schedule::read(&self.schedule)
    }
}

/// Who declared a job: the part of its `declarationKey` before the first `:`.
fn owner(declaration_key: Option<&str>) -> Option<&str> {
    declaration_key?.split_once(':').map(|(owner, _)| owner)
}

impl Page {
    /// A `cron.list` answer.
    pub fn read(v: &Value) -> Page {
        let listed = v["jobs"].as_array().map(Vec::as_slice).unwrap_or_default();
        let jobs: Vec<Job> = listed.iter().filter_map(Job::read).collect();
        Page {
            unreadable: listed.len() - jobs.len(),
            jobs,
            snapshot_revision: bounded::opt_text(v["snapshotRevision"].as_str(), 128),
            total: v["total"].as_i64(),
            next_offset: (v["hasMore"] == true)
                .then(|| v["nextOffset"].as_i64())
                .flatten(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cron::capture;
    use serde_json::json;

    /// The answer of the capture's call number `n`.
    fn answer(n: usize) -> Value {
        capture()["calls"][n]["answer"].clone()
    }

    #[test]
    fn a_fresh_gateways_list_is_its_own_three_jobs() {
        let page = Page::read(&answer(1));
        assert_eq!(page.jobs.len(), 3);
        assert_eq!(page.unreadable, 0);
        assert!(
            page.jobs
                .iter()
                .all(|j| j.gateway_own && !j.fleet_declared())
        );
        assert!(
            page.snapshot_revision
                .as_deref()
                .is_some_and(|r| r.starts_with("sha256:"))
        );
        assert_eq!(page.next_offset, None);
        let heartbeat = page
            .jobs
            .iter()
            .find(|j| j.name == "heartbeat-main")
            .unwrap();
        assert!(!heartbeat.enabled);
        assert_eq!(heartbeat.agent.as_deref(), Some("main"));
        for j in &page.jobs {
            assert!(j.schedule().is_ok(), "{}: {}", j.name, j.schedule);
        }
    }

    #[test]
    fn a_compact_page_says_where_the_next_starts() {
        let page = Page::read(&answer(3));
        assert_eq!(page.jobs.len(), 1);
        assert_eq!(page.next_offset, Some(1));
        assert!(page.jobs[0].next_run_at_ms.is_some());
    }

    #[test]
    fn the_fleets_own_job_is_told_apart_and_its_last_run_read_from_state() {
        let calls = capture()["calls"].as_array().unwrap().clone();
        let declared = calls
            .iter()
            .find(|c| c["method"] == "cron.add")
            .map(|c| Job::read(&c["answer"]["job"]).unwrap())
            .unwrap();
        assert!(declared.fleet_declared() && !declared.gateway_own);
        let after_run = calls
            .iter()
            .rev()
            .find(|c| c["method"] == "cron.get")
            .map(|c| Job::read(&c["answer"]).unwrap())
            .unwrap();
        assert!(after_run.last_run_at_ms.is_some());
        assert_eq!(after_run.last_run_status.as_deref(), Some("ok"));
    }

    /// A run going: `state.runningAtMs` of the job a real 2026.9.6 gateway sent with its
    /// `started` event (`cron_events.json`); the same job after it ended has none.
    #[test]
    fn a_run_still_going_is_read_from_the_job_s_state() {
        let events: Value = serde_json::from_str(include_str!(
            "../../testdata/openclaw-captures/2026.9.6/cron_events.json"
        ))
        .unwrap();
        let job_of = |action: &str| {
            let found = events["events"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|f| f["event"] == "cron" && f["payload"]["action"] == action)
                .cloned()
                .unwrap_or_else(|| panic!("no `{action}` cron event in the capture"));
            Job::read(&found["payload"]["job"]).unwrap()
        };
        let started = job_of("started");
        assert_eq!(started.running_at_ms, Some(1_795_946_712_336));
        assert_eq!(job_of("finished").running_at_ms, None);
    }

    #[test]
    fn a_hostile_job_is_bounded_or_dropped() {
        let long = "x".repeat(10_000);
        let page = Page::read(&json!({"jobs": [
            {"id": "ok-1", "name": format!("evil\u{1b}[31m{long}"), "schedule": {"kind": "cron", "expr": long}},
            {"id": "", "name": "no id"},
            {"id": "bad\nid", "name": "control character"},
            {"name": "missing id"},
        ], "hasMore": true}));
        assert_eq!(page.jobs.len(), 1);
        assert_eq!(page.unreadable, 3);
        let j = &page.jobs[0];
        assert!(
            j.name.len() < 400 && !j.name.contains('\u{1b}'),
            "{}",
            j.name
        );
        assert!(j.schedule.to_string().len() < 3000);
        assert!(
            j.schedule().is_err(),
            "an expression over 256 bytes is refused"
        );
        assert_eq!(
            page.next_offset, None,
            "hasMore without nextOffset: no next page"
        );
    }
}
