//! The fleet's cron inventory and the watchdog's findings (docs/design.md, *Cron*): each
//! gateway's jobs as its last `cron.list` said (written by the instance linking it, read by
//! any), and each missed slot once. A list is replaced in one transaction — the jobs it names
//! upserted (the watchdog's `judged_until_ms` kept), the others deleted — so a reader never
//! sees half of two lists. Pages of jobs are ordered by `(gateway_id, job_id)`; a set of
//! gateways is asked in ascending chunks, so the chunks' pages are the set's page.

use diesel::prelude::*;

use super::schema::{cron_jobs, cron_lists, cron_misses};
use super::{DbError, Store, lower, write_tx};
use crate::domain::{CronJobStatus, CronMissCause, CronRecovery, CronRunStatus};
use gateway_supervisor_actors::model::GatewayId;

/// Gateways named in one query; a larger set is asked in chunks of this many.
const IDS_IN_QUERY: usize = 500;

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = cron_jobs)]
pub struct CronJobRow {
    pub gateway_id: GatewayId,
    pub job_id: String,
    pub name: String,
    pub declaration_key: Option<String>,
    pub agent: Option<String>,
    pub enabled: bool,
    pub gateway_own: bool,
    /// JSON, as the gateway reported it (bounded).
    pub schedule: String,
    pub next_run_at_ms: Option<i64>,
    pub last_run_at_ms: Option<i64>,
    pub last_run_status: Option<String>,
    pub config_revision: Option<String>,
    pub duplicate_of: Option<String>,
    pub seen_at_ms: i64,
    #[diesel(skip_update)]
    pub judged_until_ms: Option<i64>,
}

/// One gateway's list, as read.
#[derive(Debug, Clone)]
pub struct CronListRead {
    pub gateway_id: GatewayId,
    pub snapshot_revision: Option<String>,
    /// `cron.status`'s `enabled`, when asked.
    pub scheduler_enabled: Option<bool>,
    pub jobs: Vec<CronJobRow>,
    pub unreadable: i64,
    pub read_at_ms: i64,
}

/// What the list of jobs is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct CronJobFilter {
    /// Only these gateways (a selector, a key's scope); `None`: every gateway.
    pub gateways: Option<std::collections::BTreeSet<GatewayId>>,
    pub agent: Option<String>,
    /// A part of the name, case aside.
    pub q: Option<String>,
    pub status: Option<CronJobStatus>,
    /// The gateways' own jobs too (heartbeat, memory promotion, skill review).
    pub system: bool,
    /// After this `(gateway_id, job_id)`.
    pub after: Option<(GatewayId, String)>,
}

/// A missed slot, as found.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = cron_misses)]
pub struct CronMissRow {
    pub gateway_id: GatewayId,
    pub job_id: String,
    pub slot_ms: i64,
    pub job_name: String,
    #[diesel(deserialize_as = String)]
    pub cause: CronMissCause,
    pub found_at_ms: i64,
    /// A [`CronRecovery`] word.
    pub recovery: Option<String>,
    pub recovery_detail: Option<String>,
    pub recovered_at_ms: Option<i64>,
}

/// A job this daemon declared, as its gateway's last list holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredListed {
    pub gateway_id: GatewayId,
    /// `gs:<declaration>`.
    pub key: String,
    pub job_id: String,
    pub config_revision: Option<String>,
}

/// Counts for the gauges.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CronCounts {
    /// `(gateway_own, enabled)` → jobs.
    pub jobs: Vec<(bool, bool, i64)>,
    pub duplicates: i64,
}

