//! Merge patches (RFC 7396) as profiles hold them: the leaves a patch sets, the merge of
//! several patches into one desired patch, and which leaves hold secrets ([`is_secret_leaf`]):
//! every path OpenClaw 2026.9.6 redacts — its name rule (`src/config/sensitive-paths.ts`) and
//! its schema's own list of sensitive paths (173 of them, captured from the release:
//! `testdata/openclaw-captures/2026.9.6/config_sensitive_paths.json`) — and, more
//! conservative than the gateway, names of credentials it does not list (`authorization`,
//! `cookie`, `credentials`, `…key`) and URLs that carry a user's password or a token. A leaf
//! the gateway redacts is a leaf the daemon encrypts and never shows; a few more are hidden
//! than the gateway hides, none fewer.

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

/// The dotted paths a merge patch sets, in key order (what an audit row names, never the
/// values).
pub fn leaf_paths(patch: &Map<String, Value>) -> Vec<String> {
    leaves(patch).iter().map(|(path, _)| dotted(path)).collect()
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

/// Whether a change at `path` can cut this daemon's own link to the gateway: its auth (mode,
/// token, password, trusted proxy, Tailscale, identity scopes — all but the failed-auth rate
/// limit), where it listens (`port`, `mode`, `bind`, `customBindHost`), its TLS, its roles
/// (the scopes the daemon's operator connection is granted), or the whole `gateway` section.
/// On a real 2026.9.6, a rolled-out `gateway.auth.token` closed the daemon's socket (4001),
/// the daemon could not reconnect with the token it holds, and the revert could not reach the
/// gateway to put it back: it had to be fixed by hand on its host.
pub fn cuts_the_link(path: &[String]) -> bool {
    let lower: Vec<String> = path.iter().map(|k| k.to_lowercase()).collect();
    let keys: Vec<&str> = lower.iter().map(String::as_str).collect();
    match keys.as_slice() {
        ["gateway"] => true,
        [
            "gateway",
            "port" | "mode" | "bind" | "custombindhost" | "tls" | "roles",
            ..,
        ] => true,
        ["gateway", "auth"] => true,
        ["gateway", "auth", first, ..] => *first != "ratelimit",
        _ => false,
    }
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

/// The release's own sensitive paths, as `(segment, is_array_element)` lists: `*` any key.
static SCHEMA_SECRETS: std::sync::LazyLock<Vec<Vec<(String, bool)>>> =
    std::sync::LazyLock::new(|| {
        let captured: Value = serde_json::from_str(include_str!(
            "../../testdata/openclaw-captures/2026.9.6/config_sensitive_paths.json"
        ))
        .expect("the captured list of sensitive paths is JSON");
        captured["sensitive"]
            .as_array()
            .expect("the capture lists its sensitive paths")
            .iter()
            .filter_map(Value::as_str)
            .map(|pattern| {
                pattern
                    .split('.')
                    .map(|seg| match seg.strip_suffix("[]") {
                        Some(name) => (name.to_lowercase(), true),
                        None => (seg.to_lowercase(), false),
                    })
                    .collect()
            })
            .collect()
    });

/// Whether `path` (lower case) is one of the schema's sensitive paths, or holds one inside
/// the object or array it sets whole (`held_inside`: the leaf is an object or array).
fn in_schema_list(path: &[String], held_inside: bool) -> bool {
    let lower: Vec<String> = path.iter().map(|k| k.to_lowercase()).collect();
    SCHEMA_SECRETS.iter().any(|pattern| {
        let matched = pattern
            .iter()
            .zip(&lower)
            .take_while(|((seg, _), key)| seg == "*" || seg == *key)
            .count();
        // The pattern whole, at the path or above it: the path is (under) a secret.
        if matched == pattern.len() {
            return true;
        }
        // The path whole, above the pattern: a secret inside the value set there (an array
        // element's field: the array is the leaf).
        matched == lower.len()
            && (held_inside
                || pattern
                    .get(matched.wrapping_sub(1))
                    .is_some_and(|(_, a)| *a))
    })
}

/// Key names (lower case, without `-` and `_`) of credentials the gateway's rule does not
/// catch, hidden anyway: a header or setting named so carries a secret.
const CREDENTIAL_NAMES: [&str; 5] = [
    "authorization",
    "cookie",
    "credential",
    "passphrase",
    "bearer",
];

/// Whether the leaf at `path` holds a secret (see the module's opening): the gateway's rule
/// on the path, the release's list of sensitive paths, the credential names, or a value
/// that is a URL carrying credentials (or an object or array holding one).
pub fn is_secret_leaf(path: &[String], value: &Value) -> bool {
    let held_inside = value.is_array() || value.as_object().is_some_and(|o| !o.is_empty());
    is_secret(path)
        || in_schema_list(path, held_inside)
        || path.last().is_some_and(|k| {
            let k: String = k
                .to_lowercase()
                .chars()
                .filter(|c| !matches!(c, '-' | '_'))
                .collect();
            CREDENTIAL_NAMES.iter().any(|n| k.contains(n)) || k.ends_with("key")
        })
        || holds_url_secret(value, 0)
}

/// A URL's query parameters that carry a credential (2026.9.6's list, `redact-sensitive-url`,
/// lower case, `-` as `_`).
const URL_SECRET_PARAMS: [&str; 32] = [
    "token",
    "key",
    "api_key",
    "apikey",
    "secret",
    "access_token",
    "auth_token",
    "password",
    "pass",
    "passwd",
    "auth",
    "jwt",
    "session",
    "id_token",
    "code",
    "client_secret",
    "app_secret",
    "hook_token",
    "refresh_token",
    "signature",
    "x_amz_signature",
    "x_amz_security_token",
    "private_key",
    "credential",
    "authorization",
    "sig",
    "x_api_key",
    "x_access_token",
    "x_auth_token",
    "code_verifier",
    "client_assertion",
    "sessionid",
];

/// Whether a string is a URL that carries a credential: a user (and password) before the
/// host (`https://user:pw@host`), or a query parameter that names one (`?token=…`).
pub fn url_has_credentials(s: &str) -> bool {
    let Some(at) = s.find("://") else {
        return false;
    };
    let rest = &s[at + 3..];
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return true;
    }
    let Some(q) = rest.find(['?', '#']) else {
        return false;
    };
    rest[q + 1..].split(['&', '?', '#', ';']).any(|pair| {
        let name = pair
            .split('=')
            .next()
            .unwrap_or("")
            .to_lowercase()
            .replace('-', "_");
        URL_SECRET_PARAMS.contains(&name.as_str())
            || name.ends_with("_token")
            || name.ends_with("_secret")
    })
}

fn holds_url_secret(v: &Value, depth: usize) -> bool {
    match v {
        Value::String(s) => url_has_credentials(s),
        Value::Array(a) if depth < MAX_DEPTH => a.iter().any(|x| holds_url_secret(x, depth + 1)),
        Value::Object(o) if depth < MAX_DEPTH => o.values().any(|x| holds_url_secret(x, depth + 1)),
        _ => false,
    }
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
    fn leaves_the_release_lists_as_sensitive_are_secrets_whatever_their_name() {
        let v = json!("x");
        for secret in [
            // 2026.9.6 shows each of these as `__OPENCLAW_REDACTED__`.
            "models.providers.openai.headers.Authorization",
            "models.providers.p.headers.X-Custom",
            "mcp.servers.files.env.HOME_DIR",
            "models.providers.p.request.tls.cert",
            "agents.defaults.sandbox.ssh.knownHostsData",
            "channels.synology-chat.webhookUrl",
            "gateway.remote.edgeAuth.anything",
            "gateway.remote.edgeAuth.deeper.still",
            // The conservative names: credentials under other names.
            "tools.web.fetch.cookie",
            "plugins.x.Set-Cookie",
            "plugins.x.credentials",
            "plugins.x.proxy_authorization",
            "plugins.x.signingKey",
        ] {
            assert!(is_secret_leaf(&p(secret), &v), "{secret}");
        }
        // A field of an array's elements: the array the patch sets is hidden whole.
        assert!(is_secret_leaf(
            &p("hooks.mappings"),
            &json!([{"sessionKey": "s", "match": "x"}])
        ));
        // An object holding a listed path below it is hidden whole.
        assert!(is_secret_leaf(
            &p("models.providers.p.headers"),
            &json!({"A": "b"})
        ));
        for plain in [
            "models.providers.p.baseUrl",
            "gateway.http.endpoints.chatCompletions.enabled",
            "agents.defaults.model.primary",
            "models.providers.p.models",
        ] {
            assert!(!is_secret_leaf(&p(plain), &v), "{plain}");
        }
    }

    #[test]
    fn urls_carrying_a_user_or_a_token_are_secrets_at_any_path() {
        for url in [
            "https://user:pw@proxy.example:8080",
            "http://user@host/x",
            "wss://relay.example/ws?token=abc",
            "https://h/x?a=1&X-Amz-Signature=abc",
            "https://h/hook#access_token=abc",
            "https://h/x?hook_token=abc",
        ] {
            assert!(url_has_credentials(url), "{url}");
            assert!(is_secret_leaf(
                &p("models.providers.p.baseUrl"),
                &json!(url)
            ));
        }
        for url in [
            "https://api.example/v1",
            "https://h/x?model=a&limit=2",
            "https://h/a@b/path",
            "not a url user:pw@host",
        ] {
            assert!(!url_has_credentials(url), "{url}");
        }
        assert!(is_secret_leaf(
            &p("browser.profiles"),
            &json!({"a": {"cdpUrl": "http://u:p@h:9222"}})
        ));
    }

    #[test]
    fn what_the_daemon_s_link_depends_on_is_known() {
        for cuts in [
            "gateway.auth.token",
            "gateway.auth.mode",
            "gateway.auth.password",
            "gateway.auth",
            "gateway.Auth.Token",
            "gateway.bind",
            "gateway.customBindHost",
            "gateway.port",
            "gateway.tls.enabled",
            "gateway.tls",
            "gateway.roles.operator",
            "gateway",
        ] {
            assert!(cuts_the_link(&p(cuts)), "{cuts}");
        }
        for safe in [
            "gateway.auth.rateLimit.maxAttempts",
            "gateway.http.endpoints.chatCompletions.enabled",
            "gateway.controlUi.basePath",
            "gateway.remote.token",
            "hooks.token",
        ] {
            assert!(!cuts_the_link(&p(safe)), "{safe}");
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
