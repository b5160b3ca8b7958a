//! `ctl managed …`: the gateways the daemon runs on its host — list, show, add (followed until
//! it runs with `--wait`), restart, delete.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::client::{Client, CtlError};
use super::render::{clean, table, text, time_ms};
use crate::managed::state::ProcessState;

#[derive(Debug, clap::Subcommand)]
pub enum ManagedCommand {
    /// Every managed gateway: host, release, state, pid, restarts, crashes, last exit.
    List,
    /// One managed gateway.
    Show {
        #[arg(value_name = "ID")]
        id: i64,
    },
    /// Declare one: the daemon installs the release, starts it and registers it as a gateway.
    Add {
        #[arg(value_name = "NAME")]
        name: String,
        /// The OpenClaw release, e.g. 2026.9.6.
        #[arg(long)]
        version: String,
        /// `key=value`; repeat for several.
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
        /// Unset: the first free port the daemon hands out.
        #[arg(long)]
        port: Option<u16>,
        /// The path of a package tarball on the daemon's host (else the npm registry).
        #[arg(long, value_name = "PATH")]
        source: Option<String>,
        /// A JSON merge patch over the safe default config.
        #[arg(long, value_name = "JSON")]
        config: Option<String>,
        /// Wait until it runs (at most this long); fails when it cannot run.
        #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION", num_args = 0..=1, default_missing_value = "10m")]
        wait: Option<Duration>,
    },
    /// Restart it through OpenClaw's handoff, or start one that is down.
    Restart {
        #[arg(value_name = "ID")]
        id: i64,
    },
    /// Stop it and remove it (and its gateway); --purge removes its folder too.
    Delete {
        #[arg(value_name = "ID")]
        id: i64,
        #[arg(long)]
        purge: bool,
    },
}

pub fn list(v: &Value) -> String {
    let list = v["managed"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let rows: Vec<Vec<String>> = list.iter().map(row).collect();
    table(
        &[
            "ID",
            "NAME",
            "HOST",
            "VERSION",
            "PORT",
            "STATE",
            "PID",
            "RESTARTS",
            "CRASHES",
            "LAST EXIT",
            "DETAIL",
        ],
        &rows,
    )
}

fn row(m: &Value) -> Vec<String> {
    vec![
        text(&m["gateway_id"]),
        text(&m["name"]),
        text(&m["host_id"]),
        text(&m["version"]),
        text(&m["port"]),
        text(&m["state"]),
        text(&m["pid"]),
        text(&m["restarts"]),
        text(&m["crashes"]),
        text(&m["last_exit"]),
        text(&m["detail"]),
    ]
}

pub fn one(v: &Value) -> String {
    let m = &v["managed"];
    let mut out = list(&json!({"managed": [m]}));
    out.push_str(&format!(
        "source: {}  started: {}  updated: {}\n",
        text(&m["source"]),
        time_ms(&m["started_at_ms"]),
        time_ms(&m["updated_at_ms"])
    ));
    out
}

/// The request body of `add`.
pub fn declaration(command: &ManagedCommand) -> Result<Value, CtlError> {
    let ManagedCommand::Add {
        name,
        version,
        labels,
        port,
        source,
        config,
        ..
    } = command
    else {
        return Err(CtlError::Answer("not an add".into()));
    };
    let mut body = json!({"name": name, "version": version});
    if !labels.is_empty() {
        let mut map = serde_json::Map::new();
        for l in labels {
            let (k, v) = l
                .split_once('=')
                .ok_or_else(|| CtlError::Answer(format!("--label {}: not KEY=VALUE", clean(l))))?;
            map.insert(k.to_owned(), json!(v));
        }
        body["labels"] = Value::Object(map);
    }
    if let Some(p) = port {
        body["port"] = json!(p);
    }
    if let Some(s) = source {
        body["source"] = json!(s);
    }
    if let Some(c) = config {
        body["config"] = serde_json::from_str(c)
            .map_err(|e| CtlError::Answer(format!("--config is not JSON: {e}")))?;
    }
    Ok(body)
}

/// Follows managed gateway `id` until it runs (or cannot: exited, failed), at most `wait`.
pub async fn wait_running(client: &Client, id: i64, wait: Duration) -> Result<Value, CtlError> {
    let deadline = Instant::now() + wait;
    let path = format!("/api/managed/{id}");
    loop {
        let v = client.get(&path).await?;
        let state: ProcessState = serde_json::from_value(v["managed"]["state"].clone())
            .map_err(|e| CtlError::Answer(format!("{path}: state: {e}")))?;
        match state {
            ProcessState::Running => return Ok(v),
            ProcessState::Failed | ProcessState::Exited | ProcessState::Stopped => {
                return Err(CtlError::RunFailed(format!(
                    "{}: {}",
                    state.as_str(),
                    text(&v["managed"]["detail"])
                )));
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            return Err(CtlError::Timeout {
                what: format!("managed gateway {id} running"),
                secs: wait.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_column_has_its_header_and_a_failure_says_why() {
        let v = json!({"managed": [{"gateway_id": 3, "name": "edge-1", "host_id": "h1",
            "version": "2026.9.6", "port": 39100, "state": "failed", "pid": null, "restarts": 0,
            "crashes": 0, "last_exit": "exit 78",
            "detail": "node /nonexistent/node: not found (managed_runtime.node)"}]});
        let out = list(&v);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0].find("NAME"), lines[1].find("edge-1"), "{out}");
        assert_eq!(
            lines[0].find("DETAIL"),
            lines[1].find("node /nonexistent"),
            "{out}"
        );
        assert!(lines[1].ends_with("(managed_runtime.node)"), "{out}");
    }
}
