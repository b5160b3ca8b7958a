//! The runs that hold a drain: which they are (named in the progress, since the gateway's
//! blockers only count them) and aborting them. A 2026.9 gateway refuses everything but its
//! suspension's own methods while a suspension is held — `sessions.abort`, `chat.abort` and
//! `sessions.list` answer `UNAVAILABLE … unavailable during gateway suspension` (captured:
//! `testdata/openclaw-captures/2026.9.6/suspension_drain_abort.json`) — so an abort is done in
//! the order the gateway accepts: release the suspension, abort each run, suspend again under
//! a new request id. The gateway stays cordoned here throughout: between the release and the
//! new suspension only other clients could start work on it (docs/design.md, *Fleet
//! operations*).

use super::hands::Hands;
use serde_json::json;

use super::model::BlockingRun;
use crate::domain::SpawnId;
use crate::fleet::sessions::{SessionAction, control_method};
use gateway_supervisor_actors::bounded;
use gateway_supervisor_actors::messages::{ListSessions, RunsGoing};
use gateway_supervisor_actors::model::GatewayId;
use gateway_supervisor_actors::protocol::sessions::{AbortAnswer, SessionEntry, parse_list};

/// At most this many runs are named in a progress, or aborted in one round.
const MAX_RUNS: usize = 16;

/// What aborting did: the sessions whose runs were aborted, and those that could not be (with
/// the gateway's reason).
#[derive(Debug, Default)]
pub struct Aborted {
    pub aborted: Vec<String>,
    pub refused: Vec<String>,
}

/// The runs in `sessions` (one gateway's) and `spawns` (this daemon's running spawns there,
/// as (spawn id, session key, run id)), by session, sessions with a run first; at most
/// [`MAX_RUNS`].
pub fn blocking_runs(
    sessions: &[SessionEntry],
    spawns: &[(SpawnId, Option<String>, Option<String>)],
) -> Vec<BlockingRun> {
    let mut runs: Vec<BlockingRun> = sessions
        .iter()
        .filter(|s| s.running)
        .map(|s| BlockingRun {
            session_key: bounded::text(&s.key, 200),
            run_id: None,
            spawn_id: None,
        })
        .collect();
    for (spawn_id, key, run_id) in spawns {
        let Some(key) = key else { continue };
        let key = bounded::text(key, 200);
        let run = match runs.iter_mut().find(|r| r.session_key == key) {
            Some(run) => run,
            None => {
                runs.push(BlockingRun {
                    session_key: key,
                    run_id: None,
                    spawn_id: None,
                });
                runs.last_mut().expect("just pushed")
            }
        };
        run.spawn_id.get_or_insert_with(|| spawn_id.clone());
        if let Some(r) = run_id {
            run.run_id.get_or_insert_with(|| bounded::text(r, 128));
        }
    }
    runs.truncate(MAX_RUNS);
    runs
}