impl Store {
    /// Gateway `id`'s jobs as last stored, when its list was stored at `revision` with its
    /// scheduler `scheduler_enabled` (`None`: stored otherwise, or never): a daemon that
    /// restarts, or links a gateway again, reads one page and this instead of writing the list
    /// again.
    pub fn cron_jobs_if_kept(
        &self,
        id: GatewayId,
        revision: &str,
        scheduler_enabled: bool,
    ) -> Result<Option<Vec<CronJobRow>>, DbError> {
        let kept = {
            let mut conn = self.conn()?;
            cron_lists::table
                .find(id)
                .select((cron_lists::snapshot_revision, cron_lists::scheduler_enabled))
                .first::<(Option<String>, Option<bool>)>(&mut conn)
                .optional()?
        };
        match kept {
            Some((Some(r), Some(on))) if r == revision && on == scheduler_enabled => {
                self.cron_jobs_of(id).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Replaces gateway `read.gateway_id`'s list with `read`. `false`: the gateway is gone.
    pub fn record_cron_list(&self, read: &CronListRead) -> Result<bool, DbError> {
        let mut conn = self.conn()?;
        write_tx::<_, DbError, _>(&mut conn, |c| {
            let exists = diesel::select(diesel::dsl::exists(
                super::schema::gateways::table.find(read.gateway_id),
            ))
            .get_result::<bool>(c)?;
            if !exists {
                return Ok(false);
            }
            let list = (
                cron_lists::snapshot_revision.eq(&read.snapshot_revision),
                cron_lists::scheduler_enabled.eq(read.scheduler_enabled),
                cron_lists::jobs.eq(read.jobs.len() as i64),
                cron_lists::unreadable.eq(read.unreadable),
                cron_lists::read_at_ms.eq(read.read_at_ms),
            );
            // Update, else insert: the write lock is held, so nobody inserts in between.
            if diesel::update(cron_lists::table.find(read.gateway_id))
                .set(list)
                .execute(c)?
                == 0
            {
                diesel::insert_into(cron_lists::table)
                    .values((cron_lists::gateway_id.eq(read.gateway_id), list))
                    .execute(c)?;
            }
            for job in &read.jobs {
                let key = (job.gateway_id, job.job_id.as_str());
                if diesel::update(cron_jobs::table.find(key))
                    .set(job)
                    .execute(c)?
                    == 0
                {
                    diesel::insert_into(cron_jobs::table)
                        .values(job)
                        .execute(c)?;
                }
            }
            // A job disabled now, or on a gateway whose scheduler is off, misses nothing until it
            // can fire again: its slots up to now are judged (none is called a skip later).
            let of_gateway = cron_jobs::table.filter(cron_jobs::gateway_id.eq(read.gateway_id));
            let judged = cron_jobs::judged_until_ms.eq(read.read_at_ms);
            if read.scheduler_enabled == Some(false) {
                diesel::update(of_gateway).set(judged).execute(c)?;
            } else {
                diesel::update(of_gateway.filter(cron_jobs::enabled.eq(false)))
                    .set(judged)
                    .execute(c)?;
            }
            let kept: Vec<&str> = read.jobs.iter().map(|j| j.job_id.as_str()).collect();
            diesel::delete(
                cron_jobs::table
                    .filter(cron_jobs::gateway_id.eq(read.gateway_id))
                    .filter(cron_jobs::job_id.ne_all(kept)),
            )
            .execute(c)?;
            Ok(true)
        })
    }

    /// A page of jobs, ordered by gateway and id.
    pub fn cron_jobs(
        &self,
        filter: &CronJobFilter,
        limit: i64,
    ) -> Result<Vec<CronJobRow>, DbError> {
        let Some(set) = &filter.gateways else {
            return self.cron_jobs_page(filter, None, limit);
        };
        let ids: Vec<GatewayId> = set
            .iter()
            .copied()
            .filter(|g| filter.after.as_ref().is_none_or(|(after, _)| g >= after))
            .collect();
        let mut found = Vec::new();
        for chunk in ids.chunks(IDS_IN_QUERY) {
            let left = limit - found.len() as i64;
            if left <= 0 {
                break;
            }
            found.extend(self.cron_jobs_page(filter, Some(chunk), left)?);
        }
        Ok(found)
    }

    fn cron_jobs_page(
        &self,
        filter: &CronJobFilter,
        gateways: Option<&[GatewayId]>,
        limit: i64,
    ) -> Result<Vec<CronJobRow>, DbError> {
        let mut conn = self.conn()?;
        let mut q = cron_jobs::table.into_boxed();
        if let Some(ids) = gateways {
            q = q.filter(cron_jobs::gateway_id.eq_any(ids.to_vec()));
        }
        if !filter.system {
            q = q.filter(cron_jobs::gateway_own.eq(false));
        }
        if let Some(agent) = &filter.agent {
            q = q.filter(cron_jobs::agent.eq(agent.clone()));
        }
        if let Some(text) = &filter.q {
            let pattern = format!("%{}%", like_escaped(&text.to_lowercase()));
            q = q.filter(lower(cron_jobs::name).like(pattern).escape('\\'));
        }
        q = match filter.status {
            None => q,
            Some(CronJobStatus::Enabled) => q.filter(cron_jobs::enabled.eq(true)),
            Some(CronJobStatus::Disabled) => q.filter(cron_jobs::enabled.eq(false)),
            Some(CronJobStatus::Failing) => {
                q.filter(cron_jobs::last_run_status.eq(CronRunStatus::Error.as_str()))
            }
            Some(CronJobStatus::Duplicate) => q.filter(cron_jobs::duplicate_of.is_not_null()),
            Some(CronJobStatus::Missed) => q.filter(diesel::dsl::exists(
                cron_misses::table
                    .filter(cron_misses::gateway_id.eq(cron_jobs::gateway_id))
                    .filter(cron_misses::job_id.eq(cron_jobs::job_id))
                    .filter(cron_misses::cause.eq(CronMissCause::Missed.as_str()))
                    .filter(
                        cron_misses::recovery
                            .is_null()
                            .or(cron_misses::recovery.ne(CronRecovery::Forced.as_str())),
                    ),
            )),
        };
        if let Some((g, id)) = &filter.after {
            q = q.filter(
                cron_jobs::gateway_id.gt(*g).or(cron_jobs::gateway_id
                    .eq(*g)
                    .and(cron_jobs::job_id.gt(id.clone()))),
            );
        }
        Ok(
            q.order((cron_jobs::gateway_id.asc(), cron_jobs::job_id.asc()))
                .limit(limit)
                .select(CronJobRow::as_select())
                .load(&mut conn)?,
        )
    }

    /// Gateway `gateway`'s job `job_id`, as last listed.
    pub fn cron_job(
        &self,
        gateway: GatewayId,
        job_id: &str,
    ) -> Result<Option<CronJobRow>, DbError> {
        let mut conn = self.conn()?;
        Ok(cron_jobs::table
            .find((gateway, job_id))
            .select(CronJobRow::as_select())
            .first(&mut conn)
            .optional()?)
    }

    /// Job `job_id` of gateway `gateway` ran at `run_at_ms` (a later run already stored is
    /// kept): its last run, its status and its next run. `false`: no such job stored.
    pub fn record_cron_run(
        &self,
        gateway: GatewayId,
        job_id: &str,
        run_at_ms: i64,
        status: Option<&str>,
        next_run_at_ms: Option<i64>,
    ) -> Result<bool, DbError> {
        let mut conn = self.conn()?;
        let status = status.map(|s| gateway_supervisor_actors::bounded::text(s, 32));
        let n = diesel::update(
            cron_jobs::table.find((gateway, job_id)).filter(
                cron_jobs::last_run_at_ms
                    .is_null()
                    .or(cron_jobs::last_run_at_ms.le(run_at_ms)),
            ),
        )
        .set((
            cron_jobs::last_run_at_ms.eq(run_at_ms),
            cron_jobs::last_run_status.eq(status),
            cron_jobs::next_run_at_ms.eq(next_run_at_ms),
        ))
        .execute(&mut conn)?;
        Ok(n == 1)
    }

    /// Every job of gateway `gateway`, by id.
    /// Every job whose declaration key starts with `owner:` (this daemon's: `gs:`), as the
    /// last lists hold them.
    pub fn cron_jobs_declared_by(&self, owner: &str) -> Result<Vec<DeclaredListed>, DbError> {
        let mut conn = self.conn()?;
        let rows: Vec<(GatewayId, Option<String>, String, Option<String>)> = cron_jobs::table
            .filter(cron_jobs::declaration_key.like(format!("{owner}:%")))
            .select((
                cron_jobs::gateway_id,
                cron_jobs::declaration_key,
                cron_jobs::job_id,
                cron_jobs::config_revision,
            ))
            .load(&mut conn)?;
        Ok(rows
            .into_iter()
            .filter_map(|(gateway_id, key, job_id, config_revision)| {
                Some(DeclaredListed {
                    gateway_id,
                    key: key?,
                    job_id,
                    config_revision,
                })
            })
            .collect())
    }

    /// For each declaration key starting with `owner:`, the newest start of a run that
    /// succeeded, as the gateways' last lists say (a job whose last run failed says nothing of
    /// the one before).
    pub fn cron_declared_last_ok(&self, owner: &str) -> Result<Vec<(String, i64)>, DbError> {
        let mut conn = self.conn()?;
        let rows: Vec<(Option<String>, Option<i64>)> = cron_jobs::table
            .filter(cron_jobs::declaration_key.like(format!("{owner}:%")))
            .filter(cron_jobs::last_run_status.eq(CronRunStatus::Ok.as_str()))
            .group_by(cron_jobs::declaration_key)
            .select((
                cron_jobs::declaration_key,
                diesel::dsl::max(cron_jobs::last_run_at_ms),
            ))
            .load(&mut conn)?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, t)| Some((k?, t?)))
            .collect())
    }

