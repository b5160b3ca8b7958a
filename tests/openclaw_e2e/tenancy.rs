//! The runbook's tenancy recipe (docs/operations.md, *Tenants and scoped keys*) run as written
//! against two real 2026.9.6 gateways: each given to a team by its `tenant` label, a key of
//! team `blue` lists blue's gateway only, and red's is not found to it — to read or to spawn on.

use serde_json::Value;

use super::rollout::{daemon, eu_gateways, run_recipe, runbook_block, started};

#[test]
fn the_readme_tenancy_recipe_runs_as_written() {
    let gs = started(&[Value::Null, Value::Null]);
    let d = daemon();
    eu_gateways(&d, &gs);
    let out = run_recipe(&d, &runbook_block("given to the teams `blue` and `red`"));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            r#"{"name":"eu-0","labels":{"region":"eu","tenant":"blue"}}"#,
            r#"{"name":"eu-1","labels":{"region":"eu","tenant":"red"}}"#,
            r#"["eu-0"]"#,
            r#"{"error":"gateway_not_found"}"#,
            r#"{"error":"gateway_not_found"}"#,
        ],
        "{out}"
    );
}
