//! Results: one row per measured number, with its target (from the performance issue) and a
//! PASS/FAIL verdict; printed as a table and written as JSON with the machine description.

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy)]
pub enum Target {
    AtMost(f64),
    AtLeast(f64),
}

impl Target {
    fn met(self, value: f64) -> bool {
        match self {
            Target::AtMost(t) => value <= t,
            Target::AtLeast(t) => value >= t,
        }
    }

    fn describe(self, unit: &str) -> String {
        match self {
            Target::AtMost(t) => format!("<= {} {unit}", num(t)),
            Target::AtLeast(t) => format!(">= {} {unit}", num(t)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: &'static str,
    pub metric: String,
    pub value: f64,
    pub unit: &'static str,
    pub target: Option<Target>,
    /// The lowest and highest of the runs whose median `value` is.
    pub spread: Option<(f64, f64)>,
}

pub fn row(
    scenario: &'static str,
    metric: impl Into<String>,
    value: f64,
    unit: &'static str,
) -> Row {
    Row {
        scenario,
        metric: metric.into(),
        value,
        unit,
        target: None,
        spread: None,
    }
}

/// The median of runs, with their lowest and highest. A run without a reading (`NaN`: a
/// ratio over a zero denominator, say) is left out; with none, every figure is `NaN`, which
/// prints as "no reading" and fails any target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Runs {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Runs {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Runs {
        let mut v: Vec<f64> = values.into_iter().filter(|x| !x.is_nan()).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        Runs {
            median: percentile(&v, 0.5),
            min: v.first().copied().unwrap_or(f64::NAN),
            max: v.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// A row for the median of runs, showing their min–max beside it.
pub fn runs_row(
    scenario: &'static str,
    metric: impl Into<String>,
    runs: Runs,
    unit: &'static str,
) -> Row {
    Row {
        spread: Some((runs.min, runs.max)),
        ..row(scenario, metric, runs.median, unit)
    }
}

impl Row {
    pub fn target(mut self, t: Target) -> Row {
        self.target = Some(t);
        self
    }

    /// The target where it applies (`applies`: the scale it was set for).
    pub fn target_if(self, applies: bool, t: Target) -> Row {
        if applies { self.target(t) } else { self }
    }

    /// PASS / FAIL against the target; `smoke` runs report no verdict on timing.
    pub fn verdict(&self, smoke: bool) -> &'static str {
        match self.target {
            None => "",
            Some(_) if smoke => "(smoke)",
            Some(t) if t.met(self.value) => "PASS",
            Some(_) => "FAIL",
        }
    }
}

/// What one scenario measured: its rows and the raw numbers behind them.
pub struct Outcome {
    pub name: &'static str,
    pub rows: Vec<Row>,
    pub raw: Value,
}

fn num(v: f64) -> String {
    if v.is_nan() {
        "no reading".to_owned()
    } else if v == 0.0 || (v.abs() >= 100.0 && v.fract() == 0.0) {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[allow(clippy::print_stdout)]
pub fn print_table(outcomes: &[Outcome], smoke: bool) {
    let rows: Vec<&Row> = outcomes.iter().flat_map(|o| &o.rows).collect();
    let w = rows
        .iter()
        .map(|r| r.metric.len())
        .max()
        .unwrap_or(10)
        .max(10);
    println!(
        "{:<10} {:<w$} {:>14} {:<19} {:<8} {:<20} result",
        "scenario", "metric", "value", "min–max", "unit", "target"
    );
    for r in rows {
        let spread = r
            .spread
            .map(|(lo, hi)| format!("{}–{}", num(lo), num(hi)))
            .unwrap_or_default();
        println!(
            "{:<10} {:<w$} {:>14} {:<19} {:<8} {:<20} {}",
            r.scenario,
            r.metric,
            num(r.value),
            spread,
            r.unit,
            r.target.map(|t| t.describe(r.unit)).unwrap_or_default(),
            r.verdict(smoke)
        );
    }
}

pub fn failures(outcomes: &[Outcome]) -> usize {
    outcomes
        .iter()
        .flat_map(|o| &o.rows)
        .filter(|r| r.verdict(false) == "FAIL")
        .count()
}

pub fn to_json(outcomes: &[Outcome], smoke: bool) -> Value {
    json!({
        "machine": machine(),
        "smoke": smoke,
        "rows": outcomes.iter().flat_map(|o| &o.rows).map(|r| json!({
            "scenario": r.scenario,
            "metric": r.metric,
            "value": r.value,
            "min": r.spread.map(|s| s.0),
            "max": r.spread.map(|s| s.1),
            "unit": r.unit,
            "target": r.target.map(|t| t.describe(r.unit)),
            "result": r.verdict(smoke),
        })).collect::<Vec<_>>(),
        "raw": outcomes.iter().map(|o| (o.name.to_owned(), o.raw.clone())).collect::<serde_json::Map<_, _>>(),
    })
}

/// CPU model and count, memory, kernel, OS, toolchain: what a reader needs to compare runs.
pub fn machine() -> Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    let os = read("/etc/os-release")
        .lines()
        .find(|l| l.starts_with("PRETTY_NAME="))
        .map(|l| {
            l.trim_start_matches("PRETTY_NAME=")
                .trim_matches('"')
                .to_owned()
        })
        .unwrap_or_default();
    let cmd = |c: &str, a: &[&str]| {
        std::process::Command::new(c)
            .args(a)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    json!({
        "cpu": model,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "memory_gib": (mem_kib as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "os": os,
        "rustc": cmd("rustc", &["--version"]),
        "wrk": cmd("sh", &["-c", "wrk --version 2>&1 | head -n 1"]),
        "commit": cmd("git", &["rev-parse", "--short", "HEAD"]),
    })
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Median and p99 (milliseconds) of samples.
pub fn summary(mut samples: Vec<f64>) -> (f64, f64, Value) {
    samples.sort_by(|a, b| a.total_cmp(b));
    let (p50, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
    (
        p50,
        p99,
        json!({"n": samples.len(), "median_ms": p50, "p99_ms": p99, "max_ms": samples.last()}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_verdicts() {
        let r = row("x", "m", 5.0, "ms").target(Target::AtMost(5.0));
        assert_eq!(r.verdict(false), "PASS");
        assert_eq!(r.verdict(true), "(smoke)");
        let r = row("x", "m", 0.59, "ratio").target(Target::AtLeast(0.6));
        assert_eq!(r.verdict(false), "FAIL");
        assert_eq!(row("x", "m", 1.0, "s").verdict(false), "");
    }

    #[test]
    fn runs_give_their_median_and_spread() {
        let r = Runs::of([3.0, 1.0, 2.0]);
        assert_eq!(
            r,
            Runs {
                median: 2.0,
                min: 1.0,
                max: 3.0
            }
        );
        let row = runs_row("x", "m", r, "ms");
        assert_eq!((row.value, row.spread), (2.0, Some((1.0, 3.0))));
    }

    #[test]
    fn a_run_without_a_reading_is_left_out_and_none_prints_as_no_reading() {
        let r = Runs::of([0.3, f64::NAN, 0.2]);
        assert_eq!((r.min, r.max), (0.2, 0.3));
        let none = runs_row("x", "m", Runs::of([f64::NAN]), "x").target(Target::AtMost(0.2));
        assert_eq!(num(none.value), "no reading");
        assert_eq!(none.verdict(false), "FAIL");
        assert_eq!(none.verdict(true), "(smoke)");
    }

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert!(percentile(&[], 0.5).is_nan());
    }
}
