//! A request's parameters as 2026.9.6 checks them: closed objects (an unknown property is
//! refused with the gateway's own words) and string fields.

use serde_json::{Map, Value};

/// Rejects keys outside `allowed`, with the real gateway's message.
pub(crate) fn closed(
    method: &str,
    params: &Map<String, Value>,
    allowed: &[&str],
) -> Result<(), String> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(extra) => Err(format!(
            "invalid {method} params: at root: unexpected property '{extra}'"
        )),
        None => Ok(()),
    }
}

pub(crate) fn str_param<'a>(p: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    p.get(key).and_then(Value::as_str)
}