    /// The gateways whose last list holds a job with declaration key `key`.
    pub fn cron_jobs_declared(&self, key: &str) -> Result<Vec<GatewayId>, DbError> {
        let mut conn = self.conn()?;
        Ok(cron_jobs::table
            .filter(cron_jobs::declaration_key.eq(key))
            .select(cron_jobs::gateway_id)
            .distinct()
            .order(cron_jobs::gateway_id.asc())
            .load(&mut conn)?)
    }

    pub fn cron_jobs_of(&self, gateway: GatewayId) -> Result<Vec<CronJobRow>, DbError> {
        let mut conn = self.conn()?;
        Ok(cron_jobs::table
            .filter(cron_jobs::gateway_id.eq(gateway))
            .order(cron_jobs::job_id.asc())
            .select(CronJobRow::as_select())
            .load(&mut conn)?)
    }

    /// The watchdog judged job `job_id`'s slots up to `until`, finding `misses` (each kept
    /// once: a slot already on record is not found again). The misses new to the record.
    pub fn record_cron_judgement(
        &self,
        gateway: GatewayId,
        job_id: &str,
        until: i64,
        misses: &[CronMissRow],
    ) -> Result<Vec<CronMissRow>, DbError> {
        let mut conn = self.conn()?;
        write_tx::<_, DbError, _>(&mut conn, |c| {
            diesel::update(cron_jobs::table.find((gateway, job_id)))
                .set(cron_jobs::judged_until_ms.eq(until))
                .execute(c)?;
            let mut new = Vec::new();
            for m in misses {
                let known = diesel::select(diesel::dsl::exists(cron_misses::table.find((
                    m.gateway_id,
                    m.job_id.as_str(),
                    m.slot_ms,
                ))))
                .get_result::<bool>(c)?;
                if !known {
                    diesel::insert_into(cron_misses::table)
                        .values((
                            cron_misses::gateway_id.eq(m.gateway_id),
                            cron_misses::job_id.eq(&m.job_id),
                            cron_misses::slot_ms.eq(m.slot_ms),
                            cron_misses::job_name.eq(&m.job_name),
                            cron_misses::cause.eq(m.cause.as_str()),
                            cron_misses::found_at_ms.eq(m.found_at_ms),
                        ))
                        .execute(c)?;
                    new.push(m.clone());
                }
            }
            Ok(new)
        })
    }

