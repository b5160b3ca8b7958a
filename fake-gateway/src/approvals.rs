//! Approvals as openclaw 2026.9.6 keeps them (captured:
//! `testdata/openclaw-captures/2026.9.6/approvals_events.json`, `approvals_rpc.json`): a
//! request goes to the connections that connected with `caps: ["approvals"]` as
//! `exec|plugin.approval.requested`; with none connected it is denied at once (`no-route`).
//! `approval.resolve` is first-answer-wins (a later answer gets `applied: false` and the
//! recorded result) and is announced as `*.approval.resolved` naming the answering client; the
//! lists (`exec.approval.list`, `plugin.approval.list`) hold the pending ones, `approval.get`
//! the unified snapshot; an approval past its `expiresAtMs` is `expired/timeout`, announced as
//! a `deny` by nobody (`resolvedBy: null`, captured: `approvals_expiry_restart.json`); a
//! restart cancels the pending ones (`gateway-restart`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::{Ctl, Shared, lock, now_ms, random_id};

/// Approvals kept (the oldest go first: the fake's own memory bound).
const KEPT: usize = 10_000;

/// Who answers, as 2026.9.6 names them: `resolvedBy` (the display name, or the client id) in
/// the event, and the recorded `resolver` (`{kind: "device", id}` for a client with a device
/// identity, as the real gateway recorded the daemon; `{kind: "runtime", id}` otherwise).
#[derive(Debug, Clone, Default)]
pub(crate) struct Client {
    pub name: String,
    pub device_id: Option<String>,
}

impl Client {
    fn resolver(&self) -> Value {
        match &self.device_id {
            Some(id) => json!({"id": id, "kind": "device"}),
            None => json!({"id": self.name, "kind": "runtime"}),
        }
    }
}

/// Where an approval is, in 2026.9.6's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Pending,
    Allowed,
    Denied,
    Expired,
    Cancelled,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Allowed => "allowed",
            Status::Denied => "denied",
            Status::Expired => "expired",
            Status::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Approval {
    pub id: String,
    pub kind: &'static str,
    pub request: Value,
    pub created_at_ms: u64,
    pub expires_at_ms: u64,
    pub status: Status,
    pub reason: Option<&'static str>,
    pub decision: Option<String>,
    pub resolved_at_ms: Option<u64>,
    pub resolver: Value,
}

impl Approval {
    /// The unified snapshot (`approval.get`, `approval.resolve`).
    pub(crate) fn snapshot(&self) -> Value {
        let r = &self.request;
        let presentation = if self.kind == "exec" {
            json!({"agentId": r["agentId"], "allowedDecisions": r["allowedDecisions"],
                   "commandPreview": null, "commandText": r["command"], "host": r["host"],
                   "kind": "exec", "nodeId": null, "warningText": r["warningText"]})
        } else {
            json!({"agentId": r["agentId"], "allowedDecisions": ["allow-once", "allow-always", "deny"],
                   "description": r["description"], "kind": "plugin", "pluginId": r["pluginId"],
                   "severity": r["severity"], "title": r["title"], "toolName": r["toolName"]})
        };
        let mut s = json!({"createdAtMs": self.created_at_ms, "expiresAtMs": self.expires_at_ms,
            "id": self.id, "presentation": presentation, "status": self.status.as_str(),
            "urlPath": format!("/approve/{}", self.id.replace(':', "%3A"))});
        if self.status != Status::Pending {
            s["reason"] = json!(self.reason);
            s["resolvedAtMs"] = json!(self.resolved_at_ms);
            s["resolver"] = self.resolver.clone();
            s["source"] = json!({});
            if let Some(d) = &self.decision {
                s["decision"] = json!(d);
            }
        }
        s
    }

    /// An entry of the pending lists, and the `*.approval.requested` payload.
    fn entry(&self) -> Value {
        json!({"approvalKind": self.kind, "createdAtMs": self.created_at_ms,
               "expiresAtMs": self.expires_at_ms, "id": self.id, "request": self.request})
    }
}

