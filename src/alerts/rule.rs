//! What deserves an alert, pure: [`Watch`] is fed what the registry shows each second (and the
//! operations that failed) and answers with the notifications to send. Each alert has a
//! subject (its kind and gateway); a subject fires once, resolves once, and — flap damping —
//! fires again only when `damping` has passed since it last fired, so one bouncing gateway
//! sends one alert (docs/design.md, *Alerts*).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::domain::approval::Approval;
use crate::managed::state::{ManagedEvent, ProcessState};
use gateway_supervisor_actors::model::{GatewayId, GatewayStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A gateway offline for `offline_after`.
    GatewayOffline,
    /// A gateway's circuit breaker opened.
    BreakerOpen,
    /// No gateway connected for `all_down_after`.
    AllGatewaysDown,
    /// Another gateway acts as primary.
    PrimaryChanged,
    /// A fleet operation failed.
    OperationFailed,
    /// The watchdog could not recover a stalled session.
    SessionStalled,
    /// An approval waited past `approvals.escalate_after` with nobody answering.
    ApprovalUnanswered,
    /// A managed gateway is not started again: its start limit, or a refusal (exit 78).
    ManagedGatewayFailed,
    /// A spend budget's committed spend crossed its `soft_spend_usd` (once a window).
    SpendSoftLimit,
    /// A gateway skipped a cron job's expected fire (once per slot).
    CronMissed,
}

