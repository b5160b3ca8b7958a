//! The approvals inbox against a real OpenClaw 2026.9.6, with no model: a second operator
//! connection (`Operator`, as OpenClaw's CLI connects) raises approvals as a run would, the
//! daemon — the gateway's approval client — shows them, and the answers and ends the gateway
//! records are the ones the inbox shows: answered from the API (the requester hears the
//! decision), answered first by the requester (ours is 409), expired, a plugin approval,
//! denied by the daemon when nobody answers, still pending across a daemon restart, and
//! cancelled by a gateway crash.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use gs_test_support::daemon::{Daemon, online, wait_for};
use gs_test_support::operator::Operator;
use gs_test_support::real_gateway::RealGateway;

use super::{DEADLINE, add, free_gateway_port, wait_gateway};

const TOKEN: &str = "approvals-token-1";

fn approval(d: &Daemon, gw: i64, id: &str) -> Option<Value> {
    let res = d.get(&format!("/api/approvals/{gw}/{id}"), &d.admin_key);
    (res.status == 200).then(|| res.json()["approval"].clone())
}

fn wait_approval(
    d: &Daemon,
    gw: i64,
    id: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    wait_for(what, DEADLINE, || match approval(d, gw, id) {
        Some(a) if pred(&a) => Ok(a),
        other => Err(format!("{other:?}")),
    })
}

fn resolve(d: &Daemon, gw: i64, id: &str, decision: &str) -> gs_test_support::daemon::Response {
    d.call(
        "POST",
        &format!("/api/approvals/{gw}/{id}/resolve"),
        &d.admin_key,
        &json!({"decision": decision}),
    )
}

/// `exec.approval.request` as a run asks it (two-phase: accepted now, decided later): its id.
fn ask_exec(t: &mut Operator, command: &str, timeout_ms: u64) -> String {
    let accepted = t
        .call(
            "exec.approval.request",
            json!({"command": command, "host": "gateway", "timeoutMs": timeout_ms, "twoPhase": true}),
            DEADLINE,
        )
        .unwrap_or_else(|e| panic!("exec.approval.request: {e}"));
    assert_eq!(
        (&accepted["status"], &accepted["deliveryRoute"]),
        (&json!("accepted"), &json!("approval-client")),
        "the daemon is the approval client: {accepted:#}"
    );
    accepted["id"].as_str().unwrap().to_owned()
}

fn daemon(extra: &[(&str, &str)]) -> Daemon {
    let mut env = vec![
        ("GATEWAY_SUPERVISOR__GATEWAYS__HEARTBEAT_INTERVAL", "1s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__BACKOFF_MAX", "2s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__HEALTH_INTERVAL", "1h"),
        ("GATEWAY_SUPERVISOR__APPROVALS__ENABLED", "true"),
        // The tests poll gateways while real ones start (slowly, beside others, in CI): the
        // per-key limit of 100/min on /api/gateways* answered the recipe's PUT 429.
        ("GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE", "0"),
    ];
    env.extend_from_slice(extra);
    Daemon::start_with(&env)
}

fn approval_client(d: &Daemon, id: i64) {
    wait_gateway(d, id, "online as the approval client", |g| {
        online(g) && g["connection"]["approval_client"] == true
    });
}

/// A real gateway, a daemon (with `extra`) that is its approval client, the gateway's id, and a
/// second operator connection to raise approvals as a run would.
fn inbox(extra: &[(&str, &str)]) -> (RealGateway, Daemon, i64, Operator) {
    let install = PathBuf::from(std::env::var("GS_OPENCLAW_DIR").expect("GS_OPENCLAW_DIR"));
    let mut gw = RealGateway::new(&install, free_gateway_port(), TOKEN, None);
    gw.start();
    gw.wait_ready();
    let d = daemon(extra);
    let id = add(&d, "real", "127.0.0.1", gw.port, TOKEN);
    approval_client(&d, id);
    let t = Operator::connect(gw.port, TOKEN, &[], DEADLINE);
    (gw, d, id, t)
}

