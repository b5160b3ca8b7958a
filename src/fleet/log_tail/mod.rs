//! The central log tail: every `gateway_logs.interval`, each gateway this instance links that
//! advertises `logs.tail` is asked for its file log from the cursor its last answer gave
//! (`{cursor, limit, maxBytes}`; the first time, its last `initial_lines` lines), and every new
//! line is parsed, redacted and bounded ([`line::parse`]) and published as a `log` event — which
//! feeds `GET /api/logs` (the bounded buffer) and its live stream. Bounded: one read asks for
//! at most `max_lines` lines and `max_bytes` bytes, and the gateway's cursor is a byte offset
//! the daemon keeps per gateway (a gateway that restarted or rotated its file says `reset`, and
//! the read starts again from its tail). Each gateway's read is its own task, at most one per
//! gateway and [`MAX_READING`] in all, so a gateway that does not answer delays only itself.
//! In a cluster each instance tails the gateways it links, so every line is read once.

pub mod line;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::{Fleet, FleetError};
use crate::config::GatewayLogsConfig;
use gateway_supervisor_actors::events::EventKind;
use gateway_supervisor_actors::messages::GatewayLink;
use gateway_supervisor_actors::model::GatewayId;

/// Reads out at once, at most (a fleet of silent gateways cannot pile up tasks).
const MAX_READING: usize = 64;

/// One gateway's tail: where its last read ended, and whether a read is out now.
#[derive(Debug, Default)]
struct Tail {
    cursor: Option<u64>,
    reading: bool,
}

type Tails = Arc<Mutex<HashMap<GatewayId, Tail>>>;

fn lock(tails: &Tails) -> std::sync::MutexGuard<'_, HashMap<GatewayId, Tail>> {
    tails.lock().unwrap_or_else(|p| p.into_inner())
}

impl Fleet {
    /// Tails every linked gateway's log while the daemon runs. Each gateway's read is its own
    /// task: one that does not answer (until its deadline) holds up only its own next read.
    pub async fn log_tail_loop(self: Arc<Self>, cfg: GatewayLogsConfig) {
        if !cfg.enabled {
            return;
        }
        let mut tick = tokio::time::interval(cfg.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let tails: Tails = Arc::default();
        loop {
            tick.tick().await;
            if let Err(e) = self.clone().tail_round(&cfg, &tails).await {
                tracing::warn!(%e, "the log tail could not look at the fleet this round");
            }
        }
    }

    /// Starts a read of every linked gateway whose last read is over.
    async fn tail_round(
        self: Arc<Self>,
        cfg: &GatewayLogsConfig,
        tails: &Tails,
    ) -> Result<(), FleetError> {
        let targets = self.targets(None).await?;
        let mut all = lock(tails);
        all.retain(|id, _| {
            targets
                .iter()
                .any(|t| t.candidate.id == *id && t.link.is_some() && !t.elsewhere)
        });
        let mut reading = all.values().filter(|t| t.reading).count();
        for t in targets {
            let offers = t.offers("logs.tail");
            let (Some(link), false) = (t.link, t.elsewhere) else {
                continue;
            };
            if !offers || reading >= MAX_READING {
                continue;
            }
            let tail = all.entry(t.candidate.id).or_default();
            if tail.reading {
                continue;
            }
            tail.reading = true;
            reading += 1;
            let params = match tail.cursor {
                Some(c) => json!({"cursor": c, "limit": cfg.max_lines, "maxBytes": cfg.max_bytes}),
                None => json!({"limit": cfg.initial_lines, "maxBytes": cfg.max_bytes}),
            };
            let read = Read {
                id: t.candidate.id,
                name: t.candidate.name,
                link,
                params,
                max_lines: cfg.max_lines as usize,
            };
            actix::spawn(self.clone().read_tail(read, tails.clone()));
        }
        Ok(())
    }

    /// One read: its lines published, its cursor kept.
    async fn read_tail(self: Arc<Self>, r: Read, tails: Tails) {
        let answer = r
            .link
            .call("logs.tail", Some(r.params), self.deadlines.operation)
            .await;
        let answer = {
            let mut all = lock(&tails);
            let tail = all.get_mut(&r.id);
            match answer {
                Ok(answer) => {
                    if let Some(tail) = tail {
                        tail.reading = false;
                        if let Some(c) = answer.get("cursor").and_then(Value::as_u64) {
                            tail.cursor = Some(c);
                        }
                    }
                    answer
                }
                Err(e) => {
                    if let Some(tail) = tail {
                        tail.reading = false;
                    }
                    tracing::debug!(gateway = %r.name, %e, "logs.tail failed; next round");
                    return;
                }
            }
        };
        if answer.get("reset").and_then(Value::as_bool) == Some(true) {
            tracing::info!(gateway = %r.name, "the gateway's log was rotated or rewritten: reading from its tail");
        }
        let lines = answer.get("lines").and_then(Value::as_array);
        for raw in lines
            .into_iter()
            .flatten()
            .take(r.max_lines)
            .filter_map(Value::as_str)
        {
            self.events
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
