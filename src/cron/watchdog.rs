//! The missed-fire watchdog (docs/design.md, *Cron*). Every `[cron] watch_interval`, for each
//! gateway linked here, each enabled job of the fleet's (not the gateway's own) whose slots
//! became decidable since its last look is judged by [`missed::judge`] on the gateway's
//! `cron.runs` — one call per job and decidable slot, not per look — and the judgement stored
//! with the slots it found missing, each once. A slot the gateway skipped while linked is
//! *missed*: an event, a metric, an audit row and (through the alerts) a signed alert; one
//! passed while this instance had no link to it is *unreachable*, recorded and counted only
//! (the gateway's own alerts say it was away). With `[cron] recover = "force"` on the gateway,
//! a missed slot is claimed in the store and then run once with `cron.run {mode: "force",
//! expectedProcessInstanceId}` — `due` would answer `not-due`, the swallowed tick already moved
//! `nextRunAtMs` (openclaw#139215) — fenced to the process that skipped it, whatever happens to
//! the answer: a slot is never forced twice.

use futures_util::StreamExt;
use serde_json::{Value, json};

use super::job::Job;
use super::missed::{self, Look, Slot};
use super::schedule::Schedule;
use super::{Cron, CronError, Linked, WRITE_WAIT};
use crate::config::Recover;
use crate::db::cron::{CronJobRow, CronMissRow};
use crate::domain::{CronMissCause, CronMissedEvent, CronRecovery};
use gateway_supervisor_actors::bounded;
use gateway_supervisor_actors::events::EventKind;
use gateway_supervisor_actors::model::{Caller, GatewayId};
use gateway_supervisor_actors::unix_now_ms;

/// Gateways looked at at once.
const LOOKS_AT_ONCE: usize = 8;
/// Runs read per job and look (newest first): more than a look's slots.
const RUNS: i64 = 50;
/// How far back a look starts at most: after a long outage (the daemon's, or its link's) the
/// slots of the last day are reported, not every slot since the last look.
const LOOK_BACK_MS: i64 = 86_400_000;

/// What asking for a forced run came to.
enum Forced {
    /// The gateway took it: its run id.
    Ran(String),
    /// A run had started after the slot after all (Unix ms): nothing sent.
    Late(i64),
}

/// A job the watchdog looks at: enabled, the fleet's, with slots.
#[derive(Debug, Clone)]
pub struct Watched {
    pub job_id: String,
    pub name: String,
    pub schedule: Schedule,
    pub last_run_at_ms: Option<i64>,
    /// Slots after this are not judged yet; `None`: never looked at (its slots from now on
    /// are judged, not its past).
    pub judged_until_ms: Option<i64>,
}

impl Watched {
    /// `row`, when it is a job the watchdog looks at.
    pub fn of(row: &CronJobRow) -> Option<Watched> {
        if !row.enabled || row.gateway_own {
            return None;
        }
        let schedule = serde_json::from_str::<Value>(&row.schedule)
            .ok()
            .and_then(|v| Schedule::read(&v).ok())
            .filter(|s| !matches!(s, Schedule::Unslotted))?;
        Some(Watched {
            job_id: row.job_id.clone(),
            name: row.name.clone(),
            schedule,
            last_run_at_ms: row.last_run_at_ms,
            judged_until_ms: row.judged_until_ms,
        })
    }
}

impl Cron {
    /// The jobs of gateway `id` to watch, as its list was just stored. A gateway with none
    /// (only jobs of its own: most of a fleet) is not kept, so a look walks only those with some.
    pub(super) fn watching(&self, id: GatewayId, jobs: Vec<Watched>) {
        let mut watched = self.watched.lock().unwrap_or_else(|p| p.into_inner());
        if jobs.is_empty() {
            watched.remove(&id);
        } else {
            watched.insert(id, jobs);
        }
    }

    /// One look at every gateway linked here that has jobs of the fleet's to watch, not at
    /// every gateway linked here: at 19,000 gateways with none, a look copied 19,000 entries
    /// and started 19,000 looks that found nothing, every 15 s (docs/performance.md,
    /// *Performance*).
    pub(super) async fn watch_all(&self) {
        let now = unix_now_ms();
        let with_jobs: Vec<GatewayId> = self
            .watched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect();
        let linked: Vec<(GatewayId, Linked)> = {
            let linked = self.linked.lock().unwrap_or_else(|p| p.into_inner());
            with_jobs
                .into_iter()
                .filter_map(|id| linked.get(&id).map(|l| (id, l)))
                .filter(|(_, l)| l.offers_cron)
                .map(|(id, l)| (id, l.clone()))
                .collect()
        };
        // A few gateways at a time: one that does not answer holds up only its own look.
        futures_util::stream::iter(linked)
            .for_each_concurrent(LOOKS_AT_ONCE, |(id, link)| async move {
                if let Err(e) = self.watch(id, &link, now).await {
                    tracing::debug!(gateway_id = id.get(), %e, "cron fires not judged this look");
                }
            })
            .await;
    }