#[test]
fn a_real_gateway_s_approvals_are_answered_once_from_the_inbox_and_end_as_the_gateway_records() {
    let (mut gw, mut d, id, mut t) = inbox(&[]);

    // 1. Asked, shown at once, denied from the API: the requester hears `deny`.
    let asked_at = Instant::now();
    let a = ask_exec(&mut t, "printf smoke", 60_000);
    let shown = wait_approval(&d, id, &a, "the approval in the inbox", |x| {
        x["status"] == "pending"
    });
    let seen_after = asked_at.elapsed();
    eprintln!("approval in the inbox {seen_after:?} after it was asked");
    assert!(seen_after < Duration::from_secs(3), "{seen_after:?}");
    assert_eq!(
        (&shown["command"], &shown["kind"]),
        (&json!("printf smoke"), &json!("exec"))
    );
    let res = resolve(&d, id, &a, "deny");
    assert_eq!(res.status, 200, "{}", res.text());
    let decided = t
        .call("exec.approval.waitDecision", json!({"id": a}), DEADLINE)
        .unwrap_or_else(|e| panic!("waitDecision: {e}"));
    assert_eq!(decided["decision"], "deny", "{decided:#}");

    // 2. The requester answers first: ours is refused with whose answer won.
    let b = ask_exec(&mut t, "printf race", 60_000);
    wait_approval(&d, id, &b, "pending", |x| x["status"] == "pending");
    let first = t
        .call(
            "approval.resolve",
            json!({"id": b, "kind": "exec", "decision": "allow-once"}),
            DEADLINE,
        )
        .unwrap_or_else(|e| panic!("approval.resolve: {e}"));
    assert_eq!(first["applied"], true, "{first:#}");
    let res = resolve(&d, id, &b, "deny");
    assert_eq!(res.status, 409, "{}", res.text());
    let body = res.json();
    assert_eq!(body["error"], "approval_already_resolved", "{body:#}");
    assert_eq!(body["details"]["decision"], "allow-once", "{body:#}");
    let ended = wait_approval(&d, id, &b, "answered elsewhere", |x| {
        x["status"] == "allowed"
    });
    assert_eq!(ended["resolved_by"], "elsewhere", "{ended:#}");

    // 3. Out of time: expired.
    let c = ask_exec(&mut t, "printf late", 1_500);
    let ended = wait_approval(&d, id, &c, "expired", |x| x["status"] == "expired");
    assert_eq!(ended["reason"], "timeout", "{ended:#}");
    assert_eq!(resolve(&d, id, &c, "allow-once").status, 409);

    // 4. A plugin approval, allowed once.
    let p = t
        .call(
            "plugin.approval.request",
            json!({"title": "Send an email", "description": "to ops@example.com", "severity": "warning", "timeoutMs": 60_000, "twoPhase": true}),
            DEADLINE,
        )
        .unwrap_or_else(|e| panic!("plugin.approval.request: {e}"));
    let p = p["id"].as_str().unwrap().to_owned();
    let shown = wait_approval(&d, id, &p, "the plugin approval", |x| {
        x["status"] == "pending"
    });
    assert_eq!(
        (&shown["kind"], &shown["command"]),
        (&json!("plugin"), &json!("Send an email"))
    );
    assert_eq!(resolve(&d, id, &p, "allow-once").status, 200);
    let decided = t
        .call("plugin.approval.waitDecision", json!({"id": p}), DEADLINE)
        .unwrap_or_else(|e| panic!("plugin waitDecision: {e}"));
    assert_eq!(decided["decision"], "allow-once", "{decided:#}");

    // The gateway's own record names the daemon — by its device id — as who answered the first.
    let history = t
        .call("approval.history", json!({"limit": 20}), DEADLINE)
        .unwrap_or_else(|e| panic!("approval.history: {e}"));
    let first = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == json!(a))
        .unwrap_or_else(|| panic!("{a} in {history:#}"));
    assert_eq!(first["resolver"]["kind"], "device", "{first:#}");
    let device = first["resolver"]["id"].as_str().unwrap();
    let log = String::from_utf8_lossy(&d.logs()).into_owned();
    assert!(
        log.contains(&format!("device_id={device}"))
            || log.contains(&format!("\"device_id\":\"{device}\"")),
        "the daemon's own device id ({device}) is in its log"
    );

    // 5. The daemon restarted with one pending: still pending after, then answered.
    let e = ask_exec(&mut t, "printf after-restart", 120_000);
    wait_approval(&d, id, &e, "pending", |x| x["status"] == "pending");
    d.restart();
    approval_client(&d, id);
    let kept = wait_approval(&d, id, &e, "still pending", |_| true);
    assert_eq!(kept["status"], "pending", "{kept:#}");
    assert_eq!(resolve(&d, id, &e, "allow-once").status, 200);
    let decided = t
        .call("exec.approval.waitDecision", json!({"id": e}), DEADLINE)
        .unwrap_or_else(|err| panic!("waitDecision: {err}"));
    assert_eq!(decided["decision"], "allow-once", "{decided:#}");

    // 6. The gateway crashes with one pending: cancelled by the restart.
    let f = ask_exec(&mut t, "printf crash", 120_000);
    wait_approval(&d, id, &f, "pending", |x| x["status"] == "pending");
    drop(t);
    gw.kill();
    gw.start();
    gw.wait_ready();
    let ended = wait_approval(&d, id, &f, "cancelled by the restart", |x| {
        x["status"] == "cancelled"
    });
    assert_eq!(ended["reason"], "gateway-restart", "{ended:#}");
    gw.stop();
}

