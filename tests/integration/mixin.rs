//! The Prometheus mixin (`mixin/`) holds: promtool accepts the rule files and passes their unit
//! tests, every alert has a test where it fires and one where it stays quiet, every recording
//! rule is tested, the dashboard's queries are PromQL promtool accepts, and every metric the
//! rules and the dashboard name is one a live daemon exports (those of a cluster are checked by
//! the cluster suite).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gs_test_support::mixin;
use serde_json::json;

use crate::support::fleet::{add, fake, link_daemon, wait_gateway};
use crate::support::{control, online, sessions, wait_for, wait_until};

const DEADLINE: Duration = Duration::from_secs(20);

fn promtool(args: &[&str], files: &[&Path]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .args(files)
        .output()
        .expect(
            "promtool must be installed (Debian package prometheus; scripts/test.sh installs it)",
        );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

/// The values of `key: value` lines (YAML block style, as the mixin's files are written).
fn values_of(text: &str, key: &str) -> Vec<String> {
    let key = format!("{key}:");
    text.lines()
        .filter_map(|l| {
            let l = l.trim_start().trim_start_matches("- ");
            l.strip_prefix(key.as_str())
                .map(|v| v.trim().trim_matches('\'').to_owned())
        })
        .collect()
}

#[test]
fn promtool_accepts_the_rules_and_their_tests_cover_every_alert() {
    let rules = mixin::rule_files();
    let rules: Vec<&Path> = rules.iter().map(|p| p.as_path()).collect();
    let checked = promtool(&["check", "rules"], &rules);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tests_dir = mixin::dir().join("prometheus").join("tests");
    let (alerts_test, recording_test) = (
        tests_dir.join("alerts.test.yml"),
        tests_dir.join("recording.test.yml"),
    );
    let tested = promtool(
        &["test", "rules"],
        &[alerts_test.as_path(), recording_test.as_path()],
    );
    assert_eq!(tested.matches("SUCCESS").count(), 2, "{tested}");

    // Each alert: a case where it fires (exp_labels follow) and one where it does not ([]).
    let alerts = std::fs::read_to_string(rules[0]).unwrap();
    let cases = std::fs::read_to_string(&alerts_test).unwrap();
    let mut fires = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    let mut current = None;
    for line in cases.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("alertname:") {
            current = Some(name.trim().to_owned());
        } else if let (Some(name), Some(exp)) = (&current, line.strip_prefix("exp_alerts:")) {
            if exp.trim() == "[]" {
                quiet.insert(name.clone());
            } else {
                fires.insert(name.clone());
            }
        }
    }
    let names = values_of(&alerts, "alert");
    assert!(names.len() >= 10, "{names:?}");
    for name in &names {
        assert!(fires.contains(name), "no test fires {name}");
        assert!(quiet.contains(name), "no test where {name} stays quiet");
    }
    // Each recording rule is evaluated by a test.
    let recorded = values_of(&std::fs::read_to_string(rules[1]).unwrap(), "record");
    let evaluated = values_of(&std::fs::read_to_string(&recording_test).unwrap(), "expr");
    assert!(!recorded.is_empty());
    for name in &recorded {
        assert!(evaluated.contains(name), "no test evaluates {name}");
    }
}