    /// Claims missed slot `(gateway, job_id, slot_ms)` for a forced run: `true` once, however
    /// many instances or rounds ask (the run is recorded before it is sent, so it never
    /// repeats — a lost answer leaves it `forcing`, not retried).
    pub fn claim_cron_recovery(
        &self,
        gateway: GatewayId,
        job_id: &str,
        slot_ms: i64,
        now_ms: i64,
    ) -> Result<bool, DbError> {
        let mut conn = self.conn()?;
        let n = diesel::update(
            cron_misses::table
                .find((gateway, job_id, slot_ms))
                .filter(cron_misses::recovery.is_null()),
        )
        .set((
            cron_misses::recovery.eq(CronRecovery::Forcing.as_str()),
            cron_misses::recovered_at_ms.eq(now_ms),
        ))
        .execute(&mut conn)?;
        Ok(n == 1)
    }

    /// How a claimed recovery ended: `forced` (the gateway took the run) or `failed`, in words.
    pub fn end_cron_recovery(
        &self,
        gateway: GatewayId,
        job_id: &str,
        slot_ms: i64,
        recovery: CronRecovery,
        detail: &str,
    ) -> Result<(), DbError> {
        let mut conn = self.conn()?;
        diesel::update(cron_misses::table.find((gateway, job_id, slot_ms)))
            .set((
                cron_misses::recovery.eq(recovery.as_str()),
                cron_misses::recovery_detail.eq(detail),
            ))
            .execute(&mut conn)?;
        Ok(())
    }