    async fn watch(&self, id: GatewayId, link: &Linked, now: i64) -> Result<(), CronError> {
        let scheduler_on = self
            .schedulers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .copied();
        if scheduler_on != Some(true) {
            return Ok(());
        }
        let jobs = self
            .watched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
            .unwrap_or_default();
        for job in jobs {
            let Some(from) = job.judged_until_ms.map(|j| j.max(now - LOOK_BACK_MS)) else {
                let job_id = job.job_id.clone();
                self.stored(move |s| s.record_cron_judgement(id, &job_id, now, &[]))
                    .await?;
                self.judged(id, &job.job_id, now);
                continue;
            };
            let grace_ms = self.cfg.grace.as_millis() as i64;
            let horizon = now - job.schedule.stagger_ms() - grace_ms;
            if job.schedule.slots(from, horizon).is_empty() {
                continue;
            }
            let runs = self.runs_of(id, &job.job_id).await?;
            let mut look = Look {
                schedule: &job.schedule,
                grace_ms,
                enabled: true,
                from,
                now,
                runs: &runs,
                last_run: job.last_run_at_ms,
                running: None,
                down: &[(i64::MIN, link.since_ms)],
            };
            let mut verdict = missed::judge(&look);
            if verdict
                .slots
                .iter()
                .any(|s| matches!(s, Slot::Missed { .. }))
            {
                // Before a slot is called missed, the job as it is now: a run still going
                // (not in `cron.runs` until it ends) or one that ended since the runs were read.
                let Some(live) = self.job_now(id, &job.job_id).await? else {
                    tracing::debug!(gateway_id = id.get(), job = %job.job_id,
                        "cron.get answered no readable job: its slots are judged at a later look");
                    continue;
                };
                look.last_run = live.last_run_at_ms.max(look.last_run);
                look.running = live.running_at_ms;
                verdict = missed::judge(&look);
            }
            let misses: Vec<CronMissRow> = verdict
                .slots
                .iter()
                .filter_map(|s| match *s {
                    Slot::Ran { .. } => None,
                    Slot::Missed { slot } => Some((slot, CronMissCause::Missed)),
                    Slot::GatewayDown { slot } => Some((slot, CronMissCause::Unreachable)),
                })
                .map(|(slot_ms, cause)| CronMissRow {
                    gateway_id: id,
                    job_id: job.job_id.clone(),
                    slot_ms,
                    job_name: job.name.clone(),
                    cause,
                    found_at_ms: now,
                    recovery: None,
                    recovery_detail: None,
                    recovered_at_ms: None,
                })
                .collect();
            let (job_id, until) = (job.job_id.clone(), verdict.decided_until);
            let new = self
                .stored(move |s| s.record_cron_judgement(id, &job_id, until, &misses))
                .await?;
            self.judged(id, &job.job_id, until);
            for miss in new {
                self.found(link, miss).await;
            }
        }
        Ok(())
    }

    /// Job `job_id` of gateway `id` is judged up to `until`.
    fn judged(&self, id: GatewayId, job_id: &str, until: i64) {
        let mut watched = self.watched.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(job) = watched
            .get_mut(&id)
            .and_then(|jobs| jobs.iter_mut().find(|j| j.job_id == job_id))
        {
            job.judged_until_ms = Some(until);
        }
    }

    /// Job `job_id` of gateway `id` as the gateway has it now (`cron.get`).
    async fn job_now(&self, id: GatewayId, job_id: &str) -> Result<Option<Job>, CronError> {
        let answer = self
            .hands
            .call(id, "cron.get", json!({"id": job_id}))
            .await?;
        Ok(Job::read(&answer).filter(|j| j.id == job_id))
    }

