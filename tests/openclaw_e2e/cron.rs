//! Cron on a real 2026.9.6 gateway, as the fleet's cron view is to rely on it (the first step of
//! cron across the fleet): what a fresh gateway carries, what makes `cron.list`'s
//! `snapshotRevision` move, `cron.add {declarationKey}` converging on one job, `cron.update`'s
//! compare-and-set, `cron.run`'s process fence, and a forced run's entry in `cron.runs` (tokens
//! and model, no cost). Every answer is written to `target/captures/cron-2026.9.6.json`;
//! `testdata/openclaw-captures/2026.9.6/cron_rpc.json` is one such run, for the fake gateway to
//! answer as the real one does.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use gs_test_support::daemon::{Daemon, online, wait_until};
use gs_test_support::fake_model::FakeModel;
use gs_test_support::operator::Operator;
use gs_test_support::real_gateway::RealGateway;

use super::rollout::{doc_block, labelled_gateways, run_recipe};
use super::{add, free_gateway_port, wait_gateway};

/// The answers, in the order asked, as `{method, params, answer | error}`.
#[derive(Default)]
struct Capture(Vec<Value>);

impl Capture {
    fn call(&mut self, g: &RealGateway, method: &str, params: Value) -> Result<Value, Value> {
        let answer = g.try_call(method, params.clone());
        let entry = match &answer {
            Ok(v) => json!({"method": method, "params": params, "answer": v}),
            Err(e) => json!({"method": method, "params": params, "error": refusal(e)}),
        };
        self.0.push(entry);
        answer.map_err(|e| refusal(&e))
    }

    fn ok(&mut self, g: &RealGateway, method: &str, params: Value) -> Value {
        self.call(g, method, params.clone())
            .unwrap_or_else(|e| panic!("{method} {params}: {e}"))
    }
}

/// The gateway's refusal as `openclaw gateway call --json` prints it (its `error` object).
fn refusal(printed: &str) -> Value {
    let start = printed.find('{').unwrap_or(0);
    serde_json::from_str::<Value>(&printed[start..])
        .map(|v| v["error"].clone())
        .unwrap_or_else(|_| json!(printed))
}

/// A job the fleet would declare: every minute, its own session, no delivery (a gateway with
/// no channel fails a run whose delivery is the default `announce`).
fn declared(expr: &str) -> Value {
    json!({
        "name": "gs-probe", "declarationKey": "gs:probe",
        "schedule": {"kind": "cron", "expr": expr, "tz": "UTC"},
        "sessionTarget": "isolated", "wakeMode": "now",
        "payload": {"kind": "agentTurn", "message": "say pong"},
        "delivery": {"mode": "none"},
    })
}

/// A page of one job, read between two reads of the whole list that carry the same revision:
/// it carries that revision too. The revision covers the jobs' run state as well (a job that
/// comes due and runs moves it), so a list that moved between the two reads is read again
/// (CI, 2026-12-01: the `*/5` job's slot passed between the list and the page, on a loaded
/// machine). Returns the page.
fn page_of_one_between_lists(c: &mut Capture, g: &RealGateway) -> Value {
    let whole = json!({"limit": 200, "includeDisabled": true});
    let mut seen = Vec::new();
    for _ in 0..5 {
        let before = c.ok(g, "cron.list", whole.clone())["snapshotRevision"].clone();
        let one = c.ok(g, "cron.list", json!({"limit": 1, "includeDisabled": true}));
        let after = c.ok(g, "cron.list", whole.clone())["snapshotRevision"].clone();
        if before == after {
            assert_eq!(one["snapshotRevision"], before, "the page of one");
            return one;
        }
        seen.push((before, after));
    }
    panic!("the whole list moved between every two reads: {seen:?}");
}