    /// The misses on record of job `job_id` (or of every job of `gateway`), newest first.
    pub fn cron_misses(
        &self,
        gateway: GatewayId,
        job_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<CronMissRow>, DbError> {
        let mut conn = self.conn()?;
        let mut q = cron_misses::table
            .filter(cron_misses::gateway_id.eq(gateway))
            .into_boxed();
        if let Some(job) = job_id {
            q = q.filter(cron_misses::job_id.eq(job.to_owned()));
        }
        Ok(q.order(cron_misses::slot_ms.desc())
            .limit(limit)
            .select(CronMissRow::as_select())
            .load(&mut conn)?)
    }

    /// Forgets misses found before `before_ms` (the record is kept 30 days).
    pub fn prune_cron_misses(&self, before_ms: i64) -> Result<usize, DbError> {
        let mut conn = self.conn()?;
        Ok(
            diesel::delete(cron_misses::table.filter(cron_misses::found_at_ms.lt(before_ms)))
                .execute(&mut conn)?,
        )
    }

    /// The fleet's job counts, for the gauges.
    pub fn cron_counts(&self) -> Result<CronCounts, DbError> {
        let mut conn = self.conn()?;
        let jobs = cron_jobs::table
            .group_by((cron_jobs::gateway_own, cron_jobs::enabled))
            .select((
                cron_jobs::gateway_own,
                cron_jobs::enabled,
                diesel::dsl::count_star(),
            ))
            .load::<(bool, bool, i64)>(&mut conn)?;
        let duplicates = cron_jobs::table
            .filter(cron_jobs::duplicate_of.is_not_null())
            .count()
            .get_result(&mut conn)?;
        Ok(CronCounts { jobs, duplicates })
    }
}

/// `text` with LIKE's wildcards and its escape character taken literally.
fn like_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_support::sqlite_store;
    use gateway_supervisor_actors::model::{Caller, NewGateway};
    use gateway_supervisor_actors::store::GatewayStore;

