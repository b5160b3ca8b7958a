//! What a gateway says about its approvals, read in one place (2026.9.6, captured:
//! `testdata/openclaw-captures/2026.9.6/approvals_events.json` and `approvals_rpc.json`): the
//! `exec|plugin|openclaw.approval.requested` events and the entries of `exec.approval.list` /
//! `plugin.approval.list` (`{approvalKind, id, request, createdAtMs, expiresAtMs}`), the
//! `*.approval.resolved` events (`{id, decision, resolvedBy, ts}`), and the unified snapshot of
//! `approval.get` / `approval.resolve` (`{id, status, reason, decision, presentation, …}`).
//! Every string is bounded and escaped here, before anything stores, logs or shows it.

use serde_json::Value;

use super::approval_text;
use crate::bounded;

/// The longest command text kept: all a real gateway presents (16,384 UTF-16 units; see
/// [`approval_text`](super::approval_text)). A longer one is cut, and the approval can only
/// be denied.
pub const COMMAND_MAX: usize = super::approval_text::DISPLAY_MAX;
/// The longest other presentation text kept (a warning, a plugin's title and description).
pub const TEXT_MAX: usize = super::approval_text::DISPLAY_MAX;
/// The longest approval id accepted (2026.9.6: a UUID, `plugin:` + a UUID for plugins).
pub const ID_MAX: usize = 128;

/// Which approval flow an approval belongs to (`approval.resolve`'s `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApprovalKind {
    Exec,
    Plugin,
    /// 2026.9's `openclaw.approval.*` (system-agent approvals).
    System,
}

impl ApprovalKind {
    pub const ALL: [ApprovalKind; 3] = [
        ApprovalKind::Exec,
        ApprovalKind::Plugin,
        ApprovalKind::System,
    ];

    /// The word the gateway's `approval.resolve` and `approval.history` take.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalKind::Exec => "exec",
            ApprovalKind::Plugin => "plugin",
            ApprovalKind::System => "system-agent",
        }
    }

    pub fn parse(s: &str) -> Option<ApprovalKind> {
        ApprovalKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// From an event's name (`exec.approval.requested` → exec).
    fn of_event(event: &str) -> Option<ApprovalKind> {
        match event.split('.').next()? {
            "exec" => Some(ApprovalKind::Exec),
            "plugin" => Some(ApprovalKind::Plugin),
            "openclaw" => Some(ApprovalKind::System),
            _ => None,
        }
    }
}

/// An answer to an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    AllowOnce,
    AllowAlways,
    Deny,
}

impl Decision {
    pub const ALL: [Decision; 3] = [Decision::AllowOnce, Decision::AllowAlways, Decision::Deny];

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::AllowOnce => "allow-once",
            Decision::AllowAlways => "allow-always",
            Decision::Deny => "deny",
        }
    }

    pub fn parse(s: &str) -> Option<Decision> {
        Decision::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// A pending approval as a gateway presents it, bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    pub id: String,
    pub kind: ApprovalKind,
    /// Exec: the command; plugin: the title. Invisible characters escaped as the gateway
    /// escapes them (`\u{200B}`).
    pub command: String,
    /// Exec: the gateway's warning; plugin: the description.
    pub warning: Option<String>,
    /// The command and warning are kept whole: nothing the gateway presented was cut.
    pub whole: bool,
    /// The decisions the gateway offers (`request.allowedDecisions`, 2026.9.6's exec
    /// approvals); `None` when it does not say (every decision).
    pub offered: Option<Vec<Decision>>,
    /// Plugin: `info`, `warning`, `critical`.
    pub severity: Option<String>,
    pub agent_id: Option<String>,
    pub session_key: Option<String>,
    pub run_id: Option<String>,
    /// Exec: where the command runs (`gateway`, `node`, `sandbox`); plugin: the plugin id.
    pub host: Option<String>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// An approval that is over, as the gateway recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub id: String,
    /// `allowed`, `denied`, `expired`, `cancelled` — or `pending` (then not over).
    pub status: String,
    /// The gateway's reason (`user`, `timeout`, `gateway-restart`, `run-aborted`, `no-route`).
    pub reason: Option<String>,
    pub decision: Option<Decision>,
    /// Who answered, as the gateway names them (a client's display name or id).
    pub resolved_by: Option<String>,
    pub resolved_at_ms: Option<i64>,
}

/// What an approval event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalNews {
    /// The link (re)connected as this gateway's approval client, to this process: what was
    /// pending may have changed unheard (events are dropped for slow clients, and a restart
    /// cancels every pending approval).
    Connected {
        boot_id: Option<String>,
    },
    Requested(Requested),
    /// Answered, by the client the gateway names.
    Resolved(Outcome),
    /// Over, without saying how: 2026.9.6 announces an expiry as `*.approval.resolved` with
    /// `decision: "deny"` and `resolvedBy: null` (captured:
    /// `approvals_expiry_restart.json`) while it records `expired/timeout`, so an event that
    /// names nobody is only a sign to ask (`approval.get`).
    Ended {
        id: String,
    },
}