impl AlertKind {
    pub const ALL: [AlertKind; 10] = [
        AlertKind::GatewayOffline,
        AlertKind::BreakerOpen,
        AlertKind::AllGatewaysDown,
        AlertKind::PrimaryChanged,
        AlertKind::OperationFailed,
        AlertKind::SessionStalled,
        AlertKind::ApprovalUnanswered,
        AlertKind::ManagedGatewayFailed,
        AlertKind::SpendSoftLimit,
        AlertKind::CronMissed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::GatewayOffline => "gateway_offline",
            AlertKind::BreakerOpen => "breaker_open",
            AlertKind::AllGatewaysDown => "all_gateways_down",
            AlertKind::PrimaryChanged => "primary_changed",
            AlertKind::OperationFailed => "operation_failed",
            AlertKind::SessionStalled => "session_stalled",
            AlertKind::ApprovalUnanswered => "approval_unanswered",
            AlertKind::ManagedGatewayFailed => "managed_gateway_failed",
            AlertKind::SpendSoftLimit => "spend_soft_limit",
            AlertKind::CronMissed => "cron_missed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Firing,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// One notification to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub kind: AlertKind,
    pub state: AlertState,
    pub gateway_id: Option<GatewayId>,
    /// One line for a human.
    pub summary: String,
    pub details: Value,
}

/// A gateway as the watch needs it.
#[derive(Debug, Clone)]
pub struct GatewayFact {
    pub id: GatewayId,
    pub name: String,
    pub status: GatewayStatus,
    pub connected: bool,
    pub breaker_open: bool,
    /// In a maintenance window: nothing fires about it (an alert already sent stays until it
    /// resolves after the window), and it does not count towards "all gateways down".
    pub maintenance: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub offline_after: Duration,
    pub all_down_after: Duration,
    pub damping: Duration,
}

type Subject = (AlertKind, Option<GatewayId>);

/// The watch's memory between observations.
#[derive(Debug, Default)]
pub struct Watch {
    offline_since: HashMap<GatewayId, Instant>,
    all_down_since: Option<Instant>,
    /// Subjects whose firing was sent (and not resolved yet).
    firing: HashSet<Subject>,
    /// Subjects that fired within their damping window: held back, and so is their resolve.
    held: HashSet<Subject>,
    last_fired: HashMap<Subject, Instant>,
    /// The acting primary last seen (`None` before the first observation).
    acting: Option<Option<GatewayId>>,
    /// Firings held back by damping, for the metric.
    pub suppressed: u64,
    /// Managed gateways given up, alerted until they run again.
    managed_failed: HashSet<GatewayId>,
    /// Stalled sessions alerted (gateway, session key), until they recover.
    stalled: HashSet<(GatewayId, String)>,
}

impl Watch {
    /// The notifications `facts` (every gateway now) and `acting` call for at `now`.
    pub fn observe(
        &mut self,
        now: Instant,
        facts: &[GatewayFact],
        acting: Option<GatewayId>,
        t: &Thresholds,
    ) -> Vec<Alert> {
        let mut out = Vec::new();
        // Every second, at fleet scale: a gateway with nothing pending costs a few lookups, and
        // a summary or details are written only for a notification that goes out.
        let remembers_gateways = !self.offline_since.is_empty()
            || self
                .firing
                .iter()
                .chain(self.held.iter())
                .any(|(_, g)| g.is_some());
        if remembers_gateways {
            let present: HashSet<GatewayId> = facts.iter().map(|f| f.id).collect();
            // Deleted gateways: forgotten, their open alerts resolved.
            let gone: Vec<Subject> = self
                .firing
                .iter()
                .chain(self.held.iter())
                .filter(|(_, g)| g.is_some_and(|g| !present.contains(&g)))
                .copied()
                .collect();
            for subject in gone {
                self.resolve(
                    subject,
                    || ("the gateway was deleted".to_owned(), json!({})),
                    &mut out,
                );
            }
            self.offline_since.retain(|id, _| present.contains(id));
        }
        for f in facts {
            if f.maintenance {
                // Its downtime starts counting when the window ends.
                self.offline_since.remove(&f.id);
                continue;
            }
            let details = || json!({"gateway": f.name, "status": f.status});
            let offline = (AlertKind::GatewayOffline, Some(f.id));
            if f.status == GatewayStatus::Offline {
                let since = *self.offline_since.entry(f.id).or_insert(now);
                let offline_for = now.saturating_duration_since(since);
                if offline_for >= t.offline_after {
                    self.fire(
                        offline,
                        now,
                        t,
                        || {
                            let summary = format!(
                                "gateway `{}` has been offline for {}",
                                f.name,
                                humantime::format_duration(rounded(offline_for))
                            );
                            (summary, details())
                        },
                        &mut out,
                    );
                }
            } else {
                if !self.offline_since.is_empty() {
                    self.offline_since.remove(&f.id);
                }
                self.resolve(
                    offline,
                    || {
                        (
                            format!("gateway `{}` is back ({})", f.name, f.status),
                            details(),
                        )
                    },
                    &mut out,
                );
            }
            let breaker = (AlertKind::BreakerOpen, Some(f.id));
            if f.breaker_open {
                self.fire(
                    breaker,
                    now,
                    t,
                    || {
                        let summary = format!(
                            "gateway `{}`: circuit breaker open (repeated failures)",
                            f.name
                        );
                        (summary, details())
                    },
                    &mut out,
                );
            } else {
                self.resolve(
                    breaker,
                    || {
                        (
                            format!("gateway `{}`: circuit breaker closed", f.name),
                            details(),
                        )
                    },
                    &mut out,
                );
            }
        }
        let all = (AlertKind::AllGatewaysDown, None);
        let watched: Vec<&GatewayFact> = facts.iter().filter(|f| !f.maintenance).collect();
        if !watched.is_empty() && watched.iter().all(|f| !f.connected) {
            let since = *self.all_down_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= t.all_down_after {
                let summary = format!("all {} gateways are down", watched.len());
                let details = json!({"gateways": watched.len()});
                self.fire(all, now, t, || (summary, details), &mut out);
            }
        } else {
            self.all_down_since = None;
            self.resolve(
                all,
                || {
                    let connected = watched.iter().filter(|f| f.connected).count();
                    let back = format!("{connected} of {} gateways connected again", watched.len());
                    (back, json!({"connected": connected}))
                },
                &mut out,
            );
        }
        // A role taken where none was acting (the first gateway, a starting daemon) is the role
        // established, not moved.
        if let Some(Some(previous)) = self.acting.replace(acting)
            && Some(previous) != acting
        {
            let before = Some(previous);
            let name = |id: Option<GatewayId>| {
                id.and_then(|id| facts.iter().find(|f| f.id == id))
                    .map_or("none".to_owned(), |f| format!("`{}`", f.name))
            };
            let summary = format!(
                "acting primary changed: {} → {}",
                name(before),
                name(acting)
            );
            let subject = (AlertKind::PrimaryChanged, None);
            let details = json!({"previous": before, "acting_primary": acting});
            self.fire(subject, now, t, || (summary, details), &mut out);
            // An event, not a condition: nothing to resolve; damping still holds the next one.
            self.firing.remove(&subject);
            self.held.remove(&subject);
        }
        out
    }

