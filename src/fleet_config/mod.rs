//! Desired configuration across the fleet (docs/design.md, *Fleet configuration*): profiles —
//! merge patches for the gateways a label selector picks — and each gateway's drift from them,
//! judged by reading its config back (`config.get`) and comparing values, path by path.
//!
//! Drift is judged by the instance that links the gateway: when its link connects, when a
//! profile changes (here or, seen within [`VERSION_POLL`], on another instance), and every
//! `config.drift_interval`. The judgement is stored, so any instance answers
//! `GET /api/config/drift` for the whole fleet.

pub mod drift;
#[cfg(test)]
mod drift_tests;
pub mod metrics;
pub mod patch;
pub mod profile;
pub mod rollout;
mod schema_ask;
pub mod schema_check;
mod sync;
pub mod waves;

use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::config::FleetConfigConfig;
use crate::db::config_profiles::ProfileRecord;
use crate::db::{DbError, Store};
use crate::fleet::FleetError;
use crate::fleet::operation::{Hands, Operations};
use drift::{DriftState, PathDrift};
use gateway_supervisor_actors::events::EventBus;
use gateway_supervisor_actors::labels::{Labels, Selector};
use gateway_supervisor_actors::model::{Caller, GatewayId};
use profile::{Invalid, Profile};
pub use schema_ask::SchemaChecked;

/// A gateway no profile picks is not read back (a fleet without profiles costs nothing): it is
/// in sync with nothing, and says so.
pub const UNMANAGED: &str = "no profile picks it";
/// A gateway a profile picks, not read back yet (it is when its link connects).
pub const NOT_JUDGED: &str = "not read back yet";

/// How often an instance looks whether another changed a profile.
pub const VERSION_POLL: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("no config profile named `{0}`")]
    NotFound(String),
    #[error(transparent)]
    Storage(#[from] DbError),
    #[error(transparent)]
    Fleet(#[from] FleetError),
    #[error("no config rollout `{0}`")]
    OperationNotFound(String),
    /// A pause, resume or promote that does not apply in the rollout's state.
    #[error("{0}")]
    NotSteerable(String),
}

/// A profile as asked for (`PUT /api/config/profiles/{name}`).
#[derive(Debug, Clone)]
pub struct ProfileSpec {
    pub selector: String,
    pub patch: Value,
    pub replace_paths: Vec<String>,
    pub note: Option<String>,
}

/// A gateway's drift as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GatewayDrift {
    pub gateway_id: GatewayId,
    pub name: String,
    #[schema(value_type = Object)]
    pub labels: Labels,
    pub state: DriftState,
    /// The profiles that pick it, in the order they apply.
    pub profiles: Vec<String>,
    /// The paths that differ.
    pub paths: Vec<PathDrift>,
    /// Secret paths set on the gateway, whose values cannot be read back.
    pub unverified: Vec<String>,
    /// Why the state is `unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it was judged (Unix ms); absent when it has not been yet.
    pub checked_at_ms: Option<i64>,
}

pub struct FleetConfig {
    store: Store,
    /// What it reads and calls gateways with.
    hands: Hands,
    /// Where its rollouts are started and woken.
    operations: Operations,
    events: EventBus,
    cfg: FleetConfigConfig,
    metrics: metrics::DriftMetrics,
    /// A profile changed through this instance: judge again now.
    changed: tokio::sync::Notify,
}

impl FleetConfig {
    pub fn new(
        store: Store,
        operations: Operations,
        events: EventBus,
        cfg: FleetConfigConfig,
        metrics: metrics::DriftMetrics,
    ) -> Self {
        FleetConfig {
            store,
            hands: operations.hands(),
            operations,
            events,
            cfg,
            metrics,
            changed: tokio::sync::Notify::new(),
        }
    }

    async fn stored<T, F>(&self, call: F) -> Result<T, ConfigError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, DbError> + Send + 'static,
    {
        self.store.call(call).await.map_err(ConfigError::Storage)
    }

    pub async fn profiles(&self) -> Result<Vec<Profile>, ConfigError> {
        let records = self.stored(|s| s.config_profiles()).await?;
        Ok(records.into_iter().filter_map(read_profile).collect())
    }

    pub async fn profile(&self, name: &str) -> Result<Profile, ConfigError> {
        let key = name.to_owned();
        self.stored(move |s| s.config_profile(&key))
            .await?
            .and_then(read_profile)
            .ok_or_else(|| ConfigError::NotFound(name.to_owned()))
    }

