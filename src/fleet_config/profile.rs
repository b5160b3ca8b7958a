//! A config profile: a merge patch for the gateways a selector picks. Profiles apply in name
//! order (a later name wins a path both set); a gateway's desired config is the merge of the
//! profiles that pick it. A secret (one OpenClaw redacts, and more: [`patch::is_secret_leaf`])
//! is split off the patch as it comes in and held encrypted; the profile shows
//! [`patch::REDACTED`] in its place, and the same marker sent back keeps the secret held (as
//! OpenClaw's own `config.patch` restores redacted values).

use serde_json::{Map, Value};

use super::patch::{self, MAX_DEPTH, MAX_LEAVES, REDACTED};
use gateway_supervisor_actors::labels::Selector;

/// The longest profile name (a label value's syntax: it names the profile in URLs and logs).
pub const NAME_MAX: usize = 63;
/// The largest patch, as JSON.
pub const PATCH_BYTES: usize = 64 * 1024;
/// The most `replace_paths` (2026.9.6 takes at most 256).
pub const REPLACE_PATHS_MAX: usize = 256;
/// The longest note.
pub const NOTE_MAX: usize = 500;

/// A profile as stored: the patch with its secrets in their place only in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub selector: Selector,
    /// The patch, secrets replaced by [`REDACTED`]: what is shown.
    pub patch: Map<String, Value>,
    /// The secret leaves, in the patch's shape (in clear: only in memory, encrypted at rest).
    pub secrets: Map<String, Value>,
    /// Array paths the patch replaces whole (`config.patch`'s `replacePaths`).
    pub replace_paths: Vec<String>,
    pub note: Option<String>,
    pub updated_at_ms: i64,
    pub updated_by: String,
}

impl Profile {
    /// The patch as the gateway must get it: secrets in their place.
    pub fn full_patch(&self) -> Map<String, Value> {
        let mut full = self.patch.clone();
        patch::merge(&mut full, &self.secrets);
        full
    }
}

/// Why a profile was refused; the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        field,
        message: message.into(),
    }
}

/// A profile name: 1–63 lower-case letters, digits and `-`, a letter or digit at each end.
pub fn check_name(name: &str) -> Result<(), Invalid> {
    if gateway_supervisor_actors::labels::is_dns_label(name) {
        Ok(())
    } else {
        Err(invalid(
            "name",
            "a profile name is 1–63 lower-case letters, digits and `-`, beginning and ending with a letter or digit",
        ))
    }
}

/// A patch split: what is shown (secrets as the marker) and the secret leaves.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub shown: Map<String, Value>,
    pub secrets: Map<String, Value>,
}

/// The parts of a new profile, checked: the patch split into what is shown and the secrets.
/// A secret leaf sent as [`REDACTED`] keeps the one `held` (the profile's before) at that path.
pub fn split(patch: &Value, held: Option<&Map<String, Value>>) -> Result<Split, Invalid> {
    let Some(obj) = patch.as_object() else {
        return Err(invalid(
            "patch",
            "the patch is a JSON object (a merge patch)",
        ));
    };
    if obj.is_empty() {
        return Err(invalid("patch", "the patch sets nothing"));
    }
    let size = serde_json::to_string(patch).map_or(usize::MAX, |s| s.len());
    if size > PATCH_BYTES {
        return Err(invalid(
            "patch",
            format!("the patch is at most {PATCH_BYTES} bytes (got {size})"),
        ));
    }
    if patch::depth(patch) > MAX_DEPTH {
        return Err(invalid(
            "patch",
            format!("the patch nests at most {MAX_DEPTH} deep"),
        ));
    }
    let leaves = patch::leaves(obj);
    if leaves.len() > MAX_LEAVES {
        return Err(invalid(
            "patch",
            format!("the patch sets at most {MAX_LEAVES} paths"),
        ));
    }
    let mut shown = Map::new();
    let mut secrets = Map::new();
    for (path, value) in leaves {
        if path.iter().any(String::is_empty) {
            return Err(invalid("patch", "a key of the patch is empty"));
        }
        let name = bounded_path(&path);
        if patch::cuts_the_link(&path) {
            return Err(invalid(
                "patch",
                format!(
                    "`{name}` is what this daemon's link to the gateway depends on (its auth, \
                     where it listens, its TLS, its roles): rolled out, it would cut the daemon \
                     off and no revert could reach the gateway. Change it on the gateway's host \
                     and the daemon's record of it (PATCH /api/gateways/{{id}}) together"
                ),
            ));
        }
        if value.as_str() == Some(REDACTED) {
            let kept = held.and_then(|h| patch::get_in(h, &path)).ok_or_else(|| {
                invalid(
                    "patch",
                    format!(
                        "`{name}` is `{REDACTED}`, but the profile holds no secret there to keep"
                    ),
                )
            })?;
            patch::set(&mut secrets, &path, kept.clone());
            patch::set(&mut shown, &path, Value::String(REDACTED.into()));
        } else if patch::is_secret_leaf(&path, value) && !value.is_null() {
            patch::set(&mut secrets, &path, value.clone());
            patch::set(&mut shown, &path, Value::String(REDACTED.into()));
        } else {
            patch::set(&mut shown, &path, value.clone());
        }
    }
    Ok(Split { shown, secrets })
}

