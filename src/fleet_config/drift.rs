//! Whether a gateway runs the configuration its profiles say (docs/design.md, *Fleet
//! configuration*): each leaf the desired patch sets is read back from what `config.get`
//! answers and compared by value. Not by hash: 2026.9.6's hashes are HMACs keyed per gateway,
//! so two gateways running one config have different hashes, and a hash says nothing about
//! which path differs. Pure.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::patch::{self, REDACTED};

/// A value from a gateway larger than this (as JSON) is described, not shown.
pub const SHOWN_BYTES: usize = 1024;

/// What `config.get` said, as far as drift needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    /// The config the gateway runs (`config`: the file over its defaults, secrets redacted).
    pub config: Value,
    /// The `baseHash` a write must name.
    pub hash: Option<String>,
    /// The resolved config on disk.
    pub revision: Option<String>,
    /// The config running.
    pub applied: Option<String>,
}

impl Live {
    /// From a `config.get` answer; `None` when it carries no config object.
    pub fn from_answer(answer: &Value) -> Option<Live> {
        let text = |k: &str| {
            answer
                .get(k)
                .and_then(Value::as_str)
                .map(|s| gateway_supervisor_actors::bounded::text(s, 200))
        };
        let config = answer.get("config").filter(|c| c.is_object())?.clone();
        Some(Live {
            config,
            hash: text("hash"),
            revision: text("configRevisionHash"),
            applied: text("appliedConfigHash"),
        })
    }

    /// Saved on disk but not running yet (a change that waits for a restart).
    pub fn saved_not_applied(&self) -> bool {
        matches!((&self.revision, &self.applied), (Some(r), Some(a)) if r != a)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DriftState {
    /// Every path the profiles set reads back as set.
    InSync,
    /// Some path differs (listed).
    Drifted,
    /// The gateway saved a change it has not applied (`configRevisionHash` is not
    /// `appliedConfigHash`): it waits for a restart.
    SavedNotApplied,
    /// Not known: offline, linked by nobody, `config.get` not offered or failed (the reason
    /// given).
    Unknown,
}

impl DriftState {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftState::InSync => "in_sync",
            DriftState::Drifted => "drifted",
            DriftState::SavedNotApplied => "saved_not_applied",
            DriftState::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            DriftState::InSync,
            DriftState::Drifted,
            DriftState::SavedNotApplied,
            DriftState::Unknown,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

/// One path that differs. Values are shown for paths that are not secrets; a secret's are
/// never shown (the desired one is held encrypted, the live one the gateway redacts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PathDrift {
    pub path: String,
    pub secret: bool,
    /// What the profiles set (`null`: removed); absent for a secret. Any JSON value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired: Option<Value>,
    /// What the gateway runs; absent when the path is not set there, or is a secret. Any JSON
    /// value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<Value>,
    /// Whether the gateway has the path at all.
    pub present: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Judged {
    pub state: DriftState,
    /// The paths that differ, in path order.
    pub paths: Vec<PathDrift>,
    /// Secret paths that are set on the gateway: their values cannot be read back (the
    /// gateway redacts them), so they are taken as set, not as drift.
    pub unverified: Vec<String>,
}

/// A value for display: itself, or a description when it is large.
fn shown(v: &Value) -> Value {
    let len = serde_json::to_string(v).map_or(usize::MAX, |s| s.len());
    if len <= SHOWN_BYTES {
        v.clone()
    } else {
        Value::String(format!("({len} bytes, not shown)"))
    }
}

/// The gateway's live config judged against the desired patch (the merge of the profiles
/// that pick it; secrets in clear).
pub fn judge(desired: &Map<String, Value>, live: &Live) -> Judged {
    let mut paths = Vec::new();
    let mut unverified = Vec::new();
    for (path, want) in patch::leaves(desired) {
        if want.as_object().is_some_and(Map::is_empty) {
            continue;
        }
        let have = patch::get(&live.config, &path);
        let redacted = have.and_then(Value::as_str) == Some(REDACTED);
        // Hidden when either side is a secret; compared whenever the gateway shows its value.
        let secret = redacted
            || patch::is_secret_leaf(&path, want)
            || have.is_some_and(|h| patch::is_secret_leaf(&path, h));
        let name = patch::dotted(&path);
        let differs = match (want, have) {
            (Value::Null, None) => false,
            (Value::Null, Some(_)) => true,
            (_, None) => true,
            (_, Some(_)) if redacted || patch::is_secret(&path) => {
                unverified.push(name.clone());
                false
            }
            (w, Some(h)) => !patch::same(w, h),
        };
        if differs {
            paths.push(PathDrift {
                desired: (!secret).then(|| shown(want)),
                live: have.filter(|_| !secret).map(shown),
                present: have.is_some(),
                secret,
                path: name,
            });
        }
    }
    let state = if live.saved_not_applied() {
        DriftState::SavedNotApplied
    } else if paths.is_empty() {
        DriftState::InSync
    } else {
        DriftState::Drifted
    };
    Judged {
        state,
        paths,
        unverified,
    }
}
