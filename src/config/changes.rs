//! Which settings differ between two configurations, by their dotted names
//! (`gateways.heartbeat_interval`): what a SIGHUP reload reports as waiting for a restart. The
//! two are compared through their serialized form, so a key added to any section is compared
//! without being listed here. The hand-written list this replaced named 6 of the 92 keys: a
//! changed `gateways.heartbeat_interval` was reloaded with "configuration reloaded" and nothing
//! else, and never applied.

use serde_json::Value;

use super::Config;

/// The dotted names of the settings whose values differ, sorted. Names only: a value (a
/// database URL with its password, the master key) is never part of the answer.
pub fn changed_keys(running: &Config, new: &Config) -> Vec<String> {
    let (Ok(a), Ok(b)) = (serde_json::to_value(running), serde_json::to_value(new)) else {
        // A configuration always serializes (`check-config --format json` does it); were one
        // not to, say everything changed rather than nothing.
        return vec!["(the whole configuration)".to_owned()];
    };
    let mut out = Vec::new();
    walk("", &a, &b, &mut out);
    // The secrets are never serialized (`check-config` must not print them): compared here.
    let secrets = [
        ("alerts.secret", running.alerts.secret != new.alerts.secret),
        (
            "secrets.master_key",
            running.secrets.master_key != new.secrets.master_key,
        ),
        (
            "sso.client_secret",
            running.sso.client_secret != new.sso.client_secret,
        ),
        (
            "audit.sink_secret",
            running.audit.sink_secret != new.audit.sink_secret,
        ),
    ];
    out.extend(
        secrets
            .into_iter()
            .filter(|(_, changed)| *changed)
            .map(|(key, _)| key.to_owned()),
    );
    out.sort();
    out
}

fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let later = b.keys().filter(|k| !a.contains_key(*k));
            for key in a.keys().chain(later) {
                let name = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let missing = Value::Null;
                walk(
                    &name,
                    a.get(key).unwrap_or(&missing),
                    b.get(key).unwrap_or(&missing),
                    out,
                );
            }
        }
        _ if a != b => out.push(path.to_owned()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_same_configuration_has_no_changed_key() {
        assert!(changed_keys(&Config::default(), &Config::default()).is_empty());
    }

    #[test]
    fn a_changed_setting_is_named_by_its_section_and_key() {
        let mut new = Config::default();
        new.gateways.heartbeat_interval = Duration::from_secs(10);
        new.server.stream_keepalive = Duration::from_secs(5);
        assert_eq!(
            changed_keys(&Config::default(), &new),
            ["gateways.heartbeat_interval", "server.stream_keepalive"]
        );
    }

    #[test]
    fn a_secret_that_changed_is_named_without_its_value() {
        let mut new = Config::default();
        new.secrets.master_key = Some("c2VjcmV0LW1hc3Rlci1rZXk=".into());
        new.alerts.secret = Some("hunter2-webhook-secret".into());
        new.database.url = "postgres://u:hunter2@db/x".into();
        let changed = changed_keys(&Config::default(), &new);
        assert_eq!(
            changed,
            ["alerts.secret", "database.url", "secrets.master_key"]
        );
        assert!(!format!("{changed:?}").contains("hunter2"));
    }

    #[test]
    fn a_table_added_to_a_list_names_the_list() {
        let mut new = Config::default();
        new.managed
            .push(serde_json::json!({"name": "m1", "version": "2026.9.6"}));
        assert_eq!(changed_keys(&Config::default(), &new), ["managed"]);
    }
}
