//! `ctl`'s tables. Every string from the daemon is passed through [`clean`] (control
//! characters escaped, length bounded): a gateway chose its version string and its error
//! messages, and a terminal obeys escape sequences.

use serde_json::Value;

use gateway_supervisor_actors::bounded;
use gateway_supervisor_actors::protocol::approval_text;

/// A string from the daemon, safe for a terminal.
pub fn clean(s: &str) -> String {
    bounded::text(s, bounded::SHORT)
}

/// A message (an error's text), safe for a terminal.
fn message(s: &str) -> String {
    bounded::text(s, bounded::MESSAGE)
}

pub(super) fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => clean(s),
        other => clean(&other.to_string()),
    }
}

/// Unix milliseconds as UTC, to the second.
pub(super) fn time_ms(v: &Value) -> String {
    v.as_i64()
        .and_then(|ms| u64::try_from(ms).ok())
        .map(|ms| {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
            humantime::format_rfc3339_seconds(t).to_string()
        })
        .unwrap_or_else(|| "-".into())
}

/// Columns padded to their widest cell.
pub(super) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

fn primary(g: &Value) -> &'static str {
    match (g["acting_primary"].as_bool(), g["is_primary"].as_bool()) {
        (Some(true), _) => "acting",
        (_, Some(true)) => "designated",
        _ => "",
    }
}

fn held(g: &Value) -> String {
    let mut held = Vec::new();
    if g["suspended"] == true {
        held.push("suspended");
    }
    if g["cordoned"] == true {
        held.push("cordoned");
    }
    if g["maintenance"].is_object() {
        held.push("maintenance");
    }
    held.join(",")
}

/// A gateway's maintenance window: why, by whom, until when.
fn maintenance(g: &Value) -> String {
    let m = &g["maintenance"];
    if !m.is_object() {
        return "-".into();
    }
    format!(
        "{} (by {}, until {})",
        message(m["reason"].as_str().unwrap_or("no reason given")),
        text(&m["by"]),
        match m["until"].as_i64() {
            Some(s) => time_ms(&(s * 1000).into()),
            None => "an operator ends it".into(),
        }
    )
}

fn latency(g: &Value) -> String {
    g["latency"]
        .as_i64()
        .map_or_else(|| "-".into(), |ms| format!("{ms} ms"))
}

pub fn gateways(v: &Value) -> String {
    let list = v["gateways"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|g| {
            vec![
                text(&g["id"]),
                text(&g["name"]),
                text(&g["status"]),
                primary(g).into(),
                latency(g),
                text(&g["sessions_count"]),
                text(&g["connection"]["server_version"]),
                text(&g["breaker"]["state"]),
                held(g),
                labels(g),
                text(&g["url"]),
            ]
        })
        .collect();
    let online = list.iter().filter(|g| g["status"] == "online").count();
    let mut out = table(
        &[
            "ID", "NAME", "STATUS", "PRIMARY", "LATENCY", "SESSIONS", "VERSION", "BREAKER", "HELD",
            "LABELS", "URL",
        ],
        &rows,
    );
    let s = if list.len() == 1 { "" } else { "s" };
    out.push_str(&format!("{} gateway{s}, {online} online\n", list.len()));
    out
}

/// `region=eu,tier=canary`, or `-`. Labels were checked when they were set (a small alphabet).
fn labels(g: &Value) -> String {
    match g["labels"].as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
        _ => "-".into(),
    }
}

pub fn gateway(v: &Value) -> String {
    let g = &v["gateway"];
    let c = &g["connection"];
    let error = match &c["last_error"] {
        Value::Object(e) => format!(
            "{}: {}",
            text(e.get("code").unwrap_or(&Value::Null)),
            message(e.get("message").and_then(Value::as_str).unwrap_or(""))
        ),
        _ => "-".into(),
    };
    let rows = [
        ("id", text(&g["id"])),
        ("name", text(&g["name"])),
        ("url", text(&g["url"])),
        ("status", text(&g["status"])),
        ("primary", primary(g).into()),
        ("held back", held(g)),
        ("maintenance", maintenance(g)),
        ("latency", latency(g)),
        (
            "last seen",
            time_ms(&g["last_seen"].as_i64().map(|s| s * 1000).into()),
        ),
        ("sessions", text(&g["sessions_count"])),
        ("agents", text(&g["agents_count"])),
        ("link", text(&c["state"])),
        ("version", text(&c["server_version"])),
        ("protocol", text(&c["protocol"])),
        ("boot id", text(&c["boot_id"])),
        (
            "breaker",
            format!(
                "{} ({} consecutive failures)",
                text(&g["breaker"]["state"]),
                text(&g["breaker"]["consecutive_failures"])
            ),
        ),
        ("last error", error),
        ("pairing request", text(&c["pairing_request_id"])),
    ];
    rows.iter()
        .map(|(k, v)| format!("{k:<16}{}\n", if v.is_empty() { "-" } else { v }))
        .collect()
}