    fn job(gateway: GatewayId, id: &str, name: &str) -> CronJobRow {
        CronJobRow {
            gateway_id: gateway,
            job_id: id.into(),
            name: name.into(),
            declaration_key: None,
            agent: Some("main".into()),
            enabled: true,
            gateway_own: false,
            schedule: r#"{"kind":"cron","expr":"* * * * *"}"#.into(),
            next_run_at_ms: None,
            last_run_at_ms: None,
            last_run_status: None,
            config_revision: None,
            duplicate_of: None,
            seen_at_ms: 1,
            judged_until_ms: None,
        }
    }

    fn gateway(store: &Store, name: &str) -> GatewayId {
        let new = NewGateway {
            name: name.into(),
            host: format!("{name}.invalid"),
            port: 18789,
            ..NewGateway::default()
        };
        store
            .insert_gateway(&new, &Caller::system("test"))
            .unwrap()
            .id
    }

    fn list(g: GatewayId, rev: &str, jobs: Vec<CronJobRow>) -> CronListRead {
        CronListRead {
            gateway_id: g,
            snapshot_revision: Some(rev.into()),
            scheduler_enabled: Some(true),
            jobs,
            unreadable: 0,
            read_at_ms: 5,
        }
    }

    #[test]
    fn a_new_list_replaces_the_old_and_keeps_what_the_watchdog_judged() {
        let (store, _dir) = sqlite_store();
        let g = gateway(&store, "a");
        assert!(
            store
                .record_cron_list(&list(
                    g,
                    "r1",
                    vec![job(g, "j1", "one"), job(g, "j2", "two")]
                ))
                .unwrap()
        );
        store.record_cron_judgement(g, "j1", 700, &[]).unwrap();
        let mut renamed = job(g, "j1", "uno");
        renamed.judged_until_ms = None;
        let mut off = job(g, "j3", "three");
        off.enabled = false;
        store
            .record_cron_list(&list(g, "r2", vec![renamed, off]))
            .unwrap();
        let all = store.cron_jobs(&CronJobFilter::default(), 10).unwrap();
        let ids: Vec<_> = all.iter().map(|j| j.job_id.as_str()).collect();
        assert_eq!(ids, ["j1", "j3"]);
        assert_eq!(all[0].name, "uno");
        assert_eq!(all[0].judged_until_ms, Some(700));
        // Disabled: judged up to the read (a slot while off is no skip once it is on again).
        assert_eq!(all[1].judged_until_ms, Some(5));
        // Kept at r2 with its scheduler on: read again at r2, nothing is written; at another
        // revision, or with the scheduler now off, the list is read whole.
        let kept = store.cron_jobs_if_kept(g, "r2", true).unwrap().unwrap();
        assert_eq!(kept.len(), 2);
        assert_eq!(store.cron_jobs_if_kept(g, "r1", true).unwrap(), None);
        assert_eq!(store.cron_jobs_if_kept(g, "r2", false).unwrap(), None);
    }

    #[test]
    fn pages_over_a_set_of_gateways_are_in_order_and_filtered() {
        let (store, _dir) = sqlite_store();
        let gs: Vec<GatewayId> = (0..3).map(|i| gateway(&store, &format!("g{i}"))).collect();
        for g in &gs {
            let mut own = job(*g, "sys", "Heartbeat");
            own.gateway_own = true;
            store
                .record_cron_list(&list(
                    *g,
                    "r",
                    vec![
                        job(*g, "a", "Morning 50%_report"),
                        job(*g, "b", "evening"),
                        own,
                    ],
                ))
                .unwrap();
        }
        let set: std::collections::BTreeSet<_> = [gs[2], gs[0]].into_iter().collect();
        let filter = CronJobFilter {
            gateways: Some(set),
            ..Default::default()
        };
        let page = store.cron_jobs(&filter, 3).unwrap();
        let got: Vec<_> = page
            .iter()
            .map(|j| (j.gateway_id, j.job_id.as_str()))
            .collect();
        assert_eq!(got, [(gs[0], "a"), (gs[0], "b"), (gs[2], "a")]);
        let next = CronJobFilter {
            after: Some((gs[2], "a".into())),
            ..filter.clone()
        };
        assert_eq!(store.cron_jobs(&next, 3).unwrap().len(), 1);
        // A name search is case-blind and takes `%` and `_` as themselves.
        let q = |text: &str| CronJobFilter {
            q: Some(text.into()),
            ..Default::default()
        };
        assert_eq!(store.cron_jobs(&q("MORNING"), 10).unwrap().len(), 3);
        assert_eq!(store.cron_jobs(&q("50%_r"), 10).unwrap().len(), 3);
        assert_eq!(store.cron_jobs(&q("5_%"), 10).unwrap().len(), 0);
        // The gateways' own jobs only when asked for.
        let system = CronJobFilter {
            system: true,
            ..Default::default()
        };
        assert_eq!(store.cron_jobs(&system, 100).unwrap().len(), 9);
    }

