//! The central log tail: each gateway this instance links that advertises `logs.tail` is
//! asked for its file log from the cursor its last answer gave (`{cursor, limit, maxBytes}`;
//! the first time, its last `initial_lines` lines), and every new line is parsed, redacted and
//! bounded ([`line::parse`]) and published as a `log` event — which feeds `GET /api/logs` (the
//! bounded buffer) and its live stream. When each gateway is read is [`schedule`]'s rule: every
//! `gateway_logs.interval` while it writes, less often while it is quiet (up to
//! `idle_interval`), most overdue first. Bounded: one read asks for at most `max_lines` lines
//! and `max_bytes` bytes, and the gateway's cursor is a byte offset the daemon keeps per
//! gateway (a gateway that restarted or rotated its file says `reset`, and the read starts
//! again from its tail). Each gateway's read is its own task, at most one per gateway and
//! [`MAX_READING`] under way at once, so a gateway that does not answer delays only itself.
//! In a cluster each instance tails the gateways it links, so every line is read once.

pub mod line;
pub mod schedule;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::FleetError;
use super::context::FleetContext;
use crate::config::GatewayLogsConfig;
use gateway_supervisor_actors::events::EventKind;
use gateway_supervisor_actors::messages::{GatewayLink, LinksOf, Offering};
use gateway_supervisor_actors::model::GatewayId;
use schedule::{ReadEnd, Schedule};

/// Reads under way at once, at most (a fleet of silent gateways cannot pile up calls).
const MAX_READING: usize = 64;

type Shared = Arc<Mutex<Schedule>>;

fn lock(schedule: &Shared) -> std::sync::MutexGuard<'_, Schedule> {
    schedule.lock().unwrap_or_else(|p| p.into_inner())
}

/// The gateways' logs, tailed into the event bus.
#[derive(Clone)]
pub struct LogTail {
    ctx: Arc<FleetContext>,
}

impl LogTail {
    pub fn new(ctx: Arc<FleetContext>) -> Self {
        LogTail { ctx }
    }
    /// Tails every linked gateway's log while the daemon runs. Each gateway's read is its own
    /// task: one that does not answer (until its deadline) holds up only its own next read.
    pub async fn log_tail_loop(self, cfg: GatewayLogsConfig) {
        if !cfg.enabled {
            return;
        }
        let mut tick = tokio::time::interval(cfg.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let schedule: Shared = Arc::new(Mutex::new(Schedule::new(cfg.interval, cfg.idle_interval)));
        let permits = Arc::new(Semaphore::new(MAX_READING));
        loop {
            tick.tick().await;
            if let Err(e) = self.clone().tail_round(&cfg, &schedule, &permits).await {
                tracing::warn!(%e, "the log tail could not look at the fleet this round");
            }
        }
    }

    /// Starts the reads the schedule says are due.
    async fn tail_round(
        self,
        cfg: &GatewayLogsConfig,
        schedule: &Shared,
        permits: &Arc<Semaphore>,
    ) -> Result<(), FleetError> {
        let readable = self
            .ctx
            .registry
            .send(Offering("logs.tail"))
            .await
            .map_err(FleetError::Registry)?;
        // Every read due is started; the permits keep MAX_READING under way at once.
        let due = lock(schedule).due(&readable, Instant::now());
        if due.is_empty() {
            return Ok(());
        }
        let ids = due.iter().map(|d| d.id).collect();
        let links = match self.ctx.registry.send(LinksOf(ids)).await {
            Ok(links) => links,
            Err(e) => {
                // Not read this time: due again next round.
                let mut schedule = lock(schedule);
                for d in &due {
                    schedule.finished(d.id, ReadEnd::Failed, Instant::now());
                }
                return Err(FleetError::Registry(e));
            }
        };
        let mut by_id: std::collections::HashMap<GatewayId, (String, GatewayLink)> = links
            .into_iter()
            .map(|h| (h.id, (h.name, h.link)))
            .collect();
        for d in due {
            let Some((name, link)) = by_id.remove(&d.id) else {
                // Its link went away meanwhile.
                lock(schedule).finished(d.id, ReadEnd::Failed, Instant::now());
                continue;
            };
            let params = match d.cursor {
                Some(c) => json!({"cursor": c, "limit": cfg.max_lines, "maxBytes": cfg.max_bytes}),
                None => json!({"limit": cfg.initial_lines, "maxBytes": cfg.max_bytes}),
            };
            let read = Read {
                id: d.id,
                name,
                link,
                params,
                max_lines: cfg.max_lines as usize,
            };
            let (schedule, permits) = (schedule.clone(), permits.clone());
            actix::spawn(self.clone().read_tail(read, schedule, permits));
        }
        Ok(())
    }

    /// One read: its lines published, its cursor kept, its next read scheduled.
    async fn read_tail(self, r: Read, schedule: Shared, permits: Arc<Semaphore>) {
        let answer = {
            // The semaphore is never closed; without a permit there is nothing to read with.
            let Ok(_permit) = permits.acquire().await else {
                lock(&schedule).finished(r.id, ReadEnd::Failed, Instant::now());
                return;
            };
            r.link
                .call("logs.tail", Some(r.params), self.ctx.deadlines.operation)
                .await
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => {
                lock(&schedule).finished(r.id, ReadEnd::Failed, Instant::now());
                tracing::debug!(gateway = %r.name, %e, "logs.tail failed; next round");
                return;
            }
        };
        if answer.get("reset").and_then(Value::as_bool) == Some(true) {
            tracing::info!(gateway = %r.name, "the gateway's log was rotated or rewritten: reading from its tail");
        }
        let lines: Vec<&str> = answer
            .get("lines")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .take(r.max_lines)
            .filter_map(Value::as_str)
            .collect();
        lock(&schedule).finished(
            r.id,
            ReadEnd::Answered {
                lines: lines.len(),
                cursor: answer.get("cursor").and_then(Value::as_u64),
            },
            Instant::now(),
        );
        for raw in lines {
            self.ctx
                .events
                .publish(EventKind::Log, Some(r.id), line::parse(raw).payload());
        }
    }
}

/// A read to make.
struct Read {
    id: GatewayId,
    name: String,
    link: GatewayLink,
    params: Value,
    max_lines: usize,
}