#[test]
fn a_real_gateway_s_cron_as_the_fleet_view_relies_on_it() {
    let model = FakeModel::start();
    let install = PathBuf::from(std::env::var("GS_OPENCLAW_DIR").expect("GS_OPENCLAW_DIR"));
    let mut g = RealGateway::new(&install, free_gateway_port(), "cron-token-1", None);
    g.use_model(&model.base_url());
    g.start();
    g.wait_ready();
    let mut c = Capture::default();
    // An admin connection beside the CLI's calls, hearing the `cron` events they cause.
    let mut watcher = Operator::connect(g.port, "cron-token-1", &[], Duration::from_secs(30));

    // A fresh gateway carries its own jobs: three, each with a declaration key of its own
    // subsystem's, the heartbeat's disabled.
    c.ok(&g, "cron.status", json!({}));
    let fresh = c.ok(
        &g,
        "cron.list",
        json!({"limit": 200, "includeDisabled": true}),
    );
    let keys: Vec<(&str, bool)> = fresh["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["declarationKey"].as_str().unwrap(), j["enabled"] == true))
        .collect();
    assert_eq!(fresh["total"], 3, "{keys:?}");
    for (key, enabled) in [
        ("heartbeat:main", false),
        ("memory-core:memory-dreaming-promotion", true),
        ("skill-collection-review:main", true),
    ] {
        assert!(keys.contains(&(key, enabled)), "{key}: {keys:?}");
    }
    let revision = fresh["snapshotRevision"].as_str().unwrap().to_owned();
    assert!(revision.starts_with("sha256:"), "{revision}");
    // Read again, nothing changed: the same revision (a re-read can be skipped).
    let again = c.ok(
        &g,
        "cron.list",
        json!({"limit": 200, "includeDisabled": true}),
    );
    assert_eq!(again["snapshotRevision"], revision.as_str());
    // Paged: `limit` caps the page, `hasMore` and `nextOffset` say what follows.
    let page = c.ok(
        &g,
        "cron.list",
        json!({"limit": 1, "includeDisabled": true, "compact": true}),
    );
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(page["hasMore"], true);
    assert_eq!(page["nextOffset"], 1);
    // A page of one job carries the whole list's revision (the inventory's sweep asks for
    // that page alone and reads the list only when the revision moved).
    let one = page_of_one_between_lists(&mut c, &g);
    assert_eq!(one["jobs"].as_array().unwrap().len(), 1);

    // Declared once: created. The same declaration again converges on the same job — reported
    // as `updated` though nothing changed (its revision did not move). A changed schedule is
    // the same job, a new revision.
    let first = c.ok(&g, "cron.add", declared("* * * * *"));
    assert_eq!(first["created"], true);
    let id = first["job"]["id"].as_str().unwrap().to_owned();
    let rev1 = first["job"]["configRevision"].as_str().unwrap().to_owned();
    let same = c.ok(&g, "cron.add", declared("* * * * *"));
    assert_eq!(
        (&same["created"], &same["updated"]),
        (&json!(false), &json!(true))
    );
    assert_eq!(same["job"]["id"], id.as_str());
    assert_eq!(same["job"]["configRevision"], rev1.as_str());
    let changed = c.ok(&g, "cron.add", declared("*/5 * * * *"));
    assert_eq!(changed["job"]["id"], id.as_str());
    assert_ne!(changed["job"]["configRevision"], rev1.as_str());
    let rev2 = changed["job"]["configRevision"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = c.ok(
        &g,
        "cron.list",
        json!({"limit": 200, "includeDisabled": true}),
    );
    assert_ne!(listed["snapshotRevision"], revision.as_str());
    assert_eq!(listed["total"], 4);
    // ... and so does a page of one, whichever job it shows.
    page_of_one_between_lists(&mut c, &g);

    // An expression the gateway cannot read: refused INVALID_REQUEST. Its message named the
    // field here ("CronPattern: Invalid value for minute: 61"); in an exploratory call without
    // `tz` and `delivery` the refusal came with no message at all — so the daemon checks
    // expressions itself, to name the problem every time.
    let bad = c
        .call(&g, "cron.add", {
            let mut j = declared("61 * * * *");
            j["declarationKey"] = json!("gs:bad");
            j
        })
        .expect_err("a minute of 61 is refused");
    assert_eq!(bad["code"], "INVALID_REQUEST", "{bad}");
    // A field no schedule check catches, refused by the gateway alone (a declaration's rollout
    // then fails with these words): a blank delivery channel.
    let blank = c
        .call(&g, "cron.add", {
            let mut j = declared("0 3 * * *");
            j["declarationKey"] = json!("gs:blank");
            j["delivery"] = json!({"mode": "announce", "channel": " "});
            j
        })
        .expect_err("a blank channel is refused");
    assert_eq!(
        blank["message"], "invalid cron.add params: delivery.channel must be a non-empty string",
        "{blank}"
    );

    // Compare-and-set: a stale revision is refused, naming the current one.
    let stale = c
        .call(
            &g,
            "cron.update",
            json!({"id": id, "patch": {"enabled": false}, "expectedConfigRevision": rev1}),
        )
        .expect_err("a stale revision is refused");
    assert_eq!(stale["details"]["code"], "CRON_JOB_CHANGED", "{stale}");
    assert_eq!(stale["details"]["actualConfigRevision"], rev2.as_str());

    // The process fence: `due` says not-due (and which process answered); `force` fenced to
    // another process is refused; fenced to this one, it runs.
    let due = c.ok(&g, "cron.run", json!({"id": id, "mode": "due"}));
    assert_eq!(
        (&due["ran"], &due["reason"]),
        (&json!(false), &json!("not-due"))
    );
    let process = due["processInstanceId"].as_str().unwrap().to_owned();
    let fenced = c
        .call(
            &g,
            "cron.run",
            json!({"id": id, "mode": "force", "expectedProcessInstanceId": "another-process"}),
        )
        .expect_err("another process's fence is refused");
    assert!(
        fenced["message"]
            .as_str()
            .is_some_and(|m| m.contains("Gateway process changed after preflight")),
        "{fenced}"
    );
    let ran = c.ok(
        &g,
        "cron.run",
        json!({"id": id, "mode": "force", "expectedProcessInstanceId": process}),
    );
    assert_eq!(ran["enqueued"], true, "{ran}");
    let run_id = ran["runId"].as_str().unwrap().to_owned();
    assert!(run_id.starts_with(&format!("manual:{id}:")), "{run_id}");

    // Its entry: the run's model, provider and tokens, its start, no cost.
    let entry = wait_until("the forced run's entry", Duration::from_secs(60), || {
        let runs = g
            .try_call("cron.runs", json!({"scope": "job", "id": id, "limit": 10}))
            .ok()?;
        runs["entries"]
            .as_array()?
            .iter()
            .find(|e| e["runId"] == run_id.as_str())
            .cloned()
    });
    c.0.push(
        json!({"method": "cron.runs", "params": {"scope": "job", "id": id, "limit": 10},
        "answer": {"entries": [entry.clone()]}}),
    );
    assert_eq!(entry["status"], "ok", "{entry}");
    assert_eq!(entry["model"], "slow-model");
    assert_eq!(entry["provider"], "fake");
    assert_eq!(entry["usage"]["input_tokens"], 10);
    assert!(entry["runAtMs"].is_i64() && entry["durationMs"].is_i64());
    assert!(entry.get("cost").is_none() && entry["usage"].get("cost").is_none());
    let job = c.ok(&g, "cron.get", json!({"id": id}));
    assert_eq!(job["state"]["lastRunAtMs"], entry["runAtMs"]);
    assert_eq!(job["state"]["lastRunStatus"], "ok");

    let removed = c.ok(&g, "cron.remove", json!({"id": id}));
    assert_eq!(removed["removed"], true);
    let after = c.ok(
        &g,
        "cron.list",
        json!({"limit": 200, "includeDisabled": true}),
    );
    assert_eq!(after["total"], 3);

    // Each change and run was announced: added, updated, started, finished, removed.
    let events = watcher.events("cron", Duration::from_secs(2), Duration::from_secs(30));
    let actions: Vec<&str> = events
        .iter()
        .filter(|e| e["payload"]["jobId"] == id.as_str())
        .filter_map(|e| e["payload"]["action"].as_str())
        .collect();
    for action in ["added", "updated", "started", "finished", "removed"] {
        assert!(actions.contains(&action), "{action}: {events:#?}");
    }

    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/captures");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("cron-events-2026.9.6.json"),
        serde_json::to_string_pretty(&json!({"release": "2026.9.6", "events": events})).unwrap(),
    )
    .unwrap();
    std::fs::write(
        out.join("cron-2026.9.6.json"),
        serde_json::to_string_pretty(&json!({"release": "2026.9.6", "calls": c.0})).unwrap(),
    )
    .unwrap();
}

/// The daemon's cron view of a real 2026.9.6 gateway: a job made by hand shows without waiting
/// for a sweep (the gateway's `cron` event reaches the link), its runs fire every minute on the
/// fake model and show with model and tokens; then one slot is swallowed as openclaw#139215
/// swallows them — the job's `nextRunAtMs` moved past it through the gateway's own
/// `cron.update`, the job enabled and `lastRunAtMs` unmoved — and the daemon flags it within
/// the grace and a few seconds of the slot, and with `recover = "force"` runs it exactly once.
#[test]
fn the_fleet_view_shows_a_real_gateway_s_jobs_runs_and_a_swallowed_fire_run_once() {
    let model = FakeModel::start();
    let install = PathBuf::from(std::env::var("GS_OPENCLAW_DIR").expect("GS_OPENCLAW_DIR"));
    let mut g = RealGateway::new(&install, free_gateway_port(), "cron-token-2", None);
    g.use_model(&model.base_url());
    g.start();
    g.wait_ready();
    let d = Daemon::start_with(&[
        ("GATEWAY_SUPERVISOR__GATEWAYS__HEALTH_INTERVAL", "1h"),
        // No sweep within the test: what shows came at link or by the `cron` event.
        ("GATEWAY_SUPERVISOR__CRON__SWEEP_INTERVAL", "24h"),
        ("GATEWAY_SUPERVISOR__CRON__WATCH_INTERVAL", "1s"),
        ("GATEWAY_SUPERVISOR__CRON__GRACE", "15s"),
        ("GATEWAY_SUPERVISOR__CRON__RECOVER", "force"),
    ]);
    let gw = add(&d, "cron-real", "127.0.0.1", g.port, "cron-token-2");
    wait_gateway(&d, gw, "online", online);
    let jobs = |query: &str| {
        let res = d.get(&format!("/api/cron/jobs{query}"), &d.admin_key);
        assert_eq!(res.status, 200, "{}", res.text());
        res.json()["jobs"].as_array().unwrap().clone()
    };
    wait_until("the gateway's own jobs", Duration::from_secs(30), || {
        (jobs("?system=true").len() == 3).then_some(())
    });
    assert!(jobs("").is_empty());

    // Made by hand, as `openclaw cron add` makes one: shown without a sweep.
    let made = g.call(
        "cron.add",
        json!({"name": "minutely-report", "schedule": {"kind": "cron", "expr": "* * * * *", "tz": "UTC"},
               "sessionTarget": "isolated", "wakeMode": "now",
               "payload": {"kind": "agentTurn", "message": "say pong"}, "delivery": {"mode": "none"}}),
    );
    let id = made["id"].as_str().unwrap().to_owned();
    let listed = wait_until(
        "the job, by the gateway's cron event",
        Duration::from_secs(30),
        || jobs("").into_iter().find(|j| j["job_id"] == id.as_str()),
    );
    assert_eq!(listed["name"], "minutely-report");
    assert_eq!(listed["schedule"]["expr"], "* * * * *");
    assert_eq!(listed["system"], false);

    // Its runs, fired by the gateway every minute, read with model and tokens.
    let path = format!("/api/cron/jobs/{gw}/{id}");
    let detail = || {
        let res = d.get(&path, &d.admin_key);
        assert_eq!(res.status, 200, "{}", res.text());
        res.json()
    };
    let fired = wait_until("a scheduled run", Duration::from_secs(150), || {
        let j = detail();
        j["runs"].as_array()?.first().cloned()
    });
    assert_eq!(fired["status"], "ok", "{fired}");
    assert_eq!(fired["model"], "slow-model");
    assert!(
        fired["total_tokens"].as_i64().is_some_and(|t| t > 0),
        "{fired}"
    );
    // A scheduled run has no run id (a forced one has `manual:…`).
    assert!(fired["run_id"].is_null(), "{fired}");

    // The README's cron recipe, as written, against this gateway.
    let out = run_recipe(&d, &doc_block("README.md", "## Cron across the fleet"));
    assert!(
        out.contains(&format!("{gw} {id} minutely-report * * * * *")),
        "{out}"
    );
    assert!(out.contains("ok slow-model"), "{out}");
    assert!(out.contains("0 job(s)"), "{out}");

    // One slot swallowed: the gateway's next fire moved a minute on, as #139215's lost tick
    // moves it, through the gateway's own API.
    let job = g.call("cron.get", json!({"id": id}));
    let next = job["state"]["nextRunAtMs"].as_i64().unwrap();
    let swallowed = g.call(
        "cron.update",
        json!({"id": id, "patch": {"state": {"nextRunAtMs": next + 60_000}}}),
    );
    assert_eq!(
        swallowed["state"]["nextRunAtMs"],
        next + 60_000,
        "{swallowed}"
    );
    let found = wait_until(
        "the swallowed slot flagged and run once",
        Duration::from_secs(150),
        || {
            let j = detail();
            let miss = j["misses"]
                .as_array()?
                .iter()
                .find(|m| m["slot_ms"] == next)?
                .clone();
            (miss["recovery"] == "forced").then_some((miss, j))
        },
    );
    let (miss, shown) = found;
    assert_eq!(miss["cause"], "missed", "{shown:#}");
    assert!(
        miss["found_at_ms"].as_i64().unwrap() - next < 60_000,
        "flagged within a minute of the slot: {miss}"
    );
    let run_id = miss["recovery_detail"].as_str().unwrap().to_owned();
    assert!(run_id.starts_with(&format!("manual:{id}:")), "{miss}");
    // Exactly once: by the next slot after, still one forced run and one miss.
    wait_until(
        "the slot after, fired as scheduled",
        Duration::from_secs(150),
        || {
            let runs = g.call("cron.runs", json!({"scope": "job", "id": id, "limit": 50}));
            let entries = runs["entries"].as_array()?.clone();
            entries
                .iter()
                .any(|e| {
                    e["runAtMs"].as_i64().is_some_and(|t| t >= next + 60_000)
                        && e["runId"]
                            .as_str()
                            .is_none_or(|r| !r.starts_with("manual:"))
                })
                .then_some(())
        },
    );
    let runs = g.call("cron.runs", json!({"scope": "job", "id": id, "limit": 50}));
    let manual: Vec<&Value> = runs["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["runId"]
                .as_str()
                .is_some_and(|r| r.starts_with("manual:"))
        })
        .collect();
    assert_eq!(manual.len(), 1, "{runs:#}");
    let shown = detail();
    let missed: Vec<&Value> = shown["misses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["cause"] == "missed")
        .collect();
    assert_eq!(missed.len(), 1, "{shown:#}");
    let audit = d.get("/api/audit?limit=50", &d.admin_key).text();
    assert!(
        audit.contains("cron.missed") && audit.contains("cron.recover"),
        "{audit}"
    );
}

/// Job `job` added on real gateway `g` by hand, as `openclaw cron add` adds one.
fn g_add(g: &RealGateway, job: &Value) {
    g.call("cron.add", job.clone());
}

/// The jobs of real gateway `g` that carry declaration key `key`, as its own `cron.list` says.
fn carried(g: &RealGateway, key: &str) -> Vec<Value> {
    let list = g.call("cron.list", json!({"includeDisabled": true, "limit": 200}));
    list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["declarationKey"] == key)
        .cloned()
        .collect()
}

