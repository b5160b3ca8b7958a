//! Judging drift: each gateway linked here, when its link connects, when a profile changes
//! (here, or on another instance within [`super::VERSION_POLL`]) and every
//! `config.drift_interval`; the judgement stored, announced when it changes, counted.

use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::drift::{self, DriftState, Judged, Live};
use super::profile::{self, Profile};
use super::{FleetConfig, VERSION_POLL};
use crate::db::config_profiles::DriftRecord;
use crate::fleet::FleetError;
use gateway_supervisor_actors::events::EventKind;
use gateway_supervisor_actors::labels::Labels;
use gateway_supervisor_actors::model::{GatewayId, LinkPhase};
use gateway_supervisor_actors::unix_now_ms;

/// Gateways read at once in a full round (`config.get` took 785 ms on a real 2026.9.6).
const AT_ONCE: usize = 16;

impl FleetConfig {
    /// Judges drift until the daemon stops.
    pub async fn run(self: Arc<Self>) {
        let (_, mut events) = self.events.subscribe_after(None);
        let mut every = tokio::time::interval(self.cfg.drift_interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut poll = tokio::time::interval(VERSION_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut version = None;
        // The first round is the links' connects (each judged as it connects), not a round of
        // gateways not connected yet.
        every.tick().await;
        loop {
            tokio::select! {
                _ = every.tick() => self.judge_all().await,
                _ = self.changed.notified() => {
                    // Changed here: the poll need not judge the same change again.
                    if let Ok(now) = self.stored(|s| s.config_profiles_version()).await {
                        version = Some(now);
                    }
                    self.judge_all().await;
                }
                _ = poll.tick() => {
                    let Ok(now) = self.stored(|s| s.config_profiles_version()).await else { continue };
                    if version.replace(now).is_some_and(|before| before != now) {
                        self.judge_all().await;
                    }
                }
                event = events.recv() => match event {
                    Ok(e) if e.kind == EventKind::ConnectionChanged
                        && e.payload.get("state").and_then(Value::as_str)
                            == Some(LinkPhase::Connected.as_str()) =>
                    {
                        if let Some(id) = e.gateway_id {
                            self.judge_one(id).await;
                        }
                    }
                    // The gateway said its config changed (a write through it, by anyone).
                    Ok(e) if e.kind == EventKind::GatewayConfigChanged => {
                        if let Some(id) = e.gateway_id {
                            self.judge_one(id).await;
                        }
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                },
            }
        }
    }

    /// Every gateway linked here, then the gauges.
    async fn judge_all(&self) {
        let Ok(profiles) = self.profiles().await else {
            tracing::warn!("config drift not judged: profiles not read");
            return;
        };
        let gateways = self.hands.gateway_labels(None);
        let profiles = &profiles;
        let (picked, unpicked): (Vec<_>, Vec<_>) = gateways
            .into_iter()
            .partition(|(_, _, labels)| profiles.iter().any(|p| p.selector.matches(labels)));
        self.forget(unpicked.into_iter().map(|(id, _, _)| id).collect())
            .await;
        futures_util::stream::iter(picked)
            .for_each_concurrent(AT_ONCE, |(id, _, labels)| async move {
                self.judge(id, &labels, profiles).await;
            })
            .await;
        if let Err(e) = self.stored(|s| s.prune_config_drift()).await {
            tracing::warn!(%e, "could not forget the drift of deleted gateways");
        }
        self.count().await;
    }

    /// Forgets the judgements stored for these gateways, which no profile picks: one read of
    /// which gateways have one, and a delete for each that has (rarely any). A delete per
    /// gateway per round, each on the blocking pool 16 at once, was 100 writes every
    /// `config.drift_interval` for a fleet of 100 without a single profile, and the pool's
    /// threads grew from 0 to 31, 2.6 MB of resident memory the daemon kept.
    async fn forget(&self, unpicked: std::collections::HashSet<GatewayId>) {
        if unpicked.is_empty() {
            return;
        }
        let forgot = self
            .stored(move |s| {
                let judged = s.config_drift_gateways()?;
                let stale: Vec<GatewayId> = judged
                    .into_iter()
                    .filter(|id| unpicked.contains(id))
                    .collect();
                for id in &stale {
                    s.forget_config_drift(*id)?;
                }
                Ok(stale)
            })
            .await;
        match forgot {
            Ok(stale) if !stale.is_empty() => {
                tracing::info!(
                    gateways = stale.len(),
                    "config drift forgotten: no profile picks them"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(%e, "could not forget config drift"),
        }
    }

    /// Gateway `id` alone (its link connected, or a rollout wrote to it).
    pub(super) async fn judge_one(&self, id: GatewayId) {
        let Ok(profiles) = self.profiles().await else {
            return;
        };
        let gateways = self.hands.gateway_labels(Some(id));
        if let Some((_, _, labels)) = gateways.iter().find(|(g, _, _)| *g == id)
            && self.judge(id, labels, &profiles).await
        {
            self.count().await;
        }
    }

    async fn count(&self) {
        match self.stored(|s| s.config_drift()).await {
            Ok(rows) => self.metrics.set(
                &rows
                    .iter()
                    .map(|r| DriftState::parse(&r.state).unwrap_or(DriftState::Unknown))
                    .collect::<Vec<_>>(),
            ),
            Err(e) => tracing::warn!(%e, "could not count config drift"),
        }
    }

    /// Reads gateway `id` back and stores its judgement; announced when it changed (whether it
    /// did). A gateway no profile picks is not read (its judgement, if any, is forgotten); one
    /// linked by another instance is that instance's to judge.
    async fn judge(&self, id: GatewayId, labels: &Labels, profiles: &[Profile]) -> bool {
        let (desired, names) = profile::desired_for(profiles, labels);
        if names.is_empty() {
            return match self.stored(move |s| s.forget_config_drift(id)).await {
                Ok(forgot) => forgot,
                Err(e) => {
                    tracing::warn!(gateway_id = id.get(), %e, "could not forget config drift");
                    false
                }
            };
        }
        let (judged, reason) = match self.hands.call(id, "config.get", json!({})).await {
            Err(FleetError::LinkedElsewhere { .. }) => return false,
            Err(e) => (
                unknown(),
                Some(gateway_supervisor_actors::bounded::text(
                    &e.to_string(),
                    300,
                )),
            ),
            Ok(answer) => match Live::from_answer(&answer) {
                Some(live) => (drift::judge(&desired, &live), None),
                None => (
                    unknown(),
                    Some("config.get answered without a config".to_owned()),
                ),
            },
        };
        let detail = json!({
            "profiles": names,
            "paths": judged.paths,
            "unverified": judged.unverified,
            "reason": reason,
        });
        let record = DriftRecord {
            gateway_id: id,
            state: judged.state.as_str().to_owned(),
            detail: detail.to_string(),
            checked_at_ms: unix_now_ms(),
        };
        let saved = record.clone();
        let before = match self.stored(move |s| s.save_config_drift(&saved)).await {
            Ok(before) => before,
            Err(e) => {
                tracing::warn!(gateway_id = id.get(), %e, "could not store config drift");
                return false;
            }
        };
        let changed = before.is_none_or(|b| b.state != record.state || b.detail != record.detail);
        if changed {
            let paths: Vec<&str> = judged.paths.iter().map(|p| p.path.as_str()).collect();
            tracing::info!(
                gateway_id = id.get(),
                state = judged.state.as_str(),
                ?paths,
                "config drift judged"
            );
            self.events.publish(
                EventKind::GatewayConfigDrift,
                Some(id),
                json!({"state": judged.state, "profiles": names, "paths": paths, "reason": reason}),
            );
        }
        changed
    }
}

fn unknown() -> Judged {
    Judged {
        state: DriftState::Unknown,
        paths: Vec::new(),
        unverified: Vec::new(),
    }
}
