//! The approvals inbox's words: where an approval is, who ended it, and one approval as the API
//! shows it (`crate::approvals::model`).

use serde::{Deserialize, Serialize};

use super::ApprovalId;
use gateway_supervisor_actors::model::GatewayId;
use gateway_supervisor_actors::protocol::approvals::Decision;

/// Where an approval is: `pending` until the gateway records an end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    Pending,
    Allowed,
    Denied,
    Expired,
    Cancelled,
}

impl ApprovalStatus {
    pub const ALL: [ApprovalStatus; 5] = [
        ApprovalStatus::Pending,
        ApprovalStatus::Allowed,
        ApprovalStatus::Denied,
        ApprovalStatus::Expired,
        ApprovalStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Allowed => "allowed",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Expired => "expired",
            ApprovalStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<ApprovalStatus> {
        ApprovalStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Who ended an approval (the `by` of `approvals_resolved_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResolvedBy {
    /// An operator, through this daemon (the API key is recorded).
    Operator,
    /// Another of the gateway's clients answered first.
    Elsewhere,
    /// This daemon, because nobody answered in time (`approvals.auto_deny_after`).
    Auto,
    /// Nobody: it ran out of time on the gateway.
    Expired,
    /// The gateway itself (a restart, an aborted run).
    Gateway,
}

impl ResolvedBy {
    pub const ALL: [ResolvedBy; 5] = [
        ResolvedBy::Operator,
        ResolvedBy::Elsewhere,
        ResolvedBy::Auto,
        ResolvedBy::Expired,
        ResolvedBy::Gateway,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResolvedBy::Operator => "operator",
            ResolvedBy::Elsewhere => "elsewhere",
            ResolvedBy::Auto => "auto",
            ResolvedBy::Expired => "expired",
            ResolvedBy::Gateway => "gateway",
        }
    }

    pub fn parse(s: &str) -> Option<ResolvedBy> {
        ResolvedBy::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// One approval of the inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approval {
    pub gateway_id: GatewayId,
    /// The gateway's id for it (a UUID; `plugin:` and a UUID for plugin approvals).
    #[schema(value_type = String)]
    pub id: ApprovalId,
    /// exec | plugin | system-agent
    pub kind: String,
    pub status: ApprovalStatus,
    /// The gateway's reason for the end (`user`, `timeout`, `gateway-restart`, …), or this
    /// daemon's (an automatic deny).
    pub reason: Option<String>,
    /// allow-once | allow-always | deny, once decided.
    pub decision: Option<String>,
    /// Exec: the command exactly as the gateway presents it (escaped, never interpreted);
    /// plugin: the title.
    pub command: String,
    /// Exec: the gateway's warning; plugin: the description.
    pub warning: Option<String>,
    pub severity: Option<String>,
    pub agent_id: Option<String>,
    pub session_key: Option<String>,
    pub run_id: Option<String>,
    pub host: Option<String>,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
    pub resolved_by: Option<ResolvedBy>,
    /// The API key that answered (operator), and its label.
    pub resolver_key_id: Option<i64>,
    pub resolver_label: Option<String>,
    /// When the escalation alert went out (unanswered past `approvals.escalate_after`).
    pub escalated_at_ms: Option<i64>,
    /// The gateway process it was asked by.
    #[serde(skip)]
    pub boot_id: Option<String>,
    /// The decisions the gateway offers for it (all three unless it said fewer): any other
    /// is refused before it is sent.
    #[schema(value_type = Vec<String>, example = json!(["allow-once", "allow-always", "deny"]))]
    #[serde(
        serialize_with = "decision_words",
        deserialize_with = "read_decision_words"
    )]
    pub offered_decisions: Vec<Decision>,
    /// Whether `command` and `warning` are all the gateway presented. When not (a hostile
    /// gateway's megabytes, cut), it can only be denied: nobody may allow what was not shown.
    pub presented_whole: bool,
    /// Pending ones, read live when shown (never stored): whether the gateway can take an
    /// answer now. An offline gateway's approvals wait for it (or for their expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_reachable: Option<bool>,
}

fn decision_words<S: serde::Serializer>(d: &[Decision], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(d.iter().map(|d| d.as_str()))
}

/// The decisions as [`decision_words`] wrote them (an `approval.*` event read back).
fn read_decision_words<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Decision>, D::Error> {
    let words = Vec::<String>::deserialize(d)?;
    words
        .iter()
        .map(|w| {
            Decision::parse(w)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown decision `{w}`")))
        })
        .collect()
}

impl Approval {
    pub fn is_pending(&self) -> bool {
        self.status == ApprovalStatus::Pending
    }
}

/// How a pending approval ends, to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    pub status: ApprovalStatus,
    pub reason: Option<String>,
    pub decision: Option<String>,
    pub by: ResolvedBy,
    pub key_id: Option<i64>,
    pub label: Option<String>,
    pub at_ms: i64,
}