/// An approval event (`None` for any other event, or one out of protocol).
pub fn news(event: &str, payload: &Value) -> Option<ApprovalNews> {
    let kind = ApprovalKind::of_event(event)?;
    match event.split_once(".approval.")?.1 {
        "requested" => requested(kind, payload).map(ApprovalNews::Requested),
        "resolved" => {
            let id = id_of(payload)?;
            let decision = payload
                .get("decision")
                .and_then(Value::as_str)
                .and_then(Decision::parse);
            let resolved_by = text_at(payload, "resolvedBy", bounded::SHORT);
            let (Some(decision), Some(resolved_by)) = (decision, resolved_by) else {
                return Some(ApprovalNews::Ended { id });
            };
            Some(ApprovalNews::Resolved(Outcome {
                id,
                status: match decision {
                    Decision::Deny => "denied",
                    Decision::AllowOnce | Decision::AllowAlways => "allowed",
                }
                .into(),
                reason: Some("user".into()),
                decision: Some(decision),
                resolved_by: Some(resolved_by),
                resolved_at_ms: payload.get("ts").and_then(Value::as_i64),
            }))
        }
        _ => None,
    }
}

/// The pending approvals of an `exec.approval.list` or `plugin.approval.list` answer (at most
/// `max`; entries out of protocol are left out).
pub fn list(answer: &Value, kind: ApprovalKind, max: usize) -> Vec<Requested> {
    answer
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| requested(kind, item))
                .take(max)
                .collect()
        })
        .unwrap_or_default()
}

/// The unified snapshot of `approval.get` (`{approval}`) or `approval.resolve` (`{applied,
/// approval}`).
pub fn outcome(answer: &Value) -> Option<Outcome> {
    let a = answer.get("approval")?;
    Some(Outcome {
        id: id_of(a)?,
        status: text_at(a, "status", 32)?,
        reason: text_at(a, "reason", 64),
        decision: a
            .get("decision")
            .and_then(Value::as_str)
            .and_then(Decision::parse),
        resolved_by: a.get("resolver").and_then(|r| {
            text_at(r, "id", bounded::SHORT).or_else(|| text_at(r, "kind", bounded::SHORT))
        }),
        resolved_at_ms: a.get("resolvedAtMs").and_then(Value::as_i64),
    })
}

/// Whether a refusal says the approval is not known (2026.9.6: `INVALID_REQUEST` "approval not
/// found", `details.reason: APPROVAL_NOT_FOUND`; also what a client that may not see it gets).
pub fn not_found(refused: &crate::protocol::frames::ErrorShape) -> bool {
    refused
        .details
        .as_ref()
        .and_then(|d| d.get("reason"))
        .and_then(Value::as_str)
        == Some("APPROVAL_NOT_FOUND")
}

/// `approval.resolve`'s `applied`: whether this answer was the first.
pub fn applied(answer: &Value) -> bool {
    answer.get("applied").and_then(Value::as_bool) == Some(true)
}

fn requested(kind: ApprovalKind, v: &Value) -> Option<Requested> {
    let kind = v
        .get("approvalKind")
        .and_then(Value::as_str)
        .and_then(ApprovalKind::parse)
        .unwrap_or(kind);
    let r = v.get("request")?;
    let (command, warning, host) = match kind {
        ApprovalKind::Exec => (
            shown_at(r, "command", COMMAND_MAX).or_else(|| {
                r.get("commandArgv")
                    .map(|a| approval_text::shown(&a.to_string(), COMMAND_MAX))
            }),
            shown_at(r, "warningText", TEXT_MAX),
            text_at(r, "host", bounded::SHORT),
        ),
        ApprovalKind::Plugin | ApprovalKind::System => (
            shown_at(r, "title", TEXT_MAX),
            shown_at(r, "description", TEXT_MAX),
            text_at(r, "pluginId", bounded::SHORT),
        ),
    };
    let whole =
        command.as_ref().is_none_or(|c| c.whole) && warning.as_ref().is_none_or(|w| w.whole);
    let offered = r
        .get("allowedDecisions")
        .and_then(Value::as_array)
        .map(|words| {
            let mut offered: Vec<Decision> = words
                .iter()
                .filter_map(Value::as_str)
                .filter_map(Decision::parse)
                .collect();
            offered.sort_by_key(|d| Decision::ALL.iter().position(|x| x == d));
            offered.dedup();
            offered
        });
    Some(Requested {
        id: id_of(v)?,
        kind,
        command: command.map(|c| c.text).unwrap_or_default(),
        warning: warning.map(|w| w.text),
        whole,
        offered,
        severity: text_at(r, "severity", 32),
        agent_id: text_at(r, "agentId", bounded::SHORT),
        session_key: text_at(r, "sessionKey", 256),
        run_id: text_at(r, "runId", bounded::SHORT),
        host,
        created_at_ms: v.get("createdAtMs").and_then(Value::as_i64)?,
        expires_at_ms: v.get("expiresAtMs").and_then(Value::as_i64)?,
    })
}

/// An approval's id: a plain identifier no longer than [`ID_MAX`] (one that is not cannot be
/// answered or named safely, and is not taken).
fn id_of(v: &Value) -> Option<String> {
    let id = v.get("id").and_then(Value::as_str)?;
    (id.len() <= ID_MAX)
        .then(|| bounded::identifier(id))
        .flatten()
        .map(str::to_owned)
}

/// A presented text at `key`, escaped and bounded as the approval shows it.
fn shown_at(v: &Value, key: &str, max: usize) -> Option<approval_text::Shown> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(|s| approval_text::shown(s, max))
}

fn text_at(v: &Value, key: &str, max: usize) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(|s| bounded::text(s, max))
}

#[cfg(test)]
#[path = "approvals_tests.rs"]
mod tests;
