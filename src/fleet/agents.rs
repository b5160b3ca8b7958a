//! Agent sync: the acting primary's `agents.list`, upserted by name. What an `agents.list`
//! answer means is one pure reader ([`agents_from_list`]).

use serde_json::{Map, Value, json};

use super::FleetError;
use crate::db::agents::{GatewayAgent, SyncReport};
use gateway_supervisor_actors::model::Caller;
use std::sync::Arc;

use super::context::FleetContext;

/// The fields of an `agents.list` entry worth keeping beside its id.
const KEPT: [&str; 4] = ["workspace", "model", "agentRuntime", "name"];

/// The agents in an `agents.list` answer: entries without a string `id` are skipped.
pub fn agents_from_list(payload: &Value) -> Vec<GatewayAgent> {
    let Some(entries) = payload.get("agents").and_then(Value::as_array) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|e| {
            let name = e.get("id").and_then(Value::as_str)?.to_owned();
            let details: Map<String, Value> = KEPT
                .iter()
                .filter_map(|k| Some(((*k).to_owned(), e.get(*k)?.clone())))
                .collect();
            Some(GatewayAgent {
                name,
                details: Value::Object(details),
            })
        })
        .collect()
}

/// Why the agents could not be synced.
#[derive(Debug, thiserror::Error)]
pub enum AgentsError {
    /// No gateway is the acting primary in this instance's view: none is registered, or none of
    /// the `registered` ones has been elected (none healthy, or the election's word has not
    /// reached this instance yet).
    #[error("{}", super::no_primary(*registered))]
    NoPrimary { registered: usize },
    #[error("the primary gateway `{name}` is not connected")]
    PrimaryNotConnected { name: String },
    #[error(transparent)]
    Fleet(#[from] FleetError),
}

impl super::ServiceError for AgentsError {
    fn outcome(&self) -> &'static str {
        match self {
            AgentsError::NoPrimary { .. } | AgentsError::PrimaryNotConnected { .. } => {
                "not_connected"
            }
            AgentsError::Fleet(e) => e.outcome(),
        }
    }

    fn shared(&self) -> Option<&FleetError> {
        match self {
            AgentsError::Fleet(e) => Some(e),
            _ => None,
        }
    }
}

/// The agents the gateways run, synced into the store.
#[derive(Clone)]
pub struct Agents {
    ctx: Arc<FleetContext>,
}

impl Agents {
    pub fn new(ctx: Arc<FleetContext>) -> Self {
        Agents { ctx }
    }
    /// Reads the acting primary's agents and upserts them; `by` is audited.
    #[tracing::instrument(name = "agents.sync", skip_all)]
    pub async fn sync_agents(&self, by: Caller) -> Result<SyncReport, AgentsError> {
        let (primary, registered) = self.ctx.targets().acting_primary();
        let primary = primary.ok_or(AgentsError::NoPrimary { registered })?;
        let name = primary.candidate.name.to_string();
        let Some(link) = primary.link.clone().filter(|_| primary.candidate.healthy) else {
            // Linked by another instance: the sync is that instance's to run.
            if let Some(owner) = self.ctx.linked_elsewhere(primary.candidate.id).await? {
                let id = primary.candidate.id;
                return Err(FleetError::LinkedElsewhere { id, owner }.into());
            }
            return Err(AgentsError::PrimaryNotConnected { name });
        };
        let payload = link
            .call("agents.list", Some(json!({})), self.ctx.deadlines.call)
            .await
            .map_err(|source| FleetError::Call { name, source })?;
        let list = agents_from_list(&payload);
        let gateway_id = primary.candidate.id;
        let report = self
            .ctx
            .stored(move |store| store.sync_agents(gateway_id, &list, &by))
            .await?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_are_read_by_id_with_the_fields_worth_keeping() {
        let payload = json!({"agents": [
            {"id": "main", "name": "Main", "model": "m1", "workspace": "/w", "secret": "x"},
            {"name": "no id"},
            {"id": 7},
            {"id": "writer"},
        ]});
        let agents = agents_from_list(&payload);
        let names: Vec<&str> = agents.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["main", "writer"]);
        assert_eq!(
            agents[0].details,
            json!({"workspace": "/w", "model": "m1", "name": "Main"})
        );
        assert_eq!(agents[1].details, json!({}));
    }

    #[test]
    fn an_answer_without_agents_lists_none() {
        assert!(agents_from_list(&json!({})).is_empty());
        assert!(agents_from_list(&json!({"agents": "nope"})).is_empty());
    }
}