/// A path for an error message: escaped and cut.
fn bounded_path(path: &[String]) -> String {
    gateway_supervisor_actors::bounded::text(&patch::dotted(path), 200)
}

/// `replace_paths`: dotted paths, at most 256, each at most 512 characters of printable text.
pub fn check_replace_paths(paths: &[String]) -> Result<(), Invalid> {
    if paths.len() > REPLACE_PATHS_MAX {
        return Err(invalid(
            "replace_paths",
            format!("at most {REPLACE_PATHS_MAX} paths"),
        ));
    }
    if let Some(bad) = paths
        .iter()
        .find(|p| p.is_empty() || p.len() > 512 || p.chars().any(char::is_control))
    {
        return Err(invalid(
            "replace_paths",
            format!(
                "`{}` is not a config path",
                gateway_supervisor_actors::bounded::text(bad, 100)
            ),
        ));
    }
    Ok(())
}

pub fn check_note(note: Option<&str>) -> Result<(), Invalid> {
    match note {
        Some(n)
            if n.chars().count() > NOTE_MAX || n.chars().any(|c| c.is_control() && c != '\n') =>
        {
            Err(invalid(
                "note",
                format!("a note is at most {NOTE_MAX} characters of text"),
            ))
        }
        _ => Ok(()),
    }
}

