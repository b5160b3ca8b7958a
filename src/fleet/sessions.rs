//! Session control: pause, resume or kill one session on the gateway that owns it. Which
//! gateway method does it is one pure rule ([`control_method`]): a gateway with the seed
//! protocol's per-session `control` takes every action through it; real OpenClaw has only
//! `sessions.abort`, which is what kill means there, and no pause or resume.

use gateway_supervisor_actors::events::EventKind;
use std::str::FromStr;

use serde_json::{Value, json};

use super::{FleetError, fenced_process};
use gateway_supervisor_actors::messages::{FindSession, SessionOwner};
use gateway_supervisor_actors::model::{Caller, GatewayId};
use std::sync::Arc;

use super::context::FleetContext;

/// Why a session action could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("session `{0}` not found on any connected gateway")]
    NotFound(String),
    /// The key is on several gateways; the request must say which (`?gateway_id=`).
    #[error("session `{key}` exists on {} gateways; say which with ?gateway_id=", gateways.len())]
    Ambiguous {
        key: String,
        gateways: Vec<(GatewayId, String)>,
    },
    #[error("gateway `{name}` that owns session `{key}` is not connected")]
    OwnerNotConnected { name: String, key: String },
    /// The gateway owning the session has no way to carry out the action.
    #[error(
        "gateway `{name}` (OpenClaw {version}) has no per-session {action}; alternatives: kill the session, or suspend the whole gateway with POST /api/gateways/{id}/suspend"
    )]
    NoControl {
        id: GatewayId,
        name: String,
        version: String,
        action: &'static str,
    },
    /// The key was not found here and some instances of the cluster did not say whether they
    /// have it: acting on a guess could hit the wrong session.
    #[error(
        "instance(s) {} did not answer whether their gateways have session `{key}`; retry, or name the gateway with ?gateway_id=", instances.join(", ")
    )]
    Unheard { key: String, instances: Vec<String> },
    /// The gateway refused because a drain holds it suspended (2026.9.6 refuses
    /// `sessions.abort` then): the drain's own "abort the runs" does it in the order the
    /// gateway accepts.
    #[error(
        "gateway `{name}` is being drained by operation {operation_id} and refuses to abort a run while it is suspended: abort the runs holding the drain with POST /api/operations/{operation_id}/abort-runs, or cancel the drain"
    )]
    Draining {
        name: String,
        gateway_id: GatewayId,
        operation_id: String,
    },
    /// Reaching the owning gateway failed (or another instance links it).
    #[error(transparent)]
    Fleet(#[from] FleetError),
}

impl super::ServiceError for SessionError {
    fn shared(&self) -> Option<&FleetError> {
        match self {
            SessionError::Fleet(e) => Some(e),
            _ => None,
        }
    }

    fn outcome(&self) -> &'static str {
        match self {
            SessionError::NotFound(_) => "not_found",
            SessionError::Ambiguous { .. } => "ambiguous",
            SessionError::OwnerNotConnected { .. } => "not_connected",
            SessionError::NoControl { .. } => "unsupported",
            SessionError::Unheard { .. } => "owner_unavailable",
            SessionError::Draining { .. } => "draining",
            SessionError::Fleet(e) => e.outcome(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAction {
    Pause,
    Resume,
    Kill,
}

impl SessionAction {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionAction::Pause => "pause",
            SessionAction::Resume => "resume",
            SessionAction::Kill => "kill",
        }
    }
}

impl FromStr for SessionAction {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "pause" => Ok(SessionAction::Pause),
            "resume" => Ok(SessionAction::Resume),
            "kill" => Ok(SessionAction::Kill),
            _ => Err(()),
        }
    }
}

/// The gateway method that carries out `action` on `key`, given what the gateway offers;
/// `None` when it has no way to.
pub fn control_method(
    action: SessionAction,
    key: &str,
    offers: impl Fn(&str) -> bool,
) -> Option<(&'static str, Value)> {
    if offers("control") {
        return Some((
            "control",
            json!({"sessionKey": key, "action": action.as_str()}),
        ));
    }
    match action {
        SessionAction::Kill if offers("sessions.abort") => {
            Some(("sessions.abort", json!({"key": key})))
        }
        _ => None,
    }
}

