//! The stuck-session watchdog: every `watchdog.interval`, each gateway this instance links
//! that reports run activity and has a run in progress in its cached session list, or a
//! session the watchdog follows (others once per stall threshold: [`rule::worth_a_look`]),
//! is asked for its active sessions (`sessions.list {activeOnly}`),
//! what its link heard about their runs is added ([`GatewayLink::activity`]), and the ladder
//! ([`rule::step`], pure) decides; this module only carries out — an event and an audit row
//! for every step, the abort or reset call (fenced to the process the list came from), the
//! gateway's `degraded` verdict, a safe restart where allowed — and counts
//! (docs/design.md, *Stuck-session watchdog*).
//!
//! What it remembers lives in this task's memory: a daemon restart starts every session's
//! clock again (it can only wait longer, never act sooner). In a cluster each instance
//! watches the gateways it links, so a session has one watcher.

mod event;
pub mod rule;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_util::StreamExt;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use serde_json::{Value, json};

use super::FleetError;
use super::context::FleetContext;
use super::operation::OperationOrder;
use super::operation::Operations;
use super::operation::model::{
    DrainParams, DrainTimeoutPolicy, KindParams, OperationKind, OperationParams,
};
use crate::config::WatchdogConfig;
use crate::domain::ApprovalId;
use event::{Outcome, Step};
pub use event::{WatchdogEvent, WatchdogStep};
use gateway_supervisor_actors::bounded;
use gateway_supervisor_actors::events::EventKind;
use gateway_supervisor_actors::link::activity::SessionActivity;
use gateway_supervisor_actors::messages::{GatewayLink, LinkedHereOffering};
use gateway_supervisor_actors::model::{Caller, GatewayId};
use gateway_supervisor_actors::unix_now_ms;
use rule::{Decision, Fingerprint, Ladder, Remedy, Seen, Watched};

/// Gateways looked at at once.
const CONCURRENCY: usize = 16;

/// Active sessions asked for per gateway and round (a gateway with more is watched in part,
/// and says so in the log).
const PAGE: u64 = 500;
/// Run ids kept per session (a session runs a handful at once).
const MAX_RUN_IDS: usize = 16;

/// `sessions_stalled` and `watchdog_steps_total{step, outcome}`.
#[derive(Clone)]
pub struct WatchdogMetrics {
    stalled: IntGauge,
    steps: IntCounterVec,
}

impl WatchdogMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        Ok(WatchdogMetrics {
            stalled: IntGauge::new(
                "sessions_stalled",
                "Sessions the watchdog holds stalled now (being remedied, or unrecovered), on the gateways this instance links.",
            )?,
            steps: IntCounterVec::new(
                Opts::new(
                    "watchdog_steps_total",
                    "Stuck-session watchdog steps: step (stalled, abort, reset, restart, unrecovered, recovered) by outcome (detected, taken, dry_run, failed, effective, ineffective, by_itself).",
                ),
                &["step", "outcome"],
            )?,
        })
    }

    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.stalled.clone()))?;
        registry.register(Box::new(self.steps.clone()))
    }

    fn count(&self, step: &'static str, outcome: &'static str) {
        self.steps.with_label_values(&[step, outcome]).inc();
    }
}

/// Whether a gateway's `sessions.list` reports run activity (`activeOnly`, `hasActiveRun`,
/// `activeRunIds`): the 2026.9 releases, which are also the ones with the suspend methods.
/// Older releases have neither, so the watchdog cannot tell a stalled run from an idle one
/// there and leaves them alone.
const RUN_ACTIVITY_METHODS: &[&str] = &["sessions.list", "gateway.suspend.prepare"];

/// One active session from a `sessions.list` row.
struct Row {
    agent: Option<String>,
    seen: Seen,
}

fn rows(answer: &Value, cfg: &WatchdogConfig) -> HashMap<String, Row> {
    let Some(list) = answer.get("sessions").and_then(Value::as_array) else {
        return HashMap::new();
    };
    list.iter()
        .filter_map(|s| {
            let key = s
                .get("key")
                .and_then(Value::as_str)
                .and_then(bounded::identifier)
                .filter(|k| k.len() <= bounded::SHORT * 2)?;
            let agent = s
                .get("agentId")
                .and_then(Value::as_str)
                .and_then(bounded::identifier)
                .map(|a| bounded::text(a, bounded::SHORT));
            let mut run_ids: Vec<String> = s
                .get("activeRunIds")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter_map(bounded::identifier)
                .take(MAX_RUN_IDS)
                .map(|r| bounded::text(r, bounded::SHORT))
                .collect();
            run_ids.sort_unstable();
            let seen = Seen {
                active: s.get("hasActiveRun").and_then(Value::as_bool) == Some(true),
                fingerprint: Fingerprint {
                    updated_at: s.get("updatedAt").and_then(Value::as_i64),
                    total_tokens: s.get("totalTokens").and_then(Value::as_i64).unwrap_or(0),
                    run_ids,
                },
                last_event_ms: None,
                in_tool_call: false,
                stall_after: cfg.stall_after_for(agent.as_deref()),
                waiting_on_approval: None,
            };
            Some((key.to_owned(), Row { agent, seen }))
        })
        .collect()
}

