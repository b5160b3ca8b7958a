//! Config rollouts against real OpenClaw 2026.9.6 gateways: a profile turning on
//! `gateway.http.endpoints.chatCompletions.enabled` is drift, is rolled out canary first, and
//! `POST /v1/chat/completions` stops answering 404 on each; the same profile again is a noop;
//! a key that needs a restart (`gateway.controlUi.basePath`) goes through each gateway's
//! restart (a new bootId) before the next, and one that needs neither (`gateway.remote`) keeps
//! the process; a write that loses a race to another writer (the
//! test writes between the daemon's `config.get` and its `config.patch`, held back at a relay)
//! is read again and ends in sync; 31 changes in a minute are paced under the gateway's limit,
//! not refused; and a rollout whose canary goes down halts before the next wave and puts the
//! changed gateways back, read back with `config.get`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use serde_json::{Value, json};

use gs_test_support::daemon::{Daemon, online, wait_for};
use gs_test_support::operator::Operator;
use gs_test_support::real_gateway::RealGateway;
use gs_test_support::relay::{Direction, Relay, Tap};

use super::config::{chat_status, drift_of};
use super::{add, free_gateway_port, gateway, wait_gateway};

const TOKEN: &str = "rollout-token-1";
/// A rollout of a few real gateways (a hot write takes a second; a restart several).
const ROLLOUT: Duration = Duration::from_secs(180);

fn install() -> PathBuf {
    PathBuf::from(std::env::var("GS_OPENCLAW_DIR").expect("GS_OPENCLAW_DIR"))
}