/// The request object of an exec approval, every field 2026.9.6 sends.
pub(crate) fn exec_request(command: &str, warning: Option<&str>, agent: Option<&str>) -> Value {
    json!({"agentId": agent, "allowedDecisions": ["allow-once", "allow-always", "deny"], "ask": null,
        "command": command, "commandAnalysis": {"commandCount": 1, "nestedCommandCount": 0, "riskKinds": [], "warningLines": []},
        "cronExecutionSource": null, "cronOperationBinding": null, "cwd": null, "host": "gateway",
        "nodeId": null, "resolvedPath": null, "runId": null, "scope": null, "security": null,
        "sessionId": null, "sessionKey": null, "systemRunBinding": null, "systemRunPlan": null,
        "toolCallId": null, "turnSourceAccountId": null, "turnSourceChannel": null,
        "turnSourceThreadId": null, "turnSourceTo": null, "warningText": warning})
}

/// The request object of a plugin approval.
pub(crate) fn plugin_request(title: &str, description: &str, severity: &str) -> Value {
    json!({"agentId": null, "description": description, "detail": null, "pluginId": null,
        "runId": null, "scope": null, "sessionKey": null, "severity": severity, "title": title,
        "toolCallId": null, "toolName": null, "turnSourceAccountId": null,
        "turnSourceChannel": null, "turnSourceThreadId": null, "turnSourceTo": null})
}

/// Sends `frame` to every approval client.
fn to_approval_clients(shared: &Shared, event: &str, payload: &Value) {
    for c in lock(&shared.conns).values().filter(|c| c.approval_client) {
        let _ = c.tx.send(Ctl::Frame(
            json!({"type": "event", "event": event, "payload": payload}),
        ));
    }
}

/// A new approval of `kind` (`exec` or `plugin`) with this request, expiring after
/// `timeout`: its id.
pub(crate) fn request(
    shared: &Arc<Shared>,
    kind: &'static str,
    request: Value,
    timeout: Duration,
) -> String {
    let now = now_ms();
    let id = match kind {
        "plugin" => format!("plugin:{}", random_id()),
        _ => random_id(),
    };
    let mut a = Approval {
        id: id.clone(),
        kind,
        request,
        created_at_ms: now,
        expires_at_ms: now + timeout.as_millis() as u64,
        status: Status::Pending,
        reason: None,
        decision: None,
        resolved_at_ms: None,
        resolver: Value::Null,
    };
    let routed = lock(&shared.conns).values().any(|c| c.approval_client);
    if !routed {
        a.status = Status::Denied;
        a.reason = Some("no-route");
        a.decision = Some("deny".into());
        a.resolved_at_ms = Some(now);
        a.resolver = json!({"id": "no-approval-route", "kind": "system"});
    }
    let entry = a.entry();
    {
        let mut all = lock(&shared.approvals);
        if all.len() >= KEPT {
            all.pop_front();
        }
        all.push_back(a);
    }
    if routed {
        to_approval_clients(shared, &format!("{kind}.approval.requested"), &entry);
        let shared = shared.clone();
        let expiring = id.clone();
        crate::runtime().spawn(async move {
            tokio::time::sleep(timeout).await;
            let mut all = lock(&shared.approvals);
            if let Some(a) = all
                .iter_mut()
                .find(|a| a.id == expiring && a.status == Status::Pending)
            {
                a.status = Status::Expired;
                a.reason = Some("timeout");
                a.resolved_at_ms = Some(now_ms());
                a.resolver = json!({"kind": "system"});
            }
        });
    }
    id
}

/// Ends approval `id` with `decision` as the client `by` answered: `(applied, snapshot)`.
pub(crate) fn resolve(
    shared: &Shared,
    id: &str,
    decision: &str,
    by: &Client,
) -> Option<(bool, Value)> {
    let (applied, snapshot, resolved) = {
        let mut all = lock(&shared.approvals);
        let a = all.iter_mut().find(|a| a.id == id)?;
        if a.status != Status::Pending {
            return Some((false, a.snapshot()));
        }
        a.status = if decision == "deny" {
            Status::Denied
        } else {
            Status::Allowed
        };
        a.reason = Some("user");
        a.decision = Some(decision.to_owned());
        a.resolved_at_ms = Some(now_ms());
        a.resolver = by.resolver();
        let resolved = json!({"decision": decision, "id": a.id, "request": a.request,
                              "resolvedBy": by.name, "ts": a.resolved_at_ms});
        (true, a.snapshot(), (a.kind, resolved))
    };
    to_approval_clients(
        shared,
        &format!("{}.approval.resolved", resolved.0),
        &resolved.1,
    );
    Some((applied, snapshot))
}