pub fn sessions(v: &Value) -> String {
    let list = v["sessions"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            vec![
                text(&s["gateway_id"]),
                text(&s["key"]),
                text(&s["agent"]),
                text(&s["status"]),
                if s["running"] == true { "yes" } else { "" }.into(),
                text(&s["totalTokens"]),
                time_ms(&s["updatedAt"]),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "GATEWAY", "KEY", "AGENT", "STATUS", "RUNNING", "TOKENS", "UPDATED",
        ],
        &rows,
    );
    out.push_str(&format!(
        "{} of {} sessions{}\n",
        list.len(),
        text(&v["total"]),
        if v["truncated"] == true {
            " (--limit cut the list)"
        } else {
            ""
        }
    ));
    if let Some(missing) = v["unreachable_instances"]
        .as_array()
        .filter(|a| !a.is_empty())
    {
        let names: Vec<String> = missing.iter().map(text).collect();
        out.push_str(&format!(
            "instances that did not answer: {}\n",
            names.join(", ")
        ));
    }
    out
}

pub fn spawn(v: &Value) -> String {
    let mut rows = vec![
        (
            "spawn",
            text(&v["spawn_id"].as_str().map_or(v["id"].clone(), Value::from)),
        ),
        ("status", text(&v["status"])),
        ("gateway", text(&v["gateway_id"])),
        ("run", text(&v["run_id"])),
        ("session", text(&v["session_key"])),
    ];
    match &v["result"] {
        Value::Null => {}
        Value::String(s) => rows.push(("result", message(s))),
        other => rows.push(("result", message(&other.to_string()))),
    }
    if !v["error"].is_null() {
        let e = &v["error"];
        let e = e["message"]
            .as_str()
            .or(e.as_str())
            .map_or_else(|| e.to_string(), str::to_owned);
        rows.push(("error", message(&e)));
    }
    rows.iter().map(|(k, v)| format!("{k:<9}{v}\n")).collect()
}