    /// The watchdog's word on a session: unrecovered fires once, and its recovery resolves
    /// what fired (the ladder decides each once per stall; a repeat changes nothing).
    pub fn session(
        &mut self,
        gateway_id: GatewayId,
        key: &str,
        unrecovered: bool,
        details: Value,
    ) -> Option<Alert> {
        let subject = (gateway_id, key.to_owned());
        let state = if unrecovered {
            self.stalled.insert(subject).then_some(AlertState::Firing)?
        } else {
            self.stalled
                .remove(&subject)
                .then_some(AlertState::Resolved)?
        };
        let summary = match state {
            AlertState::Firing => format!("session {key} is stalled and could not be recovered"),
            AlertState::Resolved => format!("session {key} is no longer stalled"),
        };
        Some(Alert {
            kind: AlertKind::SessionStalled,
            state,
            gateway_id: Some(gateway_id),
            summary,
            details,
        })
    }

    /// An approval escalated (`firing`, from its `approval.escalated` event: once per approval
    /// fleet-wide) or, once escalated, ended (`resolved`, from its `approval.resolved`): naming
    /// the gateway, the agent, the command as the gateway presented it (a preview) and where
    /// the console answers it. `None` for the end of one that was never escalated.
    pub fn approval(escalated: bool, approval: &Approval) -> Option<Alert> {
        if !escalated && approval.escalated_at_ms.is_none() {
            return None;
        }
        let (id, gateway_id) = (&approval.id, approval.gateway_id);
        let preview: String = approval.command.chars().take(120).collect();
        let (state, summary) = if escalated {
            (
                AlertState::Firing,
                format!(
                    "approval {id} on gateway {gateway_id} is waiting for an answer: {preview}"
                ),
            )
        } else {
            (
                AlertState::Resolved,
                format!(
                    "approval {id} on gateway {gateway_id} is no longer waiting ({})",
                    approval.status.as_str()
                ),
            )
        };
        Some(Alert {
            kind: AlertKind::ApprovalUnanswered,
            state,
            gateway_id: Some(gateway_id),
            summary,
            details: json!({
                "approval_id": id, "gateway_id": gateway_id, "kind": approval.kind,
                "agent_id": approval.agent_id, "command_preview": preview,
                "status": approval.status, "created_at_ms": approval.created_at_ms,
                "console": format!("/console/#/approvals?gateway_id={gateway_id}"),
            }),
        })
    }

    /// A managed gateway given up (firing, once) or running again after it (resolved), from
    /// its `gateway.managed` event; `None` for its other moves.
    pub fn managed_gateway(
        &mut self,
        gateway_id: Option<GatewayId>,
        event: &ManagedEvent,
    ) -> Option<Alert> {
        let id = gateway_id?;
        let state = match event.state {
            ProcessState::Failed if self.managed_failed.insert(id) => AlertState::Firing,
            ProcessState::Running if self.managed_failed.remove(&id) => AlertState::Resolved,
            _ => return None,
        };
        let detail = event.detail.as_deref().unwrap_or("");
        Some(Alert {
            kind: AlertKind::ManagedGatewayFailed,
            state,
            gateway_id: Some(id),
            summary: match state {
                AlertState::Firing => {
                    format!("managed gateway {id} is not started again: {detail}")
                }
                AlertState::Resolved => format!("managed gateway {id} runs again"),
            },
            details: serde_json::to_value(event).unwrap_or(Value::Null),
        })
    }