/// The desired patch of a gateway with these labels: the full patches of the profiles that
/// pick it, merged in name order; and their names.
pub fn desired_for<'a>(
    profiles: &'a [Profile],
    labels: &gateway_supervisor_actors::labels::Labels,
) -> (Map<String, Value>, Vec<&'a str>) {
    let mut ordered: Vec<&Profile> = profiles
        .iter()
        .filter(|p| p.selector.matches(labels))
        .collect();
    ordered.sort_by(|a, b| a.name.cmp(&b.name));
    let mut desired = Map::new();
    for p in &ordered {
        patch::merge(&mut desired, &p.full_patch());
    }
    (desired, ordered.iter().map(|p| p.name.as_str()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_supervisor_actors::labels::Labels;
    use serde_json::json;

    fn profile(name: &str, selector: &str, patch: Value) -> Profile {
        let Split {
            shown: patch,
            secrets,
        } = split(&patch, None).expect("valid");
        Profile {
            name: name.into(),
            selector: Selector::parse(selector).expect("valid"),
            patch,
            secrets,
            replace_paths: vec![],
            note: None,
            updated_at_ms: 0,
            updated_by: "test".into(),
        }
    }

    #[test]
    fn secrets_are_split_off_and_shown_as_the_gateway_shows_them() {
        let Split { shown, secrets } = split(
            &json!({"hooks": {"token": "t0ken", "enabled": true}, "models": {"x": {"apiKey": null}}}),
            None,
        )
        .unwrap();
        assert_eq!(
            Value::Object(shown),
            json!({"hooks": {"token": REDACTED, "enabled": true}, "models": {"x": {"apiKey": null}}})
        );
        assert_eq!(Value::Object(secrets), json!({"hooks": {"token": "t0ken"}}));
    }

    #[test]
    fn the_marker_sent_back_keeps_the_secret_held_and_is_refused_when_none_is() {
        let held = json!({"hooks": {"token": "t0ken"}});
        let Split { secrets, .. } =
            split(&json!({"hooks": {"token": REDACTED}}), held.as_object()).unwrap();
        assert_eq!(Value::Object(secrets), held);
        let e = split(&json!({"hooks": {"token": REDACTED}}), None).unwrap_err();
        assert!(e.message.contains("holds no secret there"), "{e}");
    }

    #[test]
    fn a_change_the_daemon_s_link_depends_on_is_refused_naming_the_path() {
        for cutting in [
            json!({"gateway": {"auth": {"token": "new"}}}),
            json!({"gateway": {"auth": {"mode": "password"}}}),
            json!({"gateway": {"bind": "lan"}}),
            json!({"gateway": {"port": 19001}}),
            json!({"gateway": {"tls": {"enabled": true}}}),
            json!({"gateway": null}),
        ] {
            let e = split(&cutting, None).unwrap_err();
            assert_eq!(e.field, "patch");
            assert!(e.message.contains("cut the daemon off"), "{e}");
        }
        let e = split(&json!({"gateway": {"auth": {"token": "x"}}}), None).unwrap_err();
        assert!(e.message.starts_with("`gateway.auth.token` is what"), "{e}");
        assert!(
            split(
                &json!({"gateway": {"auth": {"rateLimit": {"maxAttempts": 20}}}}),
                None
            )
            .is_ok()
        );
    }

    #[test]
    fn bad_patches_and_names_are_refused_naming_the_field() {
        for bad in [json!([]), json!({}), json!("x"), json!({"": 1})] {
            assert_eq!(split(&bad, None).unwrap_err().field, "patch", "{bad}");
        }
        let mut deep = json!(1);
        for _ in 0..20 {
            deep = json!({"a": deep});
        }
        assert!(split(&deep, None).unwrap_err().message.contains("nests"));
        for bad in ["", "-a", "A", "a_b", &"a".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name("eu-canary-2").is_ok());
        assert!(check_replace_paths(&["a\u{1b}".into()]).is_err());
        assert!(check_note(Some(&"x".repeat(501))).is_err());
    }

    #[test]
    fn profiles_apply_in_name_order_to_the_gateways_they_pick() {
        let profiles = [
            profile(
                "20-eu",
                "region=eu",
                json!({"hooks": {"path": "/eu"}, "tools": {"a": 1}}),
            ),
            profile(
                "10-all",
                "",
                json!({"hooks": {"path": "/all", "maxBodyBytes": 1}}),
            ),
            profile("30-us", "region=us", json!({"tools": {"a": 2}})),
        ];
        let eu = Labels::of([("region", "eu")]).unwrap();
        let (desired, names) = desired_for(&profiles, &eu);
        assert_eq!(names, ["10-all", "20-eu"]);
        assert_eq!(
            Value::Object(desired),
            json!({"hooks": {"path": "/eu", "maxBodyBytes": 1}, "tools": {"a": 1}})
        );
        let (desired, names) = desired_for(&profiles, &Labels::default());
        assert_eq!(names, ["10-all"]);
        assert_eq!(
            Value::Object(desired),
            json!({"hooks": {"path": "/all", "maxBodyBytes": 1}})
        );
    }

    #[test]
    fn the_full_patch_carries_the_secret_and_the_shown_one_never_does() {
        let p = profile("a", "", json!({"hooks": {"token": "t0ken"}}));
        assert_eq!(p.full_patch()["hooks"]["token"], "t0ken");
        assert!(!serde_json::to_string(&p.patch).unwrap().contains("t0ken"));
    }
}