/// `GET /api/config/drift`: one row per gateway, the paths that differ named.
pub fn drift(v: &Value) -> String {
    let list = v["gateways"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|g| {
            let paths: Vec<String> = g["paths"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .map(|p| text(&p["path"]))
                .collect();
            let why = if paths.is_empty() {
                text(&g["reason"])
            } else {
                paths.join(",")
            };
            vec![
                text(&g["gateway_id"]),
                text(&g["name"]),
                text(&g["state"]),
                text(&Value::String(
                    g["profiles"]
                        .as_array()
                        .map(|a| a.iter().map(text).collect::<Vec<_>>().join(","))
                        .unwrap_or_default(),
                )),
                why,
            ]
        })
        .collect();
    let mut out = table(&["ID", "NAME", "STATE", "PROFILES", "DIFFERS"], &rows);
    let count = |s: &str| v["counts"][s].as_u64().unwrap_or(0);
    out.push_str(&format!(
        "{} in sync, {} drifted, {} saved not applied, {} unknown\n",
        count("in_sync"),
        count("drifted"),
        count("saved_not_applied"),
        count("unknown")
    ));
    out
}

/// One gateway of a rollout: its id, step and what it waits for or why it ended.
fn rollout_rows(op: &Value) -> Vec<Vec<String>> {
    op["gateways"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|g| {
            vec![
                text(&g["gateway_id"]),
                if g["canary"] == true { "canary" } else { "" }.to_owned(),
                text(&g["step"]),
                text(&g["detail"]),
            ]
        })
        .collect()
}

/// `GET /api/config/rollouts/{id}` (and a started rollout).
pub fn rollout(v: &Value) -> String {
    let op = &v["operation"];
    let mut out = format!(
        "rollout {} {}{}\n",
        text(&op["id"]),
        text(&op["state"]),
        match op["detail"].as_str() {
            Some(d) => format!(": {}", message(d)),
            None => String::new(),
        }
    );
    let waves: Vec<String> = v["waves"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|w| {
            let ids: Vec<String> = w["gateways"]
                .as_array()
                .map(|a| a.iter().map(text).collect())
                .unwrap_or_default();
            format!(
                "{}[{}]",
                if w["canary"] == true { "canary " } else { "" },
                ids.join(",")
            )
        })
        .collect();
    out.push_str(&format!("waves: {}\n", waves.join(" → ")));
    out.push_str(&table(&["ID", "", "STEP", "DETAIL"], &rollout_rows(op)));
    out
}

/// `GET /api/config/rollouts`.
pub fn rollouts(v: &Value) -> String {
    let list = v["rollouts"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|op| {
            let steps = op["gateways"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            let done = steps.iter().filter(|g| g["step"] == "done").count();
            vec![
                text(&op["id"]),
                text(&op["state"]),
                format!("{done}/{}", steps.len()),
                time_ms(&Value::from(op["created_at"].as_i64().unwrap_or(0) * 1000)),
                text(&op["detail"]),
            ]
        })
        .collect();
    table(&["ID", "STATE", "DONE", "STARTED", "DETAIL"], &rows)
}

/// A rollout's dry run: each gateway's diff and the waves.
pub fn dry_run(v: &Value) -> String {
    let rows: Vec<Vec<String>> = v["gateways"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|g| {
            let changes: Vec<String> = g["changes"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .map(|c| {
                    if c["secret"] == true {
                        format!("{} (secret)", text(&c["path"]))
                    } else {
                        format!(
                            "{}: {} → {}",
                            text(&c["path"]),
                            c.get("live")
                                .map_or("unset".to_owned(), |l| message(&l.to_string())),
                            message(&c["desired"].to_string())
                        )
                    }
                })
                .collect();
            vec![
                text(&g["gateway_id"]),
                text(&g["name"]),
                if g["canary"] == true { "canary" } else { "" }.to_owned(),
                if changes.is_empty() {
                    g["reason"]
                        .as_str()
                        .map_or_else(|| "no change".to_owned(), message)
                } else {
                    changes.join("; ")
                },
            ]
        })
        .collect();
    table(&["ID", "NAME", "", "CHANGES"], &rows)
}

/// `GET /api/config/profiles`.
pub fn profiles(v: &Value) -> String {
    let list = v["profiles"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|p| {
            vec![
                text(&p["name"]),
                text(&p["selector"]),
                text(&Value::String(p["patch"].to_string())),
                text(&p["note"]),
                time_ms(&p["updated_at_ms"]),
            ]
        })
        .collect();
    table(&["NAME", "SELECTOR", "PATCH", "NOTE", "UPDATED"], &rows)
}

pub fn approvals(v: &Value) -> String {
    let list = v["approvals"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|a| {
            vec![
                text(&a["gateway_id"]),
                text(&a["id"]),
                text(&a["kind"]),
                text(&a["agent_id"]),
                format!("{}{}", text(&a["status"]), answerable(a)),
                time_ms(&a["created_at_ms"]),
                shown(&a["command"], bounded::SHORT),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "GATEWAY", "ID", "KIND", "AGENT", "STATUS", "ASKED", "COMMAND",
        ],
        &rows,
    );
    out.push_str(&format!(
        "{} approval(s){}\n",
        list.len(),
        if v["next_cursor"].is_string() {
            " (more: raise --limit)"
        } else {
            ""
        }
    ));
    out
}

/// A presented text as the gateway shows it: invisible characters escaped (`\u{200B}`),
/// at most `max` bytes (the cut marked).
fn shown(v: &Value, max: usize) -> String {
    match v.as_str() {
        None | Some("") => "-".into(),
        Some(s) => approval_text::shown(s, max).text,
    }
}

/// What keeps a pending approval from taking an answer, said after its status.
fn answerable(a: &Value) -> String {
    let mut why = Vec::new();
    if a["presented_whole"] == false {
        why.push("cut: deny only");
    }
    if a["gateway_reachable"] == false {
        why.push("gateway offline");
    }
    if why.is_empty() {
        String::new()
    } else {
        format!(" ({})", why.join(", "))
    }
}

/// A steered rollout's operation: its id, its state now, and why when it says.
pub fn steered(v: &Value) -> String {
    let op = &v["operation"];
    let mut out = format!("rollout {}: {}\n", text(&op["id"]), text(&op["state"]));
    if let Some(detail) = op["detail"].as_str() {
        out.push_str(&format!("{}\n", message(detail)));
    }
    out
}

pub fn approval(v: &Value) -> String {
    let a = &v["approval"];
    let by = match (a["resolved_by"].as_str(), a["resolver_label"].as_str()) {
        (Some(by), Some(label)) => format!("{by} ({})", clean(label)),
        (Some(by), None) => by.to_owned(),
        _ => "-".into(),
    };
    let rows = [
        ("gateway", text(&a["gateway_id"])),
        ("id", text(&a["id"])),
        ("kind", text(&a["kind"])),
        (
            "status",
            format!(
                "{}{}",
                text(&a["status"]),
                if a["gateway_reachable"] == false {
                    " (gateway offline: no answer can reach it now)"
                } else {
                    ""
                }
            ),
        ),
        ("decision", text(&a["decision"])),
        ("reason", text(&a["reason"])),
        ("by", by),
        ("agent", text(&a["agent_id"])),
        ("session", text(&a["session_key"])),
        ("host", text(&a["host"])),
        // Whole, as the inbox keeps it: an operator is never shown less than they approve.
        (
            "command",
            shown(&a["command"], approval_text::DISPLAY_MAX + 64),
        ),
        (
            "warning",
            shown(&a["warning"], approval_text::DISPLAY_MAX + 64),
        ),
        (
            "offers",
            a["offered_decisions"]
                .as_array()
                .map(|d| d.iter().map(text).collect::<Vec<_>>().join(", "))
                .unwrap_or_else(|| "-".into()),
        ),
        (
            "shown",
            if a["presented_whole"] == false {
                "cut: the gateway presented more than the inbox keeps; it can only be denied".into()
            } else {
                "whole".to_owned()
            },
        ),
        ("asked", time_ms(&a["created_at_ms"])),
        ("expires", time_ms(&a["expires_at_ms"])),
        ("ended", time_ms(&a["resolved_at_ms"])),
    ];
    rows.iter().map(|(k, v)| format!("{k:<10}{v}\n")).collect()
}

pub fn event(v: &Value) -> String {
    let payload = bounded::text(&v["payload"].to_string(), 200);
    format!(
        "{}  {}  gateway={}  {payload}",
        time_ms(&v["ts"]),
        text(&v["type"]),
        text(&v["gateway_id"])
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_hostile_name_cannot_drive_the_terminal() {
        let v = json!({"gateways": [{"id": 1, "name": "evil\u{1b}[2J\nforged line",
            "status": "online", "connection": {"server_version": "9\u{7}"}}]});
        let out = gateways(&v);
        assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out}");
        assert_eq!(out.lines().count(), 3, "{out}");
    }

    #[test]
    fn an_approval_is_shown_whole_escaped_and_says_what_keeps_it_from_an_answer() {
        let long = format!("echo start {} end", "y".repeat(12 * 1024));
        let v = json!({"approval": {"gateway_id": 1, "id": "a1", "kind": "exec",
            "status": "pending", "command": long, "warning": "zero\u{200B}width",
            "offered_decisions": ["deny"], "presented_whole": false, "gateway_reachable": false}});
        let out = approval(&v);
        assert!(out.contains(&long), "the whole command");
        assert!(out.contains("zero\\u{200B}width"), "{out}");
        assert!(out.contains("offers    deny"), "{out}");
        assert!(out.contains("it can only be denied"), "{out}");
        assert!(out.contains("gateway offline"), "{out}");
        let list = approvals(&json!({"approvals": [v["approval"]]}));
        assert!(
            list.contains("pending (cut: deny only, gateway offline)"),
            "{list}"
        );
        assert!(
            list.lines().nth(1).unwrap().len() < 400,
            "the list cuts: {list}"
        );
    }

    #[test]
    fn a_gateway_in_maintenance_says_so_with_why() {
        let g = json!({"id": 1, "name": "a", "status": "online", "cordoned": false,
            "maintenance": {"reason": "disk swap", "by": "api_key:ops", "since": 1, "until": null}});
        let list = gateways(&json!({"gateways": [g.clone()]}));
        assert!(
            list.lines().nth(1).unwrap().contains("maintenance"),
            "{list}"
        );
        let one = gateway(&json!({"gateway": g}));
        assert!(
            one.contains("disk swap (by api_key:ops, until an operator ends it)"),
            "{one}"
        );
    }

    #[test]
    fn columns_line_up_and_the_footer_counts() {
        let v = json!({"gateways": [
            {"id": 1, "name": "a", "status": "online", "acting_primary": true, "latency": 3,
             "sessions_count": 2, "breaker": {"state": "closed"}, "url": "ws://h:1"},
            {"id": 22, "name": "bravo", "status": "offline", "is_primary": true,
             "cordoned": true, "sessions_count": 0, "url": "ws://h:2"}]});
        let out = gateways(&v);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0].find("NAME"), lines[1].find("a "), "{out}");
        assert!(
            lines[1].contains("acting") && lines[1].contains("3 ms"),
            "{out}"
        );
        assert!(
            lines[2].contains("designated") && lines[2].contains("cordoned"),
            "{out}"
        );
        assert_eq!(lines[3], "2 gateways, 1 online");
    }
}
