//! Test support: the frames captured from a real gateway (openclaw 2026.9.6) in
//! `testdata/openclaw-captures/`, for the tests that classify and react to them.

use serde_json::Value;

/// One capture file, parsed.
pub fn capture(name: &str) -> Value {
    let path = format!(
        "{}/../testdata/openclaw-captures/2026.9.6/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The value at a path of keys and array indexes.
pub fn at(v: &Value, path: &[&str]) -> Value {
    path.iter()
        .fold(v.clone(), |v, k| match k.parse::<usize>() {
            Ok(i) => v[i].clone(),
            Err(_) => v[*k].clone(),
        })
}