/// Where else the key was looked for, when the request did not name the gateway: a cluster's
/// other instances, each of which caches the sessions of the gateways it links.
#[derive(Debug, Default)]
pub struct Elsewhere {
    /// Gateways linked by other instances that have the key.
    pub gateways: Vec<GatewayId>,
    /// Instances that did not say (the key may be on one of their gateways).
    pub unheard: Vec<String>,
}

/// What a session action did.
pub struct SessionControlled {
    pub gateway_id: GatewayId,
    /// The gateway method used.
    pub method: &'static str,
    /// The gateway's answer.
    pub result: Value,
}

/// Which session an action is for: its key, the gateway if the request named it, the gateway
/// process if the caller names the one it saw, and what the other instances said.
#[derive(Debug, Default)]
pub struct SessionTarget {
    pub key: String,
    pub gateway_id: Option<GatewayId>,
    pub expected_boot_id: Option<String>,
    pub elsewhere: Elsewhere,
}

/// A session's actions (kill, pause, resume, reply, …), sent to the gateway that owns it.
#[derive(Clone)]
pub struct SessionControl {
    ctx: Arc<FleetContext>,
}

impl SessionControl {
    pub fn new(ctx: Arc<FleetContext>) -> Self {
        SessionControl { ctx }
    }
    /// Gateway `gateway_id` as the owner of session `key` when the session cache does not
    /// have it but a spawn this daemon started there runs in it: a run started just before a
    /// suspension is not listed until the gateway lists again (it refuses `sessions.list`
    /// while suspended), and it must stay controllable meanwhile.
    async fn spawned_on(
        &self,
        key: &str,
        gateway_id: Option<GatewayId>,
    ) -> Result<Option<SessionOwner>, FleetError> {
        let Some(id) = gateway_id else {
            return Ok(None);
        };
        let spawned = self
            .ctx
            .stored(move |store| store.running_spawns_on(id, 500))
            .await?
            .iter()
            .any(|s| s.session_key.as_deref() == Some(key));
        if !spawned {
            return Ok(None);
        }
        Ok(self.ctx.target(id).and_then(|t| {
            Some(SessionOwner {
                gateway_id: t.candidate.id,
                name: t.candidate.name.to_string(),
                version: t.version.clone(),
                connected: t.candidate.healthy,
                methods: t.methods.clone(),
                link: t.link.clone()?,
                boot_id: t.boot_id.clone(),
            })
        }))
    }

    /// The running drain that holds gateway `id` suspended, when `refused` is the gateway's
    /// refusal for its suspension (`protocol::suspend::refused_while_suspended`). Asked only
    /// after such a refusal: a kill costs no store read otherwise.
    async fn drain_holding(&self, refused: &FleetError, id: GatewayId) -> Option<String> {
        let suspended = refused
            .refusal()
            .is_some_and(gateway_supervisor_actors::protocol::suspend::refused_while_suspended);
        if !suspended {
            return None;
        }
        let holding = self
            .ctx
            .stored(move |store| store.operations_holding(id))
            .await
            .ok()?;
        holding
            .into_iter()
            .find(|op| {
                op.progress.iter().any(|p| {
                    p.gateway_id == id
                        && matches!(p.step, crate::domain::operation::Step::Draining { .. })
                })
            })
            .map(|op| op.id.to_string())
    }

    #[tracing::instrument(name = "session.control", skip_all, fields(action = action.as_str()))]
    pub async fn control_session(
        &self,
        target: SessionTarget,
        action: SessionAction,
        by: &Caller,
    ) -> Result<SessionControlled, SessionError> {
        let result = self.control_session_now(target, action, by).await;
        self.ctx.counters.session_control(action.as_str(), &result);
        result
    }

