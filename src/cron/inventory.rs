//! Keeping every linked gateway's jobs in the store: read within 30 s of its link connecting
//! (at a phase of its own, so a fleet linked at once is read over the 30 s), when it says
//! its cron changed (the `gateway.cron` event), and by the sweep — each gateway once per
//! `[cron] sweep_interval` at a phase of its own ([`super::sweep`]). Reads wait for the next
//! second's tick, so a burst of events for one gateway is one read, and at most
//! [`AT_ONCE`] gateways are read at a time. A read of a list read before asks for its
//! `snapshotRevision` alone (a page of one job); when it is the one stored, that is all
//! (nothing is written), else every page is read and the list replaced in one transaction.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::job::{Job, Page};
use super::watchdog::Watched;
use super::{Cron, CronError, Linked, duplicates, sweep};
use crate::db::cron::{CronJobRow, CronListRead};
use crate::domain::CronAction;
use gateway_supervisor_actors::events::EventKind;
use gateway_supervisor_actors::model::{GatewayId, LinkPhase};
use gateway_supervisor_actors::unix_now_ms;

/// Gateways read at once.
const AT_ONCE: usize = 8;
/// How long missed fires are kept on record, and how often older ones are forgotten.
const MISSES_KEPT_MS: i64 = 30 * 86_400_000;
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// A linked gateway not read yet is read within this at most (its phase in it), and again
/// this often while its reads fail.
const UNREAD_MS: i64 = 30_000;
/// ... and within 3 ms per gateway linked here, at least a second: a few gateways are read at
/// the next tick, 10,000 linked at once over 30 s (about 333 reads a second).
fn unread_window(linked: usize) -> i64 {
    (linked as i64).saturating_mul(3).clamp(1_000, UNREAD_MS)
}
/// Ticks between two look-ups of the gateways linked here when no link changed (a check: a
/// change of link comes with its event).
const REFRESH_TICKS: u64 = 10;

/// The inventory's view of the gateways linked here between two look-ups.
#[derive(Default)]
struct LinkedHere {
    /// Those that offer `cron.list`, by id.
    offering: Vec<GatewayId>,
    /// The same by their phase in the sweep, sorted again only when they changed.
    phases: sweep::Phases,
    /// Of them, those not read since their link connected.
    unread: Vec<GatewayId>,
}

impl LinkedHere {
    /// The gateways offering `cron.list` now (by id) and those of them not read yet.
    fn update(&mut self, offering: Vec<GatewayId>, unread: Vec<GatewayId>, sweep_ms: i64) {
        if offering != self.offering {
            self.phases = sweep::Phases::new(&offering, sweep_ms);
            self.offering = offering;
        }
        self.unread = unread;
    }

    /// Those read since (`revisions`: the lists read) are no longer unread.
    fn forget_read(&mut self, revisions: &std::collections::HashMap<GatewayId, String>) {
        if !self.unread.is_empty() {
            self.unread.retain(|id| !revisions.contains_key(id));
        }
    }
}

/// Jobs asked for per page (2026.9.6's most).
const PAGE: i64 = 200;
/// Pages read of one gateway at most (10,000 jobs); a list longer is kept cut, and counted.
const MAX_PAGES: usize = 50;

/// How a list read went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Its revision was the one stored: nothing written.
    Unchanged,
    /// Stored anew.
    Stored,
    /// The gateway was deleted meanwhile.
    Gone,
}