    #[test]
    fn a_run_s_end_is_stored_on_its_job_and_an_older_one_does_not_undo_a_newer() {
        let (store, _dir) = sqlite_store();
        let g = gateway(&store, "a");
        store
            .record_cron_list(&list(g, "r", vec![job(g, "j", "nightly")]))
            .unwrap();
        assert!(
            store
                .record_cron_run(g, "j", 2_000, Some("ok"), Some(62_000))
                .unwrap()
        );
        assert!(
            !store
                .record_cron_run(g, "j", 1_000, Some("error"), None)
                .unwrap()
        );
        assert!(
            !store
                .record_cron_run(g, "other", 3_000, Some("ok"), None)
                .unwrap()
        );
        let j = store.cron_job(g, "j").unwrap().unwrap();
        assert_eq!(
            (
                j.last_run_at_ms,
                j.last_run_status.as_deref(),
                j.next_run_at_ms
            ),
            (Some(2_000), Some("ok"), Some(62_000))
        );
    }

    #[test]
    fn a_miss_is_found_once_and_recovered_at_most_once() {
        let (store, _dir) = sqlite_store();
        let g = gateway(&store, "a");
        store
            .record_cron_list(&list(g, "r", vec![job(g, "j", "nightly")]))
            .unwrap();
        let miss = CronMissRow {
            gateway_id: g,
            job_id: "j".into(),
            slot_ms: 60_000,
            job_name: "nightly".into(),
            cause: CronMissCause::Missed,
            found_at_ms: 200_000,
            recovery: None,
            recovery_detail: None,
            recovered_at_ms: None,
        };
        assert_eq!(
            store
                .record_cron_judgement(g, "j", 180_000, std::slice::from_ref(&miss))
                .unwrap()
                .len(),
            1
        );
        assert!(
            store
                .record_cron_judgement(g, "j", 240_000, &[miss])
                .unwrap()
                .is_empty(),
            "found again: not new"
        );
        let missed = CronJobFilter {
            status: Some(CronJobStatus::Missed),
            ..Default::default()
        };
        assert_eq!(store.cron_jobs(&missed, 10).unwrap().len(), 1);
        assert!(store.claim_cron_recovery(g, "j", 60_000, 1).unwrap());
        assert!(!store.claim_cron_recovery(g, "j", 60_000, 2).unwrap());
        store
            .end_cron_recovery(g, "j", 60_000, CronRecovery::Forced, "manual:j:1")
            .unwrap();
        assert!(store.cron_jobs(&missed, 10).unwrap().is_empty());
        // Kept 30 days: one found before the cut is forgotten, and only it.
        assert_eq!(store.prune_cron_misses(200_000).unwrap(), 0);
        assert_eq!(store.prune_cron_misses(200_001).unwrap(), 1);
        assert!(store.cron_misses(g, None, 10).unwrap().is_empty());
        // A deleted gateway takes its list and misses with it.
        store.delete_gateway(g, &Caller::system("test")).unwrap();
        assert!(store.cron_misses(g, None, 10).unwrap().is_empty());
        assert!(!store.record_cron_list(&list(g, "r", vec![])).unwrap());
    }
}