/// A restart: every pending approval is cancelled.
pub(crate) fn cancel_pending(shared: &Shared) {
    for a in lock(&shared.approvals)
        .iter_mut()
        .filter(|a| a.status == Status::Pending)
    {
        a.status = Status::Cancelled;
        a.reason = Some("gateway-restart");
        a.resolved_at_ms = Some(now_ms());
        a.resolver = json!({"kind": "system"});
    }
}

fn not_found() -> Value {
    json!({"code": "INVALID_REQUEST", "message": "approval not found",
           "details": {"reason": "APPROVAL_NOT_FOUND"}, "retryable": false})
}

/// The approval methods (`None`: not one of them); `by` is the asking client's name.
pub(crate) fn method(
    shared: &Shared,
    method: &str,
    params: &Map<String, Value>,
    by: &Client,
) -> Option<Result<Value, Value>> {
    let id = params.get("id").and_then(Value::as_str);
    Some(match method {
        "exec.approval.list" | "plugin.approval.list" => {
            let kind = method.split('.').next().unwrap_or("exec");
            Ok(Value::Array(
                lock(&shared.approvals)
                    .iter()
                    .filter(|a| a.kind == kind && a.status == Status::Pending)
                    .map(Approval::entry)
                    .collect(),
            ))
        }
        "approval.get" => lock(&shared.approvals)
            .iter()
            .find(|a| Some(a.id.as_str()) == id)
            .map(|a| json!({"approval": a.snapshot()}))
            .ok_or_else(not_found),
        "approval.resolve" => {
            let decision = params.get("decision").and_then(Value::as_str).unwrap_or("");
            if !["allow-once", "allow-always", "deny"].contains(&decision) {
                return Some(Err(json!({"code": "INVALID_REQUEST",
                    "message": "invalid approval.resolve params: decision must be allow-once, allow-always or deny"})));
            }
            resolve(shared, id.unwrap_or(""), decision, by)
                .map(|(applied, approval)| json!({"applied": applied, "approval": approval}))
                .ok_or_else(not_found)
        }
        _ => return None,
    })
}

/// Approvals as a test raises, answers and reads them.
impl crate::FakeGateway {
    /// Asks for an approval as a run of this gateway would: `kind` `exec` (of command `text`)
    /// or `plugin` (titled `text`), expiring after `timeout`. Sent to the approval clients
    /// connected now; with none, denied at once (`no-route`), as 2026.9.6 does. Its id.
    pub fn request_approval(&self, kind: &str, text: &str, timeout: Duration) -> String {
        match kind {
            "plugin" => request(
                &self.shared,
                "plugin",
                plugin_request(text, "asked by a test", "warning"),
                timeout,
            ),
            _ => request(
                &self.shared,
                "exec",
                exec_request(text, None, Some("main")),
                timeout,
            ),
        }
    }

    /// Asks for an exec approval with this request object as it is (a hostile gateway's).
    pub fn request_raw_approval(&self, request: Value, timeout: Duration) -> String {
        self::request(&self.shared, "exec", request, timeout)
    }

    /// Answers approval `id` as the client named `by` (the gateway's own UI, another operator):
    /// `Some(applied)`, `None` for an unknown id.
    pub fn resolve_approval(&self, id: &str, decision: &str, by: &str) -> Option<bool> {
        let by = Client {
            name: by.to_owned(),
            device_id: None,
        };
        resolve(&self.shared, id, decision, &by).map(|(applied, _)| applied)
    }

    /// Answers approval `id` as the client with device `device_id` would (recorded as
    /// `resolver: {kind: "device", id}`): another answer of the daemon's own device — another
    /// instance of its cluster, or a request of its own that came first.
    pub fn resolve_approval_as_device(
        &self,
        id: &str,
        decision: &str,
        device_id: &str,
    ) -> Option<bool> {
        let by = Client {
            name: "gateway-supervisor".into(),
            device_id: Some(device_id.to_owned()),
        };
        resolve(&self.shared, id, decision, &by).map(|(applied, _)| applied)
    }

    /// Approval `id` as `approval.get` shows it.
    pub fn approval(&self, id: &str) -> Option<Value> {
        let all = lock(&self.shared.approvals);
        all.iter().find(|a| a.id == id).map(Approval::snapshot)
    }
}