impl Cron {
    /// Keeps the inventory and judges fires until the daemon stops.
    pub async fn run(self: Arc<Self>) {
        if !self.cfg.enabled {
            return;
        }
        let (_, mut events) = self.events.subscribe_after(None);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut watch = tokio::time::interval(self.cfg.watch_interval);
        watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut prune = tokio::time::interval(PRUNE_EVERY);
        prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let interval_ms = self.cfg.sweep_interval.as_millis() as i64;
        let mut asked: BTreeSet<GatewayId> = BTreeSet::new();
        let mut last_tick = unix_now_ms();
        // A gateway linked or lost: the declarations are kept at the next tick, not the next
        // watch (a single-firing job moves off a gateway that went down within seconds).
        let mut keep_soon = false;
        let mut ticks: u64 = 0;
        // The gateways linked here that offer `cron.list`, and those of them not read since
        // they linked: looked up again after a link changed (its event), after missed events
        // and every REFRESH_TICKS ticks; between, a tick finds those its sweep is due for by
        // their phase, walking no list. At 10,000 gateways the look-up at every tick (a shared
        // read and three hash look-ups each) was a tenth of the idle daemon's CPU, and at 19,000
        // the sweep's question of every gateway at every tick about 4 % (docs/performance.md,
        // *Performance*).
        let mut linked = LinkedHere::default();
        let mut refresh = true;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let now = unix_now_ms();
                    ticks += 1;
                    if std::mem::take(&mut refresh) || ticks.is_multiple_of(REFRESH_TICKS) {
                        let (offering, unread) = self.look_up_linked(now, ticks);
                        linked.update(offering, unread, interval_ms);
                    }
                    linked.forget_read(&self.revisions.lock().unwrap_or_else(|p| p.into_inner()));
                    // Besides the sweep and what was asked: a gateway this instance has not read
                    // since it linked it (or since its link connected again; or its read
                    // failed), within UNREAD_MS, spread out.
                    let unread_ms = unread_window(linked.offering.len());
                    let mut due: Vec<GatewayId> = linked
                        .phases
                        .due(last_tick, now)
                        .into_iter()
                        .chain(
                            linked
                                .unread
                                .iter()
                                .copied()
                                .filter(|id| sweep::due(*id, last_tick, now, unread_ms)),
                        )
                        // Asked for and not linked here (any more): another instance reads it.
                        .chain(std::mem::take(&mut asked).into_iter().filter(|id| linked.offering.binary_search(id).is_ok()))
                        .collect();
                    due.sort_unstable();
                    due.dedup();
                    last_tick = now;
                    self.read_all(due).await;
                    if std::mem::take(&mut keep_soon) {
                        self.keep_declarations().await;
                    }
                }
                _ = watch.tick() => {
                    self.watch_all().await;
                    self.keep_declarations().await;
                    self.count().await;
                }
                _ = prune.tick() => {
                    let before = unix_now_ms() - MISSES_KEPT_MS;
                    match self.stored(move |s| s.prune_cron_misses(before)).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(misses = n, "missed cron fires older than 30 days forgotten"),
                        Err(e) => tracing::warn!(%e, "could not prune old missed cron fires"),
                    }
                }
                event = events.recv() => match event {
                    Ok(e) if e.kind == EventKind::ConnectionChanged => {
                        keep_soon = true;
                        refresh = true;
                        // Read again within UNREAD_MS, at the gateway's phase: 10,000 gateways
                        // linked in the same 3 s are read over 30 s, not all at once.
                        if e.payload.get("state").and_then(Value::as_str)
                            == Some(LinkPhase::Connected.as_str())
                            && let Some(id) = e.gateway_id
                        {
                            self.revisions
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .remove(&id);
                        }
                    }
                    // A run's start or end changes no definition: its facts are stored as they
                    // are (one row), not read back with the whole list — a fleet of minutely
                    // jobs would otherwise read every list twice a minute.
                    Ok(e) if e.kind == EventKind::GatewayCron => match (e.gateway_id, ran(&e.payload)) {
                        // In a cluster every instance hears it: the one linking the gateway stores it.
                        (Some(id), Some(run)) if self.links(id) => self.ran(id, run).await,
                        (Some(_), Some(_)) => {}
                        (Some(_), None) if action(&e.payload) == CronAction::Started => {}
                        (Some(id), None) => {
                            asked.insert(id);
                        }
                        (None, _) => {}
                    },
                    Ok(_) => {}
                    // Events missed: a gateway not read since it linked is read within 30 s, every
                    // gateway at its sweep.
                    Err(RecvError::Lagged(_)) => refresh = true,
                    Err(RecvError::Closed) => return,
                },
            }
        }
    }

    /// The gateways linked here that offer `cron.list`, from the shared targets (by id), and
    /// those of them not read yet.
    fn look_up_linked(&self, now: i64, tick: u64) -> (Vec<GatewayId>, Vec<GatewayId>) {
        let mut offering = self.note_linked(self.hands.linked_here(), now, tick);
        offering.sort_unstable();
        let known = self.revisions.lock().unwrap_or_else(|p| p.into_inner());
        let unread = offering
            .iter()
            .copied()
            .filter(|id| !known.contains_key(id))
            .collect();
        (offering, unread)
    }

    /// Notes which gateways are linked here and since when (a new process, or a link that was
    /// not there at the last tick, starts again); the ids of those that offer `cron.list`. A
    /// gateway whose target is the one of the last tick costs a pointer compare: at 10,000
    /// gateways a tick copies nothing (it cloned every gateway's labels twice a second).
    fn note_linked(
        &self,
        linked: Vec<std::sync::Arc<gateway_supervisor_actors::messages::GatewayTarget>>,
        now: i64,
        tick: u64,
    ) -> Vec<GatewayId> {
        let mut known = self.linked.lock().unwrap_or_else(|p| p.into_inner());
        let mut offering = Vec::with_capacity(linked.len());
        for target in linked {
            let id = target.candidate.id;
            let offers = match known.get_mut(&id) {
                Some(entry) if std::sync::Arc::ptr_eq(&entry.target, &target) => {
                    entry.seen = tick;
                    entry.offers_cron
                }
                Some(entry) => {
                    // Changed: another process starts its history again.
                    if entry.target.boot_id != target.boot_id {
                        entry.since_ms = now;
                    }
                    entry.offers_cron = target.offers("cron.list");
                    entry.target = target;
                    entry.seen = tick;
                    entry.offers_cron
                }
                None => {
                    let offers_cron = target.offers("cron.list");
                    known.insert(
                        id,
                        Linked {
                            target,
                            offers_cron,
                            since_ms: now,
                            seen: tick,
                        },
                    );
                    offers_cron
                }
            };
            if offers {
                offering.push(id);
            }
        }
        let gone: Vec<GatewayId> = known
            .iter()
            .filter(|(_, l)| l.seen != tick)
            .map(|(id, _)| *id)
            .collect();
        // Linked again later (here or by another instance first): read whole, judged from
        // what the store says, not from this instance's memory.
        if !gone.is_empty() {
            known.retain(|_, l| l.seen == tick);
            let mut revisions = self.revisions.lock().unwrap_or_else(|p| p.into_inner());
            let mut watched = self.watched.lock().unwrap_or_else(|p| p.into_inner());
            let mut schedulers = self.schedulers.lock().unwrap_or_else(|p| p.into_inner());
            for id in &gone {
                revisions.remove(id);
                watched.remove(id);
                schedulers.remove(id);
            }
        }
        offering
    }

    /// Whether this instance links gateway `id` (as of the last tick).
    fn links(&self, id: GatewayId) -> bool {
        self.linked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&id)
    }

    async fn read_all(&self, due: Vec<GatewayId>) {
        futures_util::stream::iter(due)
            .for_each_concurrent(AT_ONCE, |id| async move {
                match self.read(id).await {
                    Ok(read) => self.metrics.read(read),
                    Err(e) => {
                        self.metrics.read_failed();
                        tracing::debug!(gateway_id = id.get(), %e, "cron.list not read; at the next sweep");
                    }
                }
            })
            .await;
    }

    /// Reads gateway `id`'s jobs; stores them when they changed.
    pub async fn read(&self, id: GatewayId) -> Result<Read, CronError> {
        let scheduler_enabled = self.scheduler(id).await?;
        let known = self
            .revisions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned();
        // A list read before (at a revision: a release that has none is read whole): first its
        // revision alone, from a page of one job — nearly every sweep finds it unchanged, and
        // then the gateway answered one job instead of up to 200.
        if known.is_some() && Page::read(&self.revision_probe(id).await?).snapshot_revision == known
        {
            return Ok(Read::Unchanged);
        }
        let first = self.list_page(id, 0).await?;
        let page = Page::read(&first);
        // First read since this instance linked it: the list stored at this revision, if it
        // is, is kept (a restart of the daemon writes nothing for 10,000 unchanged lists).
        if known.is_none()
            && let Some(rev) = page.snapshot_revision.clone()
        {
            let at = rev.clone();
            let kept = self
                .stored(move |s| s.cron_jobs_if_kept(id, &at, scheduler_enabled))
                .await?;
            if let Some(rows) = kept {
                self.remember(id, Some(rev), &rows);
                return Ok(Read::Unchanged);
            }
        }
        let mut raw: Vec<Value> = first["jobs"].as_array().cloned().unwrap_or_default();
        let mut jobs = page.jobs;
        let mut unreadable = page.unreadable;
        let mut next = page.next_offset;
        let mut pages = 1;
        while let Some(offset) = next.filter(|_| pages < MAX_PAGES) {
            let answer = self.list_page(id, offset).await?;
            let page = Page::read(&answer);
            raw.extend(answer["jobs"].as_array().cloned().unwrap_or_default());
            jobs.extend(page.jobs);
            unreadable += page.unreadable;
            // A gateway that says the next page starts where this one did is not followed.
            next = page.next_offset.filter(|n| *n > offset);
            pages += 1;
        }
        if next.is_some() {
            tracing::warn!(
                gateway_id = id.get(),
                pages,
                "cron.list has more than 10,000 jobs: the rest are not kept"
            );
        }
        let now = unix_now_ms();
        let copies = duplicates::find(&raw);
        let extra_of = |job: &str| {
            copies
                .iter()
                .find(|d| d.extras.iter().any(|e| e == job))
                .map(|d| d.keep.clone())
        };
        let rows: Vec<CronJobRow> = jobs
            .iter()
            .map(|j| row(id, j, extra_of(&j.id), now))
            .collect();
        let read = CronListRead {
            gateway_id: id,
            snapshot_revision: page.snapshot_revision.clone(),
            scheduler_enabled: Some(scheduler_enabled),
            jobs: rows,
            unreadable: unreadable as i64,
            read_at_ms: now,
        };
        let stored = self
            .stored(move |s| {
                if !s.record_cron_list(&read)? {
                    return Ok(None);
                }
                s.cron_jobs_of(id).map(Some)
            })
            .await?;
        let Some(rows) = stored else {
            return Ok(Read::Gone);
        };
        self.remember(id, page.snapshot_revision, &rows);
        Ok(Read::Stored)
    }

    /// What a read leaves behind: the revision of gateway `id`'s list as stored (the next read
    /// at it writes nothing), and its jobs for the watchdog.
    fn remember(&self, id: GatewayId, revision: Option<String>, rows: &[CronJobRow]) {
        if let Some(rev) = revision {
            self.revisions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id, rev);
        }
        self.watching(id, rows.iter().filter_map(Watched::of).collect());
    }

    /// Whether gateway `id`'s scheduler is on, asked once per link.
    async fn scheduler(&self, id: GatewayId) -> Result<bool, CronError> {
        let known = self
            .schedulers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .copied();
        if let Some(on) = known {
            return Ok(on);
        }
        let status = self.hands.call(id, "cron.status", json!({})).await?;
        let on = status["enabled"] != false;
        if !on {
            tracing::info!(
                gateway_id = id.get(),
                "the gateway's cron scheduler is off (cron.enabled: false or OPENCLAW_SKIP_CRON=1): its jobs fire only when run, and no slot of theirs is called missed"
            );
        }
        self.schedulers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, on);
        Ok(on)
    }

    /// The smallest `cron.list` answer that carries the list's `snapshotRevision`. 2026.9.6
    /// computes the revision over every job the filters let through, before the page is cut
    /// (`resolveCronListSnapshotRevision(sortedJobs)` in its cron service), so it is the
    /// revision a whole read of the same filters gets. Not `compact`: releases before it
    /// refuse the key (their parameters are closed).
    async fn revision_probe(&self, id: GatewayId) -> Result<Value, CronError> {
        Ok(self
            .hands
            .call(
                id,
                "cron.list",
                json!({"includeDisabled": true, "limit": 1}),
            )
            .await?)
    }

    async fn list_page(&self, id: GatewayId, offset: i64) -> Result<Value, CronError> {
        Ok(self
            .hands
            .call(
                id,
                "cron.list",
                json!({"includeDisabled": true, "limit": PAGE, "offset": offset}),
            )
            .await?)
    }
}

