//! Merge patches (RFC 7396) as profiles hold them: the leaves a patch sets, the merge of
//! several patches into one desired patch, and which paths hold secrets — by OpenClaw
//! 2026.9.6's own rule (`src/config/sensitive-paths.ts`), so a path the gateway redacts is
//! the path the daemon encrypts.

use serde_json::{Map, Value};

/// The string a gateway shows in place of a secret (`config.get`), and a profile shows in
/// place of a secret it holds. Put back unchanged, it keeps the secret held.
pub const REDACTED: &str = "__OPENCLAW_REDACTED__";
/// The deepest a patch may nest.
pub const MAX_DEPTH: usize = 16;
/// The most leaves one patch sets.
pub const MAX_LEAVES: usize = 512;

/// A dotted config path (`gateway.http.endpoints.chatCompletions.enabled`), each key as given.
pub type Path = Vec<String>;

pub fn dotted(path: &[String]) -> String {
    path.join(".")
}

/// Every leaf a merge patch sets, in key order: a path and its value (`null`: removed; an
/// array or a scalar: replaced whole). An empty object is a leaf too (it sets nothing, but
/// its absence in the live config is not drift, so it is skipped).
pub fn leaves(patch: &Map<String, Value>) -> Vec<(Path, &Value)> {
    let mut out = Vec::new();
    walk(patch, &mut Vec::new(), &mut out);
    out
}

fn walk<'a>(obj: &'a Map<String, Value>, at: &mut Path, out: &mut Vec<(Path, &'a Value)>) {
    for (k, v) in obj {
        at.push(k.clone());
        match v {
            Value::Object(inner) => walk(inner, at, out),
            _ => out.push((at.clone(), v)),
        }
        at.pop();
    }
}

/// `later` merged over `earlier`, both merge patches: the patch that does what applying
/// `earlier` then `later` does (a `null` in `later` stays, to remove the key).
pub fn merge(earlier: &mut Map<String, Value>, later: &Map<String, Value>) {
    for (k, v) in later {
        match (earlier.get_mut(k), v) {
            (Some(Value::Object(e)), Value::Object(l)) => merge(e, l),
            _ => {
                earlier.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The value at `path` in a config object, if there is one.
pub fn get<'a>(config: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(config, |v, k| v.as_object()?.get(k))
}

/// The value at `path` in a patch object, if there is one.
pub fn get_in<'a>(root: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let v = root.get(first)?;
    if rest.is_empty() {
        Some(v)
    } else {
        get(v, rest)
    }
}

/// Sets `value` at `path`, making the objects on the way.
pub fn set(root: &mut Map<String, Value>, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut obj = root;
    for k in parents {
        let slot = obj
            .entry(k.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        obj = slot.as_object_mut().expect("made an object above");
    }
    obj.insert(last.clone(), value);
}

/// Names that end like a secret's but are counts (2026.9.6's whitelist).
const NOT_SECRET_SUFFIXES: [&str; 10] = [
    "maxtokens",
    "maxoutputtokens",
    "maxinputtokens",
    "maxcompletiontokens",
    "contexttokens",
    "totaltokens",
    "tokencount",
    "tokenlimit",
    "tokenbudget",
    "passwordfile",
];

/// Whether OpenClaw redacts the value at this path (`isSensitiveConfigPath`): a path ending in
/// `token`, or naming a password, secret, API key, encryption or private key, or a service
/// account — or any variable of a local service's environment.
pub fn is_secret(path: &[String]) -> bool {
    let lower = dotted(path).to_lowercase();
    if lower.contains("localservice.env.") {
        return true;
    }
    if NOT_SECRET_SUFFIXES.iter().any(|s| lower.ends_with(s)) {
        return false;
    }
    lower.ends_with("token")
        || lower.contains("password")
        || lower.contains("secret")
        || has_word_pair(&lower, "api", "key")
        || has_word_pair(&lower, "encrypt", "key")
        || has_word_pair(&lower, "private", "key")
        || lower.ends_with("serviceaccount")
        || lower.ends_with("serviceaccountref")
}

/// `first`, then at most one character, then `second` (the `/api.?key/i` of the rule).
fn has_word_pair(s: &str, first: &str, second: &str) -> bool {
    s.match_indices(first).any(|(i, _)| {
        let rest = &s[i + first.len()..];
        rest.starts_with(second)
            || rest
                .char_indices()
                .nth(1)
                .is_some_and(|(j, _)| rest[j..].starts_with(second))
    })
}

/// Two config values equal as the gateway would read them: numbers by value (`8` and `8.0`).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// How deep a value nests (a scalar is 0).
pub fn depth(v: &Value) -> usize {
    match v {
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Path {
        s.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn secret_paths_are_the_ones_openclaw_redacts() {
        for secret in [
            "gateway.auth.token",
            "models.providers.openai.apiKey",
            "models.providers.x.api_key",
            "channels.slack.botToken",
            "hooks.signingSecret",
            "gateway.auth.password",
            "plugins.x.privateKey",
            "plugins.x.encrypt_key",
            "plugins.gcp.serviceAccount",
            "tools.localService.env.ANYTHING",
        ] {
            assert!(is_secret(&p(secret)), "{secret}");
        }
        for plain in [
            "gateway.port",
            "agents.defaults.maxTokens",
            "models.x.contextTokens",
            "gateway.auth.passwordFile",
            "gateway.http.endpoints.chatCompletions.enabled",
            "gateway.auth.mode",
            // `/encrypt.?key/` allows one character between: 2026.9.6 shows this one.
            "plugins.x.encryptionKey",
        ] {
            assert!(!is_secret(&p(plain)), "{plain}");
        }
    }

    #[test]
    fn a_later_patch_wins_leaf_by_leaf_and_keeps_its_removals() {
        let mut a = json!({"gateway": {"port": 1, "bind": "loopback"}, "tools": {"x": 1}});
        let b = json!({"gateway": {"port": 2}, "tools": null});
        merge(a.as_object_mut().unwrap(), b.as_object().unwrap());
        assert_eq!(
            a,
            json!({"gateway": {"port": 2, "bind": "loopback"}, "tools": null})
        );
        let leaves: Vec<String> = leaves(a.as_object().unwrap())
            .into_iter()
            .map(|(path, _)| dotted(&path))
            .collect();
        assert_eq!(leaves, ["gateway.bind", "gateway.port", "tools"]);
    }

    #[test]
    fn values_compare_as_the_gateway_reads_them() {
        assert!(same(&json!(8), &json!(8.0)));
        assert!(same(&json!({"a": [1, 2.0]}), &json!({"a": [1.0, 2]})));
        assert!(!same(&json!([1, 2]), &json!([2, 1])));
        assert!(!same(&json!("8"), &json!(8)));
    }

    #[test]
    fn set_makes_the_objects_on_the_way() {
        let mut root = Map::new();
        set(&mut root, &p("a.b.c"), json!(true));
        set(&mut root, &p("a.d"), json!(1));
        assert_eq!(
            Value::Object(root),
            json!({"a": {"b": {"c": true}, "d": 1}})
        );
    }
}
