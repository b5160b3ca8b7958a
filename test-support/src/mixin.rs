//! The Prometheus mixin (`mixin/`) as the tests read it: which metrics its rules and its
//! dashboard name, and which families a live `/metrics` exports, so a test can say that every
//! name an operator's alert or panel relies on exists. Names are found by their prefixes
//! (`gateway_supervisor_`, the process collector's `process_`); Prometheus' own series (`up`,
//! `scrape_duration_seconds`) and recorded series (`level:metric:op`) are not ours to export.

use std::collections::BTreeSet;
use std::path::PathBuf;

/// Metrics only an instance of a cluster exports (checked by the cluster suite).
pub const CLUSTER_ONLY: &[&str] = &[
    "gateway_supervisor_cluster_instances",
    "gateway_supervisor_gateways_owned",
    "gateway_supervisor_lease_renew_failures_total",
    "gateway_supervisor_adoptions_total",
    "gateway_supervisor_database_failovers_total",
];

/// The repository's `mixin/` directory.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("mixin")
}

pub fn rule_files() -> Vec<PathBuf> {
    ["alerts.yml", "recording.yml"]
        .iter()
        .map(|f| dir().join("prometheus").join(f))
        .collect()
}

pub fn dashboard_path() -> PathBuf {
    dir().join("grafana").join("gateway-supervisor.json")
}

pub fn dashboard() -> serde_json::Value {
    let text = std::fs::read_to_string(dashboard_path()).expect("the dashboard JSON");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// Every PromQL expression of the dashboard: panel targets and query variables.
pub fn dashboard_exprs() -> Vec<String> {
    let d = dashboard();
    let mut out = Vec::new();
    for panel in d["panels"].as_array().into_iter().flatten() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                out.push(e.to_owned());
            }
        }
    }
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if let Some(q) = v["query"]["query"].as_str() {
            out.push(q.to_owned());
        }
    }
    out
}

/// Every metric name the rules and the dashboard refer to.
pub fn referenced_metrics() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for f in rule_files() {
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        names.extend(metric_names(&text));
    }
    for e in dashboard_exprs() {
        names.extend(metric_names(&e));
    }
    names
}

/// The metric names in a text: identifiers with one of our prefixes, not part of a longer
/// identifier or a recorded series' name.
pub fn metric_names(text: &str) -> BTreeSet<String> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| ident(c)) {
        let tail = &rest[start..];
        let end = tail.find(|c: char| !ident(c)).unwrap_or(tail.len());
        let word = &tail[..end];
        if !word.contains(':')
            && (word.starts_with("gateway_supervisor_") || word.starts_with("process_"))
        {
            names.insert(word.to_owned());
        }
        rest = &tail[end..];
    }
    names
}

/// The series names a scrape can hold: each family of a `# TYPE` line, with a histogram's
/// `_bucket`, `_sum` and `_count`.
pub fn exported(scrape: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in scrape.lines() {
        let mut words = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        {
            names.insert(name.to_owned());
            if kind == "histogram" || kind == "summary" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_whole_identifiers_with_our_prefixes() {
        let names = metric_names(
            r#"sum by (job) (rate(gateway_supervisor_http_requests_total{job=~"$job"}[5m])) / job:gateway_supervisor_x:sum + process_open_fds - up"#,
        );
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(
            names,
            ["gateway_supervisor_http_requests_total", "process_open_fds"]
        );
    }

    #[test]
    fn a_histogram_exports_its_three_series() {
        let names = exported(
            "# HELP a_seconds x\n# TYPE a_seconds histogram\na_seconds_bucket{le=\"1\"} 0\n# TYPE b gauge\nb 1\n",
        );
        assert!(names.contains("a_seconds_bucket") && names.contains("a_seconds_count"));
        assert!(names.contains("b") && !names.contains("b_bucket"));
    }
}