#[test]
fn an_approval_nobody_answers_is_denied_by_the_daemon_and_the_run_hears_it() {
    let (mut gw, d, id, mut t) = inbox(&[
        ("GATEWAY_SUPERVISOR__APPROVALS__ESCALATE_AFTER", "1s"),
        ("GATEWAY_SUPERVISOR__APPROVALS__AUTO_DENY_AFTER", "3s"),
    ]);
    let a = ask_exec(&mut t, "printf unanswered", 60_000);
    let denied = wait_approval(&d, id, &a, "denied by the daemon", |x| {
        x["status"] == "denied"
    });
    assert_eq!(
        (&denied["resolved_by"], &denied["reason"]),
        (&json!("auto"), &json!("no operator answered within 3s")),
        "{denied:#}"
    );
    assert!(
        denied["escalated_at_ms"].is_i64(),
        "escalated first: {denied:#}"
    );
    let decided = t
        .call("exec.approval.waitDecision", json!({"id": a}), DEADLINE)
        .unwrap_or_else(|e| panic!("waitDecision: {e}"));
    assert_eq!(decided["decision"], "deny", "{decided:#}");
    drop(t);
    gw.stop();
}

/// The runbook's approvals recipe (docs/operations.md, *Operating a fleet*, **Approvals**) run as written — its
/// shell block, with only the daemon's address put in — against a real 2026.9.6 registered as
/// gateway 1: the request goes to the daemon, the inbox lists it, the deny is the operator's,
/// and the second answer is refused.
#[test]
fn the_readme_approvals_recipe_runs_as_written() {
    let install = PathBuf::from(std::env::var("GS_OPENCLAW_DIR").expect("GS_OPENCLAW_DIR"));
    let mut gw = RealGateway::new(&install, free_gateway_port(), TOKEN, None);
    gw.start();
    gw.wait_ready();
    let d = daemon(&[("GATEWAY_SUPERVISOR__APPROVALS__ENABLED", "false")]);
    let id = add(&d, "real", "127.0.0.1", gw.port, TOKEN);
    assert_eq!(id, 1, "the recipe names gateway 1");
    wait_gateway(&d, id, "online", online);
    let runbook =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
            .unwrap();
    let from = runbook
        .find("Against a real gateway registered as gateway 1")
        .expect("the recipe in docs/operations.md");
    let block = &runbook[from..];
    let start = block.find("```sh\n").unwrap() + "```sh\n".len();
    let script = &block[start..start + block[start..].find("```").unwrap()];
    let script = script.replace("localhost:3000", &d.addr.to_string());
    let bin = tempfile::tempdir().unwrap();
    gw.cli_script(bin.path());
    let daemon_dir = gs_test_support::daemon::binary()
        .parent()
        .unwrap()
        .to_owned();
    let out = std::process::Command::new("bash")
        .args(["-o", "pipefail", "-c", &script])
        .env(
            "PATH",
            format!(
                "{}:{}:/usr/bin:/bin",
                bin.path().display(),
                daemon_dir.display()
            ),
        )
        .env("KEY", &d.admin_key)
        .env("GATEWAY_SUPERVISOR_API_KEY", &d.admin_key)
        .env("GATEWAY_SUPERVISOR_URL", format!("http://{}", d.addr))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    let said = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!out.status.success(), "the last line is refused: {said}");
    assert!(
        stdout.contains("\"deliveryRoute\": \"approval-client\""),
        "{said}"
    );
    assert!(
        stdout.contains("printf smoke") && stdout.contains("pending"),
        "{said}"
    );
    assert!(
        stdout.contains(r#"{"status":"denied","decision":"deny","resolved_by":"operator"}"#),
        "{said}"
    );
    assert!(
        stderr.contains("was already denied: answered by api_key:"),
        "{said}"
    );
    eprintln!("{said}");
    gw.stop();
}

