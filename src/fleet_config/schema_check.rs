//! A profile's values against the gateway's own config schema, pure: what OpenClaw 2026.9.6's
//! `config.schema.lookup {path}` answers for a path (`{path, schema}`, or `INVALID_REQUEST
//! "config schema path not found"`: captured in
//! `testdata/openclaw-captures/2026.9.6/config_schema_lookup.json`) is enough to say whether a
//! value has the type the gateway takes there. The subset of JSON Schema its answers use for
//! leaves is read — `type` (one or several), `const`, `enum`, `anyOf`, `oneOf`, bounds on
//! numbers and `exclusiveMinimum` — and everything else is taken as met: a check that cannot
//! judge lets the value through, and the gateway's own validation at write time stays the
//! last word. Checked by `FleetConfig::put_profile` against one gateway the profile picks.

use serde_json::Value;

/// Whether `value` fits `schema` (as far as this subset says).
pub fn fits(value: &Value, schema: &Value) -> bool {
    fits_at(value, schema, 0)
}

fn fits_at(value: &Value, schema: &Value, depth: usize) -> bool {
    let Some(s) = schema.as_object() else {
        return true;
    };
    if depth > 16 {
        return true;
    }
    if let Some(c) = s.get("const")
        && c != value
    {
        return false;
    }
    if let Some(options) = s.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        return false;
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = s.get(key).and_then(Value::as_array)
            && !options.iter().any(|o| fits_at(value, o, depth + 1))
        {
            return false;
        }
    }
    if let Some(t) = s.get("type")
        && !type_fits(value, t)
    {
        return false;
    }
    if let Some(n) = value.as_f64() {
        let below = |k: &str| s.get(k).and_then(Value::as_f64).is_some_and(|b| n < b);
        let above = |k: &str| s.get(k).and_then(Value::as_f64).is_some_and(|b| n > b);
        let at_or_below = |k: &str| s.get(k).and_then(Value::as_f64).is_some_and(|b| n <= b);
        if below("minimum") || above("maximum") || at_or_below("exclusiveMinimum") {
            return false;
        }
    }
    true
}

fn type_fits(value: &Value, t: &Value) -> bool {
    match t {
        Value::String(one) => is_type(value, one),
        Value::Array(many) => many
            .iter()
            .filter_map(Value::as_str)
            .any(|one| is_type(value, one)),
        _ => true,
    }
}

fn is_type(value: &Value, t: &str) -> bool {
    match t {
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.as_i64().is_some() || value.as_u64().is_some(),
        "number" => value.is_number(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "null" => value.is_null(),
        _ => true,
    }
}

/// What `schema` takes, in words, for an error message: its types, or its few constants.
pub fn expected(schema: &Value) -> String {
    let mut words: Vec<String> = Vec::new();
    collect(schema, &mut words, 0);
    words.dedup();
    match words.len() {
        0 => "another value".into(),
        n if n > 8 => format!("one of {} values ({}, …)", n, words[..8].join(", ")),
        _ => words.join(" or "),
    }
}

fn collect(schema: &Value, out: &mut Vec<String>, depth: usize) {
    let Some(s) = schema.as_object() else { return };
    if depth > 8 {
        return;
    }
    if let Some(c) = s.get("const") {
        out.push(c.to_string());
        return;
    }
    if let Some(options) = s.get("enum").and_then(Value::as_array) {
        out.extend(options.iter().map(Value::to_string));
        return;
    }
    let mut branched = false;
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = s.get(key).and_then(Value::as_array) {
            branched = true;
            for o in options {
                collect(o, out, depth + 1);
            }
        }
    }
    if branched {
        return;
    }
    match s.get("type") {
        Some(Value::String(t)) => out.push(article(t)),
        Some(Value::Array(ts)) => out.extend(ts.iter().filter_map(Value::as_str).map(article)),
        _ => {}
    }
    if let Some(min) = s.get("exclusiveMinimum").and_then(Value::as_f64)
        && let Some(last) = out.last_mut()
    {
        last.push_str(&format!(" above {min}"));
    }
}

fn article(t: &str) -> String {
    match t {
        "integer" => "an integer".into(),
        "object" => "an object".into(),
        "array" => "an array".into(),
        "null" => "null".into(),
        other => format!("a {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lookups() -> Value {
        serde_json::from_str(include_str!(
            "../../testdata/openclaw-captures/2026.9.6/config_schema_lookup.json"
        ))
        .unwrap()
    }

    fn schema_of(path: &str) -> Value {
        lookups()["answers"][path]["schema"].clone()
    }

    #[test]
    fn values_of_the_right_type_fit_what_2026_9_6_answers() {
        let cases = [
            (
                "gateway.http.endpoints.chatCompletions.enabled",
                json!(true),
            ),
            ("agents.defaults.maxConcurrent", json!(2)),
            ("gateway.controlUi.basePath", json!("/ui")),
            ("gateway.auth.mode", json!("password")),
            ("logging.level", json!("debug")),
            ("hooks.mappings", json!([])),
            (
                "models.providers.acme.headers.Authorization",
                json!("Bearer x"),
            ),
            ("agents.defaults", json!({})),
        ];
        for (path, value) in cases {
            assert!(fits(&value, &schema_of(path)), "{path} = {value}");
        }
    }

    #[test]
    fn values_of_the_wrong_type_are_named_with_what_the_gateway_takes() {
        let cases = [
            (
                "gateway.http.endpoints.chatCompletions.enabled",
                json!("yes"),
                "a boolean",
            ),
            (
                "agents.defaults.maxConcurrent",
                json!(0),
                "an integer above 0",
            ),
            (
                "agents.defaults.maxConcurrent",
                json!(2.5),
                "an integer above 0",
            ),
            (
                "agents.defaults.maxConcurrent",
                json!("2"),
                "an integer above 0",
            ),
            ("logging.level", json!("loud"), "\"silent\" or \"fatal\" or"),
            ("hooks.mappings", json!({}), "an array"),
        ];
        for (path, value, says) in cases {
            let schema = schema_of(path);
            assert!(!fits(&value, &schema), "{path} = {value}");
            let words = expected(&schema);
            assert!(words.starts_with(says), "{path}: {words}");
        }
        assert_eq!(
            expected(&schema_of("gateway.auth.mode")),
            r#""none" or "token" or "password" or "trusted-proxy""#
        );
    }

    #[test]
    fn the_capture_has_the_paths_the_gateway_does_not_know() {
        let l = lookups();
        assert!(l["answers"]["tools.banner"].is_null());
        assert!(l["answers"]["gateway.nope"].is_null());
    }
}
