//! Test support: the frames captured from real gateways (openclaw 2026.9.6, and older releases
//! where they differ) in `testdata/openclaw-captures/<release>/`, for the tests that classify
//! and react to them.

use serde_json::Value;

/// One capture file of 2026.9.6, parsed.
pub fn capture(name: &str) -> Value {
    capture_of("2026.9.6", name)
}

/// One capture file of `release`, parsed.
pub fn capture_of(release: &str, name: &str) -> Value {
    let path = format!(
        "{}/../testdata/openclaw-captures/{release}/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
        .unwrap()
}

/// The value at a path of keys and array indexes.
pub fn at(v: &Value, path: &[&str]) -> Value {
    path.iter()
        .fold(v.clone(), |v, k| match k.parse::<usize>() {
            Ok(i) => v[i].clone(),
            Err(_) => v[*k].clone(),
        })
}

/// The failure a captured `ok: false` response of 2026.9.6 means: the `error` at `path` in
/// capture `file`, classified.
pub fn captured_failure(file: &str, path: &[&str]) -> crate::protocol::errors::LinkFailure {
    let error = at(&capture(file), path)["error"].clone();
    let shape: crate::protocol::frames::ErrorShape =
        serde_json::from_value(error).unwrap_or_else(|e| panic!("{file}: {e}"));
    crate::protocol::errors::classify_error(&shape)
}

/// A captured frame as the gateway sent it: the recorder's `at` timestamp taken off.
pub fn frame_of(captured: &Value) -> Result<crate::protocol::frames::Frame, serde_json::Error> {
    let mut frame = captured.clone();
    if let Some(o) = frame.as_object_mut() {
        o.remove("at");
    }
    serde_json::from_value(frame)
}