/// A real agent run (the fake model asks for the `exec` tool, in a session whose permission
/// mode is `guarded`, with `tools.exec` asking on the gateway host) raises an exec approval;
/// the inbox shows it with its session and run, allowed from the API, and the run completes
/// with the command's output.
#[test]
fn a_real_run_s_exec_approval_allowed_from_the_inbox_lets_the_command_run() {
    let install = PathBuf::from(std::env::var("GS_OPENCLAW_DIR").expect("GS_OPENCLAW_DIR"));
    let model = gs_test_support::fake_model::FakeModel::start();
    let mut gw = RealGateway::new(&install, free_gateway_port(), TOKEN, None);
    gw.use_model(&model.base_url());
    gw.with_config(json!({"tools": {"exec": {"host": "gateway", "mode": "ask"}}}));
    gw.start();
    gw.wait_ready();
    let d = daemon(&[]);
    let id = add(&d, "real", "127.0.0.1", gw.port, TOKEN);
    approval_client(&d, id);
    let mut t = Operator::connect(gw.port, TOKEN, &[], DEADLINE);
    let created = t
        .call(
            "sessions.create",
            json!({"permissionMode": "guarded"}),
            DEADLINE,
        )
        .unwrap_or_else(|e| panic!("sessions.create: {e}"));
    let key = created["key"].as_str().unwrap().to_owned();
    let sent = t
        .call(
            "chat.send",
            json!({"sessionKey": key, "message": "EXEC: printf approved-smoke", "idempotencyKey": "exec-approval-1"}),
            DEADLINE,
        )
        .unwrap_or_else(|e| panic!("chat.send: {e}"));
    let run = sent["runId"].as_str().unwrap_or_default().to_owned();
    let asked = wait_for("the run's approval in the inbox", DEADLINE, || {
        let page = d.get("/api/approvals?status=pending", &d.admin_key).json();
        match page["approvals"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["session_key"] == json!(key)).cloned())
        {
            Some(a) => Ok(a),
            None => Err(format!("{page:#}")),
        }
    });
    eprintln!("{asked:#}");
    assert!(
        asked["command"]
            .as_str()
            .unwrap()
            .contains("printf approved-smoke"),
        "{asked:#}"
    );
    let aid = asked["id"].as_str().unwrap();
    assert_eq!(resolve(&d, id, aid, "allow-once").status, 200);
    let history = wait_for(
        "the run's reply with the command's output",
        DEADLINE,
        || {
            let h = t
                .call(
                    "chat.history",
                    json!({"sessionKey": key, "limit": 50}),
                    DEADLINE,
                )
                .unwrap_or_else(|e| panic!("chat.history: {e}"));
            if h.to_string().contains("tool said:") {
                Ok(h)
            } else {
                Err(format!("{h:#}"))
            }
        },
    );
    assert!(
        history.to_string().contains("approved-smoke"),
        "the command ran: {history:#}"
    );
    eprintln!("run {run}");
    drop(t);
    gw.stop();
}