/// A run's end as a `gateway.cron` event passes it on: the job, its status, its start and the
/// job's next run. `None` for anything else (a change, a start: the list is read back, or
/// nothing needs storing).
fn ran(payload: &Value) -> Option<Ran> {
    if action(payload) != CronAction::Finished {
        return None;
    }
    Some(Ran {
        job_id: payload["job_id"].as_str()?.to_owned(),
        status: payload["status"].as_str().map(str::to_owned),
        run_at_ms: payload["run_at_ms"].as_i64()?,
        next_run_at_ms: payload["next_run_at_ms"].as_i64(),
    })
}

/// The action a `gateway.cron` event names (`other` for a word outside the set).
fn action(payload: &Value) -> CronAction {
    payload["action"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .unwrap_or(CronAction::Other)
}

/// A run that ended, as stored on its job.
#[derive(Debug, Clone, PartialEq)]
pub struct Ran {
    pub job_id: String,
    pub status: Option<String>,
    pub run_at_ms: i64,
    pub next_run_at_ms: Option<i64>,
}

impl Cron {
    /// Job `run.job_id` of gateway `id` ran: its last run and next run stored (the watchdog's
    /// copy too), without reading the list.
    async fn ran(&self, id: GatewayId, run: Ran) {
        {
            let mut watched = self.watched.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(job) = watched
                .get_mut(&id)
                .and_then(|jobs| jobs.iter_mut().find(|j| j.job_id == run.job_id))
            {
                job.last_run_at_ms = Some(run.run_at_ms);
            }
        }
        let stored = self
            .stored(move |s| {
                s.record_cron_run(
                    id,
                    &run.job_id,
                    run.run_at_ms,
                    run.status.as_deref(),
                    run.next_run_at_ms,
                )
            })
            .await;
        if let Err(e) = stored {
            tracing::debug!(gateway_id = id.get(), %e, "a cron run's end not stored; at the next read");
        }
    }
}

/// A job as stored.
fn row(gateway: GatewayId, j: &Job, duplicate_of: Option<String>, now: i64) -> CronJobRow {
    CronJobRow {
        gateway_id: gateway,
        job_id: j.id.clone(),
        name: j.name.clone(),
        declaration_key: j.declaration_key.clone(),
        agent: j.agent.clone(),
        enabled: j.enabled,
        gateway_own: j.gateway_own,
        schedule: j.schedule.to_string(),
        next_run_at_ms: j.next_run_at_ms,
        last_run_at_ms: j.last_run_at_ms,
        last_run_status: j.last_run_status.clone(),
        config_revision: j.config_revision.clone(),
        duplicate_of,
        seen_at_ms: now,
        judged_until_ms: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_run_s_end_is_stored_without_a_read() {
        let finished = json!({"job_id": "j1", "action": "finished", "status": "ok",
            "run_at_ms": 1_000, "duration_ms": 5, "next_run_at_ms": 61_000});
        assert_eq!(
            ran(&finished),
            Some(Ran {
                job_id: "j1".into(),
                status: Some("ok".into()),
                run_at_ms: 1_000,
                next_run_at_ms: Some(61_000),
            })
        );
        for action in ["added", "updated", "removed", "started", "other"] {
            assert_eq!(
                ran(&json!({"job_id": "j1", "action": action, "run_at_ms": 1})),
                None
            );
        }
        // A job the link could not name: the list is read instead.
        assert_eq!(
            ran(&json!({"job_id": null, "action": "finished", "run_at_ms": 1})),
            None
        );
    }
}