    /// The start times of job `job_id`'s last runs.
    async fn runs_of(&self, id: GatewayId, job_id: &str) -> Result<Vec<i64>, CronError> {
        let answer = self
            .hands
            .call(
                id,
                "cron.runs",
                json!({"scope": "job", "id": job_id, "limit": RUNS, "sortDir": "desc"}),
            )
            .await?;
        Ok(answer["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .take(RUNS as usize)
            .filter_map(|e| e["runAtMs"].as_i64())
            .collect())
    }

    /// A slot new to the record: said, counted, put on record; a missed one run again when the
    /// gateway's policy says so.
    async fn found(&self, link: &Linked, miss: CronMissRow) {
        self.metrics.missed(miss.cause);
        if miss.cause != CronMissCause::Missed {
            return;
        }
        let id = miss.gateway_id;
        tracing::warn!(gateway_id = id.get(), job = %miss.job_id, slot_ms = miss.slot_ms,
            "a cron fire was skipped: no run for the slot, and the job's last run did not move");
        let mut event = CronMissedEvent {
            gateway_id: id,
            job_id: miss.job_id.clone(),
            job_name: miss.job_name.clone(),
            slot_ms: miss.slot_ms,
            cause: miss.cause,
            recovery: None,
            detail: None,
        };
        self.say(&event, "cron.missed").await;
        let force = self.cfg.recover == Recover::Force
            && self
                .recover_on
                .as_ref()
                .is_none_or(|s| s.matches(link.labels()));
        if !force {
            return;
        }
        let (job, slot) = (miss.job_id.clone(), miss.slot_ms);
        let claimed = self
            .stored(move |s| s.claim_cron_recovery(id, &job, slot, unix_now_ms()))
            .await;
        if !matches!(claimed, Ok(true)) {
            return;
        }
        let (recovery, detail) = match self.force(id, &miss.job_id, slot).await {
            Ok(Forced::Ran(run_id)) => (CronRecovery::Forced, run_id),
            Ok(Forced::Late(at)) => (
                CronRecovery::Late,
                format!("the gateway fired it late, at {at} (Unix ms): not run again"),
            ),
            Err(why) => (CronRecovery::Failed, why),
        };
        let (job, said) = (miss.job_id.clone(), detail.clone());
        if let Err(e) = self
            .stored(move |s| s.end_cron_recovery(id, &job, slot, recovery, &said))
            .await
        {
            tracing::warn!(gateway_id = id.get(), %e, "a forced cron run's outcome not stored");
        }
        self.metrics.recovered(recovery);
        event.recovery = Some(recovery);
        event.detail = Some(detail);
        self.say(&event, "cron.recover").await;
    }

    /// Runs job `job_id` now, fenced to the gateway process that skipped it — unless a run of
    /// it started after `slot` meanwhile (a fire later than the grace): the forced run's id, the
    /// late run's start, or why not.
    async fn force(&self, id: GatewayId, job_id: &str, slot: i64) -> Result<Forced, String> {
        let runs = self
            .runs_of(id, job_id)
            .await
            .map_err(|e| format!("cron.runs: {e}"))?;
        if let Some(at) = runs.iter().copied().filter(|t| *t >= slot).min() {
            return Ok(Forced::Late(at));
        }
        let info = self
            .hands
            .call(id, "system.info", json!({}))
            .await
            .map_err(|e| format!("system.info: {e}"))?;
        let process = info["processInstanceId"]
            .as_str()
            .and_then(bounded::identifier)
            .ok_or("system.info names no processInstanceId")?
            .to_owned();
        let answer = self
            .hands
            .write(
                id,
                "cron.run",
                json!({"id": job_id, "mode": "force", "expectedProcessInstanceId": process}),
                WRITE_WAIT,
            )
            .await
            .map_err(|e| bounded::text(&e.to_string(), 300))?;
        if answer["ok"] == true && answer["enqueued"] == true {
            Ok(Forced::Ran(
                answer["runId"]
                    .as_str()
                    .map(|r| bounded::text(r, 200))
                    .unwrap_or_default(),
            ))
        } else {
            let reason = answer["reason"].as_str().unwrap_or("not run");
            Err(format!(
                "the gateway did not run it: {}",
                bounded::text(reason, 80)
            ))
        }
    }

    /// The event and the audit row of `event` (`action`).
    async fn say(&self, event: &CronMissedEvent, action: &'static str) {
        let payload = serde_json::to_value(event).unwrap_or(Value::Null);
        self.events.publish(
            EventKind::CronMissed,
            Some(event.gateway_id),
            payload.clone(),
        );
        self.hands
            .audited(
                &Caller::system("cron-watchdog"),
                action,
                event.gateway_id,
                payload,
            )
            .await;
    }
}
