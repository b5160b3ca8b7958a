//! Drift judged against the config a real 2026.9.6 answered (`config.get`, captured in
//! `testdata/openclaw-captures/2026.9.6/rpc.json`).

use serde_json::{Map, Value, json};

use super::drift::{DriftState, Live, judge};

fn captured() -> Value {
    let text = include_str!("../../testdata/openclaw-captures/2026.9.6/rpc.json");
    let capture: Value = serde_json::from_str(text).expect("the capture parses");
    capture["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["method"] == "config.get")
        .expect("a config.get")["response"]["payload"]
        .clone()
}

fn live() -> Live {
    Live::from_answer(&captured()).expect("a config")
}

fn desired(v: Value) -> Map<String, Value> {
    v.as_object().expect("an object").clone()
}

#[test]
fn the_captured_answer_gives_the_running_config_and_its_hashes() {
    let live = live();
    assert_eq!(live.config["gateway"]["port"], 18789);
    assert_eq!(live.config["agents"]["defaults"]["maxConcurrent"], 8);
    assert!(live.hash.as_deref().unwrap().starts_with("hmac-sha256:v1:"));
    assert!(!live.saved_not_applied(), "captured in sync");
}

#[test]
fn a_gateway_that_already_runs_the_values_is_in_sync_defaults_included() {
    let j = judge(
        &desired(
            json!({"gateway": {"bind": "loopback"}, "agents": {"defaults": {"maxConcurrent": 8.0}}}),
        ),
        &live(),
    );
    assert_eq!(j.state, DriftState::InSync, "{j:?}");
    assert!(j.paths.is_empty());
}

#[test]
fn a_value_that_differs_or_is_missing_is_drift_with_both_values() {
    let j = judge(
        &desired(
            json!({"gateway": {"http": {"endpoints": {"chatCompletions": {"enabled": true}}}, "bind": "lan"}}),
        ),
        &live(),
    );
    assert_eq!(j.state, DriftState::Drifted);
    let paths: Vec<(&str, Option<Value>, Option<Value>, bool)> = j
        .paths
        .iter()
        .map(|p| {
            (
                p.path.as_str(),
                p.desired.clone(),
                p.live.clone(),
                p.present,
            )
        })
        .collect();
    assert_eq!(
        paths,
        [
            (
                "gateway.bind",
                Some(json!("lan")),
                Some(json!("loopback")),
                true
            ),
            (
                "gateway.http.endpoints.chatCompletions.enabled",
                Some(json!(true)),
                None,
                false
            ),
        ]
    );
}

#[test]
fn a_removal_is_drift_only_while_the_path_is_there() {
    let there = judge(&desired(json!({"update": {"checkOnStart": null}})), &live());
    assert_eq!(there.state, DriftState::Drifted);
    assert_eq!(there.paths[0].desired, Some(Value::Null));
    let gone = judge(&desired(json!({"tools": null})), &live());
    assert_eq!(gone.state, DriftState::InSync);
}

#[test]
fn a_secret_is_never_shown_and_a_redacted_one_is_taken_as_set() {
    let j = judge(
        &desired(
            json!({"gateway": {"auth": {"token": "s3cret-value"}}, "models": {"providers": {"x": {"apiKey": "sk-live"}}}}),
        ),
        &live(),
    );
    assert_eq!(j.unverified, ["gateway.auth.token"]);
    assert_eq!(j.paths.len(), 1, "the missing API key is drift: {j:?}");
    let p = &j.paths[0];
    assert_eq!(p.path, "models.providers.x.apiKey");
    assert!(p.secret && p.desired.is_none() && p.live.is_none() && !p.present);
    let text = serde_json::to_string(&j).unwrap();
    assert!(
        !text.contains("s3cret") && !text.contains("sk-live"),
        "{text}"
    );
}

#[test]
fn saved_but_not_applied_is_said_before_the_values() {
    let mut l = live();
    l.applied = Some("hmac-sha256:v1:older".into());
    let j = judge(&desired(json!({"gateway": {"bind": "lan"}})), &l);
    assert_eq!(j.state, DriftState::SavedNotApplied);
    assert_eq!(j.paths.len(), 1, "the paths still listed");
}

#[test]
fn a_huge_live_value_is_described_not_copied() {
    let mut l = live();
    l.config["tools"] = json!({"big": "x".repeat(5000)});
    let j = judge(&desired(json!({"tools": {"big": "small"}})), &l);
    assert_eq!(j.paths[0].live, Some(json!("(5002 bytes, not shown)")));
}

#[test]
fn an_answer_without_a_config_is_not_a_live_config() {
    assert!(Live::from_answer(&json!({"hash": "x"})).is_none());
    assert!(Live::from_answer(&json!({"config": "text"})).is_none());
}