/// The watchdog's memory: per gateway, per session key.
#[derive(Default)]
struct Memory {
    watched: HashMap<GatewayId, HashMap<String, (Option<String>, Watched)>>,
    /// Gateways told they are degraded (so the verdict is sent only when it changes).
    degraded: HashSet<GatewayId>,
    /// When each gateway was last asked (see [`rule::worth_a_look`]).
    looked: HashMap<GatewayId, std::time::Instant>,
}

/// The stuck-session watchdog: stalled sessions found and recovered, step by step.
#[derive(Clone)]
pub struct Watchdog {
    ctx: Arc<FleetContext>,
    operations: Operations,
}

impl Watchdog {
    pub fn new(ctx: Arc<FleetContext>, operations: Operations) -> Self {
        Watchdog { ctx, operations }
    }
    /// Watches stalled sessions every `cfg.interval`, while the daemon runs.
    pub async fn watchdog_loop(self, cfg: WatchdogConfig, metrics: WatchdogMetrics) {
        if !cfg.enabled {
            return;
        }
        let mut tick = tokio::time::interval(cfg.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut memory = Memory::default();
        loop {
            tick.tick().await;
            if let Err(e) = self.watch_round(&cfg, &metrics, &mut memory).await {
                tracing::warn!(%e, "the watchdog could not look at the fleet this round");
            }
            let stalled = memory
                .watched
                .values()
                .flat_map(HashMap::values)
                .filter(|(_, w)| w.stage != rule::Stage::Watching)
                .count();
            metrics
                .stalled
                .set(i64::try_from(stalled).unwrap_or(i64::MAX));
        }
    }

    async fn watch_round(
        &self,
        cfg: &WatchdogConfig,
        metrics: &WatchdogMetrics,
        memory: &mut Memory,
    ) -> Result<(), FleetError> {
        // The fleet in brief first; full targets only for the few worth a look this round.
        let here = self
            .ctx
            .registry
            .send(LinkedHereOffering(RUN_ACTIVITY_METHODS))
            .await
            .map_err(FleetError::Registry)?;
        let ids: HashSet<GatewayId> = here.iter().map(|g| g.id).collect();
        // Gateways gone, or linked elsewhere now: their sessions are someone else's.
        memory.watched.retain(|id, _| ids.contains(id));
        memory.degraded.retain(|id| ids.contains(id));
        memory.looked.retain(|id, _| ids.contains(id));
        let now = std::time::Instant::now();
        let shortest_stall = cfg.shortest_stall_after();
        let due: Vec<GatewayId> = here
            .iter()
            .filter(|g| g.offers_all)
            .filter(|g| {
                let known = rule::Known {
                    running_cached: g.running_sessions,
                    following: memory.watched.get(&g.id).map_or(0, HashMap::len),
                    since_last_look: now
                        .saturating_duration_since(*memory.looked.entry(g.id).or_insert(now)),
                };
                rule::worth_a_look(known, shortest_stall)
            })
            .map(|g| g.id)
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        let targets = self.ctx.targets().linked_of(&due);
        let mut looks = Vec::new();
        for t in targets {
            // Unlinked, or linked elsewhere, since the brief: next round.
            let (Some(link), false) = (t.link.clone(), t.elsewhere) else {
                continue;
            };
            memory.looked.insert(t.candidate.id, now);
            let ladder = Ladder {
                verify_after: cfg.verify_after,
                dry_run: cfg.dry_run,
                abort: cfg.abort,
                reset: cfg.reset,
                restart: cfg.restart,
                restart_drain_timeout: cfg.restart_drain_timeout,
                offers_abort: t.offers("sessions.abort"),
                offers_reset: t.offers("sessions.reset"),
            };
            let gateway = Gateway {
                id: t.candidate.id,
                name: t.candidate.name.to_string(),
                boot_id: t.boot_id.clone(),
                link,
            };
            looks.push(async move {
                let seen = self.look(&gateway).await;
                (gateway, ladder, seen)
            });
        }
        // Looked at a few at a time (one that does not answer holds up only its own look);
        // the ladder then goes through them one by one.
        let mut seen = futures_util::stream::iter(looks).buffer_unordered(CONCURRENCY);
        while let Some((gateway, ladder, seen)) = seen.next().await {
            if let Some(look) = seen {
                self.watch_gateway(&gateway, look, cfg, &ladder, metrics, memory)
                    .await;
            }
        }
        Ok(())
    }

    /// A gateway's active sessions and what its link heard of their runs; `None` when it did
    /// not answer (next round).
    async fn look(&self, g: &Gateway) -> Option<Look> {
        let asked = g
            .link
            .call(
                "sessions.list",
                Some(json!({"activeOnly": true, "limit": PAGE})),
                self.ctx.deadlines.operation,
            )
            .await;
        match asked {
            Ok(answer) => Some(Look {
                answer,
                activity: g.link.activity().await,
            }),
            Err(e) => {
                tracing::debug!(gateway = %g.name, %e, "watchdog: sessions.list failed; next round");
                None
            }
        }
    }

    async fn watch_gateway(
        &self,
        g: &Gateway,
        Look { answer, activity }: Look,
        cfg: &WatchdogConfig,
        ladder: &Ladder,
        metrics: &WatchdogMetrics,
        memory: &mut Memory,
    ) {
        if answer.get("hasMore").and_then(Value::as_bool) == Some(true) {
            tracing::warn!(gateway = %g.name, "watchdog: more than {PAGE} active sessions; the rest are not watched this round");
        }
        let mut rows = rows(&answer, cfg);
        // The approvals this gateway's runs wait on, by session (the inbox's, stored).
        let gateway_id = g.id;
        let waiting: HashMap<String, ApprovalId> = self
            .ctx
            .stored(move |store| store.pending_approvals(Some(gateway_id)))
            .await
            .unwrap_or_default()
            .into_iter()
            .filter_map(|a| a.session_key.map(|key| (key, a.id)))
            .collect();
        for (key, row) in rows.iter_mut() {
            row.seen.waiting_on_approval = waiting.get(key).cloned();
            let a = activity
                .get(key)
                .cloned()
                .unwrap_or_else(SessionActivity::default);
            row.seen.last_event_ms = (a.last_progress_ms > 0).then_some(a.last_progress_ms);
            row.seen.in_tool_call = a.in_tool_call();
        }
        let now = unix_now_ms();
        let watched = memory.watched.entry(g.id).or_default();
        let keys: HashSet<String> = watched.keys().chain(rows.keys()).cloned().collect();
        for key in keys {
            let row = rows.get(&key);
            let was = watched.get(&key);
            let agent = row
                .map(|r| r.agent.clone())
                .or_else(|| was.map(|(a, _)| a.clone()))
                .flatten();
            let (next, decisions) =
                rule::step(was.map(|(_, w)| w), row.map(|r| &r.seen), ladder, now);
            let stalled_runs = next
                .as_ref()
                .or(was.map(|(_, w)| w))
                .map(|w| w.stalled_runs.clone())
                .unwrap_or_default();
            match next {
                Some(w) => {
                    watched.insert(key.clone(), (agent.clone(), w));
                }
                None => {
                    watched.remove(&key);
                }
            }
            let s = Subject {
                key: &key,
                agent: agent.as_deref(),
                runs: &stalled_runs,
            };
            for d in decisions {
                self.carry_out(g, &s, d, ladder, metrics).await;
            }
        }
        let unrecovered = watched.values().any(|(_, w)| w.unrecovered());
        if unrecovered != memory.degraded.contains(&g.id) {
            g.link.sessions_unrecovered(unrecovered).await;
            if unrecovered {
                memory.degraded.insert(g.id);
            } else {
                memory.degraded.remove(&g.id);
            }
        }
    }

    /// One decision: the effect, the event, the audit row, the count.
    async fn carry_out(
        &self,
        g: &Gateway,
        s: &Subject<'_>,
        d: Decision,
        ladder: &Ladder,
        metrics: &WatchdogMetrics,
    ) {
        let by = Caller {
            api_key_id: None,
            label: "watchdog".into(),
            tenant: None,
        };
        let (step, outcome, mut details): (Step, Outcome, Value) = match d {
            Decision::Stalled { idle_ms, would } => (
                Step::Stalled,
                Outcome::Detected,
                json!({"idle_seconds": idle_ms / 1000, "dry_run": ladder.dry_run, "would": would}),
            ),
            Decision::Take(remedy) => {
                let answered = self.remedy(g, s.key, remedy).await;
                match answered {
                    Ok(answer) => (
                        Step::Remedy(remedy),
                        Outcome::Taken,
                        json!({"answer": bounded::json(answer, 1024)}),
                    ),
                    Err(e) => (
                        Step::Remedy(remedy),
                        Outcome::Failed,
                        json!({"error": bounded::text(&e.to_string(), bounded::MESSAGE)}),
                    ),
                }
            }
            Decision::Ineffective(remedy) => (
                Step::Remedy(remedy),
                Outcome::Ineffective,
                json!({"recovery": "ineffective",
                       "verify_after_seconds": ladder.verify_after.as_secs_f64()}),
            ),
            Decision::Unrecovered { restart } => {
                let mut details = json!({"dry_run": ladder.dry_run, "gateway_degraded": true});
                if restart {
                    let started = self
                        .restart_for_watchdog(g.id, ladder.restart_drain_timeout, &by)
                        .await;
                    metrics.count("restart", if started.is_ok() { "taken" } else { "failed" });
                    details["restart"] = match started {
                        Ok(op) => json!({"operation_id": op}),
                        Err(e) => json!({"error": bounded::text(&e.to_string(), bounded::MESSAGE)}),
                    };
                }
                (Step::Unrecovered, Outcome::Reported, details)
            }
            Decision::WaitingOnApproval { approval_id } => (
                Step::WaitingOnApproval,
                Outcome::Detected,
                json!({"approval_id": approval_id}),
            ),
            Decision::Recovered { after } => match after {
                Some(r) => {
                    metrics.count(r.as_str(), "effective");
                    (
                        Step::Recovered,
                        Outcome::Effective,
                        json!({"after": r.as_str(), "recovery": "effective"}),
                    )
                }
                None => (
                    Step::Recovered,
                    Outcome::ByItself,
                    json!({"recovery": "by_itself"}),
                ),
            },
        };
        let (step_name, outcome_name) = (step.as_str(), outcome.as_str());
        metrics.count(step_name, outcome_name);
        details["step"] = json!(step_name);
        details["outcome"] = json!(outcome_name);
        details["session_key"] = json!(s.key);
        details["agent_id"] = json!(s.agent);
        details["run_ids"] = json!(s.runs);
        details["gateway_name"] = json!(g.name);
        let session = bounded::text(s.key, bounded::SHORT);
        if outcome.worth_a_warning() {
            tracing::warn!(gateway = %g.name, %session, step = step_name, outcome = outcome_name, "watchdog");
        } else {
            tracing::info!(gateway = %g.name, %session, step = step_name, outcome = outcome_name, "watchdog");
        }
        self.ctx
            .audited(
                &by,
                step.audit_action(),
                ("session", s.key.to_owned()),
                json!({"gateway_id": g.id, "details": details.clone()}),
            )
            .await;
        let mut rest = details.as_object().cloned().unwrap_or_default();
        rest.remove("step");
        rest.remove("session_key");
        let event = WatchdogEvent {
            step: step.word(),
            session_key: s.key.to_owned(),
            details: rest,
        };
        self.ctx.events.publish(
            EventKind::SessionWatchdog,
            Some(g.id),
            serde_json::to_value(&event).unwrap_or(Value::Null),
        );
    }

    /// The remedy's call, fenced to the gateway process the session list came from.
    async fn remedy(&self, g: &Gateway, key: &str, remedy: Remedy) -> Result<Value, FleetError> {
        let (method, params) = match remedy {
            Remedy::Abort => ("sessions.abort", json!({"key": key})),
            Remedy::Reset => ("sessions.reset", json!({"key": key, "reason": "reset"})),
        };
        self.ctx
            .call_fenced(g.id, method, params, g.boot_id.as_deref())
            .await
    }

    /// A restart of one gateway: the rolling-restart machinery (drained, fenced to its
    /// process, back = health + `/readyz`), asked past the work still there when the drain
    /// times out — the wedged run holds the drain, and the restart is what frees it.
    async fn restart_for_watchdog(
        &self,
        id: GatewayId,
        drain_timeout: std::time::Duration,
        by: &Caller,
    ) -> Result<crate::domain::OperationId, FleetError> {
        let order = OperationOrder {
            kind: OperationKind::RollingRestart,
            gateways: vec![id],
            params: OperationParams {
                max_unavailable: 1,
                wait_ready_s: 120,
                abort_on_failure: true,
                canary: 0,
                of: KindParams::Drain(DrainParams {
                    drain_timeout_s: drain_timeout.as_secs().max(1),
                    force_after_drain: true,
                    on_drain_timeout: DrainTimeoutPolicy::Release,
                }),
            },
        };
        Ok(self.operations.start_operation(order, by).await?.id)
    }
}

/// What a look at a gateway found: its `sessions.list {activeOnly}` answer and what its link
/// heard of the runs.
struct Look {
    answer: Value,
    activity: std::collections::BTreeMap<String, SessionActivity>,
}

/// The gateway a round looks at.
struct Gateway {
    id: GatewayId,
    name: String,
    boot_id: Option<String>,
    link: GatewayLink,
}

/// The session a decision is about.
struct Subject<'a> {
    key: &'a str,
    agent: Option<&'a str>,
    runs: &'a [String],
}
