//! `ctl cron …`: every gateway's cron jobs — listed (filtered like `GET /api/cron/jobs`), one
//! job with its last runs and its missed fires, and the declared jobs with their drift.

use serde_json::Value;

use super::client::{self, Client, CtlError};
use super::render::{table, text, time_ms};

#[derive(Debug, clap::Subcommand)]
pub enum CronCommand {
    /// Jobs across the fleet (the gateways' own with --system).
    Jobs {
        /// Only the jobs of gateways whose labels this selector picks.
        #[arg(long, short = 'l', value_name = "SELECTOR")]
        selector: Option<String>,
        #[arg(long, value_name = "ID")]
        gateway: Option<i64>,
        #[arg(long)]
        agent: Option<String>,
        /// A part of the name, case aside.
        #[arg(long, short = 'q')]
        name: Option<String>,
        /// enabled, disabled, failing, duplicate or missed.
        #[arg(long)]
        status: Option<String>,
        /// The gateways' own jobs too (heartbeat, memory promotion, skill review).
        #[arg(long)]
        system: bool,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// The declared jobs: where each fires, its revision, the gateways written, its drift.
    Declarations,
    /// One job: its schedule, its last runs (read from its gateway) and its missed fires.
    Show {
        #[arg(value_name = "GATEWAY")]
        gateway: i64,
        #[arg(value_name = "JOB")]
        job: String,
    },
}

/// Carries out `command`, printing a table (or the answer, with `json`).
pub async fn run(
    client: &Client,
    command: CronCommand,
    json: bool,
    out: &mut dyn FnMut(&str),
) -> Result<(), CtlError> {
    let (v, shown): (Value, fn(&Value) -> String) = match command {
        CronCommand::Jobs {
            selector,
            gateway,
            agent,
            name,
            status,
            system,
            limit,
        } => {
            let mut query = vec![("limit", limit.to_string())];
            query.extend(selector.map(|s| ("selector", s)));
            query.extend(gateway.map(|g| ("gateway_id", g.to_string())));
            query.extend(agent.map(|a| ("agent", a)));
            query.extend(name.map(|q| ("q", q)));
            query.extend(status.map(|s| ("status", s)));
            if system {
                query.push(("system", "true".into()));
            }
            let path = format!("/api/cron/jobs?{}", client::query(&query));
            (client.get(&path).await?, jobs)
        }
        CronCommand::Declarations => (client.get("/api/cron/declarations").await?, declared),
        CronCommand::Show { gateway, job } => {
            let path = format!("/api/cron/jobs/{gateway}/{}", client::segment(&job));
            (client.get(&path).await?, one)
        }
    };
    out(&if json {
        serde_json::to_string_pretty(&v).unwrap_or_default()
    } else {
        shown(&v).trim_end().to_owned()
    });
    Ok(())
}

/// A schedule in one line: `cron 0 9 * * * Europe/Oslo`, `every 600s`, or its kind.
fn schedule(s: &Value) -> String {
    match s["kind"].as_str() {
        Some("cron") => format!(
            "cron {}{}",
            text(&s["expr"]),
            s["tz"]
                .as_str()
                .map(|t| format!(" {}", text(&Value::from(t))))
                .unwrap_or_default()
        ),
        Some("every") => match s["everyMs"].as_i64() {
            Some(ms) => format!("every {}s", ms / 1000),
            None => "every".into(),
        },
        _ => text(&s["kind"]),
    }
}

fn jobs(v: &Value) -> String {
    let list = v["jobs"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|j| {
            let state = if j["duplicate_of"].is_string() {
                format!("duplicate of {}", text(&j["duplicate_of"]))
            } else if j["enabled"] == true {
                "enabled".into()
            } else {
                "disabled".into()
            };
            vec![
                text(&j["gateway_id"]),
                text(&j["job_id"]),
                text(&j["name"]),
                text(&j["agent"]),
                schedule(&j["schedule"]),
                state,
                time_ms(&j["next_run_at_ms"]),
                format!(
                    "{} {}",
                    time_ms(&j["last_run_at_ms"]),
                    text(&j["last_run_status"])
                ),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "GATEWAY", "JOB", "NAME", "AGENT", "SCHEDULE", "STATE", "NEXT", "LAST",
        ],
        &rows,
    );
    out.push_str(&format!(
        "{} job(s){}\n",
        list.len(),
        if v["next_cursor"].is_string() {
            " (more: raise --limit)"
        } else {
            ""
        }
    ));
    out
}

fn one(v: &Value) -> String {
    let j = &v["job"];
    let mut out = format!(
        "{} `{}` on gateway {} — {}, {}\nnext {}, last {} {}\n",
        text(&j["job_id"]),
        text(&j["name"]),
        text(&j["gateway_id"]),
        schedule(&j["schedule"]),
        if j["enabled"] == true {
            "enabled"
        } else {
            "disabled"
        },
        time_ms(&j["next_run_at_ms"]),
        time_ms(&j["last_run_at_ms"]),
        text(&j["last_run_status"]),
    );
    match v["runs"].as_array() {
        Some(runs) => {
            let rows: Vec<Vec<String>> = runs
                .iter()
                .map(|r| {
                    vec![
                        time_ms(&r["run_at_ms"]),
                        text(&r["status"]),
                        text(&r["duration_ms"]),
                        text(&r["model"]),
                        text(&r["total_tokens"]),
                        text(&r["run_id"]),
                    ]
                })
                .collect();
            out.push_str(&table(
                &["RUN AT", "STATUS", "MS", "MODEL", "TOKENS", "RUN ID"],
                &rows,
            ));
        }
        None => out.push_str(&format!(
            "runs not read: {}\n",
            text(&v["runs_unavailable"])
        )),
    }
    let misses = v["misses"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if !misses.is_empty() {
        let rows: Vec<Vec<String>> = misses
            .iter()
            .map(|m| {
                vec![
                    time_ms(&m["slot_ms"]),
                    text(&m["cause"]),
                    text(&m["recovery"]),
                    text(&m["recovery_detail"]),
                ]
            })
            .collect();
        out.push_str(&table(&["SLOT", "CAUSE", "RECOVERY", "DETAIL"], &rows));
    }
    out
}

fn declared(v: &Value) -> String {
    let list = v["declarations"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|d| {
            let fires = match d["single"].as_str() {
                Some(how) => format!("gateway {} ({how})", text(&d["owner_gateway_id"])),
                None => "every one".into(),
            };
            let drift: Vec<String> = d["gateways"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .filter(|g| {
                    g["error"].is_string() || g["drift"].as_array().is_some_and(|a| !a.is_empty())
                })
                .map(|g| {
                    let what = match g["error"].as_str() {
                        Some(e) => text(&Value::from(e)),
                        None => g["drift"]
                            .as_array()
                            .map(|a| a.iter().map(text).collect::<Vec<_>>().join(","))
                            .unwrap_or_default(),
                    };
                    format!("{}: {what}", text(&g["gateway_id"]))
                })
                .collect();
            vec![
                text(&d["name"]),
                text(&d["selector"]),
                schedule(&d["job"]["schedule"]),
                fires,
                text(&d["revision"]),
                d["gateways"].as_array().map_or(0, Vec::len).to_string(),
                if drift.is_empty() {
                    "in sync".into()
                } else {
                    drift.join("; ")
                },
            ]
        })
        .collect();
    let mut out = table(
        &[
            "NAME", "SELECTOR", "SCHEDULE", "FIRES ON", "REV", "GATEWAYS", "DRIFT",
        ],
        &rows,
    );
    out.push_str(&format!("{} declaration(s)\n", list.len()));
    out
}
