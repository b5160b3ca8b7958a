//! `gateway-supervisor ctl`: an operator's client of a running daemon — tables by default,
//! the API's JSON with `--json`, a spawn followed to its reply, events as they happen, and
//! errors that name the problem without ever printing the key.

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::fleet::{add, fake, link_daemon, wait_gateway};
use crate::support::{Daemon, binary, online, sessions, wait_until};

const DEADLINE: Duration = Duration::from_secs(20);

/// A child process stopped when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

use crate::support::ctl_command;

fn ctl(d: &Daemon, key: Option<&str>, args: &[&str]) -> Output {
    ctl_command(d, key, args).output().expect("run ctl")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "ctl failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn failure(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "ctl succeeded: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn tables_json_a_spawn_to_its_reply_and_live_events() {
    let (fa, fb) = (fake(|c| c.sessions = 1), fake(|_| {}));
    let d = link_daemon(&[]);
    let a = add(&d, "alpha", &fa, Some("fake-token"));
    let b = add(&d, "bravo", &fb, Some("fake-token"));
    for id in [a, b] {
        wait_gateway(&d, id, "online with latency", |g| {
            online(g) && !g["latency"].is_null()
        });
    }
    let key = Some(d.admin_key.as_str());

    let table = stdout(&ctl(&d, key, &["gateways"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("STATUS"),
        "{table}"
    );
    let alpha = lines.iter().find(|l| l.contains("alpha")).expect(&table);
    assert!(alpha.contains("online") && alpha.contains(" ms"), "{table}");
    assert!(
        table.contains("acting"),
        "the acting primary is marked\n{table}"
    );
    assert_eq!(lines.last(), Some(&"2 gateways, 2 online"), "{table}");

    let json: Value =
        serde_json::from_str(&stdout(&ctl(&d, key, &["gateways", "--json"]))).unwrap();
    assert_eq!(json["gateways"].as_array().unwrap().len(), 2);
    assert!(json["gateways"][0]["token"] != "fake-token");

    let detail = stdout(&ctl(&d, key, &["gateways", &a.to_string()]));
    assert!(
        detail.contains("alpha") && detail.contains("2026.9.6"),
        "{detail}"
    );

    let session = wait_until("alpha's session", DEADLINE, || {
        sessions(&d, &format!("?gateway_id={a}"))
            .first()
            .map(|s| s["key"].as_str().unwrap().to_owned())
    });
    let listed = stdout(&ctl(&d, key, &["sessions", "--gateway", &a.to_string()]));
    assert!(
        listed.contains(&session) && listed.contains("of 1 sessions"),
        "{listed}"
    );

    let ran = stdout(&ctl(
        &d,
        key,
        &[
            "spawn",
            "--agent",
            "main",
            "--task",
            "say pong",
            "--gateway",
            &b.to_string(),
            "--wait",
            "20s",
        ],
    ));
    assert!(ran.contains("status   ok"), "{ran}");
    assert!(ran.contains(&format!("gateway  {b}")), "{ran}");

    // Events: the stream is open before the change it reports (the daemon has subscribers of
    // its own: one more than before).
    let before = crate::support::metric(&d, "event_subscribers");
    let mut child = Running(
        ctl_command(
            &d,
            key,
            &[
                "events",
                "--count",
                "1",
                "--types",
                "gateway.changed",
                "--json",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    wait_until("the event stream", DEADLINE, || {
        (crate::support::metric(&d, "event_subscribers") > before).then_some(())
    });
    let res = d.call(
        "POST",
        &format!("/api/gateways/{b}/cordon"),
        &d.admin_key,
        &serde_json::json!({}),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let status = wait_until("ctl events to end after one event", DEADLINE, || {
        child.0.try_wait().unwrap()
    });
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{stderr}");
    let event: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(event["type"], "gateway.changed");
    assert_eq!(event["gateway_id"], b);
}

#[test]
fn errors_name_the_problem_and_never_the_key() {
    let d = Daemon::start();
    let err = failure(&ctl(&d, None, &["gateways"]));
    assert!(err.contains("GATEWAY_SUPERVISOR_API_KEY"), "{err}");

    let wrong = "gsk_definitelyNotAKeyThisDaemonIssued0000";
    let err = failure(&ctl(&d, Some(wrong), &["gateways"]));
    assert!(err.contains("401") && err.contains("unauthorized"), "{err}");
    assert!(!err.contains(wrong), "the key was printed: {err}");

    // A viewer may list, not spawn: the daemon's 403 is shown as it is.
    let viewer = d.create_key("viewer", "ops-dashboard");
    stdout(&ctl(&d, Some(&viewer), &["gateways"]));
    let err = failure(&ctl(
        &d,
        Some(&viewer),
        &["spawn", "--agent", "main", "--task", "x"],
    ));
    assert!(err.contains("403"), "{err}");

    // The key from a file; nothing listening at the URL.
    let file = d.dir.path().join("ctl.key");
    std::fs::write(&file, format!("{}\n", d.admin_key)).unwrap();
    let out = Command::new(binary())
        .env_clear()
        .args([
            "ctl",
            "--url",
            "http://127.0.0.1:9",
            "--timeout",
            "2s",
            "--key-file",
        ])
        .arg(&file)
        .arg("gateways")
        .output()
        .unwrap();
    let err = failure(&out);
    assert!(
        err.contains("cannot reach the daemon at http://127.0.0.1:9"),
        "{err}"
    );
    assert!(!err.contains(&d.admin_key), "{err}");
    let err = failure(&ctl(
        &d,
        Some(&d.admin_key),
        &["--url", "ftp://x", "gateways"],
    ));
    assert!(err.contains("http:// or https://"), "{err}");
}

/// `ctl approvals`: the inbox as a table, one approval in detail, an answer — and a second
/// answer refused naming the one that won.
#[test]
fn approvals_are_listed_shown_and_answered_once() {
    let f = fake(|_| {});
    let d = link_daemon(&[("GATEWAY_SUPERVISOR__APPROVALS__ENABLED", "true")]);
    let gw = add(&d, "alpha", &f, Some("fake-token"));
    wait_gateway(&d, gw, "an approval client", |g| {
        online(g) && g["connection"]["approval_client"] == true
    });
    let id = f.request_approval("exec", "printf '\x1b[31mred'", Duration::from_secs(60));
    let key = Some(d.admin_key.as_str());
    let listed = wait_until("the approval listed", DEADLINE, || {
        let out = stdout(&ctl(&d, key, &["approvals", "list"]));
        out.contains(&id).then_some(out)
    });
    assert!(listed.starts_with("GATEWAY  ID"), "{listed}");
    assert!(
        listed.contains("exec") && listed.contains("pending"),
        "{listed}"
    );
    assert!(
        !listed.contains('\u{1b}'),
        "escaped for the terminal: {listed:?}"
    );
    let shown = stdout(&ctl(&d, key, &["approvals", "show", &gw.to_string(), &id]));
    assert!(shown.contains("status    pending"), "{shown}");
    let denied = stdout(&ctl(
        &d,
        key,
        &[
            "approvals",
            "deny",
            &gw.to_string(),
            &id,
            "--reason",
            "not today",
        ],
    ));
    assert!(
        denied.contains("status    denied") && denied.contains("by        operator"),
        "{denied}"
    );
    let again = failure(&ctl(&d, key, &["approvals", "allow", &gw.to_string(), &id]));
    assert!(again.contains("already denied"), "{again}");
    let json: Value = serde_json::from_str(&stdout(&ctl(
        &d,
        key,
        &["approvals", "list", "--status", "all", "--json"],
    )))
    .unwrap();
    assert_eq!(json["approvals"][0]["decision"], "deny", "{json:#}");
}

/// `ctl gateways -l`, `ctl config drift -l`, `ctl config profiles`: labels and drift from a
/// terminal.
#[test]
fn labels_and_drift_are_read_from_a_terminal() {
    let (fa, fb) = (fake(|_| {}), fake(|_| {}));
    let d = link_daemon(&[]);
    let a = add(&d, "alpha", &fa, Some("fake-token"));
    let b = add(&d, "beta", &fb, Some("fake-token"));
    for id in [a, b] {
        wait_gateway(&d, id, "online", online);
    }
    let label = d.call(
        "PATCH",
        &format!("/api/gateways/{a}/labels"),
        &d.admin_key,
        &serde_json::json!({"region": "eu"}),
    );
    assert_eq!(label.status, 200, "{}", label.text());
    let key = Some(d.admin_key.as_str());
    let out = stdout(&ctl(&d, key, &["gateways", "-l", "region=eu"]));
    assert!(out.contains("alpha") && out.contains("region=eu"), "{out}");
    assert!(!out.contains("beta"), "{out}");
    let put = d.call(
        "PUT",
        "/api/config/profiles/eu",
        &d.admin_key,
        &serde_json::json!({"selector": "region=eu", "patch": {"update": {"checkOnStart": true}}}),
    );
    assert_eq!(put.status, 201, "{}", put.text());
    let drift = wait_until("alpha judged drifted", DEADLINE, || {
        let out = stdout(&ctl(
            &d,
            key,
            &["config", "drift", "--selector", "region=eu"],
        ));
        // The summary line always names "drifted" ("0 drifted" while unread): wait for the count.
        out.contains(", 1 drifted").then_some(out)
    });
    assert!(drift.starts_with("ID  NAME"), "{drift}");
    assert!(
        drift.contains("update.checkOnStart") && !drift.contains("beta"),
        "{drift}"
    );
    assert!(drift.contains("0 in sync, 1 drifted"), "{drift}");
    let profiles = stdout(&ctl(&d, key, &["config", "profiles"]));
    assert!(
        profiles.contains("region=eu") && profiles.contains("\"checkOnStart\":true"),
        "{profiles}"
    );
    let bad = failure(&ctl(&d, key, &["config", "drift", "-l", "region in"]));
    assert!(bad.contains("expected `(`"), "{bad}");
}

/// `ctl config rollout` (a dry run, then followed with --wait) and `ctl config status`.
#[test]
fn a_rollout_is_planned_started_and_followed_from_a_terminal() {
    let (fa, fb) = (fake(|_| {}), fake(|_| {}));
    let d = link_daemon(&[]);
    let a = add(&d, "alpha", &fa, Some("fake-token"));
    let b = add(&d, "beta", &fb, Some("fake-token"));
    for id in [a, b] {
        wait_gateway(&d, id, "online", online);
    }
    let key = Some(d.admin_key.as_str());
    let patch = r#"{"gateway":{"http":{"endpoints":{"chatCompletions":{"enabled":true}}}}}"#;
    let plan = stdout(&ctl(
        &d,
        key,
        &["config", "rollout", "-l", "", "--patch", patch, "--dry-run"],
    ));
    assert!(plan.starts_with("ID  NAME"), "{plan}");
    assert!(
        plan.contains("gateway.http.endpoints.chatCompletions.enabled: unset → true"),
        "{plan}"
    );
    assert_eq!(fa.config_writes(), 0, "a dry run writes nothing");
    let done = stdout(&ctl(
        &d,
        key,
        &[
            "config",
            "rollout",
            "-l",
            "",
            "--patch",
            patch,
            "--min-healthy-time",
            "0s",
            "--healthy-deadline",
            "20s",
            "--wait",
            "40s",
        ],
    ));
    assert!(done.contains("succeeded"), "{done}");
    assert!(
        done.contains(&format!("waves: canary [{a}] → [{b}]")),
        "{done}"
    );
    assert_eq!(
        fb.config_value("gateway.http.endpoints.chatCompletions.enabled"),
        Some(serde_json::json!(true))
    );
    let listed = stdout(&ctl(&d, key, &["config", "status"]));
    assert!(
        listed.contains("succeeded") && listed.contains("2/2"),
        "{listed}"
    );
    let bad = failure(&ctl(&d, key, &["config", "rollout", "--profile", "nope"]));
    assert!(bad.contains("config_profile_not_found"), "{bad}");
}

#[test]
fn a_rollout_is_steered_from_a_terminal() {
    let d = link_daemon(&[]);
    let (fa, fb) = (fake(|_| {}), fake(|_| {}));
    for (name, f) in [("alpha", &fa), ("bravo", &fb)] {
        let id = add(&d, name, f, Some("fake-token"));
        wait_gateway(&d, id, "online", online);
    }
    let key = Some(d.admin_key.as_str());
    let start = |patch: &str| -> String {
        let started = stdout(&ctl(
            &d,
            key,
            &[
                "--json",
                "config",
                "rollout",
                "--patch",
                patch,
                "-l",
                "",
                "--canary",
                "1",
                "--manual-promote",
                "--min-healthy-time",
                "1s",
            ],
        ));
        let started: Value = serde_json::from_str(&started).unwrap();
        started["operation"]["id"].as_str().unwrap().to_owned()
    };
    // Waits until rollout `id` is in `state`.
    let reaches = |id: &str, state: &str| {
        wait_until(state, DEADLINE, || {
            let op = d
                .get(&format!("/api/config/rollouts/{id}"), &d.admin_key)
                .json();
            (op["operation"]["state"] == state).then_some(())
        })
    };
    let id =
        start(r#"{"gateway": {"http": {"endpoints": {"chatCompletions": {"enabled": true}}}}}"#);
    reaches(&id, "awaiting_promotion");
    let paused = stdout(&ctl(&d, key, &["config", "rollout", "pause", &id]));
    assert!(
        paused.starts_with(&format!("rollout {id}: paused\n")),
        "{paused}"
    );
    let resumed = stdout(&ctl(&d, key, &["config", "rollout", "resume", &id]));
    assert!(resumed.starts_with(&format!("rollout {id}: ")), "{resumed}");
    reaches(&id, "awaiting_promotion");
    let promoted = stdout(&ctl(&d, key, &["config", "rollout", "promote", &id]));
    assert!(
        promoted.starts_with(&format!("rollout {id}: ")),
        "{promoted}"
    );
    reaches(&id, "succeeded");
    for f in [&fa, &fb] {
        assert_eq!(
            f.config_value("gateway.http.endpoints.chatCompletions.enabled"),
            Some(serde_json::json!(true))
        );
    }
    // Over: a cancel is refused, saying why.
    let refused = failure(&ctl(&d, key, &["config", "rollout", "cancel", &id]));
    assert!(refused.contains("operation_over"), "{refused}");

    // Another, cancelled while it waits after its canary.
    let id = start(r#"{"agents": {"defaults": {"maxConcurrent": 3}}}"#);
    reaches(&id, "awaiting_promotion");
    let cancelled = stdout(&ctl(&d, key, &["config", "rollout", "cancel", &id]));
    assert!(
        cancelled.starts_with(&format!("rollout {id}: cancel")),
        "{cancelled}"
    );
    reaches(&id, "cancelled");
    let usage = failure(&ctl(&d, key, &["config", "rollout", "cancel"]));
    assert!(usage.contains("<ID>"), "{usage}");
}
