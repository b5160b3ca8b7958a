//! Asking a gateway the profile picks for its schema of each path the profile sets
//! (`config.schema.lookup`), and judging the answers with [`super::schema_check`]. The shell
//! around the pure check: which gateway is asked, and what its failures mean.

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::patch;
use super::profile::Invalid;
use super::schema_check;
use super::{ConfigError, FleetConfig};
use crate::fleet::FleetError;
use gateway_supervisor_actors::labels::Selector;
use gateway_supervisor_actors::messages::CallError;
use gateway_supervisor_actors::model::GatewayId;

/// Lookups in flight at once (a real 2026.9.6 answers one in a few milliseconds).
const AT_ONCE: usize = 8;
/// Gateways tried for one that answers lookups.
const ASKED_MAX: usize = 5;
/// 2026.9.6's answer for a path its schema does not have.
const NOT_FOUND: &str = "config schema path not found";

/// How a profile's paths and values were checked when it was saved.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct SchemaChecked {
    /// Every path it sets was found in a gateway's own schema, with a value of the type the
    /// gateway takes there. `false`: saved unchecked (`why`).
    pub checked: bool,
    /// The gateway whose schema it was checked against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_id: Option<GatewayId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

impl SchemaChecked {
    fn unchecked(why: impl Into<String>) -> Self {
        SchemaChecked {
            checked: false,
            gateway_id: None,
            why: Some(why.into()),
        }
    }
}

/// What one lookup said of one leaf.
enum Looked {
    Fits,
    Unknown(String),
    Wrong {
        path: String,
        takes: String,
    },
    /// The gateway could not be asked (it does not offer the method, or the call failed).
    NotAsked(String),
}

impl FleetConfig {
    /// Checks `full` (the patch with its secrets) against the schema of a gateway `selector`
    /// picks: `Err` names the first path the gateway does not know or a value of the wrong
    /// type; `Ok` says whether it could be checked at all.
    pub(super) async fn check_schema(
        &self,
        selector: &Selector,
        full: &Map<String, Value>,
    ) -> Result<SchemaChecked, ConfigError> {
        let picked: Vec<(GatewayId, String)> = self
            .hands
            .gateway_labels(None)
            .into_iter()
            .filter(|(id, _, labels)| selector.matches(labels) && self.hands.reachable(*id))
            .map(|(id, name, _)| (id, name))
            .take(ASKED_MAX)
            .collect();
        let leaves: Vec<(String, Value)> = patch::leaves(full)
            .into_iter()
            // A removal sets nothing; a key holding a dot or a bracket is not a lookup path.
            .filter(|(path, v)| !v.is_null() && path.iter().all(|k| !k.contains(['.', '[', ']'])))
            .map(|(path, v)| (patch::dotted(&path), v.clone()))
            .collect();
        if picked.is_empty() {
            return Ok(SchemaChecked::unchecked(
                "no gateway the selector picks is connected to be asked for its config schema",
            ));
        }
        let mut why = String::new();
        for (id, name) in picked {
            match self.check_on(id, &name, &leaves).await? {
                Ok(()) => {
                    return Ok(SchemaChecked {
                        checked: true,
                        gateway_id: Some(id),
                        why: None,
                    });
                }
                Err(not_asked) => why = not_asked,
            }
        }
        Ok(SchemaChecked::unchecked(why))
    }

    /// The leaves against gateway `id`'s schema: `Ok(Err)` when it could not be asked.
    async fn check_on(
        &self,
        id: GatewayId,
        name: &str,
        leaves: &[(String, Value)],
    ) -> Result<Result<(), String>, ConfigError> {
        let mut looked = futures_util::stream::iter(leaves)
            .map(|(path, value)| self.look(id, path, value))
            .buffered(AT_ONCE);
        while let Some(l) = looked.next().await {
            match l {
                Looked::Fits => {}
                Looked::NotAsked(why) => {
                    return Ok(Err(format!(
                        "gateway `{name}` could not be asked for its config schema: {why}"
                    )));
                }
                Looked::Unknown(path) => {
                    return Err(Invalid {
                        field: "patch",
                        message: format!(
                            "`{path}` is not in the config schema of gateway `{name}`: OpenClaw does not know that path"
                        ),
                    }
                    .into());
                }
                Looked::Wrong { path, takes } => {
                    return Err(Invalid {
                        field: "patch",
                        message: format!(
                            "`{path}` takes {takes} on gateway `{name}` (its config schema)"
                        ),
                    }
                    .into());
                }
            }
        }
        Ok(Ok(()))
    }

    async fn look(&self, id: GatewayId, path: &str, value: &Value) -> Looked {
        let shown = gateway_supervisor_actors::bounded::text(path, 200);
        let asked = self
            .hands
            .call(id, "config.schema.lookup", json!({"path": path}))
            .await;
        match asked {
            Ok(answer) => {
                let schema = answer.get("schema").cloned().unwrap_or(Value::Null);
                if schema_check::fits(value, &schema) {
                    Looked::Fits
                } else {
                    Looked::Wrong {
                        path: shown,
                        takes: schema_check::expected(&schema),
                    }
                }
            }
            Err(FleetError::Call {
                source: CallError::Gateway(shape),
                ..
            }) if shape.message == NOT_FOUND => Looked::Unknown(shown),
            Err(e) => Looked::NotAsked(gateway_supervisor_actors::bounded::text(
                &e.to_string(),
                200,
            )),
        }
    }
}
