//! What a rollout saves before it writes, and how it reads its write back. Pure.
//!
//! The saved values are the gateway's *file* (`config.get`'s `parsed`), not its running config
//! (`config`, which has the defaults in): a path the file did not set is put back as not set
//! (`null` at the shallowest key the file lacked), so a revert leaves no default written out
//! and no empty object behind. A secret the file holds is shown redacted and cannot be saved:
//! it is left out of the revert and named (docs/design.md, *Config rollouts*: its revert, and what it cannot put back).

use serde_json::{Map, Value};

use super::super::drift::{self, DriftState, Live};
use super::super::patch::{self, REDACTED};

/// The most array paths a revert names in `replacePaths` (2026.9.6 takes at most 256).
const REPLACE_MAX: usize = 256;

/// What putting a gateway back takes: the merge patch of its earlier values, the array paths
/// it replaces whole, and the secrets it cannot put back.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Saved {
    pub patch: Map<String, Value>,
    pub replace_paths: Vec<String>,
    pub kept: Vec<String>,
}

/// The values `patch` replaces in `file` (the gateway's file as `config.get` shows it).
pub fn previous(patch: &Map<String, Value>, file: &Value) -> Saved {
    let mut out = Map::new();
    let mut replace_paths = Vec::new();
    let mut kept = Vec::new();
    for (path, _) in patch::leaves(patch) {
        // The shallowest key the file lacks, if any.
        let missing = (1..=path.len()).find(|n| patch::get(file, &path[..*n]).is_none());
        match missing {
            Some(n) => patch::set(&mut out, &path[..n], Value::Null),
            None => {
                let was = patch::get(file, &path).cloned().unwrap_or(Value::Null);
                if was.as_str() == Some(REDACTED) {
                    kept.push(patch::dotted(&path));
                    continue;
                }
                if was.is_array() && replace_paths.len() < REPLACE_MAX {
                    replace_paths.push(patch::dotted(&path));
                }
                patch::set(&mut out, &path, was);
            }
        }
    }
    Saved {
        patch: out,
        replace_paths,
        kept,
    }
}

/// Whether the gateway runs what `patch` set: `Err` names the first path that reads
/// otherwise (a secret cannot be read back: taken as set).
pub fn read_back(patch: &Map<String, Value>, live: &Live) -> Result<(), String> {
    let judged = drift::judge(patch, live);
    if judged.state == DriftState::SavedNotApplied {
        return Err("saved but not applied (configRevisionHash is not appliedConfigHash)".into());
    }
    match judged.paths.first() {
        None => Ok(()),
        Some(d) => Err(format!(
            "{} is {}, not {}",
            d.path,
            d.live
                .as_ref()
                .map_or_else(|| "not set".to_owned(), Value::to_string),
            d.desired
                .as_ref()
                .map_or_else(|| "the value written".to_owned(), Value::to_string),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_path_the_file_did_not_set_is_put_back_as_not_set_at_its_shallowest_missing_key() {
        let patch = obj(
            json!({"gateway": {"http": {"endpoints": {"chatCompletions": {"enabled": true}}}}}),
        );
        let file = json!({"gateway": {"mode": "local"}});
        let saved = previous(&patch, &file);
        assert_eq!(saved.patch, obj(json!({"gateway": {"http": null}})));
        assert!(saved.kept.is_empty());
    }

    #[test]
    fn a_set_value_is_saved_as_it_was_and_an_array_is_replaced_whole() {
        let patch = obj(
            json!({"agents": {"defaults": {"maxConcurrent": 2}}, "gateway": {"controlUi": {"allowedOrigins": ["b"]}}}),
        );
        let file = json!({"agents": {"defaults": {"maxConcurrent": 8}}, "gateway": {"controlUi": {"allowedOrigins": ["a", "c"]}}});
        let saved = previous(&patch, &file);
        assert_eq!(
            saved.patch,
            obj(
                json!({"agents": {"defaults": {"maxConcurrent": 8}}, "gateway": {"controlUi": {"allowedOrigins": ["a", "c"]}}})
            )
        );
        assert_eq!(saved.replace_paths, ["gateway.controlUi.allowedOrigins"]);
    }

    #[test]
    fn a_secret_the_gateway_shows_redacted_cannot_be_saved_and_is_named() {
        let patch = obj(json!({"gateway": {"auth": {"token": "new"}}}));
        let file = json!({"gateway": {"auth": {"token": REDACTED}}});
        let saved = previous(&patch, &file);
        assert!(saved.patch.is_empty());
        assert_eq!(saved.kept, ["gateway.auth.token"]);
        // A secret the file did not hold is put back as not set: that can be done.
        let saved = previous(&patch, &json!({"gateway": {}}));
        assert_eq!(saved.patch, obj(json!({"gateway": {"auth": null}})));
    }

    #[test]
    fn read_back_names_the_first_path_that_differs_and_takes_a_secret_as_set() {
        let live = |config: Value| Live {
            config,
            hash: None,
            revision: Some("r".into()),
            applied: Some("r".into()),
        };
        let patch = obj(json!({"a": {"b": true}, "gateway": {"auth": {"token": "t"}}}));
        let ok = live(json!({"a": {"b": true}, "gateway": {"auth": {"token": REDACTED}}}));
        assert_eq!(read_back(&patch, &ok), Ok(()));
        let off = live(json!({"a": {"b": false}, "gateway": {"auth": {"token": REDACTED}}}));
        assert_eq!(
            read_back(&patch, &off),
            Err("a.b is false, not true".into())
        );
        let pending = Live {
            applied: Some("old".into()),
            ..ok
        };
        assert!(
            read_back(&patch, &pending)
                .unwrap_err()
                .starts_with("saved but not applied")
        );
    }
}
