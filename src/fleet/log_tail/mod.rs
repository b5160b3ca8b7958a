//! The central log tail: every `gateway_logs.interval`, each gateway this instance links that
//! advertises `logs.tail` is asked for its file log from the cursor its last answer gave
//! (`{cursor, limit, maxBytes}`; the first time, its last `initial_lines` lines), and every new
//! line is parsed, redacted and bounded ([`line::parse`]) and published as a `log` event — which
//! feeds `GET /api/logs` (the bounded buffer) and its live stream. Bounded: one read asks for
//! at most `max_lines` lines and `max_bytes` bytes, and the gateway's cursor is a byte offset
//! the daemon keeps per gateway (a gateway that restarted or rotated its file says `reset`, and
//! the read starts again from its tail). In a cluster each instance tails the gateways it
//! links, so every line is read once.

pub mod line;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::{Fleet, FleetError};
use crate::config::GatewayLogsConfig;
use gateway_supervisor_actors::events::EventKind;
use gateway_supervisor_actors::model::GatewayId;

/// Where the last read of a gateway's log ended.
#[derive(Debug, Clone, Copy)]
struct Cursor(u64);

impl Fleet {
    /// Tails every linked gateway's log while the daemon runs.
    pub async fn log_tail_loop(self: Arc<Self>, cfg: GatewayLogsConfig) {
        if !cfg.enabled {
            return;
        }
        let mut tick = tokio::time::interval(cfg.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut cursors: HashMap<GatewayId, Cursor> = HashMap::new();
        loop {
            tick.tick().await;
            if let Err(e) = self.tail_round(&cfg, &mut cursors).await {
                tracing::warn!(%e, "the log tail could not look at the fleet this round");
            }
        }
    }

    async fn tail_round(
        &self,
        cfg: &GatewayLogsConfig,
        cursors: &mut HashMap<GatewayId, Cursor>,
    ) -> Result<(), FleetError> {
        let targets = self.targets(None).await?;
        cursors.retain(|id, _| {
            targets
                .iter()
                .any(|t| t.candidate.id == *id && t.link.is_some() && !t.elsewhere)
        });
        for t in targets {
            let (Some(link), false) = (t.link.as_ref(), t.elsewhere) else {
                continue;
            };
            if !t.methods.iter().any(|m| m == "logs.tail") {
                continue;
            }
            let id = t.candidate.id;
            let params = match cursors.get(&id) {
                Some(Cursor(c)) => {
                    json!({"cursor": c, "limit": cfg.max_lines, "maxBytes": cfg.max_bytes})
                }
                None => json!({"limit": cfg.initial_lines, "maxBytes": cfg.max_bytes}),
            };
            let answer = match link
                .call("logs.tail", Some(params), self.deadlines.operation)
                .await
            {
                Ok(answer) => answer,
                Err(e) => {
                    tracing::debug!(gateway = %t.candidate.name, %e, "logs.tail failed; next round");
                    continue;
                }
            };
            if let Some(c) = answer.get("cursor").and_then(Value::as_u64) {
                cursors.insert(id, Cursor(c));
            }
            if answer.get("reset").and_then(Value::as_bool) == Some(true) {
                tracing::info!(gateway = %t.candidate.name, "the gateway's log was rotated or rewritten: reading from its tail");
            }
            let lines = answer.get("lines").and_then(Value::as_array);
            for raw in lines
                .into_iter()
                .flatten()
                .take(cfg.max_lines as usize)
                .filter_map(Value::as_str)
            {
                self.events
                    .publish(EventKind::Log, Some(id), line::parse(raw).payload());
            }
        }
        Ok(())
    }
}