impl Hands {
    /// The runs this daemon knows of on gateway `id`: its session cache (as the gateway last
    /// listed them) and the spawns it started there that have not ended.
    pub(super) async fn known_runs(&self, id: GatewayId) -> Vec<BlockingRun> {
        let page = self
            .ctx
            .registry
            .send(ListSessions {
                agent: None,
                key: None,
                gateway_id: Some(id),
                limit: 200,
                within: None,
            })
            .await
            .map(|page| page.sessions)
            .unwrap_or_default();
        let spawns = self
            .ctx
            .stored(move |store| store.running_spawns_on(id, 500))
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|s| (s.id, s.session_key, s.run_id))
            .collect::<Vec<_>>();
        // Runs the gateway's list lacks (begun just before its suspension, which refuses
        // `sessions.list`): kept in the session cache, so they are listed and can be killed.
        let unlisted: Vec<String> = spawns
            .iter()
            .filter_map(|(_, key, _)| key.clone())
            .filter(|k| !page.iter().any(|s| &s.key == k))
            .collect();
        if !unlisted.is_empty() {
            self.ctx.registry.do_send(RunsGoing { id, keys: unlisted });
        }
        blocking_runs(&page, &spawns)
    }

    /// Releases the drain's suspension `release` (if any), then aborts every active run on
    /// gateway `id`: those its `sessions.list` shows now (readable once released) and those
    /// this daemon started there. `Err`: why nothing could be done this round.
    pub(super) async fn abort_runs(
        &self,
        id: GatewayId,
        release: Option<&str>,
    ) -> Result<Aborted, String> {
        if let Some(sid) = release {
            self.release(id, sid)
                .await
                .map_err(|e| format!("releasing the suspension: {e}"))?;
        }
        // Only the sessions with a run (2026.9.6's `activeOnly`): a gateway with thousands of
        // idle sessions lists the few that matter.
        let listed = self
            .ctx
            .call(
                id,
                "sessions.list",
                json!({"activeOnly": true, "limit": MAX_RUNS}),
            )
            .await
            .map_err(|e| format!("sessions.list: {e}"))?;
        let sessions = parse_list(&listed, id).unwrap_or_default();
        let mut runs = blocking_runs(&sessions, &[]);
        // A spawn's session the gateway does not list as active: asked too (a run that ended
        // meanwhile answers `no-active-run` and is not counted).
        for known in self.known_runs(id).await {
            if known.spawn_id.is_some() && !sessions.iter().any(|s| s.key == known.session_key) {
                runs.push(known);
            }
        }
        let target = self.ctx.target(id).ok_or("the gateway was deleted")?;
        let mut done = Aborted::default();
        for run in runs.into_iter().take(MAX_RUNS) {
            let key = run.session_key;
            let Some((method, params)) =
                control_method(SessionAction::Kill, &key, |m| target.offers(m))
            else {
                done.refused
                    .push(format!("{key}: the gateway offers no way to abort a run"));
                continue;
            };
            match self.ctx.call(id, method, params).await {
                // `no-active-run`: it had ended meanwhile (or its spawn's record was late).
                Ok(answer) if AbortAnswer::of(&answer) == AbortAnswer::NothingRunning => {}
                Ok(_) => done.aborted.push(key),
                Err(e) => done
                    .refused
                    .push(bounded::text(&format!("{key}: {e}"), 200)),
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_supervisor_actors::protocol::sessions::SessionStatus;

    fn session(key: &str, running: bool) -> SessionEntry {
        SessionEntry {
            key: key.into(),
            agent: Some("main".into()),
            model: None,
            status: SessionStatus::Active,
            running,
            total_tokens: 0,
            updated_at: None,
            gateway_id: GatewayId(1),
        }
    }

    #[test]
    fn a_run_is_named_by_its_session_with_the_spawn_and_run_that_started_it() {
        let runs = blocking_runs(
            &[
                session("agent:main:main", true),
                session("agent:main:idle", false),
            ],
            &[(
                "sp_1".into(),
                Some("agent:main:main".into()),
                Some("run-1".into()),
            )],
        );
        assert_eq!(
            runs,
            vec![BlockingRun {
                session_key: "agent:main:main".into(),
                run_id: Some("run-1".into()),
                spawn_id: Some("sp_1".into()),
            }]
        );
    }

    #[test]
    fn a_spawn_the_session_cache_has_not_seen_yet_is_named_too() {
        // A run started just before the suspension: the gateway refused the list refresh.
        let runs = blocking_runs(&[], &[("sp_2".into(), Some("agent:main:x".into()), None)]);
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].session_key, "agent:main:x");
        assert_eq!(runs[0].spawn_id.as_ref().map(SpawnId::as_str), Some("sp_2"));
    }

    #[test]
    fn idle_sessions_and_spawns_without_a_session_yet_are_not_blocking_runs() {
        let runs = blocking_runs(
            &[session("agent:main:idle", false)],
            &[("sp_3".into(), None, None)],
        );
        assert!(runs.is_empty(), "{runs:?}");
    }

    #[test]
    fn at_most_sixteen_runs_are_named() {
        let many: Vec<_> = (0..40).map(|i| session(&format!("k{i}"), true)).collect();
        assert_eq!(blocking_runs(&many, &[]).len(), MAX_RUNS);
    }
}
