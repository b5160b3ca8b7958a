//! The fleet's approvals inbox. A gateway that this daemon answers approvals for (the link
//! connects with `caps: ["approvals"]`, `[approvals] enabled` or the gateway's own setting)
//! waits for the daemon's answer instead of denying at once, so nothing it asks may sit unseen:
//! every request is stored (one row per gateway and approval id, the same on every instance
//! of a cluster and after a restart), reconciled with the gateway's own lists on every
//! connect (events are dropped for slow clients; a restart cancels what was pending),
//! escalated, and denied by the daemon when nobody answers (docs/design.md, *Approvals*).
//!
//! [`rule`] decides; [`sync`] carries the gateways' news into the store; [`Inbox::resolve`]
//! answers through the gateway, which alone decides whose answer was first.

pub mod metrics;
pub mod rule;

/// The inbox's words (kept with the store, which reads and writes them).
pub use crate::domain::approval as model;
mod sync;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::config::ApprovalsConfig;
use crate::db::{DbError, Store};
use crate::domain::ApprovalId;
use crate::fleet::{FleetContext, FleetError};
use gateway_supervisor_actors::events::{EventBus, EventKind};
use gateway_supervisor_actors::model::{Caller, GatewayId};
use gateway_supervisor_actors::protocol::approvals::{self as wire, Decision};
use gateway_supervisor_actors::unix_now_ms;
use metrics::ApprovalMetrics;
use model::{Approval, ApprovalStatus, Ending, ResolvedBy};

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("approval {id} of gateway {gateway_id} not found")]
    NotFound {
        gateway_id: GatewayId,
        id: ApprovalId,
    },
    /// It ended before this answer: answered (here or elsewhere), expired or cancelled.
    #[error("approval {} is already {}", .0.id, .0.status.as_str())]
    Ended(Box<Approval>),
    /// The decision cannot be sent: not offered, or an allow of what was not shown whole.
    #[error("approval {} cannot be answered {}: {why:?}", .approval.id, .decision.as_str())]
    Unanswerable {
        approval: Box<Approval>,
        decision: Decision,
        why: rule::Unanswerable,
    },
    #[error(transparent)]
    Fleet(#[from] FleetError),
    #[error("storage failed: {0}")]
    Storage(#[source] DbError),
}

pub struct Inbox {
    store: Store,
    /// The fleet's calls to gateways (and whether one can take a call now).
    gateways: Arc<FleetContext>,
    events: EventBus,
    cfg: ApprovalsConfig,
    metrics: ApprovalMetrics,
    /// The process each gateway this instance answers for was last reached as (its
    /// `bootId`), from the link's (re)connect.
    boots: Mutex<HashMap<GatewayId, Option<String>>>,
    /// Gateways whose reconcile after a (re)connect could not list their approvals (the call
    /// failed): tried again at the next tick, not at the next full round a minute later.
    unreconciled: Mutex<std::collections::HashSet<GatewayId>>,
    /// The names a gateway may give this daemon as the one who answered (its device id).
    ours: Vec<String>,
}

impl Inbox {
    pub fn new(
        store: Store,
        gateways: Arc<FleetContext>,
        events: EventBus,
        cfg: ApprovalsConfig,
        metrics: ApprovalMetrics,
        device_id: String,
    ) -> Self {
        Inbox {
            store,
            gateways,
            events,
            cfg,
            metrics,
            boots: Mutex::default(),
            unreconciled: Mutex::default(),
            ours: vec![device_id],
        }
    }

    /// Answers approval `id` of gateway `gateway_id` with `decision` for `by`. The gateway
    /// decides whose answer is first (`approval.resolve`'s `applied`), so two answers through
    /// two instances, or one here and one in the gateway's own UI, end it once: the later gets
    /// [`ApprovalError::Ended`] with the recorded answer. `LinkedElsewhere` is for the caller to
    /// forward to the instance that links the gateway.
    pub async fn resolve(
        &self,
        gateway_id: GatewayId,
        id: ApprovalId,
        decision: Decision,
        by: &Caller,
    ) -> Result<Approval, ApprovalError> {
        let known = {
            let id = id.clone();
            self.stored(move |s| s.approval(gateway_id, &id)).await?
        };
        let Some(known) = known else {
            return Err(ApprovalError::NotFound { gateway_id, id });
        };
        if !known.is_pending() {
            return Err(ApprovalError::Ended(Box::new(known)));
        }
        if let Err(why) = rule::answerable(&known, decision) {
            return Err(ApprovalError::Unanswerable {
                approval: Box::new(known),
                decision,
                why,
            });
        }
        let params = json!({"id": id, "kind": known.kind, "decision": decision.as_str()});
        let answer = match self
            .gateways
            .call_gateway(gateway_id, "approval.resolve", params)
            .await
        {
            Ok(answer) => answer,
            // Gone from the gateway meanwhile: how it ended is asked, and recorded.
            Err(e) if e.refusal().is_some_and(wire::not_found) => {
                self.settle(gateway_id, &id).await;
                let now = self.stored(move |s| s.approval(gateway_id, &id)).await?;
                return Err(match now {
                    Some(a) => ApprovalError::Ended(Box::new(a)),
                    None => ApprovalError::NotFound {
                        gateway_id,
                        id: known.id,
                    },
                });
            }
            Err(e) => return Err(e.into()),
        };
        let now_ms = unix_now_ms();
        let recorded = wire::outcome(&answer);
        let applied = wire::applied(&answer);
        self.audit(
            by,
            "approval.resolve",
            gateway_id,
            &id,
            json!({"decision": decision.as_str(), "applied": applied}),
        )
        .await;
        if !applied {
            // Not the first: the gateway's record says whose answer was.
            let Some(ending) = recorded
                .as_ref()
                .and_then(|o| rule::ending_of(o, now_ms, &self.ours))
            else {
                return Err(ApprovalError::Ended(Box::new(known)));
            };
            // Another answer through this daemon won (two at once, forwarded here by two
            // instances): its own path records it, with its key; this one is told.
            if ending.by == ResolvedBy::Operator {
                let mut won = known;
                won.status = ending.status;
                won.decision = ending.decision;
                won.reason = ending.reason;
                won.resolved_by = Some(ending.by);
                won.resolved_at_ms = Some(ending.at_ms);
                return Err(ApprovalError::Ended(Box::new(won)));
            }
            let ended = self.end(gateway_id, &id, ending).await?;
            let now = match ended {
                Some(a) => Some(a),
                None => self.stored(move |s| s.approval(gateway_id, &id)).await?,
            };
            return Err(match now {
                Some(a) => ApprovalError::Ended(Box::new(a)),
                None => ApprovalError::NotFound {
                    gateway_id,
                    id: known.id,
                },
            });
        }
        let ending = Ending {
            status: if decision == Decision::Deny {
                ApprovalStatus::Denied
            } else {
                ApprovalStatus::Allowed
            },
            reason: recorded
                .as_ref()
                .and_then(|o| o.reason.clone())
                .or(Some("user".into())),
            decision: Some(decision.as_str().into()),
            by: ResolvedBy::Operator,
            key_id: by.api_key_id,
            label: Some(by.label.clone()),
            at_ms: recorded
                .as_ref()
                .and_then(|o| o.resolved_at_ms)
                .unwrap_or(now_ms),
        };
        match self.end(gateway_id, &id, ending).await? {
            Some(a) => Ok(a),
            // Recorded ended meanwhile (an expiry the inbox assumed, an event read first):
            // the gateway applied this answer, so it is what the row must say.
            None => {
                let a = self.stored(move |s| s.approval(gateway_id, &id)).await?;
                a.ok_or(ApprovalError::NotFound {
                    gateway_id,
                    id: known.id,
                })
            }
        }
    }

    /// `approvals` as the inbox shows them: each pending one says whether its gateway can
    /// take an answer now (read live, never stored).
    pub fn shown(&self, mut approvals: Vec<Approval>) -> Vec<Approval> {
        for a in approvals.iter_mut().filter(|a| a.is_pending()) {
            a.gateway_reachable = Some(self.gateways.reachable(a.gateway_id));
        }
        approvals
    }

    /// Records `ending` over a pending approval; when it was pending, counts and announces it.
    async fn end(
        &self,
        gateway_id: GatewayId,
        id: &ApprovalId,
        ending: Ending,
    ) -> Result<Option<Approval>, ApprovalError> {
        let id = id.clone();
        let ended = self
            .stored(move |s| s.end_approval(gateway_id, &id, &ending))
            .await?;
        if let Some(a) = &ended {
            self.metrics.ended(a);
            self.announce(EventKind::ApprovalResolved, a);
        }
        Ok(ended)
    }

    fn announce(&self, kind: EventKind, a: &Approval) {
        let payload = serde_json::to_value(a).unwrap_or(Value::Null);
        self.events.publish(kind, Some(a.gateway_id), payload);
    }

    async fn audit(
        &self,
        by: &Caller,
        action: &'static str,
        gateway_id: GatewayId,
        id: &ApprovalId,
        details: Value,
    ) {
        let by = by.clone();
        let target = format!("{gateway_id}/{id}");
        if let Err(e) = self
            .stored(move |s| s.audit(&by, action, "approval", target, &details))
            .await
        {
            tracing::error!(%e, action, "could not write the audit row of an approval");
        }
    }

    async fn stored<T, F>(&self, call: F) -> Result<T, ApprovalError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, DbError> + Send + 'static,
    {
        self.store.call(call).await.map_err(ApprovalError::Storage)
    }
}
