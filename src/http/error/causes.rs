//! The approvals inbox's and the fleet's errors as the API's (the catalogue is `super`'s).

use super::{ApiError, call_error};

impl From<crate::approvals::ApprovalError> for ApiError {
    fn from(err: crate::approvals::ApprovalError) -> Self {
        use crate::approvals::ApprovalError as A;
        use crate::approvals::model::ApprovalStatus;
        match err {
            A::NotFound { gateway_id, id } => ApiError::ApprovalNotFound { gateway_id, id },
            A::Ended(a) => {
                let details = serde_json::json!({
                    "gateway_id": a.gateway_id, "id": a.id, "status": a.status,
                    "reason": a.reason, "decision": a.decision, "resolved_by": a.resolved_by,
                    "resolver_label": a.resolver_label, "resolved_at_ms": a.resolved_at_ms,
                });
                match a.status {
                    ApprovalStatus::Allowed | ApprovalStatus::Denied => {
                        let whom = match a.resolved_by {
                            Some(crate::approvals::model::ResolvedBy::Elsewhere) => format!(
                                "answered elsewhere ({})",
                                a.resolver_label.as_deref().unwrap_or("another client")
                            ),
                            Some(crate::approvals::model::ResolvedBy::Auto) => {
                                "denied by the daemon: nobody answered in time".to_owned()
                            }
                            _ => format!(
                                "answered by {}",
                                a.resolver_label.as_deref().unwrap_or("an operator")
                            ),
                        };
                        ApiError::ApprovalAlreadyResolved {
                            message: format!(
                                "approval `{}` was already {}: {whom}",
                                a.id,
                                a.status.as_str()
                            ),
                            details,
                        }
                    }
                    _ => ApiError::ApprovalNotPending {
                        message: format!(
                            "approval `{}` is {} ({}): there is nothing to answer",
                            a.id,
                            a.status.as_str(),
                            a.reason.as_deref().unwrap_or("no reason given")
                        ),
                        details,
                    },
                }
            }
            A::Unanswerable {
                approval,
                decision,
                why,
            } => {
                let offered: Vec<&str> = approval
                    .offered_decisions
                    .iter()
                    .map(|d| d.as_str())
                    .collect();
                let details = serde_json::json!({
                    "gateway_id": approval.gateway_id, "id": approval.id,
                    "decision": decision.as_str(), "offered": offered,
                    "presented_whole": approval.presented_whole,
                });
                match why {
                    crate::approvals::rule::Unanswerable::NotOffered { .. } => {
                        ApiError::DecisionNotOffered {
                            message: format!(
                                "the gateway does not offer `{}` for approval `{}`: it offers {}",
                                decision.as_str(),
                                approval.id,
                                if offered.is_empty() {
                                    "no decision".to_owned()
                                } else {
                                    offered.join(", ")
                                }
                            ),
                            details,
                        }
                    }
                    crate::approvals::rule::Unanswerable::NotShownWhole => {
                        ApiError::ApprovalNotShownWhole {
                            message: format!(
                                "approval `{}` presented more than the inbox keeps ({} bytes), \
                                 so not all of it was shown: it can only be denied",
                                approval.id,
                                gateway_supervisor_actors::protocol::approvals::COMMAND_MAX
                            ),
                            details,
                        }
                    }
                }
            }
            A::Fleet(e) => e.into(),
            A::Storage(e) => ApiError::storage(e.to_string()),
        }
    }
}

impl From<crate::fleet::sessions::SessionError> for ApiError {
    fn from(err: crate::fleet::sessions::SessionError) -> Self {
        use crate::fleet::sessions::SessionError as S;
        match err {
            S::NotFound(key) => ApiError::SessionNotFound(key),
            ref e @ S::Ambiguous { ref gateways, .. } => ApiError::AmbiguousSession {
                message: e.to_string(),
                details: serde_json::json!({"candidates": gateways
                    .iter()
                    .map(|(id, name)| serde_json::json!({"gateway_id": id, "gateway": name}))
                    .collect::<Vec<_>>()}),
            },
            e @ S::OwnerNotConnected { .. } => ApiError::GatewayUnavailable(e.to_string()),
            S::NoControl {
                id,
                ref name,
                ref version,
                ..
            } => ApiError::UnsupportedAction {
                message: err.to_string(),
                details: serde_json::json!({
                    "gateway_id": id, "gateway": name, "version": version,
                    "alternatives": ["kill", format!("POST /api/gateways/{id}/suspend")],
                }),
            },
            ref e @ S::Unheard { ref instances, .. } => ApiError::OwnerUnavailable {
                message: e.to_string(),
                instance: instances.first().cloned().unwrap_or_default(),
                retry_after_secs: 1,
            },
            S::Draining {
                gateway_id,
                ref operation_id,
                ..
            } => ApiError::GatewayBusy {
                message: err.to_string(),
                details: serde_json::json!({
                    "gateway_id": gateway_id, "operation_id": operation_id,
                    "abort_runs": format!("POST /api/operations/{operation_id}/abort-runs"),
                }),
            },
            S::Fleet(e) => e.into(),
        }
    }
}