    /// A failed operation: one alert each (every operation is its own subject).
    /// A spend budget crossed its soft limit: said once (the ledger crosses it once a window).
    pub fn spend_soft_limit(
        gateway: Option<GatewayId>,
        e: &crate::domain::spend::SoftLimitEvent,
    ) -> Alert {
        Alert {
            kind: AlertKind::SpendSoftLimit,
            state: AlertState::Firing,
            gateway_id: gateway,
            summary: format!(
                "spend budget {} crossed its soft limit (spawn {})",
                e.budget, e.spawn_id
            ),
            details: json!({"budget": e.budget, "spawn_id": e.spawn_id}),
        }
    }

    /// A cron fire a gateway skipped, when it is found (once per slot; its forced run, if
    /// any, is the `cron.missed` event after, not a second alert).
    pub fn cron_missed(e: &crate::domain::CronMissedEvent) -> Option<Alert> {
        if e.cause != crate::domain::CronMissCause::Missed || e.recovery.is_some() {
            return None;
        }
        Some(Alert {
            kind: AlertKind::CronMissed,
            state: AlertState::Firing,
            gateway_id: Some(e.gateway_id),
            summary: format!(
                "gateway {} skipped cron job {} ({}) due at {} (Unix ms)",
                e.gateway_id, e.job_name, e.job_id, e.slot_ms
            ),
            details: serde_json::to_value(e).unwrap_or(Value::Null),
        })
    }

    pub fn operation_failed(ended: &crate::domain::operation::ProgressEvent) -> Alert {
        let (id, kind) = (&ended.operation_id, ended.kind.as_str());
        Alert {
            kind: AlertKind::OperationFailed,
            state: AlertState::Firing,
            gateway_id: None,
            summary: format!("operation {id} ({kind}) failed"),
            details: json!({"operation_id": id, "kind": kind, "detail": ended.detail,
                            "gateways": ended.gateways}),
        }
    }

    /// Fires `subject` unless it is firing or damped; `text` (summary, details) is called
    /// only for a notification that goes out.
    fn fire(
        &mut self,
        subject: Subject,
        now: Instant,
        t: &Thresholds,
        text: impl FnOnce() -> (String, Value),
        out: &mut Vec<Alert>,
    ) {
        if self.firing.contains(&subject) {
            return;
        }
        let damped = self
            .last_fired
            .get(&subject)
            .is_some_and(|at| now.saturating_duration_since(*at) < t.damping);
        if damped {
            // Held once per flap; a condition that outlasts the window fires after all.
            if self.held.insert(subject) {
                self.suppressed += 1;
            }
            return;
        }
        self.held.remove(&subject);
        self.last_fired.insert(subject, now);
        self.firing.insert(subject);
        let (summary, details) = text();
        out.push(Alert {
            kind: subject.0,
            state: AlertState::Firing,
            gateway_id: subject.1,
            summary,
            details,
        });
    }

    /// Resolves `subject` if it fired (and releases it if held); `text` as for [`Watch::fire`].
    fn resolve(
        &mut self,
        subject: Subject,
        text: impl FnOnce() -> (String, Value),
        out: &mut Vec<Alert>,
    ) {
        if !self.held.is_empty() {
            self.held.remove(&subject);
        }
        if !self.firing.is_empty() && self.firing.remove(&subject) {
            let (summary, details) = text();
            out.push(Alert {
                kind: subject.0,
                state: AlertState::Resolved,
                gateway_id: subject.1,
                summary,
                details,
            });
        }
    }
}

/// Whole seconds, for a summary.
fn rounded(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

#[cfg(test)]
#[path = "rule_tests.rs"]
mod tests;