    /// Creates or replaces a profile (its secrets kept where the marker says so); whether it
    /// was created. Audited with the paths it sets, never their values.
    pub async fn put_profile(
        &self,
        name: &str,
        spec: ProfileSpec,
        by: &Caller,
    ) -> Result<(Profile, bool, SchemaChecked), ConfigError> {
        profile::check_name(name)?;
        let selector = Selector::parse(&spec.selector).map_err(|e| Invalid {
            field: "selector",
            message: e.to_string(),
        })?;
        profile::check_replace_paths(&spec.replace_paths)?;
        profile::check_note(spec.note.as_deref())?;
        let held = match self.profile(name).await {
            Ok(p) => Some(p.secrets),
            Err(ConfigError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let profile::Split { shown, secrets } = profile::split(&spec.patch, held.as_ref())?;
        let now = gateway_supervisor_actors::unix_now_ms();
        let p = Profile {
            name: name.to_owned(),
            selector,
            patch: shown,
            secrets,
            replace_paths: spec.replace_paths,
            note: spec.note,
            updated_at_ms: now,
            updated_by: by.label.clone(),
        };
        // Against the config schema of a gateway it picks, before anything is stored.
        let checked = self.check_schema(&p.selector, &p.full_patch()).await?;
        let record = write_profile(&p);
        let details = json!({
            "selector": p.selector.to_string(),
            "paths": patch::leaf_paths(&p.patch),
            "secrets": patch::leaves(&p.secrets).len(),
            "note": p.note,
            "schema_checked": checked.checked,
        });
        let by = by.clone();
        let created = self
            .stored(move |s| s.put_config_profile(&record, &by, &details))
            .await?;
        tracing::info!(profile = %p.name, selector = %p.selector, created, "config profile saved");
        self.changed.notify_one();
        Ok((p, created, checked))
    }

    pub async fn delete_profile(&self, name: &str, by: &Caller) -> Result<(), ConfigError> {
        let (key, by) = (name.to_owned(), by.clone());
        if !self
            .stored(move |s| s.delete_config_profile(&key, &by))
            .await?
        {
            return Err(ConfigError::NotFound(name.to_owned()));
        }
        tracing::info!(profile = %name, "config profile deleted");
        self.changed.notify_one();
        Ok(())
    }

    /// Each gateway the selector picks, with its drift as last judged.
    pub async fn drift(&self, selector: &Selector) -> Result<Vec<GatewayDrift>, ConfigError> {
        let gateways = self.hands.gateway_labels(None);
        let profiles = self.profiles().await?;
        let judged: std::collections::HashMap<GatewayId, crate::db::config_profiles::DriftRecord> =
            self.stored(|s| s.config_drift())
                .await?
                .into_iter()
                .map(|d| (d.gateway_id, d))
                .collect();
        Ok(gateways
            .into_iter()
            .filter(|(_, _, labels)| selector.matches(labels))
            .map(|(id, name, labels)| {
                let managed = !profile::desired_for(&profiles, &labels).1.is_empty();
                if !managed {
                    return GatewayDrift {
                        gateway_id: id,
                        name,
                        labels,
                        state: DriftState::InSync,
                        profiles: Vec::new(),
                        paths: Vec::new(),
                        unverified: Vec::new(),
                        reason: Some(UNMANAGED.to_owned()),
                        checked_at_ms: None,
                    };
                }
                let detail: Value = judged
                    .get(&id)
                    .and_then(|d| serde_json::from_str(&d.detail).ok())
                    .unwrap_or(Value::Null);
                let field = |k: &str| -> Vec<Value> {
                    detail
                        .get(k)
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                };
                GatewayDrift {
                    gateway_id: id,
                    name,
                    labels,
                    state: judged
                        .get(&id)
                        .and_then(|d| DriftState::parse(&d.state))
                        .unwrap_or(DriftState::Unknown),
                    profiles: field("profiles")
                        .into_iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect(),
                    paths: field("paths")
                        .into_iter()
                        .filter_map(|v| serde_json::from_value(v).ok())
                        .collect(),
                    unverified: field("unverified")
                        .into_iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect(),
                    reason: match judged.get(&id) {
                        None => Some(NOT_JUDGED.to_owned()),
                        Some(_) => detail
                            .get("reason")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                    },
                    checked_at_ms: judged.get(&id).map(|d| d.checked_at_ms),
                }
            })
            .collect())
    }
}

/// A stored profile read back; one that no longer reads (hand-edited) is left out, said once.
fn read_profile(r: ProfileRecord) -> Option<Profile> {
    let object = |text: &str| -> Option<Map<String, Value>> {
        serde_json::from_str::<Value>(text)
            .ok()?
            .as_object()
            .cloned()
    };
    let read = || -> Option<Profile> {
        Some(Profile {
            selector: Selector::parse(&r.selector).ok()?,
            patch: object(&r.patch)?,
            secrets: match r.secrets.as_deref() {
                Some(s) => object(s)?,
                None => Map::new(),
            },
            replace_paths: serde_json::from_str(&r.replace_paths).ok()?,
            note: r.note.clone(),
            updated_at_ms: r.updated_at_ms,
            updated_by: r.updated_by.clone(),
            name: r.name.clone(),
        })
    };
    let p = read();
    if p.is_none() {
        tracing::warn!(profile = %r.name, "a stored config profile does not read; left out");
    }
    p
}

fn write_profile(p: &Profile) -> ProfileRecord {
    ProfileRecord {
        name: p.name.clone(),
        selector: p.selector.to_string(),
        patch: Value::Object(p.patch.clone()).to_string(),
        secrets: (!p.secrets.is_empty()).then(|| Value::Object(p.secrets.clone()).to_string()),
        replace_paths: json!(p.replace_paths).to_string(),
        note: p.note.clone(),
        updated_at_ms: p.updated_at_ms,
        updated_by: p.updated_by.clone(),
    }
}