#[test]
fn the_dashboard_is_well_formed_and_its_queries_are_promql() {
    let d = mixin::dashboard();
    assert_eq!(d["uid"], "gateway-supervisor");
    let panels = d["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    for p in panels {
        let title = p["title"].as_str().unwrap_or_default();
        assert!(
            ids.insert(p["id"].as_i64().unwrap()),
            "duplicate id: {title}"
        );
        let g = &p["gridPos"];
        assert!(
            g["x"].as_i64().unwrap() + g["w"].as_i64().unwrap() <= 24,
            "{title} leaves the grid"
        );
        if p["type"] == "row" {
            // A row draws nothing: a graph typed as one is never seen (the Cron row's three
            // panels were, until 2026-11-29).
            assert!(p.get("targets").is_none(), "{title} is a row with a query");
            continue;
        }
        assert!(
            !p["description"].as_str().unwrap_or_default().is_empty(),
            "{title} has no description"
        );
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title} has no query");
        for t in targets {
            let e = t["expr"].as_str().unwrap();
            assert!(e.contains("$job"), "{title}: {e} ignores the job variable");
        }
    }
    // promtool checks each query's syntax as a recording rule, variables filled in.
    let rules: String = mixin::dashboard_exprs()
        .iter()
        .enumerate()
        .map(|(i, e)| {
            // Grafana's `label_values(metric, label)` asks for the metric's series.
            let e = match e.strip_prefix("label_values(") {
                Some(inner) => inner.split(',').next().unwrap_or_default(),
                None => e.as_str(),
            };
            let e = e
                .replace("$__rate_interval", "5m")
                .replace("$job", ".*")
                .replace("$gateway", ".*");
            format!(
                "      - record: dashboard:query_{i}\n        expr: {}\n",
                serde_json::to_string(&e).unwrap()
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard-queries.yml");
    std::fs::write(
        &file,
        format!("groups:\n  - name: dashboard\n    rules:\n{rules}"),
    )
    .unwrap();
    promtool(&["check", "rules"], &[file.as_path()]);
}

#[test]
fn every_metric_the_mixin_names_is_exported() {
    let referenced = mixin::referenced_metrics();
    for name in mixin::CLUSTER_ONLY {
        assert!(
            referenced.contains(*name),
            "{name} is listed as cluster-only but not used"
        );
    }
    // Enough happens for every family to have a series: a linked gateway with a session
    // (latency, calls, the acting primary) that restarts at the end (a reconnect), one that
    // refuses our token (a handshake failure), a spawn, a session kill, a refused second one
    // (rate limited), requests, an approval answered, a declared cron job.
    let d = link_daemon(&[
        (
            "GATEWAY_SUPERVISOR__LIMITS__SESSION_CONTROL_PER_MINUTE",
            "1",
        ),
        ("GATEWAY_SUPERVISOR__APPROVALS__ENABLED", "true"),
        ("GATEWAY_SUPERVISOR__CRON__WATCH_INTERVAL", "1s"),
    ]);
    let (good, bad) = (fake(|c| c.sessions = 1), fake(|_| {}));
    let id = add(&d, "alpha", &good, Some("fake-token"));
    add(&d, "refuses", &bad, Some("not-the-token"));
    wait_gateway(&d, id, "online with latency", |g| {
        online(g) && !g["latency"].is_null()
    });
    let res = d.call(
        "POST",
        "/api/spawn",
        &d.admin_key,
        &json!({"agent": "main", "task": "say pong"}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let key = wait_until("a session", DEADLINE, || {
        sessions(&d, "")
            .first()
            .map(|s| s["key"].as_str().unwrap().to_owned())
    });
    assert_eq!(control(&d, &key, "kill").status, 200);
    assert_eq!(control(&d, &key, "kill").status, 429);
    let approval = good.request_approval("exec", "printf metrics", Duration::from_secs(60));
    let path = format!("/api/approvals/{id}/{approval}");
    wait_until("the approval in the inbox", DEADLINE, || {
        (d.get(&path, &d.admin_key).status == 200).then_some(())
    });
    let res = d.call(
        "POST",
        &format!("{path}/resolve"),
        &d.admin_key,
        &json!({"decision": "deny"}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    // A declared cron job (its age since the last success is a series per declaration).
    let res = d.call(
        "PUT",
        "/api/cron/declarations/metrics",
        &d.admin_key,
        &json!({"selector": "", "job": {"name": "metrics", "schedule": {"kind": "every", "everyMs": 3_600_000},
            "payload": {"kind": "agentTurn", "message": "m"}, "delivery": {"mode": "none"}}}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    // The gateway restarts: its link dials again.
    good.close_all(1012, "service restart");
    wait_for("every family the mixin names", DEADLINE, || {
        let scrape = d.get("/metrics", "").text();
        let exported = mixin::exported(&scrape);
        let missing: Vec<&String> = referenced
            .iter()
            .filter(|n| !exported.contains(*n) && !mixin::CLUSTER_ONLY.contains(&n.as_str()))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("not exported: {missing:?}"))
        }
    });
}