/// An operator is never shown less than they approve, against a real 2026.9.6: a 12 KiB
/// command (the inbox cut at 4 KiB) is shown whole, as the gateway presents it; one past the
/// gateway's own display bound (16,384 UTF-16 units) is refused by the gateway itself;
/// invisible characters read as the gateway writes them; and a decision the gateway does not
/// offer (`unavailableDecisions`) is refused by the inbox before it reaches the gateway.
#[test]
fn a_real_gateway_s_long_command_is_shown_whole_and_only_what_it_offers_is_sent() {
    let (mut gw, d, id, mut t) = inbox(&[]);

    let long = format!("echo start {} ; rm -rf /srv/the-end", "y".repeat(12 * 1024));
    let a = ask_exec(&mut t, &long, 60_000);
    let shown = wait_approval(&d, id, &a, "the long one", |x| x["status"] == "pending");
    assert_eq!(shown["command"], json!(long), "whole");
    assert_eq!(shown["presented_whole"], true);
    assert_eq!(resolve(&d, id, &a, "deny").status, 200);

    // The gateway's own bound: it refuses to present more.
    let refused = t
        .call(
            "exec.approval.request",
            json!({"command": "z".repeat(17_000), "host": "gateway", "timeoutMs": 60_000, "twoPhase": true}),
            DEADLINE,
        )
        .expect_err("2026.9.6 refuses a command past its display bound")
        .to_string();
    assert!(
        refused.contains("EXEC_APPROVAL_COMMAND_DISPLAY_LIMIT")
            || refused.contains("exceeds exec approval display limit"),
        "{refused}"
    );

    // Invisible characters: the inbox shows what the gateway's own presentation shows.
    let sneaky = "ls /tmp\u{200B}\u{E0072}; true";
    let b = ask_exec(&mut t, sneaky, 60_000);
    let shown = wait_approval(&d, id, &b, "the sneaky one", |x| x["status"] == "pending");
    let own = t
        .call("approval.get", json!({"id": b}), DEADLINE)
        .unwrap_or_else(|e| panic!("approval.get: {e}"));
    assert_eq!(
        shown["command"], own["approval"]["presentation"]["commandText"],
        "{own:#}"
    );
    assert_eq!(shown["command"], "ls /tmp\\u{200B}\\u{E0072}; true");
    assert_eq!(resolve(&d, id, &b, "deny").status, 200);

    // Only what the gateway offers.
    let accepted = t
        .call(
            "exec.approval.request",
            json!({"command": "printf limited", "host": "gateway", "timeoutMs": 60_000, "twoPhase": true,
                   "unavailableDecisions": ["allow-always"]}),
            DEADLINE,
        )
        .unwrap_or_else(|e| panic!("exec.approval.request: {e}"));
    let c = accepted["id"].as_str().unwrap().to_owned();
    let shown = wait_approval(&d, id, &c, "the limited one", |x| x["status"] == "pending");
    assert_eq!(
        shown["offered_decisions"],
        json!(["allow-once", "deny"]),
        "{shown:#}"
    );
    let res = resolve(&d, id, &c, "allow-always");
    assert_eq!(res.status, 409, "{}", res.text());
    assert_eq!(res.json()["error"], "decision_not_offered");
    assert_eq!(resolve(&d, id, &c, "allow-once").status, 200);
    let decided = t
        .call("exec.approval.waitDecision", json!({"id": c}), DEADLINE)
        .unwrap_or_else(|e| panic!("waitDecision: {e}"));
    assert_eq!(decided["decision"], "allow-once", "{decided:#}");
    drop(t);
    gw.stop();
}