impl From<crate::fleet::agents::AgentsError> for ApiError {
    fn from(err: crate::fleet::agents::AgentsError) -> Self {
        use crate::fleet::agents::AgentsError as A;
        match err {
            e @ A::NoPrimary { .. } => ApiError::NoHealthyGateway(e.to_string()),
            e @ A::PrimaryNotConnected { .. } => ApiError::GatewayUnavailable(e.to_string()),
            A::Fleet(e) => e.into(),
        }
    }
}

impl From<crate::fleet::usage::UsageError> for ApiError {
    fn from(err: crate::fleet::usage::UsageError) -> Self {
        use crate::fleet::usage::UsageError as U;
        match err {
            ref e @ U::OverBudget(ref over) => ApiError::BudgetExceeded {
                message: e.to_string(),
                details: serde_json::json!({"agent": over.agent, "day": over.day,
                    "budget": format!("usage.budgets.{}.daily_usd", over.agent),
                    "budget_usd": over.budget_usd, "spent_usd": over.spent_usd}),
            },
            U::Fleet(e) => e.into(),
        }
    }
}

impl From<crate::fleet::spawn::SpawnError> for ApiError {
    fn from(err: crate::fleet::spawn::SpawnError) -> Self {
        use crate::fleet::spawn::SpawnError as S;
        use gateway_supervisor_actors::selection::NoGateway;
        match err {
            ref e @ S::IdempotencyKeyReused { ref spawn_id } => ApiError::IdempotencyKeyReused {
                message: e.to_string(),
                spawn_id: spawn_id.clone(),
            },
            S::NoGateway(NoGateway::Unknown(id)) => ApiError::GatewayNotFound(id),
            S::NoGateway(NoGateway::Unavailable { reason, .. }) => {
                ApiError::GatewayUnavailable(reason)
            }
            S::NoGateway(NoGateway::NoneHealthy { reason }) => ApiError::NoHealthyGateway(reason),
            S::Usage(e) => e.into(),
            S::Spend(e) => e.into(),
            S::Fleet(e) => e.into(),
        }
    }
}

impl From<crate::spend::SpendError> for ApiError {
    fn from(err: crate::spend::SpendError) -> Self {
        use crate::spend::SpendError as E;
        match err {
            E::OverBudget(r) => {
                let usd = |m: i64| m as f64 / 1e6;
                let now = crate::db::unix_now();
                ApiError::SpendBudgetExceeded {
                    message: format!(
                        "spend budget `{}` refuses this run ({}) until its window resets",
                        r.subject,
                        r.breach.as_str()
                    ),
                    details: serde_json::json!({
                        "budget": r.subject, "limit": r.breach.as_str(),
                        "max_spend_usd": r.max_spend_micros.map(usd),
                        "spent_usd": usd(r.tally.spent_micros),
                        "reserved_usd": usd(r.tally.reserved_micros),
                        "estimate_usd": usd(r.estimate),
                        "runs": r.tally.runs, "running": r.tally.running,
                        "resets_at": r.reset_at,
                    }),
                    retry_after_secs: u64::try_from(r.reset_at.saturating_sub(now))
                        .unwrap_or(0)
                        .max(1),
                }
            }
            e @ E::Unavailable(_) => ApiError::storage(e.to_string()),
        }
    }
}

impl From<crate::fleet::FleetError> for ApiError {
    fn from(err: crate::fleet::FleetError) -> Self {
        use crate::fleet::FleetError as F;
        match err {
            F::NotFound(id) => ApiError::GatewayNotFound(id),
            e @ F::NotConnected { .. } => ApiError::GatewayUnavailable(e.to_string()),
            F::Unsupported { id, name, method } => ApiError::UnsupportedAction {
                message: format!("gateway `{name}` does not offer `{method}`"),
                details: serde_json::json!({"gateway_id": id, "gateway": name, "method": method}),
            },
            F::Busy { message, details } => ApiError::GatewayBusy { message, details },
            F::Disruption {
                message,
                details,
                retry_after_secs,
            } => ApiError::DisruptionBudget {
                message,
                details,
                retry_after_secs,
            },
            F::Storage(e) => ApiError::storage(e.to_string()),
            F::ProcessUnverifiable {
                id,
                ref name,
                ref version,
            } => ApiError::UnsupportedAction {
                message: err.to_string(),
                details: serde_json::json!({"gateway_id": id, "gateway": name, "version": version}),
            },
            F::Call { name, source } => call_error(source, &name),
            F::Registry(e) => e.into(),
            F::Record(e) => e.into(),
            F::Random(e) => e.into(),
            // A handler that cannot forward (none today) says where to go.
            F::LinkedElsewhere { id, owner } => ApiError::OwnerUnavailable {
                message: format!(
                    "gateway {id} is linked by instance `{}`{}; send the request there",
                    owner.instance,
                    owner.url.map(|u| format!(" ({u})")).unwrap_or_default()
                ),
                instance: owner.instance,
                retry_after_secs: 1,
            },
        }
    }
}

impl From<crate::cron::declared::DeclareError> for ApiError {
    fn from(err: crate::cron::declared::DeclareError) -> Self {
        use crate::cron::declared::DeclareError as D;
        match err {
            D::Invalid(r) => ApiError::field(&r.field, r.message),
            D::NotFound(name) => ApiError::CronDeclarationNotFound(name),
            D::Full => ApiError::CronDeclarationsFull(err.to_string()),
            D::Cron(e) => e.into_fleet().into(),
        }
    }
}