    async fn control_session_now(
        &self,
        target: SessionTarget,
        action: SessionAction,
        by: &Caller,
    ) -> Result<SessionControlled, SessionError> {
        let SessionTarget {
            key,
            gateway_id,
            expected_boot_id,
            elsewhere,
        } = target;
        let key = key.as_str();
        let mut owners = self
            .ctx
            .registry
            .send(FindSession {
                key: key.to_owned(),
                gateway_id,
            })
            .await
            .map_err(FleetError::Registry)?;
        // A key on several gateways names no one session: never a guess.
        let remote: Vec<GatewayId> = elsewhere
            .gateways
            .iter()
            .copied()
            .filter(|id| owners.iter().all(|o| o.gateway_id != *id))
            .collect();
        if owners.len() + remote.len() > 1 {
            let mut gateways: Vec<(GatewayId, String)> = owners
                .iter()
                .map(|o| (o.gateway_id, o.name.clone()))
                .collect();
            gateways.extend(self.ctx.targets().names_of(&remote));
            return Err(SessionError::Ambiguous {
                key: key.to_owned(),
                gateways,
            });
        }
        // Not a guess either: an instance that did not answer may have it too.
        if !elsewhere.unheard.is_empty() {
            return Err(SessionError::Unheard {
                key: key.to_owned(),
                instances: elsewhere.unheard,
            });
        }
        if let Some(&id) = remote.first() {
            return match self.ctx.linked_elsewhere(id).await? {
                Some(owner) => Err(FleetError::LinkedElsewhere { id, owner }.into()),
                // Its instance let go of it since it answered.
                None => Err(SessionError::NotFound(key.to_owned())),
            };
        }
        let owner = match owners.pop() {
            Some(owner) => Some(owner),
            None => self.spawned_on(key, gateway_id).await?,
        };
        let Some(owner) = owner else {
            // Named on a gateway another instance links: that instance has its sessions.
            if let Some(id) = gateway_id
                && let Some(owner) = self.ctx.linked_elsewhere(id).await?
            {
                return Err(FleetError::LinkedElsewhere { id, owner }.into());
            }
            return Err(SessionError::NotFound(key.to_owned()));
        };
        if !owner.connected {
            return Err(SessionError::OwnerNotConnected {
                name: owner.name,
                key: key.to_owned(),
            });
        }
        let Some((method, params)) =
            control_method(action, key, |m| owner.methods.iter().any(|x| x == m))
        else {
            return Err(SessionError::NoControl {
                id: owner.gateway_id,
                name: owner.name,
                version: owner.version.unwrap_or_else(|| "unknown".into()),
                action: action.as_str(),
            });
        };
        let process = fenced_process(expected_boot_id.as_deref(), owner.boot_id.as_deref())
            .map_err(|_| {
                FleetError::unverifiable(owner.gateway_id, &owner.name, owner.version.as_deref())
            })?;
        let called = owner
            .link
            .call_on(process, method, Some(params), self.ctx.deadlines.call)
            .await;
        let result = match called {
            Ok(result) => result,
            Err(source) => {
                let refused = FleetError::Call {
                    name: owner.name.clone(),
                    source,
                };
                return Err(match self.drain_holding(&refused, owner.gateway_id).await {
                    Some(operation_id) => SessionError::Draining {
                        name: owner.name,
                        gateway_id: owner.gateway_id,
                        operation_id,
                    },
                    None => refused.into(),
                });
            }
        };
        self.ctx.audited(
            by,
            "session.control",
            ("session", key.to_owned()),
            json!({"action": action.as_str(), "gateway_id": owner.gateway_id, "method": method}),
        )
        .await;
        self.ctx.events.publish(
            EventKind::SessionChanged,
            Some(owner.gateway_id),
            json!({"session": key, "action": action.as_str()}),
        );
        Ok(SessionControlled {
            gateway_id: owner.gateway_id,
            method,
            result,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SessionAction::*;

    #[test]
    fn a_seed_gateway_takes_every_action_through_control() {
        let seed = |m: &str| m == "control" || m == "sessions.abort";
        for action in [Pause, Resume, Kill] {
            let (method, params) = control_method(action, "s1", seed).unwrap();
            assert_eq!(method, "control");
            assert_eq!(params["action"], action.as_str());
            assert_eq!(params["sessionKey"], "s1");
        }
    }

    #[test]
    fn real_openclaw_kills_with_sessions_abort_and_cannot_pause_or_resume() {
        let openclaw = |m: &str| m == "sessions.abort";
        let (method, params) = control_method(Kill, "agent:main:main", openclaw).unwrap();
        assert_eq!(
            (method, params["key"].as_str()),
            ("sessions.abort", Some("agent:main:main"))
        );
        assert!(control_method(Pause, "k", openclaw).is_none());
        assert!(control_method(Resume, "k", openclaw).is_none());
    }

    #[test]
    fn a_gateway_without_either_method_can_do_nothing() {
        for action in [Pause, Resume, Kill] {
            assert!(control_method(action, "k", |_| false).is_none());
        }
    }

    #[test]
    fn actions_parse_from_their_names_only() {
        assert_eq!("kill".parse(), Ok(Kill));
        assert!("Kill".parse::<SessionAction>().is_err());
        assert!("".parse::<SessionAction>().is_err());
    }
}