pub(super) fn daemon() -> Daemon {
    Daemon::start_with(&[
        ("GATEWAY_SUPERVISOR__GATEWAYS__HEARTBEAT_INTERVAL", "1s"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__HEALTH_INTERVAL", "1h"),
        ("GATEWAY_SUPERVISOR__GATEWAYS__BACKOFF_MAX", "1s"),
        ("GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE", "0"),
    ])
}

pub(super) fn started(configs: &[Value]) -> Vec<RealGateway> {
    let mut gs: Vec<RealGateway> = configs
        .iter()
        .map(|c| {
            let mut g = RealGateway::new(&install(), free_gateway_port(), TOKEN, None);
            if !c.is_null() {
                g.with_config(c.clone());
            }
            g
        })
        .collect();
    for g in &mut gs {
        g.start();
    }
    for g in &mut gs {
        g.wait_ready();
    }
    gs
}

/// Starts a rollout; its id.
fn roll_out(d: &Daemon, body: &Value) -> String {
    let res = d.call("POST", "/api/config/rollouts", &d.admin_key, body);
    assert_eq!(res.status, 202, "{}", res.text());
    res.json()["operation"]["id"].as_str().unwrap().to_owned()
}

fn rollout(d: &Daemon, id: &str) -> Value {
    d.get(&format!("/api/config/rollouts/{id}"), &d.admin_key)
        .json()["operation"]
        .clone()
}

fn wait_rollout(d: &Daemon, id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    wait_for(what, ROLLOUT, || {
        let op = rollout(d, id);
        if pred(&op) {
            Ok(op)
        } else {
            Err(format!("{op:#}"))
        }
    })
}

fn over(op: &Value) -> bool {
    ["succeeded", "failed", "cancelled", "reverted"].contains(&op["state"].as_str().unwrap_or(""))
}

/// The gateway's config file as it reads it back.
fn file_of(g: &RealGateway) -> Value {
    g.call("config.get", json!({}))["parsed"].clone()
}

/// Its HTTP side answers 503 for a moment after `/readyz` (still starting).
fn settled_chat(port: u16) -> u16 {
    wait_for("the HTTP side settled", ROLLOUT, || {
        match chat_status(port) {
            503 => Err("503".to_owned()),
            s => Ok(s),
        }
    })
}

#[test]
fn a_profile_rolls_out_canary_first_then_a_restart_key_goes_through_each_gateway_s_restart() {
    let gs = started(&[
        Value::Null,
        json!({"agents": {"defaults": {"maxConcurrent": 3}}}),
    ]);
    for g in &gs {
        assert_eq!(settled_chat(g.port), 404, "off by default");
    }
    let d = daemon();
    let ids: Vec<i64> = gs
        .iter()
        .enumerate()
        .map(|(i, g)| add(&d, &format!("gw{i}"), "127.0.0.1", g.port, TOKEN))
        .collect();
    for id in &ids {
        wait_gateway(&d, *id, "online", online);
        let res = d.call(
            "PATCH",
            &format!("/api/gateways/{id}/labels"),
            &d.admin_key,
            &json!({"region": "eu"}),
        );
        assert_eq!(res.status, 200, "{}", res.text());
    }
    let profile = json!({"selector": "region=eu", "patch": {"gateway": {"http": {"endpoints": {"chatCompletions": {"enabled": true}}}}}});
    let res = d.call(
        "PUT",
        "/api/config/profiles/eu-chat",
        &d.admin_key,
        &profile,
    );
    assert_eq!(res.status, 201, "{}", res.text());
    drift_of(&d, ids[1], "drift seen", |g| g["state"] == "drifted");

    let id = roll_out(
        &d,
        &json!({"profile": "eu-chat", "canary": 1, "min_healthy_time": "2s", "healthy_deadline": "60s"}),
    );
    let op = wait_rollout(&d, &id, "the rollout over", over);
    assert_eq!(op["state"], "succeeded", "{op:#}");
    let g = op["gateways"].as_array().unwrap();
    assert!(g[0]["canary"].as_bool().unwrap());
    assert!(
        g[1]["started_at"].as_i64() >= g[0]["finished_at"].as_i64(),
        "the canary first: {op:#}"
    );
    for g in &gs {
        assert_eq!(chat_status(g.port), 401, "on, behind the gateway's auth");
    }
    for id in &ids {
        drift_of(&d, *id, "in sync", |g| g["state"] == "in_sync");
    }
    // The same profile again: each gateway answers noop.
    let again = roll_out(
        &d,
        &json!({"profile": "eu-chat", "canary": 0, "max_parallel": 2, "min_healthy_time": 0, "healthy_deadline": "60s"}),
    );
    let op = wait_rollout(&d, &again, "the identical rollout over", over);
    assert_eq!(op["state"], "succeeded", "{op:#}");
    for g in op["gateways"].as_array().unwrap() {
        assert!(g["detail"].as_str().unwrap().contains("noop"), "{op:#}");
    }

    // A key that needs a restart: each gateway restarts as a new process, then the next.
    let before: Vec<String> = ids
        .iter()
        .map(|id| {
            gateway(&d, *id)["connection"]["boot_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let id = roll_out(
        &d,
        &json!({"selector": "region=eu", "patch": {"gateway": {"controlUi": {"basePath": "/ui"}}},
                "canary": 1, "min_healthy_time": "2s", "healthy_deadline": "120s"}),
    );
    let op = wait_rollout(&d, &id, "the restarting rollout over", over);
    assert_eq!(op["state"], "succeeded", "{op:#}");
    let g = op["gateways"].as_array().unwrap();
    for (i, p) in g.iter().enumerate() {
        assert_eq!(p["boot_id_before"], before[i].as_str(), "{op:#}");
        assert_ne!(
            p["boot_id_after"],
            before[i].as_str(),
            "a new process: {op:#}"
        );
        assert_eq!(p["changed_paths"], json!(["gateway.controlUi.basePath"]));
    }
    assert!(g[1]["started_at"].as_i64() >= g[0]["finished_at"].as_i64());
    for g in &gs {
        assert_eq!(file_of(g)["gateway"]["controlUi"]["basePath"], "/ui");
    }

    // A key 2026.9.6 neither applies nor restarts for (`gateway.remote`, read when the CLI
    // uses it; the fake's reload_plan.rs follows this): written, and the same process goes on.
    let restarted: Vec<String> = g
        .iter()
        .map(|p| p["boot_id_after"].as_str().unwrap().to_owned())
        .collect();
    let id = roll_out(
        &d,
        &json!({"selector": "region=eu", "patch": {"gateway": {"remote": {"url": "ws://10.0.0.1:18789"}}},
                "canary": 0, "max_parallel": 2, "min_healthy_time": 0, "healthy_deadline": "60s"}),
    );
    let op = wait_rollout(&d, &id, "the no-restart rollout over", over);
    assert_eq!(op["state"], "succeeded", "{op:#}");
    for (i, p) in op["gateways"].as_array().unwrap().iter().enumerate() {
        assert_eq!(p["boot_id_before"], restarted[i].as_str(), "{op:#}");
        assert!(p["boot_id_after"].is_null(), "no restart seen: {op:#}");
        assert_eq!(
            gateway(&d, ids[i])["connection"]["boot_id"],
            restarted[i].as_str(),
            "the same process"
        );
    }
    for g in &gs {
        assert_eq!(
            file_of(g)["gateway"]["remote"]["url"],
            "ws://10.0.0.1:18789"
        );
    }
}

/// The payloads of the complete text frames at the start of `pending` (unmasked), drained.
fn text_frames(pending: &mut Vec<u8>) -> Vec<String> {
    let mut out = Vec::new();
    while let Some((opcode, len)) = super::frame_counts::frame(pending) {
        let frame: Vec<u8> = pending.drain(..len).collect();
        if opcode != 0x1 {
            continue;
        }
        let (b1, mut at) = (frame[1], 2usize);
        at += match b1 & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask: Option<[u8; 4]> = (b1 & 0x80 != 0).then(|| {
            let m = [frame[at], frame[at + 1], frame[at + 2], frame[at + 3]];
            at += 4;
            m
        });
        let payload: Vec<u8> = frame[at..]
            .iter()
            .enumerate()
            .map(|(i, b)| mask.map_or(*b, |m| b ^ m[i % 4]))
            .collect();
        out.push(String::from_utf8_lossy(&payload).into_owned());
    }
    out
}

#[test]
fn a_write_that_loses_a_race_is_read_again_and_thirty_one_changes_in_a_minute_are_paced() {
    let gs = started(&[Value::Null]);
    let g = &gs[0];
    // A relay in front of the gateway: it counts the daemon's `config.patch` requests and the
    // gateway's rate-limit refusals, and while armed holds the next patch back until the test
    // has written.
    let armed = Arc::new(AtomicBool::new(true));
    let patches = Arc::new(AtomicUsize::new(0));
    let limited = Arc::new(AtomicUsize::new(0));
    let (seen_tx, seen_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = Arc::new(std::sync::Mutex::new(go_rx));
    let (a, p, l) = (armed.clone(), patches.clone(), limited.clone());
    let relay = Relay::tapped(([127, 0, 0, 1], g.port).into(), move |direction| {
        let (a, p, l, seen, go) = (
            a.clone(),
            p.clone(),
            l.clone(),
            seen_tx.clone(),
            go_rx.clone(),
        );
        let mut head_done = false;
        let mut pending = Vec::new();
        let tap: Tap = Box::new(move |bytes: &[u8]| {
            pending.extend_from_slice(bytes);
            if !head_done {
                let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                    return;
                };
                pending.drain(..end + 4);
                head_done = true;
            }
            for text in text_frames(&mut pending) {
                match direction {
                    Direction::ToServer if text.contains("\"config.patch\"") => {
                        p.fetch_add(1, Ordering::SeqCst);
                        if a.swap(false, Ordering::SeqCst) {
                            let _ = seen.send(());
                            let _ = go.lock().unwrap().recv_timeout(Duration::from_secs(60));
                        }
                    }
                    Direction::ToClient if text.contains("rate limit exceeded") => {
                        l.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {}
                }
            }
        });
        tap
    });
    let d = daemon();
    let id = add(&d, "raced", "127.0.0.1", relay.port(), TOKEN);
    wait_gateway(&d, id, "online", online);

    let raced = roll_out(
        &d,
        &json!({"selector": "", "patch": {"agents": {"defaults": {"maxConcurrent": 5}}}, "min_healthy_time": 0, "healthy_deadline": "60s"}),
    );
    seen_rx
        .recv_timeout(ROLLOUT)
        .expect("the daemon's config.patch at the relay");
    // Another writer, between the daemon's read and its write.
    let mut other = Operator::connect(g.port, TOKEN, &[], Duration::from_secs(30));
    let hash = other
        .call("config.get", json!({}), Duration::from_secs(30))
        .expect("config.get")["hash"]
        .clone();
    other
        .call(
            "config.patch",
            json!({"raw": json!({"agents": {"defaults": {"subagents": {"maxConcurrent": 4}}}}).to_string(), "baseHash": hash}),
            Duration::from_secs(30),
        )
        .expect("the other writer's patch");
    go_tx.send(()).unwrap();
    let op = wait_rollout(&d, &raced, "the raced rollout over", over);
    assert_eq!(op["state"], "succeeded", "{op:#}");
    assert_eq!(
        patches.load(Ordering::SeqCst),
        2,
        "refused as stale once, then written"
    );
    let file = file_of(g);
    assert_eq!(file["agents"]["defaults"]["maxConcurrent"], 5, "{file:#}");
    assert_eq!(
        file["agents"]["defaults"]["subagents"]["maxConcurrent"], 4,
        "the other writer's change stands: {file:#}"
    );

    // 31 more changes: the daemon holds the writes past the 30th in the minute back, so the
    // gateway refuses none and every rollout succeeds.
    for i in 0..31 {
        let id = roll_out(
            &d,
            &json!({"selector": "", "patch": {"agents": {"defaults": {"maxConcurrent": 10 + i}}}, "min_healthy_time": 0, "healthy_deadline": "120s"}),
        );
        let op = wait_rollout(&d, &id, "a paced rollout over", over);
        assert_eq!(op["state"], "succeeded", "change {i}: {op:#}");
    }
    assert_eq!(file_of(g)["agents"]["defaults"]["maxConcurrent"], 40);
    // The gateway counts writes per client address: the test's own write above shares the
    // daemon's minute, so the gateway may refuse one (the daemon waits as it says); unpaced,
    // every daemon write past the 30th in the minute would have been refused.
    assert!(
        limited.load(Ordering::SeqCst) <= 1,
        "the gateway refused {} writes for its limit",
        limited.load(Ordering::SeqCst)
    );
    assert_eq!(
        patches.load(Ordering::SeqCst),
        33 + limited.load(Ordering::SeqCst),
        "one write per change, and one again for each refusal"
    );
}

/// `n` real gateways started with `agents.defaults.maxConcurrent: 4`, added to a daemon as
/// `gw0`, `gw1`, … and online: the gateways, the daemon, their ids.
fn at_four(n: usize) -> (Vec<RealGateway>, Daemon, Vec<i64>) {
    let before = json!({"agents": {"defaults": {"maxConcurrent": 4}}});
    let gs = started(&vec![before; n]);
    let d = daemon();
    let ids: Vec<i64> = gs
        .iter()
        .enumerate()
        .map(|(i, g)| add(&d, &format!("gw{i}"), "127.0.0.1", g.port, TOKEN))
        .collect();
    for id in &ids {
        wait_gateway(&d, *id, "online", online);
    }
    (gs, d, ids)
}

/// Two canaries and a third gateway: one canary stopped while it is to stay healthy halts
/// the rollout before the third is touched, and both canaries are put back — the one still up
/// at once, the stopped one once it is back — each read back with `config.get`.
#[test]
fn a_rollout_whose_canary_goes_down_halts_and_puts_the_changed_gateways_back() {
    let (mut gs, d, ids) = at_four(3);
    let id = roll_out(
        &d,
        // 120 s: the stopped canary's real process is started again only once the other is put
        // back; under the suite's load its start and relink took over 30 s in CI, and over 60 s
        // on a machine also building. Only a failing run waits that long.
        &json!({"selector": "", "canary": 2, "max_parallel": 2, "min_healthy_time": "20s", "healthy_deadline": "120s",
                "patch": {"agents": {"defaults": {"maxConcurrent": 2}}, "gateway": {"http": {"endpoints": {"chatCompletions": {"enabled": true}}}}}}),
    );
    wait_rollout(&d, &id, "both canaries written", |op| {
        op["gateways"][0]["step"] == "settling" && op["gateways"][1]["step"] == "settling"
    });
    assert_eq!(file_of(&gs[1])["agents"]["defaults"]["maxConcurrent"], 2);
    gs[1].stop();
    let op = wait_rollout(&d, &id, "the canary still up put back", |op| {
        op["gateways"][0]["step"] == "reverted"
    });
    assert_eq!(op["state"], "reverting", "{op:#}");
    let why = op["detail"].as_str().unwrap();
    assert!(
        why.starts_with(&format!("gateway {} failed", ids[1])),
        "{why}"
    );
    assert_eq!(
        op["gateways"][2]["step"], "skipped",
        "the third is left untouched: {op:#}"
    );
    for g in [&gs[0], &gs[2]] {
        let file = file_of(g);
        assert_eq!(file["agents"]["defaults"]["maxConcurrent"], 4, "{file:#}");
        assert!(file["gateway"].get("http").is_none(), "{file:#}");
        assert_eq!(chat_status(g.port), 404, "off");
    }

    // The stopped canary, back, is put back too.
    gs[1].start();
    gs[1].wait_ready();
    let op = wait_rollout(&d, &id, "the rollout over", over);
    assert_eq!(op["state"], "reverted", "{op:#}");
    let file = file_of(&gs[1]);
    assert_eq!(file["agents"]["defaults"]["maxConcurrent"], 4, "{file:#}");
    assert!(file["gateway"].get("http").is_none(), "{file:#}");
}

/// A changed gateway that is gone for good does not hold a rollout for ever: the revert waits
/// for it `healthy_deadline` and no longer, names it as not put back, and the rollout ends
/// `failed` — while the other changed gateway, back within that time, is put back. On main
/// before, the revert waited at least 5 minutes, and for ever where every call failed.
#[test]
fn a_rollout_whose_changed_gateway_is_gone_for_good_ends_by_its_deadline() {
    let (mut gs, d, ids) = at_four(2);
    let id = roll_out(
        &d,
        &json!({"selector": "", "canary": 1, "max_parallel": 1, "min_healthy_time": "3s", "healthy_deadline": "30s",
                "patch": {"agents": {"defaults": {"maxConcurrent": 2}}}}),
    );
    wait_rollout(&d, &id, "the canary done, the second settling", |op| {
        op["gateways"][0]["step"] == "done" && op["gateways"][1]["step"] == "settling"
    });
    // Both go down: the second for good, the canary back in a moment.
    gs[1].stop();
    gs[0].stop();
    gs[0].start();
    gs[0].wait_ready();
    let op = wait_rollout(&d, &id, "the rollout over", over);
    assert_eq!(op["state"], "failed", "{op:#}");
    let why = op["detail"].as_str().unwrap();
    assert_eq!(
        why,
        format!("the revert did not put back gateway(s) {}", ids[1]),
        "{op:#}"
    );
    assert_eq!(op["gateways"][0]["step"], "reverted", "{op:#}");
    assert!(
        op["gateways"][1]["detail"]
            .as_str()
            .unwrap()
            .starts_with("could not be put back within 30s of the revert: not connected"),
        "{op:#}"
    );
    assert_eq!(file_of(&gs[0])["agents"]["defaults"]["maxConcurrent"], 4);
}

/// The shell block after `marker` in the runbook (docs/operations.md).
pub(super) fn runbook_block(marker: &str) -> String {
    doc_block("docs/operations.md", marker)
}

/// The shell block after `marker` in `file` (from the repository's root).
pub(super) fn doc_block(file: &str, marker: &str) -> String {
    let runbook =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
            .unwrap();
    let from = runbook
        .find(marker)
        .unwrap_or_else(|| panic!("the recipe in {file}"));
    let block = &runbook[from..];
    let start = block.find("```sh\n").unwrap() + "```sh\n".len();
    block[start..start + block[start..].find("```").unwrap()].to_owned()
}

/// Runs `script` with `bash -o pipefail` against daemon `d` (its address put in for
/// `localhost:3000`, its admin key as `$ADMIN`, its state and database for the command line,
/// as on the daemon's host): stdout, or a panic with both outputs.
pub(super) fn run_recipe(d: &Daemon, script: &str) -> String {
    let script = script.replace("localhost:3000", &d.addr.to_string());
    let daemon_dir = gs_test_support::daemon::binary()
        .parent()
        .unwrap()
        .to_owned();
    let out = std::process::Command::new("bash")
        .args(["-e", "-o", "pipefail", "-c", &script])
        .env("PATH", format!("{}:/usr/bin:/bin", daemon_dir.display()))
        .env("ADMIN", &d.admin_key)
        .env("GATEWAY_SUPERVISOR_API_KEY", &d.admin_key)
        .env("GATEWAY_SUPERVISOR_URL", format!("http://{}", d.addr))
        .env("GATEWAY_SUPERVISOR__STATE__DIR", d.state_dir())
        .env("GATEWAY_SUPERVISOR__DATABASE__URL", d.database_url())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    stdout
}

/// Registers `gs` as `eu-0`, `eu-1`, … labelled `region=eu`, and waits for each online: their ids.
pub(super) fn eu_gateways(d: &Daemon, gs: &[RealGateway]) -> Vec<i64> {
    labelled_gateways(d, gs, TOKEN, "eu", &json!({"region": "eu"}))
}

/// Registers `gs` (each answering `token`) as `<prefix>-0`, `<prefix>-1`, … with `labels`,
/// and waits for each online: their ids.
pub(super) fn labelled_gateways(
    d: &Daemon,
    gs: &[RealGateway],
    token: &str,
    prefix: &str,
    labels: &Value,
) -> Vec<i64> {
    gs.iter()
        .enumerate()
        .map(|(i, g)| {
            let res = d.call(
                "POST",
                "/api/gateways",
                &d.admin_key,
                &json!({"name": format!("{prefix}-{i}"), "host": "127.0.0.1", "port": g.port,
                        "token": token, "labels": labels}),
            );
            assert_eq!(res.status, 201, "{}", res.text());
            let id = res.json()["gateway"]["id"].as_i64().unwrap();
            wait_gateway(d, id, "online", online);
            id
        })
        .collect()
}

/// The runbook's rollout and budget recipes (docs/operations.md, *Configuration across the fleet*) run as written
/// against two real 2026.9.6 gateways labelled `region=eu`.
#[test]
fn the_readme_rollout_and_budget_recipes_run_as_written() {
    let gs = started(&[Value::Null, Value::Null]);
    let d = daemon();
    eu_gateways(&d, &gs);
    let out = run_recipe(
        &d,
        &runbook_block("Against real gateways registered with the label `region=eu`"),
    );
    assert!(
        out.contains(r#"{"name":"eu-0","canary":true,"changes":["gateway.http.endpoints.chatCompletions.enabled"]}"#),
        "{out}"
    );
    assert!(out.contains("succeeded"), "{out}");
    assert!(out.contains("2 in sync, 0 drifted"), "{out}");
    for g in &gs {
        assert_eq!(chat_status(g.port), 401, "on at each gateway");
    }
    // Steering, as written: the same profile again, held after its canary, then stopped.
    let out = run_recipe(&d, &runbook_block("Steering a rollout that is going"));
    let id = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("rollout ")
                .and_then(|r| r.split([':', ' ']).next())
        })
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    for said in ["paused", "cancelling"] {
        assert!(out.contains(&format!("rollout {id}: {said}")), "{out}");
    }
    let op = wait_rollout(&d, &id, "the steered rollout over", over);
    assert_eq!(op["state"], "cancelled", "{op:#}");
    let out = run_recipe(&d, &runbook_block("**Disruption budgets**"));
    assert!(
        out.contains(
            r#"{"name":"eu-one-at-a-time","covered":2,"available":2,"disruptions_allowed":1}"#
        ),
        "{out}"
    );
}

/// The runbook's token rotation recipe (docs/operations.md, *Configuration across the fleet*, **Rotating gateway
/// tokens**) run as written against two real 2026.9.6 gateways labelled `region=eu`: each
/// gets a new token, the old one is refused, and the daemon's links are back on the new ones.
#[test]
fn the_readme_token_rotation_recipe_runs_as_written() {
    let gs = started(&[Value::Null, Value::Null]);
    let d = daemon();
    let ids = eu_gateways(&d, &gs);
    let out = run_recipe(&d, &runbook_block("`region=eu`, one at a time:"));
    for id in &ids {
        assert!(
            out.contains(&format!(r#"{{"gateway_id":{id},"rotated":true}}"#)),
            "{out}"
        );
    }
    assert_eq!(
        out.matches(r#""status":"online""#).count(),
        2,
        "both back on their new tokens: {out}"
    );
    for g in &gs {
        let old = gs_test_support::operator::Operator::try_connect(
            g.port,
            TOKEN,
            &[],
            Duration::from_secs(10),
        );
        assert!(old.is_err(), "the old token is refused");
        // The gateway's own CLI reads the token the gateway wrote to its config file.
        assert!(g.try_call("health", json!({})).is_ok());
    }
    let text = String::from_utf8_lossy(&d.logs()).into_owned()
        + &d.get("/api/audit?limit=100", &d.admin_key).text();
    assert!(text.contains("gateway.rotate_token"), "audited");
}