/// Runs of job `id` on `g` that the gateway's scheduler fired (no `manual:` run id), at or after
/// `since_ms`.
fn fired_since(g: &RealGateway, id: &str, since_ms: i64) -> Vec<Value> {
    let runs = g.call("cron.runs", json!({"scope": "job", "id": id, "limit": 50}));
    runs["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| {
            e["action"] == "finished"
                && e["runAtMs"].as_i64().is_some_and(|t| t >= since_ms)
                && e["runId"]
                    .as_str()
                    .is_none_or(|r| !r.starts_with("manual:"))
        })
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn a_job_declared_by_selector_fires_on_two_real_gateways_and_a_single_firing_one_moves() {
    let model = FakeModel::start();
    let install = PathBuf::from(std::env::var("GS_OPENCLAW_DIR").expect("GS_OPENCLAW_DIR"));
    let mut gs: Vec<RealGateway> = (0..2)
        .map(|_| {
            let mut g = RealGateway::new(&install, free_gateway_port(), "decl-token", None);
            g.use_model(&model.base_url());
            g.start();
            g
        })
        .collect();
    for g in &mut gs {
        g.wait_ready();
    }
    let d = Daemon::start_with(&[
        ("GATEWAY_SUPERVISOR__GATEWAYS__HEALTH_INTERVAL", "1h"),
        ("GATEWAY_SUPERVISOR__CRON__WATCH_INTERVAL", "2s"),
        // The test's own polling of /api/gateways counts as gateway operations (100 a minute).
        ("GATEWAY_SUPERVISOR__LIMITS__GATEWAY_OPS_PER_MINUTE", "0"),
    ]);
    let ids = labelled_gateways(
        &d,
        &gs,
        "decl-token",
        "reports",
        &json!({"team": "reports"}),
    );

    // The README's recipe, as written: the job on both gateways, as declared.
    let declared_at = now_ms();
    let out = run_recipe(&d, &doc_block("README.md", "is *declared*"));
    assert!(out.starts_with("succeeded\n"), "{out}");
    for id in &ids {
        assert!(out.contains(&format!("{id} enabled=true drift=0")), "{out}");
    }
    let job_ids: Vec<String> = gs
        .iter()
        .map(|g| {
            let jobs = carried(g, "gs:minutely-report");
            assert_eq!(jobs.len(), 1, "{jobs:?}");
            assert_eq!(jobs[0]["payload"]["message"], "say pong");
            jobs[0]["id"].as_str().unwrap().to_owned()
        })
        .collect();
    // Both fire it every minute, and the runs show in the fleet's view with model and tokens.
    for (gw, job) in ids.iter().zip(&job_ids) {
        let run = wait_until("a declared job's run", Duration::from_secs(150), || {
            let res = d.get(&format!("/api/cron/jobs/{gw}/{job}"), &d.admin_key);
            let runs = res.json()["runs"].as_array().cloned()?;
            runs.into_iter()
                .find(|r| r["run_at_ms"].as_i64().is_some_and(|t| t >= declared_at))
        });
        assert_eq!(run["status"], "ok", "{run}");
        assert_eq!(run["model"], "slow-model");
        assert!(run["total_tokens"].as_i64().is_some_and(|t| t > 0), "{run}");
    }

    // A field this daemon passes and 2026.9.6 refuses (a blank delivery channel): the canary
    // fails with the gateway's words and nothing is written anywhere.
    let mut job = json!({"name": "refused", "schedule": {"kind": "cron", "expr": "0 3 * * *", "tz": "UTC"},
        "sessionTarget": "isolated", "payload": {"kind": "agentTurn", "message": "x"},
        "delivery": {"mode": "announce", "channel": " "}});
    let res = d.call(
        "PUT",
        "/api/cron/declarations/refused",
        &d.admin_key,
        &json!({"selector": "team=reports", "job": job.take(), "max_parallel": 2}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let op = res.json()["operation"]["id"].as_str().unwrap().to_owned();
    let over = wait_until("the refused rollout over", Duration::from_secs(60), || {
        let op = d.get(&format!("/api/operations/{op}"), &d.admin_key).json()["operation"].clone();
        (op["state"] != "running").then_some(op)
    });
    assert_eq!(over["state"], "failed", "{over:#}");
    let canary = &over["gateways"][0];
    assert_eq!(canary["step"], "failed");
    assert!(
        canary["detail"]
            .as_str()
            .unwrap()
            .contains("invalid cron.add params: delivery.channel must be a non-empty string"),
        "{over:#}"
    );
    assert_eq!(over["gateways"][1]["step"], "skipped", "{over:#}");
    assert!(gs.iter().all(|g| carried(g, "gs:refused").is_empty()));

    // Two copies of one job made by hand on a gateway (#86451): found, and the extra removed.
    let copy = json!({"name": "hand-made", "schedule": {"kind": "cron", "expr": "0 9 * * *", "tz": "UTC"},
        "sessionTarget": "isolated", "payload": {"kind": "agentTurn", "message": "report"},
        "delivery": {"mode": "none"}});
    g_add(&gs[0], &copy);
    g_add(&gs[0], &copy);
    let dup = wait_until("the copy found", Duration::from_secs(60), || {
        let res = d.get("/api/cron/jobs?status=duplicate", &d.admin_key);
        res.json()["jobs"].as_array()?.first().cloned()
    });
    assert_eq!(
        (dup["gateway_id"].as_i64(), dup["name"].as_str()),
        (Some(ids[0]), Some("hand-made"))
    );
    let res = d.call(
        "POST",
        &format!("/api/cron/gateways/{}/remove-duplicates", ids[0]),
        &d.admin_key,
        &json!(null),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(
        res.json()["removed"],
        json!([dup["job_id"]]),
        "{}",
        res.text()
    );
    let left = gs[0].call("cron.list", json!({"includeDisabled": true, "limit": 200}));
    let hand_made = left["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["name"] == "hand-made")
        .count();
    assert_eq!(hand_made, 1, "{left:#}");

    // Deleted: gone from both.
    let res = d.call(
        "DELETE",
        "/api/cron/declarations/minutely-report",
        &d.admin_key,
        &json!(null),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    wait_until("the declared job removed", Duration::from_secs(60), || {
        gs.iter()
            .all(|g| carried(g, "gs:minutely-report").is_empty())
            .then_some(())
    });

    // One firing for the group: enabled on one gateway, disabled on the other.
    let res = d.call(
        "PUT",
        "/api/cron/declarations/once",
        &d.admin_key,
        &json!({"selector": "team=reports", "single": true, "job": {"name": "once",
            "schedule": {"kind": "cron", "expr": "* * * * *", "tz": "UTC"}, "sessionTarget": "isolated",
            "payload": {"kind": "agentTurn", "message": "say pong"}, "delivery": {"mode": "none"}}}),
    );
    assert_eq!(res.status, 202, "{}", res.text());
    let view = || d.get("/api/cron/declarations/once", &d.admin_key).json();
    let owner = wait_until("the single job written", Duration::from_secs(60), || {
        let v = view();
        let written = v["gateways"].as_array()?.len() == 2;
        written.then(|| v["owner_gateway_id"].as_i64()).flatten()
    });
    let (on, off) = if owner == ids[0] { (0, 1) } else { (1, 0) };
    let single_at = now_ms();
    let on_job = carried(&gs[on], "gs:once")[0].clone();
    let off_job = carried(&gs[off], "gs:once")[0].clone();
    assert_eq!(
        (on_job["enabled"].clone(), off_job["enabled"].clone()),
        (json!(true), json!(false))
    );
    let on_id = on_job["id"].as_str().unwrap().to_owned();
    let off_id = off_job["id"].as_str().unwrap().to_owned();
    wait_until(
        "the single job fired once",
        Duration::from_secs(150),
        || (!fired_since(&gs[on], &on_id, single_at).is_empty()).then_some(()),
    );
    assert!(
        fired_since(&gs[off], &off_id, single_at).is_empty(),
        "the other gateway fired it too"
    );

    // The gateway firing it stops: the job moves to the other, which fires it.
    gs[on].stop();
    wait_until("the single job moved", Duration::from_secs(60), || {
        (carried(&gs[off], "gs:once").first()?["enabled"] == true).then_some(())
    });
    assert_eq!(view()["owner_gateway_id"], ids[off]);
    let moved_at = now_ms();
    wait_until("the moved job fired", Duration::from_secs(150), || {
        (!fired_since(&gs[off], &off_id, moved_at).is_empty()).then_some(())
    });
}
